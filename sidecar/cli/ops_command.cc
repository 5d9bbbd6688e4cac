#include "cli/ops_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/text.h"
#include "base/time_format.h"
#include "cli/client.h"
#include "config/files.h"

namespace unshelver::app {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using cli::kExitFailed;
using cli::kExitOk;
using cli::kExitUsage;

constexpr const char* kStatusUsage =
    R"(Usage: unshelver status [--json] [--config FILE] [--url URL] [--token-file FILE]

Prints the state of every backend of the running unshelver: its state and since when, what is
desired and by whom, the last activity, the time left until the idle shutdown, where it is
served, and its error; then Caddy's routing and the event log (GET /api/status).

Without a control token (no --token-file, $UNSHELVER_CONTROL_TOKEN or app.control_token) it
shows the public view, and says so: each backend's state, its times and its URL. (A client on
the instance's own machine gets the full view without a token too.)

  --json             print the instance's status document as it is, as one JSON document
)";

constexpr const char* kWakeUsage = R"(Usage: unshelver wake NAME [--wait [SECONDS]] [--json]
                      [--config FILE] [--url URL] [--token-file FILE]

Asks the running unshelver to wake backend NAME (POST /control/wake/NAME). Without --wait it
returns as soon as the request is accepted; waking a VM takes minutes.

  --wait [SECONDS]   then follow the status until NAME is ready (exit 0), in error (exit 1,
                     with the error), or SECONDS have passed (default 900; exit 1)
  --json             print the instance's answer as one JSON document; with --wait it gains a
                     "wait" member: {"outcome": "ready" | "error" | "timeout" | "failed",
                     "state", "error", "seconds"}
)";

constexpr const char* kShelveUsage = R"(Usage: unshelver shelve NAME [--wait [SECONDS]] [--json]
                        [--config FILE] [--url URL] [--token-file FILE]

Asks the running unshelver to put backend NAME to sleep (POST /control/shelve/NAME): shelve,
stop or suspend, as its sleep_action says. Without --wait it returns as soon as the request is
accepted.

  --wait [SECONDS]   then follow the status until NAME is asleep (exit 0), in error (exit 1,
                     with the error), or SECONDS have passed (default 900; exit 1)
  --json             print the instance's answer as one JSON document; with --wait it gains a
                     "wait" member: {"outcome": "asleep" | "error" | "timeout" | "failed",
                     "state", "error", "seconds"}
)";

constexpr auto kRequestTimeout = 15s;
constexpr auto kPollInterval = 1s;
constexpr std::chrono::seconds kDefaultWait{900};
constexpr std::chrono::seconds kLongestWait{7 * 24 * 3600};
// How long a backend found in `error` when the wait begins may stay in that same error before
// the wait gives up: the wake or shelve may not have been acted on yet.
constexpr auto kStaleErrorGrace = 5s;

void print_usage(const char* usage, std::FILE* to) {
  std::fputs(usage, to);
  std::fputs(cli::kConnectionHelp, to);
  std::fputs("\n", to);
  std::fputs(cli::kExitCodesHelp, to);
}

struct OpsOptions {
  bool json_output = false;
  std::string name;
  std::optional<std::chrono::seconds> wait;
  cli::ConnectionOptions connection;
};

std::optional<std::chrono::seconds> parse_seconds(const std::string& text) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::chrono::seconds(std::stoll(text));
}

// `takes_name`: wake and shelve need NAME and accept --wait; status takes neither.
Result<OpsOptions> parse(const std::vector<std::string>& args, bool takes_name) {
  OpsOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto taken = cli::take_connection_option(args, i, options.connection);
    if (!taken) return taken.error();
    if (*taken) continue;
    if (arg == "--json") {
      options.json_output = true;
    } else if (takes_name && (arg == "--wait" || arg.rfind("--wait=", 0) == 0)) {
      std::optional<std::string> value;
      if (arg != "--wait") {
        value = arg.substr(7);
      } else if (i + 1 < args.size() && parse_seconds(args[i + 1])) {
        value = args[++i];  // SECONDS is optional: only a number is taken as one
      }
      options.wait = kDefaultWait;
      if (value) {
        auto seconds = parse_seconds(*value);
        if (!seconds || *seconds <= 0s || *seconds > kLongestWait) {
          return Error{"--wait takes a number of seconds from 1 to " + std::to_string(kLongestWait.count())};
        }
        options.wait = *seconds;
      }
    } else if (!arg.empty() && arg[0] == '-') {
      return Error{"unknown option: " + cli::shown_argument(arg)};
    } else if (takes_name && options.name.empty()) {
      options.name = arg;
    } else {
      return Error{"unexpected argument: " + cli::shown_argument(arg)};
    }
  }
  if (takes_name && options.name.empty())
    return Error{"which backend? Give its NAME (see `unshelver status`)"};
  return options;
}

