// Exponential back-off with jitter: the one retry schedule of the sidecar (cloud API calls, the
// Swift mirror, Caddy loads, journal writes). The n-th retry waits base * 2^(n-1), capped at max,
// of which the `jitter` fraction is random (AWS Architecture Blog, "Exponential Backoff And
// Jitter": the default 0.5 is its "equal jitter", which keeps a floor so retries never stampede;
// 0 is plain doubling). Pure: the caller supplies the random number.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string_view>

namespace unshelver::core {

struct BackoffPolicy {
  std::chrono::milliseconds base{500};    // the first retry's ceiling
  std::chrono::milliseconds max{30'000};  // no wait is longer than this
  double jitter = 0.5;                    // a wait is between (1 - jitter) and 1 times its ceiling
};

// The wait before retry number `retry` (1 for the first retry), with `unit_random` in [0, 1).
// A server's Retry-After, when given, is honoured (up to `max`) instead.
inline std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, int retry, double unit_random,
                                               std::optional<std::chrono::milliseconds> retry_after = {}) {
  if (retry_after) return std::clamp(*retry_after, std::chrono::milliseconds(0), policy.max);
  const double exponent = std::min(std::max(retry - 1, 0), 30);
  const double ceiling = std::min(static_cast<double>(policy.base.count()) * std::pow(2.0, exponent),
                                  static_cast<double>(policy.max.count()));
  const double random_part = ceiling * std::clamp(policy.jitter, 0.0, 1.0);
  const double wait = ceiling - random_part + random_part * std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<long long>(wait));
}

// Retry-After as delay-seconds (RFC 9110 §10.2.3). The HTTP-date form is not used by OpenStack
// services and is ignored (the back-off applies then).
inline std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value) {
  long long seconds = 0;
  bool digit = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') continue;
    if (c < '0' || c > '9') return std::nullopt;
    digit = true;
    seconds = std::min(seconds * 10 + (c - '0'), 86'400LL);
  }
  if (!digit) return std::nullopt;
  return std::chrono::milliseconds(seconds * 1000);
}

}  // namespace unshelver::core
