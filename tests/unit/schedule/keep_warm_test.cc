// Awake holds in the reconciler, the pre-warm rule and BackendSchedule, with a fake clock.
#include "schedule/keep_warm.h"

#include <gtest/gtest.h>

#include "unit/schedule/schedule_test_support.h"

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;
using S = BackendState;
using Kind = CloudObservation::Kind;
using testing::utc;
using testing::zone;

TimePoint wall(SysSeconds at) {
  return TimePoint(at.time_since_epoch());
}

class HoldTest : public ::testing::Test {
 protected:
  HoldTest() : reconciler_("gpu", settings()) {
    // Monday 6 July 2026, 07:00 UTC.
    now_ = ClockReading{MonoTime(1000h), wall(utc(2026, 7, 6, 7))};
  }

  static ReconcilerSettings settings() {
    ReconcilerSettings settings;
    settings.poll_interval = 1s;
    settings.steady_observe_interval = 30s;
    settings.idle_timeout = 10min;
    return settings;
  }

  std::optional<Command> tick(std::chrono::milliseconds step = 0ms) {
    now_ += step;
    return reconciler_.tick(now_);
  }

  // From start-up through a wake to ready, answering every command at once.
  void wake_to_ready(const std::string& actor = "public-button") {
    if (reconciler_.state() == S::kUnknown) {
      ASSERT_EQ(tick(), Command::kObserve);
      reconciler_.on_observed({Kind::kStopped, "SHELVED_OFFLOADED", "", "10.0.0.5:8080"}, now_);
    }
    reconciler_.request(true, actor, "test", now_);
    ASSERT_EQ(tick(), Command::kWake);
    reconciler_.on_action_done(Command::kWake, ActionOutcome::kAccepted, "", now_);
    ASSERT_EQ(tick(), Command::kObserve);
    reconciler_.on_observed({Kind::kRunning, "ACTIVE", "", "10.0.0.5:8080"}, now_);
    reconciler_.on_health(true, "", now_);
    ASSERT_EQ(reconciler_.state(), S::kReady);
  }

  // Runs ticks every `step` until `until`, answering observations; returns the first sleep, if any.
  std::optional<TimePoint> first_sleep(std::chrono::seconds until, std::chrono::seconds step = 30s) {
    const TimePoint end = now_.wall + until;
    while (now_.wall < end) {
      const std::optional<Command> command = tick(step);
      if (command == Command::kSleep) return now_.wall;
      if (command == Command::kObserve) {
        reconciler_.on_observed({Kind::kRunning, "ACTIVE", "", "10.0.0.5:8080"}, now_);
      }
    }
    return std::nullopt;
  }

  BackendReconciler reconciler_;
  ClockReading now_;
};

TEST_F(HoldTest, AWindowHoldKeepsTheBackendPastItsIdleTimeoutAndItSleepsAtTheEndIfUnused) {
  wake_to_ready();
  const TimePoint window_end = now_.wall + 1h;
  reconciler_.hold_awake({HoldReason::kWindow, "keep-warm", "window", {}, window_end}, now_);
  EXPECT_EQ(awake_reason(reconciler_, now_), "window");
  EXPECT_EQ(reconciler_.idle_deadline_wall(now_), window_end);
  // Unused for the whole hour: shelved at the window's end, not 10 minutes after the wake.
  const std::optional<TimePoint> slept = first_sleep(2h);
  ASSERT_TRUE(slept);
  EXPECT_GE(*slept, window_end);
  EXPECT_LT(*slept, window_end + 1min);
  EXPECT_EQ(reconciler_.desired().actor, "idle-monitor");
}

TEST_F(HoldTest, AfterAWindowAUseShortlyBeforeItsEndCountsItsFullIdleTimeout) {
  wake_to_ready();
  const TimePoint window_end = now_.wall + 1h;
  reconciler_.hold_awake({HoldReason::kWindow, "keep-warm", "window", {}, window_end}, now_);
  ASSERT_FALSE(first_sleep(55min));
  reconciler_.on_activity(now_.mono);  // a visitor, 5 minutes before the end
  const TimePoint used_at = now_.wall;
  const std::optional<TimePoint> slept = first_sleep(1h);
  ASSERT_TRUE(slept);
  EXPECT_GE(*slept, used_at + 10min);
  EXPECT_LT(*slept, used_at + 11min);
}

