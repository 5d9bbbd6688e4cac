// Parses and validates a configuration from text. Pure: the caller reads the files and passes
// the environment in, so that tests need no files and every message can name file, line and key.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace unshelver::core {

// One problem found in a configuration. `line` and `column` are 1-based; 0 when unknown (for
// example a key that is missing altogether).
struct ConfigIssue {
  std::string file;
  int line = 0;
  int column = 0;
  std::string key;  // dotted path such as "buttons[0].instance_name"
  std::string message;

  // "config.yaml:12:3: buttons[0].port: expected an integer, got \"abc\""
  std::string to_string() const;
};

struct ConfigInputs {
  std::string yaml_text;
  std::string yaml_path;                   // for messages only
  std::map<std::string, std::string> env;  // the process environment (UNSHELVER_*, OS_*)
  // The secrets file's text, when `secrets_file` names one. Its path comes from the YAML itself,
  // so the caller first asks secrets_file_of(yaml_text) for the path, reads that file (resolving
  // a relative path as it sees fit), and then calls parse_config once with both texts. Empty
  // means no secrets file. Format (inih): `[app]` control_token, secret_key; `[openstack]`
  // password, application_credential_secret. Precedence, lowest first: YAML, this text,
  // UNSHELVER_* variables; OS_* variables only fill OpenStack fields left empty.
  std::string secrets_text;
  std::string secrets_path;  // for messages only
  // The secrets file's permission bits (st_mode & 07777), when the caller read one: a file that
  // its group or others may read is refused with app.env production (secret_policy.h).
  std::optional<unsigned> secrets_mode;
  // Off for tools that need only the OpenStack settings (`unshelver dns`): no button required.
  bool backends_required = true;
};

struct ParsedConfig {
  Config config;
  std::vector<ConfigIssue> issues;  // empty when the configuration is valid
  bool ok() const { return issues.empty(); }
};

// Never throws; every problem (YAML syntax, unknown keys, wrong types, missing keys, ranges,
// secrets file syntax) is returned in `issues`, none of which ever contains a secret's value.
ParsedConfig parse_config(const ConfigInputs& inputs);

// The `secrets_file` value of a YAML text, or "" when there is none or the text does not parse
// (parse_config reports that). It validates nothing; it exists so the caller can read the
// secrets file before the real parse.
std::string secrets_file_of(const std::string& yaml_text);

// Where `secrets_file` is written in a YAML text (1-based), or {0, 0}; for the message when the
// file it names cannot be read.
KeyLocation secrets_file_location(const std::string& yaml_text);

// How `unshelver demo` runs (its command-line options).
struct DemoSettings {
  // Its state; with Caddy also the rendered Caddyfile and logs/access.log (then an absolute path,
  // since Caddy runs elsewhere).
  std::string dir = ".unshelver-demo";
  int caddy_port = 0;       // Caddy's HTTP port on 127.0.0.1; 0 = no Caddy in front
  std::string caddy_admin;  // its admin API, "127.0.0.1:PORT"
};

// The built-in configuration of `unshelver demo`: one backend on the simulated cloud with short
// durations, so that the whole product runs with no credentials. With a Caddy port, the routing
// through Caddy is Unshelver's to manage (caddy.manage: true, the gate), on loopback.
std::string demo_config_yaml(const DemoSettings& demo = {});

}  // namespace unshelver::core
