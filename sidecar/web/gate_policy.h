// The gate's decision for one request, and for the requests it holds when a backend changes.
// Pure: the web layer gathers the facts, this decides, the web layer answers.
//
// Caddy's forward_auth asks Unshelver about every request to a gated backend's host before it
// proxies the request (caddy/Caddyfile.template). A 2xx answer lets the request through to the
// backend; any other answer goes to the client as it is (research: holding-requests §2.3). So
// "hold" means: do not answer the sub-request yet.
#pragma once

#include <string_view>

#include "backend/state_machine.h"

namespace unshelver::web {

enum class GateVerdict {
  kPass,          // 2xx now: the backend is ready and wanted awake
  kHold,          // answer later, when the backend is ready (or the hold expires)
  kWaitingPage,   // a browser: the waiting page, as 503
  kUnauthorized,  // the backend needs an API key and the request has no valid one: 401
  kIgnored,       // a bot or monitor (the ignore rules): 503 at once, never woken, never held
  kError,         // the backend is in error: 503 with the reason, never a hang
  kAsleep,        // asleep and requests may not wake it (wake_on_request off): 503 at once
  kFull,          // hold.max_requests are held already: 503 at once
};
std::string_view to_string(GateVerdict verdict);

struct GateFacts {
  core::BackendState state = core::BackendState::kUnknown;  // the effective state
  bool desired_awake = false;
  bool wake_on_request = false;
  bool wants_html = false;    // a browser: GET or HEAD with text/html in Accept
  bool ignored = false;       // matches an ignore rule
  bool key_required = false;  // the backend has api_keys
  bool key_valid = false;     // the request carries one of them
  int held = 0;               // requests held for this backend now
  int max_held = 0;           // hold.max_requests
};

struct GateDecision {
  GateVerdict verdict = GateVerdict::kError;
  // For kHold: the backend is not on its way up, so this request asks for a wake (which the one
  // wake policy may still refuse: per-client limit, cool-down).
  bool wake = false;
};

GateDecision decide_gate(const GateFacts& facts);

// What becomes of the requests held for a backend after it changed.
enum class HeldFate {
  kKeep,     // still on its way up (or shelving, to be woken again): keep holding
  kRelease,  // ready and wanted awake: let them all through
  kFail,     // in error: answer them with the reason
};
HeldFate held_fate(core::BackendState state, bool desired_awake);

}  // namespace unshelver::web
