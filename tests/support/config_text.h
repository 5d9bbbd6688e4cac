// Parsing a configuration text in unit tests as `unshelver check-config` parses a file: the YAML
// named config.yaml and the secrets file secrets.ini in messages, the environment given.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "config/parser.h"

namespace unshelver::test {

inline core::ParsedConfig parse_config_text(std::string yaml, std::map<std::string, std::string> env = {},
                                            std::string secrets = "") {
  core::ConfigInputs in;
  in.yaml_text = std::move(yaml);
  in.yaml_path = "config.yaml";
  in.env = std::move(env);
  in.secrets_text = std::move(secrets);
  in.secrets_path = "secrets.ini";
  return core::parse_config(in);
}

// Every issue the parser found, one per line, for a failed expectation's message.
inline std::string all_issues(const core::ParsedConfig& parsed) {
  std::string out;
  for (const core::ConfigIssue& issue : parsed.issues) out += issue.to_string() + "\n";
  return out;
}

}  // namespace unshelver::test
