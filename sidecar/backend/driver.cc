#include "backend/driver.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/time_format.h"
#include "base/url.h"

namespace unshelver::app {

namespace {
using namespace std::chrono_literals;
// The reconciler names the moment it next wants to run (next_tick_due(): the next observation,
// the idle deadline, the wake, boot and error timeouts), and every input that can bring that
// moment forward runs the driver at once; the timer waits for it, so that an idle backend costs
// one wake-up per observation rather than one a second (1,000 backends: a thousand a second).
// This cap only bounds the timer: a settled observation falls due up to a second after its
// interval (app.settled_poll_interval_seconds, 60 s by default), on a whole second shared with
// other backends, and the cap must not cut that moment short; a longer configured interval
// raises it (max_tick_delay), or every backend would wake once a minute to find nothing due.
constexpr auto kMaxTickDelay = 61'000ms;
constexpr auto kMinTickDelay = 5ms;
// A decision waiting for etcd's confirmation looks again this often, and after a refusal asks
// again no sooner than kConfirmRetry.
constexpr auto kConfirmPoll = 100ms;
constexpr auto kConfirmRetry = 1000ms;

// The host and port of a probe URL, for the log (without any userinfo).
std::string host_of(const std::string& url) {
  const std::optional<core::Url> parts = core::parse_url(url);
  return parts ? parts->authority : url;
}
}  // namespace

BackendDriver::BackendDriver(uv_loop_t* loop, const core::BackendConfig& config,
                             core::ReconcilerSettings settings,
                             std::unique_ptr<providers::CloudProvider> provider, io::HttpClient& client,
                             ChangeCallback on_change, Clock clock, std::shared_ptr<io::TickTimers> ticks)
    : config_(config),
      reconciler_(config.name, settings),
      provider_(std::move(provider)),
      prober_(loop, client),
      ticks_(ticks ? std::move(ticks) : std::make_shared<io::TickTimers>(loop)),
      on_change_(std::move(on_change)),
      clock_(std::move(clock)),
      log_(spdlog::default_logger()->clone(config.name)) {
  tick_slot_ = ticks_->add([this] { run(); });
}

BackendDriver::~BackendDriver() {
  shutdown();
  ticks_->remove(tick_slot_);
}

void BackendDriver::start(const std::optional<core::PersistedBackend>& persisted) {
  if (closed_) return;
  if (persisted) {
    const core::ClockReading now = read_clock();
    if (persisted->last_activity && *persisted->last_activity > now.wall) {
      log_->warn(
          "the persisted last activity {} lies in the future (the clock was set back?); counted as now",
          core::format_rfc3339(*persisted->last_activity));
    }
    reconciler_.restore(*persisted, now);
    log_->info("restored: desired {} ({} by {}), last state {}",
               persisted->desired.awake ? "awake" : "asleep", persisted->desired.reason,
               persisted->desired.actor, core::to_string(persisted->state));
  }
  running_ = true;
  run();
}

void BackendDriver::lead(const std::optional<core::PersistedBackend>& persisted) {
  if (running_ || closed_) return;
  ++term_;
  mirroring_ = false;
  // A confirmation asked for in an earlier term answers nobody (see awaiting_confirmation()).
  confirming_ = false;
  decision_confirmed_ = false;
  confirm_again_at_ = {};
  reconciler_ = core::BackendReconciler(config_.name, reconciler_.settings());
  std::optional<core::PersistedBackend> resumed = persisted;
  if (resumed && resumed->desired.awake != core::is_awake_side(resumed->state) &&
      resumed->state != core::BackendState::kError && resumed->state != core::BackendState::kUnknown) {
    // The previous leader decided a wake or sleep but stopped before it recorded the action (it
    // died or lost its lease between the two writes). At a restart of a single instance such a
    // desired state yields to what the cloud shows (someone may have acted meanwhile); here it is
    // a decision to carry out, so it is resumed as an action under way.
    resumed->state = resumed->desired.awake ? core::BackendState::kWaking : core::BackendState::kSleeping;
  }
  log_->info("leading this backend from now on");
  start(resumed);
  if (local_activity_) reconciler_.on_activity(*local_activity_);
  apply_requests_in_flight();
}

void BackendDriver::follow(const core::BackendSnapshot& leader_view) {
  if (running_) {
    ++term_;
    running_ = false;
    ticks_->disarm(tick_slot_);
    prober_.stop();
    log_->info("another controller leads this backend: stopped acting");
  }
  mirroring_ = true;
  reconciler_.mirror(leader_view, read_clock());
  published_ = reach();
  notify({}, {}, Change::kVisible);
}

bool BackendDriver::request(bool awake, const std::string& actor, const std::string& reason) {
  if (!running_) return false;
  const bool changed = reconciler_.request(awake, actor, reason, read_clock());
  if (changed) {
    log_->info("{} requested by {}: {}", awake ? "wake" : "sleep", actor, reason);
    notify({}, {}, Change::kPersist);
    run();
  }
  return changed;
}

void BackendDriver::hold_awake(core::AwakeHold hold) {
  if (!running_) return;
  log_->info("held awake ({}) by {}: {}", core::to_string(hold.reason), hold.actor, hold.detail);
  reconciler_.hold_awake(std::move(hold), read_clock());
  notify({}, {}, Change::kPersist);
  run();
}

void BackendDriver::release_hold(core::HoldReason reason) {
  if (!running_) return;
  const auto& holds = reconciler_.holds();
  if (std::none_of(holds.begin(), holds.end(),
                   [&](const core::AwakeHold& hold) { return hold.reason == reason; }))
    return;
  log_->info("awake hold ({}) released", core::to_string(reason));
  reconciler_.release_hold(reason);
  notify({}, {}, Change::kPersist);
  run();
}

bool BackendDriver::set_pinned(bool pinned, const std::string& actor, const std::string& reason) {
  const bool was_pinned = reconciler_.pinned();
  if (!pinned) {
    if (!was_pinned) return false;
    release_hold(core::HoldReason::kPin);
    return true;
  }
  // Wake first: a request to sleep ends every hold, a wake keeps them.
  const bool woken = request(true, actor, reason);
  if (was_pinned) return woken;
  hold_awake(core::AwakeHold{core::HoldReason::kPin, actor, reason, {}, std::nullopt});
  return true;
}

void BackendDriver::record_activity(core::MonoTime at) {
  if (!local_activity_ || at > *local_activity_) local_activity_ = at;
  record_remote_activity(at);
}

void BackendDriver::record_remote_activity(core::MonoTime at) {
  if (mirroring_) return;
  reconciler_.on_activity(at);
  // In a dry run, activity may be a would-wake: record it now rather than at the next tick.
  if (config_.dry_run) run();
}

void BackendDriver::set_requests_in_flight(int count, std::optional<core::MonoTime> last_busy_at) {
  local_in_flight_ = count;
  if (last_busy_at && (!last_busy_ || *last_busy_at > *last_busy_)) last_busy_ = last_busy_at;
  apply_requests_in_flight();
}

void BackendDriver::set_remote_requests_in_flight(int count) {
  if (count == remote_in_flight_) return;
  remote_in_flight_ = count;
  apply_requests_in_flight();
}

void BackendDriver::apply_requests_in_flight() {
  if (mirroring_) return;
  const int count = local_in_flight_ + remote_in_flight_;
  const bool was_holding = reconciler_.requests_in_flight() > 0;
  reconciler_.set_requests_in_flight(count, last_busy_);
  // When the last long request ends, the idle deadline is due one idle timeout after it; the
  // tick timer must learn about the new deadline.
  if (was_holding != (count > 0)) run();
}

void BackendDriver::shutdown() {
  if (closed_) return;
  closed_ = true;
  running_ = false;
  ++term_;
  ticks_->disarm(tick_slot_);
  prober_.stop();
  provider_->close();
}

void BackendDriver::run() {
  if (!running_) return;
  if (fence_ != nullptr && !in_run_ && !fence_->may_decide(config_.name)) {
    // The fence steps this driver down on the loop (follow()); should the lease be renewed
    // instead, the next tick decides as usual.
    ticks_->arm(tick_slot_, read_clock().mono + kMinTickDelay);
    return;
  }
  // Provider callbacks never run inside the call, but a change callback might request again;
  // a re-entrant run() is folded into the one already under way.
  if (in_run_) {
    run_again_ = true;
    return;
  }
  in_run_ = true;
  bool waiting = false;
  do {
    run_again_ = false;
    const core::ClockReading now = read_clock();
    waiting = awaiting_confirmation(now);
    if (!waiting) {
      if (auto command = reconciler_.tick(now)) execute(*command);
      decision_confirmed_ = false;
    }
    sync_prober();
    publish();
  } while (run_again_ && running_);
  in_run_ = false;
  if (!running_) return;

  const core::ClockReading current = read_clock();
  const core::MonoTime due = reconciler_.next_tick_due(current);
  if (!waiting && due == core::MonoTime::max()) {
    // Nothing is due but the answer to the command in flight, which runs the driver itself: no
    // timer meanwhile, so that a settled observation costs one timer (its next one), not three.
    ticks_->disarm(tick_slot_);
    return;
  }
  // While a decision waits for etcd, the answer (not the timer) moves it on; the timer only
  // looks again now and then, e.g. once a refused confirmation may be asked for again. The
  // moment itself is kept otherwise, so that drivers due at the same moment share a wake-up.
  ticks_->arm(tick_slot_,
              waiting ? current.mono + kConfirmPoll
                      : std::clamp(due, current.mono + kMinTickDelay, current.mono + max_tick_delay()));
}

std::chrono::milliseconds BackendDriver::max_tick_delay() const {
  return std::max<std::chrono::milliseconds>(kMaxTickDelay,
                                             reconciler_.settings().steady_observe_interval + 1'000ms);
}

bool BackendDriver::awaiting_confirmation(const core::ClockReading& now) {
  if (fence_ == nullptr || decision_confirmed_) return false;
  // What the next tick would do, on a copy: only a wake or sleep waits for etcd.
  core::BackendReconciler trial = reconciler_;
  const std::optional<core::Command> next = trial.tick(now);
  if (!next || *next == core::Command::kObserve) return false;
  if (confirming_ || now.mono < confirm_again_at_) return true;
  confirming_ = true;
  const std::uint64_t term = term_;
  fence_->confirm(config_.name, [this, term](const Status& confirmed) {
    if (term != term_ || !running_) return;
    confirming_ = false;
    if (!confirmed) {
      // Asked again after a pause: etcd may be out of reach for a while, and each confirmation
      // is a request to it.
      log_->warn("not deciding yet, the lead is not confirmed: {}", confirmed.error().message);
      confirm_again_at_ = read_clock().mono + kConfirmRetry;
      return;
    }
    decision_confirmed_ = true;
    run();
  });
  return true;
}

void BackendDriver::execute(core::Command command) {
  log_->debug("command: {}", core::to_string(command));
  dirty_ = true;
  const std::uint64_t term = term_;
  switch (command) {
    case core::Command::kObserve:
      provider_->observe(reconciler_.observation_settled() ? providers::ObserveMode::kSettled
                                                           : providers::ObserveMode::kCurrent,
                         [this, term](Result<core::CloudObservation> observation) {
                           if (term != term_) return;
                           if (observation) {
                             reconciler_.on_observed(*observation, read_clock());
                           } else {
                             log_->warn("cannot observe the cloud: {}", observation.error().message);
                             reconciler_.on_observe_failed(observation.error().message, read_clock());
                           }
                           dirty_ = true;
                           run();
                         });
      break;
    case core::Command::kWake:
    case core::Command::kSleep: {
      if (config_.dry_run) {
        // The reconciler never issues these in a dry run; should it ever, the cloud is still
        // left alone.
        log_->error("BUG: {} issued in a dry run; not sent", core::to_string(command));
        reconciler_.on_action_done(command, core::ActionOutcome::kBusy, "dry run", read_clock());
        break;
      }
      if (fence_ == nullptr) {
        send_action(command);
        break;
      }
      fence_->authorize(config_.name, [this, term, command](const Status& allowed) {
        if (term != term_ || !running_) return;
        if (allowed) {
          send_action(command);
          return;
        }
        // Not sent: observe again and decide afresh, as when the cloud is busy. A controller that
        // lost the lead stops acting altogether (follow()) before this runs again.
        log_->warn("{} not sent: {}", core::to_string(command), allowed.error().message);
        reconciler_.on_action_done(command, core::ActionOutcome::kBusy,
                                   "not sent: " + allowed.error().message, read_clock());
        dirty_ = true;
        run();
      });
      break;
    }
  }
}

void BackendDriver::send_action(core::Command command) {
  const std::uint64_t term = term_;
  auto on_done = [this, command, term](providers::ActionResult result) {
    if (term != term_) return;
    if (result.outcome == core::ActionOutcome::kRefused) {
      log_->warn("{} was refused: {}", core::to_string(command), result.message);
    } else if (result.outcome == core::ActionOutcome::kBusy) {
      log_->info("{} not sent, the VM is busy: {}; observing again", core::to_string(command),
                 result.message);
    }
    reconciler_.on_action_done(command, result.outcome, result.message, read_clock());
    dirty_ = true;
    run();
  };
  if (command == core::Command::kWake) {
    provider_->wake(std::move(on_done));
  } else {
    provider_->sleep(std::move(on_done));
  }
}

std::string BackendDriver::upstream() const {
  return config_.upstream.empty() ? reconciler_.upstream() : config_.upstream;
}

std::string BackendDriver::health_url() const {
  const std::string address = upstream();
  if (address.empty()) return "";
  return config_.url_scheme + "://" + address + config_.health.path;
}

std::string BackendDriver::visitor_url() const {
  if (!config_.public_base_url.empty()) return config_.public_base_url;
  const std::string address = upstream();
  if (address.empty()) return "";
  return config_.url_scheme + "://" + address + config_.launch_path;
}

void BackendDriver::sync_prober() {
  if (!reconciler_.wants_health_probe()) {
    if (prober_.running()) prober_.stop();
    return;
  }
  const std::uint64_t generation = reconciler_.health_generation();
  const std::chrono::milliseconds interval = reconciler_.health_probe_interval();
  if (prober_.running() && prober_generation_ == generation && prober_.target().interval == interval) return;
  prober_generation_ = generation;
  const std::string url = health_url();
  if (url.empty()) {
    // Without an address there is nothing to probe; count it as a failed probe so that the
    // health attempts run out and the error says why.
    reconciler_.on_health(false, "no upstream address is known for " + config_.name, read_clock());
    return;
  }
  io::ProbeTarget target{url, interval, config_.health.timeout, config_.verify_tls};
  log_->debug("probing {} every {} ms", host_of(url), interval.count());
  prober_.start(std::move(target), [this, generation](bool passed, const std::string& detail) {
    // A result from an earlier phase is dropped by the reconciler.
    if (!reconciler_.on_health_of(generation, passed, detail, read_clock())) return;
    if (!passed) log_->debug("health probe failed: {}", detail);
    dirty_ = true;
    run();
  });
}

void BackendDriver::publish() {
  std::vector<core::Transition> transitions = reconciler_.take_transitions();
  for (const core::Transition& change : transitions) {
    log_->info("{} -> {} ({}) by {}{}{}", core::to_string(change.from), core::to_string(change.to),
               core::to_string(change.event), change.actor, change.detail.empty() ? "" : ": ", change.detail);
  }
  std::vector<core::Notice> notices = reconciler_.take_notices();
  for (const core::Notice& notice : notices) {
    if (notice.action == "shelve_failed") {
      log_->warn("{}: {}", notice.action, notice.detail);
    } else {
      log_->info("{} by {}: {}", notice.action, notice.actor, notice.detail);
    }
  }
  if (reconciler_.illegal_events() != illegal_events_seen_) {
    illegal_events_seen_ = reconciler_.illegal_events();
    log_->error("BUG: the state machine rejected an event in state {} ({} so far)",
                core::to_string(reconciler_.state()), illegal_events_seen_);
  }
  if (!transitions.empty() || !notices.empty()) {
    published_ = reach();
    notify(transitions, notices, Change::kPersist);
  } else if (dirty_) {
    Reach now = reach();
    const bool reached = now != published_;
    published_ = std::move(now);
    notify(transitions, notices, reached ? Change::kVisible : Change::kSeen);
  }
  dirty_ = false;
}

BackendDriver::Reach BackendDriver::reach() const {
  return Reach{reconciler_.state(), reconciler_.desired().awake, reconciler_.wants_health_probe(),
               upstream()};
}

void BackendDriver::notify(const std::vector<core::Transition>& transitions,
                           const std::vector<core::Notice>& notices, Change change) const {
  if (on_change_) on_change_(transitions, notices, change);
}

}  // namespace unshelver::app
