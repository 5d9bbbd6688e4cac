// The /api/status document, written from typed values: each backend from its BackendView, the
// subsystems from their own stats. Absent values are JSON null, not "" or 0.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "backend/driver.h"
#include "base/time_format.h"
#include "caddy/router.h"
#include "web/controller.h"

namespace unshelver::app {

inline nlohmann::json time_or_null(const std::optional<core::TimePoint>& at) {
  return at ? nlohmann::json(core::format_rfc3339(*at)) : nlohmann::json();
}

inline nlohmann::json text_or_null(const std::string& text) {
  return text.empty() ? nlohmann::json() : nlohmann::json(text);
}

// How an OpenStack response status is labelled in the status document and the metrics: the HTTP
// status, or "no_answer" for 0 (a timeout or a connection error, as SessionStats counts them).
inline std::string response_status_label(long status) {
  return status == 0 ? "no_answer" : std::to_string(status);
}

// A backend as the driver and Caddy's routing (`router`, null when not managed) say it is.
web::BackendView backend_view(const BackendDriver& driver, const CaddyRouter* router);

// One entry of the document's "backends".
nlohmann::json backend_json(const web::BackendView& view);

}  // namespace unshelver::app
