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

}  // namespace
}  // namespace unshelver::core
