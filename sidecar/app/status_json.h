// Small conversions for the /api/status document: absent values are JSON null, not "" or 0.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "backend/reconciler.h"
#include "base/time_format.h"

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

}  // namespace unshelver::app
