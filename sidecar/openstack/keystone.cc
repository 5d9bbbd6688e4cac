#include "openstack/keystone.h"

#include <yaml-cpp/yaml.h>

#include "base/text.h"
#include "base/time_format.h"

namespace unshelver::core::openstack {

namespace {
using nlohmann::json;

std::string at_line(const CloudsFile& file, const YAML::Mark& mark) {
  return file.path + (mark.is_null() ? std::string() : ":" + std::to_string(mark.line + 1));
}

// Reads one string key of a clouds.yaml map into `out` unless config.yaml already set it.
void take(const YAML::Node& map, const char* key, std::string& out) {
  if (!out.empty() || !map.IsMap()) return;
  const YAML::Node value = map[key];
  if (value && value.IsScalar() && !value.Scalar().empty()) out = value.Scalar();
}

std::optional<bool> as_bool(const std::string& text) {
  const std::string word = to_lower(text);
  if (word == "true" || word == "yes" || word == "on" || word == "1") return true;
  if (word == "false" || word == "no" || word == "off" || word == "0") return false;
  return std::nullopt;
}

std::string extra_or_empty(const OpenStackSettings& settings, const char* key) {
  auto found = settings.extra.find(key);
  return found == settings.extra.end() ? std::string() : found->second;
}

Credentials from_settings(const OpenStackSettings& settings, const std::string& config_name) {
  Credentials credentials;
  credentials.auth_url = settings.auth_url;
  credentials.username = settings.username;
  credentials.user_id = extra_or_empty(settings, "user_id");
  credentials.password = settings.password;
  credentials.project_name = settings.project_name;
  credentials.project_id = settings.project_id;
  credentials.user_domain_id = extra_or_empty(settings, "user_domain_id");
  credentials.project_domain_id = extra_or_empty(settings, "project_domain_id");
  credentials.application_credential_id = settings.application_credential_id;
  credentials.application_credential_name = extra_or_empty(settings, "application_credential_name");
  credentials.application_credential_secret = settings.application_credential_secret;
  credentials.region_name = settings.region_name;
  credentials.interface = settings.interface.empty() ? "public" : settings.interface;
  credentials.verify = settings.verify;
  credentials.cacert = settings.cacert;
  credentials.source = config_name;
  return credentials;
}

Status merge_cloud_entry(const CloudsFile& file, const YAML::Node& entry, const std::string& cloud,
                         Credentials& credentials, bool& domains_from_cloud_user,
                         bool& domains_from_cloud_project) {
  const std::string where = at_line(file, entry.Mark()) + ": clouds." + cloud;
  if (!entry.IsMap()) return Error{where + ": expected a map"};
  const YAML::Node auth = entry["auth"];
  if (auth && !auth.IsMap())
    return Error{at_line(file, auth.Mark()) + ": clouds." + cloud + ".auth: expected a map"};
  if (auth) {
    take(auth, "auth_url", credentials.auth_url);
    take(auth, "username", credentials.username);
    take(auth, "user_id", credentials.user_id);
    take(auth, "password", credentials.password);
    take(auth, "project_name", credentials.project_name);
    take(auth, "project_id", credentials.project_id);
    // openstacksdk accepts tenant_* as the Keystone v2 spellings of project_*.
    take(auth, "tenant_name", credentials.project_name);
    take(auth, "tenant_id", credentials.project_id);
    take(auth, "application_credential_id", credentials.application_credential_id);
    take(auth, "application_credential_name", credentials.application_credential_name);
    take(auth, "application_credential_secret", credentials.application_credential_secret);
    take(auth, "user_domain_id", credentials.user_domain_id);
    take(auth, "project_domain_id", credentials.project_domain_id);
    std::string user_domain_name;
    std::string project_domain_name;
    take(auth, "user_domain_name", user_domain_name);
    take(auth, "project_domain_name", project_domain_name);
    // `domain_name`/`domain_id` set both, as openstacksdk's loader does.
    take(auth, "domain_name", user_domain_name);
    take(auth, "domain_name", project_domain_name);
    take(auth, "domain_id", credentials.user_domain_id);
    take(auth, "domain_id", credentials.project_domain_id);
    if (!user_domain_name.empty()) {
      credentials.user_domain_name = user_domain_name;
      domains_from_cloud_user = true;
    }
    if (!project_domain_name.empty()) {
      credentials.project_domain_name = project_domain_name;
      domains_from_cloud_project = true;
    }
  }
  take(entry, "region_name", credentials.region_name);
  if (const YAML::Node interface = entry["interface"]; interface && interface.IsScalar()) {
    std::string word = to_lower(interface.Scalar());
    if (word.ends_with("url")) word.resize(word.size() - 3);
    if (word != "public" && word != "internal" && word != "admin") {
      return Error{at_line(file, interface.Mark()) + ": clouds." + cloud +
                   ".interface: must be public, internal or admin, got \"" + interface.Scalar() + "\""};
    }
    credentials.interface = word;
  }
  if (const YAML::Node verify = entry["verify"]; verify && verify.IsScalar()) {
    if (auto flag = as_bool(verify.Scalar())) {
      credentials.verify = credentials.verify && *flag;
    } else if (credentials.cacert.empty()) {
      credentials.cacert = verify.Scalar();
    }
  }
  take(entry, "cacert", credentials.cacert);
  if (const YAML::Node type = entry["auth_type"]; type && type.IsScalar()) {
    const std::string auth_type = to_lower(type.Scalar());
    if (auth_type == "v3applicationcredential" || auth_type == "applicationcredential") {
      credentials.method = AuthMethod::kApplicationCredential;
    } else if (auth_type == "password" || auth_type == "v3password") {
      credentials.method = AuthMethod::kPassword;
    } else {
      return Error{at_line(file, type.Mark()) + ": clouds." + cloud + ".auth_type: \"" + type.Scalar() +
                   "\" is not supported (use password, v3password or v3applicationcredential)"};
    }
  }
  credentials.source = "clouds.yaml entry '" + cloud + "' (" + file.path + ")";
  return ok_status();
}

Status check_complete(const Credentials& credentials) {
  const std::string from = " (from " + credentials.source + ")";
  if (credentials.auth_url.empty()) return Error{"no auth_url" + from};
  if (!credentials.auth_url.starts_with("http://") && !credentials.auth_url.starts_with("https://")) {
    return Error{"auth_url must be an http:// or https:// URL" + from};
  }
  if (credentials.method == AuthMethod::kApplicationCredential) {
    if (credentials.application_credential_secret.empty())
      return Error{"no application_credential_secret" + from};
    if (credentials.application_credential_id.empty()) {
      if (credentials.application_credential_name.empty()) {
        return Error{"no application_credential_id (or application_credential_name)" + from};
      }
      if (credentials.user_id.empty() && credentials.username.empty()) {
        return Error{"an application credential given by name needs the user (username or user_id)" + from};
      }
    }
    return ok_status();
  }
  std::vector<std::string> missing;
  if (credentials.username.empty() && credentials.user_id.empty()) missing.emplace_back("username");
  if (credentials.password.empty()) missing.emplace_back("password");
  if (credentials.project_name.empty() && credentials.project_id.empty())
    missing.emplace_back("project_name");
  if (missing.empty()) return ok_status();
  std::string list;
  for (const std::string& key : missing) list += (list.empty() ? "" : ", ") + key;
  return Error{"incomplete password credentials, missing " + list + from};
}

json domain_of(const std::string& id, const std::string& name) {
  if (!id.empty()) return json{{"id", id}};
  return json{{"name", name.empty() ? "Default" : name}};
}
}  // namespace

std::vector<std::string> clouds_yaml_search_path(const std::string& env_client_config_file,
                                                 const std::string& home) {
  std::vector<std::string> paths;
  if (!env_client_config_file.empty()) paths.push_back(env_client_config_file);
  paths.emplace_back("clouds.yaml");
  if (!home.empty()) paths.push_back(home + "/.config/openstack/clouds.yaml");
  paths.emplace_back("/etc/openstack/clouds.yaml");
  return paths;
}

Result<Credentials> resolve_credentials(const OpenStackSettings& settings,
                                        const std::vector<CloudsFile>& clouds,
                                        const std::string& config_name) {
  Credentials credentials = from_settings(settings, config_name);
  credentials.user_domain_name = settings.user_domain_name;
  credentials.project_domain_name = settings.project_domain_name;
  bool user_domain_from_cloud = false;
  bool project_domain_from_cloud = false;
  if (!settings.application_credential_id.empty() || !settings.application_credential_secret.empty()) {
    credentials.method = AuthMethod::kApplicationCredential;
  }
  if (!settings.cloud.empty()) {
    bool found = false;
    std::vector<std::string> looked;
    for (const CloudsFile& file : clouds) {
      looked.push_back(file.path);
      YAML::Node root;
      try {
        root = YAML::Load(file.text);
      } catch (const YAML::Exception& error) {
        return Error{file.path + ":" + std::to_string(error.mark.line + 1) + ": " + error.msg};
      }
      const YAML::Node all = root.IsMap() ? root["clouds"] : YAML::Node();
      if (!all || !all.IsMap() || !all[settings.cloud]) continue;
      if (Status merged = merge_cloud_entry(file, all[settings.cloud], settings.cloud, credentials,
                                            user_domain_from_cloud, project_domain_from_cloud);
          !merged) {
        return merged.error();
      }
      if (!credentials.application_credential_secret.empty() && credentials.method == AuthMethod::kPassword &&
          credentials.password.empty()) {
        credentials.method = AuthMethod::kApplicationCredential;
      }
      found = true;
      break;
    }
    if (!found) {
      std::string list;
      for (const std::string& path : looked) list += (list.empty() ? "" : ", ") + path;
      return Error{"openstack.cloud: no cloud named '" + settings.cloud +
                   "' in any clouds.yaml (looked in: " + (list.empty() ? "no file found" : list) + ")"};
    }
  }
  // A domain id (from config.yaml's extra keys or clouds.yaml) replaces the config model's
  // default domain name, which must then not be sent alongside it.
  if (!credentials.user_domain_id.empty() && !user_domain_from_cloud &&
      settings.user_domain_name == "Default") {
    credentials.user_domain_name.clear();
  }
  if (!credentials.project_domain_id.empty() && !project_domain_from_cloud &&
      settings.project_domain_name == "Default") {
    credentials.project_domain_name.clear();
  }
  if (Status complete = check_complete(credentials); !complete) return complete.error();
  return credentials;
}

std::string token_url(std::string_view auth_url) {
  std::string base(auth_url);
  while (base.ends_with('/')) base.pop_back();
  if (base.ends_with("/v3")) return base + "/auth/tokens";
  return base + "/v3/auth/tokens";
}

std::string auth_request_body(const Credentials& credentials) {
  json identity;
  json scope;
  if (credentials.method == AuthMethod::kApplicationCredential) {
    json credential{{"secret", credentials.application_credential_secret}};
    if (!credentials.application_credential_id.empty()) {
      credential["id"] = credentials.application_credential_id;
    } else {
      credential["name"] = credentials.application_credential_name;
      credential["user"] =
          !credentials.user_id.empty()
              ? json{{"id", credentials.user_id}}
              : json{{"name", credentials.username},
                     {"domain", domain_of(credentials.user_domain_id, credentials.user_domain_name)}};
    }
    identity = {{"methods", {"application_credential"}}, {"application_credential", credential}};
  } else {
    json user = !credentials.user_id.empty()
                    ? json{{"id", credentials.user_id}}
                    : json{{"name", credentials.username},
                           {"domain", domain_of(credentials.user_domain_id, credentials.user_domain_name)}};
    user["password"] = credentials.password;
    identity = {{"methods", {"password"}}, {"password", {{"user", user}}}};
    json project =
        !credentials.project_id.empty()
            ? json{{"id", credentials.project_id}}
            : json{{"name", credentials.project_name},
                   {"domain", domain_of(credentials.project_domain_id, credentials.project_domain_name)}};
    scope = {{"project", project}};
  }
  json auth{{"identity", identity}};
  if (!scope.is_null()) auth["scope"] = scope;
  return json{{"auth", auth}}.dump();
}

Result<Token> parse_token_response(std::string_view subject_token, std::string_view body) {
  if (trim(subject_token).empty()) return Error{"Keystone answered without an X-Subject-Token header"};
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("token") || !document["token"].is_object()) {
    return Error{"Keystone's token answer is not the documented JSON ({\"token\": {...}})"};
  }
  const json& token = document["token"];
  Token parsed;
  parsed.id = std::string(trim(subject_token));
  if (!token.contains("expires_at") || !token["expires_at"].is_string()) {
    return Error{"Keystone's token has no expires_at"};
  }
  auto expires = parse_rfc3339(token["expires_at"].get<std::string>());
  if (!expires) return Error{"Keystone's token expires_at is not an ISO 8601 UTC time"};
  parsed.expires_at = *expires;
  if (token.contains("catalog") && token["catalog"].is_array()) parsed.catalog = token["catalog"];
  if (token.contains("project") && token["project"].is_object() && token["project"].contains("id") &&
      token["project"]["id"].is_string()) {
    parsed.project_id = token["project"]["id"].get<std::string>();
  }
  return parsed;
}

