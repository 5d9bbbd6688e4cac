// TimeZone: UTC <-> local time for one IANA zone, from the zone's TZif file (RFC 8536).
//
// GCC 12's libstdc++ has no std::chrono::tzdb, so the zone files under /usr/share/zoneinfo are
// read once at start-up (schedule/zone_files.h) and parsed here: the version 2+ 64-bit data
// (the version 1 block is skipped) and, for times after the last transition, the POSIX TZ string
// of the file's footer (e.g. "CET-1CEST,M3.5.0,M10.5.0/3"). Leap seconds (the "right/" zones)
// are ignored: the system clock does not count them either.
//
// Converting a local time to UTC has two awkward cases, both answered with a documented choice:
// - a local time that does not exist (the clock jumps forward, e.g. 02:30 on Zurich's spring
//   change): it is taken as the moment of the jump (03:00 local), the first moment after it that
//   does exist;
// - a local time that exists twice (the clock falls back, e.g. 02:30 on Zurich's autumn change):
//   the caller chooses the earlier or the later of the two moments.
// Pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace unshelver::core {

using SysSeconds = std::chrono::sys_seconds;
using LocalSeconds = std::chrono::local_seconds;

// The POSIX TZ rule of a TZif footer: a standard offset, and optionally a daylight-saving offset
// with the rules of its start and end.
struct PosixZoneRule {
  // One end of daylight-saving time: a day of the year and a local time of day.
  struct Change {
    enum class Kind { kJulianNoLeap, kZeroBased, kMonthWeekDay };
    Kind kind = Kind::kMonthWeekDay;
    int day = 0;                   // Jn: 1..365; n: 0..365; Mm.w.d: the weekday d (0 = Sunday)
    int month = 0;                 // Mm.w.d only
    int week = 0;                  // Mm.w.d only: 1..5, 5 = the last
    std::int32_t time = 2 * 3600;  // seconds after local midnight; may be negative or past 24 h
  };
  std::int32_t std_offset = 0;  // seconds east of UTC
  std::string std_abbreviation;
  bool has_dst = false;
  std::int32_t dst_offset = 0;
  std::string dst_abbreviation;
  Change start;  // given in local standard time
  Change end;    // given in local daylight-saving time

  // The offset in effect at `at`.
  std::int32_t offset_at(SysSeconds at) const;
};

// Parses a POSIX TZ string such as "EST5EDT,M3.2.0,M11.1.0" or "<+0330>-3:30".
Result<PosixZoneRule> parse_posix_zone_rule(std::string_view text);

// Which of two moments a local time that exists twice stands for.
enum class Ambiguous { kEarlier, kLater };

class TimeZone {
 public:
  // Parses a TZif file's bytes. `name` is kept for messages and display.
  static Result<TimeZone> parse(std::string name, std::string_view tzif);
  // UTC, for a window with no zone and for tests.
  static TimeZone utc();

  const std::string& name() const { return name_; }
  // Seconds east of UTC in effect at `at`.
  std::int32_t offset_at(SysSeconds at) const;
  LocalSeconds to_local(SysSeconds at) const;
  // The moment a local time stands for (see the header comment for the two awkward cases).
  SysSeconds to_utc(LocalSeconds local, Ambiguous choose) const;

 private:
  struct Type {
    std::int32_t offset = 0;
    bool dst = false;
  };
  std::string name_;
  std::vector<std::int64_t> transitions_;       // UTC seconds, ascending
  std::vector<std::uint8_t> transition_types_;  // index into types_, one per transition
  std::vector<Type> types_;
  bool has_footer_ = false;
  PosixZoneRule footer_;
};

}  // namespace unshelver::core
