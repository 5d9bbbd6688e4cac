// Loop tests of EventRecorder: the recorder and its journal on a real libuv loop (the writes run
// in libuv's thread pool), writing to a journal in a fresh temporary directory, no Swift mirror.
//
// What they hold the recorder to: an event is reported (recent(), last_recorded_seq(), waiters,
// on_change) only once its line is in the file; events are numbered in the order they were
// recorded; and a new recorder on the same file reads them back and continues the numbering.
#include "events/recorder.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <uv.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/prometheus.h"
#include "events/noise_policy.h"
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

core::EventRecord failed_login(const std::string& client, const std::string& path = "/api/status") {
  core::EventRecord record = event("", "login_failed");
  record.actor = "control";
  record.detail = "wrong bearer token from " + client + " for GET " + path;
  return record;
}

// While it lives, every write that would make a file of this process longer than `bytes` fails
// with EFBIG (RLIMIT_FSIZE, SIGXFSZ ignored): to the journal it looks like a full disk.
class WritesBeyond {
 public:
  explicit WritesBeyond(std::uintmax_t bytes) {
    previous_signal_ = std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &previous_);
    struct rlimit limited = previous_;
    limited.rlim_cur = static_cast<rlim_t>(bytes);
    EXPECT_EQ(0, ::setrlimit(RLIMIT_FSIZE, &limited));
  }
  ~WritesBeyond() { lift(); }
  WritesBeyond(const WritesBeyond&) = delete;
  WritesBeyond& operator=(const WritesBeyond&) = delete;
  void lift() {
    if (lifted_) return;
    lifted_ = true;
    ::setrlimit(RLIMIT_FSIZE, &previous_);
    static_cast<void>(std::signal(SIGXFSZ, previous_signal_));
  }

 private:
  struct rlimit previous_ {};
  void (*previous_signal_)(int) = SIG_DFL;
  bool lifted_ = false;
};

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
    if (recorder_) {
      recorder_->close();
      // A batch still in the thread pool must come back before the recorder goes (the daemon
      // runs its loop to the end too); a test that failed half-way may leave one.
      testing::run_loop_until(
          &loop_, [&] { return recorder_->unwritten() == 0; }, 5s);
    }
    recorder_.reset();
    testing::drain_and_close_loop(&loop_);
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  // A recorder whose every report is checked against the file: whatever it shows as recorded
  // must already be on disk.
  void start_recorder(core::NoiseSettings noise = {}) {
    recorder_ = std::make_unique<EventRecorder>(
        &loop_, config_, nullptr, [this] { check_reported_on_disk(); }, noise);
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

TEST_F(EventRecorderTest, WhenWrittenWaitsForEverythingRecordedSoFar) {
  start_recorder();
  // Nothing pending: answered on a later iteration, not inside the call.
  bool idle = false;
  recorder_->when_written(5s, [&] { idle = true; });
  EXPECT_FALSE(idle);
  ASSERT_TRUE(run_until([&] { return idle; }, 1s));
  // Three pending: answered only once the third is on disk (a fenced cloud action waits for this).
  for (int i = 0; i < 3; ++i) recorder_->record(event("gpu", "step_" + std::to_string(i)));
  std::uint64_t seen = 0;
  recorder_->when_written(5s, [&] { seen = recorder_->last_recorded_seq(); });
  ASSERT_TRUE(run_until([&] { return seen != 0; }));
  EXPECT_EQ(3u, seen);
  EXPECT_EQ(3u, read_records(config_.local_event_log).size());
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

// Issue 17, "over any period ... from the event log, so it survives restarts": the savings
// ledger is fed the whole log, rotated files included, not only the end the wake history reads
// (4 MiB). Here the backend's one wake lies in the oldest rotated file, behind 6 MiB of other
// records.
TEST_F(EventRecorderTest, TheSavingsLedgerCoversTheWholeLogRotatedFilesIncluded) {
  const core::TimePoint start = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) -
                                std::chrono::hours(24 * 20);
  std::uint64_t seq = 0;
  auto transition = [&](core::TimePoint at, const std::string& action, const std::string& from,
                        const std::string& to) {
    core::EventRecord record = event("gpu", action);
    record.at = at;
    record.seq = ++seq;
    record.id = core::make_event_id(at, seq, 7);
    record.from = from;
    record.to = to;
    return core::to_json_line(record) + "\n";
  };
  auto filler = [&](core::TimePoint at, std::size_t bytes) {
    std::string lines;
    while (lines.size() < bytes) {
      core::EventRecord record = event("", "status_read");
      record.at = at;
      record.seq = ++seq;
      record.id = core::make_event_id(at, seq, 7);
      record.detail = std::string(400, 'x');
      lines += core::to_json_line(record) + "\n";
    }
    return lines;
  };
  const std::size_t kMiB = 1024 * 1024;
  {
    std::ofstream oldest(config_.local_event_log + ".2", std::ios::binary);
    oldest << transition(start, "observed_asleep", "unknown", "asleep")
           << transition(start + std::chrono::hours(1), "unshelve_requested", "asleep", "waking")
           << transition(start + std::chrono::hours(3), "shelve_complete", "sleeping", "asleep")
           << filler(start + std::chrono::hours(4), 2 * kMiB);
    std::ofstream older(config_.local_event_log + ".1", std::ios::binary);
    older << filler(start + std::chrono::hours(5), 2 * kMiB);
    std::ofstream current(config_.local_event_log, std::ios::binary);
    current << filler(start + std::chrono::hours(6), 2 * kMiB);
  }
  start_recorder();
  EXPECT_EQ(seq, recorder_->last_recorded_seq());
  // The log is read in the thread pool; a wake recorded meanwhile counts too, after the history,
  // whichever of the two is done first.
  const core::TimePoint woken = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  core::EventRecord wake = event("gpu", "unshelve_requested");
  wake.at = woken;
  wake.from = "asleep";
  wake.to = "waking";
  recorder_->record(wake);
  ASSERT_TRUE(run_until([&] { return recorder_->ledger_complete() && recorder_->unwritten() == 0; }));
  const core::TimePoint now = woken + std::chrono::hours(1);
  const core::Usage total = recorder_->ledger().total("gpu", now);
  EXPECT_DOUBLE_EQ(3 * 3600.0, total.awake);
  // Asleep the hour before the first wake and from the shelve until the second.
  EXPECT_DOUBLE_EQ(3600.0 + std::chrono::duration<double>(woken - (start + std::chrono::hours(3))).count(),
                   total.asleep);
  ASSERT_TRUE(recorder_->ledger().first_record("gpu").has_value());
  EXPECT_EQ(start, *recorder_->ledger().first_record("gpu"));
  const core::Usage day = recorder_->ledger().usage("gpu", start, start + std::chrono::hours(24), now);
  EXPECT_DOUBLE_EQ(2 * 3600.0, day.awake);
  EXPECT_DOUBLE_EQ(22 * 3600.0, day.asleep);
  EXPECT_DOUBLE_EQ(0.0, day.unknown);
}

// Issue 15 §3: 2,000 wrong bearer tokens from one client with 8 KB paths wrote 2,000 records of
// 8 KB each. Now: the first is written at once with a short detail, the rest wait in the
// client's window and become one summary with their count (here at shutdown, before the minute
// is over).
TEST_F(EventRecorderTest, RepeatedFailedLoginsFromOneClientBecomeOneRecordAndOneSummary) {
  start_recorder();
  recorder_->record(event("gpu", "unshelve_requested"));
  const std::string long_path = "/" + std::string(8192, 'p');
  for (int i = 0; i < 2000; ++i) {
    recorder_->record(failed_login("127.0.0.1", long_path), core::EventClass::kNoise);
  }
  ASSERT_TRUE(run_until([&] { return recorder_->last_recorded_seq() == 2 && recorder_->unwritten() == 0; }));
  testing::run_loop_until(
      &loop_, [] { return false; }, 100ms);
  auto on_disk = read_records(config_.local_event_log);
  ASSERT_EQ(2u, on_disk.size());
  EXPECT_EQ("unshelve_requested", on_disk[0].action);
  EXPECT_EQ("login_failed", on_disk[1].action);
  EXPECT_EQ(0u, on_disk[1].count);
  EXPECT_LT(on_disk[1].detail.size(), 400u);
  EXPECT_NE(std::string::npos, on_disk[1].detail.find("[truncated: "));

  recorder_->close();
  testing::run_loop_until(
      &loop_, [&] { return recorder_->unwritten() == 0; }, 5s);
  on_disk = read_records(config_.local_event_log);
  ASSERT_EQ(3u, on_disk.size());
  EXPECT_EQ("login_failed", on_disk[2].action);
  EXPECT_EQ(1999u, on_disk[2].count);
  EXPECT_EQ(0u, on_disk[2].detail.find("1999 more in ")) << on_disk[2].detail;
  EXPECT_LT(read_text(config_.local_event_log).size(), std::size_t{4096});
  EXPECT_EQ(1999u, recorder_->stats().summarised.at("login_failed"));
}

TEST_F(EventRecorderTest, AnEssentialDetailIsBoundedButKept) {
  start_recorder();
  core::EventRecord record = event("gpu", "workflow_failed");
  record.detail = "nova said: " + std::string(10000, 'e');
  recorder_->record(record);
  ASSERT_TRUE(run_until([&] { return recorder_->last_recorded_seq() == 1; }));
  auto on_disk = read_records(config_.local_event_log);
  ASSERT_EQ(1u, on_disk.size());
  EXPECT_EQ(0u, on_disk[0].detail.find("nova said: eeee"));
  EXPECT_LT(on_disk[0].detail.size(), core::kEssentialDetailBytes + 64);
  EXPECT_NE(std::string::npos, on_disk[0].detail.find("[truncated: 10011 bytes in all]"));
}

// Issue 15 §3: with the disk full, 20,000 wrong tokens held 439 MB of unwritten events in memory.
// Now noise joins the backlog only while it is small, and what was dropped is counted (in the
// next record written, in the stats and in /metrics); every essential event is kept and written
// once the file system takes writes again. The noise window is shortened to 20 ms so that many
// windows end (and want their summaries written) while the log cannot be written.
TEST_F(EventRecorderTest, WhileTheLogCannotBeWrittenNoiseIsBoundedAndEssentialEventsAreKept) {
  start_recorder(core::NoiseSettings{20ms, 16});
  recorder_->record(event("gpu", "observed_asleep"));
  ASSERT_TRUE(run_until([&] { return recorder_->last_recorded_seq() == 1; }));
  const auto size_before = std::filesystem::file_size(config_.local_event_log);

  WritesBeyond full(size_before);
  recorder_->record(event("gpu", "essential_0"));
  ASSERT_TRUE(run_until([&] {
    nlohmann::json status;
    recorder_->write_status(status);
    return status["events"]["write_errors"].get<std::uint64_t>() > 0;
  }));
  // 20,000 wrong tokens with 8 KB paths from 40 addresses (more than the policy tracks), in 40
  // rounds that each outlive the window, with an essential event after each round.
  const std::string long_path = "/" + std::string(8192, 'p');
  int essentials = 1;
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 500; ++i) {
      recorder_->record(failed_login("10.0.0." + std::to_string(i % 40), long_path),
                        core::EventClass::kNoise);
    }
    recorder_->record(event("gpu", "essential_" + std::to_string(essentials++)));
    testing::run_loop_until(
        &loop_, [] { return false; }, 25ms);
  }
  const core::BacklogLimits limits;
  const auto essential_count = static_cast<std::size_t>(essentials);
  EXPECT_LE(recorder_->unwritten(), limits.events + essential_count);
  EXPECT_LE(recorder_->unwritten_bytes(), limits.bytes + std::size_t{1024} * essential_count);
  const auto dropped_now = recorder_->stats().dropped.find("login_failed");
  ASSERT_NE(dropped_now, recorder_->stats().dropped.end());
  EXPECT_GT(dropped_now->second, 0u);
  core::MetricsPage page;
  recorder_->write_metrics(page);
  EXPECT_NE(std::string::npos,
            page.text().find("unshelver_events_suppressed_total{action=\"login_failed\",how=\"dropped\"} " +
                             std::to_string(dropped_now->second)))
      << page.text();

  const std::uint64_t dropped = dropped_now->second;
  full.lift();
  ASSERT_TRUE(run_until([&] { return recorder_->unwritten() == 0; }, 20s));
  recorder_->close();
  ASSERT_TRUE(run_until([&] { return recorder_->unwritten() == 0; }, 5s));
  std::vector<std::string> essential_actions;
  std::uint64_t dropped_in_records = 0;
  std::uint64_t accounted = 0;
  for (const core::EventRecord& record : read_records(config_.local_event_log)) {
    if (record.action == "login_failed") {
      accounted += record.count > 0 ? record.count : 1;
    } else {
      essential_actions.push_back(record.action);
    }
    if (auto found = record.dropped.find("login_failed"); found != record.dropped.end()) {
      dropped_in_records += found->second;
    }
  }
  ASSERT_EQ(essential_count + 1, essential_actions.size());
  EXPECT_EQ("observed_asleep", essential_actions[0]);
  for (std::size_t i = 0; i < essential_count; ++i) {
    EXPECT_EQ("essential_" + std::to_string(i), essential_actions[i + 1]);
  }
  // Every failed login is in a record of its own, in a summary's count, or among the drops
  // (windows still open at the stop were summed up then, with the log writable again).
  EXPECT_EQ(dropped, recorder_->stats().dropped.at("login_failed"));
  // Drops are counted in the next record written; those of the last windows had none after them.
  EXPECT_GT(dropped_in_records, 0u);
  EXPECT_LE(dropped_in_records, dropped);
  EXPECT_EQ(20'000u, accounted + dropped);
}

}  // namespace
}  // namespace unshelver::app
