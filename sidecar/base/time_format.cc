#include "base/time_format.h"

#include <cstdio>
#include <ctime>

namespace unshelver::core {

std::string format_rfc3339(std::chrono::system_clock::time_point at) {
  using namespace std::chrono;
  const auto micros = duration_cast<microseconds>(at.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  long fraction = static_cast<long>(micros % 1'000'000);
  if (fraction < 0) {
    fraction += 1'000'000;
    --seconds;
  }
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[96];  // Sized for any int fields, so that -Wformat-truncation can prove it fits.
  const int length =
      std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", utc.tm_year + 1900,
                    utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, fraction);
  // Only an encoding error fails snprintf, and these conversions have none; the buffer fits all.
  if (length < 0) return {};
  return buffer;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  std::tm utc{};
  int consumed = 0;
  std::string copy(text);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &utc.tm_year, &utc.tm_mon, &utc.tm_mday,
                  &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  // system_clock counts nanoseconds in 64 bits on this platform: it ends in the year 2262. Years
  // outside 1970..2200 are no timestamps Unshelver wrote, and would overflow the conversion.
  if (utc.tm_year < 1970 || utc.tm_year > 2200) return std::nullopt;
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
  long micros = 0;
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 6) {
        micros = micros * 10 + (rest.front() - '0');
        ++digits;
      }
      rest.remove_prefix(1);
    }
    while (digits++ < 6) micros *= 10;
  }
  if (rest != "Z" && rest != "+00:00") return std::nullopt;
  const std::time_t seconds = timegm(&utc);
  return std::chrono::system_clock::from_time_t(seconds) + std::chrono::microseconds(micros);
}

}  // namespace unshelver::core
