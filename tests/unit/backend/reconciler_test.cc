// The reconciler's decisions, walked with a fake clock: no loop, no provider, no sockets.
#include "backend/reconciler.h"

#include <gtest/gtest.h>

#include "base/time_format.h"

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;
using S = BackendState;
using Kind = CloudObservation::Kind;

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() : reconciler_("gpu", make_settings()) {}

  static ReconcilerSettings make_settings() {
    ReconcilerSettings settings;
    settings.poll_interval = 1s;
    settings.steady_observe_interval = 30s;
    settings.idle_timeout = 60s;
    settings.unshelve_timeout = 600s;
    settings.error_retry_after = 120s;
    settings.health_successes_needed = 2;
    settings.health_failures_allowed = 3;
    settings.boot_timeout = 5s;
    return settings;
  }

  static CloudObservation seen(Kind kind, std::string status = "", std::string detail = "") {
    return CloudObservation{kind, std::move(status), std::move(detail), "10.0.0.5:8080"};
  }

  // Advances the clock and runs one tick.
  std::optional<Command> tick(std::chrono::milliseconds step = 0ms) {
    now_ += step;
    return reconciler_.tick(now_);
  }

  // Starts from a first observation of a stopped VM.
  void start_asleep() {
    ASSERT_EQ(tick(), Command::kObserve);
    reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
    ASSERT_EQ(reconciler_.state(), S::kAsleep);
    reconciler_.take_transitions();
  }

  // Walks a wake through to ready.
  void wake_to_ready() {
    reconciler_.request(true, "public-button", "pressed", now_);
    ASSERT_EQ(tick(), Command::kWake);
    ASSERT_EQ(reconciler_.state(), S::kWaking);
    reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
    ASSERT_EQ(tick(), Command::kObserve);
    reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
    ASSERT_EQ(reconciler_.state(), S::kBooting);
    reconciler_.on_health(true, "", now_ += 500ms);
    reconciler_.on_health(true, "", now_ += 500ms);
    ASSERT_EQ(reconciler_.state(), S::kReady);
  }

  static ReconcilerSettings retry_settings() {
    ReconcilerSettings settings = make_settings();
    settings.on_error = ErrorPolicy::kRetry;
    return settings;
  }

  // From start-up (the VM found stopped) to the cloud's answer to the first wake.
  void answer_a_wake(BackendReconciler& reconciler, ActionOutcome outcome, const std::string& message) {
    ASSERT_EQ(reconciler.tick(now_), Command::kObserve);
    reconciler.on_observed(seen(Kind::kStopped), now_);
    reconciler.request(true, "public-button", "pressed", now_);
    ASSERT_EQ(reconciler.tick(now_), Command::kWake);
    reconciler.on_action_done(Command::kWake, outcome, message, now_);
  }

  // From start-up to an error: the first wake is refused.
  void refuse_a_wake(BackendReconciler& reconciler) {
    answer_a_wake(reconciler, ActionOutcome::kRefused, "No valid host was found.");
    ASSERT_EQ(reconciler.state(), S::kError);
  }

  // A boot may take an hour: only the idle rule or health decides in these tests.
  static ReconcilerSettings patient_settings() {
    ReconcilerSettings settings = make_settings();
    settings.boot_timeout = 1h;
    return settings;
  }

  // From start-up to a wake that the cloud accepted.
  void accept_a_wake(BackendReconciler& reconciler) {
    answer_a_wake(reconciler, ActionOutcome::kAccepted, "");
  }

  // Restarts from a persisted record, then observes the cloud once.
  void restart_and_observe(bool desired_awake, S persisted_state, Kind observed) {
    PersistedBackend persisted;
    persisted.desired = Desired{desired_awake, "public-button", "pressed", (now_ - 10s).wall};
    persisted.state = persisted_state;
    reconciler_.restore(persisted, now_);
    ASSERT_EQ(tick(), Command::kObserve);
    reconciler_.on_observed(seen(observed), now_);
  }

  // Both clocks move together unless a test moves the wall clock alone.
  ClockReading now_{MonoTime{} + 1'000'000s, TimePoint{} + 1'800'000'000s};
  BackendReconciler reconciler_;
};

TEST_F(ReconcilerTest, AWakeAskedForBeforeTheFirstObservationIsCarriedOut) {
  // Restored "wanted asleep, asleep" (or nothing), then a wake before the cloud has answered: the
  // cloud's "stopped" must not be taken as someone's wish to keep it asleep.
  PersistedBackend persisted;
  persisted.desired = Desired{false, "idle-monitor", "idle", (now_ - 60s).wall};
  persisted.state = S::kAsleep;
  reconciler_.restore(persisted, now_);
  ASSERT_EQ(tick(), Command::kObserve);
  ASSERT_TRUE(reconciler_.request(true, "public-button", "pressed", now_));
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_TRUE(reconciler_.desired().awake);
  EXPECT_EQ(tick(), Command::kWake);
}

TEST_F(ReconcilerTest, ARepeatedWakeBeforeTheFirstObservationStillCounts) {
  // Restored "wanted awake" from a wake that never started, and the visitor presses again: the
  // fresh press is a decision, so the VM found stopped is woken rather than left asleep.
  PersistedBackend persisted;
  persisted.desired = Desired{true, "public-button", "pressed", (now_ - 60s).wall};
  persisted.state = S::kAsleep;
  reconciler_.restore(persisted, now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.request(true, "public-button", "pressed again", now_);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_TRUE(reconciler_.desired().awake);
  EXPECT_EQ(tick(), Command::kWake);
}

TEST_F(ReconcilerTest, AShelveAskedForBeforeTheFirstObservationIsCarriedOut) {
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.request(false, "control", "shelve now", now_);
  reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  EXPECT_FALSE(reconciler_.desired().awake);
  EXPECT_EQ(tick(), Command::kSleep);
}

TEST_F(ReconcilerTest, RequestChangesAnswersWhatRequestWouldReturnAndPinnedSeesThePin) {
  start_asleep();
  EXPECT_TRUE(reconciler_.request_changes(true));
  EXPECT_FALSE(reconciler_.request_changes(false));
  const bool wake_changes = reconciler_.request_changes(true);
  EXPECT_EQ(wake_changes, reconciler_.request(true, "control", "wake", now_));
  const bool again_changes = reconciler_.request_changes(true);
  EXPECT_FALSE(again_changes);
  EXPECT_EQ(again_changes, reconciler_.request(true, "control", "again", now_));
  EXPECT_FALSE(reconciler_.pinned());
  reconciler_.hold_awake(AwakeHold{HoldReason::kWindow, "keep-warm", "window", {}, std::nullopt}, now_);
  EXPECT_FALSE(reconciler_.pinned());
  reconciler_.hold_awake(AwakeHold{HoldReason::kPin, "admin", "demo", {}, std::nullopt}, now_);
  EXPECT_TRUE(reconciler_.pinned());
}

TEST_F(ReconcilerTest, ObservesBeforeActingAtStart) {
  reconciler_.request(true, "public-button", "pressed", now_);
  EXPECT_EQ(tick(), Command::kObserve);
  EXPECT_EQ(reconciler_.state(), S::kUnknown);
  // Single flight: nothing else while the observation is under way.
  EXPECT_EQ(tick(1s), std::nullopt);
}

TEST_F(ReconcilerTest, FullWakeAndIdleSleep) {
  start_asleep();
  wake_to_ready();
  auto transitions = reconciler_.take_transitions();
  ASSERT_EQ(transitions.size(), 3u);
  EXPECT_EQ(transitions[0].from, S::kAsleep);
  EXPECT_EQ(transitions[0].to, S::kWaking);
  EXPECT_EQ(transitions[0].actor, "public-button");
  EXPECT_EQ(transitions[1].to, S::kBooting);
  EXPECT_EQ(transitions[2].to, S::kReady);
  EXPECT_EQ(reconciler_.upstream(), "10.0.0.5:8080");

  // The idle clock started at ready: for 59 s the ticks only observe, at 60 s the sleep is issued.
  ASSERT_TRUE(reconciler_.idle_deadline());
  const MonoTime deadline = (now_ + 60s).mono;
  EXPECT_EQ(*reconciler_.idle_deadline(), deadline);
  while ((now_ + 1s).mono < deadline) {
    auto command = tick(1s);
    ASSERT_NE(command, Command::kSleep);
    if (command == Command::kObserve) reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
    ASSERT_LE(reconciler_.next_tick_due(now_), deadline);
  }
  EXPECT_EQ(tick(1s), Command::kSleep);
  reconciler_.on_action_done(Command::kSleep, ActionOutcome::kAccepted, "", now_);
  EXPECT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopping, "ACTIVE (shelving)"), now_);
  EXPECT_EQ(reconciler_.state(), S::kSleeping);
  EXPECT_EQ(tick(1s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_FALSE(reconciler_.idle_deadline());
}

TEST_F(ReconcilerTest, ActivityPushesTheIdleDeadline) {
  start_asleep();
  wake_to_ready();
  reconciler_.on_activity((now_ + 40s).mono);
  EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 100s).mono);
  // Older activity does not move the clock back.
  reconciler_.on_activity((now_ + 10s).mono);
  EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 100s).mono);
  reconciler_.on_observed(seen(Kind::kRunning), now_ += 70s);
  EXPECT_EQ(tick(), std::nullopt);
  EXPECT_EQ(reconciler_.state(), S::kReady);
}

