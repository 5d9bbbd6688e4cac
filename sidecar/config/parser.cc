// Reads config.yaml, the secrets INI text and the environment into one validated Config.
//
// Flow: yaml-cpp turns the text into a node tree (a syntax error becomes one issue carrying
// yaml-cpp's mark). The Loader then walks the tree top-down. Each mapping has a table of known
// keys; a key that is not in the table is reported, with the nearest known key when it looks
// like a typo. Values are checked for type and range where they are read, and every problem is
// collected instead of stopping at the first one, so that one run of `check-config` shows them
// all. Per-backend values that inherit from the top level (probe timings, idle timeout, upstream
// label, unshelve timeout) are resolved after the whole file has been read, because YAML key
// order must not matter. Secrets are merged last: YAML, then the secrets INI text, then
// UNSHELVER_* variables; OS_* variables only fill OpenStack fields that the YAML leaves empty.
//
// The parser is pure: it never reads files or the process environment, and it never throws
// (yaml-cpp's exceptions are caught here, at startup, as STYLE.md §2.5 asks).
#include "config/parser.h"

#include <ini.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <span>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

#include "base/text.h"
#include "config/secret_policy.h"

namespace unshelver::core {
namespace {

// The Python unshelver's minimum for its two shared secrets; shorter ones are guessable.
constexpr std::size_t kMinSecretLength = 16;
// In production the two secrets guard a public host: 32 random characters at least (128 bits and
// more from `openssl rand -hex 16` or longer).
constexpr std::size_t kMinProductionSecretLength = 32;
// Bounds that keep duration arithmetic far from overflow (about 31 years).
constexpr double kMaxSeconds = 1e9;
constexpr double kMaxMinutes = kMaxSeconds / 60;
// Long values are shortened in messages so that one bad line does not flood the terminal.
constexpr std::size_t kMaxShownValue = 40;
// Where issues about environment variables and the secrets text point when there is no path.
constexpr std::string_view kEnvironmentFile = "<environment>";
constexpr std::string_view kDefaultYamlFile = "<config>";
constexpr std::string_view kDefaultSecretsFile = "<secrets>";
// The Python unshelver's default Swift object prefix, kept so its configs mean the same here.
constexpr std::string_view kPythonSwiftPrefix = "unshelver-events";

constexpr std::string_view kProviderNames[] = {"openstack", "sim"};
constexpr std::string_view kErrorPolicyNames[] = {"wait", "retry"};
constexpr std::string_view kSleepActionNames[] = {"shelve", "stop", "suspend"};
constexpr std::string_view kEnvironmentNames[] = {"development", "production"};
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
constexpr std::string_view kSchemes[] = {"http", "https"};
constexpr std::string_view kInterfaces[] = {"public", "internal", "admin"};

// ---------------------------------------------------------------------------------------------
// Small text helpers.

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

std::string join_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return parent + "." + std::string(key);
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

// The known name closest to `name`, or "" when none is close enough to be a plausible typo.
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

bool is_identifier(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_';
  });
}

bool is_hostname(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

// "host:port" or "[v6]:port". Returns false when the shape or the port is wrong.
bool is_host_port(std::string_view text, bool allow_port_zero) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return false;
  }
  if (host.empty() || port.empty()) return false;
  int number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (error != std::errc() || end != port.data() + port.size()) return false;
  return number >= (allow_port_zero ? 0 : 1) && number <= 65535;
}

struct UrlParts {
  std::string scheme;
  std::string host;
};

// Splits the scheme and host out of an absolute URL; nullopt when it is not one.
std::optional<UrlParts> split_url(std::string_view url) {
  const std::size_t separator = url.find("://");
  if (separator == std::string_view::npos || separator == 0) return std::nullopt;
  UrlParts parts;
  parts.scheme = to_lower(url.substr(0, separator));
  std::string_view authority = url.substr(separator + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    parts.host = to_lower(authority.substr(1, close - 1));
  } else {
    parts.host = to_lower(authority.substr(0, authority.find(':')));
  }
  if (parts.host.empty()) return std::nullopt;
  return parts;
}

std::string with_leading_slash(std::string path) {
  if (!path.starts_with('/')) path.insert(path.begin(), '/');
  return path;
}

Millis millis_from_seconds(double seconds) {
  const auto ms = static_cast<long long>(std::llround(seconds * 1000));
  return Millis(seconds > 0 ? std::max(1LL, ms) : ms);
}

std::chrono::seconds whole_seconds(double seconds) {
  const auto rounded = static_cast<long long>(std::llround(seconds));
  return std::chrono::seconds(seconds > 0 ? std::max(1LL, rounded) : rounded);
}

// ---------------------------------------------------------------------------------------------
// Key tables. They drive both the walk and the "did you mean" suggestions.

constexpr std::string_view kRootKeys[] = {"app",
                                          "openstack",
                                          "buttons",
                                          "github",
                                          "activity_log_path",
                                          "idle_timeout_minutes",
                                          "idle_timeout_seconds",
                                          "idle_poll_interval_seconds",
                                          "caddy_upstream_label",
                                          "local_event_log",
                                          "swift_event_container",
                                          "swift_event_prefix",
                                          "notification_email",
                                          "listen",
                                          "state_dir",
                                          "templates_dir",
                                          "secrets_file",
                                          "log_level",
                                          "http",
                                          "activity",
                                          "events",
                                          "security",
                                          "caddy"};
constexpr std::string_view kAppKeys[] = {"title",
                                         "secret_key",
                                         "poll_interval_seconds",
                                         "http_probe_timeout",
                                         "http_probe_attempts",
                                         "control_token",
                                         "manual_shelve_path",
                                         "unshelve_timeout_minutes",
                                         "api_retry_attempts",
                                         "env"};
constexpr std::string_view kButtonKeys[] = {"id",
                                            "label",
                                            "description",
                                            "instance_name",
                                            "instance_id",
                                            "preferred_networks",
                                            "public_base_url",
                                            "url_scheme",
                                            "port",
                                            "healthcheck_path",
                                            "launch_path",
                                            "http_probe_attempts",
                                            "http_probe_interval_seconds",
                                            "verify_tls",
                                            "provider",
                                            "host",
                                            "upstream",
                                            "upstream_label",
                                            "idle_timeout_seconds",
                                            "idle_timeout_minutes",
                                            "unshelve_timeout_minutes",
                                            "on_error",
                                            "error_retry_seconds",
                                            "sleep_action",
                                            "health",
                                            "inflight",
                                            "wake_on_request",
                                            "sim"};
constexpr std::string_view kHealthKeys[] = {
    "path", "interval_seconds", "timeout_seconds", "successes_needed", "failures_allowed", "attempts"};
constexpr std::string_view kSimKeys[] = {"wake_seconds", "boot_seconds",      "sleep_seconds",
                                         "fail_wakes",   "wake_failure_rate", "failure_message",
                                         "start_awake",  "backend_listen"};
constexpr std::string_view kSecurityKeys[] = {"session_hours",        "login_burst",
                                              "login_refill_seconds", "wake_burst",
                                              "wake_refill_seconds",  "wake_cooldown_seconds"};
constexpr std::string_view kEventsKeys[] = {"rotate_bytes", "keep_files", "upload_concurrency",
                                            "upload_retry_max_seconds"};
constexpr std::string_view kCaddyKeys[] = {"manage",
                                           "admin",
                                           "integration",
                                           "template",
                                           "caddyfile",
                                           "snippet",
                                           "launcher_url",
                                           "bind",
                                           "http_port",
                                           "auto_https",
                                           "log_roll_size_mb",
                                           "log_roll_keep",
                                           "drift_check_seconds",
                                           "retry_max_seconds"};
constexpr std::string_view kCaddyIntegrations[] = {"full", "snippet"};
constexpr std::string_view kActivityKeys[] = {"ignore", "max_line_bytes", "stat_interval_seconds",
                                              "checkpoint_path"};
constexpr std::string_view kIgnoreKeys[] = {"user_agents", "user_agent_patterns", "paths", "methods"};
constexpr std::string_view kInflightKeys[] = {"enabled", "min_busy_seconds", "sample_interval_seconds"};
constexpr std::string_view kHttpKeys[] = {
    "max_url_bytes",          "max_header_bytes",     "max_header_count",      "max_body_bytes",
    "header_timeout_seconds", "idle_timeout_seconds", "shutdown_grace_seconds"};
constexpr std::string_view kIniSections[] = {"app", "openstack"};
constexpr std::string_view kIniAppKeys[] = {"control_token", "secret_key"};
constexpr std::string_view kIniOpenStackKeys[] = {"password", "application_credential_secret"};

