// The gate's requests in flight (activity/started_requests.h).
#include "activity/started_requests.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;
using TimePoint = StartedRequests::TimePoint;

const TimePoint kFirstRequestAt = TimePoint(std::chrono::seconds(1'800'000'000));

TEST(StartedRequests, EachEndClosesOneStart) {
  StartedRequests started(60s, 100);
  started.started(kFirstRequestAt);
  started.started(kFirstRequestAt + 1s);
  EXPECT_EQ(2, started.open(kFirstRequestAt + 2s));
  started.ended();
  EXPECT_EQ(1, started.open(kFirstRequestAt + 2s));
  started.ended();
  started.ended();  // an end without a start (say, from before a restart) closes nothing
  EXPECT_EQ(0, started.open(kFirstRequestAt + 2s));
  started.started(kFirstRequestAt + 3s);
  EXPECT_EQ(1, started.open(kFirstRequestAt + 3s));
  EXPECT_EQ(0u, started.forgotten());
}

TEST(StartedRequests, AStartWhoseEndNeverComesIsForgottenAfterItsLifetime) {
  StartedRequests started(60s, 100);
  started.started(kFirstRequestAt);
  started.started(kFirstRequestAt + 30s);
  EXPECT_EQ(2, started.open(kFirstRequestAt + 59s));
  EXPECT_EQ(1, started.open(kFirstRequestAt + 60s));
  EXPECT_EQ(0, started.open(kFirstRequestAt + 90s));
  EXPECT_EQ(2u, started.forgotten());
}

TEST(StartedRequests, AtMostCapacityStartsAreKept) {
  StartedRequests started(60s, 3);
  for (int i = 0; i < 10; ++i) started.started(kFirstRequestAt);
  EXPECT_EQ(3, started.open(kFirstRequestAt));
  EXPECT_EQ(7u, started.forgotten());
}

}  // namespace
}  // namespace unshelver::core
