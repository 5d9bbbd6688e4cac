// Loop tests for io::Signal: a signal reaches its callback on the loop, and a Signal may be
// destroyed inside its own callback (as App does when SIGTERM starts the shutdown).
#include "uv/signal.h"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>

#include "support/loop.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;

class SignalTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(0, uv_loop_init(&loop_)); }
  void TearDown() override { testing::drain_and_close_loop(&loop_); }
  uv_loop_t loop_{};
};

TEST_F(SignalTest, DeliversTheSignalOnTheLoop) {
  auto signal = std::make_unique<Signal>(&loop_);
  int received = 0;
  ASSERT_TRUE(signal->start(SIGUSR1, [&](int number) { received = number; }));
  ASSERT_EQ(0, std::raise(SIGUSR1));
  EXPECT_TRUE(testing::run_loop_until(
      &loop_, [&] { return received != 0; }, 5s));
  EXPECT_EQ(SIGUSR1, received);
  signal.reset();
}

TEST_F(SignalTest, MayBeDestroyedInsideItsOwnCallback) {
  auto signal = std::make_unique<Signal>(&loop_);
  int calls = 0;
  ASSERT_TRUE(signal->start(SIGUSR2, [&](int) {
    ++calls;
    signal.reset();
  }));
  ASSERT_EQ(0, std::raise(SIGUSR2));
  EXPECT_TRUE(testing::run_loop_until(
      &loop_, [&] { return signal == nullptr; }, 5s));
  EXPECT_EQ(1, calls);
}

TEST_F(SignalTest, ReportsAnInvalidSignal) {
  Signal signal(&loop_);
  const Status started = signal.start(0, [](int) {});
  EXPECT_FALSE(started);
}

}  // namespace
}  // namespace unshelver::io