// OpenStack's own variables, as the openstack CLI and openstacksdk read them.
struct OsVariable {
  std::string_view variable;
  std::string_view key;
  std::string OpenStackSettings::*field;
};
const OsVariable kOsVariables[] = {
    {"OS_AUTH_URL", "auth_url", &OpenStackSettings::auth_url},
    {"OS_USERNAME", "username", &OpenStackSettings::username},
    {"OS_PROJECT_NAME", "project_name", &OpenStackSettings::project_name},
    {"OS_PROJECT_ID", "project_id", &OpenStackSettings::project_id},
    {"OS_USER_DOMAIN_NAME", "user_domain_name", &OpenStackSettings::user_domain_name},
    {"OS_PROJECT_DOMAIN_NAME", "project_domain_name", &OpenStackSettings::project_domain_name},
    {"OS_REGION_NAME", "region_name", &OpenStackSettings::region_name},
    {"OS_INTERFACE", "interface", &OpenStackSettings::interface},
    {"OS_APPLICATION_CREDENTIAL_ID", "application_credential_id",
     &OpenStackSettings::application_credential_id},
    {"OS_CLOUD", "cloud", &OpenStackSettings::cloud},
    {"OS_CACERT", "cacert", &OpenStackSettings::cacert},
};

// Plain string fields of the openstack section (the secrets and `verify` are handled apart).
struct OsStringKey {
  std::string_view key;
  std::string OpenStackSettings::*field;
};
const OsStringKey kOsStringKeys[] = {
    {"auth_url", &OpenStackSettings::auth_url},
    {"username", &OpenStackSettings::username},
    {"project_name", &OpenStackSettings::project_name},
    {"project_id", &OpenStackSettings::project_id},
    {"user_domain_name", &OpenStackSettings::user_domain_name},
    {"project_domain_name", &OpenStackSettings::project_domain_name},
    {"application_credential_id", &OpenStackSettings::application_credential_id},
    {"region_name", &OpenStackSettings::region_name},
    {"cloud", &OpenStackSettings::cloud},
    {"cacert", &OpenStackSettings::cacert},
};

// yaml-cpp accepts a quoted scalar that is never closed: the value silently runs to the end of
// the file, and the only symptom is a later key that seems to be missing. This finds the first
// quoted scalar whose closing quote is absent from the text, so the error points at its line.
bool closed_quote(std::string_view text, std::size_t open) {
  const char quote_char = text[open];
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    if (quote_char == '"' && text[i] == '\\') {
      ++i;  // an escaped character, possibly a quote
    } else if (text[i] == quote_char) {
      // In single quotes, '' is an escaped quote.
      if (quote_char == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;
        continue;
      }
      return true;
    }
  }
  return false;
}

std::optional<YAML::Mark> find_unterminated_quote(const YAML::Node& node, std::string_view text,
                                                  int depth = 0) {
  // Deeper than any configuration goes; yaml-cpp has parsed it already, so this only bounds the walk.
  if (depth > 64 || !node.IsDefined()) return std::nullopt;
  if (node.IsScalar()) {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null() || mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= text.size()) {
      return std::nullopt;
    }
    const char first = text[static_cast<std::size_t>(mark.pos)];
    if ((first == '"' || first == '\'') && !closed_quote(text, static_cast<std::size_t>(mark.pos))) {
      return mark;
    }
    return std::nullopt;
  }
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) {
      if (auto found = find_unterminated_quote(item, text, depth + 1)) return found;
    }
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (auto found = find_unterminated_quote(it->first, text, depth + 1)) return found;
      if (auto found = find_unterminated_quote(it->second, text, depth + 1)) return found;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The secrets INI text. inih calls the handler once per `name = value` line; the handler only
// collects, so that no C++ exception can unwind through inih's C frames.

struct IniEntry {
  std::string section;
  std::string name;
  std::string value;
  int line = 0;
};

int on_ini_entry(void* user, const char* section, const char* name, const char* value) noexcept {
  try {
    static_cast<std::vector<IniEntry>*>(user)->push_back({section, name, value, 0});
    return 1;
  } catch (...) {
    return 0;
  }
}

