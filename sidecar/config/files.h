// Reads a configuration from disk: the YAML file, the secrets file it names, and the environment.
// This is the only place where configuration touches the file system; validation is in
// config/parser.h.
#pragma once

#include <map>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "config/parser.h"
#include "openstack/keystone.h"

namespace unshelver::app {

// The checks of the file system that `run` makes before it binds a port, so that `check-config`
// makes them too: state_dir exists and is writable or can be created (nothing is created here);
// templates_dir, when set, is a readable folder whose pages compile; with caddy.manage, a
// caddy.template of one's own is a readable file that compiles. One line per problem, each
// naming file, line and key.
Status check_files(const core::Config& config);

// --config, else $UNSHELVER_CONFIG (from `env`, an environment_snapshot), else ./config.yaml.
std::string resolve_config_path(const std::string& flag_value, const std::map<std::string, std::string>& env);

std::map<std::string, std::string> environment_snapshot();

// On failure the error holds one line per problem, each naming file, line and key.
Result<core::Config> load_config_file(const std::string& path, const std::map<std::string, std::string>& env);
// The built-in demo configuration, with the same environment overrides; with a Caddy port, behind
// a Caddy whose routing it manages (config/parser.h).
Result<core::Config> load_demo_config(const std::map<std::string, std::string>& env,
                                      const core::DemoSettings& demo = {});

// For tools that need only the OpenStack settings (`unshelver dns`): like load_config_file, but
// no button is required, and when `path` is empty the environment alone (OS_CLOUD, OS_AUTH_URL,
// ...) is parsed, as the openstack CLI works. Fails when no OpenStack settings result.
Result<core::Config> load_openstack_config(const std::string& path,
                                           const std::map<std::string, std::string>& env);

// The OpenStack credentials to use: the configuration, merged with the clouds.yaml entry it names
// (openstack.cloud or OS_CLOUD), searched where openstacksdk searches ($OS_CLIENT_CONFIG_FILE,
// ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml).
Result<core::openstack::Credentials> load_openstack_credentials(
    const core::Config& config, const std::map<std::string, std::string>& env);

}  // namespace unshelver::app
