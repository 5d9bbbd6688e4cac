#include "web/rate_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>

namespace unshelver::core {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

const std::chrono::steady_clock::time_point kT0 = std::chrono::steady_clock::time_point{} + hours(1);

// Takes `count` tokens of `key` at `now`, expecting each to be allowed.
void drain(RateLimiter& limiter, std::string_view key, int count, std::chrono::steady_clock::time_point now) {
  for (int i = 0; i < count; ++i) {
    const RateLimiter::Decision decision = limiter.take(key, now);
    ASSERT_TRUE(decision.allowed) << key << " take " << i;
    ASSERT_EQ(decision.retry_after, milliseconds(0));
  }
}

TEST(RateLimiter, BurstThenRefusalWithRetryAfter) {
  RateLimiter limiter(RateLimit{5, seconds(30)});
  drain(limiter, "10.0.0.1", 5, kT0);

  RateLimiter::Decision refused = limiter.take("10.0.0.1", kT0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(30));
  EXPECT_EQ(limiter.refused(), 1u);

  refused = limiter.take("10.0.0.1", kT0 + seconds(10));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(20));
  EXPECT_EQ(limiter.refused(), 2u);
}

TEST(RateLimiter, RefillsOneTokenPerIntervalUpToTheBurst) {
  RateLimiter limiter(RateLimit{5, seconds(30)});
  drain(limiter, "k", 5, kT0);
  drain(limiter, "k", 1, kT0 + seconds(30));
  EXPECT_FALSE(limiter.take("k", kT0 + seconds(30)).allowed);

  // Two intervals give two tokens.
  drain(limiter, "k", 2, kT0 + seconds(90));
  EXPECT_FALSE(limiter.take("k", kT0 + seconds(90)).allowed);

  // A long pause refills the bucket, but no further than the burst.
  drain(limiter, "k", 5, kT0 + hours(5));
  const RateLimiter::Decision refused = limiter.take("k", kT0 + hours(5));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(30));
}

TEST(RateLimiter, PartialRefillShortensTheWait) {
  RateLimiter limiter(RateLimit{5, seconds(30)});
  drain(limiter, "k", 5, kT0);

  EXPECT_EQ(limiter.peek("k", kT0 + seconds(15)).retry_after, seconds(15));
  const RateLimiter::Decision refused = limiter.take("k", kT0 + seconds(15));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(15));
  // The refused attempt did not cost the half token already earned.
  EXPECT_FALSE(limiter.take("k", kT0 + seconds(30) - milliseconds(1)).allowed);
  EXPECT_TRUE(limiter.take("k", kT0 + seconds(30)).allowed);
}

TEST(RateLimiter, RetryAfterIsRoundedUpToAWholeMillisecond) {
  RateLimiter limiter(RateLimit{1, seconds(1)});
  drain(limiter, "k", 1, kT0);
  const RateLimiter::Decision refused = limiter.take("k", kT0 + nanoseconds(1));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, milliseconds(1000));
}

TEST(RateLimiter, FractionalBurst) {
  RateLimiter limiter(RateLimit{2.5, seconds(30)});
  drain(limiter, "k", 2, kT0);
  const RateLimiter::Decision refused = limiter.take("k", kT0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(15));
}

TEST(RateLimiter, KeysAreIndependent) {
  RateLimiter limiter(RateLimit{2, seconds(30)});
  drain(limiter, "a", 2, kT0);
  EXPECT_FALSE(limiter.take("a", kT0).allowed);
  drain(limiter, "b", 2, kT0);
  EXPECT_FALSE(limiter.take("b", kT0).allowed);
  EXPECT_TRUE(limiter.take("c", kT0).allowed);
  EXPECT_EQ(limiter.size(), 3u);
  EXPECT_EQ(limiter.refused(), 2u);
}

TEST(RateLimiter, PeekConsumesNothing) {
  RateLimiter limiter(RateLimit{2, seconds(30)});
  EXPECT_TRUE(limiter.peek("unknown", kT0).allowed);
  EXPECT_EQ(limiter.size(), 0u);

  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.peek("k", kT0).allowed);
  drain(limiter, "k", 2, kT0);
  const RateLimiter::Decision peeked = limiter.peek("k", kT0);
  EXPECT_FALSE(peeked.allowed);
  EXPECT_EQ(peeked.retry_after, seconds(30));
  EXPECT_EQ(limiter.refused(), 0u);  // a peek is not a refusal
}

TEST(RateLimiter, SizeIsBoundedAndTheLeastRecentlyUsedKeyGoes) {
  // One token per hour: no bucket refills during the test, so only recency decides.
  RateLimiter limiter(RateLimit{1, hours(1)}, 2);
  drain(limiter, "a", 1, kT0);
  drain(limiter, "b", 1, kT0 + seconds(1));
  EXPECT_FALSE(limiter.take("a", kT0 + seconds(2)).allowed);  // a is now more recent than b

  drain(limiter, "c", 1, kT0 + seconds(3));  // makes room by forgetting b
  EXPECT_EQ(limiter.size(), 2u);
  EXPECT_FALSE(limiter.take("a", kT0 + seconds(4)).allowed);  // still tracked, still empty
  EXPECT_FALSE(limiter.take("c", kT0 + seconds(5)).allowed);
  // b was forgotten, so it starts again with a full bucket (this forgets a, now the oldest).
  EXPECT_TRUE(limiter.take("b", kT0 + seconds(6)).allowed);
  EXPECT_EQ(limiter.size(), 2u);
  EXPECT_TRUE(limiter.take("a", kT0 + seconds(7)).allowed);
}

