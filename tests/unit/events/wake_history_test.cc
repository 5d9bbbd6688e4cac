// Tests of the wake history (events/wake_history.h): awake and asleep periods from the event
// records, completed wakes and the estimate (the median of the last ones), and the odd inputs a
// real log holds: failed and abandoned wakes, a restart in the middle of a wake, records out of
// order, unknown actions; and the bounds (the window, the caps).
#include "events/wake_history.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/time_format.h"

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;

const TimePoint kStart = parse_rfc3339("2026-12-01T10:00:00Z").value_or(TimePoint{});

EventRecord event(std::chrono::seconds offset, std::string action, std::string from, std::string to,
                  std::string backend = "gpu") {
  static std::uint64_t seq = 0;
  EventRecord record;
  record.seq = ++seq;
  record.at = kStart + offset;
  record.backend = std::move(backend);
  record.action = std::move(action);
  record.from = std::move(from);
  record.to = std::move(to);
  return record;
}

// A whole wake: requested at `offset`, ready `took` later.
std::vector<EventRecord> wake(std::chrono::seconds offset, std::chrono::seconds took) {
  return {event(offset, "unshelve_requested", "asleep", "waking"),
          event(offset + 2s, "cloud_running", "waking", "booting"),
          event(offset + took, "unshelve_complete", "booting", "ready")};
}

std::vector<EventRecord> sleep(std::chrono::seconds offset) {
  return {event(offset, "shelve_requested", "ready", "sleeping"),
          event(offset + 5s, "shelve_complete", "sleeping", "asleep")};
}

void add_all(WakeHistory& history, const std::vector<EventRecord>& records) {
  for (const EventRecord& record : records) history.add(record);
}

TEST(WakeHistoryTest, NoEstimateBeforeTheFirstCompletedWake) {
  WakeHistory history;
  EXPECT_FALSE(history.estimate_seconds("gpu").has_value());
  history.add(event(0s, "observed_asleep", "unknown", "asleep"));
  history.add(event(10s, "unshelve_requested", "asleep", "waking"));
  EXPECT_FALSE(history.estimate_seconds("gpu").has_value());
  const BackendHistory shown = history.history("gpu", kStart + 20s);
  EXPECT_TRUE(shown.wakes.empty());
  EXPECT_FALSE(shown.estimate_seconds.has_value());
}

TEST(WakeHistoryTest, PeriodsFollowTheStatesAndMergeTheStepsOfAWake) {
  WakeHistory history;
  history.add(event(0s, "observed_asleep", "unknown", "asleep"));
  add_all(history, wake(100s, 60s));
  add_all(history, sleep(1000s));
  const BackendHistory shown = history.history("gpu", kStart + 2000s);
  ASSERT_EQ(shown.periods.size(), 3u);
  EXPECT_EQ(shown.periods[0].state, Presence::kAsleep);
  EXPECT_EQ(shown.periods[0].from, kStart);
  EXPECT_EQ(shown.periods[0].to, kStart + 100s);
  // waking, booting, ready and sleeping are one awake period, until asleep.
  EXPECT_EQ(shown.periods[1].state, Presence::kAwake);
  EXPECT_EQ(shown.periods[1].from, kStart + 100s);
  EXPECT_EQ(shown.periods[1].to, kStart + 1005s);
  // The current period ends now.
  EXPECT_EQ(shown.periods[2].state, Presence::kAsleep);
  EXPECT_EQ(shown.periods[2].to, kStart + 2000s);
  ASSERT_EQ(shown.wakes.size(), 1u);
  EXPECT_EQ(shown.wakes[0].requested_at, kStart + 100s);
  EXPECT_EQ(shown.wakes[0].took, 60s);
  EXPECT_EQ(shown.estimate_seconds, 60.0);
}

TEST(WakeHistoryTest, TheEstimateIsTheMedianOfTheLastFiveWakes) {
  WakeHistory history;
  // 300 s, then 10, 20, 30, 40, 50: the first falls out of the last five.
  const std::chrono::seconds durations[] = {300s, 10s, 50s, 20s, 40s, 30s};
  std::chrono::seconds offset = 0s;
  for (auto took : durations) {
    add_all(history, wake(offset, took));
    add_all(history, sleep(offset + 600s));
    offset += 1000s;
  }
  EXPECT_EQ(history.estimate_seconds("gpu"), 30.0);
  EXPECT_EQ(history.history("gpu", kStart + offset).wakes.size(), 6u);
  // An even number of wakes: the mean of the middle two.
  WakeHistory two;
  add_all(two, wake(0s, 10s));
  add_all(two, sleep(100s));
  add_all(two, wake(200s, 25s));
  EXPECT_EQ(two.estimate_seconds("gpu"), 17.5);
}

