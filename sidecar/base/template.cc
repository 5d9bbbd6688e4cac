#include "base/template.h"

#include <algorithm>

#include "base/text.h"

namespace unshelver::core {

struct Template::Node {
  enum class Kind { kText, kEscaped, kRaw, kSection, kInverted };
  Kind kind = Kind::kText;
  std::string text;  // literal text, or the name
  std::vector<Node> children;
};

namespace {

using Node = Template::Node;
using json = nlohmann::json;

int line_of(std::string_view source, std::size_t offset) {
  return 1 + static_cast<int>(std::count(source.begin(), source.begin() + static_cast<long>(offset), '\n'));
}

// Mustache's "standalone" rule: a section, inverted, closing or comment tag alone on its line
// (only blanks around it) leaves no trace, neither its indentation nor its line break, so that
// templates for line-oriented formats (Caddyfiles) render without stray blank lines.
bool standalone(std::string_view source, std::size_t open, std::size_t after_close, std::size_t& line_start,
                std::size_t& next_line) {
  std::size_t begin = open;
  while (begin > 0 && (source[begin - 1] == ' ' || source[begin - 1] == '\t')) --begin;
  if (begin > 0 && source[begin - 1] != '\n') return false;
  std::size_t end = after_close;
  while (end < source.size() && (source[end] == ' ' || source[end] == '\t' || source[end] == '\r')) ++end;
  if (end < source.size() && source[end] != '\n') return false;
  line_start = begin;
  next_line = end < source.size() ? end + 1 : end;
  return true;
}

// Parses `source` from `pos` until `{{/closing}}` (or the end when closing is empty).
Result<std::vector<Node>> parse(std::string_view source, std::size_t& pos, const std::string& closing,
                                const std::string& template_name) {
  std::vector<Node> nodes;
  while (pos < source.size()) {
    std::size_t open = source.find("{{", pos);
    if (open == std::string_view::npos) open = source.size();
    if (open > pos) nodes.push_back(Node{Node::Kind::kText, std::string(source.substr(pos, open - pos)), {}});
    if (open == source.size()) {
      pos = open;
      break;
    }
    const bool triple = source.compare(open, 3, "{{{") == 0;
    const std::string_view close_mark = triple ? "}}}" : "}}";
    const std::size_t tag_begin = open + (triple ? 3 : 2);
    const std::size_t close = source.find(close_mark, tag_begin);
    if (close == std::string_view::npos) {
      return Error{template_name + ":" + std::to_string(line_of(source, open)) + ": unclosed tag"};
    }
    std::string tag = std::string(trim(source.substr(tag_begin, close - tag_begin), " \t"));
    pos = close + close_mark.size();
    if (!triple && !tag.empty() && (tag[0] == '#' || tag[0] == '^' || tag[0] == '/' || tag[0] == '!')) {
      std::size_t line_start = 0;
      std::size_t next_line = 0;
      if (standalone(source, open, pos, line_start, next_line)) {
        // Drop the tag's indentation from the text before it, and its line break after it.
        if (!nodes.empty() && nodes.back().kind == Node::Kind::kText) {
          std::string& text = nodes.back().text;
          text.resize(text.size() - (open - line_start));
          if (text.empty()) nodes.pop_back();
        }
        pos = next_line;
      }
    }
    if (triple) {
      nodes.push_back(Node{Node::Kind::kRaw, tag, {}});
      continue;
    }
    if (tag.empty()) {
      return Error{template_name + ":" + std::to_string(line_of(source, open)) + ": empty tag"};
    }
    const char sigil = tag[0];
    if (sigil == '!') continue;
    if (sigil == '#' || sigil == '^') {
      std::string name = std::string(trim(std::string_view(tag).substr(1), " \t"));
      auto children = parse(source, pos, name, template_name);
      if (!children) return children.error();
      nodes.push_back(Node{sigil == '#' ? Node::Kind::kSection : Node::Kind::kInverted, name,
                           std::move(children.value())});
      continue;
    }
    if (sigil == '/') {
      std::string name = std::string(trim(std::string_view(tag).substr(1), " \t"));
      if (name != closing) {
        std::string message = template_name + ":" + std::to_string(line_of(source, open)) + ": {{/";
        message += name;
        message += "}} does not close ";
        message += closing.empty() ? "any section" : "{{#" + closing + "}}";
        return Error{std::move(message)};
      }
      return nodes;
    }
    if (sigil == '&') {
      nodes.push_back(Node{Node::Kind::kRaw, std::string(trim(std::string_view(tag).substr(1), " \t")), {}});
      continue;
    }
    nodes.push_back(Node{Node::Kind::kEscaped, tag, {}});
  }
  if (!closing.empty()) {
    return Error{template_name + ": {{#" + closing + "}} is never closed"};
  }
  return nodes;
}

const json* lookup(const std::vector<const json*>& stack, const std::string& name) {
  if (name == ".") return stack.back();
  std::size_t dot = name.find('.');
  std::string head = name.substr(0, dot);
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
    const json& context = **it;
    if (!context.is_object()) continue;
    auto found = context.find(head);
    if (found == context.end()) continue;
    const json* value = &*found;
    while (dot != std::string::npos) {
      std::size_t next = name.find('.', dot + 1);
      std::string part = name.substr(dot + 1, next == std::string::npos ? std::string::npos : next - dot - 1);
      if (!value->is_object()) return nullptr;
      auto child = value->find(part);
      if (child == value->end()) return nullptr;
      value = &*child;
      dot = next;
    }
    return value;
  }
  return nullptr;
}

bool truthy(const json* value) {
  if (value == nullptr || value->is_null()) return false;
  if (value->is_boolean()) return value->get<bool>();
  if (value->is_string()) return !value->get_ref<const std::string&>().empty();
  if (value->is_array() || value->is_object()) return !value->empty();
  if (value->is_number()) return value->get<double>() != 0;
  return true;
}

void append_value(std::string& out, const json* value, bool escape) {
  if (value == nullptr || value->is_null()) return;
  std::string text;
  if (value->is_string()) {
    const std::string& str = value->get_ref<const std::string&>();
    if (escape) {
      append_html_escaped(out, str);
    } else {
      out += str;
    }
    return;
  }
  text = value->dump();
  if (escape) {
    append_html_escaped(out, text);
  } else {
    out += text;
  }
}

void render_nodes(const std::vector<Node>& nodes, std::vector<const json*>& stack, std::string& out);

void render_node(const Node& node, std::vector<const json*>& stack, std::string& out) {
  switch (node.kind) {
    case Node::Kind::kText: out += node.text; break;
    case Node::Kind::kEscaped: append_value(out, lookup(stack, node.text), true); break;
    case Node::Kind::kRaw: append_value(out, lookup(stack, node.text), false); break;
    case Node::Kind::kSection: {
      const json* value = lookup(stack, node.text);
      if (!truthy(value)) break;
      if (value->is_array()) {
        for (const json& item : *value) {
          stack.push_back(&item);
          render_nodes(node.children, stack, out);
          stack.pop_back();
        }
      } else {
        stack.push_back(value);
        render_nodes(node.children, stack, out);
        stack.pop_back();
      }
      break;
    }
    case Node::Kind::kInverted:
      if (!truthy(lookup(stack, node.text))) render_nodes(node.children, stack, out);
      break;
  }
}

void render_nodes(const std::vector<Node>& nodes, std::vector<const json*>& stack, std::string& out) {
  for (const Node& node : nodes) render_node(node, stack, out);
}

}  // namespace

