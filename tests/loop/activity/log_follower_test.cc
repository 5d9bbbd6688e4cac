// Loop tests for LogFollower: a real libuv loop, real inotify, real files in a temporary
// directory.
//
// The file operations in most tests run on the test thread *between* turns of the loop, so the
// follower sees their combined effect, as it would if it had been slow: for example "append, copy,
// truncate" in one step means the follower is behind when the truncation happens. The stress test
// at the end runs tests/integration/log_writer.py as a separate process instead, which writes and
// rotates concurrently with the follower at more than 10,000 lines/s.
//
// Every test ends in TearDown with the follower closed, the loop run until it has nothing left and
// uv_loop_close() == 0 (libuv's MAKE_VALGRIND_HAPPY check).
#include "activity/log_follower.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "support/loop.h"
#include "support/source_root.h"
#include "uv/handle.h"
#include "uv/timer.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

void append(const std::string& path, std::string_view text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(static_cast<ssize_t>(text.size()), ::write(fd, text.data(), text.size()));
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Lines "<prefix>-<n>" for n in [from, to), each with a different length so that offsets and
// tails differ between files.
std::string numbered(std::string_view prefix, int from, int to) {
  std::string text;
  for (int n = from; n < to; ++n) {
    text += std::string(prefix) + "-" + std::to_string(n) +
            std::string(static_cast<std::size_t>(n % 7), '.') + "\n";
  }
  return text;
}

std::vector<std::string> numbered_lines(std::string_view prefix, int from, int to) {
  std::vector<std::string> lines;
  std::istringstream in(numbered(prefix, from, to));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class LogFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(0, uv_loop_init(&loop_));
    char pattern[] = "/tmp/unshelver-follow-XXXXXX";
    ASSERT_NE(nullptr, ::mkdtemp(pattern));
    dir_ = pattern;
    path_ = dir_ + "/access.log";
    checkpoint_ = dir_ + "/follow.checkpoint.json";
  }

  void TearDown() override {
    follower_.reset();
    // The follower must leave nothing behind.
    testing::drain_and_close_loop(&loop_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Test defaults: a stat timer too slow to matter, so that inotify events have to do the work.
  LogFollowerOptions options() const {
    LogFollowerOptions options;
    options.stat_interval = 10s;
    options.checkpoint_interval = 50ms;
    return options;
  }

  LogFollowerOptions options_with_checkpoint() const {
    LogFollowerOptions with = options();
    with.checkpoint_path = checkpoint_;
    return with;
  }

  void start_follower(LogFollowerOptions options) {
    lines_.clear();
    follower_ =
        std::make_unique<LogFollower>(&loop_, path_, std::move(options), [this](std::string_view line) {
          lines_.emplace_back(line);
          if (on_line_) on_line_(line);
        });
    Status started = follower_->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
  }

  // Starts the follower with a stat net from `shortest` to `longest`, the test defaults otherwise.
  void start_with_stat_net(std::chrono::milliseconds shortest, std::chrono::milliseconds longest) {
    auto opts = options();
    opts.stat_interval = shortest;
    opts.stat_interval_max = longest;
    start_follower(opts);
  }

  // Closes the follower as Unshelver's shutdown would, and lets the loop free its handles.
  void stop_follower() {
    follower_->close();
    follower_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
  }

  // Runs the loop until `done()` holds or `limit` has passed; returns whether `done()` held.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    return testing::run_loop_until(&loop_, done, limit);
  }

  void run_for(std::chrono::milliseconds duration) {
    run_until([] { return false; }, duration);
  }

  bool wait_lines(std::size_t count, std::chrono::milliseconds limit = 5s) {
    bool reached = run_until([&] { return lines_.size() >= count; }, limit);
    // Give a wrong implementation the chance to deliver more than it should.
    run_for(30ms);
    return reached;
  }

  std::string backup_path(const std::string& stamp) const { return dir_ + "/access-" + stamp + ".log"; }

  uv_loop_t loop_{};
  std::string dir_;
  std::string path_;
  std::string checkpoint_;
  std::unique_ptr<LogFollower> follower_;
  std::vector<std::string> lines_;
  std::function<void(std::string_view)> on_line_;
};

TEST_F(LogFollowerTest, FileAbsentAtStartThenCreated) {
  start_follower(options());
  run_for(50ms);
  EXPECT_TRUE(lines_.empty());
  EXPECT_FALSE(follower_->position().has_value());

  append(path_, "one\ntwo\n");
  ASSERT_TRUE(wait_lines(2));
  EXPECT_EQ((std::vector<std::string>{"one", "two"}), lines_);
  EXPECT_EQ(0u, follower_->stats().rotations);
  ASSERT_TRUE(follower_->position().has_value());
  EXPECT_EQ(8u, follower_->position()->offset);
}

TEST_F(LogFollowerTest, PartialLineWaitsForTheRest) {
  append(path_, "");
  start_follower(options());
  append(path_, "hel");
  run_for(50ms);
  EXPECT_TRUE(lines_.empty()) << "a partial line was emitted";

  append(path_, "lo\nwor");
  ASSERT_TRUE(wait_lines(1));
  append(path_, "ld\n\n");
  ASSERT_TRUE(wait_lines(3));
  EXPECT_EQ((std::vector<std::string>{"hello", "world", ""}), lines_);
  EXPECT_EQ(13u, follower_->stats().bytes);
}

TEST_F(LogFollowerTest, NoCheckpointStartsAtTheEnd) {
  // History, and a line that the writer is in the middle of when we start.
  append(path_, numbered("old", 0, 50) + "par");
  start_follower(options());
  run_for(50ms);
  EXPECT_TRUE(lines_.empty()) << "history was replayed";

  append(path_, "tial\nnext\n");
  ASSERT_TRUE(wait_lines(2));
  EXPECT_EQ((std::vector<std::string>{"partial", "next"}), lines_);
}

TEST_F(LogFollowerTest, LumberjackRotationDrainsTheOldFileFirst) {
  append(path_, "");
  start_follower(options());
  append(path_, numbered("a", 0, 5));
  ASSERT_TRUE(wait_lines(5));

  // Rotation 1 as Caddy does it, in one step while the follower is not looking: lines written
  // right before the rename, the rename, the new file, and the backup compressed and deleted at
  // once. Only the descriptor the follower holds can still read those last lines.
  append(path_, numbered("a", 5, 10));
  ASSERT_EQ(0, ::rename(path_.c_str(), backup_path("2026-01-01T00-00-00.000").c_str()));
  append(path_, numbered("b", 0, 5));
  ASSERT_EQ(0, ::unlink(backup_path("2026-01-01T00-00-00.000").c_str()));
  ASSERT_TRUE(wait_lines(15));

  // Rotation 2 with the ENOENT window observed by the follower: rename, a pause, then create.
  append(path_, numbered("b", 5, 8));
  ASSERT_EQ(0, ::rename(path_.c_str(), backup_path("2026-01-01T00-00-01.000").c_str()));
  run_for(50ms);
  append(path_, numbered("c", 0, 4));
  ASSERT_TRUE(wait_lines(22));

  auto expected =
      concat(concat(numbered_lines("a", 0, 10), numbered_lines("b", 0, 8)), numbered_lines("c", 0, 4));
  EXPECT_EQ(expected, lines_);
  EXPECT_EQ(2u, follower_->stats().rotations);
  EXPECT_EQ(0u, follower_->stats().truncations);
}

TEST_F(LogFollowerTest, CopyTruncateWhenCaughtUp) {
  append(path_, "");
  start_follower(options());
  append(path_, numbered("a", 0, 20));
  ASSERT_TRUE(wait_lines(20));

  ASSERT_EQ(0, ::truncate(path_.c_str(), 0));
  append(path_, numbered("b", 0, 3));
  ASSERT_TRUE(wait_lines(23));
  EXPECT_EQ(concat(numbered_lines("a", 0, 20), numbered_lines("b", 0, 3)), lines_);
  EXPECT_EQ(1u, follower_->stats().truncations);
  EXPECT_EQ(0u, follower_->stats().rotations);
}

TEST_F(LogFollowerTest, CopyTruncateWhileBehindReadsTheRestFromTheCopy) {
  append(path_, "");
  start_follower(options());
  append(path_, numbered("a", 0, 5));
  ASSERT_TRUE(wait_lines(5));

  // The follower has not read a-5..a-9 when logrotate copies and truncates.
  append(path_, numbered("a", 5, 10));
  std::filesystem::copy_file(path_, path_ + ".1");
  ASSERT_EQ(0, ::truncate(path_.c_str(), 0));
  append(path_, numbered("b", 0, 2));
  ASSERT_TRUE(wait_lines(12));
  EXPECT_EQ(concat(numbered_lines("a", 0, 10), numbered_lines("b", 0, 2)), lines_);
  EXPECT_EQ(1u, follower_->stats().truncations);
}

TEST_F(LogFollowerTest, CopyTruncateWithOnlyAPartialFirstLineReadPicksTheNewestCopy) {
  // An older, bigger copy from an earlier copytruncate that starts with the same bytes.
  append(path_ + ".1", "{\"seq\":1}\n" + numbered("{\"seq\":old", 0, 50));
  append(path_, "");
  start_follower(options());
  run_for(30ms);  // file timestamps are coarse: let the clock tick past the old copy's mtime

  // All the follower knows of the file is the start of its first line, which both copies share.
  append(path_, "{\"seq\":");
  run_for(30ms);
  append(path_, "2}\n{\"seq\":3}\n");
  std::filesystem::copy_file(path_, path_ + ".2");
  ASSERT_EQ(0, ::truncate(path_.c_str(), 0));
  // Shorter than what was read, so that the truncation shows. (Had the new content begun with
  // the same bytes as the partial line, no follower could have told it from growth.)
  append(path_, "x\n");
  ASSERT_TRUE(wait_lines(3));
  EXPECT_EQ((std::vector<std::string>{"{\"seq\":2}", "{\"seq\":3}", "x"}), lines_);
  EXPECT_EQ(1u, follower_->stats().truncations);
}

TEST_F(LogFollowerTest, TruncatedAndRegrownPastTheOffsetIsDetected) {
  append(path_, "");
  start_follower(options());
  append(path_, numbered("a", 0, 3));
  ASSERT_TRUE(wait_lines(3));

  // By the time the follower looks, the file is longer than its offset again: the size check
  // alone would read on from the middle of "b-..." lines.
  ASSERT_EQ(0, ::truncate(path_.c_str(), 0));
  append(path_, numbered("bbbbbbbb", 0, 10));
  ASSERT_TRUE(wait_lines(13));
  EXPECT_EQ(concat(numbered_lines("a", 0, 3), numbered_lines("bbbbbbbb", 0, 10)), lines_);
  EXPECT_EQ(1u, follower_->stats().truncations);
}

TEST_F(LogFollowerTest, DeleteAndRecreate) {
  append(path_, "");
  start_follower(options());
  append(path_, numbered("a", 0, 3));
  ASSERT_TRUE(wait_lines(3));

  // In one step: last lines, unlink, a new file with lines. The old inode stays readable
  // through the follower's descriptor.
  append(path_, numbered("a", 3, 6));
  ASSERT_EQ(0, ::unlink(path_.c_str()));
  append(path_, numbered("b", 0, 2));
  ASSERT_TRUE(wait_lines(8));

  // With the follower watching the gap.
  append(path_, numbered("b", 2, 4));
  ASSERT_EQ(0, ::unlink(path_.c_str()));
  run_for(50ms);
  append(path_, numbered("c", 0, 2));
  ASSERT_TRUE(wait_lines(12));

  auto expected =
      concat(concat(numbered_lines("a", 0, 6), numbered_lines("b", 0, 4)), numbered_lines("c", 0, 2));
  EXPECT_EQ(expected, lines_);
  EXPECT_EQ(2u, follower_->stats().rotations);
}

// The stat net alone (issue 20): the path is a symlink into a directory the follower does not
// watch, so neither writes nor the rotation there raise an inotify event for it. While nothing
// happens the net backs off to its cap; a rotation it did not hear about is still found by a
// stat pass, and finding it brings the net back to its shortest interval.
TEST_F(LogFollowerTest, StatNetBacksOffWhileQuietAndStillFindsAMissedRotation) {
  const std::string real_dir = dir_ + "/elsewhere";
  const std::string real_path = real_dir + "/access.log";
  ASSERT_EQ(0, ::mkdir(real_dir.c_str(), 0700));
  append(real_path, "");
  ASSERT_EQ(0, ::symlink(real_path.c_str(), path_.c_str()));
  start_with_stat_net(20ms, 160ms);
  EXPECT_EQ(20ms, follower_->stat_interval());

  // Quiet: 20, 40, 80, then 160 ms and no further.
  ASSERT_TRUE(run_until([&] { return follower_->stat_interval() == 160ms; }));
  const std::uint64_t passes = follower_->stats().stat_passes;
  run_for(400ms);
  EXPECT_EQ(160ms, follower_->stat_interval());
  EXPECT_LE(follower_->stats().stat_passes, passes + 4) << "the net kept its shortest interval";

  // A rotation as lumberjack does it, where inotify cannot see it.
  append(real_path, numbered("a", 0, 5));
  ASSERT_EQ(0, ::rename(real_path.c_str(), (real_dir + "/access-1.log").c_str()));
  append(real_path, numbered("b", 0, 3));
  const auto before = Clock::now();
  ASSERT_TRUE(run_until([&] { return lines_.size() >= 8; }));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - before);
  // The pass that read the lines has just reset the interval; no other pass ran since.
  EXPECT_EQ(20ms, follower_->stat_interval());
  EXPECT_EQ(concat(numbered_lines("a", 0, 5), numbered_lines("b", 0, 3)), lines_);
  EXPECT_EQ(1u, follower_->stats().rotations);
  // Within one cap of 160 ms on an unloaded machine; only a generous bound is asserted.
  EXPECT_LT(took, 5s) << "the stat net did not find the rotation";
}