// ---------------------------------------------------------------------------------------------
// Reading the status document tolerantly: a missing or differently typed field is shown as absent.
// ---------------------------------------------------------------------------------------------

std::string text_of(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) return "";
  if (found->is_string()) return found->get<std::string>();
  return found->dump();
}

std::optional<double> number_of(const json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto found = object.find(key);
  if (found == object.end() || !found->is_number()) return std::nullopt;
  return found->get<double>();
}

const json& member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto found = object.find(key);
  return found == object.end() ? kNull : *found;
}

// As --json prints it. Texts cut by cli::printable may end inside a UTF-8 sequence; dump() would
// throw on those, so they are replaced instead.
std::string dump(const json& document) {
  return document.dump(2, ' ', false, json::error_handler_t::replace);
}

// "45s", "3m 12s", "2h 5m", "3d 4h".
std::string span(std::chrono::seconds length) {
  long long s = std::max<long long>(0, length.count());
  const long long days = s / 86400, hours = s / 3600 % 24, minutes = s / 60 % 60, seconds = s % 60;
  if (days > 0) return std::to_string(days) + "d " + std::to_string(hours) + "h";
  if (hours > 0) return std::to_string(hours) + "h " + std::to_string(minutes) + "m";
  if (minutes > 0) return std::to_string(minutes) + "m " + std::to_string(seconds) + "s";
  return std::to_string(seconds) + "s";
}

// What status-document output needs: the token to scrub from server texts, and the time now.
class StatusPrinter {
 public:
  explicit StatusPrinter(const cli::Instance& instance)
      : instance_(instance), now_(std::chrono::system_clock::now()) {}

  // The server's text, safe to print.
  std::string safe(const std::string& text) const { return cli::printable(text, instance_.token, 500); }

  // "2026-11-22T21:20:01Z (3m 12s ago)"; the text as it is when it is not a timestamp.
  std::string moment(const std::string& rfc3339) const {
    auto at = core::parse_rfc3339(rfc3339);
    if (!at) return safe(rfc3339);
    const std::string stamp = core::format_rfc3339(*at).substr(0, 19) + "Z";
    const auto delta = std::chrono::duration_cast<std::chrono::seconds>(now_ - *at);
    return stamp + (delta >= 0s ? " (" + span(delta) + " ago)" : " (in " + span(-delta) + ")");
  }

  // `view`: a line that says which view a status fetched without a token is ("" with a token).
  void print(const json& status, const std::string& view) const {
    std::string heading = text_of(status, "title");
    heading = heading.empty() ? "unshelver" : safe(heading);
    heading += " at " + instance_.base_url;
    if (std::string revision = text_of(status, "revision"); !revision.empty())
      heading += " (revision " + revision + ")";
    std::printf("%s\n", heading.c_str());
    if (!view.empty()) std::printf("(%s)\n", view.c_str());

    const json& backends = member(status, "backends");
    if (!backends.is_array() || backends.empty()) std::printf("\nno backends\n");
    if (backends.is_array()) {
      for (const json& backend : backends) print_backend(backend);
    }
    std::printf("\n");
    print_caddy(member(status, "caddy"));
    print_events(member(status, "events"));
    print_activity(member(status, "activity"));
    print_openstack(member(status, "openstack"));
    print_ha(member(status, "ha"));
  }

 private:
  static void line(const char* label, const std::string& value) {
    if (!value.empty()) std::printf("  %-15s %s\n", label, value.c_str());
  }

