#include "uv/tick_timers.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <utility>

namespace unshelver::io {

TickTimers::TickTimers(uv_loop_t* loop) : timer_(loop) {}

TickTimers::Slot TickTimers::add(std::function<void()> callback) {
  Slot slot = users_.size();
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    users_.emplace_back();
  }
  users_[slot].callback = std::move(callback);
  return slot;
}

void TickTimers::remove(Slot slot) {
  disarm(slot);
  // Not destroyed here: remove() may be called from inside this very callback.
  users_[slot].callback = [] {};
  free_.push_back(slot);
}

void TickTimers::arm(Slot slot, core::MonoTime due) {
  User& user = users_[slot];
  if (user.armed && user.due == due) return;
  if (!user.armed) ++armed_;
  ++user.generation;
  user.armed = true;
  user.due = due;
  due_[due].push_back(Entry{slot, user.generation});
  ++entries_;
  // A user moved often before its moments come (a ready backend's probes) leaves an entry behind
  // each time: swept once they are as many as the live ones, so memory follows the users armed
  // and the sweep's cost is spread over the arms that made the work.
  if (entries_ > 2 * armed_ + 64) {
    sweep();
  } else if (!timer_at_ || due < *timer_at_) {
    set_timer();
  }
}

void TickTimers::sweep() {
  entries_ = 0;
  for (auto it = due_.begin(); it != due_.end();) {
    std::erase_if(it->second, [this](const Entry& entry) { return !live(entry); });
    entries_ += it->second.size();
    it = it->second.empty() ? due_.erase(it) : std::next(it);
  }
  timer_at_.reset();
  set_timer();
}

void TickTimers::disarm(Slot slot) {
  User& user = users_[slot];
  if (!user.armed) return;
  ++user.generation;
  user.armed = false;
  if (--armed_ == 0) {
    // Nothing is armed: the moments left behind must not keep the loop alive (a shutdown
    // disarms every driver and waits for the loop to end).
    due_.clear();
    entries_ = 0;
    timer_.stop();
    timer_at_.reset();
  }
}

void TickTimers::on_timer() {
  timer_at_.reset();
  const core::MonoTime now = std::chrono::steady_clock::now();
  // A callback may arm, disarm or remove any slot, and add users: each moment's entries are taken
  // out of the map before they run, and users_ is indexed afresh for each.
  while (!due_.empty() && due_.begin()->first <= now) {
    const std::vector<Entry> entries = std::move(due_.extract(due_.begin()).mapped());
    entries_ -= entries.size();
    for (const Entry& entry : entries) {
      if (!live(entry)) continue;
      users_[entry.slot].armed = false;
      --armed_;
      const std::function<void()> callback = users_[entry.slot].callback;
      callback();
    }
  }
  set_timer();
}

void TickTimers::set_timer() {
  while (!due_.empty() && std::none_of(due_.begin()->second.begin(), due_.begin()->second.end(),
                                       [this](const Entry& entry) { return live(entry); })) {
    entries_ -= due_.begin()->second.size();
    due_.erase(due_.begin());
  }
  if (due_.empty()) {
    timer_.stop();
    timer_at_.reset();
    return;
  }
  const core::MonoTime first = due_.begin()->first;
  if (timer_at_ == first) return;
  timer_at_ = first;
  // Rounded up: a timer that fired before the moment would find nothing due and be set again.
  const auto delay = std::chrono::ceil<std::chrono::milliseconds>(first - std::chrono::steady_clock::now());
  timer_.start(std::max(delay, std::chrono::milliseconds(0)), [this] { on_timer(); });
}

}  // namespace unshelver::io