// Lines that inotify announces bring a backed-off net back to its shortest interval.
TEST_F(LogFollowerTest, AWriteBurstResetsTheStatInterval) {
  append(path_, "");
  start_with_stat_net(20ms, 320ms);
  ASSERT_TRUE(run_until([&] { return follower_->stat_interval() == 320ms; }));

  for (int burst = 0; burst < 20; ++burst) append(path_, numbered("w", burst * 10, burst * 10 + 10));
  ASSERT_TRUE(run_until([&] { return lines_.size() >= 200; }));
  EXPECT_EQ(20ms, follower_->stat_interval());
  EXPECT_EQ(numbered_lines("w", 0, 200), lines_);

  // And once the burst is over it backs off again.
  ASSERT_TRUE(run_until([&] { return follower_->stat_interval() == 320ms; }));
}

// A configured interval above the cap is kept as it is: the cap never shortens the net.
TEST_F(LogFollowerTest, StatIntervalAboveTheCapDoesNotBackOff) {
  append(path_, "");
  start_with_stat_net(30ms, 10ms);
  ASSERT_TRUE(run_until([&] { return follower_->stats().stat_passes >= 3; }));
  EXPECT_EQ(30ms, follower_->stat_interval());
}

TEST_F(LogFollowerTest, OverlongLinesAreSkippedAndCounted) {
  auto opts = options();
  opts.max_line_bytes = 64;
  append(path_, "");
  start_follower(opts);

  const std::string exactly_max(64, 'm');
  append(path_, "a\n" + std::string(200, 'x') + "\nb\n" + exactly_max + "\n");
  ASSERT_TRUE(wait_lines(3));
  EXPECT_EQ(1u, follower_->stats().overlong_lines);

  // An overlong line that arrives in pieces, with a neighbour before and after it.
  append(path_, "c\n" + std::string(40, 'y'));
  run_for(30ms);
  append(path_, std::string(40, 'y'));
  run_for(30ms);
  append(path_, std::string(500, 'y'));
  run_for(30ms);
  append(path_, "yyy\nd\n");
  ASSERT_TRUE(wait_lines(5));
  EXPECT_EQ((std::vector<std::string>{"a", "b", exactly_max, "c", "d"}), lines_);
  EXPECT_EQ(2u, follower_->stats().overlong_lines);
}

