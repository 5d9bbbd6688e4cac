// Unit tests for InflightTracker. Each test plays a connection's life as the kernel would report
// it once a second (tcp_info's lastsnd/lastrcv in milliseconds), with the clock passed in.
#include "activity/inflight_tracker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

constexpr Millis kMinBusy = 10s;
constexpr Millis kRecent = 2s;
const TimePoint kStart = TimePoint{} + 24h * 365 * 55;  // Some moment in 2025.

// A connection as the kernel sees it: when data last left and last arrived (absolute times).
struct Connection {
  std::uint64_t inode;
  TimePoint last_sent;
  TimePoint last_received;

  ConnectionSample at(TimePoint now) const {
    auto since = [now](TimePoint moment) {
      return static_cast<std::uint32_t>(std::chrono::duration_cast<Millis>(now - moment).count());
    };
    return ConnectionSample{inode, since(last_sent), since(last_received)};
  }
};

class InflightTrackerTest : public ::testing::Test {
 protected:
  InflightStatus sample(const std::vector<Connection>& connections) {
    std::vector<ConnectionSample> samples;
    for (const Connection& connection : connections) samples.push_back(connection.at(now_));
    return tracker_.update(samples, now_);
  }
  void advance(Millis step) { now_ += step; }

  InflightTracker tracker_{kMinBusy, kRecent};
  TimePoint now_ = kStart;
};

TEST_F(InflightTrackerTest, QuickRequestNeverCounts) {
  // Idle in the pool for a minute, then a request answered in 50 ms (an uptime probe).
  Connection connection{1, kStart - 60s, kStart - 60s + 10ms};
  for (int second = 0; second < 30; ++second) {
    if (second == 3) {
      connection.last_sent = now_ - 500ms;
      connection.last_received = now_ - 450ms;
    }
    InflightStatus status = sample({connection});
    EXPECT_EQ(status.long_requests, 0) << "at second " << second;
    EXPECT_FALSE(status.last_busy_at.has_value());
    advance(1s);
  }
}

TEST_F(InflightTrackerTest, RequestsJustUnderMinBusyNeverCount) {
  // A response that streams for 7 s (busy for 7 s + kRecent, under kMinBusy), then a pause, then
  // another one: the pause breaks the busy stretch, so the two never add up.
  Connection connection{1, kStart, kStart};
  for (int round = 0; round < 3; ++round) {
    for (int second = 0; second < 7; ++second) {
      connection.last_received = now_ - 100ms;
      EXPECT_EQ(sample({connection}).long_requests, 0);
      advance(1s);
    }
    for (int second = 0; second < 4; ++second) {
      EXPECT_EQ(sample({connection}).long_requests, 0);
      advance(1s);
    }
    connection.last_sent = now_ - 10ms;
  }
  EXPECT_FALSE(sample({connection}).last_busy_at.has_value());
}

TEST_F(InflightTrackerTest, SseStreamCountsAfterMinBusyAndKeepsCounting) {
  // The request goes out at kStart; an event arrives every second after that.
  Connection stream{7, kStart, kStart - 30s};
  bool counted = false;
  for (int second = 0; second <= 30 * 60; ++second) {
    if (second > 0) stream.last_received = kStart + Millis(second * 1000 - 300);
    InflightStatus status = sample({stream});
    if (now_ - kStart < kMinBusy) {
      EXPECT_EQ(status.long_requests, 0) << "at second " << second;
    } else {
      // The first sample saw it waiting (sent after the last receive), which proves it busy
      // since kStart; from then on it never stops being busy.
      EXPECT_EQ(status.long_requests, 1) << "at second " << second;
      ASSERT_TRUE(status.last_busy_at.has_value());
      // Its last event, not the sampling moment: 300 ms before now once events flow.
      EXPECT_EQ(*status.last_busy_at, second > 0 ? stream.last_received : now_);
      counted = true;
    }
    advance(1s);
  }
  EXPECT_TRUE(counted);
}

TEST_F(InflightTrackerTest, RequestWaitingForItsFirstByteCounts) {
  // The previous response ended 5 s before this request was sent; a model then thinks for 60 s
  // before the first byte.
  Connection connection{3, kStart, kStart - 5s};
  for (int second = 0; second <= 60; ++second) {
    InflightStatus status = sample({connection});
    EXPECT_EQ(status.long_requests, now_ - kStart >= kMinBusy ? 1 : 0) << "at second " << second;
    advance(1s);
  }
}

TEST_F(InflightTrackerTest, RequestAlreadyWaitingWhenFirstSeenCountsAtOnce) {
  // After a restart of Unshelver: the request went out 30 s ago and is still unanswered. Waiting
  // proves it has been busy since its last send, so it counts on the first sample.
  Connection connection{3, kStart - 30s, kStart - 90s};
  InflightStatus status = sample({connection});
  EXPECT_EQ(status.long_requests, 1);
  ASSERT_TRUE(status.last_busy_at.has_value());
  EXPECT_EQ(*status.last_busy_at, kStart);
}

TEST_F(InflightTrackerTest, IdleKeepAliveConnectionNeverCounts) {
  // In Caddy's pool: the last response arrived after the last request and long ago.
  Connection idle{4, kStart - 120s, kStart - 119s};
  for (int second = 0; second < 600; ++second) {
    InflightStatus status = sample({idle});
    EXPECT_EQ(status.long_requests, 0);
    EXPECT_FALSE(status.last_busy_at.has_value());
    advance(1s);
  }
}