TEST_F(HoldTest, APinHasNoIdleDeadlineUntilItIsLifted) {
  wake_to_ready("control");
  reconciler_.hold_awake({HoldReason::kPin, "control", "pinned from the control page", {}, std::nullopt},
                         now_);
  EXPECT_EQ(awake_reason(reconciler_, now_), "admin-pin");
  EXPECT_FALSE(reconciler_.idle_deadline());
  EXPECT_FALSE(first_sleep(24h, 10min));
  reconciler_.release_hold(HoldReason::kPin);
  EXPECT_EQ(awake_reason(reconciler_, now_), "admin-wake");
  // Unused for a day: the idle rule shelves it at once.
  EXPECT_EQ(tick(), Command::kSleep);
}

TEST_F(HoldTest, ASleepRequestEndsEveryHold) {
  wake_to_ready();
  reconciler_.hold_awake({HoldReason::kPin, "control", "pinned", {}, std::nullopt}, now_);
  reconciler_.request(false, "control", "shelve from the control page", now_);
  EXPECT_TRUE(reconciler_.holds().empty());
}

TEST_F(HoldTest, APrewarmHoldEndsAtTheFirstUseAfterReady) {
  reconciler_.hold_awake({HoldReason::kPrewarm, "pre-warm", "expected 08:00", {}, now_.wall + 2h}, now_);
  wake_to_ready("pre-warm");
  // Becoming ready is recorded as activity, but it is not a use.
  ASSERT_EQ(reconciler_.holds().size(), 1U);
  EXPECT_EQ(awake_reason(reconciler_, now_), "pre-warm");
  now_ += 20min;
  reconciler_.on_activity(now_.mono);
  EXPECT_TRUE(reconciler_.holds().empty());
  EXPECT_EQ(awake_reason(reconciler_, now_), "pre-warm");  // who woke it, from the desired state
}

TEST_F(HoldTest, HoldsSurviveARestart) {
  wake_to_ready();
  reconciler_.hold_awake({HoldReason::kPin, "control", "pinned at 127.0.0.1", {}, std::nullopt}, now_);
  const PersistedBackend persisted = reconciler_.persisted();
  ASSERT_EQ(persisted.holds.size(), 1U);
  BackendReconciler restarted("gpu", settings());
  restarted.restore(persisted, now_ + 1h);
  ASSERT_EQ(restarted.holds().size(), 1U);
  EXPECT_EQ(restarted.holds()[0].detail, "pinned at 127.0.0.1");
  EXPECT_EQ(restarted.holds()[0].since, persisted.holds[0].since);
}

PrewarmSettings prewarm_settings() {
  PrewarmSettings settings;
  settings.enabled = true;
  settings.time_zone = "Europe/Zurich";
  settings.percentile = 10;
  settings.lookback_weeks = 4;
  settings.min_samples = 2;
  settings.max_hold = 1h;
  settings.max_per_week = 3h;
  return settings;
}

TEST(PrewarmPlanner, LearnsALowPercentileOfTheWeekdaysFirstUses) {
  PrewarmPlanner planner(prewarm_settings(), zone("Europe/Zurich"));
  // Four Mondays in June 2026 (Zurich at UTC+2): first uses at 08:20, 08:05, 09:00, 08:40 local;
  // later uses the same day do not count.
  planner.add_use(utc(2026, 6, 8, 6, 20));
  planner.add_use(utc(2026, 6, 8, 5, 50) + 24h * 7 + 15min);  // 15 June 08:05
  planner.add_use(utc(2026, 6, 15, 12, 0));
  planner.add_use(utc(2026, 6, 22, 7, 0));
  planner.add_use(utc(2026, 6, 29, 6, 40));
  // A Tuesday: not a sample for Mondays.
  planner.add_use(utc(2026, 6, 30, 4, 0));
  const auto monday =
      std::chrono::floor<std::chrono::days>(zone("Europe/Zurich").to_local(utc(2026, 7, 6, 12)));
  EXPECT_EQ(planner.expected_first_use(monday), utc(2026, 7, 6, 6, 5));

  // Sunday 5 July 20:00 UTC: the plan is Monday's, waking the lead ahead.
  auto plan = planner.plan(utc(2026, 7, 5, 20), 10min);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->wake_at, utc(2026, 7, 6, 5, 55));
  EXPECT_EQ(plan->hold_until, utc(2026, 7, 6, 7, 5));
  // Once Monday has seen a use, Monday is not pre-warmed.
  planner.add_use(utc(2026, 7, 6, 5, 0));
  EXPECT_FALSE(planner.plan(utc(2026, 7, 6, 5, 30), 10min));
}