TEST_F(ReconcilerTest, RequestsInFlightHoldTheIdleClock) {
  start_asleep();
  wake_to_ready();
  // A request that waits for its first byte: busy, but the last busy moment is not moving yet.
  const MonoTime stream_started = now_.mono;
  reconciler_.set_requests_in_flight(1, stream_started);
  for (int i = 0; i < 10; ++i) {
    reconciler_.on_observed(seen(Kind::kRunning), now_ += 30s);
    EXPECT_NE(tick(), Command::kSleep);
    reconciler_.set_requests_in_flight(1, stream_started);
  }
  EXPECT_EQ(reconciler_.state(), S::kReady);
  // The stream ended 5 s ago (its last data): one idle timeout runs from then.
  reconciler_.set_requests_in_flight(0, (now_ - 5s).mono);
  EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 55s).mono);
  reconciler_.on_observed(seen(Kind::kRunning), now_ += 54s);
  EXPECT_EQ(tick(), std::nullopt);
  EXPECT_EQ(tick(1s), Command::kSleep);
}

TEST_F(ReconcilerTest, StreamingRequestMovesTheDeadlineAlong) {
  start_asleep();
  wake_to_ready();
  for (int i = 0; i < 5; ++i) {
    now_ += 40s;
    reconciler_.set_requests_in_flight(1, (now_ - 1s).mono);
    EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 59s).mono);
  }
  reconciler_.set_requests_in_flight(0, now_.mono);
  EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 60s).mono);
  EXPECT_EQ(reconciler_.requests_in_flight(), 0);
}

TEST_F(ReconcilerTest, RepeatedWakeRequestsIssueOneAction) {
  start_asleep();
  EXPECT_TRUE(reconciler_.request(true, "public-button", "pressed", now_));
  EXPECT_EQ(tick(), Command::kWake);
  EXPECT_FALSE(reconciler_.request(true, "public-button", "pressed again", now_));
  EXPECT_EQ(tick(), std::nullopt);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  EXPECT_FALSE(reconciler_.request(true, "public-button", "and again", now_));
  EXPECT_EQ(tick(), Command::kObserve);
}

TEST_F(ReconcilerTest, RejectedWakeBecomesErrorAndWaitsForAdmin) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kRefused, "HTTP 500 from compute", now_);
  EXPECT_EQ(reconciler_.state(), S::kError);
  EXPECT_NE(reconciler_.last_error().find("HTTP 500 from compute"), std::string::npos);
  // Wait-for-admin: ticks only observe, even long after the retry delay.
  EXPECT_EQ(tick(), std::nullopt);
  EXPECT_EQ(tick(30s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_EQ(reconciler_.state(), S::kError);
  EXPECT_EQ(tick(1000s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  // A fresh request lifts it.
  EXPECT_TRUE(reconciler_.request(true, "control", "retry", now_));
  EXPECT_EQ(tick(), Command::kWake);
  EXPECT_EQ(reconciler_.state(), S::kWaking);
}

TEST_F(ReconcilerTest, RetryPolicyWakesAgainAfterTheDelay) {
  BackendReconciler retrying("gpu", retry_settings());
  refuse_a_wake(retrying);
  EXPECT_EQ(retrying.tick(now_ + 60s), Command::kObserve);
  retrying.on_observed(seen(Kind::kStopped), now_ + 60s);
  EXPECT_EQ(retrying.tick(now_ + 121s), Command::kWake);
}

TEST_F(ReconcilerTest, ProviderDetailAfterWakeFailsAtOnce) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED", "No valid host was found."), now_);
  EXPECT_EQ(reconciler_.state(), S::kError);
  EXPECT_EQ(reconciler_.last_error(), "No valid host was found.");
}

TEST_F(ReconcilerTest, StaleObservationsAfterWakeFailAfterThree) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(tick(1s), Command::kObserve);
    reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
    EXPECT_EQ(reconciler_.state(), S::kWaking);
  }
  ASSERT_EQ(tick(1s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_EQ(reconciler_.state(), S::kError);
  EXPECT_NE(reconciler_.last_error().find("still reports the VM stopped"), std::string::npos);
}

TEST_F(ReconcilerTest, CloudErrorStatusBecomesError) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kError, "ERROR", "Exceeded maximum number of retries."), now_);
  EXPECT_EQ(reconciler_.state(), S::kError);
  EXPECT_EQ(reconciler_.last_error(), "Exceeded maximum number of retries.");
}

TEST_F(ReconcilerTest, SettledObservationsFallDueOnWholeSecondsSoThatBackendsShareAWakeUp) {
  // Two sleeping backends observed 0.2 s and 0.9 s into the same second: both are due again at
  // the same whole second, never before their steady interval (30 s here) has passed.
  start_asleep();
  const ClockReading first = now_ + 30s + 200ms;
  ASSERT_EQ(reconciler_.tick(first), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), first);

  BackendReconciler other("other", make_settings());
  const ClockReading second = now_ + 30s + 900ms;
  ASSERT_EQ(other.tick(second), Command::kObserve);
  other.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), second);
  ASSERT_EQ(other.state(), S::kAsleep);

  EXPECT_EQ(reconciler_.next_tick_due(first), other.next_tick_due(second));
  EXPECT_EQ(reconciler_.next_tick_due(first), (now_ + 61s).mono);
  EXPECT_GE(reconciler_.next_tick_due(first), first.mono + 30s);
  // A confirmation records nothing.
  EXPECT_TRUE(reconciler_.take_transitions().empty());
}

TEST_F(ReconcilerTest, PollsDuringAChangeKeepTheirExactBackOff) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  ASSERT_EQ(tick(300ms), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (unshelving)"), now_);
  EXPECT_EQ(reconciler_.next_tick_due(now_), (now_ + 1s).mono);
}

TEST_F(ReconcilerTest, WhileAnObservationIsInFlightNoTimerIsNeededForIt) {
  // Its answer runs the driver at once; a timer meanwhile would only tick for nothing.
  start_asleep();
  ASSERT_EQ(tick(30s), Command::kObserve);
  EXPECT_GT(reconciler_.next_tick_due(now_), now_.mono + 24h);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_ += 5ms);
  EXPECT_EQ(reconciler_.next_tick_due(now_), (now_ + 30s - 5ms + 1s).mono);
}

TEST_F(ReconcilerTest, WhileAWakeIsInFlightItsTimeoutStillHasATimer) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  EXPECT_EQ(reconciler_.next_tick_due(now_), (now_ + 600s).mono);
}