  void print_backend(const json& backend) const {
    const std::string name = text_of(backend, "name");
    const std::string label = text_of(backend, "label");
    std::string heading = safe(name.empty() ? "?" : name);
    if (!label.empty() && label != name) heading += " (" + safe(label) + ")";
    std::printf("\n%s\n", heading.c_str());

    std::string state = text_of(backend, "state");
    state = state.empty() ? "unknown" : safe(state);
    if (std::string since = text_of(backend, "since"); !since.empty()) state += " since " + moment(since);
    line("state", state);

    std::string desired = safe(text_of(backend, "desired"));
    if (std::string by = text_of(backend, "desired_by"); !by.empty()) desired += ", by " + safe(by);
    if (std::string reason = text_of(backend, "desired_reason"); !reason.empty())
      desired += ": " + safe(reason);
    line("desired", desired);

    const std::string activity = text_of(backend, "last_activity");
    line("last activity", activity.empty() ? "none recorded" : moment(activity));
    line("idle shutdown", idle_shutdown(backend));
    if (std::string routing = text_of(backend, "routing"); !routing.empty()) {
      line("caddy routes to", routing == "backend" ? "the backend" : safe(routing) + " (the fallback)");
    }
    line("url", safe(text_of(backend, "url")));
    line("upstream", safe(text_of(backend, "upstream")));
    std::string cloud = safe(text_of(backend, "cloud_status"));
    if (std::string observed = text_of(backend, "observed_at"); !cloud.empty() && !observed.empty()) {
      cloud += ", observed " + moment(observed);
    }
    line("cloud", cloud);
    if (std::string action = text_of(backend, "action_in_flight"); !action.empty()) {
      line("in progress", safe(action));
    }
    line("led by", safe(text_of(member(backend, "ha"), "text")));
    line("error", safe(text_of(backend, "error")));
    line("observe error", safe(text_of(backend, "observe_error")));
  }

  // With several controllers (ha): this one, etcd's health and the lease, in one line.
  void print_ha(const json& ha) const {
    if (!ha.is_object()) return;
    std::printf("ha: %s\n", safe(text_of(ha, "summary")).c_str());
  }

  std::string idle_shutdown(const json& backend) const {
    const std::string deadline_text = text_of(backend, "idle_deadline");
    auto deadline = core::parse_rfc3339(deadline_text);
    if (!deadline) return safe(deadline_text);
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(*deadline - now_);
    std::string text = left > 0s ? "in " + span(left) : "due now";
    text += " (at " + core::format_rfc3339(*deadline).substr(0, 19) + "Z";
    if (auto timeout = number_of(backend, "idle_timeout_seconds")) {
      text += ", idle timeout " + span(std::chrono::seconds(static_cast<long long>(*timeout)));
    }
    text += ")";
    if (auto in_flight = number_of(backend, "requests_in_flight"); in_flight && *in_flight > 0) {
      const long long count = static_cast<long long>(*in_flight);
      text += "; held by " + std::to_string(count) + (count == 1 ? " request" : " requests") + " in flight";
    }
    return text;
  }