TEST_F(LogFollowerTest, CheckpointRestartResumesWithoutReplayOrLoss) {
  append(path_, numbered("history", 0, 10));
  start_follower(options_with_checkpoint());
  append(path_, numbered("n", 0, 5));
  ASSERT_TRUE(wait_lines(5));
  stop_follower();
  ASSERT_TRUE(std::filesystem::exists(checkpoint_));

  // Written while Unshelver is down.
  append(path_, numbered("m", 0, 4));
  start_follower(options_with_checkpoint());
  ASSERT_TRUE(wait_lines(4));
  EXPECT_EQ(numbered_lines("m", 0, 4), lines_);

  // And once more, to check the checkpoint written by the second follower.
  stop_follower();
  append(path_, numbered("k", 0, 2));
  start_follower(options_with_checkpoint());
  ASSERT_TRUE(wait_lines(2));
  EXPECT_EQ(numbered_lines("k", 0, 2), lines_);
}

TEST_F(LogFollowerTest, CheckpointIsWrittenPeriodicallyWhileRunning) {
  append(path_, "");
  start_follower(options_with_checkpoint());
  append(path_, "one\ntwo\n");
  ASSERT_TRUE(wait_lines(2));
  ASSERT_TRUE(run_until([&] { return std::filesystem::exists(checkpoint_); }, 2s));
  ASSERT_TRUE(run_until(
      [&] {
        auto document = nlohmann::json::parse(read_file(checkpoint_), nullptr, false);
        return !document.is_discarded() && document.value("offset", 0u) == 8u;
      },
      2s));
  struct stat st {};
  ASSERT_EQ(0, ::stat(path_.c_str(), &st));
  auto document = nlohmann::json::parse(read_file(checkpoint_));
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_ino), document["inode"].get<std::uint64_t>());
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_dev), document["device"].get<std::uint64_t>());
}