TEST(WakeHistoryTest, FailedAndAbandonedWakesAreNotCounted) {
  WakeHistory history;
  // The health check never passed.
  history.add(event(0s, "unshelve_requested", "asleep", "waking"));
  history.add(event(5s, "cloud_running", "waking", "booting"));
  history.add(event(600s, "unshelve_incomplete", "booting", "error"));
  // The cloud refused; then an admin shelved it in the middle of the next one.
  history.add(event(700s, "unshelve_requested", "error", "waking"));
  history.add(event(701s, "workflow_failed", "waking", "error"));
  history.add(event(800s, "unshelve_requested", "error", "waking"));
  add_all(history, sleep(810s));
  // A late unshelve_complete after any of these is not a wake either.
  history.add(event(900s, "unshelve_complete", "booting", "ready"));
  EXPECT_FALSE(history.estimate_seconds("gpu").has_value());
  EXPECT_TRUE(history.history("gpu", kStart + 1000s).wakes.empty());
  // The error between is a gap, not a period.
  const BackendHistory shown = history.history("gpu", kStart + 1000s);
  for (const PresencePeriod& period : shown.periods) {
    EXPECT_FALSE(period.from < kStart + 700s && period.to > kStart + 600s) << format_rfc3339(period.from);
  }
}

TEST(WakeHistoryTest, AWakeThatNeverCompletedIsReplacedByTheNextRequest) {
  WakeHistory history;
  history.add(event(0s, "unshelve_requested", "asleep", "waking"));
  add_all(history, wake(5000s, 40s));
  EXPECT_EQ(history.estimate_seconds("gpu"), 40.0);
}

TEST(WakeHistoryTest, ARestartInTheMiddleOfAWakeAbandonsIt) {
  WakeHistory history;
  history.add(event(0s, "unshelve_requested", "asleep", "waking"));
  // The daemon stopped here, and a new one first observed the VM booting 10 minutes later.
  history.add(event(600s, "observed_booting", "unknown", "booting"));
  history.add(event(620s, "unshelve_complete", "booting", "ready"));
  EXPECT_FALSE(history.estimate_seconds("gpu").has_value());
  // The machine was awake all along, as far as the log knows.
  const BackendHistory shown = history.history("gpu", kStart + 700s);
  ASSERT_EQ(shown.periods.size(), 1u);
  EXPECT_EQ(shown.periods[0].state, Presence::kAwake);
  EXPECT_EQ(shown.periods[0].from, kStart);
}

TEST(WakeHistoryTest, SeedSortsRecordsOutOfOrder) {
  std::vector<EventRecord> records = wake(100s, 30s);
  const std::vector<EventRecord> later = sleep(500s);
  records.insert(records.begin(), later.begin(), later.end());
  std::swap(records[2], records[4]);
  WakeHistory history;
  history.seed(records);
  EXPECT_EQ(history.estimate_seconds("gpu"), 30.0);
  const BackendHistory shown = history.history("gpu", kStart + 1000s);
  ASSERT_EQ(shown.periods.size(), 2u);
  EXPECT_EQ(shown.periods[0].state, Presence::kAwake);
  EXPECT_EQ(shown.periods[1].state, Presence::kAsleep);
}

TEST(WakeHistoryTest, ALiveRecordOlderThanTheNewestCountsAtTheNewestTime) {
  WakeHistory history;
  history.add(event(100s, "unshelve_requested", "asleep", "waking"));
  // The wall clock stepped back a minute.
  history.add(event(40s, "unshelve_complete", "booting", "ready"));
  EXPECT_EQ(history.estimate_seconds("gpu"), 0.0);
  for (const PresencePeriod& period : history.history("gpu", kStart + 200s).periods) {
    EXPECT_LE(period.from, period.to);
  }
}

