#include "config/webhooks.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <map>
#include <set>

namespace unshelver::core::config_detail {

namespace {
// A signature is only as strong as its key; 16 bytes is what `openssl rand -hex 8` gives.
constexpr std::size_t kMinSecretBytes = 16;
}  // namespace

std::string webhook_secret_variable(std::string_view name) {
  std::string variable = "UNSHELVER_WEBHOOK_SECRET_";
  for (const char c : name)
    variable += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return variable;
}

void resolve_webhooks(Reader& reader, Draft& draft, const ConfigInputs& inputs) {
  std::set<std::string> names;
  const std::optional<YAML::Node>& node = reader.webhooks();
  if (node && !node->IsNull()) {
    if (!node->IsSequence()) {
      reader.add_at(*node, "webhooks", "expected a list of webhooks, got " + Reader::describe(*node, false));
    } else {
      std::map<std::string, std::string> url_owner;
      for (std::size_t i = 0; i < node->size(); ++i) {
        const YAML::Node item = (*node)[i];
        const std::string path = "webhooks[" + std::to_string(i) + "]";
        if (!item.IsMap()) {
          reader.add_at(item, path,
                        "expected a mapping with the webhook's keys, got " + Reader::describe(item, false));
          continue;
        }
        WebhookConfig webhook;
        draft.webhook = &webhook;
        reader.walk(item, "webhooks[]", path);
        draft.webhook = nullptr;
        if (webhook.name.empty() || webhook.url.empty()) continue;  // reported by the walker
        const Where where = where_of(item.Mark());
        if (!names.insert(webhook.name).second) {
          reader.add_at(where, path + ".name", "duplicate webhook name " + quote(webhook.name));
          continue;
        }
        // The URL names the receiver's outbox: two entries with one URL would share it.
        if (const auto [first, inserted] = url_owner.emplace(webhook.url, path); !inserted) {
          reader.add_at(where, path + ".url", "the same URL as " + first->second);
          continue;
        }
        Secret secret{webhook.secret, reader.yaml_file(), where.line, where.column, path + ".secret"};
        if (const auto from_file = draft.webhook_secrets.find(webhook.name);
            from_file != draft.webhook_secrets.end() && !from_file->second.value.empty()) {
          secret = from_file->second;
        }
        const std::string variable = webhook_secret_variable(webhook.name);
        if (const auto from_env = inputs.env.find(variable);
            from_env != inputs.env.end() && !from_env->second.empty()) {
          secret = Secret{from_env->second, std::string(kEnvironmentFile), 0, 0, variable};
        }
        if (secret.value.empty()) {
          reader.add_at(where, path + ".secret",
                        "missing the signing secret: set `secret`, `" + webhook.name +
                            " = ...` in the secrets file's [webhooks] section, or " + variable);
          continue;
        }
        if (secret.value.size() < kMinSecretBytes) {
          reader.add_at(secret, "is too short for a signing key (at least " +
                                    std::to_string(kMinSecretBytes) +
                                    " characters; `openssl rand -hex 32` makes a good one)");
          continue;
        }
        webhook.secret = secret.value;
        draft.config.webhooks.push_back(std::move(webhook));
      }
    }
  }
  for (const auto& [name, secret] : draft.webhook_secrets) {
    if (!names.contains(name)) reader.add_at(secret, "no webhook is named " + quote(name));
  }
}

}  // namespace unshelver::core::config_detail