TEST_F(LogFollowerTest, CheckpointRestartAfterRotationWhileDown) {
  append(path_, "");
  start_follower(options_with_checkpoint());
  append(path_, numbered("n", 0, 5));
  ASSERT_TRUE(wait_lines(5));
  stop_follower();

  // While down: more lines to the old file, two lumberjack rotations (the middle generation is
  // an uncompressed backup, as with roll_uncompressed), lines in the current file.
  append(path_, numbered("m", 0, 3));
  ASSERT_EQ(0, ::rename(path_.c_str(), backup_path("2026-01-01T00-00-00.000").c_str()));
  append(path_, numbered("g", 0, 3));
  ASSERT_EQ(0, ::rename(path_.c_str(), backup_path("2026-01-01T00-00-05.000").c_str()));
  append(path_, numbered("k", 0, 3));
  // An older, unrelated backup must not be read.
  append(backup_path("2025-12-31T00-00-00.000"), numbered("ancient", 0, 3));

  start_follower(options_with_checkpoint());
  ASSERT_TRUE(wait_lines(9));
  auto expected =
      concat(concat(numbered_lines("m", 0, 3), numbered_lines("g", 0, 3)), numbered_lines("k", 0, 3));
  EXPECT_EQ(expected, lines_);
  EXPECT_EQ(0u, follower_->stats().missed_while_down);
}