TEST_F(ReconcilerTest, UnshelveTimeoutBecomesError) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(tick(1s), Command::kObserve);
    reconciler_.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (spawning)"), now_);
  }
  EXPECT_EQ(reconciler_.next_tick_due(now_), (now_ + 1s).mono);
  tick(600s);
  EXPECT_EQ(reconciler_.state(), S::kError);
  EXPECT_NE(reconciler_.last_error().find("not ready within 600 s"), std::string::npos);
}

// An unshelve stuck in the same task: the error stands while the cloud shows what it showed when
// the timeout struck, instead of flapping back to waking for another full timeout; it clears when
// the cloud moves on.
TEST_F(ReconcilerTest, ErrorStandsWhileTheCloudStillShowsTheSameTask) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (unshelving)"), now_);
  ASSERT_EQ(tick(600s), Command::kObserve);  // the timeout strikes, and the cloud is asked again
  ASSERT_EQ(reconciler_.state(), S::kError);
  reconciler_.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (unshelving)"), now_);
  EXPECT_EQ(reconciler_.state(), S::kError);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(tick(30s), Command::kObserve);
    reconciler_.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (unshelving)"), now_);
    EXPECT_EQ(reconciler_.state(), S::kError);
  }
  ASSERT_EQ(tick(30s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (spawning)"), now_);
  EXPECT_EQ(reconciler_.state(), S::kWaking);
}

// Issue 17: a boot's patience is a duration from the moment the VM runs, however often it is
// probed: 5 s, with probes every 100 ms (50 failures) or every second.
TEST_F(ReconcilerTest, BootTimeoutIsADurationNotAnAttemptCount) {
  for (auto interval : {100ms, 1000ms}) {
    BackendReconciler reconciler("gpu", make_settings());
    ASSERT_EQ(reconciler.tick(now_), Command::kObserve);
    reconciler.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
    ASSERT_EQ(reconciler.state(), S::kBooting);
    const MonoTime booting_at = now_.mono;
    EXPECT_LE(reconciler.next_tick_due(now_), booting_at + 5s);
    while (now_.mono + interval < booting_at + 5s) {
      reconciler.on_health(false, "connection refused", now_ += interval);
      reconciler.tick(now_);
      ASSERT_EQ(reconciler.state(), S::kBooting) << "after " << (now_.mono - booting_at).count() << " ns";
    }
    now_ += interval;
    reconciler.on_health(false, "connection refused", now_);
    reconciler.tick(now_);
    EXPECT_EQ(reconciler.state(), S::kError);
    EXPECT_EQ(reconciler.last_error(),
              "health check did not pass within 5 s of the VM running: connection refused");
  }
}

TEST_F(ReconcilerTest, HealthNeedsConsecutiveSuccesses) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kRunning), now_);
  reconciler_.on_health(true, "", now_);
  reconciler_.on_health(false, "503", now_);
  reconciler_.on_health(true, "", now_);
  EXPECT_EQ(reconciler_.state(), S::kBooting);
  reconciler_.on_health(true, "", now_);
  EXPECT_EQ(reconciler_.state(), S::kReady);
}

TEST_F(ReconcilerTest, LostHealthWhileReadyGoesBackToBooting) {
  start_asleep();
  wake_to_ready();
  const auto generation = reconciler_.health_generation();
  reconciler_.on_health(false, "refused", now_);
  reconciler_.on_health(false, "refused", now_);
  EXPECT_EQ(reconciler_.state(), S::kReady);
  reconciler_.on_health(false, "refused", now_);
  EXPECT_EQ(reconciler_.state(), S::kBooting);
  EXPECT_GT(reconciler_.health_generation(), generation);
}

TEST_F(ReconcilerTest, HealthResultsWhileAsleepAreDropped) {
  start_asleep();
  reconciler_.on_health(true, "", now_);
  reconciler_.on_health(true, "", now_);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_TRUE(reconciler_.take_transitions().empty());
}

TEST_F(ReconcilerTest, ShelvedOutsideUnshelverIsFollowed) {
  start_asleep();
  wake_to_ready();
  reconciler_.take_transitions();
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_ += 30s);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_FALSE(reconciler_.desired().awake);
  EXPECT_EQ(reconciler_.desired().actor, "cloud");
  // And it is not woken again behind the admin's back.
  EXPECT_NE(tick(), Command::kWake);
}

TEST_F(ReconcilerTest, StartedOutsideUnshelverIsFollowed) {
  start_asleep();
  reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_ += 30s);
  EXPECT_EQ(reconciler_.state(), S::kBooting);
  EXPECT_TRUE(reconciler_.desired().awake);
  EXPECT_NE(tick(), Command::kSleep);
}

TEST_F(ReconcilerTest, RestartFindingRunningVmKeepsPersistedActivity) {
  PersistedBackend persisted;
  persisted.desired = Desired{true, "public-button", "pressed", (now_ - 3000s).wall};
  persisted.last_activity = (now_ - 50s).wall;
  persisted.state = S::kReady;
  reconciler_.restore(persisted, now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  EXPECT_EQ(reconciler_.state(), S::kBooting);
  reconciler_.on_health(true, "", now_);
  reconciler_.on_health(true, "", now_);
  ASSERT_EQ(reconciler_.state(), S::kReady);
  // No fresh idle window: 10 s of the 60 s were left when Unshelver restarted.
  EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 10s).mono);
  EXPECT_EQ(tick(10s), Command::kSleep);
}

TEST_F(ReconcilerTest, RestartDuringWakeResumesTheWake) {
  restart_and_observe(true, S::kWaking, Kind::kStopped);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_TRUE(reconciler_.desired().awake);
  EXPECT_EQ(tick(), Command::kWake);
}

TEST_F(ReconcilerTest, RestartFindingStoppedVmAdoptsAsleep) {
  restart_and_observe(true, S::kReady, Kind::kStopped);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_FALSE(reconciler_.desired().awake);
  EXPECT_NE(tick(), Command::kWake);
}

TEST_F(ReconcilerTest, RestartDuringSleepResumesTheSleep) {
  restart_and_observe(false, S::kSleeping, Kind::kRunning);
  EXPECT_EQ(reconciler_.state(), S::kBooting);
  EXPECT_EQ(tick(), Command::kSleep);
}

TEST_F(ReconcilerTest, SleepWhileWakingWaitsForTheVmToRun) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  reconciler_.request(false, "control", "changed my mind", now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStarting), now_);
  EXPECT_EQ(tick(1s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kRunning), now_);
  EXPECT_EQ(reconciler_.state(), S::kBooting);
  EXPECT_EQ(tick(), Command::kSleep);
}

TEST_F(ReconcilerTest, ObserveFailureKeepsStateAndRetriesAfterPollInterval) {
  start_asleep();
  ASSERT_EQ(tick(30s), Command::kObserve);
  reconciler_.on_observe_failed("connection refused", now_);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_EQ(reconciler_.observe_error(), "connection refused");
  EXPECT_EQ(tick(), std::nullopt);
  EXPECT_EQ(tick(1s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped), now_);
  EXPECT_TRUE(reconciler_.observe_error().empty());
}

TEST_F(ReconcilerTest, IllegalEventsAreCountedNotApplied) {
  start_asleep();
  EXPECT_EQ(reconciler_.illegal_events(), 0u);
  // A sleep action reported done while asleep never came from a tick; the state stays.
  reconciler_.on_action_done(Command::kSleep, ActionOutcome::kRefused, "stale", now_);
  EXPECT_EQ(reconciler_.state(), S::kError);  // a failed action is an error in any state
  reconciler_.on_health(true, "", now_);
  EXPECT_EQ(reconciler_.state(), S::kError);
}

TEST_F(ReconcilerTest, PersistedRoundTrip) {
  start_asleep();
  wake_to_ready();
  PersistedBackend persisted = reconciler_.persisted();
  EXPECT_TRUE(persisted.desired.awake);
  EXPECT_EQ(persisted.state, S::kReady);
  ASSERT_TRUE(persisted.last_activity);
}

