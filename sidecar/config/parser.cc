// Reads config.yaml, the secrets INI text and the environment into one validated Config.
//
// Flow: yaml-cpp turns the text into a node tree (a syntax error becomes one issue carrying
// yaml-cpp's mark). The reader (config/reader.h) then walks the tree top-down, looking every key
// up in the schema (config/schema.h): a key that is not there is reported, with the nearest known
// key when it looks like a typo; values are checked for type and range where they are read, and
// every problem is collected instead of stopping at the first one, so that one run of
// `check-config` shows them all. The rules that are more than a schema row run after the whole
// file has been read, because YAML key order must not matter (config/checks.h): per-backend
// values that inherit from the top level, then secrets (config/secrets.h: YAML, then the secrets
// INI text, then UNSHELVER_* variables; OS_* variables only fill OpenStack fields that the YAML
// leaves empty), then the cross-field requirements.
//
// The parser is pure: it never reads files or the process environment, and it never throws
// (yaml-cpp's exceptions are caught here, at startup, as STYLE.md §2.5 asks).
#include "config/parser.h"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "config/checks.h"
#include "config/reader.h"
#include "config/secrets.h"
#include "config/webhooks.h"

namespace unshelver::core {
namespace {

using config_detail::Draft;
using config_detail::Reader;

// The Python unshelver's default Swift object prefix, kept so its configs mean the same here.
constexpr std::string_view kPythonSwiftPrefix = "unshelver-events";

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

void load(Reader& reader, Draft& draft, const ConfigInputs& inputs) {
  draft.config.source_path = inputs.yaml_path;
  draft.config.swift_event_prefix = kPythonSwiftPrefix;

  YAML::Node root;
  try {
    root = YAML::Load(inputs.yaml_text);
  } catch (const YAML::Exception& error) {
    reader.add_at(config_detail::where_of(error.mark), "", "YAML syntax error: " + error.msg);
    return;
  }
  if (const auto open = find_unterminated_quote(root, inputs.yaml_text)) {
    reader.add_at(config_detail::where_of(*open), "",
                  "YAML syntax error: this quoted value is never closed (it runs to the end of the file)");
    return;
  }
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
    reader.add_at(root, "",
                  "expected a mapping of keys at the top level, got " + Reader::describe(root, false));
    return;
  }
  // An empty document has no mark; its issues point at line 1.
  if (root.IsMap()) {
    draft.root_where = config_detail::where_of(root.Mark());
    reader.walk(root, "", "");
    config_detail::finish_openstack_section(reader, draft);
  }
  config_detail::read_secrets_text(reader, draft, inputs);
  config_detail::apply_environment(reader, draft, inputs);
  config_detail::finish_app(draft);
  config_detail::resolve_buttons(reader, draft, inputs.backends_required);
  config_detail::resolve_webhooks(reader, draft, inputs);
  config_detail::check_openstack(reader, draft);
  config_detail::check_exoscale(reader, draft);
  config_detail::check_ha(reader, draft);
  config_detail::check_caddy(reader, draft);
  config_detail::check_secret_lengths(reader, draft);
  if (draft.config.app.env == AppEnvironment::kProduction)
    config_detail::check_production_secrets(reader, draft);
}

ParsedConfig run(const ConfigInputs& inputs) {
  Draft draft;
  Reader reader(inputs, draft);
  try {
    load(reader, draft, inputs);
  } catch (const std::exception& error) {
    reader.add(draft.yaml_file, 0, 0, "",
               std::string("internal error while reading the configuration: ") + error.what());
  } catch (...) {
    reader.add(draft.yaml_file, 0, 0, "", "internal error while reading the configuration");
  }
  ParsedConfig parsed;
  parsed.issues = reader.take_sorted_issues();
  parsed.config = std::move(draft.config);
  return parsed;
}

}  // namespace

std::string ConfigIssue::to_string() const {
  std::string out = file.empty() ? std::string(config_detail::kDefaultYamlFile) : file;
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
    return run(inputs);
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

std::string demo_config_yaml(const DemoSettings& demo) {
  // A JSON string is a valid YAML double-quoted scalar: any path or address is quoted safely.
  auto quoted = [](const std::string& text) { return nlohmann::json(text).dump(); };
  const bool managed = demo.caddy_port > 0;
  const std::string caddy_address = "localhost:" + std::to_string(demo.caddy_port);
  std::string yaml =
      R"yaml(# The built-in configuration of `unshelver demo`: one backend on the simulated cloud, with
# durations short enough to watch the whole cycle (wake, boot, ready, idle, sleep) in a minute.
app:
  title: "Unshelver demo"
  env: development
  # The simulated cloud answers at once, so it can be asked often: progress shows without delay.
  poll_interval_seconds: 0.5

listen: "127.0.0.1:5001"
log_level: info
)yaml";
  yaml += "state_dir: " + quoted(demo.dir + "/state") + "\n";
  if (managed) {
    // `unshelver demo --caddy-port`: Caddy runs in front (scripts/demo starts it with nothing but
    // its admin API), and Unshelver loads its routing into it, exactly as in production: the
    // rendered built-in caddy/Caddyfile.template, the gate on the backend's host.
    yaml += "activity_log_path: " + quoted(demo.dir + "/logs/access.log") + R"yaml(

caddy:
  manage: true
  admin: )yaml" +
            quoted("http://" + demo.caddy_admin) +
            R"yaml(
  integration: full
  routing: gate
  caddyfile: )yaml" +
            quoted(demo.dir + "/Caddyfile") +
            R"yaml(
  launcher_url: )yaml" +
            quoted("http://launcher." + caddy_address) +
            R"yaml(
  bind: "127.0.0.1"
  http_port: )yaml" +
            std::to_string(demo.caddy_port) +
            R"yaml(
  auto_https: false
  # A load that Caddy refused (its HTTP port taken, say) is retried soon, and the demo says so.
  retry_max_seconds: 5
)yaml";
  }
  yaml += R"yaml(
buttons:
  - id: gpu
    label: "GPU chat (simulated)"
    description: "A pretend GPU chat server on the simulated cloud."
    provider: sim
    host: chat.localhost
    idle_timeout_seconds: 60
)yaml";
  if (managed) {
    // Visitors go to the backend's host through Caddy; an API request there is held while the
    // machine wakes, then answered (the gate), instead of failing with 503.
    yaml += "    public_base_url: " + quoted("http://chat." + caddy_address + "/") + "\n";
    yaml += "    wake_on_request: true\n";
  } else {
    // No Caddy: no public_base_url, so visitors are sent straight to the simulated backend.
  }
  yaml += R"yaml(    health:
      interval_seconds: 0.5
      successes_needed: 2
    sim:
      wake_seconds: 4
      boot_seconds: 2
      sleep_seconds: 3
)yaml";
  return yaml;
}

}  // namespace unshelver::core
