// Keystone v3 authentication as data: which credentials to use, the request that proves them, the
// token and service catalog that come back, and the endpoint chosen from that catalog. Pure: the
// caller reads clouds.yaml and sends the requests (openstack/session.h).
//
// Contract: ../shared/research/api-contracts.md §1 (keystone api-ref, keystoneauth1's
// service_catalog.py and identity/base.py, openstacksdk's config loader).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/config.h"

namespace unshelver::core::openstack {

using TimePoint = std::chrono::system_clock::time_point;

enum class AuthMethod { kPassword, kApplicationCredential };

// Everything needed to obtain a token, after config.yaml, the secrets file, OS_* variables and a
// clouds.yaml entry have been merged. Holds secrets: never log or format it.
struct Credentials {
  AuthMethod method = AuthMethod::kPassword;
  std::string auth_url;  // as configured, e.g. https://keystone:5000/v3
  std::string username;
  std::string user_id;
  std::string user_domain_name;
  std::string user_domain_id;
  std::string password;  // secret
  std::string project_name;
  std::string project_id;
  std::string project_domain_name;
  std::string project_domain_id;
  std::string application_credential_id;
  std::string application_credential_name;
  std::string application_credential_secret;  // secret
  std::string region_name;
  std::string interface = "public";
  bool verify = true;
  std::string cacert;
  std::string source;  // "config.yaml" or "clouds.yaml entry 'x' (/path)", for messages
};

// A clouds.yaml file's text and where it came from (for messages naming file and line).
struct CloudsFile {
  std::string path;
  std::string text;
};

// Merges the configuration with the clouds.yaml entry it names (settings.cloud), as openstacksdk
// does: the entry's `auth` block, `auth_type`, `region_name`, `interface`, `verify` and `cacert`;
// keys set in config.yaml win over the entry. `clouds` are the candidate files in openstacksdk's
// search order (the first file that has the entry is used). Errors name the file, line and key.
// `config_name` names the configuration in messages (Credentials::source).
Result<Credentials> resolve_credentials(const OpenStackSettings& settings,
                                        const std::vector<CloudsFile>& clouds,
                                        const std::string& config_name = "config.yaml");

// Where openstacksdk looks for clouds.yaml, in order: $OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
// ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml.
std::vector<std::string> clouds_yaml_search_path(const std::string& env_client_config_file,
                                                 const std::string& home);

// The token URL for an auth_url given with or without its version: ".../v3" and ".../v3/" become
// ".../v3/auth/tokens", an unversioned "https://keystone:5000" becomes ".../v3/auth/tokens".
std::string token_url(std::string_view auth_url);

// The JSON body of POST /v3/auth/tokens (contract §1 a and b). Contains the secret: send it, never
// log it. Application credentials carry no scope (Keystone rejects one).
std::string auth_request_body(const Credentials& credentials);

struct Token {
  std::string id;  // from X-Subject-Token; secret
  TimePoint expires_at{};
  nlohmann::json catalog = nlohmann::json::array();
  std::string project_id;
};

// Parses a 201 answer: the X-Subject-Token header value and the body's token.expires_at and
// token.catalog.
Result<Token> parse_token_response(std::string_view subject_token, std::string_view body);

// keystoneauth renews a token this long before it expires (MIN_TOKEN_LIFE_SECONDS).
inline constexpr std::chrono::seconds kTokenRenewMargin{120};
inline bool token_needs_renewal(const Token& token, TimePoint now) {
  return token.id.empty() || now + kTokenRenewMargin >= token.expires_at;
}

// The endpoint URL of a service type from the catalog, as keystoneauth chooses it: match `type`,
// keep the endpoints of `interface` (v2 spellings such as publicURL normalised), and when a region
// is given match it against region_id, then region. The URL comes back without a trailing slash.
Result<std::string> select_endpoint(const nlohmann::json& catalog, std::string_view service_type,
                                    std::string_view interface, std::string_view region);

// The human message of an OpenStack error body, whichever service's format it is in: Keystone's
// {"error":{"message"}}, Nova's {"<faultName>":{"message"}}, Designate's {"message"}, or plain
// text/HTML (Swift), shortened. Empty when the body says nothing useful.
std::string error_message_of(std::string_view body);

}  // namespace unshelver::core::openstack
