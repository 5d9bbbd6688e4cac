// Exponential back-off with jitter, for retrying cloud API calls (AWS Architecture Blog,
// "Exponential Backoff And Jitter": "equal jitter" keeps a floor so retries never stampede).
// Pure: the caller supplies the random number.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string_view>

namespace unshelver::core {

struct BackoffPolicy {
  std::chrono::milliseconds base{500};    // the first retry waits between base/2 and base
  std::chrono::milliseconds max{30'000};  // no wait is longer than this
};

// The wait before retry number `retry` (1 for the first retry), with `unit_random` in [0, 1).
// A server's Retry-After, when given, is honoured (up to `max`) instead.
inline std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, int retry, double unit_random,
                                               std::optional<std::chrono::milliseconds> retry_after = {}) {
  if (retry_after) return std::clamp(*retry_after, std::chrono::milliseconds(0), policy.max);
  const double exponent = std::min(std::max(retry - 1, 0), 30);
  const double ceiling = std::min(static_cast<double>(policy.base.count()) * std::pow(2.0, exponent),
                                  static_cast<double>(policy.max.count()));
  const double half = ceiling / 2;
  const double wait = half + half * std::clamp(unit_random, 0.0, 1.0);
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
