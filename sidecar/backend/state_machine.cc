#include "backend/state_machine.h"

namespace unshelver::core {

namespace {
using S = BackendState;
using E = BackendEvent;

// What the cloud says maps onto our states directly when we have no better knowledge (at start-up,
// or when someone acted on the VM behind our back).
std::optional<S> from_cloud(E event) {
  switch (event) {
    case E::kCloudStopped: return S::kAsleep;
    case E::kCloudStarting: return S::kWaking;
    case E::kCloudRunning: return S::kBooting;  // running is not ready until health passes
    case E::kCloudStopping: return S::kSleeping;
    case E::kFailed: return S::kError;
    default: return std::nullopt;
  }
}
}  // namespace

std::optional<BackendState> transition(BackendState from, BackendEvent event) {
  switch (from) {
    case S::kUnknown:
      // Before the first observation only observations are meaningful.
      return from_cloud(event);

    case S::kAsleep:
      switch (event) {
        case E::kWakeRequested: return S::kWaking;
        case E::kCloudStopped: return S::kAsleep;
        // Someone started the VM outside Unshelver: follow the truth.
        case E::kCloudStarting: return S::kWaking;
        case E::kCloudRunning: return S::kBooting;
        case E::kCloudStopping: return S::kSleeping;
        case E::kFailed: return S::kError;
        default: return std::nullopt;  // no sleep from asleep, no health without a running VM
      }

    case S::kWaking:
      switch (event) {
        case E::kCloudStarting: return S::kWaking;
        case E::kCloudRunning: return S::kBooting;
        // The wake was accepted but the VM settled stopped: the wake failed (OpenStack's
        // "No valid host" looks exactly like this). The reconciler turns it into kFailed with
        // the cloud's message; a plain stop observation is taken as the truth.
        case E::kCloudStopped: return S::kAsleep;
        case E::kCloudStopping: return S::kSleeping;
        // Health is probed while waking too: a service that answers is up, whatever the cloud
        // still shows (its status often lags the guest by several seconds).
        case E::kHealthPassed: return S::kReady;
        case E::kFailed: return S::kError;
        default: return std::nullopt;
      }

    case S::kBooting:
      switch (event) {
        case E::kCloudRunning: return S::kBooting;
        case E::kHealthPassed: return S::kReady;
        case E::kSleepRequested:
        case E::kCloudStopping: return S::kSleeping;
        case E::kCloudStopped: return S::kAsleep;
        case E::kFailed: return S::kError;
        default: return std::nullopt;
      }

    case S::kReady:
      switch (event) {
        // Running confirms ready; so does starting when ready came straight from waking (its
        // health passed first): the cloud is still finishing the wake it reports.
        case E::kCloudRunning:
        case E::kCloudStarting: return S::kReady;
        case E::kHealthLost: return S::kBooting;
        case E::kSleepRequested:
        case E::kCloudStopping: return S::kSleeping;
        case E::kCloudStopped: return S::kAsleep;
        case E::kFailed: return S::kError;
        default: return std::nullopt;
      }

    case S::kSleeping:
      switch (event) {
        case E::kCloudStopping: return S::kSleeping;
        case E::kCloudStopped: return S::kAsleep;
        // The sleep was refused or undone and the VM still runs: back to booting, where health
        // decides whether it serves.
        case E::kCloudRunning: return S::kBooting;
        case E::kCloudStarting: return S::kWaking;
        case E::kFailed: return S::kError;
        default: return std::nullopt;
      }

    case S::kError:
      switch (event) {
        case E::kWakeRequested: return S::kWaking;
        case E::kSleepRequested: return S::kSleeping;
        // The error stays visible while the VM stays stopped; it clears when the VM is seen
        // running or changing again, or when someone acts.
        case E::kCloudStopped: return S::kError;
        case E::kCloudStarting: return S::kWaking;
        case E::kCloudRunning: return S::kBooting;
        case E::kCloudStopping: return S::kSleeping;
        // The VM runs and its health checks pass again (a boot slower than its timeout, a
        // service that came back): it serves, and the idle rule can put it to sleep.
        case E::kHealthPassed: return S::kReady;
        case E::kFailed: return S::kError;
        default: return std::nullopt;
      }
  }
  return std::nullopt;
}

std::string_view to_string(BackendState state) {
  switch (state) {
    case S::kUnknown: return "unknown";
    case S::kAsleep: return "asleep";
    case S::kWaking: return "waking";
    case S::kBooting: return "booting";
    case S::kReady: return "ready";
    case S::kSleeping: return "sleeping";
    case S::kError: return "error";
  }
  return "unknown";
}

std::string_view to_string(BackendEvent event) {
  switch (event) {
    case E::kWakeRequested: return "wake_requested";
    case E::kSleepRequested: return "sleep_requested";
    case E::kCloudStopped: return "cloud_stopped";
    case E::kCloudStarting: return "cloud_starting";
    case E::kCloudRunning: return "cloud_running";
    case E::kCloudStopping: return "cloud_stopping";
    case E::kHealthPassed: return "health_passed";
    case E::kHealthLost: return "health_lost";
    case E::kFailed: return "failed";
  }
  return "unknown";
}

std::optional<BackendState> backend_state_from_string(std::string_view name) {
  for (BackendState state : kAllStates) {
    if (to_string(state) == name) return state;
  }
  return std::nullopt;
}

}  // namespace unshelver::core
