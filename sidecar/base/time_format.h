// Timestamps as people and scripts read them: RFC 3339 in UTC with microseconds.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace unshelver::core {

// "2026-11-22T15:26:53.224117Z"
std::string format_rfc3339(std::chrono::system_clock::time_point at);
// Accepts what format_rfc3339 writes (fraction optional, 'Z' or "+00:00").
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

}  // namespace unshelver::core
