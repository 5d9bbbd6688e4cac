#include "bill/savings.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/time_format.h"

namespace unshelver::core {

namespace {

constexpr double kSecondsPerHour = 3600.0;

double hours(double seconds) {
  return seconds / kSecondsPerHour;
}

double cents(double amount) {
  return std::round(amount * 100.0) / 100.0;
}

double tenths(double seconds) {
  return std::round(seconds * 10.0) / 10.0;
}

// "12.50": a number with a fixed count of decimals, as the report's columns and the CSV show it.
std::string fixed(double value, int decimals) {
  char text[64];
  const int written = std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return written > 0 ? std::string(text) : std::string();
}

// "2026-12-06" of a UTC day.
std::string date_of(TimePoint day) {
  return format_rfc3339(day).substr(0, 10);
}

std::string pad(std::string text, std::size_t width, bool right) {
  if (text.size() >= width) return text;
  const std::string space(width - text.size(), ' ');
  return right ? space + text : text + space;
}

}  // namespace

std::optional<TimePoint> parse_report_bound(std::string_view text) {
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    const std::string digits =
        std::string(text.substr(0, 4)) + std::string(text.substr(5, 2)) + std::string(text.substr(8, 2));
    if (digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const std::chrono::year_month_day date{
        std::chrono::year{std::stoi(digits.substr(0, 4))},
        std::chrono::month{static_cast<unsigned>(std::stoi(digits.substr(4, 2)))},
        std::chrono::day{static_cast<unsigned>(std::stoi(digits.substr(6, 2)))}};
    if (!date.ok()) return std::nullopt;
    return std::chrono::sys_days{date};
  }
  return parse_rfc3339(text);
}

Costs costs_of(const Usage& usage, const Price& price) {
  Costs costs;
  costs.cost = hours(usage.awake) * price.running_per_hour + hours(usage.asleep) * price.asleep_per_hour;
  costs.always_on = hours(usage.awake + usage.asleep) * price.running_per_hour;
  costs.savings = costs.always_on - costs.cost;
  costs.projected_savings = hours(usage.would_sleep) * (price.running_per_hour - price.asleep_per_hour);
  return costs;
}

nlohmann::json period_json(const PeriodUsage& period) {
  nlohmann::json out{{"backend", period.backend},
                     {"since", format_rfc3339(period.since)},
                     {"until", format_rfc3339(period.until)},
                     {"awake_seconds", tenths(period.usage.awake)},
                     {"asleep_seconds", tenths(period.usage.asleep)},
                     {"unknown_seconds", tenths(period.usage.unknown)},
                     {"would_sleep_seconds", tenths(period.usage.would_sleep)}};
  if (period.price) {
    const Costs costs = costs_of(period.usage, *period.price);
    out["currency"] = period.price->currency;
    out["running_per_hour"] = period.price->running_per_hour;
    out["asleep_per_hour"] = period.price->asleep_per_hour;
    out["cost"] = cents(costs.cost);
    out["always_on_cost"] = cents(costs.always_on);
    out["savings"] = cents(costs.savings);
    out["projected_savings"] = cents(costs.projected_savings);
  }
  return out;
}

std::string report_text(const std::vector<PeriodUsage>& periods, TimePoint since, TimePoint until,
                        bool per_day) {
  std::string out = "From " + format_rfc3339(since) + " until " + format_rfc3339(until) + " (UTC)\n\n";
  std::vector<std::pair<std::string, std::size_t>> columns = {
      {"backend", 12},   {"awake h", 9}, {"asleep h", 9}, {"unknown h", 10},     {"cost", 10},
      {"always on", 10}, {"saved", 10},  {"currency", 8}, {"dry run: saved", 15}};
  if (per_day) columns.insert(columns.begin(), {"day", 10});
  // The day and the backend's name read from the left, the figures from the right.
  const std::size_t text_columns = per_day ? 2 : 1;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    out += pad(columns[i].first, columns[i].second, i >= text_columns);
    out += i + 1 < columns.size() ? "  " : "\n";
  }
  for (const PeriodUsage& period : periods) {
    std::vector<std::string> cells = {period.backend, fixed(hours(period.usage.awake), 2),
                                      fixed(hours(period.usage.asleep), 2),
                                      fixed(hours(period.usage.unknown), 2)};
    if (period.price) {
      const Costs costs = costs_of(period.usage, *period.price);
      cells.push_back(fixed(costs.cost, 2));
      cells.push_back(fixed(costs.always_on, 2));
      cells.push_back(fixed(costs.savings, 2));
      cells.push_back(period.price->currency);
      cells.push_back(period.usage.would_sleep > 0 ? fixed(costs.projected_savings, 2) : "-");
    } else {
      for (int i = 0; i < 4; ++i) cells.emplace_back("-");
      cells.push_back(period.usage.would_sleep > 0 ? fixed(hours(period.usage.would_sleep), 2) + " h" : "-");
    }
    if (per_day) cells.insert(cells.begin(), date_of(period.since));
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out += pad(cells[i], columns[i].second, i >= text_columns);
      out += i + 1 < cells.size() ? "  " : "\n";
    }
  }
  out +=
      "\nawake: the machine ran (from the wake request until shelved); unknown: no record says (before the "
      "first one, or in error), in no amount.\nsaved = always on - cost; dry run: what shelving would have "
      "saved.\n";
  return out;
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string report_csv(const std::vector<PeriodUsage>& periods) {
  const char* const header[] = {"backend",
                                "since",
                                "until",
                                "awake_hours",
                                "asleep_hours",
                                "unknown_hours",
                                "would_sleep_hours",
                                "currency",
                                "running_per_hour",
                                "asleep_per_hour",
                                "cost",
                                "always_on_cost",
                                "savings",
                                "projected_savings"};
  std::string out;
  auto line = [&out](const std::vector<std::string>& fields) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) out += ',';
      out += csv_field(fields[i]);
    }
    out += "\r\n";
  };
  line(std::vector<std::string>(std::begin(header), std::end(header)));
  for (const PeriodUsage& period : periods) {
    std::vector<std::string> fields = {period.backend,
                                       format_rfc3339(period.since),
                                       format_rfc3339(period.until),
                                       fixed(hours(period.usage.awake), 4),
                                       fixed(hours(period.usage.asleep), 4),
                                       fixed(hours(period.usage.unknown), 4),
                                       fixed(hours(period.usage.would_sleep), 4)};
    if (period.price) {
      const Costs costs = costs_of(period.usage, *period.price);
      fields.push_back(period.price->currency);
      fields.push_back(fixed(period.price->running_per_hour, 4));
      fields.push_back(fixed(period.price->asleep_per_hour, 4));
      for (double amount : {costs.cost, costs.always_on, costs.savings, costs.projected_savings})
        fields.push_back(fixed(amount, 2));
    } else {
      fields.resize(std::size(header));  // no price: empty cells, not zeros
    }
    line(fields);
  }
  return out;
}

