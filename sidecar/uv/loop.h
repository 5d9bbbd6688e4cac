// Loop: one libuv loop's whole life, for the daemon, the CLI commands and the loop tests.
//
// init (the constructor), run, and at the end drain and close: run the loop until nothing is left
// (the close callbacks of handles that their owners closed), then uv_loop_close, which must return
// 0 (libuv's MAKE_VALGRIND_HAPPY rule). A loop that still holds handles is a leak: each one is
// named, then closed by force so that the loop can still be released. The destructor closes a
// loop that was not closed explicitly.
#pragma once

#include <uv.h>

#include <functional>

namespace unshelver::io {

class Loop {
 public:
  // How a handle still open at close is reported.
  using LeakReporter = std::function<void(uv_handle_t*)>;

  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // 0, or libuv's error when the loop could not be initialised (then only the destructor may run).
  int init_error() const { return init_error_; }
  bool open() const { return open_; }
  uv_loop_t* get() { return &loop_; }

  int run(uv_run_mode mode = UV_RUN_DEFAULT) { return uv_run(&loop_, mode); }
  void stop() { uv_stop(&loop_); }

  // Drains and closes the loop (see above). Returns uv_loop_close's first result: 0, or UV_EBUSY
  // after `leak` has been told about each handle left open. Closing twice does nothing.
  int close(const LeakReporter& leak = log_leaked_handle);

  // The same for a loop that is not a Loop (tests that own a bare uv_loop_t).
  static int drain_and_close(uv_loop_t* loop, const LeakReporter& leak = log_leaked_handle);
  // The default reporter: an error line naming the handle's type and whether it is active or closing.
  static void log_leaked_handle(uv_handle_t* handle);

 private:
  uv_loop_t loop_{};
  int init_error_ = 0;
  bool open_ = false;
};

}  // namespace unshelver::io