  void print_caddy(const json& caddy) const {
    if (!caddy.is_object()) return;
    if (caddy.contains("manage") && caddy["manage"].is_boolean() && !caddy["manage"].get<bool>()) {
      std::printf("caddy: not managed by unshelver (caddy.manage is off)\n");
      return;
    }
    std::string text = "caddy: routing";
    const json& modes = member(caddy, "modes");
    if (modes.is_object() && !modes.empty()) {
      std::string listed;
      for (auto it = modes.begin(); it != modes.end(); ++it) {
        listed += (listed.empty() ? " " : ", ") + safe(it.key()) + " -> " +
                  safe(it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
      }
      text += listed;
    } else {
      text += " not loaded yet";
    }
    if (std::string loaded = text_of(caddy, "loaded_at"); !loaded.empty())
      text += ", loaded " + moment(loaded);
    if (std::string integration = text_of(caddy, "integration"); !integration.empty()) {
      text += " (" + safe(integration) + " config";
      if (std::string admin = text_of(caddy, "admin"); !admin.empty()) text += " via " + safe(admin);
      text += ")";
    }
    std::printf("%s\n", text.c_str());
    std::string counts;
    for (const char* key : {"loads_ok", "loads_failed", "drift_repairs"}) {
      if (std::string value = text_of(caddy, key); !value.empty()) {
        counts += (counts.empty() ? "" : ", ") + std::string(key) + " " + value;
      }
    }
    line("loads", counts);
    line("pending", safe(text_of(caddy, "pending_modes")));
    std::string error = safe(text_of(caddy, "last_error"));
    if (std::string at = text_of(caddy, "last_error_at"); !error.empty() && !at.empty())
      error += " (" + moment(at) + ")";
    line("last error", error);
    if (std::string retry = text_of(caddy, "next_retry_at"); !retry.empty())
      line("next retry", moment(retry));
  }

  void print_events(const json& events) const {
    if (!events.is_object()) return;
    std::string text = "events:";
    if (std::string last = text_of(events, "last_seq"); !last.empty()) text += " last #" + last;
    if (std::string log = text_of(events, "log"); !log.empty()) text += " in " + safe(log);
    std::printf("%s\n", text.c_str());
    std::string local;
    if (std::string unwritten = text_of(events, "unwritten"); !unwritten.empty()) {
      local = unwritten + " waiting to be written";
    }
    if (std::string errors = text_of(events, "write_errors"); !errors.empty()) {
      local += (local.empty() ? "" : ", ") + errors + " write errors";
    }
    line("local log", local);
    line("last write error", safe(text_of(events, "last_write_error")));
    const json& swift = member(events, "swift");
    if (!swift.is_object()) return;
    std::string outbox = text_of(swift, "outbox");
    outbox = outbox.empty() ? "?" : outbox;
    outbox += " waiting for Swift";
    if (std::string container = text_of(swift, "container"); !container.empty()) {
      outbox += " (container " + safe(container) + ")";
    }
    if (std::string through = text_of(swift, "uploaded_through"); !through.empty()) {
      outbox += ", uploaded through #" + through;
    }
    if (std::string errors = text_of(swift, "upload_errors"); !errors.empty() && errors != "0") {
      outbox += ", " + errors + " upload errors";
    }
    line("outbox", outbox);
    std::string error = safe(text_of(swift, "last_upload_error"));
    if (std::string at = text_of(swift, "last_upload_error_at"); !error.empty() && !at.empty()) {
      error += " (" + moment(at) + ")";
    }
    line("upload error", error);
  }

  void print_activity(const json& activity) const {
    if (!activity.is_object()) return;
    const std::string log = text_of(activity, "log_path");
    if (log.empty()) return;
    std::string text = "activity: " + safe(log);
    if (std::string lines = text_of(activity, "lines"); !lines.empty()) text += ", " + lines + " lines read";
    if (std::string rotations = text_of(activity, "rotations"); !rotations.empty() && rotations != "0") {
      text += ", " + rotations + " rotations";
    }
    std::printf("%s\n", text.c_str());
  }

  void print_openstack(const json& openstack) const {
    if (!openstack.is_object()) return;
    std::string text = "openstack: " + safe(text_of(openstack, "auth_url"));
    if (std::string region = text_of(openstack, "region"); !region.empty())
      text += " (region " + safe(region) + ")";
    if (std::string requests = text_of(openstack, "requests"); !requests.empty())
      text += ", " + requests + " requests";
    if (std::string retries = text_of(openstack, "retries"); !retries.empty())
      text += ", " + retries + " retries";
    std::printf("%s\n", text.c_str());
    line("auth error", safe(text_of(openstack, "auth_error")));
  }

  const cli::Instance& instance_;
  std::chrono::system_clock::time_point now_;
};

// ---------------------------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------------------------

// Parses, resolves the instance and opens a client; on failure prints why and sets `exit_code`.
std::unique_ptr<cli::CliClient> prepare(const char* command, const std::vector<std::string>& args,
                                        bool takes_name, OpsOptions& options, int& exit_code,
                                        cli::TokenNeed need = cli::TokenNeed::kRequired) {
  auto parsed = parse(args, takes_name);
  if (!parsed) {
    std::fprintf(stderr, "unshelver %s: %s\n(`unshelver %s --help` shows the usage)\n", command,
                 parsed.error().message.c_str(), command);
    exit_code = kExitUsage;
    return nullptr;
  }
  options = std::move(*parsed);
  auto instance = cli::resolve_instance(options.connection, environment_snapshot(), need);
  if (!instance) {
    std::fprintf(stderr, "unshelver %s: %s\n", command, instance.error().message.c_str());
    exit_code = kExitUsage;
    return nullptr;
  }
  auto client = cli::CliClient::open(std::move(*instance));
  if (!client) {
    std::fprintf(stderr, "unshelver %s: %s\n", command, client.error().message.c_str());
    exit_code = kExitFailed;
    return nullptr;
  }
  return std::move(*client);
}

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(),
                     [](const std::string& arg) { return arg == "--help" || arg == "-h"; });
}

// What a status document fetched without a token is: the public view (only what anyone may see,
// web::public_status) or the full one. Only the full view names each backend's provider.
std::string view_note(const json& status) {
  const json& backends = member(status, "backends");
  const bool full = backends.is_array() && !backends.empty() && backends[0].contains("provider");
  return full ? "full view without a token: this instance shows it to clients on its own machine"
              : "public view; give --token-file for the full view";
}