TEST_F(LogFollowerTest, CheckpointRestartAfterTheRotatedFileWasCompressed) {
  append(path_, "");
  start_follower(options_with_checkpoint());
  append(path_, numbered("n", 0, 5));
  ASSERT_TRUE(wait_lines(5));
  stop_follower();

  append(path_, numbered("m", 0, 3));
  ASSERT_EQ(0, ::rename(path_.c_str(), backup_path("2026-01-01T00-00-00.000").c_str()));
  append(path_, numbered("k", 0, 3));
  // lumberjack's gzip: the uncompressed backup is gone.
  ASSERT_EQ(0, ::rename(backup_path("2026-01-01T00-00-00.000").c_str(),
                        (backup_path("2026-01-01T00-00-00.000") + ".gz").c_str()));

  start_follower(options_with_checkpoint());
  ASSERT_TRUE(wait_lines(3));
  EXPECT_EQ(numbered_lines("k", 0, 3), lines_);
  EXPECT_EQ(1u, follower_->stats().missed_while_down);
}

TEST_F(LogFollowerTest, CheckpointRestartAfterTruncationWhileDown) {
  append(path_, "");
  start_follower(options_with_checkpoint());
  append(path_, numbered("n", 0, 20));
  ASSERT_TRUE(wait_lines(20));
  stop_follower();

  ASSERT_EQ(0, ::truncate(path_.c_str(), 0));
  append(path_, numbered("k", 0, 3));
  start_follower(options_with_checkpoint());
  ASSERT_TRUE(wait_lines(3));
  EXPECT_EQ(numbered_lines("k", 0, 3), lines_);
  EXPECT_EQ(1u, follower_->stats().truncations);
}

