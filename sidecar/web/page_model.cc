#include "web/page_model.h"

namespace unshelver::web {

using core::BackendState;

std::string_view state_label(BackendState state) {
  switch (state) {
    case BackendState::kAsleep: return "Asleep";
    case BackendState::kWaking: return "Waking up";
    case BackendState::kBooting: return "Starting services";
    case BackendState::kReady: return "Ready";
    case BackendState::kSleeping: return "Going to sleep";
    case BackendState::kError: return "Error";
    case BackendState::kUnknown: break;
  }
  return "Checking";
}

std::string explanation(BackendState state, const std::string& label) {
  switch (state) {
    case BackendState::kAsleep:
      return label + " is asleep to save costs. Wake it to continue; waking takes a few minutes.";
    case BackendState::kWaking: return label + " is waking up: the cloud is starting its machine.";
    case BackendState::kBooting: return "The machine runs; " + label + "'s services are starting.";
    case BackendState::kReady: return label + " is ready.";
    case BackendState::kSleeping: return label + " is going to sleep. You can wake it again right away.";
    case BackendState::kError: return label + " could not be woken.";
    case BackendState::kUnknown: break;
  }
  return "Checking " + label + "'s state.";
}

bool can_wake(BackendState state) {
  return state == BackendState::kAsleep || state == BackendState::kError || state == BackendState::kSleeping;
}

bool is_busy(BackendState state) {
  return state == BackendState::kWaking || state == BackendState::kBooting ||
         state == BackendState::kSleeping || state == BackendState::kUnknown;
}

bool auto_refresh(BackendState state) {
  return state != BackendState::kAsleep && state != BackendState::kError;
}

int retry_after_seconds(BackendState state) {
  return state == BackendState::kWaking || state == BackendState::kBooting ? 10 : 30;
}

void add_page_fields(const BackendView& view, nlohmann::json& entry) {
  entry["state_label"] = std::string(state_label(view.state));
  entry["explanation"] = explanation(view.state, view.label);
  entry["is_ready"] = view.state == BackendState::kReady;
  entry["can_wake"] = can_wake(view.state);
  entry["is_busy"] = is_busy(view.state);
  entry["is_error"] = view.state == BackendState::kError;
  entry["auto_refresh"] = auto_refresh(view.state);
}

}  // namespace unshelver::web
