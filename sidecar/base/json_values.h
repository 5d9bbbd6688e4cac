// Small conversions for the JSON documents (the status document): absent values are null, not
// "" or 0.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/time_format.h"

namespace unshelver::core {

inline nlohmann::json time_or_null(const std::optional<std::chrono::system_clock::time_point>& at) {
  return at ? nlohmann::json(format_rfc3339(*at)) : nlohmann::json();
}

inline nlohmann::json text_or_null(const std::string& text) {
  return text.empty() ? nlohmann::json() : nlohmann::json(text);
}

// A field of a JSON object that someone else wrote (an API's answer, a file a user or a test
// writes), or `fallback` when it is absent, of another type, or `object` is no object.
// nlohmann::json's value() and get() throw on a type mismatch, which must never escape into a
// libuv callback.
template <typename T>
T json_field(const nlohmann::json& object, std::string_view key, T fallback) {
  if (!object.is_object()) return fallback;
  const auto found = object.find(key);
  if (found == object.end()) return fallback;
  if constexpr (std::is_same_v<T, bool>) {
    return found->is_boolean() ? found->get<bool>() : fallback;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return found->is_string() ? found->get<std::string>() : fallback;
  } else {
    return found->is_number_integer() ? found->get<T>() : fallback;
  }
}

// A string field, or "" (see json_field).
inline std::string json_string(const nlohmann::json& object, std::string_view key) {
  return json_field(object, key, std::string());
}

}  // namespace unshelver::core
