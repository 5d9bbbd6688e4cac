#include "backend/operation_stats.h"

namespace unshelver::core {

std::string_view to_string(OperationStats::Kind kind) {
  return kind == OperationStats::Kind::kWake ? "wake" : "shelve";
}

std::optional<OperationStats::Kind> OperationStats::running() const {
  if (!running_) return std::nullopt;
  return running_->kind;
}

void OperationStats::finish(const std::string& outcome, MonoTime at) {
  if (!running_) return;
  ++outcomes_[{running_->kind, running_->actor, outcome}];
  if (running_->kind == Kind::kWake && outcome == "ready") {
    const std::chrono::duration<double> took = at - running_->started;
    wake_durations_.observe(std::max(0.0, took.count()));
  }
  running_.reset();
}

void OperationStats::observe(const Transition& transition) {
  using E = BackendEvent;
  switch (transition.event) {
    case E::kWakeRequested:
      if (running_ && running_->kind == Kind::kWake) return;  // one wake, however often it is asked for
      finish("cancelled", transition.mono_at);
      running_ = Running{Kind::kWake, transition.actor, transition.mono_at};
      return;
    case E::kSleepRequested:
      if (running_ && running_->kind == Kind::kShelve) return;
      finish("cancelled", transition.mono_at);
      running_ = Running{Kind::kShelve, transition.actor, transition.mono_at};
      return;
    case E::kHealthPassed:
      if (running_ && running_->kind == Kind::kWake) finish("ready", transition.mono_at);
      return;
    case E::kCloudStopped:
      if (running_ && running_->kind == Kind::kShelve) finish("asleep", transition.mono_at);
      return;
    case E::kFailed: finish("failed", transition.mono_at); return;
    case E::kCloudStarting:
    case E::kCloudRunning:
    case E::kCloudStopping:
    case E::kHealthLost: return;
  }
}

}  // namespace unshelver::core
