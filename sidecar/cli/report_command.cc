#include "cli/report_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "base/text.h"
#include "base/time_format.h"
#include "bill/ledger.h"
#include "bill/savings.h"
#include "cli/client.h"
#include "config/files.h"
#include "events/journal.h"
#include "events/record.h"

namespace unshelver::app {

namespace {
using cli::kExitFailed;
using cli::kExitOk;
using cli::kExitUsage;
using core::TimePoint;

constexpr const char* kReportUsage =
    R"(Usage: unshelver report [--since DATE] [--until DATE] [--backend NAME] [--daily]
                        [--json | --csv] [--config FILE]

The savings report: per backend, the hours its machine was awake (from the wake request until it
was shelved), asleep and unknown (before the first event, or in error), and with prices
(buttons[].price) what that cost, what running all the time would have cost, and what was saved.
Read from the configuration's event log and its rotated files; no running instance is needed.

  --since DATE       start of the period: 2026-11-01 (00:00 UTC) or 2026-11-01T08:00:00Z;
                     default: the first day of the current month
  --until DATE       end of the period (not included); default: now
  --backend NAME     only this backend
  --daily            a row per UTC day and backend (for charts), each cut to the period
  --json             one JSON document: {"since", "until", "backends": [...]}
  --csv              a table: a header row, then one row per backend (RFC 4180)
  --config FILE, -c  the configuration (else $UNSHELVER_CONFIG, else ./config.yaml)

Exit codes: 0 printed, 1 the event log could not be read, 2 usage or configuration.
)";

enum class Format { kText, kJson, kCsv };

struct ReportOptions {
  std::optional<TimePoint> since;
  std::optional<TimePoint> until;
  std::string backend;
  bool daily = false;
  Format format = Format::kText;
  cli::ConnectionOptions connection;
};

Result<ReportOptions> parse_report_options(const std::vector<std::string>& args) {
  ReportOptions options;
  bool json = false;
  bool csv = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](const char* what) { return cli::option_value(args, i, what); };
    auto taken = cli::take_connection_option(args, i, options.connection);
    if (!taken) return taken.error();
    if (*taken) continue;
    if (arg == "--json") {
      json = true;
    } else if (arg == "--csv") {
      csv = true;
    } else if (arg == "--daily") {
      options.daily = true;
    } else if (arg == "--backend") {
      auto name = value("a backend name");
      if (!name) return name.error();
      options.backend = *name;
    } else if (arg == "--since" || arg == "--until") {
      auto text = value("a date (2026-11-01) or a time (2026-11-01T08:00:00Z)");
      if (!text) return text.error();
      const std::optional<TimePoint> bound = core::parse_report_bound(*text);
      if (!bound) {
        return Error{arg + " " + cli::shown_argument(*text) +
                     ": not a date (2026-11-01) or a time (2026-11-01T08:00:00Z)"};
      }
      (arg == "--since" ? options.since : options.until) = *bound;
    } else {
      return Error{"unknown argument: " + cli::shown_argument(arg)};
    }
  }
  if (json && csv) return Error{"--json and --csv do not go together"};
  if (!options.connection.url.empty() || !options.connection.token_file.empty())
    return Error{"the report reads the local event log; --url and --token-file are not used"};
  options.format = json ? Format::kJson : csv ? Format::kCsv : Format::kText;
  return options;
}

}  // namespace

int run_report_command(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(kReportUsage, stdout);
      return kExitOk;
    }
  }
  auto options = parse_report_options(args);
  if (!options) {
    std::fprintf(stderr, "unshelver report: %s\n\n", options.error().message.c_str());
    std::fputs(kReportUsage, stderr);
    return kExitUsage;
  }
  auto config = cli::load_config(options->connection, environment_snapshot());
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return kExitUsage;
  }
  const TimePoint now = std::chrono::system_clock::now();
  const TimePoint since = options->since.value_or(core::start_of_month(now));
  const TimePoint until = options->until.value_or(now);
  if (until <= since) {
    std::fprintf(stderr, "unshelver report: --until (%s) must be after --since (%s)\n",
                 core::format_rfc3339(until).c_str(), core::format_rfc3339(since).c_str());
    return kExitUsage;
  }

  std::vector<const core::BackendConfig*> chosen;
  for (const core::BackendConfig& backend : config->backends) {
    if (options->backend.empty() || backend.name == options->backend) chosen.push_back(&backend);
  }
  if (chosen.empty()) {
    std::string names;
    for (const core::BackendConfig& backend : config->backends)
      names += (names.empty() ? "" : ", ") + backend.name;
    std::fprintf(stderr, "unshelver report: no backend %s in the configuration (it has: %s)\n",
                 core::escape_control_characters(options->backend).c_str(), names.c_str());
    return kExitUsage;
  }

  // Fed in the order written, as the daemon's ledger is, so both show the same figures.
  core::Ledger ledger(core::backends_by_instance(config->backends));
  std::size_t unreadable = 0;
  auto log = io::EventLogSnapshot::open(config->event_log_path());
  const Status read =
      !log ? Status(Error{log.error().message})
           : log->for_each_record([&ledger](const core::EventRecord& record) { ledger.add(record); },
                                  unreadable);
  if (!read) {
    std::fprintf(stderr, "unshelver report: %s (local_event_log)\n", read.error().message.c_str());
    return kExitFailed;
  }
  if (unreadable > 0) {
    std::fprintf(stderr, "unshelver report: %zu line(s) of the event log are not event records; left out\n",
                 unreadable);
  }

  std::vector<core::PeriodUsage> periods;
  if (options->daily) {
    // Day by day, each day's backends together: a time series as spreadsheets chart it.
    std::map<TimePoint, std::vector<core::PeriodUsage>> days;
    for (const core::BackendConfig* backend : chosen) {
      for (const core::DayUsage& day : ledger.daily(backend->name, since, until, now)) {
        days[day.day].push_back(core::PeriodUsage{backend->name, std::max(day.day, since),
                                                  std::min(day.day + std::chrono::hours(24), until),
                                                  day.usage, backend->price});
      }
    }
    for (auto& [day, rows] : days) periods.insert(periods.end(), rows.begin(), rows.end());
  } else {
    periods.reserve(chosen.size());
    for (const core::BackendConfig* backend : chosen) {
      periods.push_back(core::PeriodUsage{backend->name, since, until,
                                          ledger.usage(backend->name, since, until, now), backend->price});
    }
  }
  if (options->format == Format::kJson) {
    nlohmann::json rows = nlohmann::json::array();
    for (const core::PeriodUsage& period : periods) rows.push_back(core::period_json(period));
    const nlohmann::json document{{"since", core::format_rfc3339(since)},
                                  {"until", core::format_rfc3339(until)},
                                  {"backends", std::move(rows)}};
    std::printf("%s\n", document.dump(2).c_str());
  } else if (options->format == Format::kCsv) {
    std::fputs(core::report_csv(periods).c_str(), stdout);
  } else {
    std::fputs(core::report_text(periods, since, until, options->daily).c_str(), stdout);
  }
  return kExitOk;
}

}  // namespace unshelver::app
