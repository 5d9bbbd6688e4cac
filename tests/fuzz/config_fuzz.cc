// config_fuzz: the configuration loader (config/parser.h) on arbitrary bytes, as a person's editor,
// a bad merge or a truncated copy may leave config.yaml and the secrets file. It must never crash,
// throw, hang or trip a sanitizer, and:
// - a secret never appears in an issue: the environment's control token is a marker that no
//   message may contain, whatever the YAML does with it (unless the YAML itself holds it);
// - every issue has a message, and one that names a line names it within the text;
// - a configuration without issues has at least one backend (buttons are required);
// - secrets_file_of() and secrets_file_location() agree on whether there is a secrets file.
//
// The input is the YAML text, optionally followed by a NUL byte and the secrets file's text.
//
//   scripts/fuzz [SECONDS]    builds this with clang and runs it on corpus/config/
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/parser.h"

namespace {

using unshelver::core::ConfigInputs;
using unshelver::core::ConfigIssue;
using unshelver::core::ParsedConfig;

// Long enough to pass the length rule, so that a weak-secret message would have a reason to
// mention it.
constexpr std::string_view kSecretMarker = "fuzz-secret-7Qm2Xv9LpR4tZ8wK3nB6";

void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "config_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t separator = input.find('\0');

  ConfigInputs inputs;
  inputs.yaml_text = std::string(input.substr(0, separator));
  inputs.yaml_path = "fuzz.yaml";
  if (separator != std::string_view::npos) {
    inputs.secrets_text = std::string(input.substr(separator + 1));
    inputs.secrets_path = "fuzz-secrets.ini";
  }
  inputs.env["UNSHELVER_CONTROL_TOKEN"] = std::string(kSecretMarker);

  const ParsedConfig parsed = unshelver::core::parse_config(inputs);
  const auto lines = static_cast<int>(std::count(input.begin(), input.end(), '\n')) + 1;
  for (const ConfigIssue& issue : parsed.issues) {
    require(!issue.message.empty(), "an issue without a message");
    require(issue.line >= 0 && issue.line <= lines, "an issue names a line beyond the text");
    // Unless the input itself holds the marker (libFuzzer finds it by comparison): then a key
    // or a non-secret value may rightly be quoted.
    const std::string text = issue.to_string();
    require(
        input.find(kSecretMarker) != std::string_view::npos || text.find(kSecretMarker) == std::string::npos,
        "a secret appears in an issue");
  }
  if (parsed.ok()) {
    require(!parsed.config.backends.empty(), "a valid configuration without a backend");
    require(parsed.config.app.control_token == kSecretMarker, "the environment's token was lost");
  }

  const std::string secrets_file = unshelver::core::secrets_file_of(inputs.yaml_text);
  const unshelver::core::KeyLocation where = unshelver::core::secrets_file_location(inputs.yaml_text);
  require(secrets_file.empty() || where.line > 0, "secrets_file has a value but no location");
  return 0;
}
