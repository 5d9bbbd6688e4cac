// The table of every configuration key, and the two documents written from it.
//
// Rows are in the order config.example.yaml shows them. A row's store is a one-line setter; a
// value that needs more (inheritance, secrets precedence, cross-field requirements) is stored
// into the draft here and resolved by a named function in checks.cc or secrets.cc.
#include "config/schema.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>

#include "base/address_range.h"
#include "base/text.h"
#include "base/url.h"
#include "config/checks.h"
#include "config/reader.h"
#include "exoscale/exoscale.h"
#include "schedule/windows.h"

namespace unshelver::core::schema {

namespace {

using config_detail::Draft;
using config_detail::kMaxCount;
using config_detail::kMaxMinutes;
using config_detail::kMaxSeconds;
using config_detail::Secret;
using config_detail::Value;

constexpr Origin kPy = Origin::kPython;
constexpr Origin kOurs = Origin::kOurs;

constexpr std::string_view kProviders[] = {"openstack", "sim", "exoscale", "command"};
constexpr ProviderKind kProviderValues[] = {ProviderKind::kOpenStack, ProviderKind::kSim,
                                            ProviderKind::kExoscale, ProviderKind::kCommand};
constexpr std::string_view kErrorPolicies[] = {"wait", "retry"};
constexpr std::string_view kSleepActions[] = {"shelve", "stop", "suspend"};
constexpr std::string_view kEnvironments[] = {"development", "production"};
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
constexpr std::string_view kLogFormats[] = {"text", "json"};
constexpr std::string_view kSchemes[] = {"http", "https"};
constexpr std::string_view kIntegrations[] = {"full", "snippet"};
constexpr std::string_view kRoutingModes[] = {"gate", "switch"};
constexpr std::string_view kGateDown[] = {"closed", "open"};
constexpr RoutingMode kRoutingModeValues[] = {RoutingMode::kGate, RoutingMode::kSwitch};

// The setters that several rows share.
Secret secret_from(const Draft& d, const Value& v) {
  return Secret{v.text, d.yaml_file, v.where.line, v.where.column, v.path};
}
void store_os_string(Draft& d, const Value& v, std::string OpenStackSettings::*field, const char* key) {
  if (v.text.empty()) return;
  d.config.openstack.*field = v.text;
  d.openstack_yaml_keys.insert(key);
}
std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// The proxy socket's path also goes into the Caddyfile Unshelver renders (unix//PATH), so it is
// held to characters that mean nothing more to Caddy.
// A currency as the report prints it: three capital letters (ISO 4217).
std::string check_currency(std::string_view text) {
  const bool code =
      text.size() == 3 && std::all_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  return code ? "" : "must be an ISO 4217 currency code of three capital letters, such as EUR or USD";
}

// The backend's price, made when its first key is read.
Price& price_of(Draft& draft) {
  if (!draft.backend->price) draft.backend->price.emplace();
  return *draft.backend->price;
}

std::string check_socket_path(std::string_view text) {
  if (std::string message = config_detail::check_absolute_path(text); !message.empty()) return message;
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-' || c == '/';
  });
  if (!plain) return "must consist of letters, digits and / . _ -";
  if (text.size() > 100) return "must have at most 100 bytes (the limit of a Unix socket address)";
  return "";
}

// A sender is one plain address: it goes into the From header as it is.
std::string check_sender(std::string_view text) {
  if (!text.empty() && !config_detail::is_plain_mail_address(text)) {
    return "expected one email address, got " + config_detail::quote(text);
  }
  return "";
}

