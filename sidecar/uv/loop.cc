#include "uv/loop.h"

#include <spdlog/spdlog.h>

namespace unshelver::io {

Loop::Loop() : init_error_(uv_loop_init(&loop_)), open_(init_error_ == 0) {}

Loop::~Loop() {
  close();
}

int Loop::close(const LeakReporter& leak) {
  if (!open_) return 0;
  open_ = false;
  return drain_and_close(&loop_, leak);
}

int Loop::drain_and_close(uv_loop_t* loop, const LeakReporter& leak) {
  uv_run(loop, UV_RUN_DEFAULT);
  const int closed = uv_loop_close(loop);
  if (closed == 0) return 0;
  uv_walk(
      loop,
      [](uv_handle_t* handle, void* arg) {
        (*static_cast<const LeakReporter*>(arg))(handle);
        // The handle's memory belongs to its (lost) owner; closing it without a callback is all
        // that can be done so that the loop can be released.
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
      },
      const_cast<LeakReporter*>(&leak));
  uv_run(loop, UV_RUN_DEFAULT);
  if (int again = uv_loop_close(loop); again != 0)
    spdlog::error("uv_loop_close after closing the leaked handles: {}", uv_strerror(again));
  return closed;
}

void Loop::log_leaked_handle(uv_handle_t* handle) {
  spdlog::error("handle still open at exit: {} (active {}, closing {})", uv_handle_type_name(handle->type),
                uv_is_active(handle), uv_is_closing(handle));
}

}  // namespace unshelver::io
