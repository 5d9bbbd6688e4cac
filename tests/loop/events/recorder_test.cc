// Loop tests of EventRecorder: the recorder and its journal on a real libuv loop (the writes run
// in libuv's thread pool), writing to a journal in a fresh temporary directory, no Swift mirror.
//
// What they hold the recorder to: an event is reported (recent(), last_recorded_seq(), waiters,
// on_change) only once its line is in the file; events are numbered in the order they were
// recorded; and a new recorder on the same file reads them back and continues the numbering.
#include "events/recorder.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "events/record.h"
#include "support/loop.h"

namespace unshelver::app {
namespace {

using namespace std::chrono_literals;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::vector<core::EventRecord> read_records(const std::filesystem::path& path) {
  std::vector<core::EventRecord> records;
  std::istringstream lines(read_text(path));
  std::string line;
  while (std::getline(lines, line)) {
    auto record = core::parse_event_line(line);
    EXPECT_TRUE(record.ok()) << line;
    if (record) records.push_back(*record);
  }
  return records;
}

core::EventRecord event(const std::string& backend, const std::string& action) {
  core::EventRecord record;
  record.at = std::chrono::system_clock::now();
  record.backend = backend;
  record.action = action;
  record.actor = "test";
  return record;
}

class EventRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(0, uv_loop_init(&loop_));
    std::string pattern = (std::filesystem::temp_directory_path() / "unshelver-recorder-XXXXXX").string();
    ASSERT_NE(nullptr, ::mkdtemp(pattern.data()));
    directory_ = pattern;
    config_.state_dir = directory_.string();
    config_.local_event_log = (directory_ / "events.jsonl").string();
  }

  void TearDown() override {
    if (recorder_) recorder_->close();
    recorder_.reset();
    testing::drain_and_close_loop(&loop_);
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  // A recorder whose every report is checked against the file: whatever it shows as recorded
  // must already be on disk.
  void start_recorder() {
    recorder_ =
        std::make_unique<EventRecorder>(&loop_, config_, nullptr, [this] { check_reported_on_disk(); });
    ASSERT_TRUE(recorder_->start().ok());
  }

  void check_reported_on_disk() {
    ++changes_;
    const std::string content = read_text(config_.local_event_log);
    for (const core::EventRecord& record : recorder_->recent(std::nullopt, "", 1000)) {
      EXPECT_NE(std::string::npos, content.find(record.id))
          << "event " << record.seq << " was reported before it was written";
    }
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    return testing::run_loop_until(&loop_, done, limit);
  }

  uv_loop_t loop_{};
  std::filesystem::path directory_;
  core::Config config_;
  std::unique_ptr<EventRecorder> recorder_;
  int changes_ = 0;
};

TEST_F(EventRecorderTest, AnEventIsReportedOnlyAfterItIsWritten) {
  start_recorder();
  EXPECT_TRUE(std::filesystem::exists(config_.local_event_log));
  recorder_->record(event("gpu", "unshelve_requested"));
  // Queued for the thread pool: not reported, not yet counted as recorded.
  EXPECT_EQ(0u, recorder_->last_recorded_seq());
  EXPECT_TRUE(recorder_->recent(std::nullopt, "", 10).empty());
  EXPECT_EQ(1u, recorder_->unwritten());
  ASSERT_TRUE(run_until([&] { return recorder_->last_recorded_seq() == 1; }));
  EXPECT_GT(changes_, 0);
  EXPECT_EQ(0u, recorder_->unwritten());
  auto recent = recorder_->recent(std::nullopt, "", 10);
  ASSERT_EQ(1u, recent.size());
  EXPECT_EQ(1u, recent[0].seq);
  EXPECT_FALSE(recent[0].id.empty());
  auto on_disk = read_records(config_.local_event_log);
  ASSERT_EQ(1u, on_disk.size());
  EXPECT_EQ(recent[0].id, on_disk[0].id);
  EXPECT_EQ("unshelve_requested", on_disk[0].action);
}

TEST_F(EventRecorderTest, EventsAreNumberedInTheOrderRecorded) {
  start_recorder();
  for (int i = 0; i < 20; ++i) recorder_->record(event(i % 2 ? "gpu" : "cpu", "step_" + std::to_string(i)));
  ASSERT_TRUE(run_until([&] { return recorder_->last_recorded_seq() == 20; }));
  auto recent = recorder_->recent(std::nullopt, "", 100);
  ASSERT_EQ(20u, recent.size());
  auto on_disk = read_records(config_.local_event_log);
  ASSERT_EQ(20u, on_disk.size());
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(i + 1, recent[i].seq);
    EXPECT_EQ("step_" + std::to_string(i), recent[i].action);
    EXPECT_EQ(i + 1, on_disk[i].seq);
    EXPECT_EQ(recent[i].id, on_disk[i].id);
  }
  // Paging forward and filtering by backend keep the order.
  auto page = recorder_->recent(5, "", 3);
  ASSERT_EQ(3u, page.size());
  EXPECT_EQ(6u, page[0].seq);
  EXPECT_EQ(8u, page[2].seq);
  auto gpu = recorder_->recent(std::nullopt, "gpu", 100);
  ASSERT_EQ(10u, gpu.size());
  for (std::size_t i = 1; i < gpu.size(); ++i) EXPECT_LT(gpu[i - 1].seq, gpu[i].seq);
  EXPECT_EQ(20u, gpu.back().seq);
}

