// The walker and the typed readers. Every problem is collected rather than thrown, so that one
// run of `check-config` shows them all; each names the file, line, column and dotted key.
#include "config/reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>
#include <tuple>

#include "base/text.h"
#include "base/url.h"

namespace unshelver::core::config_detail {

namespace {

// Long values are shortened in messages so that one bad line does not flood the terminal.
constexpr std::size_t kMaxShownValue = 40;

std::string join_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return parent + "." + std::string(key);
}

std::optional<double> parse_double(std::string_view text) {
  if (text.starts_with('+')) text.remove_prefix(1);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string quote(std::string_view text) {
  std::string out = "\"";
  std::size_t shown = 0;
  for (const char c : text) {
    if (shown++ == kMaxShownValue) {
      out += "...";
      break;
    }
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string format_number(double value) {
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<long long>(value));
  }
  std::ostringstream out;
  out << value;
  return out.str();
}

std::string list_names(std::span<const std::string_view> names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += quote(names[i]);
  }
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string nearest_name(std::string_view name, std::span<const std::string_view> known) {
  const std::string needle = to_lower(name);
  const std::size_t allowed = std::max<std::size_t>(2, needle.size() / 4);
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string_view candidate : known) {
    const std::size_t distance = edit_distance(needle, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  if (best_distance > 0 && best_distance <= allowed && best_distance < needle.size()) return best;
  // A key written without its unit, such as `timeout` for `timeout_seconds`.
  for (const std::string_view candidate : known) {
    if (candidate.size() > needle.size() + 1 && candidate.starts_with(needle) &&
        candidate[needle.size()] == '_') {
      return std::string(candidate);
    }
  }
  return "";
}

std::optional<bool> parse_bool(std::string_view text) {
  const std::string word = to_lower(text);
  if (word == "true" || word == "yes" || word == "on" || word == "1") return true;
  if (word == "false" || word == "no" || word == "off" || word == "0") return false;
  return std::nullopt;
}

Millis millis_from_seconds(double seconds) {
  const auto ms = static_cast<long long>(std::llround(seconds * 1000));
  return Millis(seconds > 0 ? std::max(1LL, ms) : ms);
}

std::chrono::seconds whole_seconds(double seconds) {
  const auto rounded = static_cast<long long>(std::llround(seconds));
  return std::chrono::seconds(seconds > 0 ? std::max(1LL, rounded) : rounded);
}

std::string with_leading_slash(std::string path) {
  if (!path.starts_with('/')) path.insert(path.begin(), '/');
  return path;
}

Where where_of(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

// --- Issues --------------------------------------------------------------------------------------

Reader::Reader(const ConfigInputs& inputs, Draft& draft)
    : inputs_(inputs),
      draft_(draft),
      secrets_file_(inputs.secrets_path.empty() ? std::string(kDefaultSecretsFile) : inputs.secrets_path) {
  draft_.yaml_file = inputs.yaml_path.empty() ? std::string(kDefaultYamlFile) : inputs.yaml_path;
}

void Reader::add(std::string file, int line, int column, std::string key, std::string message) {
  issues_.push_back({std::move(file), line, column, std::move(key), std::move(message)});
}

void Reader::add_at(const Where& where, std::string key, std::string message) {
  add(draft_.yaml_file, where.line, where.column, std::move(key), std::move(message));
}

void Reader::add_at(const YAML::Node& node, std::string key, std::string message) {
  add_at(node.IsDefined() ? where_of(node.Mark()) : Where{}, std::move(key), std::move(message));
}

void Reader::add_at(const Secret& secret, std::string message) {
  add(secret.file, secret.line, secret.column, secret.key, std::move(message));
}

std::vector<ConfigIssue> Reader::take_sorted_issues() {
  const auto rank = [this](const ConfigIssue& issue) {
    if (issue.file == draft_.yaml_file) return 0;
    if (issue.file == kEnvironmentFile) return 2;
    return 1;
  };
  std::stable_sort(issues_.begin(), issues_.end(), [&](const ConfigIssue& a, const ConfigIssue& b) {
    const auto key = [&](const ConfigIssue& issue) {
      return std::make_tuple(rank(issue), issue.line == 0 ? std::numeric_limits<int>::max() : issue.line,
                             issue.column);
    };
    return key(a) < key(b);
  });
  return std::move(issues_);
}

// --- Typed readers. Each returns nullopt for an absent or null value (the default applies) and
// for a wrong value (after recording the issue). --------------------------------------------------

std::string Reader::describe(const YAML::Node& node, bool secret) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: return secret ? "a value that is not shown" : quote(node.Scalar());
    default: return "nothing";
  }
}

bool Reader::expect_map(const YAML::Node& node, const std::string& path) {
  if (node.IsMap()) return true;
  if (!node.IsNull()) add_at(node, path, "expected a mapping, got " + describe(node, false));
  return false;
}

std::optional<std::string> Reader::get_string(const YAML::Node& node, const std::string& path, bool secret) {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (!node.IsScalar()) {
    add_at(node, path, "expected a string, got " + describe(node, secret));
    return std::nullopt;
  }
  return node.Scalar();
}

bool Reader::in_range(double value, const YAML::Node& node, const std::string& path, const schema::Key& key) {
  if (key.min_exclusive ? value <= key.min : value < key.min) {
    add_at(node, path,
           std::string(key.min_exclusive ? "must be greater than " : "must be at least ") +
               format_number(key.min) + ", got " + format_number(value));
    return false;
  }
  if (value > key.max) {
    add_at(node, path, "must be at most " + format_number(key.max) + ", got " + format_number(value));
    return false;
  }
  return true;
}

std::optional<double> Reader::get_number(const YAML::Node& node, const std::string& path,
                                         const schema::Key& key) {
  const std::optional<double> value = node.IsScalar() ? parse_double(node.Scalar()) : std::nullopt;
  if (!value) {
    add_at(node, path, "expected a number, got " + describe(node, false));
    return std::nullopt;
  }
  return in_range(*value, node, path, key) ? value : std::nullopt;
}

std::optional<long long> Reader::get_integer(const YAML::Node& node, const std::string& path,
                                             const schema::Key& key) {
  // YAML writers sometimes emit whole numbers as 5.0; they mean the integer.
  const std::optional<double> value = node.IsScalar() ? parse_double(node.Scalar()) : std::nullopt;
  if (!value || std::floor(*value) != *value || std::fabs(*value) > 9e15) {
    add_at(node, path, "expected an integer, got " + describe(node, false));
    return std::nullopt;
  }
  if (!in_range(*value, node, path, key)) return std::nullopt;
  return static_cast<long long>(*value);
}

std::optional<std::vector<std::string>> Reader::get_strings(const YAML::Node& node, const std::string& path,
                                                            const schema::Key& key) {
  if (!node.IsSequence()) {
    add_at(node, path, "expected a list of strings, got " + describe(node, false));
    return std::nullopt;
  }
  std::vector<std::string> items;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string item_path = path + "[" + std::to_string(i) + "]";
    if (auto item = get_string(node[i], item_path, false)) items.push_back(*item);
  }
  if (key.check) {
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (std::string problem = key.check(items[i]); !problem.empty()) {
        add_at(i < node.size() ? node[i] : node, path + "[" + std::to_string(i) + "]", std::move(problem));
      }
    }
  }
  return items;
}