// inih does not pass line numbers to the handler (Debian builds it without INI_HANDLER_LINENO),
// so this scan mirrors inih's line rules to find where each entry was written.
std::vector<IniEntry> scan_ini_lines(std::string_view text) {
  std::vector<IniEntry> found;
  std::string section;
  std::string previous_name;
  int line_number = 0;
  while (!text.empty()) {
    const std::size_t newline = text.find('\n');
    std::string_view raw = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    ++line_number;
    if (line_number == 1 && raw.starts_with("\xEF\xBB\xBF")) raw.remove_prefix(3);
    const bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    if (indented && !previous_name.empty()) {
      // inih appends an indented line to the previous value (a multi-line value).
      found.push_back({section, previous_name, "", line_number});
    } else if (line.front() == '[') {
      const std::size_t close = line.find(']');
      if (close != std::string_view::npos) {
        section = std::string(line.substr(1, close - 1));
        previous_name.clear();
      }
    } else if (const std::size_t equals = line.find_first_of("=:"); equals != std::string_view::npos) {
      previous_name = std::string(trim(line.substr(0, equals)));
      found.push_back({section, previous_name, "", line_number});
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------

// A secret and where its winning value came from, so that an issue can point there without
// ever printing the value.
struct Secret {
  std::string value;
  std::string file;
  int line = 0;
  int column = 0;
  std::string key;
};

class Loader {
 public:
  explicit Loader(const ConfigInputs& inputs)
      : inputs_(inputs),
        yaml_file_(inputs.yaml_path.empty() ? std::string(kDefaultYamlFile) : inputs.yaml_path),
        secrets_file_(inputs.secrets_path.empty() ? std::string(kDefaultSecretsFile) : inputs.secrets_path) {}

  ParsedConfig run() {
    try {
      load();
    } catch (const std::exception& error) {
      add(yaml_file_, 0, 0, "",
          std::string("internal error while reading the configuration: ") + error.what());
    } catch (...) {
      add(yaml_file_, 0, 0, "", "internal error while reading the configuration");
    }
    sort_issues();
    ParsedConfig parsed;
    parsed.config = std::move(config_);
    parsed.issues = std::move(issues_);
    return parsed;
  }

 private:
  using Handler = std::function<void(const YAML::Node& value, const std::string& path)>;
  using ExtraHandler =
      std::function<void(const std::string& key, const YAML::Node& value, const std::string& path)>;
  struct Field {
    std::string_view name;
    Handler handle;
  };
  struct Range {
    double min = 0;
    double max = kMaxSeconds;
    bool min_exclusive = false;  // "greater than min" rather than "at least min"
  };

  // The per-button values whose final value depends on other keys; read first, resolved later.
  struct ButtonDraft {
    std::optional<double> probe_interval_seconds;  // http_probe_interval_seconds
    std::optional<long long> probe_attempts;       // http_probe_attempts
    std::optional<std::string> healthcheck_path;
    std::optional<double> health_interval_seconds;
    std::optional<double> health_timeout_seconds;
    std::optional<long long> health_attempts;
    std::optional<std::string> health_path;
    std::optional<double> idle_seconds;
    std::optional<double> idle_minutes;
    std::optional<double> unshelve_minutes;
    std::optional<std::string> upstream_label;
    std::optional<std::string> host;
    std::optional<std::string> label;
    bool provider_invalid = false;  // an unknown provider: skip the provider's own checks
    // Where keys were written, for messages about the button as a whole. A default YAML::Node
    // counts as "defined" in yaml-cpp, so absence is an empty optional instead.
    std::optional<YAML::Node> id_node;
    std::optional<YAML::Node> host_node;
    std::optional<YAML::Node> instance_node;
  };

  // --- Issues ---------------------------------------------------------------------------------

  void add(std::string file, int line, int column, std::string key, std::string message) {
    issues_.push_back({std::move(file), line, column, std::move(key), std::move(message)});
  }

  void add_at(const YAML::Mark& mark, std::string key, std::string message) {
    const bool known = !mark.is_null() && mark.line >= 0;
    add(yaml_file_, known ? mark.line + 1 : 0, known ? mark.column + 1 : 0, std::move(key),
        std::move(message));
  }

  void add_at(const YAML::Node& node, std::string key, std::string message) {
    add_at(node.IsDefined() ? node.Mark() : YAML::Mark::null_mark(), std::move(key), std::move(message));
  }

  void add_at(const Secret& secret, std::string message) {
    add(secret.file, secret.line, secret.column, secret.key, std::move(message));
  }

  // Orders issues as a reader meets them: YAML first, then the secrets file, then the
  // environment; by line within each, with issues that have no line last.
  void sort_issues() {
    const auto rank = [this](const ConfigIssue& issue) {
      if (issue.file == yaml_file_) return 0;
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
  }

  // --- Typed readers. Each returns nullopt for an absent or null value (the default applies)
  // and for a wrong value (after recording the issue). -----------------------------------------

  static std::string describe(const YAML::Node& node, bool secret) {
    switch (node.Type()) {
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Map: return "a mapping";
      case YAML::NodeType::Scalar: return secret ? "a value that is not shown" : quote(node.Scalar());
      default: return "nothing";
    }
  }

  bool expect_map(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) return true;
    if (!node.IsNull()) add_at(node, path, "expected a mapping, got " + describe(node, false));
    return false;
  }

  std::optional<std::string> get_string(const YAML::Node& node, const std::string& path,
                                        bool secret = false) {
    if (!node.IsDefined() || node.IsNull()) return std::nullopt;
    if (!node.IsScalar()) {
      add_at(node, path, "expected a string, got " + describe(node, secret));
      return std::nullopt;
    }
    return node.Scalar();
  }

  void read_string(const YAML::Node& node, const std::string& path, std::string& out) {
    if (auto value = get_string(node, path)) out = std::move(*value);
  }

  void check_range(double value, const YAML::Node& node, const std::string& path, const Range& range,
                   bool& ok) {
    if (range.min_exclusive ? value <= range.min : value < range.min) {
      add_at(node, path,
             std::string(range.min_exclusive ? "must be greater than " : "must be at least ") +
                 format_number(range.min) + ", got " + format_number(value));
      ok = false;
    } else if (value > range.max) {
      add_at(node, path, "must be at most " + format_number(range.max) + ", got " + format_number(value));
      ok = false;
    }
  }

  static std::optional<double> parse_double(std::string_view text) {
    if (text.starts_with('+')) text.remove_prefix(1);
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
      return std::nullopt;
    }
    return value;
  }

  std::optional<double> get_number(const YAML::Node& node, const std::string& path, const Range& range) {
    if (!node.IsDefined() || node.IsNull()) return std::nullopt;
    const std::optional<double> value = node.IsScalar() ? parse_double(node.Scalar()) : std::nullopt;
    if (!value) {
      add_at(node, path, "expected a number, got " + describe(node, false));
      return std::nullopt;
    }
    bool ok = true;
    check_range(*value, node, path, range, ok);
    return ok ? value : std::nullopt;
  }

  std::optional<long long> get_integer(const YAML::Node& node, const std::string& path, long long min,
                                       long long max) {
    if (!node.IsDefined() || node.IsNull()) return std::nullopt;
    // YAML writers sometimes emit whole numbers as 5.0; they mean the integer.
    const std::optional<double> value = node.IsScalar() ? parse_double(node.Scalar()) : std::nullopt;
    if (!value || std::floor(*value) != *value || std::fabs(*value) > 9e15) {
      add_at(node, path, "expected an integer, got " + describe(node, false));
      return std::nullopt;
    }
    bool ok = true;
    check_range(*value, node, path, Range{static_cast<double>(min), static_cast<double>(max), false}, ok);
    if (!ok) return std::nullopt;
    return static_cast<long long>(*value);
  }

  static std::optional<bool> parse_bool(std::string_view text) {
    const std::string word = to_lower(text);
    if (word == "true" || word == "yes" || word == "on" || word == "1") return true;
    if (word == "false" || word == "no" || word == "off" || word == "0") return false;
    return std::nullopt;
  }

  std::optional<bool> get_bool(const YAML::Node& node, const std::string& path) {
    if (!node.IsDefined() || node.IsNull()) return std::nullopt;
    const std::optional<bool> value = node.IsScalar() ? parse_bool(node.Scalar()) : std::nullopt;
    if (!value) add_at(node, path, "expected true or false, got " + describe(node, false));
    return value;
  }

  // The index of the value in `allowed`.
  std::optional<std::size_t> get_choice(const YAML::Node& node, const std::string& path,
                                        std::span<const std::string_view> allowed) {
    const std::optional<std::string> text = get_string(node, path);
    if (!text) return std::nullopt;
    for (std::size_t i = 0; i < allowed.size(); ++i) {
      if (allowed[i] == *text) return i;
    }
    add_at(node, path, "must be one of " + list_names(allowed) + ", got " + quote(*text));
    return std::nullopt;
  }

  void read_host_port(const YAML::Node& node, const std::string& path, bool allow_port_zero,
                      std::string& out) {
    const std::optional<std::string> text = get_string(node, path);
    if (!text) return;
    if (!is_host_port(*text, allow_port_zero)) {
      add_at(node, path, "expected HOST:PORT (for example \"127.0.0.1:8080\"), got " + quote(*text));
      return;
    }
    out = *text;
  }

  void read_millis(const YAML::Node& node, const std::string& path, const Range& range, Millis& out) {
    if (auto seconds = get_number(node, path, range)) out = millis_from_seconds(*seconds);
  }

  template <typename Int>
  void read_count(const YAML::Node& node, const std::string& path, long long min, Int& out) {
    constexpr auto kMax = static_cast<long long>(
        std::min<unsigned long long>(std::numeric_limits<Int>::max(), 1'000'000'000ULL));
    if (auto value = get_integer(node, path, min, kMax)) out = static_cast<Int>(*value);
  }

  // Visits each entry of a mapping once: known keys go to their handler, others to `on_extra`
  // when given, else they are reported (with a suggestion when one is close).
  void walk(const YAML::Node& map, const std::string& path, std::span<const std::string_view> known,
            const std::vector<Field>& fields, const ExtraHandler& on_extra = nullptr) {
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key_node = it->first;
      const YAML::Node value = it->second;
      if (!key_node.IsScalar()) {
        add_at(key_node, path, "keys must be plain names, got " + describe(key_node, false));
        continue;
      }
      const std::string& key = key_node.Scalar();
      const std::string child = join_path(path, key);
      const int line = key_node.Mark().line + 1;
      config_.locations.emplace(child, KeyLocation{line, key_node.Mark().column + 1});
      if (const auto [first, inserted] = seen.emplace(key, line); !inserted) {
        add_at(key_node, child, "duplicate key (first set on line " + std::to_string(first->second) + ")");
        continue;
      }
      const auto field =
          std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.name == key; });
      if (field != fields.end()) {
        if (field->handle) field->handle(value, child);
        continue;
      }
      if (on_extra) {
        on_extra(key, value, child);
        continue;
      }
      std::string message = "unknown key";
      if (const std::string suggestion = nearest_name(key, known); !suggestion.empty()) {
        message += "; did you mean " + quote(suggestion) + "?";
      }
      add_at(key_node, child, std::move(message));
    }
  }

  // --- The sections ---------------------------------------------------------------------------

  void load() {
    config_.source_path = inputs_.yaml_path;
    config_.swift_event_prefix = kPythonSwiftPrefix;

    YAML::Node root;
    try {
      root = YAML::Load(inputs_.yaml_text);
    } catch (const YAML::Exception& error) {
      add_at(error.mark, "", "YAML syntax error: " + error.msg);
      return;
    }
    if (const auto open = find_unterminated_quote(root, inputs_.yaml_text)) {
      add_at(*open, "",
             "YAML syntax error: this quoted value is never closed (it runs to the end of the file)");
      return;
    }
    if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
      add_at(root, "", "expected a mapping of keys at the top level, got " + describe(root, false));
      return;
    }
    // An empty document has no mark; its issues point at line 1.
    if (root.IsMap()) root_mark_ = root.Mark();

    if (root.IsMap()) read_root(root);
    read_secrets_text();
    apply_environment();
    resolve_buttons();
    check_openstack();
    check_caddy();
    check_secret_lengths();
    if (config_.app.env == AppEnvironment::kProduction) check_production_secrets();
  }

  std::optional<YAML::Mark> caddy_mark_;

  void read_root(const YAML::Node& root) {
    const std::vector<Field> fields = {
        {"app", [this](const YAML::Node& v, const std::string& p) { read_app(v, p); }},
        {"openstack", [this](const YAML::Node& v, const std::string& p) { read_openstack(v, p); }},
        {"buttons",
         [this](const YAML::Node& v, const std::string& p) {
           buttons_node_ = v;
           buttons_path_ = p;
         }},
        // The Python unshelver's `main` branch signed users in with GitHub OAuth. Unshelver has
        // its own control token instead; the section is accepted so that those configs still
        // load, and its content is ignored.
        {"github", nullptr},
        {"activity_log_path",
         [this](const YAML::Node& v, const std::string& p) { read_string(v, p, config_.activity_log_path); }},
        {"idle_timeout_minutes",
         [this](const YAML::Node& v, const std::string& p) {
           top_idle_minutes_ = get_number(v, p, Range{5, kMaxMinutes});
         }},
        {"idle_timeout_seconds",
         [this](const YAML::Node& v, const std::string& p) {
           top_idle_seconds_ = get_number(v, p, Range{1, kMaxSeconds});
         }},
        {"idle_poll_interval_seconds",
         [this](const YAML::Node& v, const std::string& p) {
           if (auto s = get_number(v, p, Range{5, kMaxSeconds})) {
             config_.idle_poll_interval = whole_seconds(*s);
           }
         }},
        {"caddy_upstream_label",
         [this](const YAML::Node& v, const std::string& p) {
           if (auto label = get_label(v, p)) config_.caddy_upstream_label = *label;
         }},
        {"local_event_log",
         [this](const YAML::Node& v, const std::string& p) { read_string(v, p, config_.local_event_log); }},
        {"swift_event_container",
         [this](const YAML::Node& v, const std::string& p) {
           // null (or an empty name) disables the Swift mirror, as in the Python unshelver.
           if (auto name = get_string(v, p); name && !name->empty()) {
             config_.swift_event_container = *name;
           }
         }},
        {"swift_event_prefix",
         [this](const YAML::Node& v, const std::string& p) {
           read_string(v, p, config_.swift_event_prefix);
         }},
        {"notification_email",
         [this](const YAML::Node& v, const std::string& p) {
           if (auto email = get_string(v, p)) {
             if (!email->empty() && email->find('@') == std::string::npos) {
               add_at(v, p, "expected an email address, got " + quote(*email));
             } else {
               config_.notification_email = *email;
             }
           }
         }},
        {"listen",
         [this](const YAML::Node& v, const std::string& p) { read_host_port(v, p, false, config_.listen); }},
        {"state_dir",
         [this](const YAML::Node& v, const std::string& p) {
           if (auto dir = get_string(v, p)) {
             if (dir->empty()) {
               add_at(v, p, "must not be empty");
             } else {
               config_.state_dir = *dir;
             }
           }
         }},
        {"templates_dir",
         [this](const YAML::Node& v, const std::string& p) { read_string(v, p, config_.templates_dir); }},
        {"secrets_file",
         [this](const YAML::Node& v, const std::string& p) { read_string(v, p, config_.secrets_file); }},
        {"log_level",
         [this](const YAML::Node& v, const std::string& p) {
           if (auto i = get_choice(v, p, kLogLevels)) config_.log_level = kLogLevels[*i];
         }},
        {"http", [this](const YAML::Node& v, const std::string& p) { read_http(v, p); }},
        {"activity", [this](const YAML::Node& v, const std::string& p) { read_activity(v, p); }},
        {"events", [this](const YAML::Node& v, const std::string& p) { read_events(v, p); }},
        {"security", [this](const YAML::Node& v, const std::string& p) { read_security(v, p); }},
        {"caddy", [this](const YAML::Node& v, const std::string& p) { read_caddy(v, p); }},
    };
    walk(root, "", kRootKeys, fields);
  }

  // A label that ends up in an HTTP header value and a Caddyfile. The characters are those the
  // Caddy renderer accepts, and the labels of Unshelver's own fallback answers are reserved (a
  // backend labelled like them would count fallback answers as activity).
  std::optional<std::string> get_label(const YAML::Node& node, const std::string& path) {
    std::optional<std::string> label = get_string(node, path);
    if (!label) return std::nullopt;
    const bool ok = !label->empty() && std::all_of(label->begin(), label->end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
             std::string_view("._-:+=@/~").find(c) != std::string_view::npos;
    });
    if (!ok) {
      add_at(node, path, "must be a non-empty word of letters, digits and ._-:+=@/~, got " + quote(*label));
      return std::nullopt;
    }
    if (*label == "launcher" || *label == "launcher-fallback" || *label == "fallback-static") {
      add_at(node, path, quote(*label) + " is reserved for Unshelver's own fallback answers");
      return std::nullopt;
    }
    return label;
  }

  void read_app(const YAML::Node& node, const std::string& path) {
    if (!expect_map(node, path)) return;
    AppSettings& app = config_.app;
    const std::vector<Field> fields = {
        {"title", [&](const YAML::Node& v, const std::string& p) { read_string(v, p, app.title); }},
        {"secret_key", [this](const YAML::Node& v, const std::string& p) { read_secret(v, p, secret_key_); }},
        {"poll_interval_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, Range{0, kMaxSeconds, true}, app.poll_interval);
         }},
        {"http_probe_timeout",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, Range{0, kMaxSeconds, true}, app.http_probe_timeout);
         }},
        {"http_probe_attempts",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, app.http_probe_attempts); }},
        {"control_token",
         [this](const YAML::Node& v, const std::string& p) { read_secret(v, p, control_token_); }},
        {"manual_shelve_path",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto route = get_string(v, p)) {
             // The Python unshelver's pattern: the path becomes a route of its own.
             const bool ok = route->size() > 1 && route->front() == '/' &&
                             std::all_of(route->begin(), route->end(), [](unsigned char c) {
                               return std::isalnum(c) || c == '/' || c == '-' || c == '_';
                             });
             if (ok) {
               app.manual_shelve_path = *route;
             } else {
               add_at(v, p,
                      "must start with '/' and contain only letters, digits, '/', '-' and "
                      "'_', got " +
                          quote(*route));
             }
           }
         }},
        {"unshelve_timeout_minutes",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto minutes = get_integer(v, p, 1, static_cast<long long>(kMaxMinutes))) {
             app.unshelve_timeout = std::chrono::minutes(*minutes);
           }
         }},
        {"api_retry_attempts",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 0, app.api_retry_attempts); }},
        {"env",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto i = get_choice(v, p, kEnvironmentNames)) {
             app.env = *i == 0 ? AppEnvironment::kDevelopment : AppEnvironment::kProduction;
             env_mark_ = v.Mark();
           }
         }},
    };
    walk(node, path, kAppKeys, fields);
  }

  void read_secret(const YAML::Node& node, const std::string& path, Secret& out) {
    std::optional<std::string> value = get_string(node, path, /*secret=*/true);
    if (!value || value->empty()) return;
    const YAML::Mark mark = node.Mark();
    out = Secret{std::move(*value), yaml_file_, mark.line + 1, mark.column + 1, path};
  }

  void read_openstack(const YAML::Node& node, const std::string& path) {
    if (!expect_map(node, path)) return;
    OpenStackSettings& os = config_.openstack;
    os.configured = true;
    openstack_mark_ = node.Mark();
    std::vector<Field> fields;
    for (const OsStringKey& entry : kOsStringKeys) {
      fields.push_back({entry.key, [this, &os, entry](const YAML::Node& v, const std::string& p) {
                          if (auto text = get_string(v, p); text && !text->empty()) {
                            os.*entry.field = *text;
                            openstack_yaml_keys_.insert(std::string(entry.key));
                          }
                        }});
    }
    fields.push_back(
        {"password", [this](const YAML::Node& v, const std::string& p) { read_secret(v, p, os_password_); }});
    fields.push_back({"api_timeout_seconds", [this, &os](const YAML::Node& v, const std::string& p) {
                        read_millis(v, p, Range{0.1, kMaxSeconds, false}, os.api_timeout);
                      }});
    fields.push_back({"application_credential_secret", [this](const YAML::Node& v, const std::string& p) {
                        read_secret(v, p, os_app_secret_);
                      }});
    fields.push_back({"interface", [this, &os](const YAML::Node& v, const std::string& p) {
                        if (auto text = get_string(v, p); text && !text->empty()) {
                          if (auto normal = normal_interface(*text)) {
                            os.interface = *normal;
                            openstack_yaml_keys_.insert("interface");
                          } else {
                            add_at(v, p,
                                   "must be one of " + list_names(kInterfaces) + ", got " + quote(*text));
                          }
                        }
                      }});
    // openstacksdk's `verify` is either a boolean or the path of a CA bundle.
    fields.push_back({"verify", [this, &os](const YAML::Node& v, const std::string& p) {
                        if (v.IsNull()) return;
                        if (!v.IsScalar()) {
                          add_at(v, p, "expected true, false or a CA bundle path, got " + describe(v, false));
                        } else if (auto flag = parse_bool(v.Scalar())) {
                          os.verify = *flag;
                        } else {
                          os.verify = true;
                          verify_path_ = v.Scalar();
                        }
                      }});
    std::vector<std::string_view> known;
    known.reserve(fields.size());
    for (const Field& field : fields) known.push_back(field.name);
    // Keys the Python unshelver passed through to openstacksdk are kept rather than rejected,
    // except near-misses of our own keys (one edit away, such as `pasword`): those are typos
    // that would otherwise surface later as "missing password".
    const ExtraHandler extra = [this, &os, &known](const std::string& key, const YAML::Node& v,
                                                   const std::string& p) {
      if (const std::string suggestion = nearest_name(key, known);
          !suggestion.empty() && edit_distance(to_lower(key), suggestion) <= 1) {
        add_at(v, p,
               "unknown key; did you mean " + quote(suggestion) +
                   "? (other unknown keys here are passed to openstacksdk)");
        return;
      }
      if (v.IsScalar()) {
        os.extra[key] = v.Scalar();
      } else if (!v.IsNull()) {
        YAML::Emitter out;
        out << YAML::Flow << v;
        os.extra[key] = out.c_str();
      } else {
        os.extra[key] = "";
      }
    };
    walk(node, path, known, fields, extra);
    if (os.cacert.empty() && !verify_path_.empty()) os.cacert = verify_path_;
    if (!os.auth_url.empty() && !os.auth_url.starts_with("http://") && !os.auth_url.starts_with("https://")) {
      add_at(node["auth_url"], join_path(path, "auth_url"),
             "must be an http:// or https:// URL, got " + quote(os.auth_url));
    }
  }

  static std::optional<std::string> normal_interface(std::string_view text) {
    // openstacksdk also accepts the Keystone v2 spellings publicURL, internalURL, adminURL.
    std::string word = to_lower(text);
    if (word.ends_with("url")) word.resize(word.size() - 3);
    for (const std::string_view name : kInterfaces) {
      if (name == word) return std::string(name);
    }
    return std::nullopt;
  }

  void read_http(const YAML::Node& node, const std::string& path) {
    if (!expect_map(node, path)) return;
    HttpLimits& http = config_.http;
    const Range positive{0, kMaxSeconds, true};
    const std::vector<Field> fields = {
        {"max_url_bytes",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, http.max_url_bytes); }},
        {"max_header_bytes",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, http.max_header_bytes); }},
        {"max_header_count",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, http.max_header_count); }},
        {"max_body_bytes",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 0, http.max_body_bytes); }},
        {"header_timeout_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, positive, http.header_timeout);
         }},
        {"idle_timeout_seconds",
         [&](const YAML::Node& v, const std::string& p) { read_millis(v, p, positive, http.idle_timeout); }},
        {"shutdown_grace_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, Range{0, kMaxSeconds}, http.shutdown_grace);
         }},
    };
    walk(node, path, kHttpKeys, fields);
  }

  // Managing Caddy needs a site address for the launcher and for every backend.
  void check_caddy() {
    if (!config_.caddy.manage) return;
    const YAML::Mark mark = caddy_mark_ ? *caddy_mark_ : root_mark_;
    if (config_.caddy.launcher_url.empty()) {
      add_at(mark, "caddy.launcher_url", "is required with caddy.manage: true (the launcher's site address)");
    }
    for (std::size_t i = 0; i < config_.backends.size(); ++i) {
      const BackendConfig& backend = config_.backends[i];
      if (backend.public_base_url.empty()) {
        add_at(mark, "buttons[" + std::to_string(i) + "].public_base_url",
               "is required with caddy.manage: true (the backend's site address in Caddy)");
      }
    }
  }

  void read_caddy(const YAML::Node& node, const std::string& path) {
    if (!expect_map(node, path)) return;
    caddy_mark_ = node.Mark();
    CaddySettings& caddy = config_.caddy;
    const Range positive{0, kMaxSeconds, true};
    auto absolute_path = [&](const YAML::Node& v, const std::string& p, std::string& out) {
      if (auto text = get_string(v, p)) {
        // Caddy resolves relative imports against its own working directory (caddy-facts §5a).
        if (!text->empty() && text->front() != '/') {
          add_at(v, p, "must be an absolute path, got " + quote(*text));
        } else {
          out = *text;
        }
      }
    };
    const std::vector<Field> fields = {
        {"manage",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto flag = get_bool(v, p)) caddy.manage = *flag;
         }},
        {"admin",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto url = get_string(v, p)) {
             auto parts = split_url(*url);
             if (!parts || parts->scheme != "http") {
               add_at(v, p, "expected the admin API's URL such as http://127.0.0.1:2019, got " + quote(*url));
             } else {
               caddy.admin = *url;
             }
           }
         }},
        {"integration",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto i = get_choice(v, p, kCaddyIntegrations)) {
             caddy.integration = *i == 0 ? CaddyIntegration::kFull : CaddyIntegration::kSnippet;
           }
         }},
        {"template",
         [&](const YAML::Node& v, const std::string& p) { read_string(v, p, caddy.template_path); }},
        {"caddyfile",
         [&](const YAML::Node& v, const std::string& p) { absolute_path(v, p, caddy.caddyfile); }},
        {"snippet", [&](const YAML::Node& v, const std::string& p) { absolute_path(v, p, caddy.snippet); }},
        {"launcher_url",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto url = get_string(v, p)) {
             auto parts = split_url(*url);
             if (!parts || (parts->scheme != "http" && parts->scheme != "https")) {
               add_at(v, p, "expected a URL such as https://gpu.example.org, got " + quote(*url));
             } else {
               caddy.launcher_url = *url;
             }
           }
         }},
        {"bind",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto text = get_string(v, p)) {
             if (!text->empty() && !is_hostname(*text)) {
               add_at(v, p, "expected an IP address or host name, got " + quote(*text));
             } else {
               caddy.bind = *text;
             }
           }
         }},
        {"http_port",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto port = get_integer(v, p, 0, 65535)) caddy.http_port = static_cast<int>(*port);
         }},
        {"auto_https",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto flag = get_bool(v, p)) caddy.auto_https = *flag;
         }},
        {"log_roll_size_mb",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto size = get_integer(v, p, 1, 100'000)) caddy.log_roll_size_mb = static_cast<int>(*size);
         }},
        {"log_roll_keep",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto keep = get_integer(v, p, 0, 100'000)) caddy.log_roll_keep = static_cast<int>(*keep);
         }},
        {"drift_check_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, positive, caddy.drift_check_interval);
         }},
        {"retry_max_seconds",
         [&](const YAML::Node& v, const std::string& p) { read_millis(v, p, positive, caddy.retry_max); }},
    };
    walk(node, path, kCaddyKeys, fields);
  }

  void read_activity(const YAML::Node& node, const std::string& path) {
    if (!expect_map(node, path)) return;
    ActivitySettings& activity = config_.activity;
    const std::vector<Field> fields = {
        {"ignore", [&](const YAML::Node& v, const std::string& p) { read_ignore(v, p, activity.ignore); }},
        {"max_line_bytes",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 256, activity.max_line_bytes); }},
        {"stat_interval_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, Range{0, kMaxSeconds, true}, activity.stat_interval);
         }},
        {"checkpoint_path",
         [&](const YAML::Node& v, const std::string& p) { read_string(v, p, activity.checkpoint_path); }},
    };
    walk(node, path, kActivityKeys, fields);
  }

  void read_events(const YAML::Node& node, const std::string& path) {
    if (!expect_map(node, path)) return;
    EventSettings& events = config_.events;
    const std::vector<Field> fields = {
        // Below 4 KiB a file would rotate with every few events.
        {"rotate_bytes",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 4096, events.rotate_bytes); }},
        {"keep_files",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, events.keep_files); }},
        {"upload_concurrency",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, events.upload_concurrency); }},
        {"upload_retry_max_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, Range{0, kMaxSeconds, true}, events.upload_retry_max);
         }},
    };
    walk(node, path, kEventsKeys, fields);
  }

  void read_security(const YAML::Node& node, const std::string& path) {
    if (!expect_map(node, path)) return;
    SecuritySettings& security = config_.security;
    const std::vector<Field> fields = {
        {"session_hours",
         [&](const YAML::Node& v, const std::string& p) {
           // A session longer than a month is a token that never expires in practice.
           if (auto hours = get_integer(v, p, 1, 24 * 31))
             security.session_lifetime = std::chrono::hours(*hours);
         }},
        {"login_burst",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, security.login_burst); }},
        {"login_refill_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, Range{0, kMaxSeconds, true}, security.login_refill);
         }},
        {"wake_burst",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, security.wake_burst); }},
        {"wake_refill_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, Range{0, kMaxSeconds, true}, security.wake_refill);
         }},
        {"wake_cooldown_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, Range{0, kMaxSeconds}, security.wake_cooldown);
         }},
    };
    walk(node, path, kSecurityKeys, fields);
  }

  void read_ignore(const YAML::Node& node, const std::string& path, IgnoreRules& rules) {
    if (!expect_map(node, path)) return;
    const std::vector<Field> fields = {
        // An explicit list replaces the default one, so that a user can also empty it.
        {"user_agents",
         [&](const YAML::Node& v, const std::string& p) {
           rules.user_agents.clear();
           read_string_list(v, p, rules.user_agents);
         }},
        {"user_agent_patterns",
         [&](const YAML::Node& v, const std::string& p) {
           read_string_list(v, p, rules.user_agent_patterns);
           for (std::size_t i = 0; i < rules.user_agent_patterns.size(); ++i) {
             try {
               const std::regex compiled(rules.user_agent_patterns[i],
                                         std::regex::ECMAScript | std::regex::icase);
               static_cast<void>(compiled);
             } catch (const std::regex_error& error) {
               add_at(v.IsSequence() && i < v.size() ? v[i] : v, p + "[" + std::to_string(i) + "]",
                      "not a valid regular expression: " + std::string(error.what()));
             }
           }
         }},
        {"paths", [&](const YAML::Node& v, const std::string& p) { read_string_list(v, p, rules.paths); }},
        {"methods",
         [&](const YAML::Node& v, const std::string& p) {
           read_string_list(v, p, rules.methods);
           for (std::string& method : rules.methods) {
             std::transform(method.begin(), method.end(), method.begin(),
                            [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
           }
         }},
    };
    walk(node, path, kIgnoreKeys, fields);
  }

  void read_inflight(const YAML::Node& node, const std::string& path, InflightSettings& inflight) {
    if (!expect_map(node, path)) return;
    const Range positive{0, kMaxSeconds, true};
    const std::vector<Field> fields = {
        {"enabled",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto flag = get_bool(v, p)) inflight.enabled = *flag;
         }},
        {"min_busy_seconds",
         [&](const YAML::Node& v, const std::string& p) { read_millis(v, p, positive, inflight.min_busy); }},
        {"sample_interval_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           read_millis(v, p, positive, inflight.sample_interval);
         }},
    };
    walk(node, path, kInflightKeys, fields);
  }

  // --- Buttons (backends) ---------------------------------------------------------------------

  void resolve_buttons() {
    const std::string path = buttons_path_.empty() ? "buttons" : buttons_path_;
    if (!inputs_.backends_required && (!buttons_node_ || buttons_node_->IsNull())) return;
    if (!buttons_node_ || buttons_node_->IsNull()) {
      // A null value has no useful mark of its own; the parent mapping's line is the place.
      add_at(root_mark_, path, "missing required key: at least one button (backend) is required");
      return;
    }
    const YAML::Node& buttons = *buttons_node_;
    if (!buttons.IsSequence()) {
      add_at(buttons, path, "expected a list of buttons, got " + describe(buttons, false));
      return;
    }
    if (buttons.size() == 0) {
      add_at(buttons, path, "at least one button (backend) is required");
      return;
    }
    std::map<std::string, std::pair<std::string, int>> ids;        // id -> (path, line)
    std::map<std::string, std::pair<std::string, int>> instances;  // openstack VM -> (path, line)
    std::map<std::string, std::pair<std::string, int>> hosts;      // host -> (path, line)
    for (std::size_t i = 0; i < buttons.size(); ++i) {
      const YAML::Node node = buttons[i];
      const std::string button_path = path + "[" + std::to_string(i) + "]";
      if (!node.IsMap()) {
        add_at(node, button_path, "expected a mapping with the button's keys, got " + describe(node, false));
        continue;
      }
      BackendConfig backend;
      ButtonDraft draft;
      read_button(node, button_path, backend, draft);
      finish_button(node, button_path, backend, draft);

      const auto check_unique = [&](auto& seen, const std::string& value,
                                    const std::optional<YAML::Node>& where, const std::string& key,
                                    const std::string& what) {
        if (value.empty()) return;
        const YAML::Node& at = where ? *where : node;
        const int line = at.Mark().line + 1;
        const auto [first, inserted] = seen.emplace(value, std::make_pair(button_path, line));
        if (!inserted) {
          std::string message = "duplicate ";
          message.append(what).append(" ").append(quote(value)).append(" (also used by ");
          message.append(first->second.first).append(" on line ");
          message.append(std::to_string(first->second.second)).append(")");
          std::string issue_key = button_path;
          issue_key.append(".").append(key);
          add_at(at, std::move(issue_key), std::move(message));
        }
      };
      check_unique(ids, backend.name, draft.id_node, "id", "button id");
      const bool openstack = backend.provider == ProviderKind::kOpenStack && !draft.provider_invalid;
      if (openstack) {
        const bool by_id = !backend.instance_id.empty();
        check_unique(instances, by_id ? "id:" + backend.instance_id : backend.instance_name,
                     draft.instance_node, by_id ? "instance_id" : "instance_name", "instance");
      }
      check_unique(hosts, backend.host, draft.host_node ? draft.host_node : draft.id_node, "host", "host");
      if (openstack && first_openstack_button_.empty()) {
        first_openstack_button_ = button_path;
        first_openstack_mark_ = node.Mark();
      }
      config_.backends.push_back(std::move(backend));
    }
  }

  void read_button(const YAML::Node& node, const std::string& path, BackendConfig& backend,
                   ButtonDraft& draft) {
    const Range positive{0, kMaxSeconds, true};
    const std::vector<Field> fields = {
        {"id",
         [&](const YAML::Node& v, const std::string& p) {
           if (!v.IsNull()) draft.id_node = v;
           if (auto id = get_string(v, p)) {
             if (!is_identifier(*id)) {
               add_at(v, p,
                      "must contain only letters, digits, '-' and '_' (it is used in URLs), "
                      "got " +
                          quote(*id));
             } else {
               backend.name = *id;
             }
           }
         }},
        {"label", [&](const YAML::Node& v, const std::string& p) { draft.label = get_string(v, p); }},
        {"description",
         [&](const YAML::Node& v, const std::string& p) { read_string(v, p, backend.description); }},
        {"instance_name",
         [&](const YAML::Node& v, const std::string& p) {
           read_string(v, p, backend.instance_name);
           if (!draft.instance_node) draft.instance_node = v;
         }},
        {"instance_id",
         [&](const YAML::Node& v, const std::string& p) {
           read_string(v, p, backend.instance_id);
           draft.instance_node = v;
         }},
        {"preferred_networks",
         [&](const YAML::Node& v, const std::string& p) {
           read_string_list(v, p, backend.preferred_networks);
         }},
        {"public_base_url",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto url = get_string(v, p); url && !url->empty()) {
             const auto parts = split_url(*url);
             if (!parts || (parts->scheme != "http" && parts->scheme != "https")) {
               add_at(v, p, "expected an http:// or https:// URL with a host, got " + quote(*url));
             } else {
               backend.public_base_url = *url;
               if (!draft.host) {
                 draft.host = parts->host;
                 if (!draft.host_node) draft.host_node = v;
               }
             }
           }
         }},
        {"url_scheme",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto i = get_choice(v, p, kSchemes)) backend.url_scheme = kSchemes[*i];
         }},
        {"port",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto port = get_integer(v, p, 1, 65535)) backend.port = static_cast<int>(*port);
         }},
        {"healthcheck_path",
         [&](const YAML::Node& v, const std::string& p) { draft.healthcheck_path = get_string(v, p); }},
        {"launch_path",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto launch = get_string(v, p)) backend.launch_path = with_leading_slash(*launch);
         }},
        {"http_probe_attempts",
         [&](const YAML::Node& v, const std::string& p) {
           draft.probe_attempts = get_integer(v, p, 1, 1'000'000);
         }},
        {"http_probe_interval_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           draft.probe_interval_seconds = get_number(v, p, positive);
         }},
        {"verify_tls",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto flag = get_bool(v, p)) backend.verify_tls = *flag;
         }},
        {"provider",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto i = get_choice(v, p, kProviderNames)) {
             backend.provider = *i == 0 ? ProviderKind::kOpenStack : ProviderKind::kSim;
           } else if (!v.IsNull()) {
             draft.provider_invalid = true;
           }
         }},
        {"host",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto host = get_string(v, p); host && !host->empty()) {
             if (!is_hostname(*host)) {
               add_at(v, p,
                      "expected a bare host name such as chat.example.org (no scheme, port "
                      "or path), got " +
                          quote(*host));
             } else {
               draft.host = to_lower(*host);
               draft.host_node = v;
             }
           }
         }},
        {"upstream",
         [&](const YAML::Node& v, const std::string& p) { read_host_port(v, p, false, backend.upstream); }},
        {"upstream_label",
         [&](const YAML::Node& v, const std::string& p) { draft.upstream_label = get_label(v, p); }},
        {"idle_timeout_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           draft.idle_seconds = get_number(v, p, Range{1, kMaxSeconds});
         }},
        {"idle_timeout_minutes",
         [&](const YAML::Node& v, const std::string& p) {
           draft.idle_minutes = get_number(v, p, Range{5, kMaxMinutes});
         }},
        {"unshelve_timeout_minutes",
         [&](const YAML::Node& v, const std::string& p) {
           draft.unshelve_minutes = get_number(v, p, Range{0, kMaxMinutes, true});
         }},
        {"sleep_action",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto i = get_choice(v, p, kSleepActionNames)) {
             constexpr SleepAction kActions[] = {SleepAction::kShelve, SleepAction::kStop,
                                                 SleepAction::kSuspend};
             backend.sleep_action = kActions[*i];
           }
         }},
        {"on_error",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto i = get_choice(v, p, kErrorPolicyNames)) {
             backend.on_error = *i == 0 ? ErrorPolicy::kWaitForAdmin : ErrorPolicy::kRetry;
           }
         }},
        {"error_retry_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto s = get_number(v, p, positive)) backend.error_retry_after = whole_seconds(*s);
         }},
        {"health",
         [&](const YAML::Node& v, const std::string& p) { read_health(v, p, backend.health, draft); }},
        {"inflight",
         [&](const YAML::Node& v, const std::string& p) { read_inflight(v, p, backend.inflight); }},
        {"wake_on_request",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto flag = get_bool(v, p)) backend.wake_on_request = *flag;
         }},
        {"sim", [&](const YAML::Node& v, const std::string& p) { read_sim(v, p, backend.sim); }},
    };
    walk(node, path, kButtonKeys, fields);
  }

  void read_health(const YAML::Node& node, const std::string& path, HealthSettings& health,
                   ButtonDraft& draft) {
    if (!expect_map(node, path)) return;
    const Range positive{0, kMaxSeconds, true};
    const std::vector<Field> fields = {
        {"path", [&](const YAML::Node& v, const std::string& p) { draft.health_path = get_string(v, p); }},
        {"interval_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           draft.health_interval_seconds = get_number(v, p, positive);
         }},
        {"timeout_seconds",
         [&](const YAML::Node& v, const std::string& p) {
           draft.health_timeout_seconds = get_number(v, p, positive);
         }},
        {"successes_needed",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, health.successes_needed); }},
        {"failures_allowed",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 1, health.failures_allowed); }},
        {"attempts", [&](const YAML::Node& v,
                         const std::string& p) { draft.health_attempts = get_integer(v, p, 0, 1'000'000); }},
    };
    walk(node, path, kHealthKeys, fields);
  }

  void read_sim(const YAML::Node& node, const std::string& path, SimSettings& sim) {
    if (!expect_map(node, path)) return;
    const Range non_negative{0, kMaxSeconds};
    const std::vector<Field> fields = {
        {"wake_seconds", [&](const YAML::Node& v,
                             const std::string& p) { read_millis(v, p, non_negative, sim.wake_duration); }},
        {"boot_seconds", [&](const YAML::Node& v,
                             const std::string& p) { read_millis(v, p, non_negative, sim.boot_duration); }},
        {"sleep_seconds", [&](const YAML::Node& v,
                              const std::string& p) { read_millis(v, p, non_negative, sim.sleep_duration); }},
        {"fail_wakes",
         [&](const YAML::Node& v, const std::string& p) { read_count(v, p, 0, sim.fail_wakes); }},
        {"wake_failure_rate",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto rate = get_number(v, p, Range{0, 1})) sim.wake_failure_rate = *rate;
         }},
        {"failure_message",
         [&](const YAML::Node& v, const std::string& p) { read_string(v, p, sim.failure_message); }},
        {"start_awake",
         [&](const YAML::Node& v, const std::string& p) {
           if (auto flag = get_bool(v, p)) sim.start_awake = *flag;
         }},
        {"backend_listen",
         [&](const YAML::Node& v, const std::string& p) { read_host_port(v, p, true, sim.backend_listen); }},
    };
    walk(node, path, kSimKeys, fields);
  }

  void read_string_list(const YAML::Node& node, const std::string& path, std::vector<std::string>& out) {
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      add_at(node, path, "expected a list of strings, got " + describe(node, false));
      return;
    }
    out.clear();
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      if (auto item = get_string(node[i], item_path)) out.push_back(*item);
    }
  }

  // Applies the precedence rules: the button's own key, then the top level (or app), then the
  // built-in default.
  void finish_button(const YAML::Node& node, const std::string& path, BackendConfig& backend,
                     ButtonDraft& draft) {
    if (!draft.id_node) {
      add_at(node, path + ".id", "missing required key `id`");
    }
    backend.label = draft.label && !draft.label->empty() ? *draft.label : backend.name;
    if (backend.provider == ProviderKind::kOpenStack && !draft.provider_invalid &&
        backend.instance_name.empty() && backend.instance_id.empty()) {
      add_at(node, path + ".instance_name",
             "missing required key `instance_name` (or `instance_id`) for provider \"openstack\"");
    }
    if (draft.host) backend.host = *draft.host;

    const AppSettings& app = config_.app;
    HealthSettings& health = backend.health;
    if (draft.health_path) {
      health.path = with_leading_slash(*draft.health_path);
    } else if (draft.healthcheck_path) {
      health.path = with_leading_slash(*draft.healthcheck_path);
    }
    if (draft.health_interval_seconds) {
      health.interval = millis_from_seconds(*draft.health_interval_seconds);
    } else if (draft.probe_interval_seconds) {
      health.interval = millis_from_seconds(*draft.probe_interval_seconds);
    } else {
      health.interval = app.poll_interval;
    }
    health.timeout = draft.health_timeout_seconds ? millis_from_seconds(*draft.health_timeout_seconds)
                                                  : app.http_probe_timeout;
    health.attempts = static_cast<int>(draft.health_attempts  ? *draft.health_attempts
                                       : draft.probe_attempts ? *draft.probe_attempts
                                                              : app.http_probe_attempts);

    if (draft.idle_seconds) {
      backend.idle_timeout = whole_seconds(*draft.idle_seconds);
    } else if (draft.idle_minutes) {
      backend.idle_timeout = whole_seconds(*draft.idle_minutes * 60);
    } else if (top_idle_seconds_) {
      backend.idle_timeout = whole_seconds(*top_idle_seconds_);
    } else if (top_idle_minutes_) {
      backend.idle_timeout = whole_seconds(*top_idle_minutes_ * 60);
    } else {
      backend.idle_timeout = std::chrono::minutes(60);
    }
    backend.upstream_label = draft.upstream_label ? *draft.upstream_label : config_.caddy_upstream_label;
    backend.unshelve_timeout = draft.unshelve_minutes
                                   ? whole_seconds(*draft.unshelve_minutes * 60)
                                   : std::chrono::duration_cast<std::chrono::seconds>(app.unshelve_timeout);
  }

  // --- Secrets and the environment ------------------------------------------------------------

  void read_secrets_text() {
    if (inputs_.secrets_text.empty()) return;
    // inih reads at most INI_MAX_LINE - 1 bytes per line (newline included) and treats the rest
    // as a new line, which would silently cut a long secret in two.
    {
      std::string_view text = inputs_.secrets_text;
      int line_number = 0;
      bool too_long = false;
      while (!text.empty()) {
        ++line_number;
        const std::size_t newline = text.find('\n');
        const std::string_view line = text.substr(0, newline);
        text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
        if (line.size() + 1 >= static_cast<std::size_t>(INI_MAX_LINE) - 1) {
          add(secrets_file_, line_number, 0, "",
              "line is too long (at most " + std::to_string(INI_MAX_LINE - 3) + " characters)");
          too_long = true;
        }
      }
      if (too_long) return;
    }
    std::vector<IniEntry> entries;
    const int error_line = ini_parse_string(inputs_.secrets_text.c_str(), on_ini_entry, &entries);
    if (error_line > 0) {
      // The line's text is not quoted: it may hold a secret.
      add(secrets_file_, error_line, 0, "", "INI syntax error (expected `[section]` or `name = value`)");
    } else if (error_line < 0) {
      add(secrets_file_, 0, 0, "", "could not parse the secrets (out of memory)");
      return;
    }
    // Match each entry to its line: the n-th (section, name) entry is the n-th such line.
    const std::vector<IniEntry> lines = scan_ini_lines(inputs_.secrets_text);
    std::map<std::pair<std::string, std::string>, std::size_t> next_index;
    std::map<std::pair<std::string, std::string>, int> first_line;
    for (IniEntry& entry : entries) {
      const auto id = std::make_pair(entry.section, entry.name);
      std::size_t& skip = next_index[id];
      std::size_t seen = 0;
      for (const IniEntry& line : lines) {
        if (line.section == entry.section && line.name == entry.name && seen++ == skip) {
          entry.line = line.line;
          break;
        }
      }
      ++skip;
      const std::string key = entry.section.empty() ? entry.name : entry.section + "." + entry.name;
      if (const auto [first, inserted] = first_line.emplace(id, entry.line); !inserted) {
        add(secrets_file_, entry.line, 0, key,
            "set more than once (first on line " + std::to_string(first->second) +
                "); note that an indented line continues the previous value");
        continue;
      }
      apply_ini_entry(entry, key);
    }
  }

  void apply_ini_entry(const IniEntry& entry, const std::string& key) {
    const auto unknown = [&](std::string_view what, std::span<const std::string_view> known) {
      std::string message = "unknown " + std::string(what);
      if (const std::string suggestion = nearest_name(what == "section" ? entry.section : entry.name, known);
          !suggestion.empty()) {
        message += "; did you mean " + quote(suggestion) + "?";
      }
      add(secrets_file_, entry.line, 0, key, message);
    };
    Secret* target = nullptr;
    if (entry.section == "app") {
      if (entry.name == "control_token") target = &control_token_;
      if (entry.name == "secret_key") target = &secret_key_;
      if (!target) return unknown("key", kIniAppKeys);
    } else if (entry.section == "openstack") {
      if (entry.name == "password") target = &os_password_;
      if (entry.name == "application_credential_secret") target = &os_app_secret_;
      if (!target) return unknown("key", kIniOpenStackKeys);
    } else if (entry.section.empty()) {
      add(secrets_file_, entry.line, 0, key, "must be inside a [app] or [openstack] section");
      return;
    } else {
      return unknown("section", kIniSections);
    }
    std::string_view value = entry.value;
    // inih keeps quotes; people write them anyway, so one matching pair is removed.
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    // An empty value leaves the YAML's value in place, so a template file does not erase it.
    if (value.empty()) return;
    *target = Secret{std::string(value), secrets_file_, entry.line, 0, key};
  }

  std::optional<std::string> env(std::string_view name) const {
    const auto it = inputs_.env.find(std::string(name));
    if (it == inputs_.env.end() || it->second.empty()) return std::nullopt;
    return it->second;
  }

  void apply_environment() {
    OpenStackSettings& os = config_.openstack;
    // OS_* fill only what the YAML leaves empty; they are the user's general OpenStack
    // environment, while the YAML is specific to Unshelver.
    for (const OsVariable& entry : kOsVariables) {
      if (openstack_yaml_keys_.contains(std::string(entry.key))) continue;
      auto value = env(entry.variable);
      if (!value) continue;
      if (entry.key == "interface") {
        auto normal = normal_interface(*value);
        if (!normal) {
          add(std::string(kEnvironmentFile), 0, 0, std::string(entry.variable),
              "must be one of " + list_names(kInterfaces) + ", got " + quote(*value));
          continue;
        }
        value = normal;
      }
      os.*entry.field = *value;
    }
    if (env("OS_AUTH_URL") || env("OS_CLOUD")) os.configured = true;

    // Secrets, lowest first: the YAML, then the secrets file (both applied already), then
    // UNSHELVER_*. OS_PASSWORD and OS_APPLICATION_CREDENTIAL_SECRET only fill a gap that both
    // the YAML and the secrets file left, like the other OS_* variables.
    const auto from_env = [this](Secret& secret, std::string_view variable) {
      if (auto value = env(variable)) {
        secret = Secret{std::move(*value), std::string(kEnvironmentFile), 0, 0, std::string(variable)};
      }
    };
    if (os_password_.value.empty()) from_env(os_password_, "OS_PASSWORD");
    if (os_app_secret_.value.empty()) from_env(os_app_secret_, "OS_APPLICATION_CREDENTIAL_SECRET");
    from_env(control_token_, "UNSHELVER_CONTROL_TOKEN");
    from_env(secret_key_, "UNSHELVER_SECRET_KEY");
    from_env(os_password_, "UNSHELVER_OPENSTACK_PASSWORD");
    from_env(os_app_secret_, "UNSHELVER_OPENSTACK_APPLICATION_CREDENTIAL_SECRET");

    config_.app.control_token = control_token_.value;
    config_.app.secret_key = secret_key_.value;
    os.password = os_password_.value;
    os.application_credential_secret = os_app_secret_.value;
  }

  void check_secret_lengths() {
    for (const Secret* secret : {&control_token_, &secret_key_}) {
      if (!secret->value.empty() && secret->value.size() < kMinSecretLength) {
        add_at(*secret, "must be at least " + std::to_string(kMinSecretLength) +
                            " characters long (the value is not shown)");
      }
    }
  }

  // `app.env: production` (as UptimeMesh does): a public deployment must not start with a missing,
  // short, guessable or copied secret. Every weak secret is named, with where its value came
  // from; the value itself never appears.
  void check_production_secrets() {
    const std::string why = " (app.env is production)";
    for (auto [secret, key, environment] :
         {std::tuple{&control_token_, "app.control_token", "UNSHELVER_CONTROL_TOKEN"},
          std::tuple{&secret_key_, "app.secret_key", "UNSHELVER_SECRET_KEY"}}) {
      const std::string weakness = secret_weakness(secret->value, kMinProductionSecretLength);
      if (weakness.empty()) continue;
      if (secret->value.empty()) {
        add_at(env_mark_, key,
               weakness + why + ": set it in the secrets file or " + environment +
                   ", e.g. from `openssl rand -hex 32`");
      } else {
        add_at(*secret, weakness + why);
      }
    }
    // The cloud's own secrets are not ours to judge for strength, but a value copied from the
    // examples is certainly wrong.
    for (auto [secret, key] : {std::pair{&os_password_, "openstack.password"},
                               std::pair{&os_app_secret_, "openstack.application_credential_secret"}}) {
      if (!secret->value.empty() && is_placeholder_secret(secret->value)) {
        add_at(*secret, "is the example value" + why);
      }
    }
  }

  // OpenStack settings are needed by OpenStack backends and by the Swift event mirror. A
  // clouds.yaml entry (`cloud`) carries its own credentials, so none are required then.
  void check_openstack() {
    const bool needed = !first_openstack_button_.empty() || config_.swift_event_container;
    if (!needed) return;
    const std::string user = !first_openstack_button_.empty()
                                 ? first_openstack_button_ + " uses provider \"openstack\""
                                 : "swift_event_container is set";
    const OpenStackSettings& os = config_.openstack;
    if (!os.configured) {
      const YAML::Mark mark = first_openstack_button_.empty() ? root_mark_ : first_openstack_mark_;
      add_at(mark, "openstack",
             "missing required section: " + user +
                 ", so an `openstack` section (with "
                 "credentials or `cloud: NAME` for clouds.yaml) or OS_AUTH_URL/OS_CLOUD in the "
                 "environment is required");
      return;
    }
    if (!os.cloud.empty()) return;

    const YAML::Mark mark = openstack_mark_.is_null() ? root_mark_ : openstack_mark_;
    if (os.auth_url.empty()) {
      add_at(mark, "openstack.auth_url",
             "missing required key `auth_url` (or OS_AUTH_URL, or `cloud: NAME` for clouds.yaml)");
    }
    const bool has_app_id = !os.application_credential_id.empty();
    const bool has_app_secret = !os.application_credential_secret.empty();
    const bool password_login =
        !os.username.empty() && !os.password.empty() && (!os.project_name.empty() || !os.project_id.empty());
    if (password_login || (has_app_id && has_app_secret)) return;
    if (has_app_id || has_app_secret) {
      if (!has_app_id) {
        add_at(mark, "openstack.application_credential_id",
               "missing required key `application_credential_id` (application_credential_secret "
               "is set; or OS_APPLICATION_CREDENTIAL_ID)");
      }
      if (!has_app_secret) {
        add_at(mark, "openstack.application_credential_secret",
               "missing required key `application_credential_secret`: set it in the secrets "
               "file ([openstack] application_credential_secret), "
               "UNSHELVER_OPENSTACK_APPLICATION_CREDENTIAL_SECRET or "
               "OS_APPLICATION_CREDENTIAL_SECRET");
      }
      return;
    }
    std::vector<std::string> missing;
    if (os.username.empty()) missing.emplace_back("username");
    if (os.password.empty()) missing.emplace_back("password");
    if (os.project_name.empty() && os.project_id.empty()) missing.emplace_back("project_name");
    std::string list;
    for (std::size_t i = 0; i < missing.size(); ++i) {
      list += (i == 0 ? "" : ", ") + missing[i];
    }
    add_at(mark, "openstack." + missing.front(),
           "missing credentials: " + list +
               ". Give username, password and project_name (or "
               "project_id), or application_credential_id and application_credential_secret, or "
               "`cloud: NAME` for clouds.yaml; secrets may come from the secrets file or "
               "UNSHELVER_OPENSTACK_PASSWORD / OS_PASSWORD");
  }

  const ConfigInputs& inputs_;
  const std::string yaml_file_;
  const std::string secrets_file_;
  Config config_;
  std::vector<ConfigIssue> issues_;

  YAML::Mark root_mark_;
  YAML::Mark openstack_mark_ = YAML::Mark::null_mark();
  std::optional<YAML::Node> buttons_node_;
  std::string buttons_path_;
  std::optional<double> top_idle_minutes_;
  std::optional<double> top_idle_seconds_;
  std::set<std::string> openstack_yaml_keys_;
  std::string verify_path_;
  std::string first_openstack_button_;
  YAML::Mark first_openstack_mark_;
  YAML::Mark env_mark_ = YAML::Mark::null_mark();
  Secret control_token_;
  Secret secret_key_;
  Secret os_password_;
  Secret os_app_secret_;
};

}  // namespace

