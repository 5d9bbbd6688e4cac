#include "app/events_command.h"

#include <uv.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "app/config_file.h"
#include "core/event_record.h"
#include "core/text.h"
#include "core/time_format.h"
#include "io/http_client.h"
#include "io/http_server.h"
#include "io/timer.h"

namespace unshelver::app {

const char* const kEventsUsage = R"(Usage: unshelver events [--follow] [--backend NAME] [--limit N] [--json]
                        [--config FILE] [--url URL] [--local]

Prints the recent events of the running unshelver (transitions, Caddy load errors), oldest first.

  --follow        keep printing new events as they are recorded (Ctrl-C ends)
  --backend NAME  only the events of this backend
  --limit N       how many recent events to print first (default 20, at most 1000)
  --json          one JSON object per line, as in the event log, instead of text
  --config FILE   the configuration (default: $UNSHELVER_CONFIG, else ./config.yaml); its
                  `listen` address is where the instance is asked
  --url URL       ask this instance instead, e.g. http://127.0.0.1:5001
  --local         read the configuration's event log file instead of asking the instance

Exit codes: 0 printed, 1 the instance or the log could not be read, 2 usage or configuration.
)";

namespace {
using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr auto kLongPoll = 25s;
constexpr auto kReconnectDelay = 2s;
constexpr std::size_t kPageLimit = 1000;  // the most /api/events gives at once

struct EventsOptions {
  bool follow = false;
  bool json_lines = false;
  bool local = false;
  std::string backend;
  std::string config_path;
  std::string url;
  std::size_t limit = 20;
};

Result<EventsOptions> parse(const std::vector<std::string>& args) {
  EventsOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](const char* what) -> Result<std::string> {
      if (i + 1 >= args.size()) return Error{arg + " needs " + what};
      return args[++i];
    };
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
    } else if (arg == "--config" || arg == "-c") {
      auto path = value("a file name");
      if (!path) return path.error();
      options.config_path = *path;
    } else if (arg == "--url") {
      auto url = value("a URL such as http://127.0.0.1:5001");
      if (!url) return url.error();
      options.url = *url;
      while (!options.url.empty() && options.url.back() == '/') options.url.pop_back();
    } else if (arg == "--limit") {
      auto text = value("a number");
      if (!text) return text.error();
      char* end = nullptr;
      const unsigned long long limit = std::strtoull(text->c_str(), &end, 10);
      if (text->empty() || *end != '\0' || limit < 1 || limit > 1000) return Error{"--limit must be 1 to 1000"};
      options.limit = static_cast<std::size_t>(limit);
    } else {
      return Error{"unknown argument: " + arg};
    }
  }
  if (options.local && options.follow) return Error{"--local and --follow do not go together (use the instance)"};
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
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
}

// The base URL of the instance that `listen` names; a wildcard address is asked on loopback.
Result<std::string> instance_url(const std::string& listen) {
  auto address = io::split_host_port(listen);
  if (!address) return Error{"listen: " + address.error().message};
  std::string host = address->first;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(address->second);
}

// The records of one log file that `options` selects, oldest first; false when it cannot be read.
bool read_records(const std::string& file, const EventsOptions& options, std::vector<core::EventRecord>& out) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: a write in progress or torn, not an event yet
    auto record = core::parse_event_line(line);
    if (!record || record->seq == 0) continue;
    if (!options.backend.empty() && record->backend != options.backend) continue;
    out.push_back(std::move(*record));
  }
  return true;
}

int print_local(const core::Config& config, const EventsOptions& options) {
  const std::string path = config.event_log_path();
  std::vector<core::EventRecord> records;
  if (!read_records(path, options, records)) {
    std::fprintf(stderr, "unshelver events: cannot read %s (local_event_log)\n", path.c_str());
    return kExitFailed;
  }
  // The newest rotated file only when the current one holds too few (it may be 10 MiB).
  if (records.size() < options.limit) {
    std::vector<core::EventRecord> older;
    if (read_records(path + ".1", options, older)) records.insert(records.begin(), older.begin(), older.end());
  }
  const std::size_t first = records.size() > options.limit ? records.size() - options.limit : 0;
  for (std::size_t i = first; i < records.size(); ++i) print(records[i], options.json_lines);
  return kExitOk;
}

// Asks the instance, once or following; runs on its own short-lived loop.
class Reader {
 public:
  Reader(uv_loop_t* loop, io::HttpClient& client, EventsOptions options, std::string base_url)
      : client_(client), retry_timer_(loop), options_(std::move(options)), base_url_(std::move(base_url)) {}

