#include "config/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string_view>

#include "base/template.h"
#include "base/text.h"
#include "config/parser.h"
#include "config/secret_policy.h"
#include "schedule/zone_files.h"
#include "uv/files.h"

extern char** environ;

namespace unshelver::app {

namespace {
// io::read_file, with what the file is in its error: "cannot read WHAT PATH: reason".
Result<std::string> read_file(const std::string& path, const std::string& what) {
  Result<std::string> text = io::read_file(path);
  if (text.ok()) return text;
  std::string message = text.error().message;  // "cannot read PATH: reason" (uv/files.h)
  constexpr std::string_view kPrefix = "cannot read ";
  if (message.starts_with(kPrefix)) message.insert(kPrefix.size(), what + " ");
  return Error{std::move(message)};
}

// The file, line and key of a configuration key, for the checks below.
std::string where(const core::Config& config, const std::string& key) {
  core::ConfigIssue issue{config.source_path, 0, 0, key, ""};
  if (const auto found = config.locations.find(key); found != config.locations.end()) {
    issue.line = found->second.line;
    issue.column = found->second.column;
  }
  return issue.to_string();  // "config.yaml:12:3: key: "
}

// The state folder exists and is writable, or its nearest existing ancestor is a folder in which
// it can be created. Nothing is created: `check-config` changes nothing.
std::string check_state_dir(const core::Config& config) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::path dir = fs::absolute(config.state_dir, error);
  if (error)
    return where(config, "state_dir") + "cannot resolve " + config.state_dir + ": " + error.message();
  const bool exists = fs::exists(dir, error);
  fs::path existing = dir;
  while (!fs::exists(existing, error) && existing.has_parent_path() && existing != existing.parent_path()) {
    existing = existing.parent_path();
  }
  if (!fs::is_directory(existing, error)) {
    return where(config, "state_dir") + "cannot create " + config.state_dir + ": " + existing.string() +
           " is not a folder";
  }
  if (::access(existing.c_str(), W_OK | X_OK) != 0) {
    const std::string reason = core::errno_text();
    return where(config, "state_dir") + (exists ? "is not writable: " : "cannot be created in ") +
           existing.string() + ": " + reason;
  }
  return "";
}

// The page templates of `templates_dir` are read and compiled as App reads them at start.
std::string check_templates_dir(const core::Config& config) {
  if (config.templates_dir.empty()) return "";
  std::error_code error;
  std::filesystem::directory_iterator entries(config.templates_dir, error);
  if (error) return where(config, "templates_dir") + config.templates_dir + ": " + error.message();
  for (const auto& entry : entries) {
    if (!entry.is_regular_file(error) || entry.path().extension() != ".html") continue;
    auto text = read_file(entry.path().string(), "template");
    if (!text) return where(config, "templates_dir") + text.error().message;
    auto compiled = core::Template::compile(*text, entry.path().filename().string());
    if (!compiled) return where(config, "templates_dir") + compiled.error().message;
  }
  return "";
}

// With caddy.manage, a caddy.template of one's own must be readable and compile.
std::string check_caddy_template(const core::Config& config) {
  if (!config.caddy.manage || config.caddy.template_path.empty()) return "";
  auto text = read_file(config.caddy.template_path, "file");
  if (!text) return where(config, "caddy.template") + text.error().message;
  auto compiled = core::Template::compile(*text, config.caddy.template_path);
  if (!compiled) return where(config, "caddy.template") + compiled.error().message;
  return "";
}

Result<core::Config> finish(core::ParsedConfig parsed) {
  if (parsed.ok()) return std::move(parsed.config);
  std::string message;
  for (const core::ConfigIssue& issue : parsed.issues) message += issue.to_string() + "\n";
  if (!message.empty()) message.pop_back();
  return Error{message};
}

Result<core::Config> parse_with_secrets(core::ConfigInputs inputs) {
  std::string secrets_path = core::secrets_file_of(inputs.yaml_text);
  if (!secrets_path.empty()) {
    // A relative secrets_file is relative to the config file, so the pair can move together.
    std::filesystem::path resolved(secrets_path);
    if (resolved.is_relative() && !inputs.yaml_path.empty()) {
      resolved = std::filesystem::path(inputs.yaml_path).parent_path() / resolved;
    }
    auto secrets = io::read_file(resolved.string());
    if (!secrets) {
      // Name the line that asks for the file, like every other configuration error.
      const core::KeyLocation where = core::secrets_file_location(inputs.yaml_text);
      core::ConfigIssue issue{inputs.yaml_path, where.line, where.column, "secrets_file",
                              secrets.error().message};
      return Error{issue.to_string()};
    }
    inputs.secrets_text = std::move(secrets.value());
    inputs.secrets_path = resolved.string();
    // The file as read (a symlink's target): who else may read it is what matters.
    if (struct stat info{}; ::stat(inputs.secrets_path.c_str(), &info) == 0) {
      inputs.secrets_mode = static_cast<unsigned>(info.st_mode) & 07777U;
    }
  }
  Result<core::Config> config = finish(core::parse_config(inputs));
  // Production refuses an open secrets file (the parser says so); elsewhere it is said once here,
  // before logging starts, on standard error like the configuration's other problems.
  if (config && inputs.secrets_mode && config->app.env != core::AppEnvironment::kProduction) {
    if (const std::string exposure = core::secrets_file_exposure(*inputs.secrets_mode); !exposure.empty()) {
      std::fprintf(stderr,
                   "unshelver: warning: the secrets file %s %s; with app.env production it is refused\n",
                   inputs.secrets_path.c_str(), exposure.c_str());
    }
  }
  return config;
}
}  // namespace