TEST_F(LogFollowerTest, UnparsableCheckpointIsAnErrorNamingTheFile) {
  append(checkpoint_, "{\"device\": 1, \"inode\":");
  follower_ =
      std::make_unique<LogFollower>(&loop_, path_, options_with_checkpoint(), [](std::string_view) {});
  Status started = follower_->start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(std::string::npos, started.error().message.find(checkpoint_)) << started.error().message;
}

TEST_F(LogFollowerTest, MissingDirectoryIsAnError) {
  follower_ =
      std::make_unique<LogFollower>(&loop_, dir_ + "/nope/access.log", options(), [](std::string_view) {});
  Status started = follower_->start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(std::string::npos, started.error().message.find(dir_ + "/nope"));
}

TEST_F(LogFollowerTest, CloseFromTheCallbackStopsAtThatLineAndCheckpointsIt) {
  append(path_, "");
  start_follower(options_with_checkpoint());
  on_line_ = [this](std::string_view) {
    if (lines_.size() == 3) follower_->close();
  };
  append(path_, numbered("a", 0, 10));
  run_for(100ms);
  EXPECT_EQ(numbered_lines("a", 0, 3), lines_);
  on_line_ = nullptr;
  follower_.reset();

  start_follower(options_with_checkpoint());
  ASSERT_TRUE(wait_lines(7));
  EXPECT_EQ(numbered_lines("a", 3, 10), lines_);
}

TEST_F(LogFollowerTest, AThrowingCallbackDoesNotStopTheFollower) {
  append(path_, "");
  start_follower(options());
  on_line_ = [](std::string_view line) {
    if (line == "boom") throw std::runtime_error("callback failure");
  };
  append(path_, "a\nboom\nb\n");
  ASSERT_TRUE(wait_lines(3));
  EXPECT_EQ((std::vector<std::string>{"a", "boom", "b"}), lines_);
}

// A big backlog is read a budget at a time, yielding to the loop in between, so that timers and
// sockets keep running (a 1 GB backlog must not starve the loop).
TEST_F(LogFollowerTest, LargeBacklogIsReadInSlicesWithoutStarvingTheLoop) {
  constexpr int kLines = 100'000;  // about 2.5 MB
  std::string text;
  for (int n = 0; n < kLines; ++n) text += "backlog-line-" + std::to_string(n) + "\n";
  const std::string staging = dir_ + "/staging";
  append(staging, text);

  auto opts = options();
  opts.read_budget = std::size_t{64} * 1024;
  lines_.clear();
  int received = 0;
  bool in_order = true;
  follower_ = std::make_unique<LogFollower>(&loop_, path_, opts, [&](std::string_view line) {
    in_order = in_order && line == "backlog-line-" + std::to_string(received);
    ++received;
  });
  ASSERT_TRUE(follower_->start().ok());

  // Counts the loop turns in which lines arrived, and timer ticks before the last line.
  struct CheckBlock {
    uv_check_t handle;
    int* received;
    int last = 0;
    int turns_with_lines = 0;
  };
  auto* check = new CheckBlock{{}, &received};
  uv_check_init(&loop_, &check->handle);
  check->handle.data = check;
  uv_check_start(&check->handle, [](uv_check_t* handle) {
    auto* block = static_cast<CheckBlock*>(handle->data);
    if (*block->received != block->last) ++block->turns_with_lines;
    block->last = *block->received;
  });
  int ticks_before_done = 0;
  Timer ticker(&loop_);
  ticker.start_repeating(1ms, [&] {
    if (received < kLines) ++ticks_before_done;
  });

  // A file full of history appears at the path: it is new, so it is read from its start.
  ASSERT_EQ(0, ::rename(staging.c_str(), path_.c_str()));
  ASSERT_TRUE(run_until([&] { return received == kLines; }, 20s)) << received;
  EXPECT_TRUE(in_order);
  const auto expected_turns = static_cast<int>(text.size() / opts.read_budget);
  EXPECT_GE(check->turns_with_lines, expected_turns) << "the backlog was not read in slices";
  EXPECT_GE(ticks_before_done, 1) << "a 1 ms timer never ran while the backlog was read";
  ticker.stop();
  close_and_free(check);
}