std::optional<Value> Reader::read(const schema::Key& key, const YAML::Node& node, const std::string& path) {
  using schema::Type;
  Value value;
  value.where = where_of(node.Mark());
  value.path = path;
  if (node.IsNull()) {
    // An explicit empty list, so that `user_agents:` with nothing empties the default list.
    if (key.type == Type::kStrings) return value;
    return std::nullopt;
  }
  switch (key.type) {
    case Type::kSection:
    case Type::kList:
    case Type::kIgnored: return value;
    case Type::kString:
    case Type::kSecret: {
      auto text = get_string(node, path, key.type == Type::kSecret);
      if (!text) return std::nullopt;
      if (key.check) {
        if (std::string problem = key.check(*text); !problem.empty()) {
          add_at(node, path, std::move(problem));
          return std::nullopt;
        }
      }
      value.text = std::move(*text);
      return value;
    }
    case Type::kBool: {
      const std::optional<bool> flag = node.IsScalar() ? parse_bool(node.Scalar()) : std::nullopt;
      if (!flag) {
        add_at(node, path, "expected true or false, got " + describe(node, false));
        return std::nullopt;
      }
      value.flag = *flag;
      return value;
    }
    case Type::kBoolOrPath: {
      if (!node.IsScalar()) {
        add_at(node, path, "expected true, false or a CA bundle path, got " + describe(node, false));
        return std::nullopt;
      }
      const std::optional<bool> flag = parse_bool(node.Scalar());
      value.flag = flag.value_or(false);
      if (!flag) value.text = node.Scalar();
      return value;
    }
    case Type::kInteger: {
      auto number = get_integer(node, path, key);
      if (!number) return std::nullopt;
      value.integer = *number;
      return value;
    }
    case Type::kNumber: {
      auto number = get_number(node, path, key);
      if (!number) return std::nullopt;
      value.number = *number;
      return value;
    }
    case Type::kChoice: {
      auto text = get_string(node, path, false);
      if (!text) return std::nullopt;
      for (std::size_t i = 0; i < key.choices.size(); ++i) {
        if (key.choices[i] == *text) {
          value.choice = i;
          value.text = std::move(*text);
          return value;
        }
      }
      add_at(node, path, "must be one of " + list_names(key.choices) + ", got " + quote(*text));
      return std::nullopt;
    }
    case Type::kStrings: {
      auto items = get_strings(node, path, key);
      if (!items) return std::nullopt;
      value.list = std::move(*items);
      return value;
    }
    case Type::kHostPort: {
      auto text = get_string(node, path, false);
      if (!text) return std::nullopt;
      if (!core::is_host_port(*text, key.min == 0 ? 0 : 1)) {
        add_at(node, path, "expected HOST:PORT (for example \"127.0.0.1:8080\"), got " + quote(*text));
        return std::nullopt;
      }
      value.text = std::move(*text);
      return value;
    }
  }
  return std::nullopt;
}

