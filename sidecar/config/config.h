// The configuration model: what a config.yaml (plus secrets file and environment) says, validated.
//
// A config.yaml written for the Python openstack_unshelver_webapp controller loads unchanged: its
// keys (app.*, openstack.*, buttons[], activity_log_path, idle_timeout_minutes, ...) keep their
// names and meanings here. Our extensions are additional keys. This header is pure data; parsing
// lives in config/parser.h (driven by config/schema.h) and never touches the file system itself.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace unshelver::core {

using Millis = std::chrono::milliseconds;

enum class ProviderKind { kOpenStack, kSim, kExoscale, kCommand };
enum class AppEnvironment { kDevelopment, kProduction };
// How log lines are written: text for people, or one JSON object a line for journald and log shippers.
enum class LogFormat { kText, kJson };

// What the reconciler does after a wake fails (for example "No valid host was found").
// How a backend's VM is put to sleep, and so how it is woken (buttons[].sleep_action).
enum class SleepAction {
  kShelve,   // shelve / unshelve: the VM leaves its host and costs (almost) nothing; slow to wake
  kStop,     // os-stop / os-start: the VM keeps its host (and on most clouds its cost)
  kSuspend,  // suspend / resume: memory kept on the host; fastest to wake
};

enum class ErrorPolicy {
  kWaitForAdmin,  // Stay in `error` until someone presses wake again.
  kRetry,         // Wake again after `error_retry_after`, while the desired state is still awake.
};

