#include "base/backoff.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

using std::chrono::milliseconds;

TEST(Backoff, GrowsWithJitterAndHonoursRetryAfter) {
  const BackoffPolicy policy{std::chrono::milliseconds(500), std::chrono::milliseconds(30'000)};
  EXPECT_EQ(backoff_delay(policy, 1, 0.0).count(), 250);
  EXPECT_EQ(backoff_delay(policy, 1, 1.0).count(), 500);
  EXPECT_EQ(backoff_delay(policy, 3, 0.0).count(), 1000);
  EXPECT_EQ(backoff_delay(policy, 20, 1.0).count(), 30'000);
  EXPECT_EQ(backoff_delay(policy, 1, 0.5, std::chrono::milliseconds(7000)).count(), 7000);
  EXPECT_EQ(backoff_delay(policy, 1, 0.5, std::chrono::milliseconds(99'000)).count(), 30'000);
  EXPECT_EQ(parse_retry_after(" 12 "), std::chrono::milliseconds(12'000));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
}

TEST(Backoff, JitterFractionSetsTheFloor) {
  // caddy/router: 1 s doubling up to retry_max, 75 % to 100 % of the ceiling.
  const BackoffPolicy router{milliseconds(1'000), milliseconds(60'000), 0.25};
  EXPECT_EQ(backoff_delay(router, 1, 0.0).count(), 750);
  EXPECT_EQ(backoff_delay(router, 1, 1.0).count(), 1'000);
  EXPECT_EQ(backoff_delay(router, 2, 0.0).count(), 1'500);
  EXPECT_EQ(backoff_delay(router, 4, 0.5).count(), 7'000);
  EXPECT_EQ(backoff_delay(router, 7, 0.0).count(), 45'000);
  EXPECT_EQ(backoff_delay(router, 7, 1.0).count(), 60'000);
  EXPECT_EQ(backoff_delay(router, 1'000, 1.0).count(), 60'000);
}

TEST(Backoff, NoJitterIsPlainDoubling) {
  // events/journal: 500 ms, 1 s, 2 s, 4 s, then 5 s.
  const BackoffPolicy journal{milliseconds(500), milliseconds(5'000), 0.0};
  const long long expected[] = {500, 1'000, 2'000, 4'000, 5'000, 5'000};
  for (int retry = 1; retry <= 6; ++retry) {
    EXPECT_EQ(backoff_delay(journal, retry, 0.0).count(), expected[retry - 1]) << retry;
    EXPECT_EQ(backoff_delay(journal, retry, 0.9).count(), expected[retry - 1]) << retry;
  }
}

TEST(Backoff, OutOfRangeInputsAreClamped) {
  const BackoffPolicy policy{milliseconds(100), milliseconds(1'000)};
  EXPECT_EQ(backoff_delay(policy, 0, 1.0).count(), 100);
  EXPECT_EQ(backoff_delay(policy, -5, 1.0).count(), 100);
  EXPECT_EQ(backoff_delay(policy, 1, 7.0).count(), 100);
  EXPECT_EQ(backoff_delay(policy, 1, -1.0).count(), 50);
  EXPECT_EQ(backoff_delay(policy, 1, 0.0, milliseconds(-3)).count(), 0);
  const BackoffPolicy odd{milliseconds(100), milliseconds(1'000), 3.0};
  EXPECT_EQ(backoff_delay(odd, 1, 0.0).count(), 0);
}

TEST(Backoff, RetryAfterIsDelaySecondsOnly) {
  EXPECT_EQ(parse_retry_after("0"), milliseconds(0));
  EXPECT_EQ(parse_retry_after("999999"), milliseconds(86'400'000));
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1"), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5"), std::nullopt);
}

}  // namespace
}  // namespace unshelver::core
