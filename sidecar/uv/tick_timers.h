// TickTimers: many users' one-shot timers on one libuv timer (the backend drivers' ticks).
//
// Each user asks to run at a moment. With a libuv timer each, a thousand users re-armed now and
// then move timers in libuv's heap, whose nodes are a thousand handles scattered in memory: idle,
// with cold caches, those heap operations were a third of the loop's time at 1,000 sleeping
// backends (the profile in the README's idle_bench.py entry). Here the moments are kept by value
// in a small ordered map: users due at the same moment (settled observations fall due on whole
// seconds) share one entry and one wake-up of the loop, arming a user again for the moment it is
// armed for costs nothing, and moving it costs one entry (the old one is left behind and skipped
// when its moment comes; once they outnumber the live ones, they are swept out).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "base/clock.h"
#include "uv/timer.h"

namespace unshelver::io {

class TickTimers {
 public:
  using Slot = std::size_t;

  explicit TickTimers(uv_loop_t* loop);
  TickTimers(const TickTimers&) = delete;
  TickTimers& operator=(const TickTimers&) = delete;

  // A timer for one user: `callback` runs, on the loop, at each moment the slot is armed for.
  Slot add(std::function<void()> callback);
  // The slot's callback never runs again (it may be called from inside that callback).
  void remove(Slot slot);
  // Runs the slot's callback once at `due` (on the steady clock), replacing its earlier moment.
  void arm(Slot slot, core::MonoTime due);
  void disarm(Slot slot);
  bool armed(Slot slot) const { return users_[slot].armed; }
  // Moments held, live or left behind (for tests: they do not pile up).
  std::size_t moments() const { return due_.size(); }
  // Entries held, live or left behind (for tests: at most about twice the users armed).
  std::size_t entries() const { return entries_; }

 private:
  struct User {
    std::function<void()> callback;
    std::uint64_t generation = 0;  // bumped by every arm, disarm and remove: older entries are stale
    core::MonoTime due{};
    bool armed = false;
  };
  struct Entry {
    Slot slot = 0;
    std::uint64_t generation = 0;
  };
  bool live(const Entry& entry) const {
    const User& user = users_[entry.slot];
    return user.armed && user.generation == entry.generation;
  }
  void on_timer();
  // Drops the moments left with no live entry in front, and sets the libuv timer for the first.
  void set_timer();
  // Drops every entry left behind: each armed user keeps its one live entry.
  void sweep();

  Timer timer_;
  std::vector<User> users_;
  std::vector<Slot> free_;
  std::map<core::MonoTime, std::vector<Entry>> due_;
  std::optional<core::MonoTime> timer_at_;  // the moment the libuv timer is set for
  std::size_t armed_ = 0;                   // users armed
  std::size_t entries_ = 0;                 // entries in due_, live or left behind
};

}  // namespace unshelver::io
