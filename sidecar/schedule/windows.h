// Keep-warm windows: the times of the week during which a backend is held awake.
//
// A window is written as one string, `DAYS FROM-UNTIL [TIME_ZONE]`, for example
// "mon-fri 08:00-18:00 Europe/Zurich" or "fri 22:00-02:00 America/New_York": DAYS is a comma list
// of days (mon, tue, ..., sun) and ranges (mon-fri, fri-mon wraps), or `daily`; FROM and UNTIL are
// local times HH:MM (UNTIL may be 24:00). An UNTIL at or before FROM ends the next day, so a
// window may cross midnight; the days name the day on which it starts. Without a zone, UTC.
//
// The local times go through the zone's rules (schedule/time_zone.h) on each day:
// - a FROM or UNTIL that does not exist that day (the clock jumps forward over it) is taken as
//   the moment of the jump: a window from 02:30 opens at 03:00 on Zurich's spring change;
// - a FROM that exists twice (the clock falls back) is its earlier moment, an UNTIL that exists
//   twice its later one: the window is held the longer way, so on Zurich's autumn change a
//   window 01:00-02:30 lasts 2 h 30 min of real time.
// A window therefore lasts an hour more or less on the days of a change, as a person reading the
// wall clock would expect.
//
// Pure: the decision takes the time as a parameter.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "schedule/time_zone.h"

namespace unshelver::core {

struct KeepWarmWindow {
  std::uint8_t days = 0;  // bit 0 Monday ... bit 6 Sunday: the days on which the window opens
  std::chrono::minutes from{0};
  std::chrono::minutes until{0};  // at or before `from`: the next day
  std::string time_zone = "UTC";
};

Result<KeepWarmWindow> parse_keep_warm_window(std::string_view text);
// "" when `text` is a valid window (the zone is not looked up: see schedule/zone_files.h), else
// the problem; the config schema's check.
std::string keep_warm_window_problem(std::string_view text);

// "" when `name` may name a zone file (not empty, not absolute, no ".."), else the problem.
std::string time_zone_name_problem(std::string_view name);

// One opening of a window, in UTC.
struct WindowSpan {
  SysSeconds start;
  SysSeconds end;
  bool operator==(const WindowSpan&) const = default;
};

// What the windows say at one moment.
struct KeepWarmDecision {
  std::optional<WindowSpan> open;  // the opening (merged with any that overlap it) holding now
  std::optional<WindowSpan> next;  // the next opening after `open`, within the next 8 days
  // Open now, or the next opening starts within the lead: the backend is wanted awake.
  bool wake_now = false;
  // The opening the backend is held awake for (open, else next when wake_now).
  std::optional<WindowSpan> hold;
};

class KeepWarmSchedule {
 public:
  void add(KeepWarmWindow window, TimeZone zone);
  bool empty() const { return windows_.empty(); }

  // Every opening that overlaps [from, to), overlapping and touching ones merged, ascending.
  std::vector<WindowSpan> spans(SysSeconds from, SysSeconds to) const;
  // The decision at `now`, waking `lead` ahead of an opening so that the backend is ready by its
  // start.
  KeepWarmDecision decide(SysSeconds now, std::chrono::seconds lead) const;

 private:
  struct Zoned {
    KeepWarmWindow window;
    TimeZone zone;
  };
  std::vector<Zoned> windows_;
};

}  // namespace unshelver::core
