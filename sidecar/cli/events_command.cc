#include "cli/events_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/text.h"
#include "base/time_format.h"
#include "cli/client.h"
#include "config/files.h"
#include "events/journal.h"
#include "events/record.h"

namespace unshelver::app {

namespace {
using nlohmann::json;
using namespace std::chrono_literals;
using cli::kExitFailed;
using cli::kExitOk;
using cli::kExitUsage;

constexpr const char* kEventsUsage =
    R"(Usage: unshelver events [--follow] [--backend NAME] [--limit N] [--json]
                        [--config FILE] [--url URL] [--token-file FILE] [--local]

Prints the recent events of the running unshelver (transitions, Caddy load errors), oldest first.

  --follow           keep printing new events as they are recorded (Ctrl-C ends)
  --backend NAME     only the events of this backend
  --limit N          how many recent events to print first (default 20, at most 1000)
  --json             one JSON object per line, as in the event log, instead of text
  --local            read the configuration's event log file instead of asking the instance
                     (no token needed)
)";

constexpr auto kLongPoll = 25s;
constexpr auto kReconnectDelay = 2s;
constexpr std::size_t kPageLimit = 1000;  // the most /api/events gives at once

void print_usage(std::FILE* to) {
  std::fputs(kEventsUsage, to);
  std::fputs(cli::kConnectionHelp, to);
  std::fputs("\n", to);
  std::fputs(cli::kExitCodesHelp, to);
}

struct EventsOptions {
  bool follow = false;
  bool json_lines = false;
  bool local = false;
  std::string backend;
  cli::ConnectionOptions connection;
  std::size_t limit = 20;
};

Result<EventsOptions> parse(const std::vector<std::string>& args) {
  EventsOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](const char* what) { return cli::option_value(args, i, what); };
    auto taken = cli::take_connection_option(args, i, options.connection);
    if (!taken) return taken.error();
    if (*taken) continue;
    if (arg == "--follow" || arg == "-f") {
      options.follow = true;
    } else if (arg == "--json") {
      options.json_lines = true;
    } else if (arg == "--local") {
      options.local = true;
    } else if (arg == "--backend") {
      auto name = value("a backend name");
      if (!name) return name.error();
      options.backend = *name;
    } else if (arg == "--limit") {
      auto text = value("a number");
      if (!text) return text.error();
      char* end = nullptr;
      const unsigned long long limit = std::strtoull(text->c_str(), &end, 10);
      if (text->empty() || *end != '\0' || limit < 1 || limit > 1000)
        return Error{"--limit must be 1 to 1000"};
      options.limit = static_cast<std::size_t>(limit);
    } else {
      return Error{"unknown argument: " + cli::shown_argument(arg)};
    }
  }
  if (options.local && options.follow)
    return Error{"--local and --follow do not go together (use the instance)"};
  return options;
}

void print(const core::EventRecord& record, bool json_lines) {
  if (json_lines) {
    std::printf("%s\n", core::to_json_line(record).c_str());
  } else {
    std::string line = core::format_rfc3339(record.at) + "  #" + std::to_string(record.seq) + "  " +
                       (record.backend.empty() ? "-" : record.backend) + "  " + record.action;
    if (!record.from.empty() || !record.to.empty()) line += "  " + record.from + " -> " + record.to;
    if (!record.actor.empty()) line += "  by " + record.actor;
    if (!record.detail.empty()) line += ": " + record.detail;
    // A detail can hold a cloud's fault message or a client's path: one line, nothing that acts
    // on the terminal.
    std::printf("%s\n", core::escape_control_characters(line).c_str());
  }
  std::fflush(stdout);
}

// `events --local`: the newest `limit` records that `options` selects, read from the files, oldest
// first.
int print_local(const core::Config& config, const EventsOptions& options) {
  const std::string path = config.event_log_path();
  // The current file and the newest rotated one: the recent past, whatever the log's history
  // holds (the current file alone may hold fewer than `limit` records just after a rotation).
  auto log = io::EventLogSnapshot::open(path, 2);
  if (!log) {
    std::fprintf(stderr, "unshelver events: %s (local_event_log)\n", log.error().message.c_str());
    return kExitFailed;
  }
  std::deque<core::EventRecord> newest;
  std::size_t unreadable = 0;
  const Status read = log->for_each_record(
      [&](const core::EventRecord& record) {
        if (record.seq == 0) return;  // a line of the Python unshelver
        if (!options.backend.empty() && record.backend != options.backend) return;
        newest.push_back(record);
        if (newest.size() > options.limit) newest.pop_front();
      },
      unreadable);
  if (!read) {
    std::fprintf(stderr, "unshelver events: %s (local_event_log)\n", read.error().message.c_str());
    return kExitFailed;
  }
  for (const core::EventRecord& record : newest) print(record, options.json_lines);
  return kExitOk;
}