// ---- stress ---------------------------------------------------------------------------------

std::string writer_script() {
  return (test::source_root() / "tests/integration/log_writer.py").string();
}

struct WriterProcess {
  uv_process_t handle;
  bool exited = false;
  std::int64_t exit_status = -1;
  int term_signal = 0;
};

TEST_F(LogFollowerTest, StressRotationsLoseAndDuplicateNothing) {
  constexpr int kLines = 150'000;
  constexpr int kRate = 15'000;
  constexpr int kRotateEvery = 120;  // about 1,250 rotations
  const std::string script = writer_script();
  ASSERT_TRUE(std::filesystem::exists(script)) << script;
  const std::string summary_path = dir_ + "/writer-summary.json";

  std::vector<std::uint8_t> seen(kLines, 0);
  std::uint64_t unique = 0, duplicated = 0, malformed = 0;
  auto opts = options_with_checkpoint();
  opts.stat_interval = 200ms;
  opts.checkpoint_interval = 200ms;
  follower_ = std::make_unique<LogFollower>(&loop_, path_, opts, [&](std::string_view line) {
    constexpr std::string_view kPrefix = "{\"seq\":";
    int seq = -1;
    if (line.substr(0, kPrefix.size()) == kPrefix) {
      std::from_chars(line.data() + kPrefix.size(), line.data() + line.size(), seq);
    }
    if (seq < 0 || seq >= kLines || line.back() != '}') {
      ++malformed;
    } else if (seen[static_cast<std::size_t>(seq)]++ != 0) {
      ++duplicated;
    } else {
      ++unique;
    }
  });
  ASSERT_TRUE(follower_->start().ok());
  // UNSHELVER_FOLLOW_DEBUG=1 shows the follower's rotations and truncations, to diagnose a loss
  // together with the gaps printed below.
  const auto log_level = spdlog::get_level();
  if (std::getenv("UNSHELVER_FOLLOW_DEBUG") != nullptr) spdlog::set_level(spdlog::level::debug);

  const std::string pid = std::to_string(::getpid());
  std::vector<std::string> arguments = {"python3",        script,
                                        "--path",         path_,
                                        "--lines",        std::to_string(kLines),
                                        "--rate",         std::to_string(kRate),
                                        "--rotate-every", std::to_string(kRotateEvery),
                                        "--follower-pid", pid,
                                        "--copy-keep-ms", "500",
                                        "--seed",         "7",
                                        "--summary",      summary_path};
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  uv_stdio_container_t stdio[3];
  for (int fd = 0; fd < 3; ++fd) {
    stdio[fd].flags = UV_INHERIT_FD;
    stdio[fd].data.fd = fd;
  }
  uv_process_options_t process_options{};
  process_options.file = "python3";
  process_options.args = argv.data();
  process_options.stdio = stdio;
  process_options.stdio_count = 3;
  process_options.exit_cb = [](uv_process_t* handle, std::int64_t status, int signal) {
    auto* writer = reinterpret_cast<WriterProcess*>(handle);
    writer->exited = true;
    writer->exit_status = status;
    writer->term_signal = signal;
  };
  auto* writer = new WriterProcess{};
  const auto started = Clock::now();
  int rc = uv_spawn(&loop_, &writer->handle, &process_options);
  if (rc != 0) {
    // An error from uv_spawn still leaves the handle on the loop: it must be closed.
    close_and_free(writer);
    GTEST_SKIP() << "cannot run python3: " << uv_strerror(rc);
  }

  // Wait for the writer, then for the follower to catch up; give up well before 60 s.
  Clock::time_point writer_done{};
  bool finished = run_until(
      [&] {
        if (!writer->exited) return false;
        if (writer_done == Clock::time_point{}) writer_done = Clock::now();
        return unique + duplicated + malformed >= kLines || Clock::now() - writer_done > 3s;
      },
      45s);
  if (!writer->exited) {
    uv_process_kill(&writer->handle, SIGKILL);
    run_until([&] { return writer->exited; }, 5s);
  }
  const double follow_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const LogFollowerStats stats = follower_->stats();
  stop_follower();
  spdlog::set_level(log_level);
  const bool writer_ok = writer->exited && writer->exit_status == 0 && writer->term_signal == 0;
  close_and_free(writer);
  ASSERT_TRUE(finished) << "the writer did not finish within 45 s";
  ASSERT_TRUE(writer_ok) << "log_writer.py failed";

  auto summary = nlohmann::json::parse(read_file(summary_path), nullptr, false);
  ASSERT_FALSE(summary.is_discarded()) << "no writer summary";
  const std::uint64_t lost = kLines - unique;
  (void)std::printf(
      "[ stress   ] writer: %d lines in %.2f s = %.0f lines/s; rotations %d "
      "(lumberjack %d, copytruncate %d, delete+re-create %d); waited %.2f s for the follower "
      "to open new files\n"
      "[ stress   ] follower: received %llu unique, lost %llu, duplicated %llu, malformed %llu "
      "in %.2f s; stats: lines %llu, rotations %llu, truncations %llu, overlong %llu, "
      "read errors %llu\n",
      kLines, summary["elapsed_s"].get<double>(), summary["lines_per_s"].get<double>(),
      summary["rotations_total"].get<int>(), summary["rotations"]["lumberjack"].get<int>(),
      summary["rotations"]["copytruncate"].get<int>(), summary["rotations"]["delete"].get<int>(),
      summary["handshake_wait_s"].get<double>(), static_cast<unsigned long long>(unique),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(duplicated),
      static_cast<unsigned long long>(malformed), follow_seconds,
      static_cast<unsigned long long>(stats.lines), static_cast<unsigned long long>(stats.rotations),
      static_cast<unsigned long long>(stats.truncations),
      static_cast<unsigned long long>(stats.overlong_lines),
      static_cast<unsigned long long>(stats.read_errors));
  (void)std::fflush(stdout);

  // Show where lines went missing, with the rotations around each gap.
  int shown = 0;
  for (int seq = 0; seq < kLines && shown < 10; ++seq) {
    const std::uint8_t count = seen[static_cast<std::size_t>(seq)];
    if (count == 1) continue;
    int end = seq;
    while (end + 1 < kLines && seen[static_cast<std::size_t>(end) + 1] == count) ++end;
    std::string nearby;
    for (const auto& event : summary["events"]) {
      const int at = event[0].get<int>();
      if (at >= seq - kRotateEvery * 2 && at <= end + kRotateEvery * 2) {
        nearby += " " + event[1].get<std::string>() + "@" + std::to_string(at);
      }
    }
    (void)std::printf("[ stress   ] %s %d..%d; rotations after seq:%s\n", count == 0 ? "lost" : "duplicated",
                      seq, end, nearby.c_str());
    ++shown;
    seq = end;
  }
  (void)std::fflush(stdout);

  EXPECT_EQ(0u, lost);
  EXPECT_EQ(0u, duplicated);
  EXPECT_EQ(0u, malformed);
  EXPECT_EQ(0, summary["handshake_timeouts"].get<int>()) << "the follower did not open a new file within 5 s";
  EXPECT_TRUE(summary["background_errors"].empty()) << summary["background_errors"].dump();
  // The writer caps how long a copytruncate may be postponed, which gives the count a floor that
  // does not depend on the machine's load (about 620 here; an unloaded run makes about 1,250).
  EXPECT_GE(summary["rotations_total"].get<int>(), summary["rotations_floor"].get<int>());
  EXPECT_GE(summary["rotations_floor"].get<int>(), 600);
  EXPECT_EQ(static_cast<std::uint64_t>(summary["rotations"]["copytruncate"].get<int>()), stats.truncations);
  EXPECT_EQ(static_cast<std::uint64_t>(summary["rotations"]["lumberjack"].get<int>() +
                                       summary["rotations"]["delete"].get<int>()),
            stats.rotations);
}

}  // namespace
}  // namespace unshelver::io