TEST(RateLimiter, FullBucketsAreDroppedBeforeTheLeastRecentlyUsedKey) {
  RateLimiter limiter(RateLimit{5, seconds(30)}, 2);
  drain(limiter, "old-and-empty", 5, kT0);
  drain(limiter, "recent-but-full-again", 1, kT0 + seconds(1));

  // At kT0 + 31 s the second bucket is full again, the first holds only about one token.
  const auto later = kT0 + seconds(31);
  drain(limiter, "new", 1, later);
  EXPECT_EQ(limiter.size(), 2u);
  // The least recently used key was kept with its debt: one token, then a refusal.
  drain(limiter, "old-and-empty", 1, later);
  EXPECT_FALSE(limiter.take("old-and-empty", later).allowed);
}

TEST(RateLimiter, ManyKeysNeverExceedTheBound) {
  RateLimiter limiter(RateLimit{3, seconds(10)}, 100);
  for (int i = 0; i < 5'000; ++i) {
    const auto now = kT0 + milliseconds(7 * i);
    limiter.take("client-" + std::to_string(i % 700), now);
    ASSERT_LE(limiter.size(), 100u);
  }
  EXPECT_EQ(limiter.size(), 100u);
}

TEST(RateLimiter, TimeGoingBackwardsCountsAsNoTimeElapsed) {
  RateLimiter limiter(RateLimit{2, seconds(30)});
  drain(limiter, "k", 2, kT0);

  const RateLimiter::Decision refused = limiter.take("k", kT0 - minutes(10));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(30));
  EXPECT_FALSE(limiter.peek("k", kT0 - hours(1)).allowed);

  // Back on the original time line, exactly one token has been earned 30 s after kT0: the jump
  // back neither refilled the bucket nor moved its clock.
  EXPECT_FALSE(limiter.take("k", kT0 + seconds(29)).allowed);
  drain(limiter, "k", 1, kT0 + seconds(30));
  EXPECT_FALSE(limiter.take("k", kT0 + seconds(30)).allowed);
}

TEST(RateLimiter, BurstBelowOneIsRaisedToOne) {
  for (double burst : {0.2, 0.0, -3.0, std::numeric_limits<double>::quiet_NaN()}) {
    RateLimiter limiter(RateLimit{burst, seconds(30)});
    EXPECT_EQ(limiter.limit().burst, 1.0) << burst;
    EXPECT_TRUE(limiter.take("k", kT0).allowed) << burst;
    EXPECT_FALSE(limiter.take("k", kT0).allowed) << burst;
  }
}

TEST(RateLimiter, RefillIntervalBelowOneMillisecondIsRaised) {
  RateLimiter limiter(RateLimit{1, milliseconds(0)});
  EXPECT_EQ(limiter.limit().refill_every, milliseconds(1));
  drain(limiter, "k", 1, kT0);
  EXPECT_FALSE(limiter.take("k", kT0).allowed);
  EXPECT_TRUE(limiter.take("k", kT0 + milliseconds(1)).allowed);
}

// Nothing overflows (UBSan would say so): neither a huge burst, nor an interval of "never", nor a
// clock reading close to the end of what a time_point can hold.
TEST(RateLimiter, ExtremeValuesDoNotOverflow) {
  RateLimiter limiter(RateLimit{1e300, milliseconds::max()}, 1);
  EXPECT_EQ(limiter.limit().refill_every, hours(24 * 365 * 50));
  const auto far = std::chrono::steady_clock::time_point{} + hours(24 * 365 * 250);
  drain(limiter, "a", 3, far);
  drain(limiter, "b", 3, far + hours(1));  // makes room while a is far from full
  EXPECT_EQ(limiter.size(), 1u);
  EXPECT_TRUE(limiter.peek("b", std::chrono::steady_clock::time_point::max()).allowed);

  RateLimiter strict(RateLimit{1, milliseconds::max()});
  drain(strict, "k", 1, far);
  const RateLimiter::Decision refused = strict.take("k", far);
  EXPECT_FALSE(refused.allowed);
  EXPECT_GT(refused.retry_after, hours(24 * 365 * 40));

  Cooldown cooldown(milliseconds::max());
  EXPECT_TRUE(cooldown.try_start(far).allowed);
  EXPECT_FALSE(cooldown.try_start(std::chrono::steady_clock::time_point::max()).allowed);
}

TEST(RateLimiterCooldown, OneStartPerInterval) {
  Cooldown cooldown(minutes(1));
  Cooldown::Decision decision = cooldown.try_start(kT0);
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.retry_after, milliseconds(0));

  decision = cooldown.try_start(kT0 + seconds(10));
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.retry_after, seconds(50));

  // A refusal does not restart the interval.
  decision = cooldown.try_start(kT0 + seconds(60) - nanoseconds(1));
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.retry_after, milliseconds(1));
  EXPECT_TRUE(cooldown.try_start(kT0 + seconds(60)).allowed);
  EXPECT_FALSE(cooldown.try_start(kT0 + seconds(61)).allowed);
}

TEST(RateLimiterCooldown, TimeGoingBackwardsCountsAsNoTimeElapsed) {
  Cooldown cooldown(minutes(1));
  EXPECT_TRUE(cooldown.try_start(kT0).allowed);
  const Cooldown::Decision decision = cooldown.try_start(kT0 - hours(1));
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.retry_after, minutes(1));
  EXPECT_TRUE(cooldown.try_start(kT0 + minutes(1)).allowed);
}

TEST(RateLimiterCooldown, ZeroIntervalAlwaysAllows) {
  Cooldown cooldown(milliseconds(0));
  EXPECT_TRUE(cooldown.try_start(kT0).allowed);
  EXPECT_TRUE(cooldown.try_start(kT0).allowed);
}

}  // namespace
}  // namespace unshelver::core
