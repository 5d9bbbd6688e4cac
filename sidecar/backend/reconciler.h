// BackendReconciler: the decision logic for one backend, with no I/O and an injected clock.
//
// It holds the *desired* state (awake or asleep, who asked and why) and what it last *observed*
// (the cloud's report, health probe results), and derives the BackendState through the state
// machine. It is level-triggered: the driver calls tick(now) on every timer and after every
// input, and tick answers with at most one command to carry out (single flight: no new command
// until the previous one has reported back). It never assumes that an action worked; after a
// wake or sleep is accepted it observes the cloud again until the cloud confirms.
//
// The driver (app/backend_driver) turns commands into provider calls and health probes and feeds
// the results back; this class decides everything else, so unit tests can walk every path with
// a fake clock.
//
// Every deadline (idle, unshelve, error retry, the next observation) is on the monotonic clock
// (base/clock.h): each input comes with a ClockReading, whose wall half is used only for what is
// persisted and recorded (the desired state's `since`, a transition's `at`). The views return
// monotonic times; the caller converts them to wall times for display.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "backend/state_machine.h"
#include "base/clock.h"
#include "config/config.h"

namespace unshelver::core {

// What a cloud provider reports about the VM.
struct CloudObservation {
  enum class Kind { kStopped, kStarting, kRunning, kStopping, kError };
  Kind kind = Kind::kStopped;
  std::string status;    // the cloud's own words, e.g. "SHELVED_OFFLOADED (unshelving)"
  std::string detail;    // for kError (or a failed wake): the cloud's message
  std::string upstream;  // host:port of the backend when known
  // For kStopped: false when the VM is off in another way than the configured sleep (SHUTOFF
  // where shelving is configured). It may still cost money, and when it is wanted awake it is
  // started rather than taken as someone's decision to stop it.
  bool settled_asleep = true;
};
std::string_view to_string(CloudObservation::Kind kind);

enum class Command { kObserve, kWake, kSleep };
std::string_view to_string(Command command);

// How the cloud answered a wake or sleep.
enum class ActionOutcome {
  kAccepted,  // the change is under way (or was already done): observe until the cloud confirms
  kBusy,      // someone else is acting on the VM (Nova's 409): observe again, then decide afresh
  kRefused,   // the cloud said no, for a reason that another try would not change
};

struct Desired {
  bool awake = false;
  std::string actor = "reconciler";  // public-button, control, idle-monitor, cloud, ...
  std::string reason;
  TimePoint since{};  // wall time, shown and persisted only
};

// Why a backend is held awake beyond its idle rule (schedule/ decides windows and pre-warms; an
// admin pins). One mechanism for all three: while a hold lasts, the idle rule does not shelve;
// once it ends, the idle rule applies as if the hold had never been (a backend unused for its
// idle timeout is shelved at the hold's end, else its idle timeout after the last use).
enum class HoldReason { kPin, kWindow, kPrewarm };
std::string_view to_string(HoldReason reason);

struct AwakeHold {
  HoldReason reason = HoldReason::kPin;
  std::string actor;   // who placed it: the admin for a pin, "keep-warm" or "pre-warm"
  std::string detail;  // shown beside it: "mon-fri 08:00-18:00 Europe/Zurich", "expected use 08:12"
  TimePoint since{};   // wall time, shown and persisted
  std::optional<TimePoint> until;  // wall time; nullopt: no end (a pin)
};

// A state change, for the log, the event trail and /api/status.
struct Transition {
  BackendState from;
  BackendState to;
  BackendEvent event;
  std::string actor;
  std::string detail;
  TimePoint at;        // wall time, for the event trail
  MonoTime mono_at{};  // the same moment on the monotonic clock, for durations
};

// Something worth recording that changes no state, for the log and the event trail: the
// record's `action` is one of events/record.h's notice names (shelve_failed,
// dry_run_would_shelve, dry_run_would_wake), with empty `from` and `to`.
struct Notice {
  std::string action;
  std::string actor;
  std::string detail;
  TimePoint at;  // wall time, for the event trail
};

// What survives a restart (written by the driver after every change). Times are wall times.
struct PersistedBackend {
  Desired desired;
  std::optional<TimePoint> last_activity;
  BackendState state = BackendState::kUnknown;
  std::vector<AwakeHold> holds;
};

// What a leader publishes of a backend for the controllers that follow it (ha/): what survives a
// restart, and what the pages, the gate and Caddy's routing need. Times are wall times.
struct BackendSnapshot {
  PersistedBackend persisted;
  TimePoint state_since{};
  std::string upstream;      // host:port the cloud reported, "" while unknown
  std::string cloud_status;  // the cloud's own words at the last observation, "" before one
  std::string last_error;
  int requests_in_flight = 0;
};

// Timing knobs, derived from the backend's configuration.
struct ReconcilerSettings {
  std::chrono::milliseconds poll_interval{10'000};            // observe while something changes
  std::chrono::milliseconds steady_observe_interval{60'000};  // observe while nothing should change
  // While something changes, the first observation after each change of state comes this soon,
  // each further one twice as late, up to poll_interval: a cloud that finishes within seconds is
  // seen within about a second, and one that takes minutes is asked no more often than before.
  std::chrono::milliseconds fast_poll_start{1000};
  // Health probes until the backend is ready (waking, booting), and once it is (ready, error).
  std::chrono::milliseconds probe_interval_until_ready{500};
  std::chrono::milliseconds probe_interval_ready{10'000};
  // The backend's upstream is configured, so it is known before the cloud reports an address.
  bool upstream_configured = false;
  std::chrono::seconds idle_timeout{3600};
  std::chrono::seconds unshelve_timeout{1800};
  ErrorPolicy on_error = ErrorPolicy::kWaitForAdmin;
  std::chrono::seconds error_retry_after{300};
  int health_successes_needed = 1;
  int health_failures_allowed = 3;
  // How long a running VM may take to pass its health checks (from entering `booting`).
  std::chrono::milliseconds boot_timeout{600'000};
  int stale_observations_allowed = 3;  // wake accepted but the VM still shows stopped
  // Never wake or sleep: record what would have been done instead (see take_notices()).
  bool dry_run = false;
  // From the backend's keys and the app section's intervals (app.poll_interval_seconds and
  // app.settled_poll_interval_seconds, whose default config/checks.cc derives).
  static ReconcilerSettings from_config(const BackendConfig& backend, const AppSettings& app);
};

class BackendReconciler {
 public:
  BackendReconciler(std::string name, ReconcilerSettings settings);

  // Restores what was persisted before a restart. Call before the first tick. A persisted wall
  // time counts by its age at `now`; one from the future counts as now.
  void restore(const PersistedBackend& persisted, const ClockReading& now);

  // Inputs.
  // Returns true when the desired state changed (a repeated wake while awake changes nothing).
  bool request(bool awake, std::string actor, std::string reason, const ClockReading& now);
  void on_observed(const CloudObservation& observation, const ClockReading& now);
  void on_observe_failed(const std::string& message, const ClockReading& now);
  void on_action_done(Command command, ActionOutcome outcome, const std::string& message,
                      const ClockReading& now);
  void on_health(bool passed, const std::string& detail, const ClockReading& now);
  // The same for a probe started in `generation` (health_generation() when it was started): a
  // result from an earlier phase is dropped. Returns whether it was taken.
  bool on_health_of(std::uint64_t generation, bool passed, const std::string& detail,
                    const ClockReading& now);
  void on_activity(MonoTime at);
  // Long requests to the backend still in flight (an LLM stream Caddy has not logged yet), and
  // the last moment one was seen busy. While count > 0 the idle clock is held; each report also
  // counts as activity at `last_busy_at`, so the deadline moves on with the stream and, once it
  // ends, runs from the moment the stream ended.
  void set_requests_in_flight(int count, std::optional<MonoTime> last_busy_at);

  // Awake holds (see HoldReason). A hold replaces the one of the same reason; a request to sleep
  // ends every hold (someone decided the backend should sleep). A pre-warm hold also ends at the
  // first activity after the backend became ready.
  void hold_awake(AwakeHold hold, const ClockReading& now);
  void release_hold(HoldReason reason);
  const std::vector<AwakeHold>& holds() const { return holds_; }
  // An admin's pin is among the holds.
  bool pinned() const;
  // Whether request(awake, ...) would change anything now: what request() returns, asked
  // beforehand (a controller that does not lead asks it of the leader's view, ha/).
  bool request_changes(bool awake) const { return desired_.awake != awake || state_ == BackendState::kError; }
  // The hold that keeps the backend awake at `now`: a pin, else the one that ends last; nullopt
  // when none lasts beyond `now`.
  std::optional<AwakeHold> active_hold(const ClockReading& now) const;

  // Decides. Returns the command to carry out now, if any, and marks it in flight.
  std::optional<Command> tick(const ClockReading& now);
  // When tick() next wants to run if nothing else happens (for the driver's timer).
  MonoTime next_tick_due(const ClockReading& now) const;
  // Whether the observation tick() issues now may be served from a view shared with other
  // backends (providers::ObserveMode::kSettled): nothing is expected to change, and the last
  // action did not meet another task (after_busy_), whose outcome is read afresh.
  bool observation_settled() const { return !change_expected() && !after_busy_; }

  // Outputs.
  std::vector<Transition> take_transitions();
  std::vector<Notice> take_notices();
  // Health is probed while the VM runs on the awake side, and also in `error` while the cloud
  // reports it running and it is wanted awake: a boot slower than its timeout, or a service that
  // came back, returns the backend to `ready` (where the idle rule can put it to sleep). It is
  // probed while a wake of ours is under way, once an address is known (configured, or the last
  // one the cloud reported): a service that answers is up, whatever the cloud still shows.
  bool wants_health_probe() const {
    return (state_ == BackendState::kWaking && desired_.awake &&
            (settings_.upstream_configured || !upstream_.empty())) ||
           state_ == BackendState::kBooting || state_ == BackendState::kReady ||
           (state_ == BackendState::kError && desired_.awake && vm_reported_running());
  }
  // How often to probe: fast until the backend is ready, since a visitor waits for that moment;
  // at the configured interval once it serves (or in `error`, where nobody is waiting for it).
  std::chrono::milliseconds health_probe_interval() const {
    return state_ == BackendState::kWaking || state_ == BackendState::kBooting
               ? settings_.probe_interval_until_ready
               : settings_.probe_interval_ready;
  }
  // Every change of the health probe's purpose (new wake, boot, ready) bumps this, so that a probe
  // result belonging to an earlier phase is discarded (on_health_of).
  std::uint64_t health_generation() const { return health_generation_; }

  // Views (times on the monotonic clock; ClockReading::wall_of shows them).
  const std::string& name() const { return name_; }
  BackendState state() const { return state_; }
  MonoTime state_since() const { return state_since_; }
  const Desired& desired() const { return desired_; }
  const std::optional<CloudObservation>& last_observation() const { return observation_; }
  std::optional<MonoTime> last_observed_at() const { return observed_at_; }
  std::optional<MonoTime> last_activity() const { return last_activity_; }
  // When the idle rule puts the backend to sleep: one idle timeout after its last use, or after
  // it was last woken when nothing used it since (idle_since()), while it is wanted awake and its
  // VM may run: booting, ready, or error while the cloud reports the VM running. nullopt
  // otherwise. A wake in progress (waking, or booting after a wake) is bounded by its own
  // timeouts instead; check_idle() waits for it to end, in `ready` or `error`.
  std::optional<MonoTime> idle_deadline() const;
  // The moment idleness counts from: the later of the last activity and the last wake.
  std::optional<MonoTime> idle_since() const;
  // The same two on the wall clock of `clock`, for display (see last_activity_wall_).
  std::optional<TimePoint> last_activity_wall(const ClockReading& clock) const;
  std::optional<TimePoint> idle_deadline_wall(const ClockReading& clock) const;
  const std::string& last_error() const { return last_error_; }
  // The last failure to reach the cloud (empty once an observation succeeds again).
  const std::string& observe_error() const { return observe_error_; }
  // Events that the state machine rejected: a bug in the reconciler or driver, counted and
  // reported by the driver rather than crashing a daemon that guards a costly VM.
  std::uint64_t illegal_events() const { return illegal_events_; }
  std::optional<Command> in_flight() const { return in_flight_; }
  const std::string& upstream() const { return upstream_; }
  int requests_in_flight() const { return requests_in_flight_; }
  // Wall times converted at the latest reading this reconciler was given.
  PersistedBackend persisted() const;
  BackendSnapshot snapshot() const;
  // Shows what another controller, the backend's leader, published (ha/): the state and everything
  // the views read are replaced, and no transition is recorded, since none happened here. A
  // reconciler that mirrors is never ticked; a controller that takes the lead starts a fresh one.
  void mirror(const BackendSnapshot& snapshot, const ClockReading& now);
  const ReconcilerSettings& settings() const { return settings_; }

 private:
  // request() with the detail that a dry run's would-notice records.
  bool wish(bool awake, std::string actor, std::string reason, std::string dry_run_detail,
            const ClockReading& now);
  void note_activity(MonoTime at);
  void apply(BackendEvent event, const std::string& actor, const std::string& detail,
             const ClockReading& now);
  void fail(const std::string& detail, const ClockReading& now);
  void note(const ClockReading& now);
  void check_deadlines(const ClockReading& now);
  void check_idle(const ClockReading& now);
  bool idle_rule_applies() const;
  bool wake_in_progress() const;
  bool vm_reported_running() const {
    return observation_ && observation_->kind == CloudObservation::Kind::kRunning;
  }
  bool vm_known_stopped() const {
    return observation_ && observation_->kind == CloudObservation::Kind::kStopped;
  }
  // The delay before a failed sleep is tried again: error_retry_after, doubling with each
  // failure in a row (at most 8 times as long).
  std::chrono::milliseconds sleep_retry_delay() const;
  void notice(std::string action, std::string actor, std::string detail, const ClockReading& now);
  bool observation_due(const ClockReading& now) const;
  std::chrono::milliseconds observe_interval() const;
  // A wake or sleep is under way, or the state is not known yet: the cloud is polled fast.
  bool change_expected() const;

  std::string name_;
  ReconcilerSettings settings_;
  ClockReading clock_;  // the latest reading given, for persisted()

  BackendState state_ = BackendState::kUnknown;
  MonoTime state_since_{};
  Desired desired_;
  std::optional<Command> in_flight_;

  std::optional<CloudObservation> observation_;
  std::optional<MonoTime> observed_at_;
  MonoTime next_observe_at_{};
  // Observations since the state last changed (or an action was answered), for the fast polls'
  // back-off (observe_interval()).
  int polls_since_change_ = 0;
  // Ready straight from waking: the service answered before the cloud reported the VM running.
  // Until the cloud does, its "starting" confirms the state and a "stopped" is a stale view, as
  // while waking, and the cloud is still polled as during a change.
  bool ahead_of_cloud_ = false;
  std::string observe_error_;
  int stale_observations_ = 0;
  // The last wake or sleep met another task (kBusy): the next observation is taken as the truth
  // rather than as a stale view of our own action, so the command is issued afresh if needed.
  bool after_busy_ = false;
  // The observation for which a sleep was last sent to settle a VM that is off the wrong way.
  std::optional<MonoTime> settle_sleep_sent_at_;
  BackendState restored_state_ = BackendState::kUnknown;
  std::string upstream_;

  // Wake bookkeeping: when the current wake began (for the unshelve timeout) and whether a
  // request arrived after the last error (which lifts a wait-for-admin error).
  std::optional<MonoTime> wake_started_;
  // When the VM was last woken (a wake of ours, a start seen outside, a dry run's would-wake; at
  // a restart the persisted desired state's `since`), or first seen awake with no activity on
  // record: idleness counts from here when nothing used the backend since.
  std::optional<MonoTime> awake_since_;
  // Sleeps that failed in a row (refused, or the VM still ran after it), for the back-off.
  int sleep_failures_ = 0;
  std::string last_health_detail_;
  std::uint64_t request_sequence_ = 0;
  std::uint64_t request_sequence_at_error_ = 0;
  MonoTime error_since_{};
  std::string last_error_;
  std::string error_cloud_status_;  // the cloud's status when the error was declared

  int health_successes_ = 0;
  int health_failures_ = 0;
  std::uint64_t health_generation_ = 0;

  std::optional<MonoTime> last_activity_;
  // The last activity on the wall clock as it read when the activity was recorded (or restored).
  // Converting back and forth between the clocks moves a time by the few nanoseconds between
  // two readings; this copy keeps what is persisted and shown exact across a restart, unless the
  // wall clock has since been set (then the conversion shows the activity on the new clock).
  std::optional<TimePoint> last_activity_wall_;
  int requests_in_flight_ = 0;

  std::vector<Transition> transitions_;
  std::vector<Notice> notices_;
  std::uint64_t illegal_events_ = 0;

  // Awake holds, with each end on the monotonic clock for the decisions (the wall time in the
  // hold is for display; the scheduler renews windows and pre-warms each minute, so a step of
  // the wall clock is followed within a minute).
  std::vector<AwakeHold> holds_;
  std::vector<std::optional<MonoTime>> hold_ends_;  // parallel to holds_
  bool held_at(MonoTime at) const;
  std::optional<MonoTime> latest_hold_end() const;
};

// Why a backend is awake, for /api/status and the control page: "admin-pin", "window",
// "pre-warm" while a hold lasts; else from who asked for the wake: "visitor" (the launcher's
// button), "api-request" (a request to a sleeping backend), "admin-wake" (the control page or
// API), "cloud" (started outside Unshelver or found running). "" while not awake.
std::string awake_reason(const BackendReconciler& reconciler, const ClockReading& now);

}  // namespace unshelver::core