  void start() { ask(std::nullopt); }
  int exit_code() const { return exit_code_; }

 private:
  // `after` empty: the first question (the newest `limit` events).
  void ask(std::optional<std::uint64_t> after) {
    std::string url = base_url_ + "/api/events?limit=" + std::to_string(after ? kPageLimit : options_.limit);
    if (after) url += "&after=" + std::to_string(*after) + "&wait=" + std::to_string(kLongPoll.count());
    if (!options_.backend.empty()) url += "&backend=" + core::percent_encode(options_.backend);
    io::ClientRequest request;
    request.url = url;
    request.timeout = kLongPoll + 10s;
    request.headers.emplace_back("Accept", "application/json");
    client_.send(std::move(request), [this, after](io::ClientResponse response) { on_answer(after, response); });
  }

  void on_answer(std::optional<std::uint64_t> after, const io::ClientResponse& response) {
    json body = response.is_2xx() ? json::parse(response.body, nullptr, false) : json();
    if (!body.is_object() || !body.contains("events") || !body["events"].is_array()) {
      const std::string why = !response.transport_ok() ? response.error
                              : response.is_2xx()       ? "an answer that is not an event list"
                                                        : "HTTP " + std::to_string(response.status) + ": " +
                                                        std::string(core::trim(response.body));
      if (!options_.follow || !after) {
        std::fprintf(stderr, "unshelver events: cannot read the events of %s: %s\n", base_url_.c_str(), why.c_str());
        if (!response.transport_ok()) {
          std::fprintf(stderr, "Is unshelver running there? `unshelver events --local` reads the log file.\n");
        }
        exit_code_ = kExitFailed;
        client_.close();
        return;
      }
      // Following: the daemon may be restarting; try again without losing our place.
      std::fprintf(stderr, "unshelver events: %s; trying again\n", why.c_str());
      retry_timer_.start(std::chrono::duration_cast<std::chrono::milliseconds>(kReconnectDelay),
                         [this, after] { ask(after); });
      return;
    }
    std::uint64_t seen = after.value_or(0);
    for (const json& entry : body["events"]) {
      auto record = core::parse_event_line(entry.dump());
      if (!record) continue;
      print(*record, options_.json_lines);
      seen = std::max(seen, record->seq);
    }
    if (!options_.follow) {
      exit_code_ = kExitOk;
      client_.close();
      return;
    }
    // Where to go on from: past what was printed, and past `last_seq` (the newest event of any
    // backend when the answer was made) whenever the answer holds everything up to it: the first
    // answer (the newest events), or a page shorter than the limit. Otherwise an event of another
    // backend would end every long poll at once, and a filtered follow would spin.
    const bool complete = !after || body["events"].size() < kPageLimit;
    if (complete && body.contains("last_seq") && body["last_seq"].is_number_unsigned()) {
      seen = std::max(seen, body["last_seq"].get<std::uint64_t>());
    }
    ask(seen);
  }

  io::HttpClient& client_;
  io::Timer retry_timer_;
  EventsOptions options_;
  std::string base_url_;
  int exit_code_ = kExitFailed;
};

}  // namespace

int run_events_command(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(kEventsUsage, stdout);
      return kExitOk;
    }
  }
  auto options = parse(args);
  if (!options) {
    std::fprintf(stderr, "unshelver events: %s\n\n%s", options.error().message.c_str(), kEventsUsage);
    return kExitUsage;
  }
  std::string base_url = options->url;
  if (base_url.empty() || options->local) {
    const std::string path = resolve_config_path(options->config_path);
    auto config = load_config_file(path, environment_snapshot());
    if (!config) {
      std::fprintf(stderr, "%s\n", config.error().message.c_str());
      return kExitUsage;
    }
    if (options->local) return print_local(*config, *options);
    auto url = instance_url(config->listen);
    if (!url) {
      std::fprintf(stderr, "unshelver events: %s: %s\n", path.c_str(), url.error().message.c_str());
      return kExitUsage;
    }
    base_url = *url;
  }

  uv_loop_t loop;
  if (int rc = uv_loop_init(&loop); rc != 0) {
    std::fprintf(stderr, "unshelver events: cannot initialise the event loop: %s\n", uv_strerror(rc));
    return kExitFailed;
  }
  int code = kExitFailed;
  {
    io::HttpClient client(&loop);
    Reader reader(&loop, client, *options, base_url);
    reader.start();
    uv_run(&loop, UV_RUN_DEFAULT);
    code = reader.exit_code();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return code;
}

}  // namespace unshelver::app