Status check_files(const core::Config& config) {
  std::string message;
  for (const std::string& problem :
       {check_state_dir(config), check_templates_dir(config), check_caddy_template(config)}) {
    if (!problem.empty()) message += problem + "\n";
  }
  // The time zones of keep-warm windows and pre-warming: an unknown one is a configuration error.
  if (auto zones = io::load_config_zones(config); !zones) message += zones.error().message + "\n";
  if (message.empty()) return ok_status();
  message.pop_back();
  return Error{message};
}

std::string resolve_config_path(const std::string& flag_value,
                                const std::map<std::string, std::string>& env) {
  if (!flag_value.empty()) return flag_value;
  if (const auto found = env.find("UNSHELVER_CONFIG"); found != env.end() && !found->second.empty()) {
    return found->second;
  }
  return "config.yaml";
}

std::map<std::string, std::string> environment_snapshot() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string text(*entry);
    std::size_t equals = text.find('=');
    if (equals == std::string::npos) continue;
    env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

Result<core::Config> load_config_file(const std::string& path,
                                      const std::map<std::string, std::string>& env) {
  auto text = read_file(path, "config file");
  if (!text) return text.error();
  core::ConfigInputs inputs;
  inputs.yaml_text = std::move(text.value());
  inputs.yaml_path = path;
  inputs.env = env;
  return parse_with_secrets(std::move(inputs));
}

Result<core::Config> load_openstack_config(const std::string& path,
                                           const std::map<std::string, std::string>& env) {
  core::ConfigInputs inputs;
  inputs.env = env;
  inputs.backends_required = false;
  if (!path.empty()) {
    auto text = read_file(path, "config file");
    if (!text) return text.error();
    inputs.yaml_text = std::move(text.value());
    inputs.yaml_path = path;
  } else {
    inputs.yaml_path = "<no config file: OS_* variables>";
  }
  auto config = parse_with_secrets(std::move(inputs));
  if (config && !config->openstack.configured) {
    const std::string where = path.empty()
                                  ? "no configuration file (--config, $UNSHELVER_CONFIG or ./config.yaml)"
                                  : path + " has no `openstack` section";
    return Error{where + ", and neither OS_CLOUD nor OS_AUTH_URL is set"};
  }
  return config;
}

Result<core::Config> load_demo_config(const std::map<std::string, std::string>& env,
                                      const core::DemoSettings& demo) {
  core::ConfigInputs inputs;
  inputs.yaml_text = core::demo_config_yaml(demo);
  inputs.yaml_path = "<built-in demo config>";
  inputs.env = env;
  return parse_with_secrets(std::move(inputs));
}

Result<core::openstack::Credentials> load_openstack_credentials(
    const core::Config& config, const std::map<std::string, std::string>& env) {
  const core::OpenStackSettings& settings = config.openstack;
  std::vector<core::openstack::CloudsFile> files;
  if (!settings.cloud.empty()) {
    auto value = [&env](const char* name) {
      auto found = env.find(name);
      return found == env.end() ? std::string() : found->second;
    };
    for (const std::string& path :
         core::openstack::clouds_yaml_search_path(value("OS_CLIENT_CONFIG_FILE"), value("HOME"))) {
      std::error_code missing;
      if (!std::filesystem::is_regular_file(path, missing)) continue;
      auto text = read_file(path, "clouds.yaml");
      if (!text) return text.error();
      files.push_back({path, std::move(*text)});
    }
  }
  return core::openstack::resolve_credentials(
      settings, files, config.source_path.empty() ? "the environment" : config.source_path);
}

}  // namespace unshelver::app