nlohmann::json savings_json(const Ledger& ledger, const std::string& backend,
                            const std::optional<Price>& price, TimePoint now, int days) {
  const TimePoint this_month = start_of_month(now);
  const TimePoint last_month = start_of_month(this_month - std::chrono::hours(24));
  auto period = [&](TimePoint since, TimePoint until) {
    return period_json(PeriodUsage{backend, since, until, ledger.usage(backend, since, until, now), price});
  };
  nlohmann::json day_list = nlohmann::json::array();
  const TimePoint first_day = start_of_day(now) - std::chrono::hours(24) * (days - 1);
  for (const DayUsage& day :
       ledger.daily(backend, first_day, start_of_day(now) + std::chrono::hours(24), now)) {
    day_list.push_back({{"day", date_of(day.day)},
                        {"awake_seconds", tenths(day.usage.awake)},
                        {"asleep_seconds", tenths(day.usage.asleep)},
                        {"unknown_seconds", tenths(day.usage.unknown)}});
  }
  return {{"this_month", period(this_month, start_of_next_month(now))},
          {"last_month", period(last_month, this_month)},
          {"days", std::move(day_list)}};
}

TimePoint savings_horizon(TimePoint now, int days) {
  const TimePoint last_month = start_of_month(start_of_month(now) - std::chrono::hours(24));
  return std::min(last_month, start_of_day(now) - std::chrono::hours(24) * (days - 1));
}

nlohmann::json chart_bars(const nlohmann::json& days) {
  nlohmann::json bars = nlohmann::json::array();
  if (!days.is_array() || days.empty()) return bars;
  const double slot = static_cast<double>(kChartWidth) / static_cast<double>(days.size());
  const double width = std::max(1.0, slot - 2.0);
  const double day_seconds = 86400.0;
  for (std::size_t i = 0; i < days.size(); ++i) {
    const nlohmann::json& day = days[i];
    const double awake = day.value("awake_seconds", 0.0);
    const double asleep = day.value("asleep_seconds", 0.0);
    // The asleep part at the bottom, the awake part on it: a bar as tall as the known part of
    // the day; an empty slot is a day nobody knows about.
    const double asleep_height = asleep / day_seconds * kChartHeight;
    const double awake_height = awake / day_seconds * kChartHeight;
    const double asleep_y = kChartHeight - asleep_height;
    bars.push_back({{"x", fixed(static_cast<double>(i) * slot + 1.0, 2)},
                    {"width", fixed(width, 2)},
                    {"asleep_y", fixed(asleep_y, 2)},
                    {"asleep_height", fixed(asleep_height, 2)},
                    {"awake_y", fixed(asleep_y - awake_height, 2)},
                    {"awake_height", fixed(awake_height, 2)},
                    {"title", day.value("day", std::string()) + ": awake " + fixed(hours(awake), 1) +
                                  " h, asleep " + fixed(hours(asleep), 1) + " h"}});
  }
  return bars;
}

std::string period_summary(const nlohmann::json& period) {
  std::string text = "awake " + fixed(hours(period.value("awake_seconds", 0.0)), 1) + " h, asleep " +
                     fixed(hours(period.value("asleep_seconds", 0.0)), 1) + " h";
  const double unknown = period.value("unknown_seconds", 0.0);
  if (unknown > 0) text += ", unknown " + fixed(hours(unknown), 1) + " h";
  if (period.contains("currency")) {
    const std::string currency = " " + period.value("currency", std::string());
    text += "; cost " + fixed(period.value("cost", 0.0), 2) + currency + ", saved " +
            fixed(period.value("savings", 0.0), 2) + currency;
    if (period.value("would_sleep_seconds", 0.0) > 0) {
      text += ", a dry run would have saved " + fixed(period.value("projected_savings", 0.0), 2) + currency;
    }
  } else if (period.value("would_sleep_seconds", 0.0) > 0) {
    text +=
        "; a dry run would have slept " + fixed(hours(period.value("would_sleep_seconds", 0.0)), 1) + " h";
  }
  return text;
}

}  // namespace unshelver::core
