#include "base/template.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

using nlohmann::json;

std::string render(const std::string& source, const json& data) {
  auto compiled = Template::compile(source, "test.html");
  EXPECT_TRUE(compiled.ok()) << (compiled.ok() ? "" : compiled.error().message);
  return compiled.ok() ? compiled->render(data) : "";
}

TEST(Template, EscapesByDefault) {
  EXPECT_EQ(render("<p>{{name}}</p>", {{"name", "<b>&\"'"}}), "<p>&lt;b&gt;&amp;&quot;&#39;</p>");
  EXPECT_EQ(render("{{{name}}}|{{&name}}", {{"name", "<b>"}}), "<b>|<b>");
}

TEST(Template, SectionsIterateListsAndTestTruth) {
  json data = {{"items", json::array({{{"n", 1}}, {{"n", 2}}})},
               {"on", true},
               {"off", false},
               {"empty", json::array()},
               {"title", "T"}};
  EXPECT_EQ(render("{{#items}}[{{n}}{{title}}]{{/items}}", data), "[1T][2T]");
  EXPECT_EQ(render("{{#on}}yes{{/on}}{{#off}}no{{/off}}{{^off}}inv{{/off}}", data), "yesinv");
  EXPECT_EQ(render("{{^empty}}none{{/empty}}{{^missing}}gone{{/missing}}", data), "nonegone");
}

TEST(Template, DottedNamesAndCurrentItem) {
  json data = {{"a", {{"b", {{"c", "deep"}}}}}, {"list", {"x", "y"}}};
  EXPECT_EQ(render("{{a.b.c}}|{{#list}}{{.}}{{/list}}|{{a.missing}}", data), "deep|xy|");
}

TEST(Template, NumbersAndCommentsRender) {
  EXPECT_EQ(render("{{! ignored }}{{n}}", {{"n", 42}}), "42");
}

TEST(Template, StandaloneSectionLinesLeaveNoBlankLines) {
  const std::string source =
      "a\n  {{#on}}\n  b {{x}}\n  {{/on}}\n{{^on}}\nno\n{{/on}}\nc {{#on}}inline{{/on}}\n{{! note }}\nend";
  EXPECT_EQ(render(source, {{"on", true}, {"x", 1}}), "a\n  b 1\nc inline\nend");
  EXPECT_EQ(render(source, {{"on", false}, {"x", 1}}), "a\nno\nc \nend");
}

TEST(Template, ErrorsNameTemplateAndLine) {
  auto unclosed = Template::compile("a\n{{#x}}b", "page.html");
  ASSERT_FALSE(unclosed.ok());
  EXPECT_NE(unclosed.error().message.find("page.html"), std::string::npos);
  EXPECT_NE(unclosed.error().message.find("never closed"), std::string::npos);
  auto mismatched = Template::compile("a\n\n{{#x}}{{/y}}", "page.html");
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.error().message.find("page.html:3"), std::string::npos);
  EXPECT_FALSE(Template::compile("{{oops", "page.html").ok());
}

// A page drawn per item (the launcher) is exactly the page drawn whole: before, the items, after.
TEST(Template, SplitAroundAListJoinsToTheWholePage) {
  const std::string source =
      "<h1>{{title}}</h1>\n{{^items}}none{{/items}}\n{{#items}}\n<li>{{name}} of {{title}}</li>\n{{/items}}\n"
      "<p>{{#items}}{{name}}{{/items}}</p>\n";
  auto compiled = Template::compile(source, "list.html");
  ASSERT_TRUE(compiled.ok());
  for (const json& items : {json::array(), json::array({{{"name", "a"}}, {{"name", "<b>"}}})}) {
    const json data = {{"title", "T"}, {"items", items}};
    const Template::Split split = compiled->render_split(data, "items");
    ASSERT_TRUE(split.found);
    std::string joined = split.before;
    for (const json& item : items) joined += compiled->render_item(data, "items", item);
    joined += split.after;
    EXPECT_EQ(joined, compiled->render(data));
  }
  // Only the first top-level section is split out; the second is part of `after`.
  const json data = {{"title", "T"}, {"items", json::array({{{"name", "x"}}})}};
  EXPECT_NE(compiled->render_split(data, "items").after.find("<p>x</p>"), std::string::npos);
}

TEST(Template, SplitWithoutTheSectionIsTheWholePage) {
  auto compiled = Template::compile("{{#wrap}}{{#items}}{{.}}{{/items}}{{/wrap}}", "nested.html");
  ASSERT_TRUE(compiled.ok());
  const json data = {{"wrap", true}, {"items", json::array({1, 2})}};
  const Template::Split split = compiled->render_split(data, "items");
  EXPECT_FALSE(split.found);
  EXPECT_EQ(split.before, compiled->render(data));
  EXPECT_EQ(compiled->render_item(data, "items", 1), "");
}

}  // namespace
}  // namespace unshelver::core
