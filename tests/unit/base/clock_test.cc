// Converting between the monotonic and the wall clock (base/clock.h).
#include "base/clock.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;

const ClockReading kNow{MonoTime{} + 1'000'000s, TimePoint{} + 1'800'000'000s};

TEST(ClockReading, AWallTimeCountsByItsAge) {
  EXPECT_EQ(kNow.mono_of(kNow.wall - 5s), kNow.mono - 5s);
  EXPECT_EQ(kNow.mono_of(kNow.wall), kNow.mono);
}

// An access-log line stamped after now (the clock was set back since Caddy wrote it) is activity
// now, not hours from now.
TEST(ClockReading, AWallTimeFromTheFutureCountsAsNow) {
  EXPECT_EQ(kNow.mono_of(kNow.wall + 2h), kNow.mono);
}

TEST(ClockReading, AnAncientWallTimeIsBoundedAndStaysInRange) {
  EXPECT_EQ(kNow.mono_of(TimePoint::min()), kNow.mono - ClockReading::kLongestAge);
  EXPECT_EQ(kNow.mono_of(TimePoint{}), kNow.mono - ClockReading::kLongestAge);
}

TEST(ClockReading, AMonotonicTimeIsShownAtTheCurrentOffset) {
  EXPECT_EQ(kNow.wall_of(kNow.mono + 60s), kNow.wall + 60s);
  ClockReading jumped = kNow;
  jumped.wall += 2h;
  EXPECT_EQ(jumped.wall_of(kNow.mono + 60s), kNow.wall + 2h + 60s);
}

TEST(ClockReading, TimePassingMovesBothClocks) {
  const ClockReading later = kNow + 90s;
  EXPECT_EQ(later.mono - kNow.mono, 90s);
  EXPECT_EQ(later.wall - kNow.wall, 90s);
  EXPECT_EQ((later - 90s).mono, kNow.mono);
}

}  // namespace
}  // namespace unshelver::core
