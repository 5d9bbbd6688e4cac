#include "web/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <ratio>

namespace unshelver::core {

namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;
using Duration = SteadyTime::duration;

// Longer refill intervals are lowered to this, so that no time computed here can overflow.
constexpr std::chrono::hours kMaxRefill{24 * 365 * 50};
// The tolerance is capped at about 126 years: beyond that, every request is allowed anyway.
constexpr double kMaxToleranceNs = 4e18;

RateLimit clamped(RateLimit limit) {
  // `!(x >= 1)` also catches NaN.
  if (!(limit.burst >= 1)) limit.burst = 1;
  limit.refill_every =
      std::clamp(limit.refill_every, milliseconds(1), std::chrono::duration_cast<milliseconds>(kMaxRefill));
  return limit;
}

Duration tolerance_for(const RateLimit& limit) {
  const double ns = (limit.burst - 1) * std::chrono::duration<double, std::nano>(limit.refill_every).count();
  const double capped = std::min(ns, kMaxToleranceNs);
  return std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(std::llround(capped)));
}

// `t + d` for d >= 0, saturating at the largest time point instead of overflowing.
SteadyTime saturating_add(SteadyTime t, Duration d) {
  if (t.time_since_epoch() > Duration::zero() && SteadyTime::max() - t < d) return SteadyTime::max();
  return t + d;
}

}  // namespace

RateLimiter::RateLimiter(RateLimit limit, std::size_t max_keys)
    : limit_(clamped(limit)),
      max_keys_(std::max<std::size_t>(max_keys, 1)),
      interval_(std::chrono::duration_cast<Duration>(limit_.refill_every)),
      tolerance_(tolerance_for(limit_)) {}

RateLimiter::Decision RateLimiter::decide(TimePoint full, TimePoint now) const {
  // The bucket lacks (full - now) / interval tokens; a request needs at least one token, that is
  // the deficit may be at most (burst - 1) x interval.
  const Duration deficit = full > now ? full - now : Duration::zero();
  if (deficit <= tolerance_) return {true, milliseconds(0)};
  return {false, std::chrono::ceil<milliseconds>(deficit - tolerance_)};
}

void RateLimiter::make_room(TimePoint now) {
  // Drop every bucket that is full again, and learn when the next of the others will be, so that
  // a stream of new keys does not search the whole table each time.
  if (now >= next_full_) {
    TimePoint earliest = TimePoint::max();
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      if (it->second.full <= now) {
        recency_.erase(it->second.recency);
        it = buckets_.erase(it);
      } else {
        earliest = std::min(earliest, it->second.full);
        ++it;
      }
    }
    next_full_ = earliest;
  }
  if (buckets_.size() < max_keys_) return;
  // No bucket is full: forget the least recently used key.
  const auto oldest = buckets_.find(recency_.front());
  recency_.pop_front();
  buckets_.erase(oldest);
}

RateLimiter::Decision RateLimiter::take(std::string_view key, TimePoint now) {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) make_room(now);
    // A new bucket is full: it was full "now".
    it = buckets_.emplace(std::string(key), Bucket{now, now, {}}).first;
    it->second.recency = recency_.insert(recency_.end(), it->first);
  } else {
    it->second.seen = std::max(it->second.seen, now);
    recency_.splice(recency_.end(), recency_, it->second.recency);
  }

  Bucket& bucket = it->second;
  const Decision decision = decide(bucket.full, bucket.seen);
  if (decision.allowed) {
    bucket.full = saturating_add(std::max(bucket.full, bucket.seen), interval_);
  } else {
    ++refused_;
  }
  // Taking moves this bucket's full time later, never earlier, so the bound stays a lower bound
  // for the old buckets; a new bucket may lower it.
  next_full_ = std::min(next_full_, bucket.full);
  return decision;
}

RateLimiter::Decision RateLimiter::peek(std::string_view key, TimePoint now) const {
  const auto it = buckets_.find(key);
  if (it == buckets_.end()) return decide(now, now);
  return decide(it->second.full, std::max(it->second.seen, now));
}

Cooldown::Cooldown(milliseconds interval)
    : interval_(std::clamp(interval, milliseconds(0), std::chrono::duration_cast<milliseconds>(kMaxRefill))) {
}

Cooldown::Decision Cooldown::try_start(SteadyTime now) {
  if (started_) {
    const Duration elapsed = now > last_start_ ? now - last_start_ : Duration::zero();
    if (elapsed < interval_) {
      return {false, std::chrono::ceil<milliseconds>(interval_ - elapsed)};
    }
  }
  started_ = true;
  last_start_ = now;
  return {true, milliseconds(0)};
}

}  // namespace unshelver::core
