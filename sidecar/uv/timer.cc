#include "uv/timer.h"

#include <spdlog/spdlog.h>

#include <exception>

#include "uv/handle.h"

namespace unshelver::io {

Timer::Timer(uv_loop_t* loop) : block_(new Block{}) {
  // uv_timer_init cannot fail on Linux (it only initialises fields); the result is still checked
  // so that a broken loop is noticed.
  int rc = uv_timer_init(loop, &block_->handle);
  if (rc != 0) spdlog::critical("uv_timer_init failed: {}", uv_strerror(rc));
  block_->handle.data = block_;
}

Timer::~Timer() {
  block_->callback = nullptr;
  uv_timer_stop(&block_->handle);
  close_and_free(block_);
}

void Timer::start(std::chrono::milliseconds delay, std::function<void()> callback) {
  block_->callback = std::move(callback);
  auto ms = delay.count() < 0 ? 0 : static_cast<uint64_t>(delay.count());
  uv_timer_start(&block_->handle, on_uv_timer, ms, 0);
}

void Timer::start_repeating(std::chrono::milliseconds interval, std::function<void()> callback) {
  block_->callback = std::move(callback);
  auto ms = interval.count() < 1 ? 1 : static_cast<uint64_t>(interval.count());
  uv_timer_start(&block_->handle, on_uv_timer, ms, ms);
}

void Timer::stop() {
  uv_timer_stop(&block_->handle);
}

bool Timer::active() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(&block_->handle)) != 0;
}

void Timer::unref() {
  uv_unref(reinterpret_cast<uv_handle_t*>(&block_->handle));
}

void Timer::on_uv_timer(uv_timer_t* handle) noexcept {
  auto* block = static_cast<Block*>(handle->data);
  if (!block->callback) return;
  // Copy first: the callback may destroy the owning Timer (which clears block->callback).
  std::function<void()> callback = block->callback;
  try {
    callback();
  } catch (const std::exception& error) {
    spdlog::critical("uncaught exception in a timer callback: {}", error.what());
  } catch (...) {
    spdlog::critical("uncaught non-standard exception in a timer callback");
  }
}

}  // namespace unshelver::io