// How a backend's health is probed while it wakes and runs. `interval` applies once it is ready
// (until then the reconciler probes faster: ReconcilerSettings::probe_interval_until_ready).
struct HealthSettings {
  std::string path = "/";    // buttons[].healthcheck_path
  Millis interval{10'000};   // buttons[].http_probe_interval_seconds, else app.poll_interval_seconds
  Millis timeout{5'000};     // app.http_probe_timeout
  int successes_needed = 1;  // consecutive 2xx answers before the backend is `ready`
  int failures_allowed = 3;  // consecutive failures while `ready` before it drops to `booting`

  bool operator==(const HealthSettings&) const = default;
};

// The simulated cloud (`provider: sim`): an in-process VM with a tiny fake backend.
struct SimSettings {
  Millis wake_duration{4'000};   // from the wake request until the VM "runs"
  Millis boot_duration{2'000};   // from "runs" until its backend answers health checks
  Millis sleep_duration{3'000};  // from the sleep request until the VM is "shelved"
  int fail_wakes = 0;            // the first N wakes fail with `failure_message`
  int refuse_sleeps = 0;         // the first N sleeps of a running VM are refused (409-like)
  double wake_failure_rate = 0;  // then each wake fails with this probability (0..1)
  std::string failure_message = "No valid host was found. There are not enough hosts available.";
  bool start_awake = false;                    // the VM already runs when Unshelver starts
  std::string backend_listen = "127.0.0.1:0";  // where the fake backend listens while awake
  // The VM is kept in <state_dir>/sim-<button>.json, so that it survives a restart of Unshelver.
  bool persist = false;
  // A JSON file read at every call, with which a test changes the cloud while Unshelver runs.
  std::string faults_file;

  bool operator==(const SimSettings&) const = default;
};

// A backend on Exoscale (`provider: exoscale`): the zone its instance lives in.
struct ExoscaleBackendSettings {
  std::string zone;  // buttons[].zone, else exoscale.zone

  bool operator==(const ExoscaleBackendSettings&) const = default;
};

// Any cloud through commands (`provider: command`, README "Any cloud through commands"): each
// command is an argv run without a shell, with an environment built only from what is named here.
struct CommandSettings {
  std::vector<std::string> wake;     // asks the cloud to start the VM; exit 0 = accepted
  std::vector<std::string> sleep;    // asks the cloud to stop it
  std::vector<std::string> observe;  // prints {"state": ..., "address": ..., "message": ...}
  Millis timeout{60'000};            // per command; then its process group is killed
  // "NAME=value" entries added to the child's environment (not secret: they are in the YAML).
  std::vector<std::string> environment;
  // Names of the daemon's own variables handed to the child (credentials such as
  // AWS_SECRET_ACCESS_KEY): the only way a secret reaches a command, never its arguments.
  std::vector<std::string> pass_environment;
  std::string working_directory;                      // "" keeps the daemon's
  std::size_t output_limit = std::size_t{64} * 1024;  // bytes kept of each of stdout and stderr

  bool operator==(const CommandSettings&) const = default;
};

// Requests that must not count as activity: uptime monitors, health checks, preflights. A line
// that matches any rule neither wakes a backend nor keeps it awake.
struct IgnoreRules {
  // Case-insensitive substrings of the User-Agent. The default names common uptime monitors.
  std::vector<std::string> user_agents = {
      "UptimeRobot",   "Uptime-Kuma",           "Pingdom", "StatusCake", "kube-probe",
      "Better Uptime", "unshelver-health-probe"};
  std::vector<std::string> user_agent_patterns;  // ECMAScript regular expressions, case-insensitive
  std::vector<std::string> paths;                // an exact path, or a prefix when it ends with '*'
  std::vector<std::string> methods;              // e.g. "OPTIONS"

  bool operator==(const IgnoreRules&) const = default;
};

// How Caddy's access log is followed (see activity/log_follower.h).
struct ActivitySettings {
  IgnoreRules ignore;
  std::size_t max_line_bytes = std::size_t{64} * 1024;  // longer lines are counted and skipped
  Millis stat_interval{2'000};                          // the safety net for missed inotify events
  std::string checkpoint_path;                          // empty: <state_dir>/activity-checkpoint.json

  bool operator==(const ActivitySettings&) const = default;
};

// How requests still in flight through Caddy to the backend are seen (see activity/connection_monitor.h):
// Caddy logs a request only when it completes, so a long LLM stream would otherwise look idle.
struct InflightSettings {
  bool enabled = true;
  Millis min_busy{10'000};        // a connection busy this long holds the idle clock
  Millis sample_interval{1'000};  // how often the kernel's socket table is read

  bool operator==(const InflightSettings&) const = default;
};

// How Caddy routes a backend's host (caddy.routing, buttons[].routing).
enum class RoutingMode {
  // Every request passes Unshelver's gate (Caddy's forward_auth) and then goes to the backend:
  // Unshelver holds API requests while the backend wakes, and Caddy reloads only when the
  // configuration changes. Loses no request; needs Unshelver up (see GateDown).
  kGate,
  // The backend host's route is rewritten on each state change: Caddy proxies straight to the
  // backend while it is ready (Unshelver may be down meanwhile), to Unshelver while it is not.
  kSwitch,
};

// What Caddy does with a gated request while Unshelver itself does not answer the gate, after
// riding over a short outage (buttons[].gate_down).
enum class GateDown {
  kClosed,  // the request fails (502) rather than reach a backend that may be asleep
  kOpen,    // the request goes to the backend's last known address
};

// What a backend's machine costs per hour (buttons[].price), for the savings report
// (bill/savings.h).
struct Price {
  double running_per_hour = 0;  // while it runs, is started or is stopped
  double asleep_per_hour = 0;   // while shelved (disk, reserved addresses)
  std::string currency;         // ISO 4217: "EUR"

  bool operator==(const Price&) const = default;
};

// Bounds on the requests held at the gate (buttons[].hold).
struct HoldSettings {
  // Below the OpenAI SDKs' 600 s read timeout, so a client sees an answer rather than a timeout.
  std::chrono::seconds max_duration{540};
  int max_requests = 256;                // held at once for this backend; beyond: 503 at once
  std::chrono::seconds retry_after{30};  // Retry-After of an expired hold (at most 60)

  bool operator==(const HoldSettings&) const = default;
};

// Pre-warming from history (buttons[].prewarm; schedule/prewarm.h).
struct PrewarmSettings {
  bool enabled = false;
  std::string time_zone = "UTC";  // in which the days and times of day are learned
  double percentile = 10;         // of the first-use times of the same weekday
  int lookback_weeks = 4;
  int min_samples = 2;                           // first uses of that weekday needed
  std::chrono::seconds max_hold{3600};           // held past the expected use, if unused
  std::chrono::seconds max_per_week{10 * 3600};  // the cost cap

  bool operator==(const PrewarmSettings&) const = default;
};

struct BackendConfig {
  // From the Python unshelver's buttons[] entries.
  std::string name;   // buttons[].id: the name in URLs, logs and events
  std::string label;  // buttons[].label: what the launcher shows
  std::string description;
  std::string instance_name;  // Nova server name (exact match)
  std::string instance_id;    // Nova server id (our extension; wins over the name)
  std::vector<std::string> preferred_networks;
  std::string public_base_url;  // where visitors are sent once ready
  std::string url_scheme = "http";
  int port = 0;  // backend port; 0 = the scheme's default
  std::string launch_path = "/";
  bool verify_tls = true;

  // Our extensions.
  ProviderKind provider = ProviderKind::kOpenStack;
  SleepAction sleep_action = SleepAction::kShelve;
  std::string host;            // the backend's hostname in Caddy (default: from public_base_url)
  std::string upstream;        // host:port Caddy proxies to (default: from the cloud's addresses)
  std::string upstream_label;  // X-Served-By label (default: caddy_upstream_label)
  std::chrono::seconds idle_timeout{3600};
  std::chrono::seconds unshelve_timeout{30 * 60};
  // How long a VM that runs may take to pass its health checks before the backend is `error`
  // (buttons[].boot_timeout_seconds; from an explicit Python http_probe_attempts otherwise, see
  // finish_button in config/checks.cc). A duration, so probing faster never shortens it.
  Millis boot_timeout{10 * 60'000};
  ErrorPolicy on_error = ErrorPolicy::kWaitForAdmin;
  std::chrono::seconds error_retry_after{300};
  HealthSettings health;
  InflightSettings inflight;
  SimSettings sim;
  ExoscaleBackendSettings exoscale;
  CommandSettings command;
  // A request from an API client (no text/html in Accept, not matching the ignore rules) that
  // reaches a sleeping backend's host wakes it (and gets 503 with Retry-After meanwhile).
  bool wake_on_request = false;
  RoutingMode routing = RoutingMode::kGate;  // buttons[].routing, else caddy.routing
  HoldSettings hold;
  GateDown gate_down = GateDown::kClosed;
  // The SHA-256 digests (64 lower-case hex digits each) of the bearer keys that a request must
  // carry to pass the gate or wake the backend; empty: no key needed.
  std::vector<std::string> api_key_digests;
  // The hourly prices for the savings report; nullopt: the report gives hours only.
  std::optional<Price> price;
  // Keep-warm windows, "DAYS HH:MM-HH:MM [TIME_ZONE]" each (schedule/windows.h).
  std::vector<std::string> keep_warm;
  // How long ahead of a window or pre-warm to wake while the event log has no wake duration.
  std::chrono::seconds wake_lead{600};
  PrewarmSettings prewarm;
  // buttons[].dry_run: observe the cloud and health, decide as usual, but never send a wake or a
  // sleep; record dry_run_would_shelve / dry_run_would_wake instead (events/record.h).
  bool dry_run = false;

  bool operator==(const BackendConfig&) const = default;
};

struct AppSettings {
  std::string title = "Unshelver";
  std::string secret_key;        // session signing key (secret)
  std::string control_token;     // admin token (secret)
  Millis poll_interval{10'000};  // app.poll_interval_seconds: cloud status polling
  // app.settled_poll_interval_seconds, else six poll intervals and at least 30 s: how often the
  // cloud is asked about a backend while nothing should change (config/checks.cc, finish_app).
  Millis settled_poll_interval{60'000};
  Millis http_probe_timeout{5'000};
  int http_probe_attempts = 12;
  std::string manual_shelve_path = "/admin-shelve";
  std::chrono::minutes unshelve_timeout{30};
  int api_retry_attempts = 3;
  AppEnvironment env = AppEnvironment::kDevelopment;

  bool operator==(const AppSettings&) const = default;
};

struct OpenStackSettings {
  bool configured = false;  // an `openstack:` section, OS_AUTH_URL or OS_CLOUD was present
  std::string cloud;        // openstack.cloud: a clouds.yaml entry
  std::string auth_url;
  std::string username;
  std::string password;  // secret
  std::string project_name;
  std::string project_id;
  std::string user_domain_name = "Default";
  std::string project_domain_name = "Default";
  std::string application_credential_id;
  std::string application_credential_secret;  // secret
  std::string region_name;
  std::string interface = "public";
  bool verify = true;
  std::string cacert;
  std::chrono::milliseconds api_timeout{30'000};  // every single cloud API request
  // Keys the Python unshelver passed through to openstacksdk; kept so they are not lost.
  std::map<std::string, std::string> extra;

  bool operator==(const OpenStackSettings&) const = default;
};

// The `exoscale:` section: the API credentials and where the API is, for every Exoscale backend.
struct ExoscaleSettings {
  std::string api_key;     // kept like a secret: from the YAML, the secrets file or EXOSCALE_API_KEY
  std::string api_secret;  // secret
  std::string api_url = "https://api-{zone}.exoscale.com/v2";  // `{zone}` is the backend's zone
  std::string zone = "ch-gva-2";                               // for buttons without `zone`
  std::chrono::milliseconds api_timeout{30'000};               // every single API request

  bool operator==(const ExoscaleSettings&) const = default;
};

// Two or more controllers sharing the work through etcd (README "High availability"). Off while
// `etcd` is empty: one instance, state on local disk.
struct HaSettings {
  std::vector<std::string> etcd;  // the members' client URLs, http:// or https://
  std::string instance;           // this controller's name, unique among them; default: the host name
  std::string prefix = "unshelver/";
  std::chrono::seconds lease_ttl{10};
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds request_timeout{2000};
  std::string ca_file;    // TLS to etcd: the CA bundle that signed the members' certificates
  std::string cert_file;  // a client certificate, when etcd asks for one
  std::string key_file;
  std::string username;  // etcd's own authentication, when enabled there
  std::string password;  // secret: the YAML, the secrets file ([ha] password) or UNSHELVER_ETCD_PASSWORD

  bool enabled() const { return !etcd.empty(); }
  bool operator==(const HaSettings&) const = default;
};

// Limits of the built-in HTTP server.
struct HttpLimits {
  std::size_t max_url_bytes = std::size_t{8} * 1024;
  std::size_t max_header_bytes = std::size_t{16} * 1024;  // all header names and values of one request
  std::size_t max_header_count = 100;
  std::size_t max_body_bytes = std::size_t{64} * 1024;
  Millis header_timeout{10'000};  // from a request's first byte to its last header
  Millis body_timeout{30'000};    // from a request's last header to its body's last byte
  Millis idle_timeout{60'000};    // keep-alive connections with no request
  Millis shutdown_grace{5'000};   // how long in-flight requests may finish on SIGTERM
  // Open connections in total (0: the descriptor limit minus a reserve) and per client address
  // (0: no per-client cap).
  std::size_t max_connections = 0;
  std::size_t max_connections_per_client = 1024;

  bool operator==(const HttpLimits&) const = default;
};

// Who may speak for the client (web/proxy_trust.h): the Unix socket Caddy reaches Unshelver on,
// and the TCP peers whose X-Forwarded-For is believed.
struct ProxySettings {
  std::string socket;  // http.proxy_socket: a path, or empty for none
  // http.trusted_proxies; nullopt when not configured (then loopback, unless `socket` is set).
  std::optional<std::vector<std::string>> trusted_proxies;

  bool operator==(const ProxySettings&) const = default;
};

// The audit trail (events/journal.h, events/swift_mirror.h).
struct EventSettings {
  std::uint64_t rotate_bytes = std::uint64_t{10} * 1024 * 1024;  // the local log becomes .1 past this size
  int keep_files = 5;                                            // rotated files kept (more while Swift lags)
  int upload_concurrency = 4;                                    // Swift uploads at once
  Millis upload_retry_max{60'000};                               // the longest pause between failed uploads
  // GET /api/events/stream (web/event_stream.h).
  int stream_max_clients = 16;                             // streams open at once; more get 503
  std::size_t stream_buffer_bytes = std::size_t{1} << 20;  // unsent bytes a stream may hold before it is cut
  Millis stream_heartbeat{15'000};                         // a comment line when nothing else was sent

  bool operator==(const EventSettings&) const = default;
};

// A receiver of events by HTTP POST (events/webhook.h). Our extension: `webhooks`.
struct WebhookConfig {
  std::string name;                 // in status, metrics, logs and the secrets' names
  std::string url;                  // http or https
  std::vector<std::string> events;  // the actions it wants; empty: all of them
  std::string secret;               // the HMAC-SHA256 key of the signature; never shown
  Millis timeout{10'000};           // one delivery attempt, connection included
  Millis retry_max{300'000};        // the longest pause between failed attempts

  bool operator==(const WebhookConfig&) const = default;
};

// How failures are mailed to notification_email (events/mail_notifier.h). Our extension: the
// `notifications` section.
struct NotificationSettings {
  std::string sendmail;  // "" = "sendmail" on PATH, else /usr/sbin/sendmail (the Python unshelver's)
  std::string from;      // "" = unshelver@<the machine's host name>
  std::chrono::seconds outage_threshold{15 * 60};  // Swift or Caddy failing this long is mailed
  std::chrono::seconds quiet{60 * 60};             // one message per backend and kind per this long
  int max_queued = 20;
  Millis send_timeout{30'000};
  int attempts = 4;

  bool operator==(const NotificationSettings&) const = default;
};

// How the control surface and the public wake are protected (web/access.h). Our extension: the
// `security` section.
struct SecuritySettings {
  std::chrono::minutes session_lifetime{12 * 60};  // security.session_hours: a /control login lasts this long
  int login_burst = 5;                             // failed logins a client may make in a row ...
  Millis login_refill{60'000};   // ... then one more per this interval (security.login_refill_seconds)
  int wake_burst = 3;            // public wake requests a client may make in a row ...
  Millis wake_refill{60'000};    // ... then one more per this interval (security.wake_refill_seconds)
  Millis wake_cooldown{30'000};  // across all clients: at most one public wake that starts a
                                 // sleeping backend per this interval (security.wake_cooldown_seconds)

  bool operator==(const SecuritySettings&) const = default;
};

// How Unshelver manages Caddy's routing (see caddy/router.h and caddy/).
enum class CaddyIntegration {
  kFull,     // Unshelver renders the whole Caddyfile from a template and loads it
  kSnippet,  // Unshelver owns a snippet file that the user's Caddyfile imports, and reloads that
};

struct CaddySettings {
  bool manage = false;                          // off: Caddy's routing is left to the user (Python configs)
  std::string admin = "http://127.0.0.1:2019";  // Caddy's admin API
  CaddyIntegration integration = CaddyIntegration::kFull;
  std::string template_path;                           // empty: the built-in caddy/Caddyfile.template
  std::string caddyfile = "/etc/caddy/Caddyfile";      // full: written here; snippet: the user's file
  std::string snippet = "/etc/caddy/unshelver.caddy";  // snippet: the file Unshelver owns
  std::string launcher_url;             // site address of the launcher host, e.g. https://gpu.example.org
  std::string bind;                     // `bind` in every site block when set, e.g. 127.0.0.1
  int http_port = 0;                    // the global http_port option when not 0
  bool auto_https = true;               // false: `auto_https off`
  int log_roll_size_mb = 100;           // access log rotation (roll_size), whole MiB
  int log_roll_keep = 10;               // access log backups kept (roll_keep)
  int max_request_body_mb = 32;         // request bodies to a backend: Caddy buffers them whole
  Millis drift_check_interval{30'000};  // how often the running config is compared
  Millis retry_max{60'000};             // the longest back-off between failed loads
  RoutingMode routing = RoutingMode::kGate;  // every backend's, unless buttons[].routing says otherwise

  bool operator==(const CaddySettings&) const = default;
};

// Where a key was written in the YAML file (1-based), for messages about values that are checked
// after parsing, such as a folder that does not exist.
struct KeyLocation {
  int line = 0;
  int column = 0;

  bool operator==(const KeyLocation&) const = default;
};

struct Config {
  std::string source_path;  // the file this was read from, for messages
  // Every key written in the YAML file, by dotted path ("caddy.template", "buttons[0].id").
  std::map<std::string, KeyLocation> locations;

  AppSettings app;
  OpenStackSettings openstack;
  ExoscaleSettings exoscale;
  std::vector<BackendConfig> backends;

  std::string listen = "127.0.0.1:5001";
  std::string activity_log_path;
  ActivitySettings activity;
  std::chrono::seconds idle_poll_interval{30};
  std::string caddy_upstream_label = "gpu";
  std::string local_event_log;
  std::optional<std::string> swift_event_container;
  std::string swift_event_prefix;
  EventSettings events;
  std::vector<WebhookConfig> webhooks;
  SecuritySettings security;
  // One address, or several separated by commas (the Python unshelver took one).
  std::string notification_email;
  NotificationSettings notifications;

  std::string state_dir = "/var/lib/unshelver";
  std::string templates_dir;  // empty: the pages compiled into the binary
  std::string secrets_file;
  std::string log_level = "info";
  LogFormat log_format = LogFormat::kText;
  HttpLimits http;
  ProxySettings proxy;
  CaddySettings caddy;
  HaSettings ha;

  // local_event_log, or events.jsonl in the state directory when it is not set.
  std::string event_log_path() const {
    return local_event_log.empty() ? state_dir + "/events.jsonl" : local_event_log;
  }

  const BackendConfig* find_backend(const std::string& name) const {
    for (const auto& backend : backends) {
      if (backend.name == name) return &backend;
    }
    return nullptr;
  }

  bool operator==(const Config&) const = default;
};

}  // namespace unshelver::core
