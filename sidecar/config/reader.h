// The generic half of the configuration loader: issues with file:line:column, the typed readers
// (one per schema type, each with its messages), the mapping walker that looks keys up in the
// schema and suggests near-misses, and the draft that the schema's rows fill in.
//
// Pure; yaml-cpp stays inside config/ (parser.cc, reader.cc, checks.cc, secrets.cc).
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/parser.h"
#include "config/schema.h"

namespace unshelver::core::config_detail {

// Bounds that keep duration arithmetic far from overflow (about 31 years).
constexpr double kMaxSeconds = 1e9;
constexpr double kMaxMinutes = kMaxSeconds / 60;
// The largest count any key accepts.
constexpr double kMaxCount = 1e9;
// Where issues about environment variables and the secrets text point when there is no path.
constexpr std::string_view kEnvironmentFile = "<environment>";
constexpr std::string_view kDefaultYamlFile = "<config>";
constexpr std::string_view kDefaultSecretsFile = "<secrets>";

// "value" with quotes, escapes and a length cap, for messages.
std::string quote(std::string_view text);
std::string format_number(double value);
// "\"a\", \"b\" or \"c\"".
std::string list_names(std::span<const std::string_view> names);
std::size_t edit_distance(std::string_view a, std::string_view b);
// The known name closest to `name`, or "" when none is close enough to be a plausible typo.
std::string nearest_name(std::string_view name, std::span<const std::string_view> known);
std::optional<bool> parse_bool(std::string_view text);
Millis millis_from_seconds(double seconds);
std::chrono::seconds whole_seconds(double seconds);
std::string with_leading_slash(std::string path);
Where where_of(const YAML::Mark& mark);

// A secret and where its winning value came from, so that an issue can point there without ever
// printing the value.
struct Secret {
  std::string value;
  std::string file;
  int line = 0;
  int column = 0;
  std::string key;
};

// The per-button values whose final value depends on other keys; read first, resolved later
// (checks.cc, finish_button), because YAML key order must not matter.
struct ButtonDraft {
  std::optional<double> probe_interval_seconds;  // http_probe_interval_seconds
  std::optional<long long> probe_attempts;       // http_probe_attempts
  std::optional<std::string> healthcheck_path;
  std::optional<double> health_interval_seconds;
  std::optional<double> health_timeout_seconds;
  std::optional<long long> health_attempts;
  std::optional<double> boot_timeout_seconds;
  std::optional<std::string> health_path;
  std::optional<double> idle_seconds;
  std::optional<double> idle_minutes;
  std::optional<double> unshelve_minutes;
  std::optional<std::string> upstream_label;
  std::optional<std::string> host;
  std::optional<std::string> label;
  std::optional<RoutingMode> routing;
  bool provider_set = false;  // `provider` was read and valid
  // Where keys were written, for messages about the button as a whole.
  std::optional<Where> id_where;
  std::optional<Where> host_where;
  std::optional<Where> instance_where;
};

// What the schema's rows write into: the Config, and what is resolved after the whole file.
struct Draft {
  Config config;
  std::string yaml_file;
  std::optional<double> top_idle_minutes;
  std::optional<double> top_idle_seconds;
  std::optional<double> settled_poll_seconds;  // app.settled_poll_interval_seconds (see finish_app)
  bool app_probe_attempts_written = false;     // app.http_probe_attempts (its meaning, see finish_button)
  Secret control_token;
  Secret secret_key;
  Secret os_password;
  Secret os_app_secret;
  std::set<std::string> openstack_yaml_keys;  // OS_* variables do not override these
  std::string verify_path;                    // openstack.verify given as a CA bundle path
  Where root_where{1, 1};
  std::optional<Where> env_where;
  std::optional<Where> openstack_where;
  std::optional<Where> auth_url_where;
  std::optional<Where> caddy_where;
  std::optional<Where> ha_where;
  std::string first_openstack_button;  // "buttons[0]", the first backend that needs OpenStack
  Where first_openstack_where;
  Secret exoscale_api_key;
  Secret exoscale_api_secret;
  Secret etcd_password;
  std::string first_exoscale_button;  // "buttons[0]", the first backend on Exoscale
  Where first_exoscale_where;
  // The button being read, while the walker is inside buttons[i].
  BackendConfig* backend = nullptr;
  ButtonDraft* button = nullptr;
  // The webhook being read, while the walker is inside webhooks[i]; the secrets file's
  // [webhooks] entries by webhook name (config/webhooks.h).
  WebhookConfig* webhook = nullptr;
  std::map<std::string, Secret> webhook_secrets;
};

// One value read according to its schema row.
struct Value {
  std::string text;               // strings, secrets, choices, HOST:PORT, a CA bundle path
  double number = 0;              // numbers
  long long integer = 0;          // integers
  bool flag = false;              // booleans; for kBoolOrPath, false when `text` is a path
  std::size_t choice = 0;         // the index in the row's choices
  std::vector<std::string> list;  // lists of strings
  Where where;                    // where the value was written
  std::string path;               // its dotted path, such as "buttons[0].port"
};

class Reader {
 public:
  Reader(const ConfigInputs& inputs, Draft& draft);

