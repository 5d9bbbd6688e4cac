// The per-backend state machine, as explicit data.
//
//   unknown ──observed──> asleep | waking | booting | sleeping | error
//   asleep ──wake requested──> waking ──cloud runs──> booting ──health passed──> ready
//   ready | booting ──sleep requested──> sleeping ──cloud stopped──> asleep
//   waking | booting | sleeping ──failed──> error ──wake requested──> waking
//   error ──health passed (the VM runs and serves after all)──> ready
//
// `unknown` exists only between start-up and the first observation of the cloud: Unshelver
// observes before it acts, so it never assumes a state it has not seen. transition() is the only
// place that decides which moves are legal; everything else asks it.
#pragma once

#include <optional>
#include <string_view>

namespace unshelver::core {

enum class BackendState { kUnknown, kAsleep, kWaking, kBooting, kReady, kSleeping, kError };

enum class BackendEvent {
  kWakeRequested,   // the desired state became awake and a wake action was issued
  kSleepRequested,  // the desired state became asleep and a sleep action was issued
  kCloudStopped,    // the cloud reports the VM stopped/shelved with nothing in progress
  kCloudStarting,   // the cloud reports a start/unshelve in progress
  kCloudRunning,    // the cloud reports the VM running
  kCloudStopping,   // the cloud reports a stop/shelve in progress
  kHealthPassed,    // the health probe passed the required number of times in a row
  kHealthLost,      // the health probe failed too often while ready
  kFailed,          // an action failed, timed out, or the cloud reports an error
};

inline constexpr BackendState kAllStates[] = {
    BackendState::kUnknown, BackendState::kAsleep,   BackendState::kWaking, BackendState::kBooting,
    BackendState::kReady,   BackendState::kSleeping, BackendState::kError};
inline constexpr BackendEvent kAllEvents[] = {
    BackendEvent::kWakeRequested, BackendEvent::kSleepRequested, BackendEvent::kCloudStopped,
    BackendEvent::kCloudStarting, BackendEvent::kCloudRunning,   BackendEvent::kCloudStopping,
    BackendEvent::kHealthPassed,  BackendEvent::kHealthLost,     BackendEvent::kFailed};

// The outcome of an event in a state:
// - a new state (which may equal the old one, e.g. asleep + cloud stopped: a confirmation), or
// - std::nullopt: the event cannot happen in that state. Callers treat that as a bug in the
//   reconciler (it issued a probe or action it should not have), log it loudly and ignore it.
std::optional<BackendState> transition(BackendState from, BackendEvent event);

std::string_view to_string(BackendState state);
std::string_view to_string(BackendEvent event);
std::optional<BackendState> backend_state_from_string(std::string_view name);

// True for states in which the VM costs money and is (or will soon be) serving.
inline bool is_awake_side(BackendState state) {
  return state == BackendState::kWaking || state == BackendState::kBooting || state == BackendState::kReady;
}

}  // namespace unshelver::core
