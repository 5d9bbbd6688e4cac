// BackendDriver: runs one backend's reconciler on the loop.
//
// It carries out the reconciler's commands through the cloud provider, keeps the health prober
// running while the reconciler wants probes, feeds every result back, logs every transition
// (spdlog, with the backend's name), and tells its owner after each change so that the state is
// persisted and the pages are refreshed. The decisions themselves are all in core::BackendReconciler.
//
// Every input reaches the reconciler with one reading of both clocks (base/clock.h), taken from
// the clock given at construction: the real clocks in the daemon, a clock with a moved wall half
// in tests.
#pragma once

#include <spdlog/logger.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backend/cloud_provider.h"
#include "backend/health_prober.h"
#include "backend/reconciler.h"
#include "config/config.h"
#include "uv/http_client.h"
#include "uv/tick_timers.h"

namespace unshelver::app {

// Where a driver's right to act on the cloud comes from when several controllers share the work
// (ha/coordinator.h). Without one, the driver acts alone, as a single instance always does.
class ActionFence {
 public:
  virtual ~ActionFence() = default;
  // Called before every wake or sleep is sent. `done` gets success once this controller has shown
  // that it still leads `backend` and has recorded the backend's snapshot (which already shows the
  // action under way) where the next leader will read it; an error otherwise, and nothing is sent.
  // `done` runs on the loop, never inside the call.
  virtual void authorize(const std::string& backend, std::function<void(Status)> done) = 0;
  // Whether this controller may still decide for `backend` at all right now (it leads it and its
  // lease still holds). Asked before every decision, so that a controller that was frozen past its
  // lease decides nothing when it resumes: a decision is recorded as an event before the action
  // is authorized, and one that can never be carried out must not reach the audit trail.
  virtual bool may_decide(const std::string& backend) = 0;
  // Asked before a wake or sleep is decided (and so recorded as an event): `done` gets success
  // once etcd has confirmed, just now, that this controller leads `backend`. A decision taken
  // while etcd is out of reach could not be carried out, and would stand in the audit trail beside
  // the one the next leader takes. `done` runs on the loop, never inside the call.
  virtual void confirm(const std::string& backend, std::function<void(Status)> done) = 0;
};

class BackendDriver {
 public:
  // How far a change reaches, so that the owner does only the work it needs (issue 20: a
  // thousand sleeping backends each confirm their state once a minute).
  enum class Change {
    // Only what the pages show moved: an observation or probe that confirmed what was known (its
    // time, the cloud's words, an error's text), or a command now in flight. Nothing acts on it.
    kSeen,
    // What others act on moved without anything to persist: the address, whether health is
    // probed (and so whether requests in flight are sampled), another controller's view.
    kVisible,
    // What must survive a restart changed too: a transition, a notice or a new desired state.
    kPersist,
  };
  // Called after anything visible changed. `notices` are events that change no state
  // (core::Notice), to be recorded like transitions.
  using ChangeCallback = std::function<void(const std::vector<core::Transition>& transitions,
                                            const std::vector<core::Notice>& notices, Change change)>;
  using Clock = std::function<core::ClockReading()>;

  BackendDriver(uv_loop_t* loop, const core::BackendConfig& config, core::ReconcilerSettings settings,
                std::unique_ptr<providers::CloudProvider> provider, io::HttpClient& client,
                ChangeCallback on_change, Clock clock = core::ClockReading::now,
                std::shared_ptr<io::TickTimers> ticks = nullptr);
  ~BackendDriver();
  BackendDriver(const BackendDriver&) = delete;
  BackendDriver& operator=(const BackendDriver&) = delete;