TEST_F(EventRecorderTest, TransitionsBecomeRecords) {
  start_recorder();
  core::BackendConfig backend;
  backend.name = "gpu";
  backend.instance_name = "gpu-vm";
  core::Transition transition{core::BackendState::kAsleep,
                              core::BackendState::kWaking,
                              core::BackendEvent::kWakeRequested,
                              "public-button",
                              "a visitor",
                              std::chrono::system_clock::now()};
  recorder_->record_transition(backend, transition);
  ASSERT_TRUE(run_until([&] { return recorder_->last_recorded_seq() == 1; }));
  auto on_disk = read_records(config_.local_event_log);
  ASSERT_EQ(1u, on_disk.size());
  EXPECT_EQ("gpu", on_disk[0].backend);
  EXPECT_EQ("gpu-vm", on_disk[0].instance_name);
  EXPECT_EQ("public-button", on_disk[0].actor);
  EXPECT_EQ("asleep", on_disk[0].from);
  EXPECT_EQ("waking", on_disk[0].to);
  EXPECT_EQ(core::action_for(transition), on_disk[0].action);
}

TEST_F(EventRecorderTest, WaitersHearOfAnEventOnlyOnceItIsWritten) {
  start_recorder();
  bool released = false;
  std::uint64_t seen_seq = 0;
  recorder_->wait(0, 5s, [&] {
    released = true;
    seen_seq = recorder_->last_recorded_seq();
  });
  recorder_->record(event("gpu", "unshelve_requested"));
  EXPECT_FALSE(released) << "never inside the call";
  ASSERT_TRUE(run_until([&] { return released; }));
  EXPECT_EQ(1u, seen_seq);
  // A waiter for a later event times out, and never inside wait().
  bool timed_out = false;
  const auto started = std::chrono::steady_clock::now();
  recorder_->wait(1, 100ms, [&] { timed_out = true; });
  EXPECT_FALSE(timed_out);
  ASSERT_TRUE(run_until([&] { return timed_out; }));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 90ms);
  // A waiter for an event that is already recorded is answered on a later iteration.
  bool already = false;
  recorder_->wait(0, 5s, [&] { already = true; });
  EXPECT_FALSE(already);
  ASSERT_TRUE(run_until([&] { return already; }, 1s));
}

TEST_F(EventRecorderTest, ANewRecorderReadsBackAndContinuesTheNumbering) {
  start_recorder();
  for (int i = 0; i < 3; ++i) recorder_->record(event("gpu", "first_" + std::to_string(i)));
  ASSERT_TRUE(run_until([&] { return recorder_->last_recorded_seq() == 3; }));
  auto written = recorder_->recent(std::nullopt, "", 10);
  recorder_->close();
  // Nothing is recorded after close().
  recorder_->record(event("gpu", "too_late"));
  testing::run_loop_until(
      &loop_, [] { return false; }, 100ms);
  recorder_.reset();

  start_recorder();
  EXPECT_EQ(3u, recorder_->last_recorded_seq());
  auto read_back = recorder_->recent(std::nullopt, "", 10);
  ASSERT_EQ(3u, read_back.size());
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(written[i].seq, read_back[i].seq);
    EXPECT_EQ(written[i].id, read_back[i].id);
    EXPECT_EQ(written[i].action, read_back[i].action);
  }
  recorder_->record(event("gpu", "second"));
  ASSERT_TRUE(run_until([&] { return recorder_->last_recorded_seq() == 4; }));
  auto on_disk = read_records(config_.local_event_log);
  ASSERT_EQ(4u, on_disk.size());
  EXPECT_EQ(4u, on_disk.back().seq);
  EXPECT_EQ("second", on_disk.back().action);
  nlohmann::json status;
  recorder_->write_status(status);
  EXPECT_EQ(4u, status["events"]["last_seq"].get<std::uint64_t>());
}

}  // namespace
}  // namespace unshelver::app