TEST(WakeHistoryTest, UnknownActionsAndOtherBackendsChangeNothing) {
  WakeHistory history;
  add_all(history, wake(0s, 20s));
  EventRecord login = event(30s, "login", "", "", "");
  EventRecord strange = event(40s, "frobnicated", "", "");
  EventRecord future_state = event(50s, "cloud_hibernating", "ready", "hibernating", "other");
  history.add(login);
  history.add(strange);
  history.add(future_state);
  const BackendHistory shown = history.history("gpu", kStart + 100s);
  ASSERT_EQ(shown.periods.size(), 1u);
  EXPECT_EQ(shown.periods[0].from, kStart);
  EXPECT_EQ(shown.periods[0].to, kStart + 100s);
  EXPECT_EQ(history.estimate_seconds("gpu"), 20.0);
  EXPECT_FALSE(history.estimate_seconds("other").has_value());
  EXPECT_TRUE(history.history("nobody", kStart).periods.empty());
}

TEST(WakeHistoryTest, PythonUnshelverLinesCountByAction) {
  WakeHistory history;
  history.add(event(0s, "unshelve_requested", "", ""));
  history.add(event(90s, "unshelve_complete", "", ""));
  history.add(event(500s, "shelve_complete", "", ""));
  EXPECT_EQ(history.estimate_seconds("gpu"), 90.0);
  const BackendHistory shown = history.history("gpu", kStart + 600s);
  ASSERT_EQ(shown.periods.size(), 2u);
  EXPECT_EQ(shown.periods[1].state, Presence::kAsleep);
}

TEST(WakeHistoryTest, KeepsSevenDaysAndTheEstimateBeyondThem) {
  WakeHistory history;
  add_all(history, wake(0s, 45s));
  add_all(history, sleep(3600s));
  const TimePoint now = kStart + std::chrono::hours(24 * 10);
  const BackendHistory shown = history.history("gpu", now);
  // The asleep period is clipped to the window; the wake ten days ago is outside it.
  ASSERT_EQ(shown.periods.size(), 1u);
  EXPECT_EQ(shown.periods[0].state, Presence::kAsleep);
  EXPECT_EQ(shown.periods[0].from, now - std::chrono::hours(24 * 7));
  EXPECT_TRUE(shown.wakes.empty());
  EXPECT_EQ(shown.estimate_seconds, 45.0);
}

TEST(WakeHistoryTest, CapsThePeriodsAndWakesKept) {
  WakeHistorySettings settings;
  settings.max_periods = 10;
  settings.max_wakes = 4;
  WakeHistory history(settings);
  for (int i = 0; i < 50; ++i) {
    const std::chrono::seconds offset = i * 1000s;
    add_all(history, wake(offset, 30s));
    add_all(history, sleep(offset + 500s));
  }
  const BackendHistory shown = history.history("gpu", kStart + 50'000s);
  // The closed ones, and the current one.
  EXPECT_EQ(shown.periods.size(), 11u);
  ASSERT_EQ(shown.wakes.size(), 4u);
  EXPECT_EQ(shown.wakes.back().requested_at, kStart + 49'000s);
  // The defaults the daemon uses.
  EXPECT_EQ(WakeHistorySettings{}.window, std::chrono::hours(24 * 7));
  EXPECT_EQ(WakeHistorySettings{}.max_periods, 500u);
  EXPECT_EQ(WakeHistorySettings{}.max_wakes, 200u);
  EXPECT_EQ(WakeHistorySettings{}.estimate_wakes, 5u);
}

TEST(WakeHistoryTest, JsonAndSummary) {
  WakeHistory history;
  history.add(event(0s, "observed_asleep", "unknown", "asleep"));
  add_all(history, wake(3600s, 125s));
  const BackendHistory shown = history.history("gpu", kStart + 7200s);
  const nlohmann::json json = history_json(shown);
  ASSERT_EQ(json["periods"].size(), 2u);
  EXPECT_EQ(json["periods"][0]["state"], "asleep");
  EXPECT_EQ(json["periods"][0]["from"], "2026-12-01T10:00:00.000000Z");
  EXPECT_EQ(json["periods"][1]["state"], "awake");
  EXPECT_EQ(json["periods"][1]["to"], "2026-12-01T12:00:00.000000Z");
  ASSERT_EQ(json["wakes"].size(), 1u);
  EXPECT_EQ(json["wakes"][0]["requested_at"], "2026-12-01T11:00:00.000000Z");
  EXPECT_EQ(json["wakes"][0]["seconds"], 125.0);
  EXPECT_EQ(history_summary(shown, std::chrono::hours(24 * 7)),
            "awake 1 h in the last 7 days, 1 wake, a wake takes about 2 min 5 s");
  EXPECT_EQ(history_summary(BackendHistory{}, std::chrono::hours(24 * 7)),
            "awake 0 s in the last 7 days, 0 wakes");
}

}  // namespace
}  // namespace unshelver::core