// Asks the instance once, or follows it until interrupted.
int read_from_instance(cli::CliClient& client, const EventsOptions& options) {
  const std::string& base_url = client.instance().base_url;
  // Empty: the first question (the newest `limit` events).
  std::optional<std::uint64_t> after;
  for (;;) {
    std::string target = "/api/events?limit=" + std::to_string(after ? kPageLimit : options.limit);
    if (after) target += "&after=" + std::to_string(*after) + "&wait=" + std::to_string(kLongPoll.count());
    if (!options.backend.empty()) target += "&backend=" + core::percent_encode(options.backend);
    const io::ClientResponse response =
        client.request("GET", target, std::chrono::duration_cast<std::chrono::milliseconds>(kLongPoll + 10s));

    json body = response.is_2xx() ? json::parse(response.body, nullptr, false) : json();
    if (!body.is_object() || !body.contains("events") || !body["events"].is_array()) {
      cli::Failure failure = response.is_2xx()
                                 ? cli::Failure{kExitFailed, base_url +
                                                                 " answered with something that is not an "
                                                                 "event list"}
                                 : cli::describe_failure(response, client.instance(), false);
      // A refused token stays refused; following only rides out a restart of the daemon.
      if (!options.follow || !after || failure.exit_code == cli::kExitRefused) {
        std::fprintf(stderr, "unshelver events: %s\n", failure.message.c_str());
        if (!response.transport_ok()) {
          std::fprintf(stderr, "`unshelver events --local` reads the log file without the instance.\n");
        }
        return failure.exit_code;
      }
      // Following: the daemon may be restarting; try again without losing our place.
      const std::string first_line = failure.message.substr(0, failure.message.find('\n'));
      std::fprintf(stderr, "unshelver events: %s; trying again\n",
                   core::escape_control_characters(first_line).c_str());
      client.pause(std::chrono::duration_cast<std::chrono::milliseconds>(kReconnectDelay));
      continue;
    }
    std::uint64_t seen = after.value_or(0);
    for (const json& entry : body["events"]) {
      auto record = core::parse_event_line(entry.dump());
      if (!record) continue;
      print(*record, options.json_lines);
      seen = std::max(seen, record->seq);
    }
    if (!options.follow) return kExitOk;
    // Where to go on from: past what was printed, and past `last_seq` (the newest event of any
    // backend when the answer was made) whenever the answer holds everything up to it: the first
    // answer (the newest events), or a page shorter than the limit. Otherwise an event of another
    // backend would end every long poll at once, and a filtered follow would spin.
    const bool complete = !after || body["events"].size() < kPageLimit;
    if (complete && body.contains("last_seq") && body["last_seq"].is_number_unsigned()) {
      seen = std::max(seen, body["last_seq"].get<std::uint64_t>());
    }
    after = seen;
  }
}

}  // namespace

int run_events_command(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      print_usage(stdout);
      return kExitOk;
    }
  }
  auto options = parse(args);
  if (!options) {
    std::fprintf(stderr, "unshelver events: %s\n\n", options.error().message.c_str());
    print_usage(stderr);
    return kExitUsage;
  }
  const auto env = environment_snapshot();
  if (options->local) {
    auto config = cli::load_config(options->connection, env);
    if (!config) {
      std::fprintf(stderr, "%s\n", config.error().message.c_str());
      return kExitUsage;
    }
    return print_local(*config, *options);
  }
  auto instance = cli::resolve_instance(options->connection, env);
  if (!instance) {
    std::fprintf(stderr, "unshelver events: %s\n", instance.error().message.c_str());
    return kExitUsage;
  }
  auto client = cli::CliClient::open(std::move(*instance));
  if (!client) {
    std::fprintf(stderr, "unshelver events: %s\n", client.error().message.c_str());
    return kExitFailed;
  }
  return read_from_instance(**client, *options);
}

}  // namespace unshelver::app