// Nova's 409: someone else is acting. The reconciler neither fails nor retries blindly; it
// observes, takes what it sees as the truth, and issues the wake afresh once the VM is idle.
TEST_F(ReconcilerTest, BusyWakeObservesAndIssuesAgainOnceTheVmIsIdle) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kBusy, "409 task shelving_offloading", now_);
  EXPECT_EQ(reconciler_.state(), S::kWaking);
  EXPECT_TRUE(reconciler_.last_error().empty());
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_EQ(tick(), Command::kWake);  // afresh, now that nothing else runs
  EXPECT_EQ(reconciler_.state(), S::kWaking);
}

TEST_F(ReconcilerTest, BusySleepFollowsAnotherTaskThatStartsTheVm) {
  start_asleep();
  wake_to_ready();
  reconciler_.request(false, "control", "shelve now", now_);
  ASSERT_EQ(tick(), Command::kSleep);
  reconciler_.on_action_done(Command::kSleep, ActionOutcome::kBusy, "409 task rebooting", now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  EXPECT_EQ(reconciler_.state(), S::kBooting);
  EXPECT_EQ(tick(), Command::kSleep);
}

// A guest that powers itself off leaves a shelving cloud's server SHUTOFF with no task: while it
// is wanted awake, Unshelver starts it rather than taking it as someone's decision.
TEST_F(ReconcilerTest, UnsettledStopWhileWantedAwakeIsStartedAgain) {
  start_asleep();
  wake_to_ready();
  CloudObservation shutoff = seen(Kind::kStopped, "SHUTOFF");
  shutoff.settled_asleep = false;
  ASSERT_EQ(tick(30s), Command::kObserve);
  reconciler_.on_observed(shutoff, now_);
  EXPECT_TRUE(reconciler_.desired().awake);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_EQ(tick(), Command::kWake);
}

TEST_F(ReconcilerTest, SettledStopWhileWantedAwakeIsFollowed) {
  start_asleep();
  wake_to_ready();
  ASSERT_EQ(tick(30s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_FALSE(reconciler_.desired().awake);
  EXPECT_EQ(reconciler_.desired().actor, "cloud");
  EXPECT_EQ(tick(), std::nullopt);
}

TEST_F(ReconcilerTest, UnsettledStopAtStartIsStartedWhenTheRestoredWishIsAwake) {
  PersistedBackend persisted;
  persisted.desired = Desired{true, "public-button", "pressed", now_.wall};
  persisted.state = S::kReady;
  reconciler_.restore(persisted, now_);
  ASSERT_EQ(tick(), Command::kObserve);
  CloudObservation shutoff = seen(Kind::kStopped, "SHUTOFF");
  shutoff.settled_asleep = false;
  reconciler_.on_observed(shutoff, now_);
  EXPECT_TRUE(reconciler_.desired().awake);
  EXPECT_EQ(tick(), Command::kWake);
}

// Off, but not in the configured sleep, and not wanted: it is put to sleep properly (a SHUTOFF
// server still holds its host), once, without a state change of its own.
TEST_F(ReconcilerTest, UnsettledStopWhileWantedAsleepIsPutToSleepProperly) {
  ASSERT_EQ(tick(), Command::kObserve);
  CloudObservation shutoff = seen(Kind::kStopped, "SHUTOFF");
  shutoff.settled_asleep = false;
  reconciler_.on_observed(shutoff, now_);
  ASSERT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_EQ(tick(), Command::kSleep);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  reconciler_.on_action_done(Command::kSleep, ActionOutcome::kAccepted, "", now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopping, "SHUTOFF (shelving)"), now_);
  EXPECT_EQ(reconciler_.state(), S::kSleeping);
  ASSERT_EQ(tick(1s), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_EQ(reconciler_.state(), S::kAsleep);
  EXPECT_EQ(tick(), std::nullopt);
}

// Issue 15 §7: the idle clock runs on the monotonic clock. The wall clock moved 2 h ahead right
// after ready used to shelve the VM at the next tick ("no activity for 60 s"); here it waits the
// full idle timeout, and the deadline is shown on the new wall clock.
TEST_F(ReconcilerTest, WallClockJumpAheadDoesNotShelveEarly) {
  start_asleep();
  wake_to_ready();
  const MonoTime deadline = (now_ + 60s).mono;
  now_.wall += 2h;
  while ((now_ + 1s).mono < deadline) {
    auto command = tick(1s);
    ASSERT_NE(command, Command::kSleep) << "shelved " << (deadline - now_.mono).count() << " ns early";
    if (command == Command::kObserve) reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  }
  EXPECT_EQ(now_.wall_of(*reconciler_.idle_deadline()), now_.wall + 1s);
  EXPECT_EQ(*reconciler_.idle_deadline_wall(now_), now_.wall + 1s) << "shown on the new wall clock";
  EXPECT_EQ(tick(1s), Command::kSleep);
  EXPECT_EQ(reconciler_.desired().actor, "idle-monitor");
}

// The wall clock moved 2 h back used to stretch a 60 s idle timeout to 2 h 60 s.
TEST_F(ReconcilerTest, WallClockJumpBackDoesNotPostponeTheShelve) {
  start_asleep();
  wake_to_ready();
  now_.wall -= 2h;
  for (int second = 1; second < 60; ++second) {
    auto command = tick(1s);
    ASSERT_NE(command, Command::kSleep);
    if (command == Command::kObserve) reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  }
  EXPECT_EQ(tick(1s), Command::kSleep)
      << "the idle timeout must end 60 s after ready, whatever the wall clock";
}

// Retries wait on the monotonic clock too: the retry after an error comes error_retry_after later,
// whichever way the wall clock moved meanwhile.
TEST_F(ReconcilerTest, WallClockJumpDoesNotMoveTheErrorRetry) {
  BackendReconciler retrying("gpu", retry_settings());
  refuse_a_wake(retrying);
  ClockReading later = now_ + 1s;
  later.wall += 2h;
  EXPECT_NE(retrying.tick(later), Command::kWake) << "a wall jump is no elapsed time";
  if (retrying.in_flight() == Command::kObserve) retrying.on_observed(seen(Kind::kStopped), later);
  ClockReading due = now_ + 120s;
  due.wall += 2h;
  EXPECT_EQ(retrying.tick(due), Command::kWake);
}

// A persisted last activity from the future (the clock was set back while Unshelver was down)
// counts as now: the VM found running gets one idle timeout, not the jump on top of it, and what
// is persisted next is no longer in the future.
TEST_F(ReconcilerTest, RestoreWithAPersistedTimeFromTheFutureCountsItAsNow) {
  PersistedBackend persisted;
  persisted.desired = Desired{true, "public-button", "pressed", (now_ + 2h).wall};
  persisted.last_activity = (now_ + 2h).wall;
  persisted.state = S::kReady;
  reconciler_.restore(persisted, now_);
  EXPECT_EQ(reconciler_.desired().since, now_.wall);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  reconciler_.on_health(true, "", now_);
  reconciler_.on_health(true, "", now_);
  ASSERT_EQ(reconciler_.state(), S::kReady);
  EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 60s).mono);
  EXPECT_EQ(*reconciler_.persisted().last_activity, now_.wall);
  auto command = tick(59s);
  ASSERT_NE(command, Command::kSleep);
  if (command == Command::kObserve) reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  EXPECT_EQ(tick(1s), Command::kSleep);
}

// What is persisted is wall time at the latest reading: after a jump the file holds the new wall
// clock's view of the last activity, so a restart counts the same age.
TEST_F(ReconcilerTest, PersistedLastActivityFollowsTheWallClockOfTheLatestReading) {
  start_asleep();
  wake_to_ready();
  const TimePoint ready_wall = now_.wall;
  EXPECT_EQ(*reconciler_.persisted().last_activity, ready_wall);
  now_.wall += 2h;
  tick(10s);
  EXPECT_EQ(*reconciler_.persisted().last_activity, ready_wall + 2h);
}

// --- Issue 17: never running unnoticed ---------------------------------------------------------

// Walks a wake until the VM runs and its health never passes, into `error` by the boot timeout.
// Returns when the wake was requested.
MonoTime wake_into_boot_error(BackendReconciler& reconciler, ClockReading& now) {
  reconciler.request(true, "public-button", "pressed", now);
  EXPECT_EQ(reconciler.tick(now), Command::kWake);
  const MonoTime woken = now.mono;
  reconciler.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now);
  EXPECT_EQ(reconciler.tick(now), Command::kObserve);
  reconciler.on_observed(CloudObservation{Kind::kRunning, "ACTIVE", "", "10.0.0.5:8080"}, now);
  EXPECT_EQ(reconciler.state(), S::kBooting);
  for (int i = 0; i < 6 && reconciler.state() == S::kBooting; ++i) {
    reconciler.on_health(false, "connection refused", now += 1s);
    if (reconciler.tick(now) == Command::kObserve)
      reconciler.on_observed(CloudObservation{Kind::kRunning, "ACTIVE", "", "10.0.0.5:8080"}, now);
  }
  EXPECT_EQ(reconciler.state(), S::kError);
  return woken;
}

