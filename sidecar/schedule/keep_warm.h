// BackendSchedule: one backend's keep-warm windows and pre-warming, applied to its reconciler.
//
// step() is called every half minute or so (by schedule/scheduler.h on the loop, by the
// simulation benchmark with a fake clock) and says what to do now:
// - windows: from the wake lead before a window opens until it closes, the backend is held awake
//   (an AwakeHold of reason window, up to the window's end) and woken once per opening, if it is
//   not wanted awake already. An admin's shelve during a window is not undone until the next
//   opening.
// - pre-warm: at the planned wake time of the day (schedule/prewarm.h), if the backend sleeps and
//   the week's cost cap leaves room for the whole hold, it is woken and held until its first use
//   or the plan's end; when that hold ends, its time is charged to the cap.
// The lead is the backend's measured wake duration (the median of its last wakes from the event
// log), else the configured default. Pure: the time and the reconciler are parameters.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "backend/reconciler.h"
#include "schedule/prewarm.h"
#include "schedule/windows.h"

namespace unshelver::core {

struct KeepWarmStep {
  bool wake = false;
  std::string actor;  // "keep-warm" or "pre-warm"
  std::string reason;
  std::vector<AwakeHold> place;             // hold_awake() each
  std::vector<HoldReason> release;          // release_hold() each
  std::chrono::seconds prewarm_charged{0};  // charged to the budget in this step
};

// What the pages show about a backend's schedule.
struct ScheduleView {
  std::optional<WindowSpan> window_open;
  std::optional<WindowSpan> next_window;
  std::optional<PrewarmPlan> next_prewarm;
  std::chrono::seconds lead{0};
  std::chrono::seconds prewarm_used_this_week{0};
  std::chrono::seconds prewarm_cap{0};
};

class BackendSchedule {
 public:
  BackendSchedule(KeepWarmSchedule windows, std::optional<PrewarmPlanner> prewarm,
                  std::chrono::seconds default_lead);

  // A use of the backend (see schedule/prewarm.h): learned by the pre-warm planner.
  void add_use(SysSeconds at);
  // What to do at `now`; `wake_estimate_seconds` from the event log (nullopt before any wake).
  KeepWarmStep step(SysSeconds now, const BackendReconciler& reconciler,
                    std::optional<double> wake_estimate_seconds);
  ScheduleView view(SysSeconds now, std::optional<double> wake_estimate_seconds) const;

  bool active() const { return !windows_.empty() || prewarm_.has_value(); }
  PrewarmBudget& budget() { return budget_; }

 private:
  std::chrono::seconds lead(std::optional<double> wake_estimate_seconds) const;

  KeepWarmSchedule windows_;
  std::optional<PrewarmPlanner> prewarm_;
  std::chrono::seconds default_lead_;
  PrewarmBudget budget_;
  std::optional<SysSeconds> woken_for_window_;  // the start of the opening last woken for
  std::optional<std::chrono::local_days> prewarmed_day_;
  std::optional<SysSeconds> prewarm_started_;  // while a pre-warm hold is under way
  std::optional<SysSeconds> prewarm_hold_until_;
};

}  // namespace unshelver::core
