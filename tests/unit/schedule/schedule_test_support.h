// Shared by the schedule tests: the zone files checked in beside them (copies of tzdata's, so
// that the tests do not depend on the system's tzdata version) and a UTC time builder.
#pragma once

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "schedule/time_zone.h"

namespace unshelver::core::testing {

inline TimeZone zone(const std::string& name) {
  std::ifstream file(std::string(UNSHELVER_SOURCE_DIR) + "/tests/unit/schedule/zoneinfo/" + name,
                     std::ios::binary);
  std::stringstream bytes;
  bytes << file.rdbuf();
  auto parsed = TimeZone::parse(name, bytes.str());
  if (!parsed) throw std::runtime_error(parsed.error().message);
  return *parsed;
}

inline SysSeconds utc(int year, unsigned month, unsigned day, int hour, int minute = 0, int second = 0) {
  return std::chrono::sys_days(std::chrono::year(year) / static_cast<int>(month) / static_cast<int>(day)) +
         std::chrono::hours(hour) + std::chrono::minutes(minute) + std::chrono::seconds(second);
}

inline LocalSeconds local(int year, unsigned month, unsigned day, int hour, int minute = 0) {
  return std::chrono::local_days(std::chrono::year(year) / static_cast<int>(month) / static_cast<int>(day)) +
         std::chrono::hours(hour) + std::chrono::minutes(minute);
}

}  // namespace unshelver::core::testing
