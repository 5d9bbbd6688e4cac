#include "schedule/time_zone.h"

#include <gtest/gtest.h>

#include "unit/schedule/schedule_test_support.h"

namespace unshelver::core {
namespace {

using testing::local;
using testing::utc;
using testing::zone;
constexpr std::int32_t kHour = 3600;

TEST(TimeZone, ZurichChangesToSummerTimeAtOneUtcOnTheLastSundayOfMarch) {
  const TimeZone zurich = zone("Europe/Zurich");
  EXPECT_EQ(zurich.offset_at(utc(2026, 3, 29, 0, 59, 59)), 1 * kHour);
  EXPECT_EQ(zurich.offset_at(utc(2026, 3, 29, 1, 0, 0)), 2 * kHour);
  EXPECT_EQ(zurich.offset_at(utc(2026, 10, 25, 0, 59, 59)), 2 * kHour);
  EXPECT_EQ(zurich.offset_at(utc(2026, 10, 25, 1, 0, 0)), 1 * kHour);
}

TEST(TimeZone, NewYorkFallsBackAtSixUtcOnTheFirstSundayOfNovember) {
  const TimeZone new_york = zone("America/New_York");
  EXPECT_EQ(new_york.offset_at(utc(2026, 11, 1, 5, 59, 59)), -4 * kHour);
  EXPECT_EQ(new_york.offset_at(utc(2026, 11, 1, 6, 0, 0)), -5 * kHour);
  EXPECT_EQ(new_york.offset_at(utc(2026, 3, 8, 7, 0, 0)), -4 * kHour);
  EXPECT_EQ(new_york.offset_at(utc(2026, 3, 8, 6, 59, 59)), -5 * kHour);
}

TEST(TimeZone, SydneysSummerSpansTheNewYear) {
  const TimeZone sydney = zone("Australia/Sydney");
  EXPECT_EQ(sydney.offset_at(utc(2026, 1, 15, 12)), 11 * kHour);
  EXPECT_EQ(sydney.offset_at(utc(2026, 4, 4, 15, 59, 59)), 11 * kHour);
  EXPECT_EQ(sydney.offset_at(utc(2026, 4, 4, 16, 0, 0)), 10 * kHour);
  EXPECT_EQ(sydney.offset_at(utc(2026, 7, 1, 0)), 10 * kHour);
  EXPECT_EQ(sydney.offset_at(utc(2026, 10, 3, 15, 59, 59)), 10 * kHour);
  EXPECT_EQ(sydney.offset_at(utc(2026, 10, 3, 16, 0, 0)), 11 * kHour);
}

TEST(TimeZone, FarFutureTimesFollowTheFootersRuleAndPastOnesTheTransitions) {
  EXPECT_EQ(zone("Europe/Zurich").offset_at(utc(2090, 7, 1, 12)), 2 * kHour);
  // Switzerland had no summer time before 1981.
  EXPECT_EQ(zone("Europe/Zurich").offset_at(utc(1975, 7, 1, 12)), 1 * kHour);
  EXPECT_EQ(zone("America/New_York").offset_at(utc(1990, 7, 1, 12)), -4 * kHour);
}

TEST(TimeZone, LocalTimesConvertBothWays) {
  const TimeZone zurich = zone("Europe/Zurich");
  EXPECT_EQ(zurich.to_local(utc(2026, 7, 1, 6)), local(2026, 7, 1, 8));
  EXPECT_EQ(zurich.to_utc(local(2026, 7, 1, 8), Ambiguous::kEarlier), utc(2026, 7, 1, 6));
  EXPECT_EQ(zurich.to_utc(local(2026, 1, 5, 8), Ambiguous::kLater), utc(2026, 1, 5, 7));
}

TEST(TimeZone, ALocalTimeInTheSpringGapIsTheMomentOfTheJump) {
  // 02:30 does not exist in Zurich on 29 March 2026: the clock goes from 02:00 to 03:00.
  const TimeZone zurich = zone("Europe/Zurich");
  EXPECT_EQ(zurich.to_utc(local(2026, 3, 29, 2, 30), Ambiguous::kEarlier), utc(2026, 3, 29, 1));
  EXPECT_EQ(zurich.to_utc(local(2026, 3, 29, 2, 30), Ambiguous::kLater), utc(2026, 3, 29, 1));
  // Sydney's clock jumps from 02:00 to 03:00 on 4 October 2026.
  EXPECT_EQ(zone("Australia/Sydney").to_utc(local(2026, 10, 4, 2, 15), Ambiguous::kEarlier),
            utc(2026, 10, 3, 16));
}

TEST(TimeZone, ALocalTimeThatExistsTwiceIsTheEarlierOrLaterOneAsAsked) {
  const TimeZone zurich = zone("Europe/Zurich");
  EXPECT_EQ(zurich.to_utc(local(2026, 10, 25, 2, 30), Ambiguous::kEarlier), utc(2026, 10, 25, 0, 30));
  EXPECT_EQ(zurich.to_utc(local(2026, 10, 25, 2, 30), Ambiguous::kLater), utc(2026, 10, 25, 1, 30));
  const TimeZone new_york = zone("America/New_York");
  EXPECT_EQ(new_york.to_utc(local(2026, 11, 1, 1, 30), Ambiguous::kEarlier), utc(2026, 11, 1, 5, 30));
  EXPECT_EQ(new_york.to_utc(local(2026, 11, 1, 1, 30), Ambiguous::kLater), utc(2026, 11, 1, 6, 30));
}

TEST(PosixZoneRule, ParsesOffsetsNamesAndRules) {
  auto rule = parse_posix_zone_rule("<+0330>-3:30");
  ASSERT_TRUE(rule.ok());
  EXPECT_EQ(rule->std_offset, 3 * kHour + 1800);
  EXPECT_FALSE(rule->has_dst);
  auto sydney = parse_posix_zone_rule("AEST-10AEDT,M10.1.0,M4.1.0/3");
  ASSERT_TRUE(sydney.ok());
  EXPECT_EQ(sydney->dst_offset, 11 * kHour);
  EXPECT_EQ(sydney->end.time, 3 * kHour);
  auto julian = parse_posix_zone_rule("XXX3YYY,J60/2,300/-1");
  ASSERT_TRUE(julian.ok());
  EXPECT_EQ(julian->end.time, -kHour);
  for (const char* bad :
       {"", "A1", "CET", "CET-1CEST,M13.1.0,M10.5.0", "CET-1CEST,M3.5.0", "CET-1CEST,M3.5.0,M10.5.0x"}) {
    EXPECT_FALSE(parse_posix_zone_rule(bad).ok()) << bad;
  }
}

TEST(TimeZone, RefusesWhatIsNotATzifFile) {
  EXPECT_FALSE(TimeZone::parse("x", "").ok());
  EXPECT_FALSE(TimeZone::parse("x", "TZif2 but far too short").ok());
  EXPECT_FALSE(TimeZone::parse("x", std::string(200, 'x')).ok());
}

}  // namespace
}  // namespace unshelver::core
