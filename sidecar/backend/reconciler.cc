#include "backend/reconciler.h"

#include <algorithm>

#include "base/backoff.h"
#include "base/time_format.h"

namespace unshelver::core {

namespace {
using S = BackendState;
using E = BackendEvent;
using Kind = CloudObservation::Kind;

// The first whole second of the monotonic clock at or after `at`.
MonoTime on_whole_second(MonoTime at) {
  return std::chrono::ceil<std::chrono::seconds>(at);
}

BackendEvent event_for(Kind kind) {
  switch (kind) {
    case Kind::kStopped: return E::kCloudStopped;
    case Kind::kStarting: return E::kCloudStarting;
    case Kind::kRunning: return E::kCloudRunning;
    case Kind::kStopping: return E::kCloudStopping;
    case Kind::kError: return E::kFailed;
  }
  return E::kFailed;
}

std::string seconds_text(std::chrono::seconds value) {
  return std::to_string(value.count()) + " s";
}

// "600 s", "0.5 s": a configured duration as written, to the millisecond.
std::string seconds_text(std::chrono::milliseconds value) {
  const long long millis = std::max<long long>(value.count(), 0);
  std::string text = std::to_string(millis / 1000);
  if (millis % 1000 != 0) {
    std::string fraction = std::to_string(1000 + millis % 1000).substr(1);  // three digits
    while (fraction.back() == '0') fraction.pop_back();
    text += "." + fraction;
  }
  return text + " s";
}
}  // namespace

std::string_view to_string(CloudObservation::Kind kind) {
  switch (kind) {
    case Kind::kStopped: return "stopped";
    case Kind::kStarting: return "starting";
    case Kind::kRunning: return "running";
    case Kind::kStopping: return "stopping";
    case Kind::kError: return "error";
  }
  return "unknown";
}

std::string_view to_string(Command command) {
  switch (command) {
    case Command::kObserve: return "observe";
    case Command::kWake: return "wake";
    case Command::kSleep: return "sleep";
  }
  return "unknown";
}

std::string_view to_string(HoldReason reason) {
  switch (reason) {
    case HoldReason::kPin: return "admin-pin";
    case HoldReason::kWindow: return "window";
    case HoldReason::kPrewarm: return "pre-warm";
  }
  return "unknown";
}

ReconcilerSettings ReconcilerSettings::from_config(const BackendConfig& backend, const AppSettings& app) {
  ReconcilerSettings settings;
  settings.poll_interval = std::max(app.poll_interval, std::chrono::milliseconds(50));
  // While nothing should change, the cloud is still asked now and then so that an action taken
  // outside Unshelver (a shelve in Horizon, a crash) is noticed.
  settings.steady_observe_interval = app.settled_poll_interval;
  settings.idle_timeout = backend.idle_timeout;
  settings.unshelve_timeout = backend.unshelve_timeout;
  settings.on_error = backend.on_error;
  settings.error_retry_after = backend.error_retry_after;
  settings.health_successes_needed = std::max(1, backend.health.successes_needed);
  settings.health_failures_allowed = std::max(1, backend.health.failures_allowed);
  // The fast phase never polls faster than once a second (the cloud API is shared with every
  // other client of the project), nor slower than the configured interval.
  settings.fast_poll_start = std::min(settings.poll_interval, std::chrono::milliseconds(1000));
  // Until ready a visitor waits for the first passing probe: twice a second costs the backend
  // nothing worth naming. A configured interval that is shorter still wins.
  settings.probe_interval_ready = std::max(backend.health.interval, std::chrono::milliseconds(1));
  settings.probe_interval_until_ready =
      std::min(settings.probe_interval_ready, std::chrono::milliseconds(500));
  settings.upstream_configured = !backend.upstream.empty();
  settings.boot_timeout = std::max(backend.boot_timeout, std::chrono::milliseconds(1));
  settings.dry_run = backend.dry_run;
  return settings;
}

BackendReconciler::BackendReconciler(std::string name, ReconcilerSettings settings)
    : name_(std::move(name)), settings_(settings) {}

void BackendReconciler::restore(const PersistedBackend& persisted, const ClockReading& now) {
  note(now);
  desired_ = persisted.desired;
  // The wall clock may have moved while Unshelver was down: a persisted time counts by its age,
  // and one from the future (the clock was set back) as now, so that it cannot postpone the idle
  // deadline by the size of the jump.
  last_activity_.reset();
  last_activity_wall_.reset();
  if (persisted.last_activity) {
    last_activity_wall_ = std::min(*persisted.last_activity, now.wall);
    last_activity_ = now.mono_of(*last_activity_wall_);
  }
  restored_state_ = persisted.state;
  holds_.clear();
  hold_ends_.clear();
  for (const AwakeHold& hold : persisted.holds) hold_awake(hold, now);
  if (desired_.since == TimePoint{} || desired_.since > now.wall) desired_.since = now.wall;
  // A wake before the restart that nothing used since still counts idle from the wake.
  if (desired_.awake) awake_since_ = now.mono_of(desired_.since);
  state_since_ = now.mono;
}

void BackendReconciler::note(const ClockReading& now) {
  if (now.mono >= clock_.mono) clock_ = now;
}

bool BackendReconciler::request(bool awake, std::string actor, std::string reason, const ClockReading& now) {
  std::string detail = reason;
  return wish(awake, std::move(actor), std::move(reason), std::move(detail), now);
}

bool BackendReconciler::wish(bool awake, std::string actor, std::string reason, std::string dry_run_detail,
                             const ClockReading& now) {
  note(now);
  ++request_sequence_;
  // Before the first observation, a desired state restored from before a restart yields to what
  // the cloud shows (on_observed), unless an action of ours was under way. A request made now is
  // someone's decision, not a leftover, so it stands like an action under way: a wake asked for
  // in the moment after start-up (or after a controller took the lead) is not forgotten.
  if (state_ == S::kUnknown) restored_state_ = awake ? S::kWaking : S::kSleeping;
  if (desired_.awake == awake) {
    // Nothing new is wanted, but a fresh request lifts an error that waits for someone to act;
    // the retry is a new wake, whose time the waiting page counts from.
    if (state_ == S::kError && awake) desired_.since = now.wall;
    return request_changes(awake);
  }
  // A dry run never acts, so its desired state is what the backend would be: a change of it is
  // the moment the VM would have been shelved or woken (once the cloud's state is known).
  if (settings_.dry_run && state_ != S::kUnknown) {
    notice(awake ? "dry_run_would_wake" : "dry_run_would_shelve", actor, std::move(dry_run_detail), now);
    if (awake) awake_since_ = now.mono;
  }
  desired_ = Desired{awake, std::move(actor), std::move(reason), now.wall};
  if (!awake) {
    holds_.clear();
    hold_ends_.clear();
  }
  return true;
}

void BackendReconciler::hold_awake(AwakeHold hold, const ClockReading& now) {
  note(now);
  release_hold(hold.reason);
  if (hold.since == TimePoint{}) hold.since = now.wall;
  std::optional<MonoTime> end;
  // The end is in the future, which ClockReading::mono_of does not convert (it counts ages).
  if (hold.until) end = now.mono + std::chrono::duration_cast<MonoTime::duration>(*hold.until - now.wall);
  holds_.push_back(std::move(hold));
  hold_ends_.push_back(end);
}

bool BackendReconciler::pinned() const {
  return std::any_of(holds_.begin(), holds_.end(),
                     [](const AwakeHold& hold) { return hold.reason == HoldReason::kPin; });
}

void BackendReconciler::release_hold(HoldReason reason) {
  for (std::size_t i = holds_.size(); i-- > 0;) {
    if (holds_[i].reason != reason) continue;
    holds_.erase(holds_.begin() + static_cast<std::ptrdiff_t>(i));
    hold_ends_.erase(hold_ends_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

bool BackendReconciler::held_at(MonoTime at) const {
  return std::any_of(hold_ends_.begin(), hold_ends_.end(),
                     [&](const std::optional<MonoTime>& end) { return !end || *end > at; });
}

std::optional<MonoTime> BackendReconciler::latest_hold_end() const {
  std::optional<MonoTime> latest;
  for (const std::optional<MonoTime>& end : hold_ends_) {
    if (end && (!latest || *end > *latest)) latest = end;
  }
  return latest;
}

std::optional<AwakeHold> BackendReconciler::active_hold(const ClockReading& now) const {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < holds_.size(); ++i) {
    const std::optional<MonoTime>& end = hold_ends_[i];
    if (end && *end <= now.mono) continue;
    if (!best || !end || (hold_ends_[*best] && *end > *hold_ends_[*best])) best = i;
    if (!end) break;
  }
  if (!best) return std::nullopt;
  return holds_[*best];
}

std::string awake_reason(const BackendReconciler& reconciler, const ClockReading& now) {
  const BackendState state = reconciler.state();
  const bool awake_side = state == BackendState::kWaking || state == BackendState::kBooting ||
                          state == BackendState::kReady || state == BackendState::kError;
  if (!reconciler.desired().awake || !awake_side) return "";
  if (auto hold = reconciler.active_hold(now)) return std::string(to_string(hold->reason));
  const std::string& actor = reconciler.desired().actor;
  if (actor == "public-button") return "visitor";
  if (actor == "wake-on-request") return "api-request";
  if (actor == "keep-warm") return "window";
  if (actor == "pre-warm") return "pre-warm";
  if (actor == "cloud" || actor == "reconciler") return "cloud";
  return "admin-wake";
}

void BackendReconciler::on_activity(MonoTime at) {
  // The first use after a pre-warmed backend became ready ends the pre-warm: from then on the
  // idle rule counts from the use. (apply() records the moment of becoming ready as activity;
  // that one is not a use.)
  if (state_ == S::kReady && at > state_since_) release_hold(HoldReason::kPrewarm);
  note_activity(at);
  // In a dry run whose backend would be asleep, a use of the running VM is a visitor who would
  // have had to wake it.
  if (settings_.dry_run && !desired_.awake && state_ != S::kUnknown && at > clock_.mono_of(desired_.since)) {
    wish(true, "visitor", "activity while asleep", "activity on the backend while a dry run had it asleep",
         clock_);
  }
}

void BackendReconciler::note_activity(MonoTime at) {
  if (!last_activity_ || at > *last_activity_) {
    last_activity_ = at;
    last_activity_wall_ = clock_.wall_of(at);
  }
}

void BackendReconciler::notice(std::string action, std::string actor, std::string detail,
                               const ClockReading& now) {
  notices_.push_back(Notice{std::move(action), std::move(actor), std::move(detail), now.wall});
}

std::optional<TimePoint> BackendReconciler::last_activity_wall(const ClockReading& clock) const {
  if (!last_activity_) return std::nullopt;
  // Within this slack the clocks only drifted between readings; beyond it the wall clock was set.
  constexpr std::chrono::seconds kSlack{1};
  const TimePoint converted = clock.wall_of(*last_activity_);
  if (last_activity_wall_ && converted - *last_activity_wall_ <= kSlack &&
      *last_activity_wall_ - converted <= kSlack) {
    return last_activity_wall_;
  }
  return converted;
}

std::optional<TimePoint> BackendReconciler::idle_deadline_wall(const ClockReading& clock) const {
  const std::optional<MonoTime> deadline = idle_deadline();
  if (!deadline) return std::nullopt;
  // Counted from the last activity: shown from its exact wall time (see last_activity_wall_).
  if (last_activity_ && *deadline == *last_activity_ + settings_.idle_timeout)
    return *last_activity_wall(clock) + settings_.idle_timeout;
  return clock.wall_of(*deadline);
}

void BackendReconciler::set_requests_in_flight(int count, std::optional<MonoTime> last_busy_at) {
  if ((count > 0 || requests_in_flight_ > 0) && last_busy_at) on_activity(*last_busy_at);
  requests_in_flight_ = std::max(0, count);
}

void BackendReconciler::apply(BackendEvent event, const std::string& actor, const std::string& detail,
                              const ClockReading& now) {
  std::optional<BackendState> next = transition(state_, event);
  if (!next) {
    ++illegal_events_;
    return;
  }
  if (*next == state_) return;  // a confirmation, not a change

  transitions_.push_back(Transition{state_, *next, event, actor, detail, now.wall, now.mono});
  // Ready before the cloud said the VM runs: only a passing probe while waking leads there.
  ahead_of_cloud_ = state_ == S::kWaking && *next == S::kReady;
  state_ = *next;
  state_since_ = now.mono;
  stale_observations_ = 0;
  polls_since_change_ = 0;
  // A state that expects the cloud to move (a service that stopped answering sends `ready` back
  // to `booting`) is looked at within the first fast poll, not at the steady observation that
  // was due from the state before.
  if (observed_at_) next_observe_at_ = std::min(next_observe_at_, now.mono + observe_interval());

  switch (state_) {
    case S::kWaking:
      if (!wake_started_) wake_started_ = now.mono;
      // Probes begin now (wants_health_probe): none from an earlier phase may count.
      ++health_generation_;
      health_successes_ = 0;
      health_failures_ = 0;
      break;
    case S::kBooting:
      ++health_generation_;
      health_successes_ = 0;
      health_failures_ = 0;
      last_health_detail_.clear();
      break;
    case S::kReady:
      ++health_generation_;
      health_successes_ = 0;
      health_failures_ = 0;
      // The idle clock starts when the backend becomes ready after a wake, so a fresh wake is not
      // shelved at once. A VM found running after a restart keeps its persisted last activity, so
      // a restart of Unshelver grants no fresh idle window.
      if (wake_started_ || !last_activity_) note_activity(now.mono);
      wake_started_.reset();
      last_error_.clear();
      break;
    case S::kAsleep:
      wake_started_.reset();
      last_error_.clear();
      sleep_failures_ = 0;
      break;
    case S::kSleeping: wake_started_.reset(); break;
    case S::kError:
      // Health is still probed while the VM runs (wants_health_probe): passes count afresh.
      health_successes_ = 0;
      break;
    case S::kUnknown: break;
  }
  // Whatever way the VM came to run, its idleness counts from somewhere: a VM found running with
  // no activity on record counts from now, so there is no path with no idle deadline.
  if ((is_awake_side(state_) || state_ == S::kError) && !last_activity_ && !awake_since_)
    awake_since_ = now.mono;
}

void BackendReconciler::fail(const std::string& detail, const ClockReading& now) {
  // A sleep that failed while the VM runs leaves it running with no way to shelve it: recorded
  // for the alerts, and tried again after a back-off.
  if (state_ == S::kSleeping && !vm_known_stopped()) {
    ++sleep_failures_;
    notice("shelve_failed", "reconciler",
           detail + "; the VM still runs; next try in " +
               seconds_text(std::chrono::duration_cast<std::chrono::seconds>(sleep_retry_delay())),
           now);
  }
  last_error_ = detail;
  error_since_ = now.mono;
  error_cloud_status_ = observation_ ? observation_->status : "";
  request_sequence_at_error_ = request_sequence_;
  apply(E::kFailed, "reconciler", detail, now);
  wake_started_.reset();
}

void BackendReconciler::on_action_done(Command command, ActionOutcome outcome, const std::string& message,
                                       const ClockReading& now) {
  note(now);
  if (in_flight_ == command) in_flight_.reset();
  if (outcome == ActionOutcome::kRefused) {
    fail(std::string(to_string(command)) + " failed: " + message, now);
    return;
  }
  after_busy_ = outcome == ActionOutcome::kBusy;
  // The cloud records an accepted action at once (Nova sets task_state before it answers 202),
  // so observing right away shows progress without waiting a poll interval; the fast polls that
  // follow start afresh.
  next_observe_at_ = now.mono;
  polls_since_change_ = 0;
}

void BackendReconciler::on_observe_failed(const std::string& message, const ClockReading& now) {
  note(now);
  if (in_flight_ == Command::kObserve) in_flight_.reset();
  observe_error_ = message;
  next_observe_at_ = now.mono + settings_.poll_interval;
}

void BackendReconciler::on_observed(const CloudObservation& observation, const ClockReading& now) {
  note(now);
  if (in_flight_ == Command::kObserve) in_flight_.reset();
  observation_ = observation;
  observed_at_ = now.mono;
  observe_error_.clear();
  if (!observation.upstream.empty()) upstream_ = observation.upstream;
  if (observation.kind == Kind::kRunning) ahead_of_cloud_ = false;
  const BackendEvent event = event_for(observation.kind);
  // Built only when a transition or an error records it: most observations confirm what is known.
  auto what = [&observation] {
    return "cloud reports " + std::string(to_string(observation.kind)) +
           (observation.status.empty() ? "" : " (" + observation.status + ")");
  };

  if (state_ == S::kUnknown) {
    // First observation after start-up: the cloud's truth sets the state. The persisted desired
    // state is resumed only when an action of ours was under way when Unshelver stopped;
    // otherwise what the cloud shows is taken as what someone wants.
    const bool running = observation.kind == Kind::kRunning || observation.kind == Kind::kStarting;
    const bool stopped = observation.kind == Kind::kStopped || observation.kind == Kind::kStopping;
    // A dry run keeps what it persisted: its desired state is what the VM would be.
    const bool dry_run_resumes = settings_.dry_run && restored_state_ != S::kUnknown;
    if (running && !desired_.awake && restored_state_ != S::kSleeping && !dry_run_resumes) {
      desired_ = Desired{true, "reconciler", "found running at start", now.wall};
    } else if (stopped && desired_.awake && restored_state_ != S::kWaking && observation.settled_asleep) {
      desired_ = Desired{false, "reconciler", "found stopped at start", now.wall};
    }
    if (observation.kind == Kind::kError) {
      fail(observation.detail.empty() ? what() : observation.detail, now);
    } else {
      apply(event, "reconciler", "observed at start: " + what(), now);
    }
  } else if (state_ == S::kError && !error_cloud_status_.empty() &&
             observation.status == error_cloud_status_) {
    // The cloud still shows what it showed when the error was declared (an unshelve stuck in the
    // same task, a VM running while its health fails): the error stands until the cloud moves on
    // or someone acts, rather than flapping back to waking for another full timeout.
  } else if (observation.kind == Kind::kError) {
    fail(observation.detail.empty() ? what() : observation.detail, now);
  } else if (after_busy_) {
    // Our last action met someone else's task: what the cloud shows now is the truth, and tick()
    // issues the command again if the VM is not where it is wanted.
    apply(event, "reconciler", what(), now);
  } else if ((state_ == S::kWaking || (ahead_of_cloud_ && observation.settled_asleep)) &&
             observation.kind == Kind::kStopped) {
    // The wake was accepted but the VM shows stopped: either the cloud has not begun yet, or the
    // wake failed without an error status (Nova's "No valid host" leaves the server shelved with
    // no task). A provider that knows the reason says so in `detail`. (The same when the service
    // already answered and the cloud still shows the sleep it woke from: it has not caught up
    // yet, or the wake failed after all. A stop other than that sleep, after the service
    // answered, means the VM ran and went off between two polls: the branch below starts it.)
    if (!observation.detail.empty()) {
      fail(observation.detail, now);
    } else if (++stale_observations_ >= settings_.stale_observations_allowed) {
      fail("the cloud still reports the VM stopped (" + observation.status + ") after the wake request", now);
    }
  } else if (state_ == S::kSleeping && observation.kind == Kind::kRunning) {
    if (++stale_observations_ >= settings_.stale_observations_allowed) {
      fail("the cloud still reports the VM running (" + observation.status + ") after the sleep request",
           now);
    }
  } else {
    const bool was_awake_side = state_ == S::kBooting || state_ == S::kReady;
    // A VM that went off another way than our sleep (a shutdown inside the guest leaves a shelving
    // cloud's server SHUTOFF with no task) is started again while it is wanted awake.
    const bool now_stopping =
        event == E::kCloudStopping || (event == E::kCloudStopped && observation.settled_asleep);
    const bool now_starting = event == E::kCloudStarting || event == E::kCloudRunning;
    // Someone acted on the VM outside Unshelver: follow them rather than undo their action.
    if (was_awake_side && now_stopping && desired_.awake) {
      desired_ = Desired{false, "cloud", "stopped outside Unshelver", now.wall};
    } else if ((state_ == S::kAsleep || state_ == S::kError) && now_starting && !desired_.awake) {
      desired_ = Desired{true, "cloud", "started outside Unshelver", now.wall};
      awake_since_ = now.mono;
    }
    // A confirmation (the state the cloud shows is ours already) records nothing.
    if (const std::optional<BackendState> next = transition(state_, event); !next || *next != state_) {
      apply(event, "reconciler", what(), now);
    }
  }
  after_busy_ = false;
  next_observe_at_ = now.mono + observe_interval();
  // Settled observations fall due on whole seconds of the monotonic clock, so that backends whose
  // observations fall due within the same second share one wake-up of the loop (and, where the
  // provider lists its VMs, one listing) instead of one each (issue 20: coalesce timers). Polls
  // during a change keep their exact back-off.
  if (!change_expected()) next_observe_at_ = on_whole_second(next_observe_at_);
  ++polls_since_change_;
}

bool BackendReconciler::on_health_of(std::uint64_t generation, bool passed, const std::string& detail,
                                     const ClockReading& now) {
  if (generation != health_generation_) return false;
  on_health(passed, detail, now);
  return true;
}

void BackendReconciler::on_health(bool passed, const std::string& detail, const ClockReading& now) {
  note(now);
  if (state_ == S::kWaking && wants_health_probe()) {
    // The service answers before the cloud reports the VM running: it is up, and visitors may be
    // sent on. A failure says nothing here (the VM is still starting); the cloud and the unshelve
    // timeout decide how the wake goes until the service answers.
    if (!passed) {
      health_successes_ = 0;
    } else if (++health_successes_ >= settings_.health_successes_needed) {
      apply(E::kHealthPassed, "reconciler",
            "health check passed before the cloud reported the VM running" +
                (observation_ && !observation_->status.empty() ? " (cloud: " + observation_->status + ")"
                                                               : std::string()),
            now);
    }
  } else if (state_ == S::kBooting) {
    // Failures only say why; the boot timeout (check_deadlines) decides when booting has failed.
    if (passed) {
      health_failures_ = 0;
      if (++health_successes_ >= settings_.health_successes_needed) {
        apply(E::kHealthPassed, "reconciler", "health check passed", now);
      }
    } else {
      health_successes_ = 0;
      ++health_failures_;
      last_health_detail_ = detail;
    }
  } else if (state_ == S::kError && wants_health_probe()) {
    if (!passed) {
      health_successes_ = 0;
    } else if (++health_successes_ >= settings_.health_successes_needed) {
      apply(E::kHealthPassed, "reconciler", "health check passed while the VM runs", now);
    }
  } else if (state_ == S::kReady) {
    if (passed) {
      health_failures_ = 0;
    } else if (++health_failures_ >= settings_.health_failures_allowed) {
      apply(E::kHealthLost, "reconciler", "health check failed: " + detail, now);
    }
  }
  // In any other state the result belongs to a phase that has ended; it is dropped.
}

void BackendReconciler::check_deadlines(const ClockReading& now) {
  if ((state_ == S::kWaking || state_ == S::kBooting) && wake_started_ &&
      now.mono - *wake_started_ >= settings_.unshelve_timeout) {
    fail("not ready within " + seconds_text(settings_.unshelve_timeout) + " of the wake request", now);
  } else if (state_ == S::kBooting && now.mono - state_since_ >= settings_.boot_timeout) {
    fail("health check did not pass within " + seconds_text(settings_.boot_timeout) + " of the VM running" +
             (last_health_detail_.empty() ? "" : ": " + last_health_detail_),
         now);
  }
}

void BackendReconciler::check_idle(const ClockReading& now) {
  // An awake hold (admin pin, keep-warm window, pre-warm) outranks the idle rule while it lasts.
  if (held_at(now.mono)) return;
  const std::optional<MonoTime> deadline = idle_deadline();
  if (!deadline || wake_in_progress() || requests_in_flight_ > 0 || now.mono < *deadline) return;
  const std::string reason = "no activity for " + seconds_text(settings_.idle_timeout);
  wish(false, "idle-monitor", reason,
       reason + " (idle since " + format_rfc3339(now.wall_of(*idle_since())) + ")", now);
}

bool BackendReconciler::wake_in_progress() const {
  return wake_started_ && (state_ == S::kWaking || state_ == S::kBooting);
}

bool BackendReconciler::idle_rule_applies() const {
  if (!desired_.awake) return false;
  switch (state_) {
    case S::kBooting:
    case S::kReady: return true;
    // An error with the VM running (a boot slower than its timeout, health lost for good) must
    // not keep it running forever: the idle rule still puts it to sleep. (One stuck in a cloud
    // task, an unshelve that never ends, is left to the cloud and the admin: a sleep would only
    // meet the task.)
    case S::kError: return vm_reported_running();
    default: return false;
  }
}

std::optional<MonoTime> BackendReconciler::idle_since() const {
  if (last_activity_ && awake_since_) return std::max(*last_activity_, *awake_since_);
  return last_activity_ ? last_activity_ : awake_since_;
}

std::optional<MonoTime> BackendReconciler::idle_deadline() const {
  // A pin holds the backend with no end; a window or pre-warm until its end, after which the
  // idle rule's deadline applies (it may have passed: then the backend is shelved at the end).
  const bool pinned = std::any_of(hold_ends_.begin(), hold_ends_.end(),
                                  [](const std::optional<MonoTime>& end) { return !end; });
  if (pinned) return std::nullopt;
  if (!idle_rule_applies()) return std::nullopt;
  const std::optional<MonoTime> since = idle_since();
  if (!since) return std::nullopt;
  return std::max(*since + settings_.idle_timeout, latest_hold_end().value_or(MonoTime{}));
}

std::chrono::milliseconds BackendReconciler::sleep_retry_delay() const {
  const auto base = std::chrono::duration_cast<std::chrono::milliseconds>(settings_.error_retry_after);
  return backoff_delay(BackoffPolicy{base, base * 8, 0.0}, sleep_failures_, 0.0);
}

bool BackendReconciler::change_expected() const {
  return state_ == S::kWaking || state_ == S::kBooting || state_ == S::kSleeping || state_ == S::kUnknown ||
         (state_ == S::kReady && ahead_of_cloud_);
}

std::chrono::milliseconds BackendReconciler::observe_interval() const {
  if (!change_expected()) return settings_.steady_observe_interval;
  // While something changes: fast_poll_start, then twice as long after each observation, up to
  // the configured poll interval (plain doubling, no jitter: one backend's polls never stampede).
  return backoff_delay(BackoffPolicy{settings_.fast_poll_start, settings_.poll_interval, 0.0},
                       polls_since_change_ + 1, 0.0);
}

bool BackendReconciler::observation_due(const ClockReading& now) const {
  return !observed_at_ || now.mono >= next_observe_at_;
}

std::optional<Command> BackendReconciler::tick(const ClockReading& now) {
  note(now);
  check_deadlines(now);
  check_idle(now);
  if (in_flight_) return std::nullopt;

  auto issue = [&](Command command) -> std::optional<Command> {
    in_flight_ = command;
    return command;
  };

  if (state_ == S::kUnknown) return issue(Command::kObserve);

  const bool fresh_request = request_sequence_ > request_sequence_at_error_;
  // A dry run decides as usual but never acts: wish() recorded what it would have done.
  if (settings_.dry_run) {
    if (observation_due(now)) return issue(Command::kObserve);
    return std::nullopt;
  }
  if (desired_.awake) {
    const bool retry_due = now.mono >= error_since_ + settings_.error_retry_after;
    if (state_ == S::kAsleep ||
        (state_ == S::kError &&
         (fresh_request || (settings_.on_error == ErrorPolicy::kRetry && retry_due)))) {
      apply(E::kWakeRequested, desired_.actor, desired_.reason, now);
      wake_started_ = now.mono;
      awake_since_ = now.mono;
      return issue(Command::kWake);
    }
  } else {
    const bool stopped = vm_known_stopped();
    // Asked only in `error`: the back-off is a power, and most ticks are of a sleeping backend.
    auto retry_due = [&] { return now.mono >= error_since_ + sleep_retry_delay(); };
    if (state_ == S::kBooting || state_ == S::kReady ||
        (state_ == S::kError && (fresh_request || (!stopped && retry_due())))) {
      apply(E::kSleepRequested, desired_.actor, desired_.reason, now);
      return issue(Command::kSleep);
    }
    // Off, but not in the configured sleep (SHUTOFF where shelving is configured): on most
    // clouds such a VM still holds its host and costs money, so it is put to sleep properly. The
    // state stays `asleep`; the observations that follow show the cloud's progress.
    // Only once per observation: the next one shows whether the cloud took it up.
    if (state_ == S::kAsleep && stopped && !observation_->settled_asleep && !after_busy_ &&
        (!settle_sleep_sent_at_ || *settle_sleep_sent_at_ < *observed_at_)) {
      settle_sleep_sent_at_ = *observed_at_;
      return issue(Command::kSleep);
    }
  }
  if (observation_due(now)) return issue(Command::kObserve);
  return std::nullopt;
}

MonoTime BackendReconciler::next_tick_due(const ClockReading& now) const {
  // While a command is in flight no observation can be issued (single flight), and its answer
  // runs the driver at once: only the other deadlines need a timer meanwhile.
  MonoTime due = in_flight_ ? MonoTime::max() : observed_at_ ? next_observe_at_ : now.mono;
  auto consider = [&](MonoTime at) { due = std::min(due, at); };
  if (auto deadline = idle_deadline()) consider(*deadline);
  if (wake_started_) consider(*wake_started_ + settings_.unshelve_timeout);
  if (state_ == S::kBooting) consider(state_since_ + settings_.boot_timeout);
  if (state_ == S::kError) {
    consider(error_since_ + (desired_.awake ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  settings_.error_retry_after)
                                            : sleep_retry_delay()));
  }
  return std::max(due, now.mono);
}

std::vector<Transition> BackendReconciler::take_transitions() {
  std::vector<Transition> taken;
  taken.swap(transitions_);
  return taken;
}

std::vector<Notice> BackendReconciler::take_notices() {
  std::vector<Notice> taken;
  taken.swap(notices_);
  return taken;
}

PersistedBackend BackendReconciler::persisted() const {
  return PersistedBackend{desired_, last_activity_wall(clock_), state_, holds_};
}

BackendSnapshot BackendReconciler::snapshot() const {
  BackendSnapshot snapshot;
  snapshot.persisted = persisted();
  snapshot.state_since = clock_.wall_of(state_since_);
  snapshot.upstream = upstream_;
  snapshot.cloud_status = observation_ ? observation_->status : "";
  snapshot.last_error = last_error_;
  snapshot.requests_in_flight = requests_in_flight_;
  return snapshot;
}

void BackendReconciler::mirror(const BackendSnapshot& snapshot, const ClockReading& now) {
  restore(snapshot.persisted, now);
  state_ = snapshot.persisted.state;
  state_since_ = now.mono_of(std::min(snapshot.state_since, now.wall));
  upstream_ = snapshot.upstream;
  last_error_ = snapshot.last_error;
  requests_in_flight_ = snapshot.requests_in_flight;
  if (snapshot.cloud_status.empty()) {
    observation_.reset();
  } else {
    CloudObservation shown;
    shown.kind = is_awake_side(state_) ? CloudObservation::Kind::kRunning : CloudObservation::Kind::kStopped;
    shown.status = snapshot.cloud_status;
    observation_ = std::move(shown);
  }
  in_flight_.reset();
}

}  // namespace unshelver::core
