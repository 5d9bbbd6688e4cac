// OperationStats: wakes and shelves as operations, for the Prometheus metrics.
//
// A transition log says *that* a backend went from asleep to waking, but an operator asks "how
// many wakes did the public button start, how many reached ready, and how long did they take?".
// This class follows one backend's transitions and turns them into finished operations: a wake
// starts with kWakeRequested and ends `ready` (health passed), `failed` (an error) or `cancelled`
// (a sleep was requested first); a shelve starts with kSleepRequested and ends `asleep`, `failed`
// or `cancelled` (a wake was requested first). Each operation is counted under the actor that
// started it. Pure: the transitions carry their own times (durations on the monotonic clock, so a
// jump of the wall clock distorts none).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "backend/reconciler.h"
#include "base/prometheus.h"

namespace unshelver::core {

class OperationStats {
 public:
  enum class Kind { kWake, kShelve };

  // Upper bounds of the wake duration histogram, in seconds: a suspended VM resumes in seconds,
  // an offloaded GPU VM takes minutes, and one that waits for capacity much longer.
  static constexpr double kWakeBuckets[] = {5, 10, 30, 60, 120, 180, 300, 600, 900, 1800, 3600};

  // (kind, actor, outcome) -> how many operations ended so.
  using Outcomes = std::map<std::tuple<Kind, std::string, std::string>, std::uint64_t>;

  void observe(const Transition& transition);

  const Outcomes& outcomes() const { return outcomes_; }
  // From the wake request to ready, of every wake that got there.
  const Histogram& wake_durations() const { return wake_durations_; }
  // The operation under way, if any.
  std::optional<Kind> running() const;

 private:
  struct Running {
    Kind kind;
    std::string actor;
    MonoTime started;
  };
  void finish(const std::string& outcome, MonoTime at);

  std::optional<Running> running_;
  Outcomes outcomes_;
  Histogram wake_durations_{std::vector<double>(std::begin(kWakeBuckets), std::end(kWakeBuckets))};
};

std::string_view to_string(OperationStats::Kind kind);

}  // namespace unshelver::core
