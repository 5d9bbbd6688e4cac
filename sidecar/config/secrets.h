// Secrets and the environment: the secrets INI text (inih) over the YAML, UNSHELVER_* variables
// over both; OS_* variables only fill OpenStack fields that the YAML leaves empty. Pure: the
// caller passes the texts and the environment in.
#pragma once

#include "config/reader.h"

namespace unshelver::core::config_detail {

// Reads [app] control_token, secret_key and [openstack] password, application_credential_secret
// from inputs.secrets_text, each remembering its line; the values themselves never reach a message.
void read_secrets_text(Reader& reader, Draft& draft, const ConfigInputs& inputs);

// Applies OS_* (gap-filling) and UNSHELVER_* (overriding) variables, then writes the winning
// secrets into the Config.
void apply_environment(Reader& reader, Draft& draft, const ConfigInputs& inputs);

}  // namespace unshelver::core::config_detail
