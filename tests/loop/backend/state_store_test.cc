// StateStore's coalesced saving on a real loop: a burst of changes costs a few writes, a change
// while a write runs is written right after it, and the file ends with the latest state.
#include "backend/state_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <string>

#include "support/loop.h"
#include "uv/files.h"

namespace unshelver::io {
namespace {

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "state-store-test-XXXXXX").string();
    ASSERT_NE(nullptr, ::mkdtemp(pattern.data()));
    directory_ = pattern;
    ASSERT_EQ(0, uv_loop_init(&loop_));
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  // What a fresh store reads back from the file.
  std::map<std::string, core::PersistedBackend> reread() {
    StateStore again(directory_);
    EXPECT_TRUE(again.open().ok());
    return again.loaded();
  }

  std::string directory_;
  uv_loop_t loop_{};
};

std::map<std::string, core::PersistedBackend> fleet(int size, bool awake) {
  std::map<std::string, core::PersistedBackend> backends;
  for (int i = 0; i < size; ++i) {
    core::PersistedBackend backend;
    backend.desired.awake = awake;
    backend.state = awake ? core::BackendState::kReady : core::BackendState::kAsleep;
    backends["b" + std::to_string(i)] = backend;
  }
  return backends;
}

TEST_F(StateStoreTest, ABurstOfChangesIsCoalescedAndTheLastStateWritten) {
  StateStore store(directory_);
  ASSERT_TRUE(store.open().ok());
  std::map<std::string, core::PersistedBackend> state = fleet(1000, false);
  int snapshots = 0;
  int errors = 0;
  store.save_in_background(
      &loop_,
      [&] {
        ++snapshots;
        return state;
      },
      [&](const Status&) { ++errors; });
  // 1,000 first observations in one loop turn, as at start-up: each changes one backend.
  for (int i = 0; i < 1000; ++i) {
    state["b" + std::to_string(i)].state = core::BackendState::kReady;
    store.mark_dirty();
  }
  // One write started at the first change; the others wait for it and make one more.
  EXPECT_EQ(store.writes_started(), 1u);
  EXPECT_TRUE(store.dirty());
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !store.writing(); }, std::chrono::seconds(10)));
  EXPECT_EQ(store.writes_started(), 2u);
  EXPECT_EQ(snapshots, 2);
  EXPECT_EQ(errors, 0);
  const auto written = reread();
  ASSERT_EQ(written.size(), 1000u);
  for (const auto& [name, backend] : written) EXPECT_EQ(backend.state, core::BackendState::kReady) << name;

  // A change after everything was written is written by itself.
  state["b7"].desired.awake = true;
  store.mark_dirty();
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !store.writing(); }, std::chrono::seconds(10)));
  EXPECT_EQ(store.writes_started(), 3u);
  EXPECT_FALSE(store.dirty());
  EXPECT_TRUE(reread().at("b7").desired.awake);

  // Written from the pieces kept per backend, the file reads exactly as one written whole.
  const std::string other = directory_ + "/whole";
  StateStore whole(other);
  ASSERT_TRUE(whole.open().ok());
  ASSERT_TRUE(whole.save(state).ok());
  EXPECT_EQ(*read_file(store.path()), *read_file(whole.path()));
  testing::drain_and_close_loop(&loop_);
}

TEST_F(StateStoreTest, NothingIsWrittenWithoutAChange) {
  StateStore store(directory_);
  ASSERT_TRUE(store.open().ok());
  int snapshots = 0;
  store.save_in_background(
      &loop_,
      [&] {
        ++snapshots;
        return fleet(1, true);
      },
      [](const Status&) {});
  testing::drain_and_close_loop(&loop_);
  EXPECT_EQ(snapshots, 0);
  EXPECT_FALSE(std::filesystem::exists(store.path()));
}

}  // namespace
}  // namespace unshelver::io