TEST(PrewarmPlanner, NeedsEnoughSamplesAndBeingEnabled) {
  PrewarmPlanner planner(prewarm_settings(), zone("Europe/Zurich"));
  planner.add_use(utc(2026, 6, 29, 6, 40));
  EXPECT_FALSE(planner.plan(utc(2026, 7, 5, 20), 10min));
  planner.add_use(utc(2026, 6, 22, 6, 40));
  EXPECT_TRUE(planner.plan(utc(2026, 7, 5, 20), 10min));
  PrewarmSettings off = prewarm_settings();
  off.enabled = false;
  PrewarmPlanner disabled(off, zone("Europe/Zurich"));
  disabled.add_use(utc(2026, 6, 29, 6, 40));
  disabled.add_use(utc(2026, 6, 22, 6, 40));
  EXPECT_FALSE(disabled.plan(utc(2026, 7, 5, 20), 10min));
}

TEST(PrewarmBudget, CapsTheHoursPerWeekAndSurvivesARestart) {
  PrewarmBudget budget(3h);
  EXPECT_TRUE(budget.allows(utc(2026, 7, 6, 6), 3h));
  budget.charge(utc(2026, 7, 6, 7), 2h);                     // Monday
  EXPECT_FALSE(budget.allows(utc(2026, 7, 12, 23), 90min));  // Sunday, the same week
  EXPECT_TRUE(budget.allows(utc(2026, 7, 12, 23), 1h));
  EXPECT_TRUE(budget.allows(utc(2026, 7, 13, 0), 3h));  // the next Monday
  PrewarmBudget restored(3h);
  restored.restore(budget.to_json());
  EXPECT_EQ(restored.used(utc(2026, 7, 8, 0)), 2h);
  EXPECT_EQ(budget.to_json()["weeks"]["2026-07-06"], 7200);
}

TEST_F(HoldTest, BackendScheduleWakesForAWindowOnceAndHoldsItToTheEnd) {
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed({Kind::kStopped, "SHELVED_OFFLOADED", "", ""}, now_);
  KeepWarmSchedule windows;
  windows.add(*parse_keep_warm_window("mon-fri 08:00-18:00 Europe/Zurich"), zone("Europe/Zurich"));
  BackendSchedule schedule(std::move(windows), std::nullopt, 10min);
  // 07:00 UTC is 09:00 in Zurich: the window is open; measured wakes take 3 minutes.
  KeepWarmStep step = schedule.step(std::chrono::floor<std::chrono::seconds>(now_.wall), reconciler_, 180.0);
  EXPECT_TRUE(step.wake);
  EXPECT_EQ(step.actor, "keep-warm");
  ASSERT_EQ(step.place.size(), 1U);
  EXPECT_EQ(step.place[0].until, wall(utc(2026, 7, 6, 16)));
  reconciler_.hold_awake(step.place[0], now_);
  // Shelved by an admin during the window: not woken again until the next opening.
  step = schedule.step(std::chrono::floor<std::chrono::seconds>(now_.wall) + 1min, reconciler_, 180.0);
  EXPECT_FALSE(step.wake);
  EXPECT_TRUE(step.place.empty());
  // The next morning, the wake comes three minutes (the measured wake) before 08:00 local.
  step = schedule.step(utc(2026, 7, 7, 5, 56), reconciler_, 180.0);
  EXPECT_FALSE(step.wake);
  step = schedule.step(utc(2026, 7, 7, 5, 57), reconciler_, 180.0);
  EXPECT_TRUE(step.wake);
}

