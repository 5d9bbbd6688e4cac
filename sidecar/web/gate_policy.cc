#include "web/gate_policy.h"

namespace unshelver::web {

std::string_view to_string(GateVerdict verdict) {
  switch (verdict) {
    case GateVerdict::kPass: return "passed";
    case GateVerdict::kHold: return "held";
    case GateVerdict::kWaitingPage: return "waiting_page";
    case GateVerdict::kUnauthorized: return "unauthorized";
    case GateVerdict::kIgnored: return "ignored";
    case GateVerdict::kError: return "error";
    case GateVerdict::kAsleep: return "asleep";
    case GateVerdict::kFull: return "full";
  }
  return "error";
}

GateDecision decide_gate(const GateFacts& facts) {
  using core::BackendState;
  // A keyed backend answers nobody without a key: not even whether it is awake.
  if (facts.key_required && !facts.key_valid) return {GateVerdict::kUnauthorized};
  // The fast path. A backend that is ready but no longer wanted awake is draining or about to be
  // shelved: nothing new may reach it, so such requests are held (and wake it again) below.
  if (facts.state == BackendState::kReady && facts.desired_awake) return {GateVerdict::kPass};
  if (facts.ignored) return {GateVerdict::kIgnored};
  // A browser in error gets the waiting page, which says what failed and offers to try again;
  // a program gets the error itself.
  if (facts.state == BackendState::kError)
    return {facts.wants_html ? GateVerdict::kWaitingPage : GateVerdict::kError};
  if (facts.wants_html) return {GateVerdict::kWaitingPage};
  // Wanted awake and not in error: a wake is under way (or about to be issued), so wait for it.
  // Otherwise (asleep, shelving, draining) this request would have to wake the backend.
  const bool needs_wake = !facts.desired_awake;
  if (needs_wake && !facts.wake_on_request) return {GateVerdict::kAsleep};
  if (facts.held >= facts.max_held) return {GateVerdict::kFull};
  return {GateVerdict::kHold, needs_wake};
}

HeldFate held_fate(core::BackendState state, bool desired_awake) {
  if (state == core::BackendState::kReady && desired_awake) return HeldFate::kRelease;
  if (state == core::BackendState::kError) return HeldFate::kFail;
  return HeldFate::kKeep;
}

}  // namespace unshelver::web
