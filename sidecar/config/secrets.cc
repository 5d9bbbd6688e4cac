#include "config/secrets.h"

#include <ini.h>

#include <algorithm>
#include <map>
#include <span>
#include <utility>

#include "base/text.h"
#include "config/checks.h"
#include "config/secret_policy.h"

namespace unshelver::core::config_detail {

namespace {

// The secrets file holds the schema's secret keys, each in the section named like its YAML
// section: [app] control_token, [openstack] password, ...
std::vector<std::string_view> secret_sections() {
  std::vector<std::string_view> sections;
  for (const schema::Key& key : schema::keys()) {
    std::string_view section = schema::parent_of(key);
    // A list item's secrets have one section for the list, named like it, keyed by the item's
    // name: [webhooks] dashboard = ... (config/webhooks.h).
    if (section.ends_with("[]")) section.remove_suffix(2);
    if (key.type == schema::Type::kSecret &&
        std::find(sections.begin(), sections.end(), section) == sections.end()) {
      sections.push_back(section);
    }
  }
  return sections;
}

std::vector<std::string_view> secret_names(std::string_view section) {
  std::vector<std::string_view> names;
  for (const schema::Key& key : schema::keys()) {
    if (key.type == schema::Type::kSecret && schema::parent_of(key) == section) {
      names.push_back(schema::name_of(key));
    }
  }
  return names;
}

// Where the winning value of each secret is kept until the environment has had its say.
Secret* secret_slot(Draft& draft, const std::string& path) {
  if (path == "app.control_token") return &draft.control_token;
  if (path == "app.secret_key") return &draft.secret_key;
  if (path == "openstack.password") return &draft.os_password;
  if (path == "openstack.application_credential_secret") return &draft.os_app_secret;
  if (path == "exoscale.api_key") return &draft.exoscale_api_key;
  if (path == "exoscale.api_secret") return &draft.exoscale_api_secret;
  if (path == "ha.password") return &draft.etcd_password;
  return nullptr;
}

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

// inih calls the handler once per `name = value` line; the handler only collects, so that no C++
// exception can unwind through inih's C frames.
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

// inih reads at most INI_MAX_LINE - 1 bytes per line (newline included) and treats the rest as a
// new line, which would silently cut a long secret in two.
bool report_long_lines(Reader& reader, std::string_view text) {
  int line_number = 0;
  bool too_long = false;
  while (!text.empty()) {
    ++line_number;
    const std::size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (line.size() + 1 >= static_cast<std::size_t>(INI_MAX_LINE) - 1) {
      reader.add(reader.secrets_file(), line_number, 0, "",
                 "line is too long (at most " + std::to_string(INI_MAX_LINE - 3) + " characters)");
      too_long = true;
    }
  }
  return too_long;
}

void apply_ini_entry(Reader& reader, Draft& draft, const IniEntry& entry, const std::string& key) {
  const auto unknown = [&](std::string_view what, std::span<const std::string_view> known) {
    std::string message = "unknown " + std::string(what);
    if (const std::string suggestion = nearest_name(what == "section" ? entry.section : entry.name, known);
        !suggestion.empty()) {
      message += "; did you mean " + quote(suggestion) + "?";
    }
    reader.add(reader.secrets_file(), entry.line, 0, key, message);
  };
  const std::vector<std::string_view> sections = secret_sections();
  if (entry.section.empty()) {
    reader.add(reader.secrets_file(), entry.line, 0, key,
               "must be inside a section such as [app], [openstack], [exoscale] or [ha]");
    return;
  }
  if (std::find(sections.begin(), sections.end(), entry.section) == sections.end()) {
    return unknown("section", sections);
  }
  const std::vector<std::string_view> names = secret_names(entry.section);
  Secret* target = nullptr;
  if (entry.section == "webhooks") {
    target = &draft.webhook_secrets[entry.name];  // checked against the webhooks' names later
  } else if (std::find(names.begin(), names.end(), entry.name) != names.end()) {
    target = secret_slot(draft, entry.section + "." + entry.name);
  }
  if (!target) return unknown("key", names);
  std::string_view value = entry.value;
  // inih keeps quotes; people write them anyway, so one matching pair is removed.
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
    value = value.substr(1, value.size() - 2);
  }
  // An empty value leaves the YAML's value in place, so a template file does not erase it.
  if (value.empty()) return;
  *target = Secret{std::string(value), reader.secrets_file(), entry.line, 0, key};
}

std::optional<std::string> env(const ConfigInputs& inputs, std::string_view name) {
  const auto it = inputs.env.find(std::string(name));
  if (it == inputs.env.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace

void read_secrets_text(Reader& reader, Draft& draft, const ConfigInputs& inputs) {
  // A production deployment keeps its secrets from the other local users; elsewhere the caller
  // warns (config/files.cc), so that a demo or a test box is not stopped by a umask.
  if (inputs.secrets_mode && draft.config.app.env == AppEnvironment::kProduction) {
    if (const std::string exposure = secrets_file_exposure(*inputs.secrets_mode); !exposure.empty()) {
      reader.add(reader.secrets_file(), 0, 0, "",
                 "the secrets file " + exposure + " (app.env is production)");
    }
  }
  if (inputs.secrets_text.empty()) return;
  if (report_long_lines(reader, inputs.secrets_text)) return;
  std::vector<IniEntry> entries;
  const int error_line = ini_parse_string(inputs.secrets_text.c_str(), on_ini_entry, &entries);
  if (error_line > 0) {
    // The line's text is not quoted: it may hold a secret.
    reader.add(reader.secrets_file(), error_line, 0, "",
               "INI syntax error (expected `[section]` or `name = value`)");
  } else if (error_line < 0) {
    reader.add(reader.secrets_file(), 0, 0, "", "could not parse the secrets (out of memory)");
    return;
  }
  // Match each entry to its line: the n-th (section, name) entry is the n-th such line.
  const std::vector<IniEntry> lines = scan_ini_lines(inputs.secrets_text);
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
      reader.add(reader.secrets_file(), entry.line, 0, key,
                 "set more than once (first on line " + std::to_string(first->second) +
                     "); note that an indented line continues the previous value");
      continue;
    }
    apply_ini_entry(reader, draft, entry, key);
  }
}

void apply_environment(Reader& reader, Draft& draft, const ConfigInputs& inputs) {
  OpenStackSettings& os = draft.config.openstack;
  // OS_* fill only what the YAML leaves empty; they are the user's general OpenStack environment,
  // while the YAML is specific to Unshelver.
  for (const OsVariable& entry : kOsVariables) {
    if (draft.openstack_yaml_keys.contains(std::string(entry.key))) continue;
    auto value = env(inputs, entry.variable);
    if (!value) continue;
    if (entry.key == "interface") {
      if (std::string problem = check_interface(*value); !problem.empty()) {
        reader.add(std::string(kEnvironmentFile), 0, 0, std::string(entry.variable), std::move(problem));
        continue;
      }
      value = normal_interface(*value);
    }
    os.*entry.field = *value;
  }
  if (env(inputs, "OS_AUTH_URL") || env(inputs, "OS_CLOUD")) os.configured = true;

  // Secrets, lowest first: the YAML, then the secrets file (both applied already), then
  // UNSHELVER_*. OS_PASSWORD and OS_APPLICATION_CREDENTIAL_SECRET only fill a gap that both the
  // YAML and the secrets file left, like the other OS_* variables.
  const auto from_env = [&inputs](Secret& secret, std::string_view variable) {
    if (auto value = env(inputs, variable)) {
      secret = Secret{std::move(*value), std::string(kEnvironmentFile), 0, 0, std::string(variable)};
    }
  };
  if (draft.os_password.value.empty()) from_env(draft.os_password, "OS_PASSWORD");
  if (draft.os_app_secret.value.empty()) from_env(draft.os_app_secret, "OS_APPLICATION_CREDENTIAL_SECRET");
  from_env(draft.control_token, "UNSHELVER_CONTROL_TOKEN");
  from_env(draft.secret_key, "UNSHELVER_SECRET_KEY");
  from_env(draft.os_password, "UNSHELVER_OPENSTACK_PASSWORD");
  from_env(draft.os_app_secret, "UNSHELVER_OPENSTACK_APPLICATION_CREDENTIAL_SECRET");

  draft.config.app.control_token = draft.control_token.value;
  draft.config.app.secret_key = draft.secret_key.value;
  // EXOSCALE_API_KEY and EXOSCALE_API_SECRET (the names the Exoscale-based predecessor read)
  // fill what the YAML and the secrets file left empty, like OS_PASSWORD.
  if (draft.exoscale_api_key.value.empty()) from_env(draft.exoscale_api_key, "EXOSCALE_API_KEY");
  if (draft.exoscale_api_secret.value.empty()) from_env(draft.exoscale_api_secret, "EXOSCALE_API_SECRET");
  draft.config.exoscale.api_key = draft.exoscale_api_key.value;
  draft.config.exoscale.api_secret = draft.exoscale_api_secret.value;
  from_env(draft.etcd_password, "UNSHELVER_ETCD_PASSWORD");
  draft.config.ha.password = draft.etcd_password.value;
  os.password = draft.os_password.value;
  os.application_credential_secret = draft.os_app_secret.value;
}

}  // namespace unshelver::core::config_detail