// The issue's report: a boot slower than its patience ended in `error` with the VM ACTIVE and
// answering, and it stayed there. Health is still probed in `error` while the VM runs, and its
// passing returns the backend to `ready` with a plain transition from error to ready.
TEST_F(ReconcilerTest, ErrorWithTheVmRunningReturnsToReadyWhenHealthPasses) {
  start_asleep();
  wake_into_boot_error(reconciler_, now_);
  reconciler_.take_transitions();
  EXPECT_TRUE(reconciler_.wants_health_probe());
  reconciler_.on_health(true, "", now_ += 1s);
  EXPECT_EQ(reconciler_.state(), S::kError);  // two passes in a row are needed
  reconciler_.on_health(false, "503", now_ += 1s);
  reconciler_.on_health(true, "", now_ += 1s);
  EXPECT_EQ(reconciler_.state(), S::kError);
  reconciler_.on_health(true, "", now_ += 1s);
  EXPECT_EQ(reconciler_.state(), S::kReady);
  const auto transitions = reconciler_.take_transitions();
  ASSERT_EQ(transitions.size(), 1u);
  EXPECT_EQ(transitions[0].from, S::kError);
  EXPECT_EQ(transitions[0].to, S::kReady);
  EXPECT_EQ(transitions[0].event, BackendEvent::kHealthPassed);
  EXPECT_TRUE(reconciler_.last_error().empty());
  EXPECT_TRUE(reconciler_.idle_deadline());
}

// In `error` with the VM stopped (a wake refused: No valid host), nothing is probed.
TEST_F(ReconcilerTest, ErrorWithTheVmStoppedProbesNothingAndHasNoIdleDeadline) {
  refuse_a_wake(reconciler_);
  reconciler_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_FALSE(reconciler_.wants_health_probe());
  EXPECT_FALSE(reconciler_.idle_deadline());
}

// A backend in `error` whose VM runs is put to sleep one idle timeout after it was woken, when
// nothing used it: it never runs on unnoticed.
TEST_F(ReconcilerTest, ErrorWithTheVmRunningIsShelvedAfterItsIdleTimeout) {
  start_asleep();
  const MonoTime woken = wake_into_boot_error(reconciler_, now_);
  ASSERT_TRUE(reconciler_.idle_deadline());
  EXPECT_EQ(*reconciler_.idle_deadline(), woken + 60s);
  EXPECT_LE(reconciler_.next_tick_due(now_), woken + 60s);
  while (now_.mono + 1s < woken + 60s) {
    const auto command = tick(1s);
    ASSERT_NE(command, Command::kSleep);
    if (command == Command::kObserve) reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  }
  EXPECT_EQ(tick(1s), Command::kSleep);
  EXPECT_EQ(reconciler_.state(), S::kSleeping);
  EXPECT_EQ(reconciler_.desired().actor, "idle-monitor");
}

// Use counts: activity while in error moves the deadline like anywhere else.
TEST_F(ReconcilerTest, ActivityInErrorMovesTheIdleDeadline) {
  start_asleep();
  wake_into_boot_error(reconciler_, now_);
  reconciler_.on_activity((now_ + 30s).mono);
  EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 90s).mono);
}

// A backend that dropped back to `booting` (its health lost while ready, no wake under way) is
// shelved by the idle rule too.
TEST_F(ReconcilerTest, BootingAfterLostHealthIsShelvedWhenIdle) {
  BackendReconciler reconciler("gpu", patient_settings());
  accept_a_wake(reconciler);
  ASSERT_EQ(reconciler.tick(now_), Command::kObserve);
  reconciler.on_observed(seen(Kind::kRunning), now_);
  reconciler.on_health(true, "", now_);
  reconciler.on_health(true, "", now_);
  ASSERT_EQ(reconciler.state(), S::kReady);
  const MonoTime ready_at = now_.mono;
  for (int i = 0; i < 3; ++i) reconciler.on_health(false, "refused", now_ += 10s);
  ASSERT_EQ(reconciler.state(), S::kBooting);
  EXPECT_EQ(*reconciler.idle_deadline(), ready_at + 60s);
  now_ += 29s;
  ASSERT_EQ(now_.mono, ready_at + 59s);
  EXPECT_NE(reconciler.tick(now_), Command::kSleep);
  reconciler.on_observed(seen(Kind::kRunning), now_);
  now_ += 1s;
  EXPECT_EQ(reconciler.tick(now_), Command::kSleep);
}

// A wake under way is bounded by its own timeouts, not shelved by the idle rule halfway through a
// long boot; once ready, its idle timeout runs from then.
TEST_F(ReconcilerTest, AWakeInProgressIsNotCutShortByTheIdleRule) {
  BackendReconciler reconciler("gpu", patient_settings());
  accept_a_wake(reconciler);
  for (int i = 0; i < 100; ++i) {
    const auto command = reconciler.tick(now_ += 1s);
    ASSERT_NE(command, Command::kSleep) << i;
    if (command == Command::kObserve) reconciler.on_observed(seen(Kind::kRunning), now_);
    reconciler.on_health(false, "refused", now_);
  }
  ASSERT_EQ(reconciler.state(), S::kBooting);
  reconciler.on_health(true, "", now_);
  reconciler.on_health(true, "", now_);
  ASSERT_EQ(reconciler.state(), S::kReady);
  EXPECT_EQ(*reconciler.idle_deadline(), (now_ + 60s).mono);
}

// A VM found running at start with no activity on record, whose health never passes, is shelved
// one idle timeout after it was first seen.
TEST_F(ReconcilerTest, FoundRunningWithNoActivityCountsIdleFromFirstSight) {
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  const MonoTime first_seen = now_.mono;
  ASSERT_EQ(reconciler_.state(), S::kBooting);
  EXPECT_EQ(*reconciler_.idle_deadline(), first_seen + 60s);
  for (int i = 0; i < 6; ++i) {
    reconciler_.on_health(false, "refused", now_ += 1s);
    tick();
  }
  ASSERT_EQ(reconciler_.state(), S::kError);
  EXPECT_EQ(*reconciler_.idle_deadline(), first_seen + 60s);
}