Result<Template> Template::compile(std::string_view source, std::string name) {
  std::size_t pos = 0;
  auto nodes = parse(source, pos, "", name);
  if (!nodes) return nodes.error();
  Template compiled;
  compiled.name_ = std::move(name);
  compiled.nodes_ = std::make_shared<const std::vector<Node>>(std::move(nodes.value()));
  return compiled;
}

std::string Template::render(const nlohmann::json& data) const {
  std::string out;
  out.reserve(4096);
  std::vector<const json*> stack{&data};
  if (nodes_) render_nodes(*nodes_, stack, out);
  return out;
}

Template::Split Template::render_split(const nlohmann::json& data, std::string_view list) const {
  Split split;
  if (!nodes_) return split;
  std::vector<const json*> stack{&data};
  std::string* out = &split.before;
  for (const Node& node : *nodes_) {
    if (!split.found && node.kind == Node::Kind::kSection && node.text == list) {
      split.found = true;
      out = &split.after;
      continue;
    }
    render_node(node, stack, *out);
  }
  return split;
}

std::string Template::render_item(const nlohmann::json& data, std::string_view list,
                                  const nlohmann::json& item) const {
  std::string out;
  if (!nodes_) return out;
  for (const Node& node : *nodes_) {
    if (node.kind != Node::Kind::kSection || node.text != list) continue;
    std::vector<const json*> stack{&data, &item};
    render_nodes(node.children, stack, out);
    break;
  }
  return out;
}

void append_html_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_html_escaped(out, text);
  return out;
}

}  // namespace unshelver::core