// clang-format off
const Key kKeys[] = {
    // --- app -------------------------------------------------------------------------------------
    {.path = "app", .type = Type::kSection, .origin = kPy, .help = "The launcher's own settings."},
    {.path = "app.title", .type = Type::kString, .origin = kPy, .fallback = "\"Unshelver\"", .example = "\"GPU chat launcher\"",
     .help = "Title of the launcher and control pages.",
     .store = [](Draft& d, const Value& v) { d.config.app.title = v.text; }},
    {.path = "app.secret_key", .type = Type::kSecret, .origin = kPy, .fallback = "none (a random key per run: logins end at restart)", .example = "# \"...\"",
     .help = "Signs the admin session cookie and anti-forgery tokens; at least 16 characters (32 random ones in production). Keep it in the secrets file ([app] secret_key) or UNSHELVER_SECRET_KEY.",
     .store = [](Draft& d, const Value& v) { if (!v.text.empty()) d.secret_key = secret_from(d, v); }},
    {.path = "app.poll_interval_seconds", .type = Type::kNumber, .origin = kPy, .max = kMaxSeconds, .min_exclusive = true, .fallback = "10", .example = "10",
     .help = "How often the cloud's status is polled while a backend changes state (the first polls after each change come sooner: 1 s, 2 s, 4 s, ... up to this); also every button's default probe interval.",
     .store = [](Draft& d, const Value& v) { d.config.app.poll_interval = config_detail::millis_from_seconds(v.number); }},
    {.path = "app.settled_poll_interval_seconds", .type = Type::kNumber, .origin = kOurs, .min = 1, .max = kMaxSeconds, .fallback = "six times app.poll_interval_seconds, at least 30", .example = "# 60",
     .help = "How often the cloud is asked about a backend while nothing should change (asleep, or ready), so that a VM started or stopped outside Unshelver (a console, a crash) is noticed. Settled backends on one OpenStack project or Exoscale zone share one listing call. Longer saves API calls and idle CPU with many backends; shorter notices outside changes sooner.",
     .store = [](Draft& d, const Value& v) { d.settled_poll_seconds = v.number; }},
    {.path = "app.http_probe_timeout", .type = Type::kNumber, .origin = kPy, .max = kMaxSeconds, .min_exclusive = true, .fallback = "5", .example = "5",
     .help = "Seconds before one health probe gives up.",
     .store = [](Draft& d, const Value& v) { d.config.app.http_probe_timeout = config_detail::millis_from_seconds(v.number); }},
    {.path = "app.http_probe_attempts", .type = Type::kInteger, .origin = kPy, .min = 1, .max = kMaxCount, .fallback = "none (buttons[].boot_timeout_seconds applies)", .example = "# 12",
     .help = "Health probes while booting before `error`, as in the Python controller: when written, the boot timeout is the longest those probes took there (attempts × http_probe_timeout + (attempts − 1) × interval).",
     .store = [](Draft& d, const Value& v) {
       d.config.app.http_probe_attempts = static_cast<int>(v.integer);
       d.app_probe_attempts_written = true;
     }},
    {.path = "app.control_token", .type = Type::kSecret, .origin = kPy, .fallback = "none (control is off)", .example = "# \"...\"",
     .help = "The admin token for /control, the CLI and the manual-shelve path; at least 16 characters (32 random ones in production, e.g. `openssl rand -hex 32`). Keep it in the secrets file ([app] control_token) or UNSHELVER_CONTROL_TOKEN.",
     .store = [](Draft& d, const Value& v) { if (!v.text.empty()) d.control_token = secret_from(d, v); }},
    {.path = "app.manual_shelve_path", .type = Type::kString, .origin = kPy, .fallback = "\"/admin-shelve\"", .example = "\"/admin-shelve\"",
     .help = "Hidden path that shelves at once (POST with the control token).", .check = config_detail::check_shelve_route,
     .store = [](Draft& d, const Value& v) { d.config.app.manual_shelve_path = v.text; }},
    {.path = "app.unshelve_timeout_minutes", .type = Type::kInteger, .origin = kPy, .min = 1, .max = 16'666'666, .fallback = "30", .example = "30",
     .help = "How long a wake may take (cloud unshelve plus health) before it is an error, in whole minutes.",
     .store = [](Draft& d, const Value& v) { d.config.app.unshelve_timeout = std::chrono::minutes(v.integer); }},
    {.path = "app.api_retry_attempts", .type = Type::kInteger, .origin = kPy, .min = 0, .max = kMaxCount, .fallback = "3", .example = "3",
     .help = "Retries of an OpenStack API call that failed transiently (connection reset, 5xx).",
     .store = [](Draft& d, const Value& v) { d.config.app.api_retry_attempts = static_cast<int>(v.integer); }},
    {.path = "app.env", .type = Type::kChoice, .origin = kOurs, .choices = kEnvironments, .fallback = "development", .example = "production",
     .help = "The kind of deployment; production (internet-facing) refuses missing, short, guessable or example secrets at start.",
     .store = [](Draft& d, const Value& v) {
       d.config.app.env = v.choice == 0 ? AppEnvironment::kDevelopment : AppEnvironment::kProduction;
       d.env_where = v.where;
     }},

    // --- openstack -------------------------------------------------------------------------------
    {.path = "openstack", .type = Type::kSection, .origin = kPy,
     .help = "OpenStack credentials: `cloud` (clouds.yaml), or auth_url with username/password/project or an application credential; empty keys are filled from OS_* variables; other keys are kept for openstacksdk.",
     .store = [](Draft& d, const Value& v) { d.config.openstack.configured = true; d.openstack_where = v.where; }, .open = true},
    {.path = "openstack.cloud", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "\"mycloud\"",
     .help = "A clouds.yaml entry (./, ~/.config/openstack/, /etc/openstack/); it carries its own credentials.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::cloud, "cloud"); }},
    {.path = "openstack.auth_url", .type = Type::kString, .origin = kPy, .fallback = "none (OS_AUTH_URL)", .example = "# \"https://keystone.example.org:5000/v3\"",
     .help = "Keystone v3 URL.",
     .store = [](Draft& d, const Value& v) { d.auth_url_where = v.where; store_os_string(d, v, &OpenStackSettings::auth_url, "auth_url"); }},
    {.path = "openstack.username", .type = Type::kString, .origin = kPy, .fallback = "none", .example = "# \"gpu-launcher\"",
     .help = "Password login: the user.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::username, "username"); }},
    {.path = "openstack.password", .type = Type::kSecret, .origin = kPy, .fallback = "none", .example = "# \"...\"",
     .help = "Password login: the password; keep it in the secrets file ([openstack] password).",
     .store = [](Draft& d, const Value& v) { if (!v.text.empty()) d.os_password = secret_from(d, v); }},
    {.path = "openstack.project_name", .type = Type::kString, .origin = kPy, .fallback = "none", .example = "# \"gpu-project\"",
     .help = "Password login: the project.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::project_name, "project_name"); }},
    {.path = "openstack.project_id", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "# \"0123456789abcdef0123456789abcdef\"",
     .help = "The project's id, instead of project_name.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::project_id, "project_id"); }},
    {.path = "openstack.user_domain_name", .type = Type::kString, .origin = kPy, .fallback = "\"Default\"", .example = "# \"Default\"",
     .help = "The user's domain.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::user_domain_name, "user_domain_name"); }},
    {.path = "openstack.project_domain_name", .type = Type::kString, .origin = kPy, .fallback = "\"Default\"", .example = "# \"Default\"",
     .help = "The project's domain.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::project_domain_name, "project_domain_name"); }},
    {.path = "openstack.application_credential_id", .type = Type::kString, .origin = kPy, .fallback = "none", .example = "# \"0123456789abcdef0123456789abcdef\"",
     .help = "Application credential login, instead of username/password/project.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::application_credential_id, "application_credential_id"); }},
    {.path = "openstack.application_credential_secret", .type = Type::kSecret, .origin = kPy, .fallback = "none", .example = "# \"...\"",
     .help = "The application credential's secret; keep it in the secrets file ([openstack] application_credential_secret).",
     .store = [](Draft& d, const Value& v) { if (!v.text.empty()) d.os_app_secret = secret_from(d, v); }},
    {.path = "openstack.region_name", .type = Type::kString, .origin = kPy, .fallback = "none (the cloud's only region)", .example = "\"RegionOne\"",
     .help = "Region; this and the keys below also apply with `cloud`, overriding the clouds.yaml entry.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::region_name, "region_name"); }},
    {.path = "openstack.interface", .type = Type::kString, .origin = kPy, .fallback = "public", .example = "\"public\"",
     .help = "Endpoint interface: public, internal or admin.", .check = config_detail::check_interface,
     .store = [](Draft& d, const Value& v) {
       if (v.text.empty()) return;
       d.config.openstack.interface = config_detail::normal_interface(v.text).value_or(v.text);
       d.openstack_yaml_keys.insert("interface");
     }},
    {.path = "openstack.verify", .type = Type::kBoolOrPath, .origin = kPy, .fallback = "true", .example = "true",
     .help = "Verify the cloud's TLS certificates: true, false, or the path of a CA bundle.",
     .store = [](Draft& d, const Value& v) {
       d.config.openstack.verify = v.text.empty() ? v.flag : true;
       if (!v.text.empty()) d.verify_path = v.text;
     }},
    {.path = "openstack.cacert", .type = Type::kString, .origin = kOurs, .fallback = "the system's", .example = "# \"/etc/ssl/certs/my-cloud-ca.pem\"",
     .help = "CA bundle for the cloud's certificates.",
     .store = [](Draft& d, const Value& v) { store_os_string(d, v, &OpenStackSettings::cacert, "cacert"); }},
    {.path = "openstack.api_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0.1, .max = kMaxSeconds, .fallback = "30", .example = "30",
     .help = "Timeout of each cloud API request; failed ones are tried app.api_retry_attempts times with back-off.",
     .store = [](Draft& d, const Value& v) { d.config.openstack.api_timeout = config_detail::millis_from_seconds(v.number); }},

    // --- exoscale --------------------------------------------------------------------------------
    {.path = "exoscale", .type = Type::kSection, .origin = kOurs,
     .help = "Exoscale API v2 credentials and endpoint, for buttons with provider: exoscale. The key and secret may also come from the secrets file ([exoscale] api_key, api_secret) or EXOSCALE_API_KEY / EXOSCALE_API_SECRET."},
    {.path = "exoscale.api_key", .type = Type::kSecret, .origin = kOurs, .fallback = "none (EXOSCALE_API_KEY)", .example = "# \"EXO...\"",
     .help = "The API key (EXO...); kept like a secret, best in the secrets file ([exoscale] api_key).",
     .store = [](Draft& d, const Value& v) { if (!v.text.empty()) d.exoscale_api_key = secret_from(d, v); }},
    {.path = "exoscale.api_secret", .type = Type::kSecret, .origin = kOurs, .fallback = "none (EXOSCALE_API_SECRET)", .example = "# \"...\"",
     .help = "The API key's secret, which signs every request; keep it in the secrets file ([exoscale] api_secret).",
     .store = [](Draft& d, const Value& v) { if (!v.text.empty()) d.exoscale_api_secret = secret_from(d, v); }},
    {.path = "exoscale.zone", .type = Type::kString, .origin = kOurs, .fallback = "\"ch-gva-2\"", .example = "\"ch-gva-2\"",
     .help = "The zone of buttons that set no `zone` of their own.", .check = exoscale::check_zone,
     .store = [](Draft& d, const Value& v) { d.config.exoscale.zone = v.text; }},
    {.path = "exoscale.api_url", .type = Type::kString, .origin = kOurs, .fallback = "\"https://api-{zone}.exoscale.com/v2\"", .example = "# \"https://api-{zone}.exoscale.com/v2\"",
     .help = "The API's base URL; `{zone}` is replaced by the button's zone. Change it only for a test double.", .check = exoscale::check_api_url,
     .store = [](Draft& d, const Value& v) { d.config.exoscale.api_url = v.text; }},
    {.path = "exoscale.api_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0.1, .max = kMaxSeconds, .fallback = "30", .example = "30",
     .help = "Timeout of each Exoscale API request; failed ones (network, 5xx, 429) are tried app.api_retry_attempts times with back-off.",
     .store = [](Draft& d, const Value& v) { d.config.exoscale.api_timeout = config_detail::millis_from_seconds(v.number); }},

    // --- buttons[] -------------------------------------------------------------------------------
    {.path = "buttons", .type = Type::kList, .origin = kPy,
     .help = "The backends, one entry each (the Python unshelver allowed one; Unshelver allows several). At least one is required."},
    {.path = "buttons[].id", .type = Type::kString, .origin = kPy, .example = "\"gpu\"",
     .help = "The backend's name in URLs (/wake/NAME), logs and events: letters, digits, - and _; unique.", .check = config_detail::check_identifier,
     .store = [](Draft& d, const Value& v) { d.backend->name = v.text; d.button->id_where = v.where; }, .required = true},
    {.path = "buttons[].label", .type = Type::kString, .origin = kPy, .fallback = "the id", .example = "\"Wake the GPU chat\"",
     .help = "What the launcher's button says.",
     .store = [](Draft& d, const Value& v) { d.button->label = v.text; }},
    {.path = "buttons[].description", .type = Type::kString, .origin = kPy, .fallback = "none", .example = "\"Starts the GPU server; the chat opens when it is ready (a few minutes).\"",
     .help = "A sentence under the button.",
     .store = [](Draft& d, const Value& v) { d.backend->description = v.text; }},
    {.path = "buttons[].provider", .type = Type::kChoice, .origin = kOurs, .choices = kProviders, .fallback = "openstack", .example = "openstack",
     .help = "Which cloud runs the VM: openstack (Nova), exoscale, or command (any cloud through three commands; see the README's sections); `sim` is the simulated cloud, for demos and tests.",
     .store = [](Draft& d, const Value& v) {
       d.backend->provider = kProviderValues[v.choice];
       d.button->provider_set = true;
     }},
    {.path = "buttons[].instance_name", .type = Type::kString, .origin = kPy, .fallback = "none", .example = "\"gpu-chat-instance\"",
     .help = "The VM's exact name (the Nova server's, the Exoscale instance's); required for provider openstack and exoscale unless instance_id is set.",
     .store = [](Draft& d, const Value& v) {
       d.backend->instance_name = v.text;
       if (!d.button->instance_where) d.button->instance_where = v.where;
     }},
    {.path = "buttons[].instance_id", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "# \"5f3c7f0e-8f0a-4c9e-9d7a-2b1f3c4d5e6f\"",
     .help = "The VM's id (Nova server or Exoscale instance); wins over instance_name.",
     .store = [](Draft& d, const Value& v) { d.backend->instance_id = v.text; d.button->instance_where = v.where; }},
    {.path = "buttons[].zone", .type = Type::kString, .origin = kOurs, .fallback = "exoscale.zone", .example = "# \"de-fra-1\"",
     .help = "Provider exoscale: the zone of the instance (instance_id or instance_name, matched exactly, are looked up there).", .check = exoscale::check_zone,
     .store = [](Draft& d, const Value& v) { d.backend->exoscale.zone = v.text; }},
    {.path = "buttons[].preferred_networks", .type = Type::kStrings, .origin = kPy, .fallback = "none (a floating IP, then any IPv4 address)", .example = "[\"public\"]",
     .help = "Networks whose address is preferred when the VM has several, in order.",
     .store = [](Draft& d, const Value& v) { d.backend->preferred_networks = v.list; }},
    {.path = "buttons[].public_base_url", .type = Type::kString, .origin = kPy, .fallback = "none", .example = "\"https://chat.example.org/\"",
     .help = "Where visitors are sent once the backend is ready.", .check = config_detail::check_backend_url,
     .store = [](Draft& d, const Value& v) {
       if (v.text.empty()) return;
       d.backend->public_base_url = v.text;
       if (!d.button->host) {
         // check_backend_url accepted it: parse_url and parse_authority succeed.
         d.button->host = to_lower(parse_authority(parse_url(v.text)->authority)->host);
         if (!d.button->host_where) d.button->host_where = v.where;
       }
     }},
    {.path = "buttons[].host", .type = Type::kString, .origin = kOurs, .fallback = "the host of public_base_url", .example = "\"chat.example.org\"",
     .help = "The backend's host name in Caddy; activity on this host keeps the VM awake.", .check = config_detail::check_bare_host,
     .store = [](Draft& d, const Value& v) {
       if (v.text.empty()) return;
       d.button->host = to_lower(v.text);
       d.button->host_where = v.where;
     }},
    {.path = "buttons[].url_scheme", .type = Type::kChoice, .origin = kPy, .choices = kSchemes, .fallback = "http", .example = "\"http\"",
     .help = "Scheme of the backend on the VM, for health probes and proxying.",
     .store = [](Draft& d, const Value& v) { d.backend->url_scheme = v.text; }},
    {.path = "buttons[].port", .type = Type::kInteger, .origin = kPy, .min = 1, .max = 65535, .fallback = "the scheme's (80 or 443)", .example = "8080",
     .help = "Port of the backend on the VM.",
     .store = [](Draft& d, const Value& v) { d.backend->port = static_cast<int>(v.integer); }},
    {.path = "buttons[].upstream", .type = Type::kHostPort, .origin = kOurs, .min = 1, .fallback = "the VM's address and `port`", .example = "# \"10.0.0.12:8080\"",
     .help = "HOST:PORT that Caddy proxies to.",
     .store = [](Draft& d, const Value& v) { d.backend->upstream = v.text; }},
    {.path = "buttons[].healthcheck_path", .type = Type::kString, .origin = kPy, .fallback = "\"/\"", .example = "\"/health\"",
     .help = "Health probe path: a GET answered with a success status counts as healthy (health.path wins).",
     .store = [](Draft& d, const Value& v) { d.button->healthcheck_path = v.text; }},
    {.path = "buttons[].launch_path", .type = Type::kString, .origin = kPy, .fallback = "\"/\"", .example = "\"/\"",
     .help = "Path appended to public_base_url when visitors are sent on.",
     .store = [](Draft& d, const Value& v) { d.backend->launch_path = config_detail::with_leading_slash(v.text); }},
    {.path = "buttons[].http_probe_attempts", .type = Type::kInteger, .origin = kPy, .min = 1, .max = 1'000'000, .fallback = "app.http_probe_attempts", .example = "# 18",
     .help = "The same for this button (health.attempts wins; boot_timeout_seconds wins over both).",
     .store = [](Draft& d, const Value& v) { d.button->probe_attempts = v.integer; }},
    {.path = "buttons[].http_probe_interval_seconds", .type = Type::kNumber, .origin = kPy, .max = kMaxSeconds, .min_exclusive = true, .fallback = "app.poll_interval_seconds", .example = "10",
     .help = "Seconds between probes, for this button (health.interval_seconds wins).",
     .store = [](Draft& d, const Value& v) { d.button->probe_interval_seconds = v.number; }},
    {.path = "buttons[].verify_tls", .type = Type::kBool, .origin = kPy, .fallback = "true", .example = "true",
     .help = "Verify the backend's TLS certificate when url_scheme is https.",
     .store = [](Draft& d, const Value& v) { d.backend->verify_tls = v.flag; }},
    {.path = "buttons[].upstream_label", .type = Type::kString, .origin = kOurs, .fallback = "caddy_upstream_label", .example = "\"gpu\"",
     .help = "The X-Served-By label Caddy adds to this backend's responses; it marks the access-log lines that count as activity.", .check = config_detail::check_label,
     .store = [](Draft& d, const Value& v) { d.button->upstream_label = v.text; }},
    {.path = "buttons[].idle_timeout_minutes", .type = Type::kNumber, .origin = kOurs, .min = 5, .max = kMaxMinutes, .fallback = "the top-level idle timeout", .example = "120",
     .help = "Idle time before this backend is put to sleep (idle_timeout_seconds wins).",
     .store = [](Draft& d, const Value& v) { d.button->idle_minutes = v.number; }},
    {.path = "buttons[].idle_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .min = 1, .max = kMaxSeconds, .fallback = "the top-level idle timeout", .example = "# 7200",
     .help = "The same in seconds; wins over every other idle timeout.",
     .store = [](Draft& d, const Value& v) { d.button->idle_seconds = v.number; }},
    {.path = "buttons[].unshelve_timeout_minutes", .type = Type::kNumber, .origin = kOurs, .max = kMaxMinutes, .min_exclusive = true, .fallback = "app.unshelve_timeout_minutes", .example = "30",
     .help = "How long a wake may take before it is an error, in minutes (fractions allowed).",
     .store = [](Draft& d, const Value& v) { d.button->unshelve_minutes = v.number; }},
    {.path = "buttons[].boot_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "from http_probe_attempts when written, else 600 (at most the unshelve timeout)", .example = "600",
     .help = "Seconds a running VM may take to pass its health checks before the backend is `error`; probing faster never shortens it.",
     .store = [](Draft& d, const Value& v) { d.button->boot_timeout_seconds = v.number; }},
    {.path = "buttons[].dry_run", .type = Type::kBool, .origin = kOurs, .fallback = "false", .example = "false",
     .help = "Observe and decide, but never wake or shelve the VM: record what would have been done (dry_run_would_shelve, dry_run_would_wake) for a savings estimate.",
     .store = [](Draft& d, const Value& v) { d.backend->dry_run = v.flag; }},
    {.path = "buttons[].sleep_action", .type = Type::kChoice, .origin = kOurs, .choices = kSleepActions, .fallback = "shelve", .example = "shelve",
     .help = "How the VM sleeps: shelve (leaves its host, costs almost nothing, slow to wake), stop (keeps its host) or suspend (fastest to wake).",
     .store = [](Draft& d, const Value& v) {
       constexpr SleepAction kActions[] = {SleepAction::kShelve, SleepAction::kStop, SleepAction::kSuspend};
       d.backend->sleep_action = kActions[v.choice];
     }},
    {.path = "buttons[].on_error", .type = Type::kChoice, .origin = kOurs, .choices = kErrorPolicies, .fallback = "wait", .example = "retry",
     .help = "After a failed wake: wait for someone to wake again, or retry after error_retry_seconds while still wanted.",
     .store = [](Draft& d, const Value& v) { d.backend->on_error = v.choice == 0 ? ErrorPolicy::kWaitForAdmin : ErrorPolicy::kRetry; }},
    {.path = "buttons[].error_retry_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "300", .example = "300",
     .help = "Seconds between automatic retries with on_error: retry.",
     .store = [](Draft& d, const Value& v) { d.backend->error_retry_after = config_detail::whole_seconds(v.number); }},
    {.path = "buttons[].wake_on_request", .type = Type::kBool, .origin = kOurs, .fallback = "false", .example = "false",
     .help = "An API request (not a browser, not ignored) to the sleeping backend's host wakes it; it gets 503 with Retry-After meanwhile.",
     .store = [](Draft& d, const Value& v) { d.backend->wake_on_request = v.flag; }},
    {.path = "buttons[].routing", .type = Type::kChoice, .origin = kOurs, .choices = kRoutingModes, .fallback = "caddy.routing", .example = "gate",
     .help = "gate: every request passes Unshelver, which holds API requests while the backend wakes; switch: Caddy's route changes with the state.",
     .store = [](Draft& d, const Value& v) { d.button->routing = kRoutingModeValues[v.choice]; }},
    {.path = "buttons[].hold", .type = Type::kSection, .origin = kOurs, .help = "Bounds on the requests held at the gate while the backend wakes."},
    {.path = "buttons[].hold.max_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "540", .example = "540",
     .help = "The longest hold; then 503 with Retry-After and x-should-retry (below the OpenAI SDKs' 600 s timeout).",
     .store = [](Draft& d, const Value& v) { d.backend->hold.max_duration = config_detail::whole_seconds(v.number); }},
    {.path = "buttons[].hold.max_requests", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 100'000, .fallback = "256", .example = "256",
     .help = "Requests held at once; more get 503 with Retry-After at once.",
     .store = [](Draft& d, const Value& v) { d.backend->hold.max_requests = static_cast<int>(v.integer); }},
    {.path = "buttons[].hold.retry_after_seconds", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 60, .fallback = "30", .example = "30",
     .help = "Retry-After of an expired hold or a full queue (at most 60, which every OpenAI SDK honours).",
     .store = [](Draft& d, const Value& v) { d.backend->hold.retry_after = std::chrono::seconds(v.integer); }},
    {.path = "buttons[].gate_down", .type = Type::kChoice, .origin = kOurs, .choices = kGateDown, .fallback = "closed", .example = "closed",
     .help = "While Unshelver does not answer the gate (after riding over a restart): closed fails the request, open sends it to the backend's last address.",
     .store = [](Draft& d, const Value& v) { d.backend->gate_down = v.choice == 0 ? GateDown::kClosed : GateDown::kOpen; }},
    {.path = "buttons[].api_keys", .type = Type::kStrings, .origin = kOurs, .fallback = "none (no key needed)", .example = "[]",
     .help = "\"sha256:<hex>\" digests of the bearer keys a request needs to pass the gate or wake the backend (`unshelver hash-key`).",
     .check = config_detail::check_api_key_digest,
     .store = [](Draft& d, const Value& v) {
       d.backend->api_key_digests.clear();
       for (const std::string& item : v.list) d.backend->api_key_digests.push_back(core::to_lower(item.substr(7)));
     }},
    {.path = "buttons[].price", .type = Type::kSection, .origin = kOurs, .help = "What the machine costs per hour, for the savings report (`unshelver report`, /control, /api/status)."},
    {.path = "buttons[].price.running_per_hour", .type = Type::kNumber, .origin = kOurs, .max = 1e9, .fallback = "none (the report gives hours only)", .example = "2.80",
     .help = "Price per hour while the machine runs (also while it is started or stopped).",
     .store = [](Draft& d, const Value& v) { price_of(d).running_per_hour = v.number; }, .required = true},
    {.path = "buttons[].price.asleep_per_hour", .type = Type::kNumber, .origin = kOurs, .max = 1e9, .fallback = "0 (shelved costs nothing)", .example = "0.05",
     .help = "Price per hour while it is shelved (disk, addresses); at most running_per_hour.",
     .store = [](Draft& d, const Value& v) { price_of(d).asleep_per_hour = v.number; }},
    {.path = "buttons[].price.currency", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "EUR",
     .help = "The prices' currency: an ISO 4217 code such as EUR or USD.", .check = check_currency,
     .store = [](Draft& d, const Value& v) { price_of(d).currency = v.text; }, .required = true},
    {.path = "buttons[].keep_warm", .type = Type::kStrings, .origin = kOurs, .fallback = "none", .example = "[\"mon-fri 08:00-18:00 Europe/Zurich\"]",
     .help = "Windows \"DAYS HH:MM-HH:MM [TIME_ZONE]\" in which the backend is woken ahead and held awake (DST-correct; may cross midnight).",
     .check = keep_warm_window_problem,
     .store = [](Draft& d, const Value& v) { d.backend->keep_warm = v.list; }},
    {.path = "buttons[].wake_lead_seconds", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = 86'400, .fallback = "600", .example = "600",
     .help = "How early to wake for a window or pre-warm until the event log has measured a wake (then the median wake duration).",
     .store = [](Draft& d, const Value& v) { d.backend->wake_lead = std::chrono::seconds(v.integer); }},
    {.path = "buttons[].prewarm", .type = Type::kSection, .origin = kOurs, .help = "Waking ahead of the first use of the day, learned from the event log (off by default)."},
    {.path = "buttons[].prewarm.enabled", .type = Type::kBool, .origin = kOurs, .fallback = "false", .example = "false",
     .help = "Wake at a low percentile of the weekday's first-use times, minus the measured wake duration.",
     .store = [](Draft& d, const Value& v) { d.backend->prewarm.enabled = v.flag; }},
    {.path = "buttons[].prewarm.time_zone", .type = Type::kString, .origin = kOurs, .fallback = "UTC", .example = "\"Europe/Zurich\"",
     .help = "The zone whose days and times of day are learned (a name under /usr/share/zoneinfo).",
     .check = time_zone_name_problem,
     .store = [](Draft& d, const Value& v) { d.backend->prewarm.time_zone = v.text; }},
    {.path = "buttons[].prewarm.percentile", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = 100, .fallback = "10", .example = "10",
     .help = "Which percentile of the first-use times to be ready by (lower: earlier, ready more often, costs more).",
     .store = [](Draft& d, const Value& v) { d.backend->prewarm.percentile = v.number; }},
    {.path = "buttons[].prewarm.lookback_weeks", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 52, .fallback = "4", .example = "4",
     .help = "How many past weeks of the same weekday are learned from.",
     .store = [](Draft& d, const Value& v) { d.backend->prewarm.lookback_weeks = static_cast<int>(v.integer); }},
    {.path = "buttons[].prewarm.min_samples", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 52, .fallback = "2", .example = "2",
     .help = "First uses of that weekday needed before it is pre-warmed.",
     .store = [](Draft& d, const Value& v) { d.backend->prewarm.min_samples = static_cast<int>(v.integer); }},
    {.path = "buttons[].prewarm.max_hold_minutes", .type = Type::kNumber, .origin = kOurs, .min = 1, .max = 1440, .fallback = "60", .example = "60",
     .help = "A pre-warmed backend nobody uses is held this long past the expected use, then left to the idle rule.",
     .store = [](Draft& d, const Value& v) { d.backend->prewarm.max_hold = config_detail::whole_seconds(v.number * 60); }},
    {.path = "buttons[].prewarm.max_hours_per_week", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = 168, .fallback = "10", .example = "10",
     .help = "The cost cap: pre-warm hours (wake to first use, or to the hold's end) per week (from Monday 00:00 UTC).",
     .store = [](Draft& d, const Value& v) { d.backend->prewarm.max_per_week = config_detail::whole_seconds(v.number * 3600); }},
    {.path = "buttons[].health", .type = Type::kSection, .origin = kOurs, .help = "Health probing in detail; each key wins over the older keys above."},
    {.path = "buttons[].health.path", .type = Type::kString, .origin = kOurs, .fallback = "healthcheck_path, else \"/\"", .example = "\"/health\"",
     .help = "The probed path.",
     .store = [](Draft& d, const Value& v) { d.button->health_path = v.text; }},
    {.path = "buttons[].health.interval_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "http_probe_interval_seconds, else app.poll_interval_seconds", .example = "10",
     .help = "Seconds between probes once the backend is ready; until then (waking, booting) it is probed every 0.5 s, or at this interval when shorter.",
     .store = [](Draft& d, const Value& v) { d.button->health_interval_seconds = v.number; }},
    {.path = "buttons[].health.timeout_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "app.http_probe_timeout", .example = "5",
     .help = "Seconds before one probe gives up.",
     .store = [](Draft& d, const Value& v) { d.button->health_timeout_seconds = v.number; }},
    {.path = "buttons[].health.successes_needed", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "1", .example = "2",
     .help = "Consecutive healthy answers before visitors are sent on.",
     .store = [](Draft& d, const Value& v) { d.backend->health.successes_needed = static_cast<int>(v.integer); }},
    {.path = "buttons[].health.failures_allowed", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "3", .example = "3",
     .help = "Consecutive failures while ready before the backend counts as booting again.",
     .store = [](Draft& d, const Value& v) { d.backend->health.failures_allowed = static_cast<int>(v.integer); }},
    {.path = "buttons[].health.attempts", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = 1'000'000, .fallback = "http_probe_attempts, else app.http_probe_attempts", .example = "# 18",
     .help = "Probes while booting before `error`, converted like http_probe_attempts; 0 = until the unshelve timeout.",
     .store = [](Draft& d, const Value& v) { d.button->health_attempts = v.integer; }},
    {.path = "buttons[].inflight", .type = Type::kSection, .origin = kOurs,
     .help = "Requests still in flight through Caddy (a long LLM stream is logged only when it ends), read from the kernel's TCP table."},
    {.path = "buttons[].inflight.enabled", .type = Type::kBool, .origin = kOurs, .fallback = "true", .example = "true",
     .help = "Watch Caddy's connections to the upstream.",
     .store = [](Draft& d, const Value& v) { d.backend->inflight.enabled = v.flag; }},
    {.path = "buttons[].inflight.min_busy_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "10", .example = "10",
     .help = "Seconds a connection must stay busy to hold the idle clock; quick requests are left to the access log.",
     .store = [](Draft& d, const Value& v) { d.backend->inflight.min_busy = config_detail::millis_from_seconds(v.number); }},
    {.path = "buttons[].inflight.sample_interval_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "1", .example = "1",
     .help = "Seconds between two readings of the socket table.",
     .store = [](Draft& d, const Value& v) { d.backend->inflight.sample_interval = config_detail::millis_from_seconds(v.number); }},
    {.path = "buttons[].sim", .type = Type::kSection, .origin = kOurs, .help = "The simulated cloud; used only with provider: sim."},
    {.path = "buttons[].sim.wake_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = kMaxSeconds, .fallback = "4", .example = "4",
     .help = "Seconds from the wake request until the VM \"runs\".",
     .store = [](Draft& d, const Value& v) { d.backend->sim.wake_duration = config_detail::millis_from_seconds(v.number); }},
    {.path = "buttons[].sim.boot_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = kMaxSeconds, .fallback = "2", .example = "2",
     .help = "Seconds from \"runs\" until its fake backend answers health probes.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.boot_duration = config_detail::millis_from_seconds(v.number); }},
    {.path = "buttons[].sim.sleep_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = kMaxSeconds, .fallback = "3", .example = "3",
     .help = "Seconds from the sleep request until the VM is \"shelved\".",
     .store = [](Draft& d, const Value& v) { d.backend->sim.sleep_duration = config_detail::millis_from_seconds(v.number); }},
    {.path = "buttons[].sim.fail_wakes", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = kMaxCount, .fallback = "0", .example = "0",
     .help = "The first N wakes fail with failure_message.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.fail_wakes = static_cast<int>(v.integer); }},
    {.path = "buttons[].sim.refuse_sleeps", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = kMaxCount, .fallback = "0", .example = "0",
     .help = "The first N sleeps of the running VM are refused, as a cloud refuses a shelve it cannot do.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.refuse_sleeps = static_cast<int>(v.integer); }},
    {.path = "buttons[].sim.wake_failure_rate", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = 1, .fallback = "0", .example = "0",
     .help = "After those, each wake fails with this probability.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.wake_failure_rate = v.number; }},
    {.path = "buttons[].sim.failure_message", .type = Type::kString, .origin = kOurs, .fallback = "\"No valid host was found. There are not enough hosts available.\"", .example = "\"No valid host was found. There are not enough hosts available.\"",
     .help = "The fault message of a failed wake.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.failure_message = v.text; }},
    {.path = "buttons[].sim.start_awake", .type = Type::kBool, .origin = kOurs, .fallback = "false", .example = "false",
     .help = "The VM already runs when Unshelver starts.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.start_awake = v.flag; }},
    {.path = "buttons[].sim.backend_listen", .type = Type::kHostPort, .origin = kOurs, .min = 0, .fallback = "\"127.0.0.1:0\"", .example = "\"127.0.0.1:0\"",
     .help = "HOST:PORT of the fake backend while awake; port 0 picks a free one.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.backend_listen = v.text; }},
    {.path = "buttons[].sim.persist", .type = Type::kBool, .origin = kOurs, .fallback = "false", .example = "false",
     .help = "Keep the simulated VM (its phase, when its transition ends, the wakes and sleeps it accepted) in state_dir/sim-BUTTON.json, so that it survives a restart of Unshelver as a real cloud's VM does; start_awake then applies only while that file does not exist.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.persist = v.flag; }},
    {.path = "buttons[].sim.faults_file", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "# \"/tmp/sim-faults.json\"",
     .help = "A JSON file the simulated cloud reads at every call, for tests to change it while Unshelver runs: {\"unreachable\": true} (the API cannot be reached), {\"refuse_credentials\": true} (401), {\"fail_wakes\": N, \"failure_message\": \"...\"} or {\"stall_wakes\": N} (the next N wakes after the file's content changed fail, or never finish). A missing file means no faults.",
     .store = [](Draft& d, const Value& v) { d.backend->sim.faults_file = v.text; }},
    {.path = "buttons[].command", .type = Type::kSection, .origin = kOurs, .help = "Any cloud through three commands (README \"Any cloud through commands\"); used only with provider: command."},
    {.path = "buttons[].command.wake", .type = Type::kStrings, .origin = kOurs, .fallback = "none (required with provider: command)", .example = "# [\"aws\", \"ec2\", \"start-instances\", \"--instance-ids\", \"i-0abc\"]",
     .help = "The program and its arguments (no shell) that ask the cloud to start the VM; exit 0 = accepted, 75 = busy, try again.",
     .check = [](std::string_view text) -> std::string { return text.find('\0') == std::string_view::npos ? "" : "must not contain a NUL byte"; },
     .store = [](Draft& d, const Value& v) { d.backend->command.wake = v.list; }},
    {.path = "buttons[].command.sleep", .type = Type::kStrings, .origin = kOurs, .fallback = "none (required with provider: command)", .example = "# [\"aws\", \"ec2\", \"stop-instances\", \"--instance-ids\", \"i-0abc\"]",
     .help = "The program and its arguments that ask the cloud to stop (or suspend) the VM; same exit codes as wake.",
     .check = [](std::string_view text) -> std::string { return text.find('\0') == std::string_view::npos ? "" : "must not contain a NUL byte"; },
     .store = [](Draft& d, const Value& v) { d.backend->command.sleep = v.list; }},
    {.path = "buttons[].command.observe", .type = Type::kStrings, .origin = kOurs, .fallback = "none (required with provider: command)", .example = "# [\"/etc/unshelver/aws-observe\", \"i-0abc\"]",
     .help = "The program and its arguments that print the VM's state as one JSON object: {\"state\": \"running\", \"address\": \"HOST[:PORT]\", \"message\": \"...\"}.",
     .check = [](std::string_view text) -> std::string { return text.find('\0') == std::string_view::npos ? "" : "must not contain a NUL byte"; },
     .store = [](Draft& d, const Value& v) { d.backend->command.observe = v.list; }},
    {.path = "buttons[].command.timeout_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = kMaxSeconds, .min_exclusive = true, .fallback = "60", .example = "60",
     .help = "Seconds each command may run before its process group is killed (a wake or sleep that times out counts as busy, an observe as failed).",
     .store = [](Draft& d, const Value& v) { d.backend->command.timeout = config_detail::millis_from_seconds(v.number); }},
    {.path = "buttons[].command.environment", .type = Type::kStrings, .origin = kOurs, .fallback = "none", .example = "[\"AWS_REGION=eu-central-1\"]",
     .help = "NAME=value entries added to the commands' environment (not secret: use pass_environment for credentials).",
     .check = [](std::string_view text) -> std::string {
       const auto equals = text.find('=');
       const bool named = equals != std::string_view::npos && equals > 0 &&
                          std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(equals), [](char c) {
                            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
                          });
       return named ? "" : "expected NAME=value, with a NAME of letters, digits and _";
     },
     .store = [](Draft& d, const Value& v) { d.backend->command.environment = v.list; }},
    {.path = "buttons[].command.pass_environment", .type = Type::kStrings, .origin = kOurs, .fallback = "none", .example = "[\"AWS_ACCESS_KEY_ID\", \"AWS_SECRET_ACCESS_KEY\"]",
     .help = "Names of Unshelver's own environment variables (credentials) passed on to the commands; never put secrets in arguments.",
     .check = [](std::string_view text) -> std::string {
       const bool named = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
         return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
       });
       return named ? "" : "expected a variable name of letters, digits and _";
     },
     .store = [](Draft& d, const Value& v) { d.backend->command.pass_environment = v.list; }},
    {.path = "buttons[].command.working_directory", .type = Type::kString, .origin = kOurs, .fallback = "Unshelver's own", .example = "# \"/var/lib/unshelver\"",
     .help = "The directory the commands run in.",
     .check = config_detail::check_absolute_path,
     .store = [](Draft& d, const Value& v) { d.backend->command.working_directory = v.text; }},
    {.path = "buttons[].command.output_limit_bytes", .type = Type::kInteger, .origin = kOurs, .min = 1024, .max = 16 * 1024 * 1024, .fallback = "65536", .example = "65536",
     .help = "Bytes kept of each command's stdout and of its stderr; an observe that prints more fails.",
     .store = [](Draft& d, const Value& v) { d.backend->command.output_limit = static_cast<std::size_t>(v.integer); }},

    // --- activity --------------------------------------------------------------------------------
    {.path = "activity_log_path", .type = Type::kString, .origin = kPy, .fallback = "none (no access-log activity is seen)", .example = "\"/var/log/caddy/access.log\"",
     .help = "Caddy's JSON access log, followed for activity (requests that carry a backend's upstream label).",
     .store = [](Draft& d, const Value& v) { d.config.activity_log_path = v.text; }},
    {.path = "activity", .type = Type::kSection, .origin = kOurs, .help = "How the access log is read."},
    {.path = "activity.ignore", .type = Type::kSection, .origin = kOurs, .help = "Requests that never count as activity (neither wake nor keep awake)."},
    {.path = "activity.ignore.user_agents", .type = Type::kStrings, .origin = kOurs,
     .fallback = "[\"UptimeRobot\", \"Uptime-Kuma\", \"Pingdom\", \"StatusCake\", \"kube-probe\", \"Better Uptime\", \"unshelver-health-probe\"]",
     .example = "[\"UptimeRobot\", \"Uptime-Kuma\", \"Pingdom\", \"StatusCake\", \"kube-probe\", \"Better Uptime\", \"unshelver-health-probe\"]",
     .help = "Case-insensitive substrings of the User-Agent; a list replaces the default one.",
     .store = [](Draft& d, const Value& v) { d.config.activity.ignore.user_agents = v.list; }},
    {.path = "activity.ignore.user_agent_patterns", .type = Type::kStrings, .origin = kOurs, .fallback = "none", .example = "[\"^Prometheus/\"]",
     .help = "ECMAScript regular expressions matched case-insensitively against the User-Agent.", .check = config_detail::check_regex,
     .store = [](Draft& d, const Value& v) { d.config.activity.ignore.user_agent_patterns = v.list; }},
    {.path = "activity.ignore.paths", .type = Type::kStrings, .origin = kOurs, .fallback = "none", .example = "[\"/health\", \"/metrics*\"]",
     .help = "Request paths (without the query): exact, or a prefix when ending in '*'.",
     .store = [](Draft& d, const Value& v) { d.config.activity.ignore.paths = v.list; }},
    {.path = "activity.ignore.methods", .type = Type::kStrings, .origin = kOurs, .fallback = "none", .example = "[\"OPTIONS\"]",
     .help = "HTTP methods.",
     .store = [](Draft& d, const Value& v) {
       d.config.activity.ignore.methods.clear();
       for (const std::string& method : v.list) d.config.activity.ignore.methods.push_back(upper(method));
     }},
    {.path = "activity.max_line_bytes", .type = Type::kInteger, .origin = kOurs, .min = 256, .max = kMaxCount, .fallback = "65536", .example = "65536",
     .help = "Longer lines are counted and skipped.",
     .store = [](Draft& d, const Value& v) { d.config.activity.max_line_bytes = static_cast<std::size_t>(v.integer); }},
    {.path = "activity.stat_interval_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "2", .example = "2",
     .help = "Seconds between stat() checks of the log (the safety net for missed inotify events) while it is written; while it is quiet the interval doubles after each check, up to 30 s (or this value, if longer).",
     .store = [](Draft& d, const Value& v) { d.config.activity.stat_interval = config_detail::millis_from_seconds(v.number); }},
    {.path = "activity.checkpoint_path", .type = Type::kString, .origin = kOurs, .fallback = "<state_dir>/activity-checkpoint.json", .example = "\"\"",
     .help = "Where the read position is kept across restarts.",
     .store = [](Draft& d, const Value& v) { d.config.activity.checkpoint_path = v.text; }},

    // --- idle and events -------------------------------------------------------------------------
    {.path = "idle_timeout_minutes", .type = Type::kNumber, .origin = kPy, .min = 5, .max = kMaxMinutes, .fallback = "60", .example = "60",
     .help = "Default idle time of every button, in minutes.",
     .store = [](Draft& d, const Value& v) { d.top_idle_minutes = v.number; }},
    {.path = "idle_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .min = 1, .max = kMaxSeconds, .fallback = "none", .example = "# 3600",
     .help = "The same in seconds; wins over idle_timeout_minutes.",
     .store = [](Draft& d, const Value& v) { d.top_idle_seconds = v.number; }},
    {.path = "idle_poll_interval_seconds", .type = Type::kNumber, .origin = kPy, .min = 5, .max = kMaxSeconds, .fallback = "30", .example = "30",
     .help = "How often idle deadlines are checked, in whole seconds.",
     .store = [](Draft& d, const Value& v) { d.config.idle_poll_interval = config_detail::whole_seconds(v.number); }},
    {.path = "caddy_upstream_label", .type = Type::kString, .origin = kPy, .fallback = "\"gpu\"", .example = "\"gpu\"",
     .help = "The default upstream label of every button (see buttons[].upstream_label).", .check = config_detail::check_label,
     .store = [](Draft& d, const Value& v) { d.config.caddy_upstream_label = v.text; }},
    {.path = "local_event_log", .type = Type::kString, .origin = kPy, .fallback = "events.jsonl in state_dir", .example = "\"/var/lib/unshelver/events.jsonl\"",
     .help = "The local event log: one JSON object per line, fsync'd, rotated by size (see `events`).",
     .store = [](Draft& d, const Value& v) { d.config.local_event_log = v.text; }},
    {.path = "swift_event_container", .type = Type::kString, .origin = kPy, .fallback = "null (no mirror)", .example = "\"unshelver-events\"",
     .help = "Swift container that receives one object per event, with the `openstack` credentials; null disables the mirror.",
     .store = [](Draft& d, const Value& v) { if (!v.text.empty()) d.config.swift_event_container = v.text; }},
    {.path = "swift_event_prefix", .type = Type::kString, .origin = kPy, .fallback = "\"unshelver-events\"", .example = "\"unshelver-events\"",
     .help = "Prefix of the Swift object names ({prefix}/YYYY/MM/DD/{id}.json).",
     .store = [](Draft& d, const Value& v) { d.config.swift_event_prefix = v.text; }},
    {.path = "events", .type = Type::kSection, .origin = kOurs, .help = "The event log's rotation and the Swift uploads."},
    {.path = "events.rotate_bytes", .type = Type::kInteger, .origin = kOurs, .min = 4096, .max = kMaxCount, .fallback = "10485760", .example = "10485760",
     .help = "The log becomes <local_event_log>.1 past this many bytes.",
     .store = [](Draft& d, const Value& v) { d.config.events.rotate_bytes = static_cast<std::uint64_t>(v.integer); }},
    {.path = "events.keep_files", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "5", .example = "5",
     .help = "Rotated files kept; files whose events Swift has not confirmed are kept as well.",
     .store = [](Draft& d, const Value& v) { d.config.events.keep_files = static_cast<int>(v.integer); }},
    {.path = "events.upload_concurrency", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "4", .example = "4",
     .help = "Swift uploads at once.",
     .store = [](Draft& d, const Value& v) { d.config.events.upload_concurrency = static_cast<int>(v.integer); }},
    {.path = "events.upload_retry_max_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "60", .example = "60",
     .help = "The longest pause between failed uploads (exponential back-off).",
     .store = [](Draft& d, const Value& v) { d.config.events.upload_retry_max = config_detail::millis_from_seconds(v.number); }},
    {.path = "events.stream_max_clients", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 1000, .fallback = "16", .example = "16",
     .help = "Event streams (GET /api/events/stream) open at once; more are answered 503.",
     .store = [](Draft& d, const Value& v) { d.config.events.stream_max_clients = static_cast<int>(v.integer); }},
    {.path = "events.stream_buffer_bytes", .type = Type::kInteger, .origin = kOurs, .min = 4096, .max = kMaxCount, .fallback = "1048576", .example = "1048576",
     .help = "Unsent bytes an event stream may hold; a reader that falls further behind is disconnected (it resumes with Last-Event-ID).",
     .store = [](Draft& d, const Value& v) { d.config.events.stream_buffer_bytes = static_cast<std::size_t>(v.integer); }},
    {.path = "events.stream_heartbeat_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0.05, .max = 3600, .fallback = "15", .example = "15",
     .help = "An event stream sends a comment line after this long without an event, so that proxies keep it open.",
     .store = [](Draft& d, const Value& v) { d.config.events.stream_heartbeat = config_detail::millis_from_seconds(v.number); }},

    // --- webhooks[] ------------------------------------------------------------------------------
    {.path = "webhooks", .type = Type::kList, .origin = kOurs, .example = "[]",
     .help = "Receivers of every event (or a chosen subset) by HTTP POST, signed and retried from a persistent outbox (README: Webhooks)."},
    {.path = "webhooks[].name", .type = Type::kString, .origin = kOurs, .example = "\"dashboard\"",
     .help = "The receiver's name in status, metrics and logs, and in its secret's names: letters, digits, - and _; unique.", .check = config_detail::check_identifier,
     .store = [](Draft& d, const Value& v) { d.webhook->name = v.text; }, .required = true},
    {.path = "webhooks[].url", .type = Type::kString, .origin = kOurs, .example = "\"https://hooks.example.org/unshelver\"",
     .help = "Where each event is POSTed. Changing it starts a new outbox at the newest event.", .check = config_detail::check_backend_url,
     .store = [](Draft& d, const Value& v) { d.webhook->url = v.text; }, .required = true},
    {.path = "webhooks[].events", .type = Type::kStrings, .origin = kOurs, .fallback = "all", .example = "[\"workflow_failed\", \"shelve_failed\"]",
     .help = "The actions sent to this receiver; the others are skipped.",
     .store = [](Draft& d, const Value& v) { d.webhook->events = v.list; }},
    {.path = "webhooks[].secret", .type = Type::kSecret, .origin = kOurs, .fallback = "none (required somewhere)", .example = "# \"...\"",
     .help = "The HMAC-SHA256 key of the signature; also [webhooks] NAME in the secrets file, or UNSHELVER_WEBHOOK_SECRET_<NAME>.",
     .store = [](Draft& d, const Value& v) { d.webhook->secret = v.text; }},
    {.path = "webhooks[].timeout_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0.1, .max = 600, .fallback = "10", .example = "10",
     .help = "One delivery attempt, connecting included; a timeout is retried.",
     .store = [](Draft& d, const Value& v) { d.webhook->timeout = config_detail::millis_from_seconds(v.number); }},
    {.path = "webhooks[].retry_max_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "300", .example = "300",
     .help = "The longest pause between failed attempts (exponential back-off from 1 s, with jitter; a Retry-After wins).",
     .store = [](Draft& d, const Value& v) { d.webhook->retry_max = config_detail::millis_from_seconds(v.number); }},

    // --- security --------------------------------------------------------------------------------
    {.path = "security", .type = Type::kSection, .origin = kOurs, .help = "How /control and the public wake button are protected."},
    {.path = "security.session_hours", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 24 * 31, .fallback = "12", .example = "12",
     .help = "How long a /control login lasts, in whole hours.",
     .store = [](Draft& d, const Value& v) { d.config.security.session_lifetime = std::chrono::hours(v.integer); }},
    {.path = "security.login_burst", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "5", .example = "5",
     .help = "Wrong control tokens a client may try in a row; then one more per login_refill_seconds.",
     .store = [](Draft& d, const Value& v) { d.config.security.login_burst = static_cast<int>(v.integer); }},
    {.path = "security.login_refill_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "60", .example = "60",
     .help = "Seconds until a client may try one more login.",
     .store = [](Draft& d, const Value& v) { d.config.security.login_refill = config_detail::millis_from_seconds(v.number); }},
    {.path = "security.wake_burst", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "3", .example = "3",
     .help = "Public wake requests a client may make in a row; then one more per wake_refill_seconds.",
     .store = [](Draft& d, const Value& v) { d.config.security.wake_burst = static_cast<int>(v.integer); }},
    {.path = "security.wake_refill_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "60", .example = "60",
     .help = "Seconds until a client may make one more public wake request.",
     .store = [](Draft& d, const Value& v) { d.config.security.wake_refill = config_detail::millis_from_seconds(v.number); }},
    {.path = "security.wake_cooldown_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = kMaxSeconds, .fallback = "30", .example = "30",
     .help = "Across all visitors: at most one public wake that starts a sleeping backend per this many seconds (admins are not limited).",
     .store = [](Draft& d, const Value& v) { d.config.security.wake_cooldown = config_detail::millis_from_seconds(v.number); }},
    {.path = "notification_email", .type = Type::kString, .origin = kPy, .fallback = "none (no mail)", .example = "\"admin@example.org\"",
     .help = "Who is mailed (via the local sendmail) about failures that need a person: failed wakes, failed shelves, Swift or Caddy failing (see README \"Mail notifications\"). Several addresses: separate them with commas.", .check = config_detail::check_email,
     .store = [](Draft& d, const Value& v) { d.config.notification_email = v.text; }},
    {.path = "notifications", .type = Type::kSection, .origin = kOurs, .help = "How the mails to notification_email are sent."},
    {.path = "notifications.sendmail", .type = Type::kString, .origin = kOurs, .fallback = "sendmail on PATH, else /usr/sbin/sendmail", .example = "# \"/usr/sbin/sendmail\"",
     .help = "The sendmail program, run as `sendmail -t -oi` with the message on its standard input.", .check = config_detail::check_absolute_path,
     .store = [](Draft& d, const Value& v) { d.config.notifications.sendmail = v.text; }},
    {.path = "notifications.from", .type = Type::kString, .origin = kOurs, .fallback = "unshelver@<host name>", .example = "# \"unshelver@launcher.example.org\"",
     .help = "The From address of the mails.", .check = check_sender,
     .store = [](Draft& d, const Value& v) { d.config.notifications.from = v.text; }},
    {.path = "notifications.outage_minutes", .type = Type::kNumber, .origin = kOurs, .max = kMaxMinutes, .min_exclusive = true, .fallback = "15", .example = "15",
     .help = "Swift (the event mirror) or Caddy (the router's loads) failing without a break this long is mailed, and so is its recovery.",
     .store = [](Draft& d, const Value& v) { d.config.notifications.outage_threshold = std::max(std::chrono::seconds(1), std::chrono::seconds(std::llround(v.number * 60))); }},
    {.path = "notifications.quiet_minutes", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = kMaxMinutes, .fallback = "60", .example = "60",
     .help = "At most one mail per backend and kind of failure (per service for outages) in this many minutes; the next one counts those held back.",
     .store = [](Draft& d, const Value& v) { d.config.notifications.quiet = std::chrono::seconds(std::llround(v.number * 60)); }},
    {.path = "notifications.max_queued", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 1000, .fallback = "20", .example = "20",
     .help = "Mails waiting for sendmail at most; more are dropped (and counted).",
     .store = [](Draft& d, const Value& v) { d.config.notifications.max_queued = static_cast<int>(v.integer); }},
    {.path = "notifications.send_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "30", .example = "30",
     .help = "A sendmail run that takes longer is killed, and the mail tried again.",
     .store = [](Draft& d, const Value& v) { d.config.notifications.send_timeout = config_detail::millis_from_seconds(v.number); }},
    {.path = "notifications.attempts", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 20, .fallback = "4", .example = "4",
     .help = "Tries per mail, with exponential back-off (5 s, 10 s, ...); then it is logged and dropped.",
     .store = [](Draft& d, const Value& v) { d.config.notifications.attempts = static_cast<int>(v.integer); }},

    // --- the process -----------------------------------------------------------------------------
    {.path = "listen", .type = Type::kHostPort, .origin = kOurs, .min = 1, .fallback = "\"127.0.0.1:5001\"", .example = "\"127.0.0.1:5001\"",
     .help = "Where Unshelver's own HTTP server listens.",
     .store = [](Draft& d, const Value& v) { d.config.listen = v.text; }},
    {.path = "state_dir", .type = Type::kString, .origin = kOurs, .fallback = "\"/var/lib/unshelver\"", .example = "\"/var/lib/unshelver\"",
     .help = "Persistent state: desired states, last activity, and the event log unless local_event_log says otherwise.", .check = config_detail::check_not_empty,
     .store = [](Draft& d, const Value& v) { d.config.state_dir = v.text; }},
    {.path = "templates_dir", .type = Type::kString, .origin = kOurs, .fallback = "none (the built-in pages)", .example = "\"\"",
     .help = "A folder whose page templates replace the built-in ones.",
     .store = [](Draft& d, const Value& v) { d.config.templates_dir = v.text; }},
    {.path = "secrets_file", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "# \"/etc/unshelver/secrets.ini\"",
     .help = "The secrets file (INI, see secrets.example.ini), relative to this file; its values win over this file's.",
     .store = [](Draft& d, const Value& v) { d.config.secrets_file = v.text; }},
    {.path = "log_level", .type = Type::kChoice, .origin = kOurs, .choices = kLogLevels, .fallback = "info", .example = "\"info\"",
     .help = "The least important log lines that are written.",
     .store = [](Draft& d, const Value& v) { d.config.log_level = v.text; }},
    {.path = "log_format", .type = Type::kChoice, .origin = kOurs, .choices = kLogFormats, .fallback = "text", .example = "\"text\"",
     .help = "text: one line for people; json: one JSON object a line (time, level, backend, event, message) for journald and log shippers.",
     .store = [](Draft& d, const Value& v) { d.config.log_format = v.choice == 0 ? LogFormat::kText : LogFormat::kJson; }},
    {.path = "http", .type = Type::kSection, .origin = kOurs, .help = "Limits of the built-in HTTP server."},
    {.path = "http.max_url_bytes", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "8192", .example = "8192",
     .help = "Longest request target, in bytes.",
     .store = [](Draft& d, const Value& v) { d.config.http.max_url_bytes = static_cast<std::size_t>(v.integer); }},
    {.path = "http.max_header_bytes", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "16384", .example = "16384",
     .help = "All header names and values of one request, in bytes.",
     .store = [](Draft& d, const Value& v) { d.config.http.max_header_bytes = static_cast<std::size_t>(v.integer); }},
    {.path = "http.max_header_count", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = kMaxCount, .fallback = "100", .example = "100",
     .help = "Most headers in one request.",
     .store = [](Draft& d, const Value& v) { d.config.http.max_header_count = static_cast<std::size_t>(v.integer); }},
    {.path = "http.max_body_bytes", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = kMaxCount, .fallback = "65536", .example = "65536",
     .help = "Largest request body, in bytes.",
     .store = [](Draft& d, const Value& v) { d.config.http.max_body_bytes = static_cast<std::size_t>(v.integer); }},
    {.path = "http.header_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "10", .example = "10",
     .help = "Seconds from a request's first byte to its last header.",
     .store = [](Draft& d, const Value& v) { d.config.http.header_timeout = config_detail::millis_from_seconds(v.number); }},
    {.path = "http.body_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "30", .example = "30",
     .help = "Seconds from a request's last header to its body's last byte; not restarted by each byte received.",
     .store = [](Draft& d, const Value& v) { d.config.http.body_timeout = config_detail::millis_from_seconds(v.number); }},
    {.path = "http.idle_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "60", .example = "60",
     .help = "Seconds a keep-alive connection may wait for its next request.",
     .store = [](Draft& d, const Value& v) { d.config.http.idle_timeout = config_detail::millis_from_seconds(v.number); }},
    {.path = "http.max_connections", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = kMaxCount, .fallback = "0", .example = "0",
     .help = "Most open connections; more are closed at once. 0: the descriptor limit minus 128 kept for files, the cloud and Caddy.",
     .store = [](Draft& d, const Value& v) { d.config.http.max_connections = static_cast<std::size_t>(v.integer); }},
    {.path = "http.max_connections_per_client", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = kMaxCount, .fallback = "1024", .example = "1024",
     .help = "Most open connections from one client address; Caddy counts as one, and keeps up to 512 idle ones to the gate. 0: no per-client cap.",
     .store = [](Draft& d, const Value& v) { d.config.http.max_connections_per_client = static_cast<std::size_t>(v.integer); }},
    {.path = "http.shutdown_grace_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0, .max = kMaxSeconds, .fallback = "5", .example = "5",
     .help = "Seconds in-flight requests may finish after SIGTERM.",
     .store = [](Draft& d, const Value& v) { d.config.http.shutdown_grace = config_detail::millis_from_seconds(v.number); }},
    {.path = "http.proxy_socket", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "# \"/run/unshelver/http.sock\"",
     .help = "Also listen on this Unix socket, for Caddy (mode 0660, the group of its directory: make that Caddy's group); with caddy.manage, Caddy is pointed at it. X-Forwarded-For is then believed only on it (and from http.trusted_proxies).",
     .check = check_socket_path,
     .store = [](Draft& d, const Value& v) { d.config.proxy.socket = v.text; }},
    {.path = "http.trusted_proxies", .type = Type::kStrings, .origin = kOurs,
     .fallback = "loopback (127.0.0.0/8, ::1); none when http.proxy_socket is set", .example = "# []",
     .help = "Addresses or ranges (10.0.0.0/8, fd00::/8) of TCP peers whose X-Forwarded-For and X-Forwarded-Proto are believed; from any other peer the client is the peer itself.",
     .check = check_address_range,
     .store = [](Draft& d, const Value& v) { d.config.proxy.trusted_proxies = v.list; }},

    // --- ha --------------------------------------------------------------------------------------
    {.path = "ha", .type = Type::kSection, .origin = kOurs,
     .help = "Two or more controllers sharing the work through etcd (README \"High availability\"). Without ha.etcd, one instance keeps its state on local disk.",
     .store = [](Draft& d, const Value& v) { d.ha_where = v.where; }},
    {.path = "ha.etcd", .type = Type::kStrings, .origin = kOurs, .fallback = "none (one instance, no etcd)", .example = "# [\"http://10.0.0.11:2379\", \"http://10.0.0.12:2379\", \"http://10.0.0.13:2379\"]",
     .help = "The client URLs of etcd's members (v3 API, 3.4 or later); every controller lists the same.", .check = config_detail::check_backend_url,
     .store = [](Draft& d, const Value& v) { d.config.ha.etcd = v.list; }},
    {.path = "ha.instance", .type = Type::kString, .origin = kOurs, .fallback = "the host name", .example = "# \"controller-1\"",
     .help = "This controller's name among them (letters, digits, -, _ and .; unique), shown as the leader of the backends it leads.", .check = config_detail::check_instance_name,
     .store = [](Draft& d, const Value& v) { d.config.ha.instance = v.text; }},
    {.path = "ha.prefix", .type = Type::kString, .origin = kOurs, .fallback = "\"unshelver/\"", .example = "\"unshelver/\"",
     .help = "Where the controllers keep their keys in etcd; controllers of separate deployments sharing one etcd need separate prefixes.", .check = config_detail::check_not_empty,
     .store = [](Draft& d, const Value& v) { d.config.ha.prefix = v.text; }},
    {.path = "ha.lease_ttl_seconds", .type = Type::kInteger, .origin = kOurs, .min = 5, .max = 300, .fallback = "10", .example = "10",
     .help = "The leadership lease: a leader that cannot renew it stops acting 2 s (or a fifth) before it ends; another takes over when etcd lets it end. Failover takes up to about this long.",
     .store = [](Draft& d, const Value& v) { d.config.ha.lease_ttl = std::chrono::seconds(v.integer); }},
    {.path = "ha.poll_interval_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0.1, .max = 30, .fallback = "1", .example = "1",
     .help = "How often each controller reads the shared state (wishes, activity, who leads) and bids for backends without a leader.",
     .store = [](Draft& d, const Value& v) { d.config.ha.poll_interval = config_detail::millis_from_seconds(v.number); }},
    {.path = "ha.request_timeout_seconds", .type = Type::kNumber, .origin = kOurs, .min = 0.1, .max = 60, .fallback = "2", .example = "2",
     .help = "One request to one etcd member; then the next member is tried.",
     .store = [](Draft& d, const Value& v) { d.config.ha.request_timeout = config_detail::millis_from_seconds(v.number); }},
    {.path = "ha.ca_file", .type = Type::kString, .origin = kOurs, .fallback = "the system's CA bundle", .example = "# \"/etc/unshelver/etcd-ca.pem\"",
     .help = "For https:// members: the CA bundle that signed their certificates.",
     .store = [](Draft& d, const Value& v) { d.config.ha.ca_file = v.text; }},
    {.path = "ha.cert_file", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "# \"/etc/unshelver/etcd-client.pem\"",
     .help = "A client certificate for etcd's --client-cert-auth; needs ha.key_file.",
     .store = [](Draft& d, const Value& v) { d.config.ha.cert_file = v.text; }},
    {.path = "ha.key_file", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "# \"/etc/unshelver/etcd-client.key\"",
     .help = "The private key of ha.cert_file.",
     .store = [](Draft& d, const Value& v) { d.config.ha.key_file = v.text; }},
    {.path = "ha.username", .type = Type::kString, .origin = kOurs, .fallback = "none (etcd without authentication)", .example = "# \"unshelver\"",
     .help = "etcd's user, when its authentication is enabled; needs ha.password.",
     .store = [](Draft& d, const Value& v) { d.config.ha.username = v.text; }},
    {.path = "ha.password", .type = Type::kSecret, .origin = kOurs, .fallback = "none (UNSHELVER_ETCD_PASSWORD)", .example = "# \"...\"",
     .help = "The etcd user's password; best in the secrets file ([ha] password).",
     .store = [](Draft& d, const Value& v) { if (!v.text.empty()) d.etcd_password = secret_from(d, v); }},

    // --- caddy -----------------------------------------------------------------------------------
    {.path = "caddy", .type = Type::kSection, .origin = kOurs, .help = "Managing Caddy's routing through its admin API (see README \"Caddy\").",
     .store = [](Draft& d, const Value& v) { d.caddy_where = v.where; }},
    {.path = "caddy.manage", .type = Type::kBool, .origin = kOurs, .fallback = "false", .example = "false",
     .help = "Manage Caddy's routing; needs launcher_url and every button's public_base_url.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.manage = v.flag; }},
    {.path = "caddy.admin", .type = Type::kString, .origin = kOurs, .fallback = "\"http://127.0.0.1:2019\"", .example = "\"http://127.0.0.1:2019\"",
     .help = "Caddy's admin API: an http:// URL on loopback, or a Unix socket such as unix//run/caddy/admin.sock (the production setup: only the socket's group can load configs; see README \"Caddy's admin API on a Unix socket\"). The rendered Caddyfile sets `admin` to the same address.", .check = config_detail::check_admin_url,
     .store = [](Draft& d, const Value& v) { d.config.caddy.admin = v.text; }},
    {.path = "caddy.integration", .type = Type::kChoice, .origin = kOurs, .choices = kIntegrations, .fallback = "full", .example = "full",
     .help = "full: Unshelver writes the whole Caddyfile; snippet: a file that your Caddyfile imports.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.integration = v.choice == 0 ? CaddyIntegration::kFull : CaddyIntegration::kSnippet; }},
    {.path = "caddy.routing", .type = Type::kChoice, .origin = kOurs, .choices = kRoutingModes, .fallback = "gate", .example = "gate",
     .help = "Every backend's routing unless it sets its own: gate (loses no request) or switch (Caddy proxies while Unshelver is down).",
     .store = [](Draft& d, const Value& v) { d.config.caddy.routing = kRoutingModeValues[v.choice]; }},
    {.path = "caddy.template", .type = Type::kString, .origin = kOurs, .fallback = "none (the built-in template)", .example = "\"\"",
     .help = "A Caddyfile template of your own.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.template_path = v.text; }},
    {.path = "caddy.caddyfile", .type = Type::kString, .origin = kOurs, .fallback = "\"/etc/caddy/Caddyfile\"", .example = "\"/etc/caddy/Caddyfile\"",
     .help = "full: where the Caddyfile is written; snippet: your Caddyfile (absolute path).", .check = config_detail::check_absolute_path,
     .store = [](Draft& d, const Value& v) { d.config.caddy.caddyfile = v.text; }},
    {.path = "caddy.snippet", .type = Type::kString, .origin = kOurs, .fallback = "\"/etc/caddy/unshelver.caddy\"", .example = "\"/etc/caddy/unshelver.caddy\"",
     .help = "snippet: the file Unshelver owns (absolute path).", .check = config_detail::check_absolute_path,
     .store = [](Draft& d, const Value& v) { d.config.caddy.snippet = v.text; }},
    {.path = "caddy.launcher_url", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "\"https://gpu.example.org\"",
     .help = "Site address of the launcher host.", .check = config_detail::check_site_url,
     .store = [](Draft& d, const Value& v) { d.config.caddy.launcher_url = v.text; }},
    {.path = "caddy.bind", .type = Type::kString, .origin = kOurs, .fallback = "none", .example = "\"\"",
     .help = "`bind` in every site block, e.g. 127.0.0.1.", .check = config_detail::check_bind,
     .store = [](Draft& d, const Value& v) { d.config.caddy.bind = v.text; }},
    {.path = "caddy.http_port", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = 65535, .fallback = "0 (Caddy's)", .example = "0",
     .help = "Caddy's global http_port option, when not 0.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.http_port = static_cast<int>(v.integer); }},
    {.path = "caddy.auto_https", .type = Type::kBool, .origin = kOurs, .fallback = "true", .example = "true",
     .help = "false writes `auto_https off`.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.auto_https = v.flag; }},
    {.path = "caddy.log_roll_size_mb", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 100'000, .fallback = "100", .example = "100",
     .help = "Access log rotation size (roll_size), in whole MiB.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.log_roll_size_mb = static_cast<int>(v.integer); }},
    {.path = "caddy.log_roll_keep", .type = Type::kInteger, .origin = kOurs, .min = 0, .max = 100'000, .fallback = "10", .example = "10",
     .help = "Access log backups kept (roll_keep).",
     .store = [](Draft& d, const Value& v) { d.config.caddy.log_roll_keep = static_cast<int>(v.integer); }},
    {.path = "caddy.max_request_body_mb", .type = Type::kInteger, .origin = kOurs, .min = 1, .max = 4096, .fallback = "32", .example = "32",
     .help = "The largest request body to a backend, in MiB: Caddy reads each whole before it proxies it; a larger declared one gets 413.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.max_request_body_mb = static_cast<int>(v.integer); }},
    {.path = "caddy.drift_check_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "30", .example = "30",
     .help = "How often Caddy's running configuration is compared with ours.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.drift_check_interval = config_detail::millis_from_seconds(v.number); }},
    {.path = "caddy.retry_max_seconds", .type = Type::kNumber, .origin = kOurs, .max = kMaxSeconds, .min_exclusive = true, .fallback = "60", .example = "60",
     .help = "The longest back-off between failed loads.",
     .store = [](Draft& d, const Value& v) { d.config.caddy.retry_max = config_detail::millis_from_seconds(v.number); }},

    // The Python unshelver's `main` branch signed users in with GitHub OAuth. Unshelver has its own
    // control token instead; the section is accepted so that those configs still load.
    {.path = "github", .type = Type::kIgnored, .origin = kPy, .fallback = "none", .example = "# {}",
     .help = "The Python unshelver's GitHub sign-in (client_id, client_secret, ...); accepted and ignored."},
};
// clang-format on

}  // namespace

std::span<const Key> keys() {
  return kKeys;
}

const Key* find(std::string_view path) {
  for (const Key& key : kKeys) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

std::string_view name_of(const Key& key) {
  const std::size_t dot = key.path.rfind('.');
  return dot == std::string_view::npos ? key.path : key.path.substr(dot + 1);
}

std::string_view parent_of(const Key& key) {
  const std::size_t dot = key.path.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : key.path.substr(0, dot);
}

}  // namespace unshelver::core::schema
