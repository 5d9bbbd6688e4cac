#include "config/checks.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <map>
#include <optional>
#include <regex>
#include <tuple>
#include <utility>

#include "base/text.h"
#include "base/url.h"
#include "config/caddy_admin.h"
#include "config/secret_policy.h"

namespace unshelver::core::config_detail {

namespace {

// The Python unshelver's minimum for its two shared secrets; shorter ones are guessable.
constexpr std::size_t kMinSecretLength = 16;
// In production the two secrets guard a public host: 32 random characters at least (128 bits and
// more from `openssl rand -hex 16` or longer).
constexpr std::size_t kMinProductionSecretLength = 32;

constexpr std::string_view kInterfaces[] = {"public", "internal", "admin"};

bool is_identifier(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_';
  });
}

// Letters, digits, '-', '_' and '.': a host name or an IPv4 address, nothing more.
bool is_hostname(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

// An absolute URL (base/url.h) whose scheme, in any case, is one of `schemes`, with a host and a
// valid port if it has one.
bool is_url_with_host(std::string_view text, std::initializer_list<std::string_view> schemes) {
  const std::optional<Url> url = parse_url(text);
  if (!url || std::find(schemes.begin(), schemes.end(), to_lower(url->scheme)) == schemes.end()) return false;
  const Result<Authority> authority = parse_authority(url->authority);
  return authority.ok() && !authority->host.empty();
}

}  // namespace

// --- Value checks ----------------------------------------------------------------------------------

// A label ends up in an HTTP header value and a Caddyfile. The characters are those the Caddy
// renderer accepts, and the labels of Unshelver's own fallback answers are reserved (a backend
// labelled like them would count fallback answers as activity).
std::string check_label(std::string_view label) {
  const bool ok = !label.empty() && std::all_of(label.begin(), label.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("._-:+=@/~").find(c) != std::string_view::npos;
  });
  if (!ok) return "must be a non-empty word of letters, digits and ._-:+=@/~, got " + quote(label);
  if (label == "launcher" || label == "launcher-fallback" || label == "fallback-static") {
    return quote(label) + " is reserved for Unshelver's own fallback answers";
  }
  return "";
}

std::string check_email(std::string_view text) {
  // Each address goes into a mail header (events/notification.h): nothing that could break one.
  for (const std::string& address : split_addresses(text)) {
    if (!is_plain_mail_address(address)) {
      return "expected an email address (or several separated by commas), got " + quote(address);
    }
  }
  if (!text.empty() && split_addresses(text).empty()) return "expected an email address, got " + quote(text);
  return "";
}

bool is_plain_mail_address(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= address.size() || address.size() > 254)
    return false;
  return std::all_of(address.begin(), address.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte > 0x20 && byte < 0x7f && std::string_view("\"(),:;<>[\\]").find(c) == std::string_view::npos;
  });
}

std::vector<std::string> split_addresses(std::string_view text) {
  std::vector<std::string> addresses;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view address = trim(text.substr(start, comma - start));
    if (!address.empty()) addresses.emplace_back(address);
    start = comma + 1;
  }
  return addresses;
}

std::string check_not_empty(std::string_view text) {
  return text.empty() ? "must not be empty" : "";
}

// The Python unshelver's pattern: the path becomes a route of its own.
std::string check_shelve_route(std::string_view route) {
  const bool ok = route.size() > 1 && route.front() == '/' &&
                  std::all_of(route.begin(), route.end(), [](unsigned char c) {
                    return std::isalnum(c) || c == '/' || c == '-' || c == '_';
                  });
  if (ok) return "";
  return "must start with '/' and contain only letters, digits, '/', '-' and '_', got " + quote(route);
}

std::optional<std::string> normal_interface(std::string_view text) {
  // openstacksdk also accepts the Keystone v2 spellings publicURL, internalURL, adminURL.
  std::string word = to_lower(text);
  if (word.ends_with("url")) word.resize(word.size() - 3);
  for (const std::string_view name : kInterfaces) {
    if (name == word) return std::string(name);
  }
  return std::nullopt;
}

std::string check_interface(std::string_view text) {
  if (text.empty() || normal_interface(text)) return "";
  return "must be one of " + list_names(kInterfaces) + ", got " + quote(text);
}

