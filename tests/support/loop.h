// The end of every loop test: libuv's MAKE_VALGRIND_HAPPY check (test/task.h), with a report.
//
// Runs the loop until nothing is left (the code under test must have closed its handles), with
// an unreferenced watchdog that stops a loop which would otherwise never end, then requires
// io::Loop's drain and close to succeed. Leaked handles are named as test failures (and
// force-closed by io::Loop, so that later tests in the same process start clean).
#pragma once

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <functional>

#include "uv/loop.h"
#include "uv/timer.h"

namespace unshelver::testing {

// Runs the loop until `done()` holds or `limit` has passed; returns whether `done()` held. A
// repeating timer guarantees wake-ups even when the code under test waits for nothing.
inline bool run_loop_until(uv_loop_t* loop, const std::function<bool()>& done,
                           std::chrono::milliseconds limit) {
  io::Timer heartbeat(loop);
  heartbeat.start_repeating(std::chrono::milliseconds(5), [] {});
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    uv_run(loop, UV_RUN_ONCE);
  }
  return true;
}

inline void drain_and_close_loop(uv_loop_t* loop) {
  struct Watchdog {
    uv_timer_t timer;
    bool fired = false;
  };
  auto* watchdog = new Watchdog;
  uv_timer_init(loop, &watchdog->timer);
  watchdog->timer.data = watchdog;
  uv_timer_start(
      &watchdog->timer,
      [](uv_timer_t* timer) {
        static_cast<Watchdog*>(timer->data)->fired = true;
        uv_stop(timer->loop);
      },
      5000, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog->timer));
  uv_run(loop, UV_RUN_DEFAULT);
  EXPECT_FALSE(watchdog->fired) << "the loop still had active handles 5 s after the test closed them";
  uv_close(reinterpret_cast<uv_handle_t*>(&watchdog->timer),
           [](uv_handle_t* handle) { delete static_cast<Watchdog*>(handle->data); });
  const int rc = io::Loop::drain_and_close(loop, [](uv_handle_t* handle) {
    ADD_FAILURE() << "leaked handle of type " << uv_handle_type_name(handle->type);
  });
  EXPECT_EQ(0, rc) << "uv_loop_close: " << uv_strerror(rc);
}

}  // namespace unshelver::testing
