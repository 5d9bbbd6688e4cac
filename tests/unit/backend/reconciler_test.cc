// The reconciler's decisions, walked with a fake clock: no loop, no provider, no sockets.
#include "backend/reconciler.h"

#include <gtest/gtest.h>

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
    settings.health_attempts = 5;
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

  // From start-up to an error: the first wake is refused.
  void refuse_a_wake(BackendReconciler& reconciler) {
    ASSERT_EQ(reconciler.tick(now_), Command::kObserve);
    reconciler.on_observed(seen(Kind::kStopped), now_);
    reconciler.request(true, "public-button", "pressed", now_);
    ASSERT_EQ(reconciler.tick(now_), Command::kWake);
    reconciler.on_action_done(Command::kWake, ActionOutcome::kRefused, "No valid host was found.", now_);
    ASSERT_EQ(reconciler.state(), S::kError);
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

TEST_F(ReconcilerTest, HealthAttemptsExhaustedBecomeError) {
  start_asleep();
  reconciler_.request(true, "public-button", "pressed", now_);
  ASSERT_EQ(tick(), Command::kWake);
  reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed(seen(Kind::kRunning), now_);
  for (int i = 0; i < 4; ++i) reconciler_.on_health(false, "connection refused", now_ += 1s);
  EXPECT_EQ(reconciler_.state(), S::kBooting);
  reconciler_.on_health(false, "connection refused", now_ += 1s);
  EXPECT_EQ(reconciler_.state(), S::kError);
  EXPECT_NE(reconciler_.last_error().find("after 5 attempts: connection refused"), std::string::npos);
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

TEST_F(ReconcilerTest, HealthResultsOutsideBootingAndReadyAreDropped) {
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

}  // namespace
}  // namespace unshelver::core