std::string check_admin_url(std::string_view url) {
  const Result<CaddyAdminEndpoint> endpoint = parse_caddy_admin(url);
  return endpoint.ok() ? "" : endpoint.error().message;
}

// Caddy resolves relative imports against its own working directory (caddy-facts §5a).
std::string check_absolute_path(std::string_view text) {
  if (!text.empty() && text.front() != '/') return "must be an absolute path, got " + quote(text);
  return "";
}

std::string check_site_url(std::string_view url) {
  if (!is_url_with_host(url, {"http", "https"})) {
    return "expected a URL such as https://gpu.example.org, got " + quote(url);
  }
  return "";
}

std::string check_bind(std::string_view text) {
  if (!text.empty() && !is_hostname(text)) return "expected an IP address or host name, got " + quote(text);
  return "";
}

std::string check_api_key_digest(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  const bool hex_digits = text.size() == kPrefix.size() + 64 && text.starts_with(kPrefix) &&
                          std::all_of(text.begin() + kPrefix.size(), text.end(), [](char c) {
                            return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                          });
  if (hex_digits) return "";
  return "expected \"sha256:\" and the 64 hex digits of the key's SHA-256 digest (`unshelver hash-key` "
         "prints "
         "it); the value is not shown, in case it is a key";
}

std::string check_identifier(std::string_view id) {
  if (is_identifier(id)) return "";
  return "must contain only letters, digits, '-' and '_' (it is used in URLs), got " + quote(id);
}

std::string check_instance_name(std::string_view name) {
  constexpr std::size_t kMaxInstanceName = 63;
  const bool ok = !name.empty() && name.size() <= kMaxInstanceName &&
                  std::all_of(name.begin(), name.end(), [](unsigned char c) {
                    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
                  });
  if (ok) return "";
  return "must be 1 to 63 letters, digits, '-', '_' or '.' (it is part of etcd's keys), got " + quote(name);
}

std::string check_backend_url(std::string_view url) {
  if (url.empty()) return "";
  if (!is_url_with_host(url, {"http", "https"})) {
    return "expected an http:// or https:// URL with a host, got " + quote(url);
  }
  return "";
}

std::string check_bare_host(std::string_view host) {
  if (host.empty() || is_hostname(host)) return "";
  return "expected a bare host name such as chat.example.org (no scheme, port or path), got " + quote(host);
}

std::string check_regex(std::string_view pattern) {
  try {
    const std::regex compiled{std::string(pattern), std::regex::ECMAScript | std::regex::icase};
    static_cast<void>(compiled);
  } catch (const std::regex_error& error) {
    return "not a valid regular expression: " + std::string(error.what());
  }
  return "";
}

// --- Cross-field rules -------------------------------------------------------------------------------

