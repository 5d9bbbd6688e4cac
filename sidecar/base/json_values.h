// Small conversions for the JSON documents (the status document): absent values are null, not
// "" or 0.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/time_format.h"

namespace unshelver::core {

inline nlohmann::json time_or_null(const std::optional<std::chrono::system_clock::time_point>& at) {
  return at ? nlohmann::json(format_rfc3339(*at)) : nlohmann::json();
}

inline nlohmann::json text_or_null(const std::string& text) {
  return text.empty() ? nlohmann::json() : nlohmann::json(text);
}

}  // namespace unshelver::core
