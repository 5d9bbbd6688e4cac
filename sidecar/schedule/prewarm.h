// Pre-warming from history: wake a backend ahead of the expected first use of the day.
//
// The expected first use of a day is learned per weekday: the first use of each of the same
// weekdays in the last `lookback_weeks` weeks (in the backend's time zone), and of those a low
// percentile, so that most days the backend is ready before the first visitor. A use is a wake
// request by a visitor or an API client (the event log's unshelve_requested with the actor
// public-button or wake-on-request), or activity seen while the daemon runs (activity is not in
// the event log, so after a restart only the wake requests are known). Days without a use are
// not samples; a weekday with fewer than `min_samples` samples is not pre-warmed.
//
// The pre-warm wakes at the expected first use minus the backend's measured wake duration, and
// holds the backend awake until its first use or `max_hold` past the expected use, whichever
// comes first; then the idle rule applies. A cost cap bounds what this may cost: at most
// `max_hours_per_week` pre-warm hours per week (weeks begin Monday 00:00 UTC), counted from the
// wake to the first use or the end of the hold (PrewarmBudget, persisted by the scheduler).
// Pure.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "config/config.h"
#include "schedule/time_zone.h"

namespace unshelver::core {

struct PrewarmPlan {
  std::chrono::local_days day;  // the local day it is for
  SysSeconds wake_at;
  SysSeconds expected_use;
  SysSeconds hold_until;
};

class PrewarmPlanner {
 public:
  PrewarmPlanner(PrewarmSettings settings, TimeZone zone);

  // A use at `at`; only the first of each local day counts.
  void add_use(SysSeconds at);
  // Whether the local day of `at` has seen a use.
  bool used_on_day_of(SysSeconds at) const;
  // The expected first use on local `day`, from the same weekday's earlier weeks.
  std::optional<SysSeconds> expected_first_use(std::chrono::local_days day) const;
  // The pre-warm still ahead or under way at `now` (today's or tomorrow's, local): none on a day
  // that has already seen a use, none whose hold has ended.
  std::optional<PrewarmPlan> plan(SysSeconds now, std::chrono::seconds lead) const;

  const TimeZone& zone() const { return zone_; }
  const PrewarmSettings& settings() const { return settings_; }

 private:
  PrewarmSettings settings_;
  TimeZone zone_;
  std::map<std::chrono::local_days, std::chrono::seconds> first_use_;  // time of day of the day's first use
};

// The cost cap: pre-warm seconds charged per week.
class PrewarmBudget {
 public:
  explicit PrewarmBudget(std::chrono::seconds per_week) : per_week_(per_week) {}

  std::chrono::seconds used(SysSeconds now) const;
  // Whether `more` seconds still fit into the week of `now`.
  bool allows(SysSeconds now, std::chrono::seconds more) const;
  void charge(SysSeconds at, std::chrono::seconds seconds);

  // {"weeks": {"2026-11-30": 5400, ...}} (seconds per week, by the week's Monday); the last few
  // weeks only.
  nlohmann::json to_json() const;
  void restore(const nlohmann::json& json);

 private:
  static std::chrono::sys_days week_of(SysSeconds at);
  std::chrono::seconds per_week_;
  std::map<std::chrono::sys_days, std::chrono::seconds> used_;
};

}  // namespace unshelver::core