TEST_F(HoldTest, BackendSchedulePrewarmsWithinTheCapAndChargesWhatItHeld) {
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed({Kind::kStopped, "SHELVED_OFFLOADED", "", ""}, now_);
  PrewarmPlanner planner(prewarm_settings(), zone("Europe/Zurich"));
  planner.add_use(utc(2026, 6, 29, 6, 30));  // Mondays at 08:30 local
  planner.add_use(utc(2026, 6, 22, 6, 30));
  BackendSchedule schedule(KeepWarmSchedule{}, std::move(planner), 10min);
  EXPECT_FALSE(schedule.step(utc(2026, 7, 6, 6, 19), reconciler_, std::nullopt).wake);
  KeepWarmStep step = schedule.step(utc(2026, 7, 6, 6, 20), reconciler_, std::nullopt);
  ASSERT_TRUE(step.wake);
  EXPECT_EQ(step.actor, "pre-warm");
  ASSERT_EQ(step.place.size(), 1U);
  EXPECT_EQ(step.place[0].reason, HoldReason::kPrewarm);
  EXPECT_EQ(step.place[0].until, wall(utc(2026, 7, 6, 7, 30)));
  reconciler_.hold_awake(step.place[0], now_);
  // Used at 06:45 UTC: the hold ends, and 25 minutes are charged.
  reconciler_.release_hold(HoldReason::kPrewarm);
  schedule.add_use(utc(2026, 7, 6, 6, 45));
  step = schedule.step(utc(2026, 7, 6, 6, 45), reconciler_, std::nullopt);
  EXPECT_EQ(step.prewarm_charged, 25min);
  EXPECT_EQ(schedule.budget().used(utc(2026, 7, 6, 8)), 25min);
}

TEST_F(HoldTest, APrewarmUnderWayAcrossARestartIsChargedFromItsStartAndNotRepeated) {
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed({Kind::kStopped, "SHELVED_OFFLOADED", "", ""}, now_);
  auto planner = [] {
    PrewarmPlanner planner(prewarm_settings(), zone("Europe/Zurich"));
    planner.add_use(utc(2026, 6, 29, 6, 30));
    planner.add_use(utc(2026, 6, 22, 6, 30));
    return planner;
  };
  // The pre-warm began at 06:20 in the process before; its hold came back from state.json, and
  // the schedule of the new process starts afresh.
  BackendSchedule again(KeepWarmSchedule{}, planner(), 10min);
  reconciler_.request(true, "control", "wake", now_);
  reconciler_.hold_awake(AwakeHold{HoldReason::kPrewarm, "pre-warm", "expected", wall(utc(2026, 7, 6, 6, 20)),
                                   wall(utc(2026, 7, 6, 7, 30))},
                         now_);
  KeepWarmStep step = again.step(utc(2026, 7, 6, 6, 41), reconciler_, std::nullopt);
  EXPECT_FALSE(step.wake);  // that day's pre-warm is the one under way
  reconciler_.release_hold(HoldReason::kPrewarm);
  step = again.step(utc(2026, 7, 6, 6, 50), reconciler_, std::nullopt);
  EXPECT_EQ(step.prewarm_charged, 30min);
}

TEST_F(HoldTest, BackendScheduleSkipsAPrewarmThatTheCapCannotPayFor) {
  ASSERT_EQ(tick(), Command::kObserve);
  reconciler_.on_observed({Kind::kStopped, "SHELVED_OFFLOADED", "", ""}, now_);
  PrewarmPlanner planner(prewarm_settings(), zone("Europe/Zurich"));
  planner.add_use(utc(2026, 6, 29, 6, 30));
  planner.add_use(utc(2026, 6, 22, 6, 30));
  BackendSchedule schedule(KeepWarmSchedule{}, std::move(planner), 10min);
  schedule.budget().charge(utc(2026, 7, 6, 0), 2h);  // 1 h left of 3; the hold would take 1 h 10 min
  EXPECT_FALSE(schedule.step(utc(2026, 7, 6, 6, 20), reconciler_, std::nullopt).wake);
}

}  // namespace
}  // namespace unshelver::core
