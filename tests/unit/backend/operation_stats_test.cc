#include "backend/operation_stats.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

using S = BackendState;
using E = BackendEvent;
using StatKind = OperationStats::Kind;

TimePoint at(int seconds) {
  return TimePoint{} + std::chrono::seconds(1'700'000'000 + seconds);
}

Transition step(S from, S to, E event, int seconds, std::string actor = "reconciler") {
  return Transition{
      from, to, event, std::move(actor), "", at(seconds), MonoTime{} + std::chrono::seconds(1'000 + seconds)};
}

std::uint64_t count(const OperationStats& stats, StatKind kind, const std::string& actor,
                    const std::string& outcome) {
  auto found = stats.outcomes().find({kind, actor, outcome});
  return found == stats.outcomes().end() ? 0 : found->second;
}

TEST(OperationStats, AWakeThatReachesReadyIsCountedUnderItsActorWithItsDuration) {
  OperationStats stats;
  stats.observe(step(S::kAsleep, S::kWaking, E::kWakeRequested, 0, "public-button"));
  EXPECT_EQ(stats.running(), StatKind::kWake);
  stats.observe(step(S::kWaking, S::kBooting, E::kCloudRunning, 40));
  stats.observe(step(S::kBooting, S::kReady, E::kHealthPassed, 75));
  EXPECT_EQ(count(stats, StatKind::kWake, "public-button", "ready"), 1u);
  EXPECT_EQ(stats.running(), std::nullopt);
  EXPECT_EQ(stats.wake_durations().count(), 1u);
  EXPECT_DOUBLE_EQ(stats.wake_durations().sum(), 75);
  // 75 s falls in the 120 s bucket, not in the 60 s one.
  const auto counts = stats.wake_durations().cumulative_counts();
  const auto& bounds = stats.wake_durations().upper_bounds();
  for (std::size_t i = 0; i < bounds.size(); ++i)
    EXPECT_EQ(counts[i], bounds[i] >= 75 ? 1u : 0u) << bounds[i];
}

// Issue 15 §7: a wake's duration is elapsed time; the wall clock set 2 h back meanwhile neither
// makes it negative nor, set ahead, two hours long.
TEST(OperationStats, AWakeDurationIgnoresAJumpOfTheWallClock) {
  for (const auto jump : {std::chrono::hours(2), -std::chrono::hours(2)}) {
    OperationStats stats;
    stats.observe(step(S::kAsleep, S::kWaking, E::kWakeRequested, 0));
    Transition ready = step(S::kBooting, S::kReady, E::kHealthPassed, 75);
    ready.at += jump;
    stats.observe(ready);
    EXPECT_DOUBLE_EQ(stats.wake_durations().sum(), 75);
  }
}

TEST(OperationStats, RepeatedWakeRequestsAreOneOperation) {
  OperationStats stats;
  stats.observe(step(S::kAsleep, S::kWaking, E::kWakeRequested, 0, "control"));
  stats.observe(step(S::kWaking, S::kWaking, E::kWakeRequested, 5, "public-button"));
  stats.observe(step(S::kBooting, S::kReady, E::kHealthPassed, 30));
  EXPECT_EQ(count(stats, StatKind::kWake, "control", "ready"), 1u);
  EXPECT_EQ(stats.outcomes().size(), 1u);
}

TEST(OperationStats, FailuresAndCancellationsEndTheOperation) {
  OperationStats stats;
  stats.observe(step(S::kAsleep, S::kWaking, E::kWakeRequested, 0, "wake-on-request"));
  stats.observe(step(S::kWaking, S::kError, E::kFailed, 10));
  EXPECT_EQ(count(stats, StatKind::kWake, "wake-on-request", "failed"), 1u);

  stats.observe(step(S::kError, S::kWaking, E::kWakeRequested, 20, "control"));
  stats.observe(step(S::kWaking, S::kSleeping, E::kSleepRequested, 25, "manual-shelve"));
  EXPECT_EQ(count(stats, StatKind::kWake, "control", "cancelled"), 1u);
  EXPECT_EQ(stats.running(), StatKind::kShelve);
  stats.observe(step(S::kSleeping, S::kAsleep, E::kCloudStopped, 60));
  EXPECT_EQ(count(stats, StatKind::kShelve, "manual-shelve", "asleep"), 1u);
  EXPECT_EQ(stats.wake_durations().count(), 0u);  // only wakes that reached ready are timed
}

TEST(OperationStats, ObservationsWithoutARequestCountNothing) {
  OperationStats stats;
  stats.observe(step(S::kUnknown, S::kReady, E::kHealthPassed, 0));
  stats.observe(step(S::kReady, S::kBooting, E::kHealthLost, 5));
  stats.observe(step(S::kBooting, S::kAsleep, E::kCloudStopped, 9));
  EXPECT_TRUE(stats.outcomes().empty());
  EXPECT_EQ(stats.running(), std::nullopt);
}

}  // namespace
}  // namespace unshelver::core