// GET /api/status as a JSON object, or the failure to report.
Result<json> fetch_status(cli::CliClient& client, std::optional<cli::Failure>& failure) {
  const io::ClientResponse response = client.request("GET", "/api/status", kRequestTimeout);
  if (!response.is_2xx()) {
    failure = cli::describe_failure(response, client.instance(), false);
    return Error{failure->message};
  }
  json body = json::parse(response.body, nullptr, false);
  if (!body.is_object()) {
    failure = cli::Failure{kExitFailed, client.instance().base_url +
                                            "/api/status answered with something that is "
                                            "not a status document"};
    return Error{failure->message};
  }
  return body;
}

struct Action {
  const char* command;  // "wake"
  const char* usage;
  const char* goal;       // the state that ends a successful wait: "ready"
  const char* done_text;  // "awake"
};

constexpr Action kWake{"wake", kWakeUsage, "ready", "awake"};
constexpr Action kShelve{"shelve", kShelveUsage, "asleep", "asleep"};

// Follows /api/status until the backend reaches the action's goal, an error, or the time limit.
// `state` is the one the instance's answer to the request named. Fills `report` (the "wait"
// member of --json) and returns the exit code.
int wait_for(const Action& action, cli::CliClient& client, const OpsOptions& options,
             const std::string& state, json& report) {
  const auto started = Clock::now();
  const auto deadline = started + *options.wait;
  const std::string shown_name = cli::shown_argument(options.name);
  const char* command = action.command;
  auto elapsed = [&] {
    return std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count();
  };
  auto finish = [&](const char* outcome, const std::string& state, const std::string& error) {
    report = json{{"outcome", outcome}, {"state", state}, {"error", error}, {"seconds", elapsed()}};
  };

  std::string last_state = state;                // already printed
  std::optional<std::string> stale_error_since;  // the `since` of an error already there at the start
  bool first = true;
  bool said_unreachable = false;
  for (;; first = false) {
    std::optional<cli::Failure> failure;
    auto status = fetch_status(client, failure);
    if (!status) {
      // A refused token stays refused; a daemon that restarts comes back, so keep trying.
      if (failure->exit_code == cli::kExitRefused) {
        std::fprintf(stderr, "unshelver %s: %s\n", command, failure->message.c_str());
        finish("failed", last_state, failure->message);
        return failure->exit_code;
      }
      if (!said_unreachable && !options.json_output) {
        const std::string first_line = failure->message.substr(0, failure->message.find('\n'));
        std::fprintf(stderr, "unshelver %s: %s; still trying\n", command, first_line.c_str());
        said_unreachable = true;
      }
    } else {
      said_unreachable = false;
      const json* backend = nullptr;
      const json& backends = member(*status, "backends");
      if (backends.is_array()) {
        for (const json& entry : backends) {
          if (text_of(entry, "name") == options.name) backend = &entry;
        }
      }
      if (backend == nullptr) {
        const std::string message =
            shown_name + " is no longer in the status of " + client.instance().base_url;
        std::fprintf(stderr, "unshelver %s: %s\n", command, message.c_str());
        finish("failed", last_state, message);
        return cli::kExitUnknownBackend;
      }
      const std::string now_state = cli::printable(text_of(*backend, "state"), client.instance().token, 40);
      const std::string since = text_of(*backend, "since");
      if (now_state != last_state && !options.json_output) {
        std::printf("%s: %s (after %llds)\n", shown_name.c_str(), now_state.c_str(),
                    static_cast<long long>(elapsed()));
        std::fflush(stdout);
      }
      last_state = now_state;
      if (now_state == action.goal) {
        if (!options.json_output) std::printf("%s is %s\n", shown_name.c_str(), action.goal);
        finish(action.goal, now_state, "");
        return kExitOk;
      }
      if (now_state == "error") {
        // Only an error the instance already reported in its answer may be one from before.
        if (first && (state == "error" || state.empty())) stale_error_since = since;
        const bool stale =
            stale_error_since && *stale_error_since == since && Clock::now() - started < kStaleErrorGrace;
        if (!stale) {
          std::string error = cli::printable(text_of(*backend, "error"), client.instance().token, 500);
          if (error.empty()) error = "no reason given";
          std::fprintf(stderr, "unshelver %s: %s is in error: %s\n", command, shown_name.c_str(),
                       error.c_str());
          finish("error", now_state, error);
          return kExitFailed;
        }
      }
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      const std::string message = shown_name + " is not " + action.goal + " after " +
                                  std::to_string(options.wait->count()) +
                                  " s (state: " + (last_state.empty() ? "unknown" : last_state) + ")";
      std::fprintf(stderr, "unshelver %s: %s\n", command, message.c_str());
      finish("timeout", last_state, message);
      return kExitFailed;
    }
    client.pause(std::min<std::chrono::milliseconds>(
        kPollInterval, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) + 1ms));
  }
}

