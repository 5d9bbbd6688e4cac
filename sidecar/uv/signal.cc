#include "uv/signal.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <string>

namespace unshelver::io {

Signal::Signal(uv_loop_t* loop) : block_(new Block{}) {
  int rc = uv_signal_init(loop, &block_->handle);
  if (rc != 0) spdlog::critical("uv_signal_init failed: {}", uv_strerror(rc));
  block_->handle.data = block_;
}

Signal::~Signal() {
  block_->callback = nullptr;
  uv_signal_stop(&block_->handle);
  auto* handle = reinterpret_cast<uv_handle_t*>(&block_->handle);
  // The close callback casts back to exactly the type stored in `data` (STYLE §2.4).
  if (!uv_is_closing(handle))
    uv_close(handle, [](uv_handle_t* closed) { delete static_cast<Block*>(closed->data); });
}

Status Signal::start(int signal_number, std::function<void(int)> callback) {
  block_->callback = std::move(callback);
  if (int rc = uv_signal_start(&block_->handle, on_uv_signal, signal_number); rc != 0) {
    block_->callback = nullptr;
    return Error{"uv_signal_start(" + std::to_string(signal_number) + "): " + uv_strerror(rc)};
  }
  return ok_status();
}

void Signal::stop() {
  uv_signal_stop(&block_->handle);
}

void Signal::on_uv_signal(uv_signal_t* handle, int signal_number) noexcept {
  auto* block = static_cast<Block*>(handle->data);
  if (!block->callback) return;
  // Copy first: the callback may destroy the owning Signal (which clears block->callback).
  std::function<void(int)> callback = block->callback;
  try {
    callback(signal_number);
  } catch (const std::exception& error) {
    spdlog::critical("uncaught exception in a signal callback: {}", error.what());
  } catch (...) {
    spdlog::critical("uncaught non-standard exception in a signal callback");
  }
}

}  // namespace unshelver::io
