// The documents written from the schema: config/config.example.yaml and the README's table of
// keys. `unshelver config-reference example|readme-table` prints them; schema_example_test holds
// the checked-in copies to them.
#include <string>
#include <vector>

#include "config/reader.h"
#include "config/schema.h"

namespace unshelver::core::schema {

namespace {

constexpr std::size_t kWidth = 100;

constexpr std::string_view kExampleHeader =
    R"yaml(# Unshelver configuration: every key, with its default and meaning.
#
# GENERATED from the schema (sidecar/config/schema.cc) by `unshelver config-reference example`;
# edit the schema, not this file.
#
# Unshelver reads this file from --config, else $UNSHELVER_CONFIG, else ./config.yaml.
# `unshelver check-config` validates it (and the secrets file) without starting anything; each
# problem is reported with file, line, column and key.
#
# A config.yaml written for the Python openstack_unshelver_webapp controller loads unchanged: its
# keys keep their names and meanings. The keys marked "(ours)" are Unshelver's extensions.
#
# Rules:
# - Unknown keys are errors (a near-miss gets a "did you mean"), except under `openstack:`, where
#   unknown keys are passed through to OpenStack as the Python unshelver did.
# - A key that is absent, empty or `null` takes its default. Keys shown commented out are
#   optional and have no useful example value here.
# - Durations ending in _seconds accept fractions (0.5); keys that are whole seconds internally
#   (idle and retry times) are rounded to the nearest second.
# - Secrets (app.control_token, app.secret_key, openstack.password,
#   openstack.application_credential_secret) are better kept in the secrets file (`secrets_file`)
#   or the environment, so that this file can be shared. Precedence, lowest first: this file, the
#   secrets file, UNSHELVER_CONTROL_TOKEN, UNSHELVER_SECRET_KEY, UNSHELVER_OPENSTACK_PASSWORD,
#   UNSHELVER_OPENSTACK_APPLICATION_CREDENTIAL_SECRET. OS_* variables fill OpenStack keys left empty.
)yaml";

// The second backend of the example, to try the launcher without a cloud account.
constexpr std::string_view kSecondButton = R"yaml(
  # A second backend on the simulated cloud, to try the launcher without a cloud account.
  - id: "demo"
    label: "Simulated backend"
    provider: sim
    public_base_url: "http://demo.localhost:8080/"
    idle_timeout_seconds: 120
    sim:
      wake_seconds: 5
      boot_seconds: 2
)yaml";

// Appends `text` as comment lines at `indent`, wrapped at kWidth.
void comment(std::string& out, std::size_t indent, std::string_view text,
             std::string_view first_prefix = {}) {
  std::string line = first_prefix.empty() ? std::string(indent, ' ') + "#" : std::string(first_prefix) + "#";
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(start, end - start);
    if (line.size() + 1 + word.size() > kWidth && line.back() != '#') {
      out += line + "\n";
      line = std::string(indent, ' ') + "#";
    }
    line += " ";
    line += word;
    start = end + 1;
  }
  out += line + "\n";
}

std::string help_of(const Key& key) {
  std::string text;
  if (key.origin == Origin::kOurs) text = "(ours) ";
  text += key.help;
  if (!key.required && key.type != Type::kSection && key.type != Type::kList && !key.fallback.empty()) {
    text += " Default: " + std::string(key.fallback) + ".";
  }
  if (key.required) text += " Required.";
  return text;
}

void write_keys(std::string& out, std::string_view parent, std::size_t indent) {
  bool first_in_item = parent.ends_with("[]");
  bool after_block = false;  // at the top level: the previous key was a section or a list
  for (const Key& key : keys()) {
    if (parent_of(key) != parent) continue;
    const std::string pad(indent, ' ');
    const std::string name(name_of(key));
    if (first_in_item) {
      // The first key of a list item carries the "- ".
      comment(out, indent, help_of(key), std::string(indent - 2, ' ') + "- ");
      first_in_item = false;
    } else {
      const bool block = key.type == Type::kSection || key.type == Type::kList || key.type == Type::kIgnored;
      if (indent == 0 && (block || after_block)) out += "\n";
      if (indent == 0) after_block = block;
      comment(out, indent, help_of(key));
    }
    switch (key.type) {
      case Type::kSection:
        out += pad + name + ":\n";
        write_keys(out, key.path, indent + 2);
        break;
      case Type::kList:
        if (key.example == "[]") {
          // An optional list: empty, with one item's keys commented out for copying.
          out += pad + name + ": []\n";
          std::string item;
          write_keys(item, std::string(key.path) + "[]", indent + 4);
          std::size_t start = 0;
          while (start < item.size()) {
            std::size_t end = item.find('\n', start);
            if (end == std::string::npos) end = item.size();
            const std::string line = item.substr(start, end - start);
            const std::size_t text = line.find_first_not_of(' ');
            out += text != std::string::npos && line[text] == '#' ? line : pad + "# " + line.substr(indent);
            out += "\n";
            start = end + 1;
          }
          break;
        }
        out += pad + name + ":\n";
        write_keys(out, std::string(key.path) + "[]", indent + 4);
        out += kSecondButton;
        break;
      default:
        if (key.example.starts_with("# ")) {
          out.append(pad).append("# ").append(name).append(": ").append(key.example.substr(2)).append("\n");
        } else {
          out += pad + name + ": " + std::string(key.example) + "\n";
        }
    }
  }
}

std::string type_of(const Key& key) {
  const auto number = [&](std::string_view what) {
    std::string text(what);
    text += key.min_exclusive ? " > " : " ≥ ";
    text += config_detail::format_number(key.min);
    if (key.max < 1e6)
      text = std::string(what) + " " + config_detail::format_number(key.min) + "–" +
             config_detail::format_number(key.max);
    return text;
  };
  switch (key.type) {
    case Type::kSection: return "section";
    case Type::kList: return "list of sections";
    case Type::kIgnored: return "ignored";
    case Type::kString: return "string";
    case Type::kSecret: return "secret";
    case Type::kBool: return "boolean";
    case Type::kBoolOrPath: return "boolean or path";
    case Type::kInteger: return number("integer");
    case Type::kNumber: return number("number");
    case Type::kStrings: return "list of strings";
    case Type::kHostPort: return key.min == 0 ? "HOST:PORT (port 0 = any)" : "HOST:PORT";
    case Type::kChoice: {
      std::string text;
      for (std::size_t i = 0; i < key.choices.size(); ++i) {
        text += (i == 0 ? "`" : ", `") + std::string(key.choices[i]) + "`";
      }
      return text;
    }
  }
  return "";
}

std::string cell(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') out += "\\";
    out += c;
  }
  return out;
}

}  // namespace

std::string example_yaml() {
  std::string out(kExampleHeader);
  write_keys(out, "", 0);
  return out;
}

std::string readme_table() {
  std::string out = "| Key | Type | Default | Origin | Meaning |\n|---|---|---|---|---|\n";
  for (const Key& key : keys()) {
    const std::string fallback = key.required ? "required" : std::string(key.fallback);
    out += "| `" + std::string(key.path) + "` | " + cell(type_of(key)) + " | " + cell(fallback) + " | " +
           (key.origin == Origin::kPython ? "Python" : "ours") + " | " + cell(key.help) + " |\n";
  }
  return out;
}

}  // namespace unshelver::core::schema
