// The configuration's schema: one row per key, with its path, type, range or choices, default,
// one line of help, origin (a Python-unshelver key or ours), and where its value goes. The same
// table drives the walker (config/reader.h: types, ranges, unknown keys and their "did you
// mean"), config/config.example.yaml and the README's key table (both written by
// `unshelver config-reference` and held to the checked-in files by schema_example_test).
//
// Adding a key takes one row here (and a test); rules that are more than a row (button
// inheritance, secrets precedence, OpenStack and Caddy requirements) are named functions in
// config/checks.h and config/secrets.h. Pure.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace unshelver::core {

// Where a value was written: 1-based, 0 when unknown.
struct Where {
  int line = 0;
  int column = 0;
};

namespace config_detail {
struct Draft;
struct Value;
}  // namespace config_detail

namespace schema {

enum class Type {
  kSection,     // a mapping of further keys
  kList,        // a list of mappings (buttons)
  kIgnored,     // accepted and ignored (the Python unshelver's `github`)
  kString,      // any scalar, as written
  kSecret,      // a string never shown in messages
  kBool,        // true/false (also yes/no, on/off, 1/0)
  kBoolOrPath,  // true, false, or the path of a CA bundle
  kInteger,     // a whole number within [min, max]
  kNumber,      // a number within the range; fractions allowed
  kChoice,      // one of `choices`
  kStrings,     // a list of strings
  kHostPort,    // HOST:PORT with a port of at least `min`
};

enum class Origin {
  kPython,  // the Python unshelver's key, same name and meaning
  kOurs,    // Unshelver's extension
};

// Validates a string value beyond its type: "" when fine, else the message.
using Check = std::string (*)(std::string_view text);
// Puts a valid value where it belongs.
using Store = void (*)(config_detail::Draft& draft, const config_detail::Value& value);

struct Key {
  std::string_view path;  // "app.title", "buttons[].health.path"
  Type type;
  Origin origin;
  double min = 0;  // kInteger, kNumber; kHostPort: the lowest port
  double max = 0;
  bool min_exclusive = false;  // "greater than min" rather than "at least min"
  std::span<const std::string_view> choices = {};
  std::string_view fallback = {};  // the default as the docs show it; empty: none
  std::string_view example = {};   // the value in config.example.yaml; empty: shown commented out
  std::string_view help = {};      // one line
  Check check = nullptr;           // strings: applied to the value (list items for kStrings)
  Store store = nullptr;
  bool required = false;  // a mapping without it is an error
  bool open = false;      // kSection: unknown keys are kept (openstack), near-misses reported
};

std::span<const Key> keys();
// The row of `path` ("buttons[].port"), or nullptr.
const Key* find(std::string_view path);
// The last component of a row's path: "port".
std::string_view name_of(const Key& key);
// The path of the section that holds a row: "buttons[]" for "buttons[].port", "" at the top.
std::string_view parent_of(const Key& key);

// config/config.example.yaml, every key with its help and default.
std::string example_yaml();
// The Markdown table of every key that README.md holds between its config-table markers.
std::string readme_table();

}  // namespace schema
}  // namespace unshelver::core