Result<std::string> select_endpoint(const nlohmann::json& catalog, std::string_view service_type,
                                    std::string_view interface, std::string_view region) {
  std::string wanted = to_lower(interface.empty() ? "public" : interface);
  if (wanted.ends_with("url")) wanted.resize(wanted.size() - 3);
  bool type_seen = false;
  std::vector<std::string> regions_seen;
  if (catalog.is_array()) {
    for (const json& service : catalog) {
      if (!service.is_object() || service.value("type", "") != service_type) continue;
      type_seen = true;
      if (!service.contains("endpoints") || !service["endpoints"].is_array()) continue;
      for (const json& endpoint : service["endpoints"]) {
        if (!endpoint.is_object()) continue;
        std::string endpoint_interface = to_lower(endpoint.value("interface", ""));
        if (endpoint_interface.ends_with("url")) endpoint_interface.resize(endpoint_interface.size() - 3);
        if (endpoint_interface != wanted) continue;
        const std::string region_id = endpoint.value("region_id", "");
        const std::string region_name = endpoint.value("region", "");
        if (!region.empty()) {
          // keystoneauth matches region_id first and falls back to the older `region` field.
          const std::string& effective = region_id.empty() ? region_name : region_id;
          if (effective != region && region_name != region) {
            regions_seen.push_back(effective);
            continue;
          }
        }
        std::string url = endpoint.value("url", "");
        if (url.empty()) continue;
        while (url.ends_with('/')) url.pop_back();
        return url;
      }
    }
  }
  std::string message = "the service catalog has no " + std::string(service_type) + " endpoint";
  if (!type_seen) return Error{message + " (is the service deployed in this cloud?)"};
  message += " for interface " + wanted;
  if (!region.empty()) {
    message += " in region " + std::string(region);
    if (!regions_seen.empty()) {
      std::string list;
      for (const std::string& name : regions_seen) list += (list.empty() ? "" : ", ") + name;
      message += " (regions offered: " + list + ")";
    }
  }
  return Error{message};
}

std::string error_message_of(std::string_view body) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto message_in = [](const json& object) -> std::string {
    if (object.is_object() && object.contains("message") && object["message"].is_string()) {
      return object["message"].get<std::string>();
    }
    return "";
  };
  if (document.is_object()) {
    if (std::string direct = message_in(document); !direct.empty()) return direct;
    // Keystone {"error": {...}} and Nova {"<faultName>": {...}} both nest one object.
    for (const auto& [key, value] : document.items()) {
      if (std::string nested = message_in(value); !nested.empty()) return nested;
    }
    return "";
  }
  // Swift and proxies answer in HTML or plain text: keep the text, without tags, shortened.
  std::string text;
  bool in_tag = false;
  for (char c : body) {
    if (c == '<') {
      in_tag = true;
      if (!text.empty() && text.back() != ' ') text += ' ';
    } else if (c == '>') {
      in_tag = false;
    } else if (!in_tag) {
      text += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    }
  }
  std::string cleaned(trim(text));
  if (cleaned.size() > 200) cleaned = cleaned.substr(0, 200) + "...";
  return cleaned;
}

}  // namespace unshelver::core::openstack