// A wake persisted before a restart that nothing used since counts idle from the wake, not from
// an older activity (and not from the restart).
TEST_F(ReconcilerTest, RestoredWakeWithNoUseSinceCountsFromTheWake) {
  PersistedBackend persisted;
  persisted.desired = Desired{true, "public-button", "pressed", (now_ - 20s).wall};
  persisted.last_activity = (now_ - 2h).wall;
  persisted.state = S::kReady;
  reconciler_.restore(persisted, now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  EXPECT_EQ(*reconciler_.idle_deadline(), (now_ + 40s).mono);
}

// A sleep refused while the VM runs records shelve_failed with the cloud's reason, and is tried
// again after a back-off that doubles.
TEST_F(ReconcilerTest, RefusedSleepRecordsShelveFailedAndRetriesWithBackoff) {
  start_asleep();
  wake_to_ready();
  reconciler_.take_notices();
  reconciler_.request(false, "control", "shelve pressed", now_);
  MonoTime last_try = now_.mono;
  ASSERT_EQ(tick(), Command::kSleep);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    reconciler_.on_action_done(Command::kSleep, ActionOutcome::kRefused,
                               "Cannot 'shelve' instance while it is in vm_state error", now_);
    ASSERT_EQ(reconciler_.state(), S::kError);
    const auto notices = reconciler_.take_notices();
    ASSERT_EQ(notices.size(), 1u) << attempt;
    EXPECT_EQ(notices[0].action, "shelve_failed");
    EXPECT_NE(notices[0].detail.find("Cannot 'shelve' instance while it is in vm_state error"),
              std::string::npos);
    EXPECT_NE(notices[0].detail.find("the VM still runs"), std::string::npos);
    const auto delay = 120s * (1 << (attempt - 1));
    // Nothing but observations until the back-off has passed.
    const MonoTime due = last_try + delay;
    EXPECT_LE(reconciler_.next_tick_due(now_), due);
    while (now_.mono + 1s < due) {
      const auto command = tick(1s);
      ASSERT_NE(command, Command::kSleep) << attempt;
      if (command == Command::kObserve) reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
    }
    ASSERT_EQ(tick(std::chrono::duration_cast<std::chrono::milliseconds>(due - now_.mono)), Command::kSleep)
        << attempt;
    last_try = now_.mono;
  }
}

// A sleep the cloud accepted but never carried out (the VM still runs) is a shelve_failed too.
TEST_F(ReconcilerTest, SleepThatLeavesTheVmRunningRecordsShelveFailed) {
  start_asleep();
  wake_to_ready();
  reconciler_.take_notices();
  reconciler_.request(false, "control", "shelve pressed", now_);
  ASSERT_EQ(tick(), Command::kSleep);
  reconciler_.on_action_done(Command::kSleep, ActionOutcome::kAccepted, "", now_);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(tick(1s), Command::kObserve);
    reconciler_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  }
  EXPECT_EQ(reconciler_.state(), S::kError);
  const auto notices = reconciler_.take_notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].action, "shelve_failed");
}

// --- Dry run -----------------------------------------------------------------------------------

class DryRunTest : public ReconcilerTest {
 protected:
  static ReconcilerSettings dry_settings() {
    ReconcilerSettings settings = make_settings();
    settings.dry_run = true;
    return settings;
  }
  // Ticks `steps` seconds one at a time; no tick may wake or sleep; observations see `kind`.
  void run_for(int steps, Kind kind) {
    for (int i = 0; i < steps; ++i) {
      const auto command = dry_.tick(now_ += 1s);
      ASSERT_NE(command, Command::kWake);
      ASSERT_NE(command, Command::kSleep);
      if (command == Command::kObserve) dry_.on_observed(seen(kind, "ACTIVE"), now_);
    }
  }
  BackendReconciler dry_{"gpu", dry_settings()};
};

// A running VM in a dry run: the idle rule's decision and the visitor who would have woken it are
// recorded, in that order, and the cloud is never asked to act.
TEST_F(DryRunTest, RecordsWouldShelveAndWouldWakeWithoutActing) {
  ASSERT_EQ(dry_.tick(now_), Command::kObserve);
  dry_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  dry_.on_health(true, "", now_);
  dry_.on_health(true, "", now_);
  ASSERT_EQ(dry_.state(), S::kReady);
  const TimePoint ready_wall = now_.wall;
  EXPECT_TRUE(dry_.take_notices().empty());

  run_for(60, Kind::kRunning);
  auto notices = dry_.take_notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].action, "dry_run_would_shelve");
  EXPECT_EQ(notices[0].actor, "idle-monitor");
  EXPECT_EQ(notices[0].at, ready_wall + 60s);
  EXPECT_EQ(notices[0].detail, "no activity for 60 s (idle since " + format_rfc3339(ready_wall) + ")");
  EXPECT_EQ(dry_.state(), S::kReady);  // the VM runs on
  EXPECT_FALSE(dry_.desired().awake);  // what it would be

  run_for(30, Kind::kRunning);
  EXPECT_TRUE(dry_.take_notices().empty());  // one would-shelve, not one per tick
  dry_.on_activity(now_.mono);
  notices = dry_.take_notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].action, "dry_run_would_wake");
  EXPECT_EQ(notices[0].actor, "visitor");
  EXPECT_EQ(notices[0].at, now_.wall);
  EXPECT_TRUE(dry_.desired().awake);

  // Requests are recorded the same way.
  dry_.request(false, "control", "shelve pressed", now_);
  dry_.request(true, "api-request", "request to a sleeping backend", now_);
  notices = dry_.take_notices();
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(notices[0].action, "dry_run_would_shelve");
  EXPECT_EQ(notices[0].actor, "control");
  EXPECT_EQ(notices[1].action, "dry_run_would_wake");
  EXPECT_EQ(notices[1].actor, "api-request");
  run_for(30, Kind::kRunning);
  EXPECT_TRUE(dry_.take_transitions().size() <= 3u);
}

// A wake asked of a dry-run backend whose VM is really asleep is recorded and never sent.
TEST_F(DryRunTest, NeverWakesAStoppedVm) {
  ASSERT_EQ(dry_.tick(now_), Command::kObserve);
  dry_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_TRUE(dry_.request(true, "public-button", "pressed", now_));
  const auto notices = dry_.take_notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].action, "dry_run_would_wake");
  for (int i = 0; i < 100; ++i) {
    const auto command = dry_.tick(now_ += 1s);
    ASSERT_NE(command, Command::kWake);
    if (command == Command::kObserve) dry_.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  }
  EXPECT_EQ(dry_.state(), S::kAsleep);
}

// After a restart a dry run keeps what it persisted: a VM it would have shelved stays "asleep"
// for it, rather than being taken as woken by the restart.
TEST_F(DryRunTest, RestartKeepsTheWouldBeState) {
  PersistedBackend persisted;
  persisted.desired = Desired{false, "idle-monitor", "no activity for 60 s", (now_ - 10s).wall};
  persisted.state = S::kReady;
  dry_.restore(persisted, now_);
  ASSERT_EQ(dry_.tick(now_), Command::kObserve);
  dry_.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  EXPECT_FALSE(dry_.desired().awake);
  EXPECT_TRUE(dry_.take_notices().empty());
}

}  // namespace
}  // namespace unshelver::core

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;

