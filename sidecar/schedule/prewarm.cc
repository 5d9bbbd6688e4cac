#include "schedule/prewarm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "base/clock.h"
#include "base/time_format.h"

namespace unshelver::core {

namespace {
using std::chrono::days;
using std::chrono::local_days;
using std::chrono::seconds;
}  // namespace

PrewarmPlanner::PrewarmPlanner(PrewarmSettings settings, TimeZone zone)
    : settings_(std::move(settings)), zone_(std::move(zone)) {}

void PrewarmPlanner::add_use(SysSeconds at) {
  const LocalSeconds local = zone_.to_local(at);
  const local_days day = std::chrono::floor<days>(local);
  const seconds time_of_day = local - day;
  auto [it, inserted] = first_use_.emplace(day, time_of_day);
  if (!inserted) it->second = std::min(it->second, time_of_day);
  // Only the lookback's weeks are needed; the map stays small.
  const local_days oldest = day - days(7 * (settings_.lookback_weeks + 1));
  first_use_.erase(first_use_.begin(), first_use_.lower_bound(oldest));
}

bool PrewarmPlanner::used_on_day_of(SysSeconds at) const {
  return first_use_.contains(std::chrono::floor<days>(zone_.to_local(at)));
}

std::optional<SysSeconds> PrewarmPlanner::expected_first_use(local_days day) const {
  std::vector<seconds> samples;
  for (int week = 1; week <= settings_.lookback_weeks; ++week) {
    if (auto it = first_use_.find(day - days(7 * week)); it != first_use_.end())
      samples.push_back(it->second);
  }
  if (samples.empty() || static_cast<int>(samples.size()) < settings_.min_samples) return std::nullopt;
  std::sort(samples.begin(), samples.end());
  // The lower nearest rank: with 4 samples and the 10th percentile, the earliest.
  const double rank = settings_.percentile / 100.0 * static_cast<double>(samples.size() - 1);
  const seconds time_of_day = samples[static_cast<std::size_t>(std::floor(rank))];
  return zone_.to_utc(day + time_of_day, Ambiguous::kEarlier);
}

std::optional<PrewarmPlan> PrewarmPlanner::plan(SysSeconds now, seconds lead) const {
  if (!settings_.enabled) return std::nullopt;
  const local_days today = std::chrono::floor<days>(zone_.to_local(now));
  for (const local_days day : {today, today + days(1)}) {
    if (first_use_.contains(day)) continue;
    const std::optional<SysSeconds> expected = expected_first_use(day);
    if (!expected) continue;
    const SysSeconds hold_until = *expected + std::chrono::duration_cast<seconds>(settings_.max_hold);
    if (hold_until <= now) continue;
    return PrewarmPlan{day, *expected - lead, *expected, hold_until};
  }
  return std::nullopt;
}

std::chrono::sys_days PrewarmBudget::week_of(SysSeconds at) {
  const auto day = std::chrono::floor<days>(at);
  const unsigned since_monday = std::chrono::weekday(day).iso_encoding() - 1;
  return day - days(since_monday);
}

seconds PrewarmBudget::used(SysSeconds now) const {
  auto it = used_.find(week_of(now));
  return it == used_.end() ? seconds(0) : it->second;
}

bool PrewarmBudget::allows(SysSeconds now, seconds more) const {
  return used(now) + more <= per_week_;
}

void PrewarmBudget::charge(SysSeconds at, seconds amount) {
  if (amount <= seconds(0)) return;
  used_[week_of(at)] += amount;
  // Four weeks are plenty to show; older ones go.
  while (used_.size() > 4) used_.erase(used_.begin());
}

nlohmann::json PrewarmBudget::to_json() const {
  nlohmann::json weeks = nlohmann::json::object();
  for (const auto& [monday, amount] : used_) {
    // "2026-07-06T00:00:00Z" cut to the date.
    weeks[format_rfc3339(TimePoint(monday.time_since_epoch())).substr(0, 10)] = amount.count();
  }
  return nlohmann::json{{"weeks", weeks}};
}

void PrewarmBudget::restore(const nlohmann::json& json) {
  used_.clear();
  if (!json.is_object() || !json.contains("weeks") || !json["weeks"].is_object()) return;
  for (const auto& [key, value] : json["weeks"].items()) {
    int year = 0;
    unsigned month = 0;
    unsigned day = 0;
    if (std::sscanf(key.c_str(), "%d-%u-%u", &year, &month, &day) != 3 || !value.is_number_integer())
      continue;
    const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                           std::chrono::day(day)};
    if (!date.ok()) continue;
    used_[std::chrono::sys_days(date)] = seconds(value.get<std::int64_t>());
  }
  while (used_.size() > 4) used_.erase(used_.begin());
}

}  // namespace unshelver::core
