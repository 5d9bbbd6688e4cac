// Timer: a uv_timer_t with a std::function callback, safe to destroy at any moment.
//
// The handle lives in a heap block freed only by its close callback (see uv_handle.h), so an
// owner may destroy its Timer even from inside the timer's own callback: the callback that is
// running was copied before the call, and the block outlives the Timer object.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

namespace unshelver::io {

class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Runs `callback` once after `delay`, replacing whatever was scheduled.
  void start(std::chrono::milliseconds delay, std::function<void()> callback);
  // Runs `callback` every `interval`, the first time after one interval.
  void start_repeating(std::chrono::milliseconds interval, std::function<void()> callback);
  void stop();
  bool active() const;
  // Timers do not keep the loop alive by themselves when unreferenced (used for slow safety nets).
  void unref();

 private:
  struct Block {
    uv_timer_t handle;
    std::function<void()> callback;
  };
  static void on_uv_timer(uv_timer_t* handle) noexcept;
  Block* block_;
};

}  // namespace unshelver::io
