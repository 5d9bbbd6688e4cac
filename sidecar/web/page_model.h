// What the pages and the web routes make of a backend's (effective) state: the words shown,
// whether the wake button is offered, whether the page keeps refreshing, and how long an API
// client should wait before asking again. One table by BackendState, so that no route compares
// state strings.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
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

// The steps of a wake as the waiting page and the launcher name them, in order.
enum class WakeStep { kRequested, kMachineStarting, kServicesStarting, kReady };
// "Wake requested", "Machine starting", ...
std::string_view step_label(WakeStep step);
// The step a backend is at, or nullopt when no wake is under way (asleep with nobody asking,
// going to sleep, in error, or not known yet).
std::optional<WakeStep> current_step(const BackendView& view);
// One sentence under the wake button: what happens next and whether the page moves by itself.
std::string hint(const BackendView& view);
// For /api/status: "" while a controller can act, else "etcd_unreachable" or "handing_over".
std::string_view coordination_code(Coordination coordination);
// A whole number of seconds in words for the pages that work without JavaScript: "10 minutes",
// "1 minute", "45 seconds", "1 min 30 s".
std::string duration_in_words(std::chrono::seconds duration);
// The estimate of a wake's time left, `elapsed` into it, from the backend's usual wake time:
// "about 2 minutes left", "about 30 seconds left", or "taking longer than usual".
std::string time_left(std::chrono::seconds elapsed, std::chrono::seconds usual);

// A point in time as a page shows it without its script: "14:02:07 UTC" on `now`'s day, "6 Dec
// 14:02 UTC" on another (the server does not know the reader's time zone; the scripts show local
// times). The ISO text stays in the <time datetime> attribute. "" for what is not a time.
std::string human_time(const nlohmann::json& iso, std::chrono::system_clock::time_point now);

// Adds the human_time of `since`, `last_activity` and `idle_deadline` to a backend's page data,
// as since_text, last_activity_text and idle_deadline_text.
void add_time_texts(nlohmann::json& backend, std::chrono::system_clock::time_point now);

// Why a backend's last wake or sleep failed, as far as the public may know. The full error text
// (a cloud's fault message can carry a traceback and internal host names) is for admins only:
// the public status, the launcher and the waiting page show failure_summary() instead.
enum class FailureReason {
  kNone,              // no error
  kCloudRefused,      // the cloud answered the request with an error
  kCloudUnreachable,  // no answer, a timeout, or a gateway error from the cloud
  kNoCapacity,        // quota exceeded, or no host with room for the VM
  kCloudFault,        // the cloud reports the VM itself in error
  kNotReadyInTime,    // the wake did not finish within the configured time
  kUnhealthy,         // the VM runs but the backend's health check never passed
  kCloudStuck,        // the cloud accepted the request but the VM did not change
};

// The reason an error text (the reconciler's last_error) stands for: first the reconciler's own
// failures, recognised by how it words them, then capacity and transport failures recognised by
// the cloud's and libcurl's words, then a refused action ("wake failed: ...", "sleep failed:
// ..."); anything else is the cloud reporting the VM in error.
FailureReason classify_failure(std::string_view error);
// A short identifier for API clients: "cloud_refused", "cloud_unreachable", ...; "" for kNone.
std::string_view failure_code(FailureReason reason);
// One short sentence for visitors, with nothing from the cloud in it; "" for kNone.
std::string_view failure_summary(FailureReason reason);

// Adds to a backend's status entry what the templates show: state_label, explanation, is_ready,
// can_wake, is_busy, is_error, auto_refresh, steps (each {key, label, is_done, is_current}),
// step (the current one's key, "" for none), hint (in error: what the visitor can do),
// wake_button, idle_timeout_text, and history_summary (one line about the last 7 days, for the
// control page without JavaScript).
void add_page_fields(const BackendView& view, nlohmann::json& entry);

// One entry of the /api/status document's "backends", written from its typed view. Absent
// values are JSON null, not "" or 0.
nlohmann::json backend_json(const BackendView& view);

}  // namespace unshelver::web
