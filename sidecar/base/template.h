// Template: a small logic-less template language (a subset of Mustache) for the pages.
//
//   {{name}}          the value, HTML-escaped        {{{name}}}   the value, unescaped
//   {{#name}}..{{/name}}  a list: once per item (the item becomes the context); true or a
//                         non-empty value: once; false, null, empty: not at all
//   {{^name}}..{{/name}}  once when the value is false, null, missing or empty
//   {{.}}             the current item               {{! comment }}
// Names may be dotted (`backend.state`) and are looked up from the innermost context outwards.
//
// Pages are compiled once at start-up (errors name the template and line) and rendered from a
// JSON value, so the web layer builds data, never markup.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace unshelver::core {

class Template {
 public:
  static Result<Template> compile(std::string_view source, std::string name);
  std::string render(const nlohmann::json& data) const;

  // For a page drawn once per item of a list (the launcher: one section per backend), so that a
  // change of one item re-renders that item only. The page is split at its first top-level
  // section over `list` ({{#backends}} not inside another section): render(data) equals
  // `before`, then render_item(data, list, item) for each item of the array data[list], then
  // `after`. `found` is false when there is no such section (then `before` is the whole page).
  struct Split {
    std::string before;
    std::string after;
    bool found = false;
  };
  Split render_split(const nlohmann::json& data, std::string_view list) const;
  // That section's inside for one item, with `data` as the outer context.
  std::string render_item(const nlohmann::json& data, std::string_view list,
                          const nlohmann::json& item) const;
  const std::string& name() const { return name_; }

  struct Node;

 private:
  std::string name_;
  std::shared_ptr<const std::vector<Node>> nodes_;
};

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string html_escape(std::string_view text);
void append_html_escaped(std::string& out, std::string_view text);

}  // namespace unshelver::core
