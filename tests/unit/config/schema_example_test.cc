// The configuration schema (config/schema.h) and the documents written from it: the checked-in
// config/config.example.yaml and README.md's key table must be exactly what the schema writes, so
// that neither can lose or invent a key. To regenerate them after changing the schema:
//
//   build/unshelver config-reference example > config/config.example.yaml
//   build/unshelver config-reference readme-table   (paste between the config-table markers)
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "config/parser.h"
#include "config/schema.h"
#include "support/source_root.h"

namespace unshelver::core {
namespace {

constexpr std::string_view kBegin = "<!-- config-table:begin -->\n";
constexpr std::string_view kEnd = "<!-- config-table:end -->";

TEST(ConfigSchema, ExampleConfigIsWhatTheSchemaWrites) {
  const std::string checked_in = test::read_text(test::source_root() / "config/config.example.yaml");
  ASSERT_FALSE(checked_in.empty());
  EXPECT_EQ(checked_in, schema::example_yaml())
      << "config/config.example.yaml differs from the schema; regenerate it with "
         "`build/unshelver config-reference example > config/config.example.yaml`";
}

TEST(ConfigSchema, ReadmeTableIsWhatTheSchemaWrites) {
  const std::string readme = test::read_text(test::source_root() / "README.md");
  const std::size_t begin = readme.find(kBegin);
  const std::size_t end = readme.find(kEnd);
  ASSERT_NE(begin, std::string::npos) << "README.md has no " << kBegin;
  ASSERT_NE(end, std::string::npos) << "README.md has no " << kEnd;
  ASSERT_LT(begin, end);
  const std::string table = readme.substr(begin + kBegin.size(), end - begin - kBegin.size());
  EXPECT_EQ(table, schema::readme_table())
      << "README.md's configuration table differs from the schema; regenerate it with "
         "`build/unshelver config-reference readme-table`";
}

TEST(ConfigSchema, EveryRowIsWellFormed) {
  std::set<std::string_view> paths;
  for (const schema::Key& key : schema::keys()) {
    SCOPED_TRACE(std::string(key.path));
    EXPECT_TRUE(paths.insert(key.path).second) << "a second row for the same key";
    EXPECT_FALSE(key.help.empty());
    const std::string_view parent = schema::parent_of(key);
    if (!parent.empty()) {
      const std::string_view section = parent.ends_with("[]") ? parent.substr(0, parent.size() - 2) : parent;
      EXPECT_NE(schema::find(section), nullptr) << "the row's section has no row";
    }
    const bool holds_a_value = key.type != schema::Type::kSection && key.type != schema::Type::kList &&
                               key.type != schema::Type::kIgnored;
    if (holds_a_value) {
      EXPECT_NE(key.store, nullptr) << "a value that goes nowhere";
      EXPECT_FALSE(key.example.empty()) << "every key appears in the example";
    }
    if (key.type == schema::Type::kChoice) {
      EXPECT_FALSE(key.choices.empty());
    }
  }
}

// Every key the example shows, and every commented-out one once uncommented, is read by the
// schema (as the parser tests also check by name).
TEST(ConfigSchema, ExampleShowsEveryKey) {
  const std::string example = schema::example_yaml();
  for (const schema::Key& key : schema::keys()) {
    const std::string line = std::string(schema::name_of(key)) + ":";
    EXPECT_NE(example.find(line), std::string::npos) << key.path;
  }
}

// The keys that were missing from the hand-written example are there now.
TEST(ConfigSchema, ExampleHasTheCaddySectionAndWakeOnRequest) {
  ConfigInputs in;
  in.yaml_text = schema::example_yaml();
  in.yaml_path = "config.example.yaml";
  in.env["UNSHELVER_CONTROL_TOKEN"] = "k3J9xQ2mV7pL0sD4fG8hZ1cB6nM5tR2w";
  in.env["UNSHELVER_SECRET_KEY"] = "0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938";
  const ParsedConfig parsed = parse_config(in);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed.config.locations.contains("caddy.admin"));
  EXPECT_TRUE(parsed.config.locations.contains("caddy.retry_max_seconds"));
  EXPECT_TRUE(parsed.config.locations.contains("buttons[0].wake_on_request"));
  EXPECT_EQ(parsed.config.caddy.launcher_url, "https://gpu.example.org");
}

// One webhook with the keys it needs, for rows of webhooks[].
constexpr std::string_view kWebhookItem =
    "webhooks:\n  - name: hook\n    url: http://127.0.0.1:9/\n    secret: 0123456789abcdef-secret\n";

// A YAML text that sets the key at `path` ("buttons[].health.attempts") to `value`, beside one
// simulated backend (and one webhook, for a webhook's key).
std::string yaml_setting(std::string_view path, std::string_view value) {
  std::string yaml;
  std::string indent;
  std::string_view rest = path;
  const bool in_button = rest.starts_with("buttons[].");
  if (in_button) {
    yaml = "buttons:\n  - id: gpu\n    provider: sim\n";
    indent = "    ";
    rest.remove_prefix(std::string_view("buttons[].").size());
  }
  if (rest.starts_with("webhooks[].")) {
    yaml = std::string(kWebhookItem);
    indent = "    ";
    rest.remove_prefix(std::string_view("webhooks[].").size());
  }
  for (std::size_t dot = rest.find('.'); dot != std::string_view::npos; dot = rest.find('.')) {
    yaml += indent + std::string(rest.substr(0, dot)) + ":\n";
    indent += "  ";
    rest.remove_prefix(dot + 1);
  }
  yaml += indent + std::string(rest) + ": " + std::string(value) + "\n";
  if (!in_button) yaml += "buttons:\n  - id: gpu\n    provider: sim\n";
  return yaml;
}

// A row whose default is a value that can be written alone in a config: a number, a boolean or a
// choice (provider: openstack would need credentials; the other choices stand alone). A default
// that names another key ("caddy.routing") is inherited, not a value.
bool has_plain_default(const schema::Key& key) {
  const std::string_view value = key.fallback;
  switch (key.type) {
    case schema::Type::kInteger:
    case schema::Type::kNumber:
      return !value.empty() && value.find_first_not_of("0123456789.") == std::string_view::npos;
    case schema::Type::kBool: return value == "true" || value == "false";
    case schema::Type::kChoice:
      return key.path != "buttons[].provider" &&
             std::find(key.choices.begin(), key.choices.end(), value) != key.choices.end();
    default: return false;
  }
}

// Every default that is a plain value is itself valid: within the row's range or choices.
TEST(ConfigSchema, DefaultsAreValidValues) {
  int checked = 0;
  for (const schema::Key& key : schema::keys()) {
    if (!has_plain_default(key)) continue;
    const std::string_view value = key.fallback;
    ++checked;
    ConfigInputs in;
    in.yaml_text = yaml_setting(key.path, value);
    const ParsedConfig parsed = parse_config(in);
    std::string issues;
    for (const ConfigIssue& issue : parsed.issues) issues += issue.to_string() + "\n";
    EXPECT_TRUE(parsed.ok()) << key.path << ": " << value << "\n" << in.yaml_text << issues;
  }
  EXPECT_GT(checked, 50);
}

// The schema's default is the model's: writing a key with the value the docs give as its default
// changes nothing in the parsed configuration (config.h's initialisers and the schema's rows
// cannot drift apart unnoticed).
TEST(ConfigSchema, WritingTheDefaultChangesNothing) {
  auto parse_yaml = [](const std::string& yaml) {
    ConfigInputs in;
    in.yaml_text = yaml;
    ParsedConfig parsed = parse_config(in);
    parsed.config.locations.clear();  // where keys were written, not what they say
    return parsed;
  };
  const ParsedConfig baseline = parse_yaml("buttons:\n  - id: gpu\n    provider: sim\n");
  ASSERT_TRUE(baseline.ok());
  int checked = 0;
  for (const schema::Key& key : schema::keys()) {
    if (!has_plain_default(key)) continue;
    const std::string_view value = key.fallback;
    ++checked;
    ParsedConfig written = parse_yaml(yaml_setting(key.path, value));
    ASSERT_TRUE(written.ok()) << key.path;
    const ParsedConfig& before =
        key.path.starts_with("webhooks[].")
            ? parse_yaml(std::string(kWebhookItem) + "buttons:\n  - id: gpu\n    provider: sim\n")
            : baseline;
    // An `openstack:` section marks OpenStack as configured whatever it holds: presence, not a value.
    written.config.openstack.configured = before.config.openstack.configured;
    EXPECT_TRUE(written.config == before.config)
        << key.path << ": the schema says the default is " << value << ", config.h starts with another value";
  }
  EXPECT_GT(checked, 50);
}

}  // namespace
}  // namespace unshelver::core
