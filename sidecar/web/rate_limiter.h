// Rate limits for what a client can ask of us (wake requests, control-token attempts), as token
// buckets per client key (usually the client's address), and a global cool-down. Pure: the caller
// passes steady_clock time in, so tests need no sleeping.
//
// A bucket holds up to `burst` tokens and starts full. Every request takes one token; a request
// finding less than one token is refused, with the time until the next token as retry_after.
// Tokens come back continuously, one per `refill_every`, up to `burst` again.
//
// Memory is bounded by `max_keys`. When a new key arrives and the table is full, keys whose bucket
// has refilled completely are dropped first. That loses nothing: a full bucket is exactly the
// state in which an unknown key starts, so a dropped key that comes back is treated precisely as
// if it had been kept. Only when no bucket is full is the least recently used key dropped, which
// does forgive that key's debt; an attacker with more than `max_keys` addresses can obtain that,
// but no less costly bound on memory exists.
//
// A bucket is stored as the time at which it will be full again (the "theoretical arrival time"
// of the generic cell rate algorithm, ITU-T I.371), which says the same as a token count: at
// `now`, a bucket full at `full` holds burst - (full - now) / refill_every tokens. Taking a token
// moves `full` one refill_every later. Integer time keeps the arithmetic exact, so a wait of 20 s
// is reported as 20 000 ms, not 20 001.
//
// Time going backwards (impossible for steady_clock, but cheap to survive) counts as no time
// elapsed: each bucket remembers the latest time it has seen and never looks at an earlier one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <string>
#include <string_view>

namespace unshelver::core {

struct RateLimit {
  // The most requests allowed at once. A value below 1 (or NaN) would refuse every request for
  // ever, which is never what a configuration means, so the limiter raises it to 1.
  double burst = 5;
  // One token comes back per this interval. Values below 1 ms are raised to 1 ms, and values
  // above 50 years (which mean "never") are lowered to 50 years, so that no time can overflow.
  std::chrono::milliseconds refill_every{30'000};
};

class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit RateLimiter(RateLimit limit, std::size_t max_keys = 10'000);

  struct Decision {
    bool allowed;
    std::chrono::milliseconds retry_after;  // until the next token, rounded up; 0 when allowed
  };

  // Consumes one token of `key`'s bucket when one is available. A refused call consumes nothing
  // (retrying does not make the wait longer) but is counted in refused().
  Decision take(std::string_view key, TimePoint now);

  // What take() would decide now, without consuming, counting or touching the key's recency.
  Decision peek(std::string_view key, TimePoint now) const;

  std::size_t size() const { return buckets_.size(); }  // keys tracked
  std::uint64_t refused() const { return refused_; }    // take() calls refused in total

  // The effective limits after clamping (see RateLimit).
  const RateLimit& limit() const { return limit_; }

 private:
  // Least recently used first. The views point to the keys of buckets_, whose nodes (and so the
  // keys' characters) stay put until they are erased.
  using Recency = std::list<std::string_view>;
  struct Bucket {
    TimePoint full;             // when the bucket is full again; <= seen when it is full now
    TimePoint seen;             // the latest time this key was taken at; never moves backwards
    Recency::iterator recency;  // position in recency_
  };

  // The decision for a bucket that is full at `full`, at `now` (not earlier than the bucket's seen).
  Decision decide(TimePoint full, TimePoint now) const;
  // Makes room for one more key (see the header comment).
  void make_room(TimePoint now);

  RateLimit limit_;
  std::size_t max_keys_;
  TimePoint::duration interval_;   // limit_.refill_every
  TimePoint::duration tolerance_;  // (burst - 1) x refill_every: how far `full` may lie ahead of now
  std::map<std::string, Bucket, std::less<>> buckets_;
  Recency recency_;
  // No bucket can be full before this time, so searching for full buckets before it is useless.
  // It is a lower bound: taking tokens only moves a bucket's full time later.
  TimePoint next_full_ = TimePoint::min();
  std::uint64_t refused_ = 0;
};

// At most one start per interval for everybody together (for example one wake of a backend per
// minute, whoever asks). The first start is always allowed; retry_after is the time remaining.
// Time going backwards counts as no time elapsed, like in RateLimiter. A negative interval is
// taken as 0 and one above 50 years as 50 years.
class Cooldown {
 public:
  using Decision = RateLimiter::Decision;

  explicit Cooldown(std::chrono::milliseconds interval);

  // Starts a new interval at `now` when the previous one is over; a refusal changes nothing.
  Decision try_start(std::chrono::steady_clock::time_point now);

 private:
  std::chrono::milliseconds interval_;
  bool started_ = false;
  std::chrono::steady_clock::time_point last_start_{};
};

}  // namespace unshelver::core