// --- The walk ------------------------------------------------------------------------------------

void Reader::walk(const YAML::Node& map, std::string_view pattern, const std::string& path) {
  std::vector<const schema::Key*> rows;
  std::vector<std::string_view> known;
  for (const schema::Key& key : schema::keys()) {
    if (schema::parent_of(key) != pattern) continue;
    rows.push_back(&key);
    known.push_back(schema::name_of(key));
  }
  const schema::Key* section = pattern.empty() ? nullptr : schema::find(pattern);
  const bool open = section != nullptr && section->open;

  std::map<std::string, int> seen;
  std::set<std::string_view> written;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key_node = it->first;
    const YAML::Node value = it->second;
    if (!key_node.IsScalar()) {
      add_at(key_node, path, "keys must be plain names, got " + describe(key_node, false));
      continue;
    }
    const std::string& name = key_node.Scalar();
    const std::string child = join_path(path, name);
    const Where key_where = where_of(key_node.Mark());
    if (const auto [first, inserted] = seen.emplace(name, key_where.line); !inserted) {
      add_at(key_node, child, "duplicate key (first set on line " + std::to_string(first->second) + ")");
      continue;
    }
    draft_.config.locations.emplace(child, KeyLocation{key_where.line, key_where.column});
    const auto row = std::find_if(rows.begin(), rows.end(),
                                  [&](const schema::Key* key) { return schema::name_of(*key) == name; });
    if (row == rows.end()) {
      if (open) {
        keep_openstack_extra(name, value, child, known);
        continue;
      }
      std::string message = "unknown key";
      if (const std::string suggestion = nearest_name(name, known); !suggestion.empty()) {
        message += "; did you mean " + quote(suggestion) + "?";
      }
      add_at(key_node, child, std::move(message));
      continue;
    }
    const schema::Key& key = **row;
    if (!value.IsNull()) written.insert(schema::name_of(key));
    if (key.type == schema::Type::kList) {
      if (key.path == "webhooks") {
        webhooks_ = value;
      } else {
        buttons_ = value;
        buttons_path_ = child;
      }
      continue;
    }
    if (key.type == schema::Type::kSection && !expect_map(value, child)) continue;
    if (std::optional<Value> read_value = read(key, value, child); read_value && key.store) {
      key.store(draft_, *read_value);
    }
    if (key.type == schema::Type::kSection) walk(value, key.path, child);
  }
  for (const schema::Key* key : rows) {
    if (key->required && !written.contains(schema::name_of(*key))) {
      add_at(map, join_path(path, schema::name_of(*key)),
             "missing required key `" + std::string(schema::name_of(*key)) + "`");
    }
  }
}

// Keys the Python unshelver passed through to openstacksdk are kept rather than rejected, except
// near-misses of our own keys (one edit away, such as `pasword`): those are typos that would
// otherwise surface later as "missing password".
void Reader::keep_openstack_extra(const std::string& key, const YAML::Node& value, const std::string& path,
                                  std::span<const std::string_view> known) {
  if (const std::string suggestion = nearest_name(key, known);
      !suggestion.empty() && edit_distance(to_lower(key), suggestion) <= 1) {
    add_at(value, path,
           "unknown key; did you mean " + quote(suggestion) +
               "? (other unknown keys here are passed to openstacksdk)");
    return;
  }
  std::map<std::string, std::string>& extra = draft_.config.openstack.extra;
  if (value.IsScalar()) {
    extra[key] = value.Scalar();
  } else if (!value.IsNull()) {
    YAML::Emitter out;
    out << YAML::Flow << value;
    extra[key] = out.c_str();
  } else {
    extra[key] = "";
  }
}

}  // namespace unshelver::core::config_detail
