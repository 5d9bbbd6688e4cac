// Signal: a uv_signal_t with a std::function callback, owned like Timer.
//
// The handle lives in a heap block freed only by its close callback (see handle.h), so an owner
// may destroy its Signal at any moment, even from inside the signal's own callback: the running
// callback was copied before the call, and the block outlives the Signal object.
#pragma once

#include <uv.h>

#include <functional>

#include "base/result.h"

namespace unshelver::io {

class Signal {
 public:
  explicit Signal(uv_loop_t* loop);
  ~Signal();
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;

  // Calls `callback(signal_number)` on the loop each time `signal_number` arrives.
  Status start(int signal_number, std::function<void(int)> callback);
  void stop();

 private:
  struct Block {
    uv_signal_t handle;
    std::function<void(int)> callback;
  };
  static void on_uv_signal(uv_signal_t* handle, int signal_number) noexcept;
  Block* block_;
};

}  // namespace unshelver::io
