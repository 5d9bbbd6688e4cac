// Loop tests of TickTimers: the drivers' tick timers of a loop on one libuv timer.
#include "uv/tick_timers.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <vector>

#include "support/loop.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;

class TickTimersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(0, uv_loop_init(&loop_));
    ticks_ = std::make_unique<TickTimers>(&loop_);
  }
  void TearDown() override {
    ticks_.reset();
    testing::drain_and_close_loop(&loop_);
  }
  static core::MonoTime now() { return std::chrono::steady_clock::now(); }

  uv_loop_t loop_{};
  std::unique_ptr<TickTimers> ticks_;
};

TEST_F(TickTimersTest, UsersDueAtTheSameMomentShareOneEntryAndRunTogetherNoSoonerThanIt) {
  std::vector<int> ran;
  std::vector<core::MonoTime> ran_at;
  std::vector<TickTimers::Slot> slots;
  slots.reserve(3);
  for (int i = 0; i < 3; ++i) {
    slots.push_back(ticks_->add([&, i] {
      ran.push_back(i);
      ran_at.push_back(now());
    }));
  }
  const core::MonoTime due = now() + 30ms;
  for (TickTimers::Slot slot : slots) ticks_->arm(slot, due);
  EXPECT_EQ(ticks_->moments(), 1u);
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return ran.size() == 3; }, 2s));
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2}));
  for (core::MonoTime at : ran_at) EXPECT_GE(at, due);
  EXPECT_FALSE(ticks_->armed(slots[0]));
  EXPECT_EQ(ticks_->moments(), 0u);
}

TEST_F(TickTimersTest, AMovedOrDisarmedUserRunsOnlyAtItsLatestMoment) {
  int early = 0;
  int moved = 0;
  int disarmed = 0;
  const TickTimers::Slot early_slot = ticks_->add([&] { ++early; });
  const TickTimers::Slot moved_slot = ticks_->add([&] { ++moved; });
  const TickTimers::Slot disarmed_slot = ticks_->add([&] { ++disarmed; });
  ticks_->arm(moved_slot, now() + 10ms);
  ticks_->arm(moved_slot, now() + 60ms);  // the entry at 10 ms is left behind, and skipped
  ticks_->arm(moved_slot, now() + 60ms + 0ms);
  ticks_->arm(disarmed_slot, now() + 20ms);
  ticks_->disarm(disarmed_slot);
  ticks_->arm(early_slot, now() + 40ms);
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return early == 1; }, 2s));
  EXPECT_EQ(moved, 0) << "its first moment was replaced";
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return moved == 1; }, 2s));
  testing::run_loop_until(
      &loop_, [] { return false; }, 50ms);
  EXPECT_EQ(moved, 1);
  EXPECT_EQ(early, 1);
  EXPECT_EQ(disarmed, 0);
  EXPECT_EQ(ticks_->moments(), 0u);
}

TEST_F(TickTimersTest, EntriesLeftBehindBySomeUsersMovedOftenAreSweptOut) {
  // A ready backend's ticks move with every probe, long before the moments they leave behind come:
  // those entries are swept once they outnumber the live ones, and the latest moments still run.
  int ran = 0;
  std::vector<TickTimers::Slot> slots;
  for (int i = 0; i < 10; ++i) slots.push_back(ticks_->add([&] { ++ran; }));
  const core::MonoTime start = now();
  for (int round = 0; round < 1'000; ++round) {
    for (TickTimers::Slot slot : slots) ticks_->arm(slot, start + 60s - std::chrono::milliseconds(round));
    EXPECT_LE(ticks_->entries(), 2 * slots.size() + 64 + 1) << "round " << round;
  }
  for (TickTimers::Slot slot : slots) ticks_->arm(slot, now() + 20ms);
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return ran == 10; }, 2s));
  testing::run_loop_until(
      &loop_, [] { return false; }, 50ms);
  EXPECT_EQ(ran, 10);
  EXPECT_EQ(ticks_->entries(), 0u);
  EXPECT_EQ(ticks_->moments(), 0u);
}

TEST_F(TickTimersTest, OnceNothingIsArmedTheLoopCanEnd) {
  // A shutdown disarms every driver and waits for the loop to end: moments left behind must not
  // hold it for up to a minute.
  const TickTimers::Slot slot = ticks_->add([] {});
  ticks_->arm(slot, now() + 60s);
  ticks_->arm(slot, now() + 59s);
  ticks_->disarm(slot);
  EXPECT_EQ(ticks_->moments(), 0u);
  const auto started = now();
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_LT(now() - started, 30s);
}

TEST_F(TickTimersTest, ACallbackMayArmItselfAgainOrRemoveItself) {
  int repeats = 0;
  TickTimers::Slot repeating = 0;
  repeating = ticks_->add([&] {
    if (++repeats < 3) ticks_->arm(repeating, now() + 5ms);
  });
  int once = 0;
  TickTimers::Slot removed = 0;
  removed = ticks_->add([&] {
    ++once;
    ticks_->remove(removed);
  });
  ticks_->arm(repeating, now() + 5ms);
  ticks_->arm(removed, now() + 5ms);
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return repeats == 3; }, 2s));
  EXPECT_EQ(once, 1);
  // A freed slot is given to the next user; the removed callback never runs again.
  int fresh = 0;
  const TickTimers::Slot reused = ticks_->add([&] { ++fresh; });
  EXPECT_EQ(reused, removed);
  ticks_->arm(reused, now() + 5ms);
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return fresh == 1; }, 2s));
  EXPECT_EQ(once, 1);
}

}  // namespace
}  // namespace unshelver::io
