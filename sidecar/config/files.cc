#include "config/files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/parser.h"

extern char** environ;

namespace unshelver::app {

namespace {
Result<std::string> read_file(const std::string& path, const std::string& what) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Error{"cannot read " + what + " " + path + ": " + std::strerror(errno)};
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
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
    auto secrets = read_file(resolved.string(), "secrets_file");
    if (!secrets) return secrets.error();
    inputs.secrets_text = std::move(secrets.value());
    inputs.secrets_path = resolved.string();
  }
  return finish(core::parse_config(inputs));
}
}  // namespace

std::string resolve_config_path(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* from_env = std::getenv("UNSHELVER_CONFIG"); from_env != nullptr && *from_env != '\0') {
    return from_env;
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

Result<core::Config> load_demo_config(const std::map<std::string, std::string>& env) {
  core::ConfigInputs inputs;
  inputs.yaml_text = core::demo_config_yaml();
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
