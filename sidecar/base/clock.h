// The two clocks, and which one each job uses.
//
// The wall clock (system_clock) says what time it is for people and files, but it jumps: an
// admin sets it, NTP steps it, a VM resumes with a stale one. The monotonic clock (steady_clock)
// only counts elapsed time. Every decision that waits (the idle timeout, the unshelve timeout,
// the error retry, how long a start stays open) runs on the monotonic clock, so a jump of the
// wall clock neither shelves a backend early nor keeps it awake for hours. Wall times are used
// only for what is persisted and shown; they are converted at the edge with a ClockReading.
#pragma once

#include <chrono>

namespace unshelver::core {

using TimePoint = std::chrono::system_clock::time_point;  // wall time: persisted and shown
using MonoTime = std::chrono::steady_clock::time_point;   // monotonic time: every decision

// Both clocks, read together. Pure code takes a reading as a parameter, so tests can move the
// wall clock alone and see that no decision follows it.
struct ClockReading {
  MonoTime mono{};
  TimePoint wall{};

  // Reads both clocks now (the only place that does, outside of tests and tools).
  static ClockReading now() { return {std::chrono::steady_clock::now(), std::chrono::system_clock::now()}; }

  // The wall time of a monotonic moment, at the offset between the clocks at this reading. Times
  // shown after a jump of the wall clock are thus shown on the new wall clock.
  TimePoint wall_of(MonoTime at) const {
    return wall + std::chrono::duration_cast<TimePoint::duration>(at - mono);
  }

  // The monotonic moment of a wall time that came from outside (an access-log line, the state
  // file). Only its age at this reading counts: a time in the future counts as now, and an age
  // beyond kLongestAge counts as kLongestAge (which keeps the arithmetic in range, and is far
  // longer than any timeout that compares against it).
  MonoTime mono_of(TimePoint at) const {
    if (at >= wall) return mono;
    if (at <= wall - kLongestAge) return mono - kLongestAge;
    return mono - std::chrono::duration_cast<MonoTime::duration>(wall - at);
  }

  // Time passing: both clocks move on together (for tests and for computed future readings).
  template <class Rep, class Period>
  ClockReading& operator+=(std::chrono::duration<Rep, Period> step) {
    mono += std::chrono::duration_cast<MonoTime::duration>(step);
    wall += std::chrono::duration_cast<TimePoint::duration>(step);
    return *this;
  }
  template <class Rep, class Period>
  friend ClockReading operator+(ClockReading reading, std::chrono::duration<Rep, Period> step) {
    return reading += step;
  }
  template <class Rep, class Period>
  friend ClockReading operator-(ClockReading reading, std::chrono::duration<Rep, Period> step) {
    return reading += -step;
  }

  static constexpr std::chrono::hours kLongestAge{24 * 366};
};

}  // namespace unshelver::core