  // Restores what was persisted and begins reconciling (the first command observes the cloud).
  void start(const std::optional<core::PersistedBackend>& persisted);
  // With several controllers (ha/): every wake and sleep first passes `fence`. Set before start.
  void set_fence(ActionFence* fence) { fence_ = fence; }
  // This controller now leads the backend: a fresh reconciler continues from what the previous
  // leader recorded (or from `persisted` when none did), observing the cloud before it acts.
  void lead(const std::optional<core::PersistedBackend>& persisted);
  // Another controller leads: stop acting (timers, probes; a cloud call already sent reports to
  // nobody) and show what the leader published. Also how a leader that lost its lease steps down.
  void follow(const core::BackendSnapshot& leader_view);
  // True while this driver decides and acts (always, once started, without ha/).
  bool acting() const { return running_; }
  // A wish for the VM to be awake or asleep. Returns true when it changed anything.
  bool request(bool awake, const std::string& actor, const std::string& reason);
  // Activity and busy times are monotonic (an access-log time is converted with read_clock()).
  void record_activity(core::MonoTime at);
  // Activity that another controller's Caddy saw (ha/): counts like our own, but is not reported
  // back as this controller's.
  void record_remote_activity(core::MonoTime at);
  // Requests in flight through the other controllers' Caddies, added to our own.
  void set_remote_requests_in_flight(int count);
  // What this controller's own Caddy saw, for a leader elsewhere (ha/).
  std::optional<core::MonoTime> local_activity() const { return local_activity_; }
  int local_requests_in_flight() const { return local_in_flight_; }
  // Awake holds (core::AwakeHold): persisted, shown, and consulted by the idle rule.
  void hold_awake(core::AwakeHold hold);
  void release_hold(core::HoldReason reason);
  // The admin pin: wakes the backend and holds it awake with no end, or lifts the pin. Returns
  // false when nothing changed (already pinned and awake, or not pinned).
  bool set_pinned(bool pinned, const std::string& actor, const std::string& reason);
  void set_requests_in_flight(int count, std::optional<core::MonoTime> last_busy_at);
  // Both clocks now, as this driver sees them: for converting times on their way in and out.
  core::ClockReading read_clock() const { return clock_(); }
  // host:port of the backend: the configured upstream, else the one the cloud reported.
  std::string upstream() const;
  // Stops every timer, probe and pending cloud call; no callback runs afterwards.
  void shutdown();

  const core::BackendConfig& config() const { return config_; }
  const core::BackendReconciler& reconciler() const { return reconciler_; }
  // Where the health prober looks, and where visitors are sent once ready ("" while unknown).
  std::string health_url() const;
  std::string visitor_url() const;
  std::string_view provider_kind() const { return provider_->kind(); }

 private:
  void run();
  void execute(core::Command command);
  void sync_prober();
  void publish();
  void send_action(core::Command command);
  // With a fence: true while the next tick would decide a wake or sleep that etcd has not just
  // confirmed this controller may decide (the confirmation is then asked for).
  bool awaiting_confirmation(const core::ClockReading& now);
  // The longest the tick timer waits: past the settled observation interval, however long.
  std::chrono::milliseconds max_tick_delay() const;
  void apply_requests_in_flight();
  void notify(const std::vector<core::Transition>& transitions, const std::vector<core::Notice>& notices,
              Change change) const;

  // What the owner's other subsystems act on (routing, the gate, the activity monitor): a change
  // of it is kVisible, while a change of anything else the reconciler shows is only kSeen.
  struct Reach {
    core::BackendState state = core::BackendState::kUnknown;
    bool desired_awake = false;
    bool probed = false;  // the reconciler wants health probes (and in-flight sampling)
    std::string upstream;
    bool operator==(const Reach&) const = default;
  };
  Reach reach() const;

  core::BackendConfig config_;
  core::BackendReconciler reconciler_;
  std::unique_ptr<providers::CloudProvider> provider_;
  io::HealthProber prober_;
  // The loop's drivers share one timer (`ticks` at construction; a driver without one has its own).
  std::shared_ptr<io::TickTimers> ticks_;
  io::TickTimers::Slot tick_slot_ = 0;
  ChangeCallback on_change_;
  Clock clock_;
  std::shared_ptr<spdlog::logger> log_;
  ActionFence* fence_ = nullptr;
  // Bumped whenever this driver stops or starts leading: a cloud call's or fence's answer that
  // belongs to an earlier term reports to nobody.
  std::uint64_t term_ = 0;
  bool mirroring_ = false;             // showing another controller's view (follow())
  bool confirming_ = false;            // a confirmation is under way (awaiting_confirmation())
  bool decision_confirmed_ = false;    // granted: the next tick may decide
  core::MonoTime confirm_again_at_{};  // after a refusal, the next confirmation waits until then
  std::optional<core::MonoTime> local_activity_;
  int local_in_flight_ = 0;
  int remote_in_flight_ = 0;
  std::optional<core::MonoTime> last_busy_;
  std::uint64_t prober_generation_ = 0;
  std::uint64_t illegal_events_seen_ = 0;
  bool running_ = false;
  bool closed_ = false;  // shutdown() ran: nothing starts again
  bool dirty_ = false;
  Reach published_;  // as it was at the last publish()
  bool in_run_ = false;
  bool run_again_ = false;
};

}  // namespace unshelver::app