TEST(ReconcilerMirror, AFollowerShowsTheLeadersSnapshotWithoutRecordingTransitions) {
  ReconcilerSettings settings;
  settings.idle_timeout = 60s;
  const ClockReading now{MonoTime{} + 1'000'000s, TimePoint{} + 1'800'000'000s};
  BackendReconciler leader("gpu", settings);
  ASSERT_EQ(leader.tick(now), Command::kObserve);
  leader.on_observed(CloudObservation{CloudObservation::Kind::kRunning, "ACTIVE", "", "10.0.0.5:8080"}, now);
  leader.on_health(true, "", now);
  ASSERT_EQ(leader.state(), BackendState::kReady);
  leader.on_activity(now.mono - 5s);
  const BackendSnapshot snapshot = leader.snapshot();
  EXPECT_EQ(snapshot.persisted.state, BackendState::kReady);
  EXPECT_EQ(snapshot.upstream, "10.0.0.5:8080");
  EXPECT_EQ(snapshot.cloud_status, "ACTIVE");

  const ClockReading later{now.mono + 2s, now.wall + 2s};
  BackendReconciler follower("gpu", settings);
  follower.mirror(snapshot, later);
  EXPECT_EQ(follower.state(), BackendState::kReady);
  EXPECT_TRUE(follower.desired().awake);
  EXPECT_EQ(follower.upstream(), "10.0.0.5:8080");
  ASSERT_TRUE(follower.last_observation());
  EXPECT_EQ(follower.last_observation()->status, "ACTIVE");
  EXPECT_EQ(follower.last_activity_wall(later), snapshot.persisted.last_activity);
  // The idle deadline the follower shows is the leader's: one idle timeout after the last use.
  EXPECT_EQ(follower.idle_deadline_wall(later), leader.idle_deadline_wall(now));
  EXPECT_TRUE(follower.take_transitions().empty());
  EXPECT_FALSE(follower.in_flight());
}

// Issue 20, ready the moment the backend answers: the cloud is polled fast while a change is
// expected, health is probed while waking too, fast until ready and slowly after.
class ReadinessTest : public ReconcilerTest {
 protected:
  // The defaults' timings: a 10 s poll, a 60 s steady observation, 0.5 s probes until ready
  // (and an idle timeout long enough to stay out of the way).
  static ReconcilerSettings default_timings() {
    ReconcilerSettings settings = make_settings();
    settings.poll_interval = 10s;
    settings.steady_observe_interval = 60s;
    settings.fast_poll_start = 1s;
    settings.probe_interval_until_ready = 500ms;
    settings.probe_interval_ready = 10s;
    settings.health_successes_needed = 1;
    settings.idle_timeout = 1h;
    return settings;
  }

  // What the next observation waits for: ticks until it is due and returns the wait.
  std::chrono::milliseconds wait_for_observation(BackendReconciler& reconciler) {
    const MonoTime from = now_.mono;
    const MonoTime due = reconciler.next_tick_due(now_);
    if (due > now_.mono) {
      now_ += std::chrono::duration_cast<std::chrono::milliseconds>(due - now_.mono) - 1ms;
      EXPECT_EQ(reconciler.tick(now_), std::nullopt) << "observed before it was due";
      now_ += 1ms;
    }
    EXPECT_EQ(reconciler.tick(now_), Command::kObserve);
    return std::chrono::duration_cast<std::chrono::milliseconds>(now_.mono - from);
  }

  // From asleep to a wake the cloud accepted and reports starting (the first observation after).
  void wake_to_starting(BackendReconciler& reconciler, const std::string& upstream = "10.0.0.5:8080") {
    ASSERT_EQ(reconciler.tick(now_), Command::kObserve);
    reconciler.on_observed(CloudObservation{Kind::kStopped, "SHELVED_OFFLOADED", "", upstream}, now_);
    reconciler.request(true, "public-button", "pressed", now_);
    ASSERT_EQ(reconciler.tick(now_), Command::kWake);
    reconciler.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
    ASSERT_EQ(reconciler.tick(now_), Command::kObserve);
    reconciler.on_observed(CloudObservation{Kind::kStarting, "SHELVED_OFFLOADED (unshelving)", "", upstream},
                           now_);
    ASSERT_EQ(reconciler.state(), S::kWaking);
    reconciler.take_transitions();
  }
};

TEST_F(ReadinessTest, TheCloudIsPolledFastAfterAChangeThenBacksOffToThePollInterval) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler);
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 6; ++i) {
    waits.push_back(wait_for_observation(reconciler));
    reconciler.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (unshelving)"), now_);
  }
  const std::vector<std::chrono::milliseconds> expected{1s, 2s, 4s, 8s, 10s, 10s};
  EXPECT_EQ(waits, expected);
  // A new state starts the fast phase afresh: the VM runs, health is now awaited.
  EXPECT_EQ(wait_for_observation(reconciler), 10s);
  reconciler.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  ASSERT_EQ(reconciler.state(), S::kBooting);
  EXPECT_EQ(wait_for_observation(reconciler), 1s);
}

TEST_F(ReadinessTest, NothingExpectedToChangeIsObservedAtTheSteadyInterval) {
  BackendReconciler reconciler("gpu", default_timings());
  ASSERT_EQ(reconciler.tick(now_), Command::kObserve);
  reconciler.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_EQ(wait_for_observation(reconciler), 60s);
  reconciler.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  EXPECT_EQ(wait_for_observation(reconciler), 60s);
}

TEST_F(ReadinessTest, AServiceThatStopsAnsweringHasTheCloudAskedWithinTheFirstFastPoll) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler);
  reconciler.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  reconciler.on_health(true, "", now_);
  ASSERT_EQ(reconciler.state(), S::kReady);
  wait_for_observation(reconciler);
  reconciler.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  // Nothing should change while ready: the next observation is the steady one, a minute away.
  EXPECT_EQ(reconciler.next_tick_due(now_), now_.mono + 60s);
  now_ += 5s;
  for (int i = 0; i < 3; ++i) reconciler.on_health(false, "refused", now_);
  ASSERT_EQ(reconciler.state(), S::kBooting);
  // The guest may have powered itself off: the cloud is asked within a second, not in 55 s.
  EXPECT_EQ(wait_for_observation(reconciler), 1s);
}

TEST_F(ReadinessTest, AnAnsweredActionStartsTheFastPollsAfresh) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler);
  reconciler.on_health(true, "", now_);
  ASSERT_EQ(reconciler.state(), S::kReady);
  reconciler.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  ASSERT_TRUE(reconciler.request(false, "admin", "done", now_));
  ASSERT_EQ(reconciler.tick(now_), Command::kSleep);
  reconciler.on_action_done(Command::kSleep, ActionOutcome::kAccepted, "", now_);
  EXPECT_EQ(wait_for_observation(reconciler), 0ms);
  reconciler.on_observed(seen(Kind::kStopping, "ACTIVE (shelving)"), now_);
  EXPECT_EQ(wait_for_observation(reconciler), 1s);
  reconciler.on_observed(seen(Kind::kStopping, "ACTIVE (shelving)"), now_);
  EXPECT_EQ(wait_for_observation(reconciler), 2s);
}

TEST_F(ReadinessTest, AShortConfiguredPollIntervalIsNeverSlowedDown) {
  ReconcilerSettings settings = default_timings();
  settings.poll_interval = 100ms;
  settings.fast_poll_start = 100ms;
  BackendReconciler reconciler("gpu", settings);
  wake_to_starting(reconciler);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(wait_for_observation(reconciler), 100ms);
    reconciler.on_observed(seen(Kind::kStarting), now_);
  }
}

TEST_F(ReadinessTest, HealthIsProbedWhileWakingOnceAnAddressIsKnown) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler);
  EXPECT_TRUE(reconciler.wants_health_probe());
  EXPECT_EQ(reconciler.health_probe_interval(), 500ms);
}

TEST_F(ReadinessTest, WithoutAnyAddressAWakeWaitsForTheCloud) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler, "");
  EXPECT_FALSE(reconciler.wants_health_probe());
  // Once the cloud reports the VM running with its address, booting probes it.
  reconciler.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  EXPECT_EQ(reconciler.state(), S::kBooting);
  EXPECT_TRUE(reconciler.wants_health_probe());
}

TEST_F(ReadinessTest, AConfiguredUpstreamIsProbedWhileWakingBeforeTheCloudNamesAnAddress) {
  ReconcilerSettings settings = default_timings();
  settings.upstream_configured = true;
  BackendReconciler reconciler("gpu", settings);
  wake_to_starting(reconciler, "");
  EXPECT_TRUE(reconciler.wants_health_probe());
}

TEST_F(ReadinessTest, APassingProbeWhileWakingMakesTheBackendReady) {
  ReconcilerSettings settings = default_timings();
  settings.health_successes_needed = 2;
  BackendReconciler reconciler("gpu", settings);
  wake_to_starting(reconciler);
  reconciler.on_health(true, "", now_ += 500ms);
  EXPECT_EQ(reconciler.state(), S::kWaking);  // two passes in a row are needed
  reconciler.on_health(true, "", now_ += 500ms);
  EXPECT_EQ(reconciler.state(), S::kReady);
  const std::vector<Transition> transitions = reconciler.take_transitions();
  ASSERT_EQ(transitions.size(), 1u);
  EXPECT_EQ(transitions[0].from, S::kWaking);
  EXPECT_EQ(transitions[0].to, S::kReady);
  EXPECT_EQ(transitions[0].event, BackendEvent::kHealthPassed);
  EXPECT_EQ(
      transitions[0].detail,
      "health check passed before the cloud reported the VM running (cloud: SHELVED_OFFLOADED (unshelving))");
  EXPECT_TRUE(reconciler.idle_deadline());
  EXPECT_EQ(reconciler.health_probe_interval(), 10s);
  EXPECT_EQ(reconciler.illegal_events(), 0u);
}