int run_action(const Action& action, const std::vector<std::string>& args) {
  if (wants_help(args)) {
    print_usage(action.usage, stdout);
    return kExitOk;
  }
  OpsOptions options;
  int exit_code = kExitFailed;
  std::unique_ptr<cli::CliClient> client = prepare(action.command, args, true, options, exit_code);
  if (!client) return exit_code;
  const std::string shown_name = cli::shown_argument(options.name);

  const io::ClientResponse response = client->request(
      "POST", std::string("/control/") + action.command + "/" + core::percent_encode(options.name),
      kRequestTimeout);
  if (!response.is_2xx()) {
    const cli::Failure failure = cli::describe_failure(response, client->instance(), true);
    if (failure.exit_code == cli::kExitUnknownBackend) {
      std::fprintf(stderr, "unshelver %s: %s: %s (`unshelver status` lists them)\n", action.command,
                   shown_name.c_str(), failure.message.c_str());
    } else {
      std::fprintf(stderr, "unshelver %s: %s\n", action.command, failure.message.c_str());
    }
    return failure.exit_code;
  }
  json result = json::parse(response.body, nullptr, false);
  if (!result.is_object()) {
    std::fprintf(stderr, "unshelver %s: %s answered HTTP %ld with something that is not JSON\n",
                 action.command, client->instance().base_url.c_str(), response.status);
    return kExitFailed;
  }
  const bool accepted = member(result, "accepted").is_boolean() && member(result, "accepted").get<bool>();
  const bool already = member(result, "already").is_boolean() && member(result, "already").get<bool>();
  const std::string state = cli::printable(text_of(result, "state"), client->instance().token, 40);
  if (!options.json_output) {
    const std::string in_state = state.empty() ? "" : " (state: " + state + ")";
    if (already) {
      std::printf("%s: already %s%s\n", shown_name.c_str(), action.done_text, in_state.c_str());
    } else if (accepted) {
      std::printf("%s: %s requested%s\n", shown_name.c_str(), action.command, in_state.c_str());
    } else {
      std::printf("%s: the instance did not take the %s request%s\n", shown_name.c_str(), action.command,
                  in_state.c_str());
    }
    std::fflush(stdout);
  }

  int code = kExitOk;
  if (options.wait) {
    json report;
    code = wait_for(action, *client, options, state, report);
    result["wait"] = std::move(report);
  }
  if (options.json_output) std::printf("%s\n", dump(result).c_str());
  return code;
}

}  // namespace

int run_status_command(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    print_usage(kStatusUsage, stdout);
    return kExitOk;
  }
  OpsOptions options;
  int exit_code = kExitFailed;
  std::unique_ptr<cli::CliClient> client =
      prepare("status", args, false, options, exit_code, cli::TokenNeed::kOptional);
  if (!client) return exit_code;
  std::optional<cli::Failure> failure;
  auto status = fetch_status(*client, failure);
  if (!status) {
    std::fprintf(stderr, "unshelver status: %s\n", failure->message.c_str());
    return failure->exit_code;
  }
  // Without a token the instance answers with the public view, except to a client on its own
  // machine, which gets the full one anyway (web/routes.h); say which one this is.
  const std::string view = client->instance().token.empty() ? view_note(*status) : "";
  if (options.json_output) {
    if (!view.empty()) std::fprintf(stderr, "unshelver status: %s\n", view.c_str());
    std::printf("%s\n", dump(*status).c_str());
  } else {
    StatusPrinter(client->instance()).print(*status, view);
  }
  return kExitOk;
}

int run_wake_command(const std::vector<std::string>& args) {
  return run_action(kWake, args);
}

int run_shelve_command(const std::vector<std::string>& args) {
  return run_action(kShelve, args);
}

}  // namespace unshelver::app
