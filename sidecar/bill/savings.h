// What the ledger's seconds cost and saved (issue 17, "Savings report"), and how the report, the
// status document and the control page show them.
//
// With a backend's prices (buttons[].price, config/config.h):
//   cost              = awake hours × running_per_hour + asleep hours × asleep_per_hour
//   always on         = (awake + asleep hours) × running_per_hour
//   savings           = always on − cost = asleep hours × (running_per_hour − asleep_per_hour)
//   projected savings = would-sleep hours × (running_per_hour − asleep_per_hour)   (dry run)
// Unknown hours are in none of them: nobody knows what they cost. Without prices only the hours
// are given. Amounts are rounded to the cent, hours to a hundredth, where they are shown.
//
// Pure.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bill/ledger.h"
#include "config/config.h"

namespace unshelver::core {

struct Costs {
  double cost = 0;
  double always_on = 0;
  double savings = 0;
  double projected_savings = 0;
};
Costs costs_of(const Usage& usage, const Price& price);

// A report's bound as written on the command line: "2026-11-01" (00:00 UTC that day) or an RFC
// 3339 time ("2026-11-01T08:00:00Z"); nullopt for anything else.
std::optional<TimePoint> parse_report_bound(std::string_view text);

// One backend over one period: a row of the report.
struct PeriodUsage {
  std::string backend;
  TimePoint since;
  TimePoint until;
  Usage usage;
  std::optional<Price> price;
};

// {"backend", "since", "until", "awake_seconds", "asleep_seconds", "unknown_seconds",
//  "would_sleep_seconds", and with a price "currency", "running_per_hour", "asleep_per_hour",
//  "cost", "always_on_cost", "savings", "projected_savings"}.
nlohmann::json period_json(const PeriodUsage& period);
// The report over [since, until) as a table for people, one row per backend (with `per_day`, per
// UTC day and backend, the day first), and lines saying how it was computed.
std::string report_text(const std::vector<PeriodUsage>& periods, TimePoint since, TimePoint until,
                        bool per_day = false);
// The report as CSV (RFC 4180: a header row, CRLF line ends, fields quoted when they need it).
std::string report_csv(const std::vector<PeriodUsage>& periods);
// One CSV field: quoted (with its quotes doubled) when it holds a comma, a quote or a line end.
std::string csv_field(std::string_view text);

// The backend's savings as /api/status and the control page show them at `now`: this month and
// last month (UTC), and the last `days` UTC days (today included) for the chart:
// {"this_month": period, "last_month": period, "days": [{"day": "2026-12-06", "awake_seconds",
//  "asleep_seconds", "unknown_seconds"}]}.
nlohmann::json savings_json(const Ledger& ledger, const std::string& backend,
                            const std::optional<Price>& price, TimePoint now, int days = 30);
// The earliest time savings_json asks the ledger about at `now`: the start of last month, or of
// the first of the `days` days when that is earlier. The daemon's ledger forgets what lies before.
TimePoint savings_horizon(TimePoint now, int days = 30);

// What the control page draws from savings_json's "days" without a script: an SVG's bars, in its
// own units (kChartWidth × kChartHeight), each day a bar as tall as the day is long, its awake
// part on top of its asleep part: [{"x", "width", "awake_y", "awake_height", "asleep_y",
// "asleep_height", "title"}], plus a line of text for each month.
inline constexpr int kChartWidth = 300;
inline constexpr int kChartHeight = 60;
nlohmann::json chart_bars(const nlohmann::json& days);
// "this month: awake 12.5 h, asleep 707.5 h, cost 35.00 EUR, saved 1981.00 EUR"
std::string period_summary(const nlohmann::json& period);

}  // namespace unshelver::core