TEST_F(ReadinessTest, AFailingProbeWhileWakingChangesNothing) {
  ReconcilerSettings settings = default_timings();
  settings.health_successes_needed = 2;
  BackendReconciler reconciler("gpu", settings);
  wake_to_starting(reconciler);
  const MonoTime due = reconciler.next_tick_due(now_);
  reconciler.on_health(true, "", now_);
  reconciler.on_health(false, "connection refused", now_);
  reconciler.on_health(true, "", now_);  // the pass before the failure no longer counts
  EXPECT_EQ(reconciler.state(), S::kWaking);
  EXPECT_TRUE(reconciler.take_transitions().empty());
  EXPECT_EQ(reconciler.next_tick_due(now_), due);
  EXPECT_TRUE(reconciler.last_error().empty());
}

TEST_F(ReadinessTest, TheCloudCatchingUpAfterAnEarlyReadyConfirmsIt) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler);
  reconciler.on_health(true, "", now_);
  ASSERT_EQ(reconciler.state(), S::kReady);
  reconciler.take_transitions();
  // Still polled as during a change (the fast polls start afresh at ready), and "starting"
  // confirms ready.
  EXPECT_EQ(wait_for_observation(reconciler), 1s);
  reconciler.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (unshelving)"), now_);
  EXPECT_EQ(wait_for_observation(reconciler), 1s);
  reconciler.on_observed(seen(Kind::kStarting, "SHELVED_OFFLOADED (unshelving)"), now_);
  EXPECT_EQ(wait_for_observation(reconciler), 2s);
  reconciler.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  EXPECT_EQ(reconciler.state(), S::kReady);
  EXPECT_TRUE(reconciler.take_transitions().empty());
  EXPECT_EQ(reconciler.illegal_events(), 0u);
  // Confirmed: nothing should change any more.
  EXPECT_EQ(wait_for_observation(reconciler), 60s);
}

TEST_F(ReadinessTest, AStaleStoppedViewAfterAnEarlyReadyIsToleratedLikeWhileWaking) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler);
  reconciler.on_health(true, "", now_);
  ASSERT_EQ(reconciler.state(), S::kReady);
  reconciler.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_ += 1s);
  reconciler.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_ += 1s);
  EXPECT_EQ(reconciler.state(), S::kReady);
  EXPECT_TRUE(reconciler.desired().awake);
  reconciler.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_ += 1s);
  EXPECT_EQ(reconciler.state(), S::kError);
  EXPECT_NE(reconciler.last_error().find("still reports the VM stopped"), std::string::npos);
}

// The service answered, then the guest powered itself off before a poll saw it running: the
// cloud shows a stop other than the sleep the wake came from, so the VM ran; it is started again
// rather than taken for a wake the cloud never carried out.
TEST_F(ReadinessTest, AnUnsettledStopAfterAnEarlyReadyIsStartedAgain) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler);
  reconciler.on_health(true, "", now_);
  ASSERT_EQ(reconciler.state(), S::kReady);
  CloudObservation shutoff = seen(Kind::kStopped, "SHUTOFF");
  shutoff.settled_asleep = false;
  reconciler.on_observed(shutoff, now_ += 1s);
  EXPECT_EQ(reconciler.state(), S::kAsleep);
  EXPECT_TRUE(reconciler.desired().awake);
  EXPECT_TRUE(reconciler.last_error().empty());
  EXPECT_EQ(reconciler.tick(now_), Command::kWake);
}

TEST_F(ReadinessTest, ProbesAreFastUntilReadyAndSlowOnceReady) {
  BackendReconciler reconciler("gpu", default_timings());
  wake_to_starting(reconciler);
  EXPECT_EQ(reconciler.health_probe_interval(), 500ms);
  reconciler.on_observed(seen(Kind::kRunning, "ACTIVE"), now_);
  ASSERT_EQ(reconciler.state(), S::kBooting);
  EXPECT_EQ(reconciler.health_probe_interval(), 500ms);
  reconciler.on_health(true, "", now_);
  ASSERT_EQ(reconciler.state(), S::kReady);
  EXPECT_EQ(reconciler.health_probe_interval(), 10s);
  // Health lost: booting again, probed fast until it serves again.
  for (int i = 0; i < 3; ++i) reconciler.on_health(false, "503", now_ += 10s);
  ASSERT_EQ(reconciler.state(), S::kBooting);
  EXPECT_EQ(reconciler.health_probe_interval(), 500ms);
}

TEST_F(ReadinessTest, AProbeResultFromAnEarlierPhaseIsDropped) {
  BackendReconciler reconciler("gpu", default_timings());
  ASSERT_EQ(reconciler.tick(now_), Command::kObserve);
  reconciler.on_observed(seen(Kind::kStopped, "SHELVED_OFFLOADED"), now_);
  const std::uint64_t asleep = reconciler.health_generation();
  reconciler.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(reconciler.tick(now_), Command::kWake);
  const std::uint64_t waking = reconciler.health_generation();
  EXPECT_GT(waking, asleep);
  // A probe of an earlier phase (a service that answered before the last sleep) is not taken.
  EXPECT_FALSE(reconciler.on_health_of(asleep, true, "", now_));
  EXPECT_EQ(reconciler.state(), S::kWaking);
  EXPECT_TRUE(reconciler.on_health_of(waking, true, "", now_));
  EXPECT_EQ(reconciler.state(), S::kReady);
  // Ready is a new phase: a late result of the waking probes no longer counts.
  EXPECT_FALSE(reconciler.on_health_of(waking, false, "refused", now_));
  EXPECT_FALSE(reconciler.on_health_of(waking, false, "refused", now_));
  EXPECT_FALSE(reconciler.on_health_of(waking, false, "refused", now_));
  EXPECT_EQ(reconciler.state(), S::kReady);
}

TEST(ReconcilerSettingsFromConfig, TheDefaultsProbeFastUntilReadyAndPollFastAfterAChange) {
  BackendConfig backend;
  ASSERT_EQ(backend.health.interval, 10s);
  AppSettings app;
  ASSERT_EQ(app.poll_interval, 10s);
  ReconcilerSettings settings = ReconcilerSettings::from_config(backend, app);
  EXPECT_EQ(settings.poll_interval, 10s);
  EXPECT_EQ(settings.steady_observe_interval, 60s);
  EXPECT_EQ(settings.fast_poll_start, 1s);
  EXPECT_EQ(settings.probe_interval_until_ready, 500ms);
  EXPECT_EQ(settings.probe_interval_ready, 10s);
  EXPECT_FALSE(settings.upstream_configured);
  // Shorter configured intervals win: the fast phase never slows anything down.
  backend.health.interval = 200ms;
  backend.upstream = "10.0.0.5:8080";
  app.poll_interval = 300ms;
  app.settled_poll_interval = 5s;
  settings = ReconcilerSettings::from_config(backend, app);
  EXPECT_EQ(settings.steady_observe_interval, 5s);
  EXPECT_EQ(settings.fast_poll_start, 300ms);
  EXPECT_EQ(settings.probe_interval_until_ready, 200ms);
  EXPECT_EQ(settings.probe_interval_ready, 200ms);
  EXPECT_TRUE(settings.upstream_configured);
}

TEST(ReconcilerMirror, AStateSinceFromTheFutureCountsAsNow) {
  const ClockReading now{MonoTime{} + 1'000'000s, TimePoint{} + 1'800'000'000s};
  BackendSnapshot snapshot;
  snapshot.persisted.state = BackendState::kAsleep;
  snapshot.state_since = now.wall + 1h;
  BackendReconciler follower("gpu", ReconcilerSettings{});
  follower.mirror(snapshot, now);
  EXPECT_EQ(follower.state_since(), now.mono);
  EXPECT_FALSE(follower.last_observation());
}

}  // namespace
}  // namespace unshelver::core