void finish_app(Draft& draft) {
  AppSettings& app = draft.config.app;
  // Without the key: six poll intervals, and never more often than every 30 s, so that many
  // settled backends do not keep the cloud's API busy.
  app.settled_poll_interval = draft.settled_poll_seconds ? millis_from_seconds(*draft.settled_poll_seconds)
                                                         : std::max(app.poll_interval * 6, Millis(30'000));
}

void finish_openstack_section(Reader& reader, Draft& draft) {
  OpenStackSettings& os = draft.config.openstack;
  if (os.cacert.empty() && !draft.verify_path.empty()) os.cacert = draft.verify_path;
  if (!os.auth_url.empty() && !os.auth_url.starts_with("http://") && !os.auth_url.starts_with("https://")) {
    reader.add_at(draft.auth_url_where.value_or(Where{}), "openstack.auth_url",
                  "must be an http:// or https:// URL, got " + quote(os.auth_url));
  }
}

namespace {

// A boot's patience, as a duration: boot_timeout_seconds when written. Otherwise an attempts
// count written for the Python controller keeps its meaning there, the longest its probe loop
// ran: `attempts` probes of up to the probe timeout each, with the probe interval between two
// (computed once, so probing faster later never turns a slow boot into an error). With neither,
// ten minutes, and never more than the unshelve timeout, which bounds the whole wake anyway.
Millis boot_timeout(const Draft& draft, const BackendConfig& backend, const ButtonDraft& button) {
  if (button.boot_timeout_seconds) return millis_from_seconds(*button.boot_timeout_seconds);
  const std::optional<long long> attempts =
      button.health_attempts             ? button.health_attempts
      : button.probe_attempts            ? button.probe_attempts
      : draft.app_probe_attempts_written ? std::optional<long long>(draft.config.app.http_probe_attempts)
                                         : std::nullopt;
  const Millis unshelve = backend.unshelve_timeout;
  if (!attempts) return std::min<Millis>(std::chrono::minutes(10), unshelve);
  if (*attempts <= 0) return unshelve;  // health.attempts: 0 meant "until the unshelve timeout"
  auto seconds = [](Millis value) { return std::chrono::duration<double>(value).count(); };
  const double longest = static_cast<double>(*attempts) * seconds(backend.health.timeout) +
                         static_cast<double>(*attempts - 1) * seconds(backend.health.interval);
  return millis_from_seconds(std::min(longest, kMaxSeconds));
}

// Applies the precedence rules: the button's own key, then the top level (or app), then the
// built-in default.
void finish_button(const Draft& draft, BackendConfig& backend, const ButtonDraft& button) {
  backend.label = button.label && !button.label->empty() ? *button.label : backend.name;
  if (button.host) backend.host = *button.host;

  const AppSettings& app = draft.config.app;
  HealthSettings& health = backend.health;
  if (button.health_path) {
    health.path = with_leading_slash(*button.health_path);
  } else if (button.healthcheck_path) {
    health.path = with_leading_slash(*button.healthcheck_path);
  }
  if (button.health_interval_seconds) {
    health.interval = millis_from_seconds(*button.health_interval_seconds);
  } else if (button.probe_interval_seconds) {
    health.interval = millis_from_seconds(*button.probe_interval_seconds);
  } else {
    health.interval = app.poll_interval;
  }
  health.timeout = button.health_timeout_seconds ? millis_from_seconds(*button.health_timeout_seconds)
                                                 : app.http_probe_timeout;

  if (button.idle_seconds) {
    backend.idle_timeout = whole_seconds(*button.idle_seconds);
  } else if (button.idle_minutes) {
    backend.idle_timeout = whole_seconds(*button.idle_minutes * 60);
  } else if (draft.top_idle_seconds) {
    backend.idle_timeout = whole_seconds(*draft.top_idle_seconds);
  } else if (draft.top_idle_minutes) {
    backend.idle_timeout = whole_seconds(*draft.top_idle_minutes * 60);
  } else {
    backend.idle_timeout = std::chrono::minutes(60);
  }
  backend.upstream_label = button.upstream_label ? *button.upstream_label : draft.config.caddy_upstream_label;
  backend.routing = button.routing ? *button.routing : draft.config.caddy.routing;
  backend.unshelve_timeout = button.unshelve_minutes
                                 ? whole_seconds(*button.unshelve_minutes * 60)
                                 : std::chrono::duration_cast<std::chrono::seconds>(app.unshelve_timeout);
  backend.boot_timeout = boot_timeout(draft, backend, button);
}

// Remembers where each value was first used, and reports a second use.
class UniqueValues {
 public:
  UniqueValues(Reader& reader, std::string what) : reader_(reader), what_(std::move(what)) {}

  void check(const std::string& value, const Where& where, const std::string& button_path,
             const std::string& key) {
    if (value.empty()) return;
    const auto [first, inserted] = seen_.emplace(value, std::make_pair(button_path, where.line));
    if (inserted) return;
    reader_.add_at(where, button_path + "." + key,
                   "duplicate " + what_ + " " + quote(value) + " (also used by " + first->second.first +
                       " on line " + std::to_string(first->second.second) + ")");
  }

 private:
  Reader& reader_;
  std::string what_;
  std::map<std::string, std::pair<std::string, int>> seen_;  // value -> (path, line)
};

}  // namespace

void resolve_buttons(Reader& reader, Draft& draft, bool backends_required) {
  const std::string path = reader.buttons_path().empty() ? "buttons" : reader.buttons_path();
  const std::optional<YAML::Node>& node = reader.buttons();
  if (!backends_required && (!node || node->IsNull())) return;
  if (!node || node->IsNull()) {
    // A null value has no useful mark of its own; the parent mapping's line is the place.
    reader.add_at(draft.root_where, path, "missing required key: at least one button (backend) is required");
    return;
  }
  const YAML::Node& buttons = *node;
  if (!buttons.IsSequence()) {
    reader.add_at(buttons, path, "expected a list of buttons, got " + Reader::describe(buttons, false));
    return;
  }
  if (buttons.size() == 0) {
    reader.add_at(buttons, path, "at least one button (backend) is required");
    return;
  }
  UniqueValues ids(reader, "button id");
  UniqueValues instances(reader, "instance");
  UniqueValues hosts(reader, "host");
  for (std::size_t i = 0; i < buttons.size(); ++i) {
    const YAML::Node item = buttons[i];
    const std::string button_path = path + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) {
      reader.add_at(item, button_path,
                    "expected a mapping with the button's keys, got " + Reader::describe(item, false));
      continue;
    }
    BackendConfig backend;
    ButtonDraft button;
    draft.backend = &backend;
    draft.button = &button;
    reader.walk(item, "buttons[]", button_path);
    draft.backend = nullptr;
    draft.button = nullptr;
    const Where item_where = where_of(item.Mark());
    // An unknown provider was reported where it was read; its own checks are skipped.
    const bool provider_invalid = !button.provider_set && std::as_const(item)["provider"].IsDefined() &&
                                  !std::as_const(item)["provider"].IsNull();
    const bool openstack = backend.provider == ProviderKind::kOpenStack && !provider_invalid;
    const bool exoscale = backend.provider == ProviderKind::kExoscale && !provider_invalid;
    if ((openstack || exoscale) && backend.instance_name.empty() && backend.instance_id.empty()) {
      reader.add_at(item_where, button_path + ".instance_name",
                    std::string("missing required key `instance_name` (or `instance_id`) for provider ") +
                        (openstack ? "\"openstack\"" : "\"exoscale\""));
    }
    if (exoscale) {
      if (backend.exoscale.zone.empty()) backend.exoscale.zone = draft.config.exoscale.zone;
      if (draft.first_exoscale_button.empty()) {
        draft.first_exoscale_button = button_path;
        draft.first_exoscale_where = item_where;
      }
    }
    if (backend.provider == ProviderKind::kCommand && !provider_invalid) {
      // Each command's program is its first element; an empty one could only fail at run time.
      const YAML::Node commands = std::as_const(item)["command"];
      // A missing command is reported at the `provider: command` line that asked for it.
      const YAML::Node provider = std::as_const(item)["provider"];
      const Where missing_where = provider.IsDefined() ? where_of(provider.Mark()) : item_where;
      for (auto [argv, name] :
           {std::pair{&backend.command.wake, "wake"}, std::pair{&backend.command.sleep, "sleep"},
            std::pair{&backend.command.observe, "observe"}}) {
        // (A default YAML::Node counts as defined, so the section's absence is tested here.)
        const bool section = commands.IsDefined() && commands.IsMap();
        const YAML::Node written = section ? std::as_const(commands)[name] : YAML::Node();
        if (argv->empty() || argv->front().empty()) {
          reader.add_at(section && written.IsDefined() ? where_of(written.Mark()) : missing_where,
                        button_path + ".command." + name,
                        argv->empty() ? "missing required key `command." + std::string(name) +
                                            "` (the program and its arguments) for provider \"command\""
                                      : std::string("the program (the first element) must not be empty"));
        }
      }
    }
    finish_button(draft, backend, button);
    // A shelved machine that cost more than a running one would make every saving negative: a
    // slip between the two keys, most likely.
    if (backend.price && backend.price->asleep_per_hour > backend.price->running_per_hour) {
      const YAML::Node price = std::as_const(item)["price"];
      reader.add_at(std::as_const(price)["asleep_per_hour"], button_path + ".price.asleep_per_hour",
                    "must not be more than running_per_hour");
    }

    ids.check(backend.name, button.id_where.value_or(item_where), button_path, "id");
    if (openstack) {
      const bool by_id = !backend.instance_id.empty();
      instances.check(by_id ? "id:" + backend.instance_id : backend.instance_name,
                      button.instance_where.value_or(item_where), button_path,
                      by_id ? "instance_id" : "instance_name");
    }
    hosts.check(backend.host, button.host_where ? *button.host_where : button.id_where.value_or(item_where),
                button_path, "host");
    if (openstack && draft.first_openstack_button.empty()) {
      draft.first_openstack_button = button_path;
      draft.first_openstack_where = item_where;
    }
    draft.config.backends.push_back(std::move(backend));
  }
}

void check_caddy(Reader& reader, const Draft& draft) {
  const Config& config = draft.config;
  if (!config.caddy.manage) return;
  const Where where = draft.caddy_where.value_or(draft.root_where);
  if (config.caddy.launcher_url.empty()) {
    reader.add_at(where, "caddy.launcher_url",
                  "is required with caddy.manage: true (the launcher's site address)");
  }
  for (std::size_t i = 0; i < config.backends.size(); ++i) {
    if (config.backends[i].public_base_url.empty()) {
      reader.add_at(where, "buttons[" + std::to_string(i) + "].public_base_url",
                    "is required with caddy.manage: true (the backend's site address in Caddy)");
    }
  }
}

void check_ha(Reader& reader, const Draft& draft) {
  const HaSettings& ha = draft.config.ha;
  const Where where = draft.ha_where.value_or(draft.root_where);
  // Without members the other keys wait unused (one instance), like a commented-out etcd list.
  if (!ha.enabled()) return;
  if (ha.cert_file.empty() != ha.key_file.empty()) {
    reader.add_at(where, ha.cert_file.empty() ? "ha.cert_file" : "ha.key_file",
                  "a client certificate needs both ha.cert_file and ha.key_file");
  }
  if (!ha.username.empty() && draft.etcd_password.value.empty()) {
    reader.add_at(where, "ha.password",
                  "is required with ha.username; set it in the secrets file ([ha] password), ha.password or "
                  "UNSHELVER_ETCD_PASSWORD");
  }
  if (ha.username.empty() && !draft.etcd_password.value.empty()) {
    reader.add_at(draft.etcd_password, "is set but ha.username is not (etcd needs both)");
  }
}

void check_secret_lengths(Reader& reader, const Draft& draft) {
  for (const Secret* secret : {&draft.control_token, &draft.secret_key}) {
    if (!secret->value.empty() && secret->value.size() < kMinSecretLength) {
      reader.add_at(*secret, "must be at least " + std::to_string(kMinSecretLength) +
                                 " characters long (the value is not shown)");
    }
  }
}

// `app.env: production` (as UptimeMesh does): a public deployment must not start with a missing,
// short, guessable or copied secret. Every weak secret is named, with where its value came from;
// the value itself never appears.
void check_production_secrets(Reader& reader, const Draft& draft) {
  const std::string why = " (app.env is production)";
  for (auto [secret, key, environment] :
       {std::tuple{&draft.control_token, "app.control_token", "UNSHELVER_CONTROL_TOKEN"},
        std::tuple{&draft.secret_key, "app.secret_key", "UNSHELVER_SECRET_KEY"}}) {
    const std::string weakness = secret_weakness(secret->value, kMinProductionSecretLength);
    if (weakness.empty()) continue;
    if (secret->value.empty()) {
      reader.add_at(draft.env_where.value_or(Where{}), key,
                    weakness + why + ": set it in the secrets file or " + environment +
                        ", e.g. from `openssl rand -hex 32`");
    } else {
      reader.add_at(*secret, weakness + why);
    }
  }
  // The cloud's own secrets are not ours to judge for strength, but a value copied from the
  // examples is certainly wrong.
  for (auto [secret, key] : {std::pair{&draft.os_password, "openstack.password"},
                             std::pair{&draft.os_app_secret, "openstack.application_credential_secret"}}) {
    if (!secret->value.empty() && is_placeholder_secret(secret->value)) {
      reader.add_at(*secret, "is the example value" + why);
    }
  }
}

// Exoscale backends need the API key and secret; where they may come from is said in the message.
void check_exoscale(Reader& reader, Draft& draft) {
  if (draft.first_exoscale_button.empty()) return;
  const std::string user = draft.first_exoscale_button + " uses provider \"exoscale\"";
  if (draft.exoscale_api_key.value.empty()) {
    reader.add_at(
        draft.first_exoscale_where, "exoscale.api_key",
        "missing required key `api_key`: " + user +
            "; set it in the secrets file ([exoscale] api_key), exoscale.api_key or EXOSCALE_API_KEY");
  } else if (!draft.exoscale_api_key.value.starts_with("EXO")) {
    reader.add_at(draft.exoscale_api_key, "is not an Exoscale API key (those start with EXO)");
  }
  if (draft.exoscale_api_secret.value.empty()) {
    reader.add_at(draft.first_exoscale_where, "exoscale.api_secret",
                  "missing required key `api_secret`: " + user +
                      "; set it in the secrets file ([exoscale] api_secret), exoscale.api_secret or "
                      "EXOSCALE_API_SECRET");
  }
}

// OpenStack settings are needed by OpenStack backends and by the Swift event mirror. A clouds.yaml
// entry (`cloud`) carries its own credentials, so none are required then.
void check_openstack(Reader& reader, Draft& draft) {
  const Config& config = draft.config;
  const bool needed = !draft.first_openstack_button.empty() || config.swift_event_container;
  if (!needed) return;
  const std::string user = !draft.first_openstack_button.empty()
                               ? draft.first_openstack_button + " uses provider \"openstack\""
                               : "swift_event_container is set";
  const OpenStackSettings& os = config.openstack;
  if (!os.configured) {
    const Where where = draft.first_openstack_button.empty() ? draft.root_where : draft.first_openstack_where;
    reader.add_at(where, "openstack",
                  "missing required section: " + user +
                      ", so an `openstack` section (with credentials or `cloud: NAME` for clouds.yaml) or "
                      "OS_AUTH_URL/OS_CLOUD in the environment is required");
    return;
  }
  if (!os.cloud.empty()) return;

  const Where where = draft.openstack_where.value_or(draft.root_where);
  if (os.auth_url.empty()) {
    reader.add_at(where, "openstack.auth_url",
                  "missing required key `auth_url` (or OS_AUTH_URL, or `cloud: NAME` for clouds.yaml)");
  }
  const bool has_app_id = !os.application_credential_id.empty();
  const bool has_app_secret = !os.application_credential_secret.empty();
  const bool password_login =
      !os.username.empty() && !os.password.empty() && (!os.project_name.empty() || !os.project_id.empty());
  if (password_login || (has_app_id && has_app_secret)) return;
  if (has_app_id || has_app_secret) {
    if (!has_app_id) {
      reader.add_at(where, "openstack.application_credential_id",
                    "missing required key `application_credential_id` (application_credential_secret is "
                    "set; or OS_APPLICATION_CREDENTIAL_ID)");
    }
    if (!has_app_secret) {
      reader.add_at(where, "openstack.application_credential_secret",
                    "missing required key `application_credential_secret`: set it in the secrets file "
                    "([openstack] application_credential_secret), "
                    "UNSHELVER_OPENSTACK_APPLICATION_CREDENTIAL_SECRET or OS_APPLICATION_CREDENTIAL_SECRET");
    }
    return;
  }
  std::vector<std::string> missing;
  if (os.username.empty()) missing.emplace_back("username");
  if (os.password.empty()) missing.emplace_back("password");
  if (os.project_name.empty() && os.project_id.empty()) missing.emplace_back("project_name");
  std::string list;
  for (std::size_t i = 0; i < missing.size(); ++i) list += (i == 0 ? "" : ", ") + missing[i];
  reader.add_at(where, "openstack." + missing.front(),
                "missing credentials: " + list +
                    ". Give username, password and project_name (or project_id), or "
                    "application_credential_id and application_credential_secret, or `cloud: NAME` for "
                    "clouds.yaml; secrets may come from the secrets file or UNSHELVER_OPENSTACK_PASSWORD / "
                    "OS_PASSWORD");
}

}  // namespace unshelver::core::config_detail
