#include "ha/lease_clock.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;

MonoTime at(std::chrono::milliseconds offset) {
  return MonoTime{} + 1000s + offset;
}

TEST(LeaseClock, HoldsNothingBeforeTheFirstGrant) {
  const LeaseClock clock(10s);
  EXPECT_FALSE(clock.held(at(0ms)));
  EXPECT_FALSE(clock.deadline());
}

TEST(LeaseClock, StopsActingASafetyMarginBeforeTheTtlCountedFromTheSend) {
  LeaseClock clock(10s);
  clock.renewed(at(0ms), 10s);
  EXPECT_EQ(clock.safety(), 2000ms);
  EXPECT_TRUE(clock.held(at(7999ms)));
  // etcd counts the TTL from when it received the keep-alive, which is after we sent it: our
  // deadline (send + TTL - margin) always comes first.
  EXPECT_FALSE(clock.held(at(8000ms)));
}

TEST(LeaseClock, MarginIsAFifthOfLongTtls) {
  const LeaseClock clock(60s);
  EXPECT_EQ(clock.safety(), 12000ms);
  EXPECT_EQ(clock.renewal_interval(), 20000ms);
}

TEST(LeaseClock, RenewalMovesTheDeadlineOnAndALateAnswerNeverMovesItBack) {
  LeaseClock clock(10s);
  clock.renewed(at(0ms), 10s);
  clock.renewed(at(3000ms), 10s);
  EXPECT_TRUE(clock.held(at(10'999ms)));
  EXPECT_FALSE(clock.held(at(11'000ms)));
  // An older keep-alive answered late proves less than the newer one already did.
  clock.renewed(at(1000ms), 10s);
  EXPECT_EQ(*clock.deadline(), at(11'000ms));
}

TEST(LeaseClock, ARemainingTtlShorterThanGrantedCountsAsItIs) {
  LeaseClock clock(10s);
  clock.renewed(at(0ms), 3s);  // etcd says only 3 s are left: act for 1 s at most
  EXPECT_TRUE(clock.held(at(999ms)));
  EXPECT_FALSE(clock.held(at(1000ms)));
}

TEST(LeaseClock, ALostLeaseHoldsNothingUntilTheNextGrant) {
  LeaseClock clock(10s);
  clock.renewed(at(0ms), 10s);
  clock.lost();
  EXPECT_FALSE(clock.held(at(1ms)));
  clock.renewed(at(5000ms), 10s);
  EXPECT_TRUE(clock.held(at(5001ms)));
}

}  // namespace
}  // namespace unshelver::core
