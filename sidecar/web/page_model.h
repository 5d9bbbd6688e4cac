// What the pages and the web routes make of a backend's (effective) state: the words shown,
// whether the wake button is offered, whether the page keeps refreshing, and how long an API
// client should wait before asking again. One table by BackendState, so that no route compares
// state strings.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "backend/state_machine.h"
#include "web/controller.h"

namespace unshelver::web {

// "Waking up", "Ready", ...
std::string_view state_label(core::BackendState state);
// One sentence for the waiting page and API clients, naming the backend by `label`.
std::string explanation(core::BackendState state, const std::string& label);
// A wake from here would start a sleeping backend (what costs, and what the cool-down limits).
bool can_wake(core::BackendState state);
// Something is under way: the pages show progress.
bool is_busy(core::BackendState state);
// The pages poll for changes (not while nothing will change without a visitor).
bool auto_refresh(core::BackendState state);
// Retry-After for an API client that reached a backend that is not ready, in seconds.
int retry_after_seconds(core::BackendState state);

// Adds to a backend's status entry what the templates show: state_label, explanation, is_ready,
// can_wake, is_busy, is_error, auto_refresh.
void add_page_fields(const BackendView& view, nlohmann::json& entry);

}  // namespace unshelver::web
