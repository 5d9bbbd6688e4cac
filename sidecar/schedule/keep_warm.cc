#include "schedule/keep_warm.h"

#include <algorithm>
#include <cmath>

#include "base/time_format.h"

namespace unshelver::core {

namespace {

const AwakeHold* find_hold(const BackendReconciler& reconciler, HoldReason reason) {
  for (const AwakeHold& hold : reconciler.holds()) {
    if (hold.reason == reason) return &hold;
  }
  return nullptr;
}

TimePoint wall(SysSeconds at) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(at.time_since_epoch()));
}

}  // namespace

BackendSchedule::BackendSchedule(KeepWarmSchedule windows, std::optional<PrewarmPlanner> prewarm,
                                 std::chrono::seconds default_lead)
    : windows_(std::move(windows)),
      prewarm_(std::move(prewarm)),
      default_lead_(default_lead),
      budget_(prewarm_ ? prewarm_->settings().max_per_week : std::chrono::seconds(0)) {}

void BackendSchedule::add_use(SysSeconds at) {
  if (prewarm_) prewarm_->add_use(at);
}

std::chrono::seconds BackendSchedule::lead(std::optional<double> wake_estimate_seconds) const {
  if (!wake_estimate_seconds || *wake_estimate_seconds < 0) return default_lead_;
  return std::chrono::seconds(static_cast<std::int64_t>(std::ceil(*wake_estimate_seconds)));
}

KeepWarmStep BackendSchedule::step(SysSeconds now, const BackendReconciler& reconciler,
                                   std::optional<double> wake_estimate_seconds) {
  KeepWarmStep result;
  const std::chrono::seconds lead_time = lead(wake_estimate_seconds);
  const bool wanted_awake = reconciler.desired().awake;

  const KeepWarmDecision decision = windows_.decide(now, lead_time);
  const AwakeHold* window_hold = find_hold(reconciler, HoldReason::kWindow);
  if (decision.hold) {
    const TimePoint until = wall(decision.hold->end);
    if (window_hold == nullptr || window_hold->until != until) {
      result.place.push_back(AwakeHold{HoldReason::kWindow, "keep-warm",
                                       "keep-warm window until " + format_rfc3339(until),
                                       window_hold != nullptr ? window_hold->since : wall(now), until});
    }
    // Woken once per opening: a shelve by an admin during the window stands until the next one.
    if (woken_for_window_ != decision.hold->start) {
      woken_for_window_ = decision.hold->start;
      if (!wanted_awake) {
        result.wake = true;
        result.actor = "keep-warm";
        result.reason = "keep-warm window from " + format_rfc3339(wall(decision.hold->start));
      }
    }
  } else if (window_hold != nullptr) {
    result.release.push_back(HoldReason::kWindow);
  }

  if (!prewarm_) return result;
  const AwakeHold* prewarm_hold = find_hold(reconciler, HoldReason::kPrewarm);
  if (!prewarm_started_ && prewarm_hold != nullptr && prewarm_hold->until) {
    // A pre-warm under way when the daemon restarted (its hold was persisted): it is still
    // charged from its start, and that day is not pre-warmed twice.
    prewarm_started_ = std::chrono::floor<std::chrono::seconds>(prewarm_hold->since);
    prewarm_hold_until_ = std::chrono::floor<std::chrono::seconds>(*prewarm_hold->until);
    prewarmed_day_ = std::chrono::floor<std::chrono::days>(prewarm_->zone().to_local(*prewarm_started_));
  }
  if (prewarm_started_) {
    // The pre-warm ends at the first use (the reconciler drops the hold), at a sleep request, or
    // when its time is up; its cost is what it held, charged to the week's cap.
    const bool over = prewarm_hold == nullptr || now >= *prewarm_hold_until_;
    if (over) {
      const SysSeconds ended = std::min(now, *prewarm_hold_until_);
      result.prewarm_charged = std::max(std::chrono::seconds(0), ended - *prewarm_started_);
      budget_.charge(now, result.prewarm_charged);
      prewarm_started_.reset();
      if (prewarm_hold != nullptr) result.release.push_back(HoldReason::kPrewarm);
    }
  }
  const std::optional<PrewarmPlan> plan = prewarm_->plan(now, lead_time);
  if (plan && now >= plan->wake_at && prewarmed_day_ != plan->day) {
    prewarmed_day_ = plan->day;
    const std::chrono::seconds cost = plan->hold_until - now;
    if (!wanted_awake && !result.wake && budget_.allows(now, cost)) {
      result.wake = true;
      result.actor = "pre-warm";
      result.reason = "pre-warm: first use expected at " + format_rfc3339(wall(plan->expected_use));
      result.place.push_back(
          AwakeHold{HoldReason::kPrewarm, "pre-warm", result.reason, wall(now), wall(plan->hold_until)});
      prewarm_started_ = now;
      prewarm_hold_until_ = plan->hold_until;
    }
  }
  return result;
}

ScheduleView BackendSchedule::view(SysSeconds now, std::optional<double> wake_estimate_seconds) const {
  ScheduleView view;
  view.lead = lead(wake_estimate_seconds);
  const KeepWarmDecision decision = windows_.decide(now, view.lead);
  view.window_open = decision.open;
  view.next_window = decision.next;
  if (prewarm_) {
    view.next_prewarm = prewarm_->plan(now, view.lead);
    view.prewarm_used_this_week = budget_.used(now);
    view.prewarm_cap = prewarm_->settings().max_per_week;
  }
  return view;
}

}  // namespace unshelver::core
