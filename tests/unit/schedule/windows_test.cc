#include "schedule/windows.h"

#include <gtest/gtest.h>

#include "unit/schedule/schedule_test_support.h"

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;
using testing::utc;
using testing::zone;

KeepWarmSchedule schedule_of(const std::string& text) {
  auto window = parse_keep_warm_window(text);
  if (!window) throw std::runtime_error(window.error().message);
  KeepWarmSchedule schedule;
  schedule.add(*window, window->time_zone == "UTC" ? TimeZone::utc() : zone(window->time_zone));
  return schedule;
}

TEST(KeepWarmWindow, Parses) {
  auto window = parse_keep_warm_window("mon-fri 08:00-18:30 Europe/Zurich");
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(window->days, 0b0011111);
  EXPECT_EQ(window->from, 8h);
  EXPECT_EQ(window->until, 18h + 30min);
  EXPECT_EQ(window->time_zone, "Europe/Zurich");
  EXPECT_EQ(parse_keep_warm_window("fri-mon 22:00-02:00")->days, 0b1110001);
  EXPECT_EQ(parse_keep_warm_window("sat,sun 00:00-24:00")->time_zone, "UTC");
  EXPECT_EQ(parse_keep_warm_window("daily 09:00-10:00")->days, 0x7f);
  for (const char* bad : {"", "mon", "mon 08:00", "xyz 08:00-09:00", "mon 8:00-9:00", "mon 08:00-08:00",
                          "mon 24:00-08:00", "mon 08:60-09:00", "mon 08:00-09:00 ../etc/passwd",
                          "mon 08:00-09:00 /etc/localtime", "mon 08:00-09:00 Europe/Zurich extra"}) {
    EXPECT_FALSE(keep_warm_window_problem(bad).empty()) << bad;
  }
}

TEST(KeepWarmSchedule, OpenDuringTheWindowAndWakingTheLeadAhead) {
  // Wednesday 1 July 2026; Zurich is at UTC+2: 08:00-18:00 local is 06:00-16:00 UTC.
  const KeepWarmSchedule schedule = schedule_of("mon-fri 08:00-18:00 Europe/Zurich");
  KeepWarmDecision before = schedule.decide(utc(2026, 7, 1, 5, 49), 10min);
  EXPECT_FALSE(before.open);
  EXPECT_FALSE(before.wake_now);
  ASSERT_TRUE(before.next);
  EXPECT_EQ(before.next->start, utc(2026, 7, 1, 6));

  KeepWarmDecision lead = schedule.decide(utc(2026, 7, 1, 5, 50), 10min);
  EXPECT_FALSE(lead.open);
  EXPECT_TRUE(lead.wake_now);
  ASSERT_TRUE(lead.hold);
  EXPECT_EQ(lead.hold->end, utc(2026, 7, 1, 16));

  KeepWarmDecision during = schedule.decide(utc(2026, 7, 1, 12), 10min);
  ASSERT_TRUE(during.open);
  EXPECT_EQ(during.open->end, utc(2026, 7, 1, 16));
  EXPECT_EQ(during.next->start, utc(2026, 7, 2, 6));

  KeepWarmDecision after = schedule.decide(utc(2026, 7, 1, 16), 10min);
  EXPECT_FALSE(after.open);
  EXPECT_FALSE(after.wake_now);
  // Friday evening: the next window is on Monday.
  EXPECT_EQ(schedule.decide(utc(2026, 7, 3, 17), 10min).next->start, utc(2026, 7, 6, 6));
}

TEST(KeepWarmSchedule, AWindowAcrossMidnightRunsIntoTheNextDay) {
  // Friday 3 July 2026 22:00 until Saturday 02:00, UTC.
  const KeepWarmSchedule schedule = schedule_of("fri 22:00-02:00");
  EXPECT_FALSE(schedule.decide(utc(2026, 7, 3, 21, 59), 0s).open);
  EXPECT_EQ(schedule.decide(utc(2026, 7, 3, 23), 0s).open->end, utc(2026, 7, 4, 2));
  // Saturday 01:00 is still Friday's window, although Saturday is not one of its days.
  const KeepWarmDecision saturday = schedule.decide(utc(2026, 7, 4, 1), 0s);
  ASSERT_TRUE(saturday.open);
  EXPECT_EQ(saturday.open->start, utc(2026, 7, 3, 22));
  EXPECT_FALSE(schedule.decide(utc(2026, 7, 4, 2), 0s).open);
  EXPECT_EQ(schedule.decide(utc(2026, 7, 4, 2), 0s).next->start, utc(2026, 7, 10, 22));
}

TEST(KeepWarmSchedule, WindowsKeepTheirLocalHoursAcrossTheDstChanges) {
  const KeepWarmSchedule schedule = schedule_of("daily 08:00-18:00 Europe/Zurich");
  // Saturday 28 March 2026 is winter time (07:00 UTC), Sunday 29 March summer time (06:00 UTC).
  EXPECT_EQ(schedule.decide(utc(2026, 3, 28, 0), 0s).next->start, utc(2026, 3, 28, 7));
  EXPECT_EQ(schedule.decide(utc(2026, 3, 28, 20), 0s).next->start, utc(2026, 3, 29, 6));
  // And back on Sunday 25 October.
  EXPECT_EQ(schedule.decide(utc(2026, 10, 24, 20), 0s).next->start, utc(2026, 10, 25, 7));
}

TEST(KeepWarmSchedule, AStartInTheSpringGapOpensAtTheJumpAndAnEndThatExistsTwiceIsTheLaterOne) {
  // Sunday 29 March 2026 in Zurich: 02:30 does not exist; the window opens at 03:00 CEST.
  const KeepWarmSchedule spring = schedule_of("sun 02:30-05:00 Europe/Zurich");
  const KeepWarmDecision opened = spring.decide(utc(2026, 3, 29, 1, 30), 0s);
  ASSERT_TRUE(opened.open);
  EXPECT_EQ(opened.open->start, utc(2026, 3, 29, 1));
  EXPECT_EQ(opened.open->end, utc(2026, 3, 29, 3));
  // Sunday 25 October 2026: 02:30 happens twice; the window ends at the second one (01:30 UTC),
  // so it lasts 2 h 30 min of real time rather than 1 h 30 min.
  const KeepWarmSchedule autumn = schedule_of("sun 01:00-02:30 Europe/Zurich");
  const KeepWarmDecision held = autumn.decide(utc(2026, 10, 25, 0), 0s);
  ASSERT_TRUE(held.open);
  EXPECT_EQ(held.open->start, utc(2026, 10, 24, 23));
  EXPECT_EQ(held.open->end, utc(2026, 10, 25, 1, 30));
}

TEST(KeepWarmSchedule, OverlappingWindowsMerge) {
  KeepWarmSchedule schedule;
  schedule.add(*parse_keep_warm_window("mon 08:00-12:00"), TimeZone::utc());
  schedule.add(*parse_keep_warm_window("mon 12:00-14:00"), TimeZone::utc());
  // Monday 6 July 2026.
  EXPECT_EQ(schedule.decide(utc(2026, 7, 6, 9), 0s).open->end, utc(2026, 7, 6, 14));
}

}  // namespace
}  // namespace unshelver::core