TEST_F(InflightTrackerTest, EndOfStreamKeepsTheMomentOfTheLastByte) {
  Connection stream{5, kStart, kStart - 1s};
  for (int second = 0; second < 60; ++second) {
    if (second > 0) stream.last_received = now_ - 200ms;
    sample({stream});
    advance(1s);
  }
  // The last event arrived 200 ms before the last busy sample; the connection then goes back to
  // the pool and stays there.
  const TimePoint end = stream.last_received;
  InflightStatus status;
  for (int second = 0; second < 10; ++second) {
    status = sample({stream});
    advance(1s);
  }
  EXPECT_EQ(status.long_requests, 0);
  ASSERT_TRUE(status.last_busy_at.has_value());
  EXPECT_EQ(*status.last_busy_at, end);

  // Later samples keep that moment.
  advance(10min);
  status = sample({stream});
  EXPECT_EQ(status.long_requests, 0);
  ASSERT_TRUE(status.last_busy_at.has_value());
  EXPECT_EQ(*status.last_busy_at, end);
}

TEST_F(InflightTrackerTest, EndOfStreamBetweenSamplesUsesTheLastByte) {
  // The final bytes arrive between two samples (after the last busy sample proved anything);
  // last_busy_at is the moment of those bytes, read from lastrcv.
  Connection stream{5, kStart, kStart - 1s};
  for (int second = 0; second < 30; ++second) {
    if (second > 0) stream.last_received = now_ - 900ms;
    sample({stream});
    advance(1s);
  }
  stream.last_received = now_ - 400ms;
  const TimePoint end = stream.last_received;
  advance(kRecent);
  InflightStatus status = sample({stream});
  EXPECT_EQ(status.long_requests, 0);
  ASSERT_TRUE(status.last_busy_at.has_value());
  EXPECT_EQ(*status.last_busy_at, end);
}

TEST_F(InflightTrackerTest, DisappearingConnectionEndsTheRequest) {
  Connection stream{6, kStart, kStart - 1s};
  TimePoint last_proof;
  for (int second = 0; second < 20; ++second) {
    if (second > 0) stream.last_received = now_ - 300ms;
    InflightStatus status = sample({stream});
    if (status.long_requests == 1) last_proof = stream.last_received;
    advance(1s);
  }
  InflightStatus status = sample({});
  EXPECT_EQ(status.long_requests, 0);
  ASSERT_TRUE(status.last_busy_at.has_value());
  EXPECT_EQ(*status.last_busy_at, last_proof);

  // The same inode coming back (the kernel reuses inode numbers) starts from zero.
  advance(1min);
  stream.last_received = now_ - 100ms;
  status = sample({stream});
  EXPECT_EQ(status.long_requests, 0);
  EXPECT_EQ(*status.last_busy_at, last_proof);
}

TEST_F(InflightTrackerTest, DisappearingWhileWaitingKeepsTheLastSample) {
  Connection waiting{8, kStart, kStart - 10s};
  TimePoint last_sample;
  for (int second = 0; second < 15; ++second) {
    last_sample = now_;
    sample({waiting});
    advance(1s);
  }
  InflightStatus status = sample({});
  EXPECT_EQ(status.long_requests, 0);
  ASSERT_TRUE(status.last_busy_at.has_value());
  EXPECT_EQ(*status.last_busy_at, last_sample);
}

TEST_F(InflightTrackerTest, TwoConnections) {
  Connection first{10, kStart, kStart - 1s};
  Connection second{11, kStart - 1min, kStart - 1min + 5ms};  // Idle in the pool at first.
  InflightStatus status;
  for (int tick = 0; tick < 40; ++tick) {
    if (tick > 0) first.last_received = now_ - 100ms;
    if (tick == 5) second.last_sent = now_ - 50ms;  // The second request starts.
    if (tick > 5) second.last_received = now_ - 200ms;
    status = sample({first, second});
    const int expected = tick < 10 ? 0 : tick < 15 ? 1 : 2;
    EXPECT_EQ(status.long_requests, expected) << "tick " << tick;
    advance(1s);
  }
  // The first stream ends (its connection closes); the second keeps last_busy_at at its last byte.
  for (int tick = 0; tick < 20; ++tick) {
    advance(1s);
    second.last_received = now_ - 200ms;
    status = sample({second});
    EXPECT_EQ(status.long_requests, 1);
    ASSERT_TRUE(status.last_busy_at.has_value());
    EXPECT_EQ(*status.last_busy_at, second.last_received);
  }
  // Then the second ends and stays in the pool.
  const TimePoint end = second.last_received;
  advance(5s);
  status = sample({second});
  EXPECT_EQ(status.long_requests, 0);
  ASSERT_TRUE(status.last_busy_at.has_value());
  EXPECT_EQ(*status.last_busy_at, end);
}

TEST_F(InflightTrackerTest, DuplicateInodeCountsOnce) {
  Connection connection{12, kStart - 30s, kStart - 40s};
  InflightStatus status = sample({connection, connection});
  EXPECT_EQ(status.long_requests, 1);
}

}  // namespace
}  // namespace unshelver::core
