// The `webhooks` list: each receiver read from the YAML, its secret resolved like the other
// secrets (lowest first: the YAML's `secret`, the secrets file's `[webhooks] NAME = ...`, the
// variable UNSHELVER_WEBHOOK_SECRET_<NAME>, with the name upper-cased and '-' written '_'), and
// the rules across receivers (unique names and URLs, a secret for each). Pure.
#pragma once

#include <string>
#include <string_view>

#include "config/reader.h"

namespace unshelver::core::config_detail {

// The variable that holds the secret of the webhook `name`: UNSHELVER_WEBHOOK_SECRET_DASHBOARD.
std::string webhook_secret_variable(std::string_view name);

// Walks reader.webhooks() into draft.config.webhooks; runs after the secrets file was read.
void resolve_webhooks(Reader& reader, Draft& draft, const ConfigInputs& inputs);

}  // namespace unshelver::core::config_detail