std::string ConfigIssue::to_string() const {
  std::string out = file.empty() ? std::string(kDefaultYamlFile) : file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

ParsedConfig parse_config(const ConfigInputs& inputs) {
  try {
    return Loader(inputs).run();
  } catch (...) {
    // Only an allocation failure can get here; report it rather than unwinding into the caller.
    ParsedConfig parsed;
    parsed.issues.push_back({inputs.yaml_path, 0, 0, "",
                             "out of memory while reading the "
                             "configuration"});
    return parsed;
  }
}

std::string secrets_file_of(const std::string& yaml_text) {
  try {
    const YAML::Node root = YAML::Load(yaml_text);
    if (!root.IsMap()) return "";
    const YAML::Node path = root["secrets_file"];
    if (path.IsDefined() && path.IsScalar()) return path.Scalar();
  } catch (...) {
    // parse_config reports the syntax error; here there is simply no path.
  }
  return "";
}

KeyLocation secrets_file_location(const std::string& yaml_text) {
  try {
    const YAML::Node root = YAML::Load(yaml_text);
    if (!root.IsMap()) return {};
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "secrets_file") {
        const YAML::Mark mark = it->first.Mark();
        return {mark.line + 1, mark.column + 1};
      }
    }
  } catch (...) {
    // parse_config reports the syntax error.
  }
  return {};
}

std::string demo_config_yaml() {
  return R"yaml(# The built-in configuration of `unshelver demo`: one backend on the simulated cloud, with
# durations short enough to watch the whole cycle (wake, boot, ready, idle, sleep) in a minute.
app:
  title: "Unshelver demo"
  env: development
  # The simulated cloud answers at once, so it can be asked often: progress shows without delay.
  poll_interval_seconds: 0.5

listen: "127.0.0.1:5001"
state_dir: ".unshelver-demo/state"
log_level: info

buttons:
  - id: gpu
    label: "GPU chat (simulated)"
    description: "A pretend GPU chat server on the simulated cloud."
    provider: sim
    # No public_base_url: visitors are sent straight to the simulated backend. scripts/demo
    # passes --public-url when Caddy runs in front, so that they go through Caddy instead.
    host: chat.localhost
    idle_timeout_seconds: 60
    health:
      interval_seconds: 0.5
      successes_needed: 2
    sim:
      wake_seconds: 4
      boot_seconds: 2
      sleep_seconds: 3
)yaml";
}

}  // namespace unshelver::core