  const std::string& yaml_file() const { return draft_.yaml_file; }
  const std::string& secrets_file() const { return secrets_file_; }
  Draft& draft() { return draft_; }

  void add(std::string file, int line, int column, std::string key, std::string message);
  void add_at(const Where& where, std::string key, std::string message);
  void add_at(const YAML::Node& node, std::string key, std::string message);
  void add_at(const Secret& secret, std::string message);
  // Orders issues as a reader meets them: YAML first, then the secrets file, then the
  // environment; by line within each, with issues that have no line last.
  std::vector<ConfigIssue> take_sorted_issues();

  static std::string describe(const YAML::Node& node, bool secret);
  bool expect_map(const YAML::Node& node, const std::string& path);

  // Visits each entry of a mapping once. A key is looked up as `pattern.key` in the schema: its
  // value is read by the row's type and handed to the row's store; a section is walked in
  // turn. Unknown keys are reported with the nearest known one, except in an open section
  // (openstack), whose other keys are kept. Afterwards a required key that is absent is
  // reported at the mapping.
  void walk(const YAML::Node& map, std::string_view pattern, const std::string& path);

  // A list section (buttons) as it was written, or nullopt when absent; walked later.
  const std::optional<YAML::Node>& buttons() const { return buttons_; }
  const std::string& buttons_path() const { return buttons_path_; }
  // The same for the webhooks (config/webhooks.h).
  const std::optional<YAML::Node>& webhooks() const { return webhooks_; }

 private:
  std::optional<Value> read(const schema::Key& key, const YAML::Node& node, const std::string& path);
  std::optional<std::string> get_string(const YAML::Node& node, const std::string& path, bool secret);
  std::optional<double> get_number(const YAML::Node& node, const std::string& path, const schema::Key& key);
  std::optional<long long> get_integer(const YAML::Node& node, const std::string& path,
                                       const schema::Key& key);
  bool in_range(double value, const YAML::Node& node, const std::string& path, const schema::Key& key);
  std::optional<std::vector<std::string>> get_strings(const YAML::Node& node, const std::string& path,
                                                      const schema::Key& key);
  void keep_openstack_extra(const std::string& key, const YAML::Node& value, const std::string& path,
                            std::span<const std::string_view> known);

  const ConfigInputs& inputs_;
  Draft& draft_;
  std::string secrets_file_;
  std::vector<ConfigIssue> issues_;
  std::optional<YAML::Node> buttons_;
  std::string buttons_path_;
  std::optional<YAML::Node> webhooks_;
};

}  // namespace unshelver::core::config_detail
