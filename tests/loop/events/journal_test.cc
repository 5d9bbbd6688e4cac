// Loop tests for EventJournal: a real libuv loop (appends run in its thread pool), real files in a
// temporary directory.
//
// Write failures are real too: the process's file size limit (RLIMIT_FSIZE) is lowered to just
// past the end of the log, so that write(2) fails with EFBIG part-way through a batch, as it does
// on a full disk. SIGXFSZ is ignored meanwhile (as the daemon does), and the old limit and handler
// are always put back, in TearDown at the latest. The log is padded with a large line first so
// that the lowered limit stays far above what the test's own output may write meanwhile.
//
// Every test ends in TearDown with the journal destroyed (after its last batch), the loop run until
// it has nothing left and uv_loop_close() == 0.
#include "events/journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/time_format.h"
#include "support/loop.h"
#include "uv/timer.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using core::EventRecord;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

bool file_exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

std::uint64_t file_size(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? static_cast<std::uint64_t>(info.st_size) : 0;
}

// The complete lines of a file (a trailing fragment without its newline is left out).
std::vector<std::string> lines_of(const std::string& content) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < content.size()) {
    const std::size_t end = content.find('\n', start);
    if (end == std::string::npos) break;
    lines.push_back(content.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// The seqs of the numbered records among a file's lines, in file order (other lines, and the
// Python unshelver's records without a seq, are skipped).
std::vector<std::uint64_t> seqs_in_file(const std::string& path) {
  std::vector<std::uint64_t> seqs;
  for (const std::string& line : lines_of(read_file(path))) {
    auto record = core::parse_event_line(line);
    if (record && record->seq != 0) seqs.push_back(record->seq);
  }
  return seqs;
}

std::vector<std::uint64_t> seqs_of(const std::vector<EventRecord>& records) {
  std::vector<std::uint64_t> seqs;
  for (const EventRecord& record : records) seqs.push_back(record.seq);
  return seqs;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> seqs;
  for (std::uint64_t seq = first; seq <= last; ++seq) seqs.push_back(seq);
  return seqs;
}

core::TimePoint base_time() {
  return *core::parse_rfc3339("2026-11-22T10:15:00.123456Z");
}

// A record as the recorder hands it to the journal (not yet numbered).
EventRecord make_record(int n, std::size_t detail_bytes = 40) {
  EventRecord record;
  record.at = base_time() + std::chrono::seconds(n);
  record.backend = "gpu";
  record.instance_name = "gpu-vm";
  record.action = "unshelve_requested";
  record.actor = "public-button";
  record.from = "asleep";
  record.to = "waking";
  record.detail = "event " + std::to_string(n) + " " + std::string(detail_bytes, 'd');
  return record;
}

// A numbered record as a line of the log, with its newline (for files written by the test).
std::string log_line(std::uint64_t seq) {
  EventRecord record = make_record(static_cast<int>(seq));
  record.seq = seq;
  record.id = core::make_event_id(record.at, seq, 0x1234abcdu);
  return core::to_json_line(record) + "\n";
}

// Lowers RLIMIT_FSIZE (and ignores SIGXFSZ) until restore() or destruction.
class FileSizeLimit {
 public:
  FileSizeLimit() = default;
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  ~FileSizeLimit() { restore(); }

  void lower_to(rlim_t bytes) {
    if (!saved_) {
      ASSERT_EQ(0, ::getrlimit(RLIMIT_FSIZE, &old_limit_)) << std::strerror(errno);
      old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
      saved_ = true;
    }
    struct rlimit lowered = old_limit_;
    lowered.rlim_cur = bytes;
    if (old_limit_.rlim_max != RLIM_INFINITY && lowered.rlim_cur > old_limit_.rlim_max) {
      lowered.rlim_cur = old_limit_.rlim_max;
    }
    ASSERT_EQ(0, ::setrlimit(RLIMIT_FSIZE, &lowered)) << std::strerror(errno);
  }

  void restore() {
    if (!saved_) return;
    EXPECT_EQ(0, ::setrlimit(RLIMIT_FSIZE, &old_limit_)) << std::strerror(errno);
    std::signal(SIGXFSZ, old_handler_);
    saved_ = false;
  }

 private:
  bool saved_ = false;
  struct rlimit old_limit_ {};
  void (*old_handler_)(int) = SIG_DFL;
};

class EventJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(0, uv_loop_init(&loop_));
    char pattern[] = "/tmp/unshelver-journal-XXXXXX";
    ASSERT_NE(nullptr, ::mkdtemp(pattern));
    dir_ = pattern;
    path_ = dir_ + "/log/events.jsonl";
  }

  void TearDown() override {
    limit_.restore();  // before anything else writes
    finish_journal();
    testing::drain_and_close_loop(&loop_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  JournalSettings settings(bool mirrored = false, std::uint64_t rotate_bytes = 10 * 1024 * 1024,
                           int keep_files = 5) const {
    JournalSettings s;
    s.path = path_;
    s.rotate_bytes = rotate_bytes;
    s.keep_files = keep_files;
    if (mirrored) s.cursors.push_back({"swift", true});
    return s;
  }

  // A new journal (the old one finished first), opened, with callbacks that record what they hear.
  Result<JournalOpened> open_journal(JournalSettings s, std::size_t recent_limit = 100,
                                     std::size_t history_bytes = 0) {
    finish_journal();
    batches_.clear();
    errors_.clear();
    journal_ = std::make_unique<EventJournal>(&loop_, std::move(s));
    journal_->on_written([this](const std::vector<EventRecord>& records) {
      // Whatever is reported is already in the file (or in .1, when the batch rotated it).
      const std::string content = read_file(path_ + ".1") + read_file(path_);
      for (const EventRecord& record : records) {
        EXPECT_NE(content.find(core::to_json_line(record) + "\n"), std::string::npos)
            << "reported before it was in the file: seq " << record.seq;
      }
      batches_.push_back(records);
    });
    journal_->on_error([this](const std::string& error, bool, std::size_t unwritten) {
      errors_.push_back({error, unwritten});
    });
    return journal_->open(recent_limit, history_bytes);
  }

  JournalOpened open_ok(JournalSettings s, std::size_t recent_limit = 100) {
    auto opened = open_journal(std::move(s), recent_limit);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return opened.ok() ? *opened : JournalOpened{};
  }

  // Lets the journal's last batch finish, then destroys it.
  void finish_journal() {
    if (!journal_) return;
    if (journal_->busy()) {
      EXPECT_TRUE(run_until([this] { return !journal_->busy(); })) << "the last batch never finished";
    }
    journal_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
  }

  // Runs the loop until `done()` holds or `limit` has passed; returns whether `done()` held.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return testing::run_loop_until(&loop_, done, limit);
  }

  std::vector<EventRecord> written() const {
    std::vector<EventRecord> all;
    for (const auto& batch : batches_) all.insert(all.end(), batch.begin(), batch.end());
    return all;
  }

  bool wait_written(std::size_t count) {
    return run_until([&] { return written().size() >= count && !journal_->busy(); });
  }

  // Appends `count` records one at a time, each written before the next is appended (so that
  // every batch holds one record and rotation points are predictable).
  void append_one_by_one(int first, int count, std::size_t detail_bytes) {
    for (int n = first; n < first + count; ++n) {
      const std::size_t before = written().size();
      journal_->append(make_record(n, detail_bytes));
      ASSERT_TRUE(wait_written(before + 1)) << "record " << n << " was never written";
    }
  }

  std::string rotated(int index) const { return path_ + "." + std::to_string(index); }
  std::string cursor_file() const { return path_ + ".outbox"; }

  uv_loop_t loop_{};
  std::string dir_;
  std::string path_;
  std::unique_ptr<EventJournal> journal_;
  std::vector<std::vector<EventRecord>> batches_;
  struct ErrorReport {
    std::string error;
    std::size_t unwritten;
  };
  std::vector<ErrorReport> errors_;
  FileSizeLimit limit_;
};

// --- Opening ---------------------------------------------------------------------------------

TEST_F(EventJournalTest, FreshOpenCreatesTheDirectoriesAndStartsAtZero) {
  path_ = dir_ + "/a/b/c/events.jsonl";
  const JournalOpened opened = open_ok(settings(true));
  EXPECT_EQ(opened.last_seq, 0u);
  EXPECT_EQ(opened.cursors.at("swift"), 0u);
  EXPECT_TRUE(opened.unconfirmed.empty());
  EXPECT_TRUE(opened.recent.empty());
  EXPECT_EQ(opened.torn_bytes, 0u);
  EXPECT_EQ(opened.unreadable_lines, 0u);
  EXPECT_TRUE(std::filesystem::is_directory(dir_ + "/a/b/c"));
  EXPECT_TRUE(file_exists(path_));
  EXPECT_EQ(file_size(path_), 0u);
  EXPECT_EQ(journal_->last_seq(), 0u);
  EXPECT_EQ(journal_->unwritten(), 0u);
  EXPECT_EQ(journal_->path(), path_);
  EXPECT_FALSE(journal_->busy());
  EXPECT_EQ(journal_->stats().written, 0u);
  EXPECT_EQ(journal_->stats().write_errors, 0u);
  EXPECT_EQ(journal_->stats().last_write_error, "");
}

TEST_F(EventJournalTest, OpenFailsWhenTheParentIsARegularFile) {
  write_file(dir_ + "/plain", "not a directory\n");
  path_ = dir_ + "/plain/events.jsonl";
  auto opened = open_journal(settings());
  ASSERT_FALSE(opened.ok());
  const std::string& message = opened.error().message;
  EXPECT_NE(message.find("local_event_log"), std::string::npos) << message;
  EXPECT_NE(message.find(path_), std::string::npos) << message;
  EXPECT_EQ(read_file(dir_ + "/plain"), "not a directory\n");
}

TEST_F(EventJournalTest, OpenFailsWhenThePathIsADirectory) {
  path_ = dir_ + "/log";
  std::filesystem::create_directories(path_);
  auto opened = open_journal(settings());
  ASSERT_FALSE(opened.ok());
  const std::string& message = opened.error().message;
  EXPECT_NE(message.find("local_event_log"), std::string::npos) << message;
  EXPECT_NE(message.find(path_), std::string::npos) << message;
}

// Issue 15 §8: a link planted under the event log's name is refused, not appended through.
TEST_F(EventJournalTest, OpenFailsWhenThePathIsASymbolicLink) {
  write_file(dir_ + "/victim", "precious\n");
  path_ = dir_ + "/events.jsonl";
  std::filesystem::create_symlink(dir_ + "/victim", path_);
  auto opened = open_journal(settings());
  ASSERT_FALSE(opened.ok());
  const std::string& message = opened.error().message;
  EXPECT_NE(message.find(path_), std::string::npos) << message;
  EXPECT_EQ(read_file(dir_ + "/victim"), "precious\n");
}

// --- Appending -------------------------------------------------------------------------------

TEST_F(EventJournalTest, AppendsAreWrittenInOrderBeforeTheyAreReported) {
  open_ok(settings());
  constexpr int kCount = 25;
  std::vector<EventRecord> appended;
  for (int n = 1; n <= kCount; ++n) appended.push_back(journal_->append(make_record(n)));
  // Nothing is reported before the loop has run the batch and heard back from it.
  EXPECT_TRUE(batches_.empty());
  EXPECT_EQ(journal_->unwritten(), static_cast<std::size_t>(kCount));
  EXPECT_EQ(journal_->last_seq(), static_cast<std::uint64_t>(kCount));

  // Numbered on append: seq 1..N, and an id built from the time, the seq and a random part.
  EXPECT_EQ(seqs_of(appended), range(1, kCount));
  std::set<std::string> ids;
  for (const EventRecord& record : appended) {
    ids.insert(record.id);
    const std::string stem = core::make_event_id(record.at, record.seq, 0).substr(0, 31);
    EXPECT_EQ(record.id.substr(0, 31), stem) << record.id;
    EXPECT_EQ(record.id.size(), stem.size() + 8) << record.id;
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kCount)) << "ids are unique";

  ASSERT_TRUE(wait_written(kCount));
  // Reported in order, once each, as appended.
  const std::vector<EventRecord> reported = written();
  ASSERT_EQ(seqs_of(reported), range(1, kCount));
  for (std::size_t i = 0; i < reported.size(); ++i) {
    EXPECT_EQ(reported[i].id, appended[i].id);
    EXPECT_EQ(reported[i].detail, appended[i].detail);
  }
  EXPECT_GE(batches_.size(), 1u);
  EXPECT_LT(batches_.size(), static_cast<std::size_t>(kCount)) << "records queued meanwhile form one batch";
  EXPECT_EQ(journal_->unwritten(), 0u);
  EXPECT_EQ(journal_->stats().written, static_cast<std::uint64_t>(kCount));
  EXPECT_EQ(journal_->stats().write_errors, 0u);
  EXPECT_TRUE(errors_.empty());

  // The file: one parseable record per line, each the same bytes as to_json_line, nothing else.
  const std::string content = read_file(path_);
  ASSERT_FALSE(content.empty());
  EXPECT_EQ(content.back(), '\n');
  const std::vector<std::string> lines = lines_of(content);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kCount));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i], core::to_json_line(appended[i]));
    auto parsed = core::parse_event_line(lines[i]);
    ASSERT_TRUE(parsed.ok()) << lines[i];
    EXPECT_EQ(parsed->seq, i + 1);
    EXPECT_EQ(parsed->id, appended[i].id);
    EXPECT_EQ(parsed->at, appended[i].at);
    EXPECT_EQ(parsed->action, "unshelve_requested");
  }
}

TEST_F(EventJournalTest, AppendedWhileABatchIsWrittenGoesInTheNextBatch) {
  open_ok(settings());
  journal_->append(make_record(1));
  ASSERT_TRUE(journal_->busy());
  ASSERT_TRUE(run_until([&] { return !batches_.empty(); }));
  // More records once the first batch is back: a second batch, still in order.
  for (int n = 2; n <= 4; ++n) journal_->append(make_record(n));
  ASSERT_TRUE(wait_written(4));
  EXPECT_EQ(seqs_of(written()), range(1, 4));
  EXPECT_EQ(seqs_in_file(path_), range(1, 4));
}

TEST_F(EventJournalTest, ReopenContinuesTheNumberingAndReturnsTheRecentRecords) {
  open_ok(settings());
  for (int n = 1; n <= 5; ++n) journal_->append(make_record(n));
  ASSERT_TRUE(wait_written(5));
  const std::vector<EventRecord> first = written();

  const JournalOpened opened = open_ok(settings(), 3);
  EXPECT_EQ(opened.last_seq, 5u);
  EXPECT_EQ(journal_->last_seq(), 5u);
  EXPECT_EQ(opened.torn_bytes, 0u);
  EXPECT_EQ(opened.unreadable_lines, 0u);
  EXPECT_TRUE(opened.unconfirmed.empty()) << "no mirror: nothing to confirm";
  ASSERT_EQ(seqs_of(opened.recent), range(3, 5)) << "the newest `recent_limit`, oldest first";
  EXPECT_EQ(opened.recent.back().id, first.back().id);
  EXPECT_EQ(opened.recent.back().detail, first.back().detail);

  const EventRecord next = journal_->append(make_record(6));
  EXPECT_EQ(next.seq, 6u);
  EXPECT_NE(next.id, first.back().id);
  ASSERT_TRUE(wait_written(1));
  EXPECT_EQ(seqs_in_file(path_), range(1, 6));

  // A third start still continues.
  const JournalOpened again = open_ok(settings(), 100);
  EXPECT_EQ(again.last_seq, 6u);
  EXPECT_EQ(seqs_of(again.recent), range(1, 6));
  EXPECT_EQ(journal_->append(make_record(7)).seq, 7u);
  ASSERT_TRUE(wait_written(1));
}

// The wake history is seeded from the log's last bytes (events/wake_history.h): whole lines
// only, from the previous file too when the current one is shorter.
TEST_F(EventJournalTest, HistoryIsTheWholeLinesOfTheLogsLastBytes) {
  std::filesystem::create_directories(dir_ + "/log");
  std::string older;
  for (std::uint64_t seq = 10; seq <= 19; ++seq) older += log_line(seq);
  std::string current;
  for (std::uint64_t seq = 20; seq <= 24; ++seq) current += log_line(seq);
  write_file(rotated(1), older);
  write_file(path_, current);
  const std::size_t line = log_line(10).size();  // all lines here are as long (two-digit seqs)

  EXPECT_TRUE(open_ok(settings()).history.empty()) << "no history asked for";
  EXPECT_EQ(seqs_of(open_journal(settings(), 100, std::size_t{1} << 20)->history), range(10, 24));
  // Three lines of the older file exactly, then a byte less (the third is cut, so left out).
  EXPECT_EQ(seqs_of(open_journal(settings(), 100, current.size() + 3 * line)->history), range(17, 24));
  EXPECT_EQ(seqs_of(open_journal(settings(), 100, current.size() + 3 * line - 1)->history), range(18, 24));
  // Within the current file.
  EXPECT_EQ(seqs_of(open_journal(settings(), 100, 2 * line + 5)->history), range(23, 24));
  EXPECT_EQ(open_journal(settings(), 100, 3)->history.size(), 0u);
}

// The savings ledger reads the whole log in the thread pool while the journal may rotate it: what
// a snapshot reads is fixed when it is opened. A torn last line is not a record yet; a damaged
// line and one longer than any record (no newline for 2 MiB) are counted and skipped.
TEST_F(EventJournalTest, ASnapshotReadsTheWholeLogAsItWasWhenOpened) {
  std::filesystem::create_directories(dir_ + "/log");
  write_file(rotated(2), log_line(1) + log_line(2));
  write_file(rotated(1),
             log_line(3) + "not a record\n" + std::string(std::size_t{2} << 20, 'x') + "\n" + log_line(4));
  write_file(path_, log_line(5) + log_line(6) + "{\"seq\": 7, \"ts\": \"2026-");
  auto snapshot = io::EventLogSnapshot::open(path_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.error().message;
  // A rotation after the snapshot was taken: .2 goes, the others move up, a new file begins.
  std::filesystem::remove(rotated(2));
  std::filesystem::rename(rotated(1), rotated(2));
  std::filesystem::rename(path_, rotated(1));
  write_file(path_, log_line(8));

  std::vector<std::uint64_t> seqs;
  std::size_t unreadable = 0;
  const unshelver::Status read =
      snapshot->for_each_record([&](const EventRecord& record) { seqs.push_back(record.seq); }, unreadable);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(seqs, range(1, 6));
  EXPECT_EQ(unreadable, 2u);
}

TEST_F(EventJournalTest, CloseWritesWhatIsQueued) {
  open_ok(settings());
  for (int n = 1; n <= 5; ++n) journal_->append(make_record(n));
  journal_->close();
  ASSERT_TRUE(run_until([&] { return !journal_->busy() && journal_->unwritten() == 0; }));
  EXPECT_EQ(seqs_of(written()), range(1, 5));
  EXPECT_EQ(seqs_in_file(path_), range(1, 5));
}

TEST_F(EventJournalTest, AFragmentAtTheEndOfTheFileStaysALineOfItsOwn) {
  // What a failed write that could not be cut back would leave: the next record must not merge
  // with it.
  open_ok(settings());
  journal_->append(make_record(1));
  ASSERT_TRUE(wait_written(1));
  {
    std::ofstream out(path_, std::ios::binary | std::ios::app);
    out << "{\"seq\":2,\"id\":\"frag";
  }
  journal_->append(make_record(2));
  ASSERT_TRUE(wait_written(2));
  const std::vector<std::string> lines = lines_of(read_file(path_));
  EXPECT_EQ(lines.size(), 3u) << read_file(path_);
  if (lines.size() == 3) {
    EXPECT_EQ(lines[1], "{\"seq\":2,\"id\":\"frag");
    EXPECT_EQ(lines[2], core::to_json_line(written()[1]));
  }
  EXPECT_EQ(seqs_in_file(path_), range(1, 2));
  // Record 2 was reported as written: the next start must find it, not cut it off as torn.
  const JournalOpened opened = open_ok(settings());
  EXPECT_EQ(opened.last_seq, 2u);
  EXPECT_EQ(opened.unreadable_lines, 1u);
  EXPECT_EQ(opened.torn_bytes, 0u);
  EXPECT_EQ(journal_->append(make_record(3)).seq, 3u) << "a seq already reported is never reused";
  ASSERT_TRUE(wait_written(1));
}

// --- Start-up repair -------------------------------------------------------------------------

TEST_F(EventJournalTest, TornLastLineIsCutOffAtOpen) {
  std::filesystem::create_directories(dir_ + "/log");
  const std::string good = log_line(1) + log_line(2);
  const std::string torn = log_line(3).substr(0, 57);  // a crash in the middle of an append
  write_file(path_, good + torn);

  const JournalOpened opened = open_ok(settings(true));
  EXPECT_EQ(opened.torn_bytes, torn.size());
  EXPECT_EQ(opened.last_seq, 2u);
  EXPECT_EQ(opened.unreadable_lines, 0u);
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 2));
  EXPECT_EQ(read_file(path_), good) << "the file ends with the last whole line";
  EXPECT_EQ(read_file(path_ + ".torn"), torn + "\n") << "kept aside for a person to see";

  EXPECT_EQ(journal_->append(make_record(3)).seq, 3u);
  ASSERT_TRUE(wait_written(1));
  const std::string content = read_file(path_);
  EXPECT_EQ(content.substr(0, good.size()), good);
  EXPECT_EQ(content.find(torn), std::string::npos) << "the torn fragment never comes back";
  EXPECT_EQ(seqs_in_file(path_), range(1, 3));
  EXPECT_EQ(lines_of(content).size(), 3u);
}

TEST_F(EventJournalTest, ZerosAfterTheLastLineAreCutOff) {
  std::filesystem::create_directories(dir_ + "/log");
  const std::string good = log_line(1);
  write_file(path_, good + std::string(300, '\0'));
  const JournalOpened opened = open_ok(settings());
  EXPECT_EQ(opened.torn_bytes, 300u);
  EXPECT_EQ(opened.last_seq, 1u);
  EXPECT_EQ(read_file(path_), good);
}

TEST_F(EventJournalTest, ALastLineThatIsNotARecordIsCutOff) {
  // The newline of the last append reached the disk, earlier bytes of its line did not.
  std::filesystem::create_directories(dir_ + "/log");
  const std::string good = log_line(1) + log_line(2);
  const std::string damaged = log_line(3).substr(0, 40) + std::string(100, '\0') + "\n";
  write_file(path_, good + damaged);
  const JournalOpened opened = open_ok(settings(true));
  EXPECT_EQ(opened.torn_bytes, damaged.size());
  EXPECT_EQ(opened.unreadable_lines, 0u);
  EXPECT_EQ(opened.last_seq, 2u);
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 2));
  EXPECT_EQ(read_file(path_), good);
  EXPECT_EQ(read_file(path_ + ".torn"), damaged);
  EXPECT_EQ(journal_->append(make_record(3)).seq, 3u);
  ASSERT_TRUE(wait_written(1));
  EXPECT_EQ(seqs_in_file(path_), range(1, 3));
  // A second start finds nothing to cut.
  const JournalOpened again = open_ok(settings(true));
  EXPECT_EQ(again.torn_bytes, 0u);
  EXPECT_EQ(again.last_seq, 3u);
}

TEST_F(EventJournalTest, AFileThatIsOnlyATornLineBecomesEmpty) {
  std::filesystem::create_directories(dir_ + "/log");
  write_file(path_, "{\"seq\":1,\"id\":\"2026");
  const JournalOpened opened = open_ok(settings());
  EXPECT_EQ(opened.torn_bytes, 19u);
  EXPECT_EQ(opened.last_seq, 0u);
  EXPECT_EQ(file_size(path_), 0u);
  EXPECT_EQ(read_file(path_ + ".torn"), "{\"seq\":1,\"id\":\"2026\n");
  EXPECT_EQ(journal_->append(make_record(1)).seq, 1u);
  ASSERT_TRUE(wait_written(1));
  EXPECT_EQ(seqs_in_file(path_), range(1, 1));
}

TEST_F(EventJournalTest, UnreadableCompleteLinesAreCountedAndKept) {
  std::filesystem::create_directories(dir_ + "/log");
  const std::string content =
      log_line(1) + "a person's note about the outage\n" + "{\"not\":\"a record\"}\n" + "\n" + log_line(2);
  write_file(path_, content);
  const JournalOpened opened = open_ok(settings(true));
  EXPECT_EQ(opened.unreadable_lines, 2u) << "empty lines are not counted";
  EXPECT_EQ(opened.torn_bytes, 0u);
  EXPECT_EQ(opened.last_seq, 2u);
  EXPECT_EQ(seqs_of(opened.recent), range(1, 2));
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 2));
  EXPECT_EQ(read_file(path_), content) << "nothing is deleted";

  journal_->append(make_record(3));
  ASSERT_TRUE(wait_written(1));
  EXPECT_EQ(read_file(path_), content + core::to_json_line(written()[0]) + "\n");
}

TEST_F(EventJournalTest, PythonUnshelverLinesAreNeitherRecentNorUnconfirmed) {
  std::filesystem::create_directories(dir_ + "/log");
  const std::string python =
      R"({"timestamp": "2025-06-01T08:30:00.250000+00:00", "action": "unshelve_requested", )"
      R"("actor": "alice@example.org", "instance_name": "cosmosage_70b", "detail": "button"})"
      "\n";
  write_file(path_, python + log_line(1) + log_line(2));
  const JournalOpened opened = open_ok(settings(true));
  EXPECT_EQ(opened.unreadable_lines, 0u);
  EXPECT_EQ(opened.last_seq, 2u);
  EXPECT_EQ(seqs_of(opened.recent), range(1, 2));
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 2));
  EXPECT_EQ(journal_->append(make_record(3)).seq, 3u);
  ASSERT_TRUE(wait_written(1));
  EXPECT_EQ(read_file(path_).substr(0, python.size()), python);

  // Only Python lines: numbering starts at 1.
  write_file(path_, python + python);
  const JournalOpened only_python = open_ok(settings(true));
  EXPECT_EQ(only_python.last_seq, 0u);
  EXPECT_TRUE(only_python.recent.empty());
  EXPECT_TRUE(only_python.unconfirmed.empty());
  EXPECT_EQ(journal_->append(make_record(1)).seq, 1u);
  ASSERT_TRUE(wait_written(1));
}

// --- The outbox cursor -----------------------------------------------------------------------

TEST_F(EventJournalTest, CursorIsSavedAndOnlyRecordsAboveItComeBackUnconfirmed) {
  const JournalOpened fresh = open_ok(settings(true));
  EXPECT_TRUE(fresh.unconfirmed.empty());
  for (int n = 1; n <= 5; ++n) journal_->append(make_record(n));
  ASSERT_TRUE(wait_written(5));
  EXPECT_FALSE(file_exists(cursor_file()));

  journal_->set_cursor("swift", 3);
  ASSERT_TRUE(run_until([&] { return !journal_->busy() && file_exists(cursor_file()); }));
  const nlohmann::json cursor = nlohmann::json::parse(read_file(cursor_file()), nullptr, false);
  ASSERT_TRUE(cursor.is_object()) << read_file(cursor_file());
  EXPECT_EQ(cursor.value("uploaded_through", std::uint64_t{0}), 3u);
  EXPECT_EQ(seqs_in_file(path_), range(1, 5)) << "a cursor-only batch writes no record";
  EXPECT_EQ(journal_->stats().written, 5u);
  EXPECT_EQ(written().size(), 5u) << "a cursor-only batch reports nothing";

  // Going back is ignored.
  journal_->set_cursor("swift", 2);
  EXPECT_FALSE(journal_->busy());

  const JournalOpened mirrored = open_ok(settings(true));
  EXPECT_EQ(mirrored.cursors.at("swift"), 3u);
  EXPECT_EQ(mirrored.last_seq, 5u);
  ASSERT_EQ(seqs_of(mirrored.unconfirmed), range(4, 5));
  EXPECT_EQ(mirrored.unconfirmed[0].action, "unshelve_requested");
  EXPECT_FALSE(mirrored.unconfirmed[0].id.empty());
  EXPECT_EQ(seqs_of(mirrored.recent), range(1, 5));

  const JournalOpened unmirrored = open_ok(settings(false));
  EXPECT_TRUE(unmirrored.cursors.empty());
  EXPECT_TRUE(unmirrored.unconfirmed.empty());
}

TEST_F(EventJournalTest, CursorSetDuringABatchIsSavedWithTheNext) {
  open_ok(settings(true));
  journal_->append(make_record(1));
  ASSERT_TRUE(journal_->busy());
  journal_->set_cursor("swift", 1);
  journal_->append(make_record(2));
  journal_->append(make_record(3));
  ASSERT_TRUE(
      run_until([&] { return written().size() == 3 && !journal_->busy() && file_exists(cursor_file()); }));
  EXPECT_EQ(nlohmann::json::parse(read_file(cursor_file())).value("uploaded_through", std::uint64_t{0}), 1u);

  // Confirming everything leaves nothing unconfirmed at the next start.
  journal_->set_cursor("swift", 3);
  journal_->close();
  ASSERT_TRUE(run_until([&] { return !journal_->busy(); }));
  const JournalOpened opened = open_ok(settings(true));
  EXPECT_EQ(opened.cursors.at("swift"), 3u);
  EXPECT_TRUE(opened.unconfirmed.empty());
}

TEST_F(EventJournalTest, CursorAheadOfTheLogIsReset) {
  std::filesystem::create_directories(dir_ + "/log");
  write_file(path_, log_line(1) + log_line(2));
  write_file(cursor_file(), "{\"uploaded_through\":99}\n");
  const JournalOpened opened = open_ok(settings(true));
  EXPECT_EQ(opened.last_seq, 2u);
  EXPECT_EQ(opened.cursors.at("swift"), 0u);
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 2)) << "the cursor must not hide the new records";
  EXPECT_EQ(journal_->append(make_record(3)).seq, 3u);
  ASSERT_TRUE(wait_written(1));
}

TEST_F(EventJournalTest, UnreadableCursorMeansConfirmEverythingAgain) {
  std::filesystem::create_directories(dir_ + "/log");
  write_file(path_, log_line(1) + log_line(2) + log_line(3));
  for (const char* cursor :
       {"garbage", "{\"uploaded_through\":-1}", "{\"uploaded_through\":\"2\"}", "[2]", ""}) {
    write_file(cursor_file(), cursor);
    const JournalOpened opened = open_ok(settings(true));
    EXPECT_EQ(opened.cursors.at("swift"), 0u) << cursor;
    EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 3)) << cursor;
  }
  write_file(cursor_file(), "{\"uploaded_through\":2}");
  const JournalOpened good = open_ok(settings(true));
  EXPECT_EQ(good.cursors.at("swift"), 2u);
  EXPECT_EQ(seqs_of(good.unconfirmed), range(3, 3));
}

TEST_F(EventJournalTest, CursorThatCannotBeSavedIsReportedAndHarmless) {
  open_ok(settings(true));
  std::filesystem::create_directories(cursor_file());  // rename(2) over a directory fails
  for (int n = 1; n <= 3; ++n) journal_->append(make_record(n));
  ASSERT_TRUE(wait_written(3));
  journal_->set_cursor("swift", 2);
  ASSERT_TRUE(run_until([&] { return !errors_.empty() && !journal_->busy(); }));
  EXPECT_NE(errors_[0].error.find(cursor_file()), std::string::npos) << errors_[0].error;
  EXPECT_EQ(journal_->stats().write_errors, 0u) << "the records were written; only the cursor was not";
  // No batch after batch trying to save it: the loop goes quiet.
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_FALSE(journal_->busy());
  EXPECT_FALSE(uv_loop_alive(&loop_));
  // Records are still written.
  journal_->append(make_record(4));
  ASSERT_TRUE(wait_written(4));
  EXPECT_EQ(seqs_in_file(path_), range(1, 4));
  // A stale cursor costs only re-uploads: everything comes back unconfirmed.
  const JournalOpened opened = open_ok(settings(true));
  EXPECT_EQ(opened.cursors.at("swift"), 0u);
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 4));
}

TEST_F(EventJournalTest, NamedCursorsAreSavedTogetherAndEachStartsWhereItsKindWants) {
  std::filesystem::create_directories(dir_ + "/log");
  write_file(path_, log_line(1) + log_line(2) + log_line(3));
  // An outbox file as Unshelver wrote it before there were named cursors.
  write_file(cursor_file(), "{\"uploaded_through\":1}\n");
  JournalSettings two = settings(true);
  two.cursors.push_back({"webhook-a", false});
  const JournalOpened opened = open_ok(two);
  EXPECT_EQ(opened.cursors.at("swift"), 1u) << "the old file's cursor is Swift's";
  EXPECT_EQ(opened.cursors.at("webhook-a"), 3u) << "a new receiver starts at the log's end";
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(2, 3)) << "above the lowest cursor";
  // The new cursor is saved at once: after a restart it must not start later than now.
  const nlohmann::json saved = nlohmann::json::parse(read_file(cursor_file()), nullptr, false);
  ASSERT_TRUE(saved.is_object()) << read_file(cursor_file());
  EXPECT_EQ(saved["cursors"]["webhook-a"], 3u);
  EXPECT_EQ(saved["uploaded_through"], 1u) << "still readable by an older Unshelver";

  journal_->append(make_record(4));
  ASSERT_TRUE(wait_written(1));
  journal_->set_cursor("webhook-a", 4);
  journal_->set_cursor("unknown", 9);  // ignored
  ASSERT_TRUE(run_until([&] { return !journal_->busy(); }));
  EXPECT_EQ(journal_->cursor("webhook-a"), 4u);
  EXPECT_EQ(journal_->cursor("unknown"), 0u);

  // A receiver removed from the config: its cursor is forgotten and holds nothing back.
  const JournalOpened without = open_ok(settings(true));
  EXPECT_EQ(without.cursors.size(), 1u);
  EXPECT_EQ(seqs_of(without.unconfirmed), range(2, 4));
  const nlohmann::json rewritten = nlohmann::json::parse(read_file(cursor_file()), nullptr, false);
  EXPECT_FALSE(rewritten["cursors"].contains("webhook-a")) << read_file(cursor_file());
}

// --- Rotation --------------------------------------------------------------------------------

// Records with a long detail, and a rotation size that makes every file hold exactly three of them
// (two lines stay below it, three reach it).
constexpr std::size_t kRotationDetail = 300;
std::uint64_t rotate_after_three() {
  const std::uint64_t line = log_line(1).size() + kRotationDetail - 40;
  return line * 5 / 2;
}

TEST_F(EventJournalTest, RotationKeepsKeepFilesWithoutAMirror) {
  open_ok(settings(false, rotate_after_three(), 2));
  append_one_by_one(1, 12, kRotationDetail);
  EXPECT_EQ(journal_->stats().rotations, 4u);
  EXPECT_EQ(journal_->stats().kept_for_outbox, 0u);
  EXPECT_TRUE(file_exists(path_)) << "a new file is opened after rotation";
  EXPECT_EQ(file_size(path_), 0u);
  EXPECT_EQ(seqs_in_file(rotated(1)), range(10, 12));
  EXPECT_EQ(seqs_in_file(rotated(2)), range(7, 9));
  EXPECT_FALSE(file_exists(rotated(3))) << "beyond keep_files";
  EXPECT_FALSE(file_exists(rotated(4)));

  // The numbering continues from the rotated files when the current one is empty.
  const JournalOpened opened = open_ok(settings(false, rotate_after_three(), 2));
  EXPECT_EQ(opened.last_seq, 12u);
  EXPECT_TRUE(opened.recent.empty()) << "recent holds the current file's records";
  append_one_by_one(13, 2, kRotationDetail);
  EXPECT_EQ(seqs_of(written()), range(13, 14));
  EXPECT_EQ(seqs_in_file(path_), range(13, 14));
  EXPECT_EQ(seqs_in_file(rotated(1)), range(10, 12));
  EXPECT_EQ(seqs_in_file(rotated(2)), range(7, 9));
  EXPECT_FALSE(file_exists(rotated(3)));
}

TEST_F(EventJournalTest, RotationKeepsFilesTheMirrorStillNeeds) {
  open_ok(settings(true, rotate_after_three(), 1));
  append_one_by_one(1, 14, kRotationDetail);
  EXPECT_EQ(journal_->stats().rotations, 4u);
  // Nothing is confirmed: every rotated file is kept, three of them beyond keep_files.
  EXPECT_EQ(journal_->stats().kept_for_outbox, 3u);
  EXPECT_EQ(seqs_in_file(path_), range(13, 14));
  EXPECT_EQ(seqs_in_file(rotated(1)), range(10, 12));
  EXPECT_EQ(seqs_in_file(rotated(2)), range(7, 9));
  EXPECT_EQ(seqs_in_file(rotated(3)), range(4, 6));
  EXPECT_EQ(seqs_in_file(rotated(4)), range(1, 3));
  EXPECT_FALSE(file_exists(rotated(5)));

  // Their records come back, oldest first, at the next start.
  JournalOpened opened = open_ok(settings(true, rotate_after_three(), 1));
  EXPECT_EQ(opened.last_seq, 14u);
  EXPECT_EQ(opened.cursors.at("swift"), 0u);
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 14));
  EXPECT_EQ(seqs_of(opened.recent), range(13, 14));
  ASSERT_EQ(opened.unconfirmed.size(), 14u);
  EXPECT_EQ(opened.unconfirmed[0].detail, make_record(1, kRotationDetail).detail);

  // Once the cursor passes a file, it may go; the first file still needed stops the pruning.
  journal_->set_cursor("swift", 7);
  ASSERT_TRUE(run_until([&] { return !journal_->busy() && file_exists(cursor_file()); }));
  EXPECT_FALSE(file_exists(rotated(4)));
  EXPECT_FALSE(file_exists(rotated(3)));
  EXPECT_EQ(seqs_in_file(rotated(2)), range(7, 9)) << "still holds 8 and 9";
  EXPECT_EQ(seqs_in_file(rotated(1)), range(10, 12));
  EXPECT_EQ(journal_->stats().kept_for_outbox, 1u);

  opened = open_ok(settings(true, rotate_after_three(), 1));
  EXPECT_EQ(opened.cursors.at("swift"), 7u);
  EXPECT_EQ(opened.last_seq, 14u);
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(8, 14));

  // All confirmed: back to keep_files.
  journal_->set_cursor("swift", 14);
  ASSERT_TRUE(run_until([&] { return !journal_->busy(); }));
  EXPECT_FALSE(file_exists(rotated(2)));
  EXPECT_EQ(seqs_in_file(rotated(1)), range(10, 12));
  EXPECT_EQ(journal_->stats().kept_for_outbox, 0u);

  opened = open_ok(settings(true, rotate_after_three(), 1));
  EXPECT_EQ(opened.cursors.at("swift"), 14u);
  EXPECT_EQ(opened.last_seq, 14u);
  EXPECT_TRUE(opened.unconfirmed.empty());
  EXPECT_EQ(journal_->append(make_record(15, kRotationDetail)).seq, 15u);
  ASSERT_TRUE(wait_written(1));
}

TEST_F(EventJournalTest, ANewReceiversCursorOnAnEmptyLogIsSavedAtOnce) {
  // The receiver's cursor starts at the end of an empty log: 0. Nothing is confirmed before the
  // process dies; the next start must still deliver every record written meanwhile.
  JournalSettings receiver = settings(false);
  receiver.cursors.push_back({"webhook-a", false});
  EXPECT_EQ(open_ok(receiver).cursors.at("webhook-a"), 0u);
  for (int n = 1; n <= 3; ++n) journal_->append(make_record(n));
  ASSERT_TRUE(wait_written(3));
  const JournalOpened again = open_ok(receiver);
  EXPECT_EQ(again.cursors.at("webhook-a"), 0u) << "not moved to the log's new end";
  EXPECT_EQ(seqs_of(again.unconfirmed), range(1, 3));
}

TEST_F(EventJournalTest, RotatedFilesAreKeptUntilEveryCursorHasPassedThem) {
  JournalSettings two = settings(true, rotate_after_three(), 1);
  two.cursors.push_back({"webhook-a", true});
  open_ok(two);
  append_one_by_one(1, 8, kRotationDetail);
  journal_->set_cursor("swift", 8);
  ASSERT_TRUE(run_until([&] { return !journal_->busy() && file_exists(cursor_file()); }));
  EXPECT_TRUE(file_exists(rotated(2))) << "the receiver has confirmed nothing yet";
  EXPECT_EQ(journal_->stats().kept_for_outbox, 1u);
  journal_->set_cursor("webhook-a", 6);
  ASSERT_TRUE(run_until([&] { return !journal_->busy() && !file_exists(rotated(2)); }));
  EXPECT_EQ(journal_->stats().kept_for_outbox, 0u);
  const JournalOpened opened = open_ok(two);
  EXPECT_EQ(opened.cursors.at("webhook-a"), 6u);
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(7, 8));
}

TEST_F(EventJournalTest, FirstBatchPrunesFilesBeyondASmallerKeepFiles) {
  // Left by an earlier run with keep_files: 5.
  std::filesystem::create_directories(dir_ + "/log");
  for (int index = 5; index >= 1; --index) {
    const std::uint64_t first = static_cast<std::uint64_t>(5 - index) * 2 + 1;
    write_file(rotated(index), log_line(first) + log_line(first + 1));
  }
  const JournalOpened opened = open_ok(settings(false, rotate_after_three(), 2));
  EXPECT_EQ(opened.last_seq, 10u);
  journal_->append(make_record(11, kRotationDetail));
  ASSERT_TRUE(wait_written(1));
  EXPECT_TRUE(file_exists(rotated(1)));
  EXPECT_TRUE(file_exists(rotated(2)));
  EXPECT_FALSE(file_exists(rotated(3)));
  EXPECT_FALSE(file_exists(rotated(4)));
  EXPECT_FALSE(file_exists(rotated(5)));
  EXPECT_EQ(seqs_in_file(rotated(1)), range(9, 10));
  EXPECT_EQ(seqs_in_file(path_), range(11, 11));
}

TEST_F(EventJournalTest, AGapInTheRotatedFilesHidesNoOlderFile) {
  // A crash in the middle of a rotation: .2 is missing, .3 holds the oldest records.
  std::filesystem::create_directories(dir_ + "/log");
  write_file(rotated(3), log_line(1) + log_line(2) + log_line(3));
  write_file(rotated(1), log_line(4) + log_line(5) + log_line(6));
  write_file(path_, log_line(7));
  const JournalOpened opened = open_ok(settings(true, rotate_after_three(), 5));
  EXPECT_EQ(opened.last_seq, 7u);
  EXPECT_EQ(seqs_of(opened.unconfirmed), range(1, 7));

  // The next rotation loses nothing.
  append_one_by_one(8, 2, kRotationDetail);
  EXPECT_EQ(journal_->stats().rotations, 1u);
  EXPECT_EQ(seqs_in_file(rotated(1)), range(7, 9));
  EXPECT_EQ(seqs_in_file(rotated(2)), range(4, 6));
  EXPECT_EQ(seqs_in_file(rotated(4)), range(1, 3));
  const JournalOpened again = open_ok(settings(true, rotate_after_three(), 5));
  EXPECT_EQ(again.last_seq, 9u);
  EXPECT_EQ(seqs_of(again.unconfirmed), range(1, 9));
}

// --- Write failures --------------------------------------------------------------------------

class EventJournalFailureTest : public EventJournalTest {
 protected:
  // A log padded with a large note line, opened, with one record written.
  void open_padded() {
    std::filesystem::create_directories(dir_ + "/log");
    // A line as the Python unshelver wrote it (a record with seq 0), with a 256 KiB detail.
    write_file(path_, R"({"timestamp": "2025-06-01T08:30:00+00:00", "action": "padding", "detail": ")" +
                          std::string(256 * 1024, 'p') + "\"}\n");
    const JournalOpened opened = open_ok(settings());
    EXPECT_EQ(opened.unreadable_lines, 0u);
    EXPECT_EQ(opened.torn_bytes, 0u);
    EXPECT_EQ(opened.last_seq, 0u);
    journal_->append(make_record(1));
    ASSERT_TRUE(wait_written(1));
  }

  // Lowers the file size limit to just past the end of the log: the next batch gets part of its
  // first line out, then EFBIG.
  void make_writes_fail() {
    before_failure_ = read_file(path_);
    limit_.lower_to(static_cast<rlim_t>(before_failure_.size() + 10));
  }

  // Appends records 2..4 (2 starts a batch, 3 and 4 wait) and waits for the failure.
  void append_and_fail() {
    for (int n = 2; n <= 4; ++n) journal_->append(make_record(n));
    ASSERT_TRUE(run_until([&] { return !errors_.empty() && !journal_->busy(); })) << "the write never failed";
  }

  void expect_failure_reported(std::size_t errors) {
    ASSERT_EQ(errors_.size(), errors);
    const std::string efbig = std::strerror(EFBIG);
    EXPECT_NE(errors_.back().error.find(efbig), std::string::npos) << errors_.back().error;
    EXPECT_NE(errors_.back().error.find(path_), std::string::npos) << errors_.back().error;
    EXPECT_EQ(errors_.back().unwritten, 3u);
    EXPECT_EQ(journal_->stats().write_errors, errors);
    EXPECT_EQ(journal_->stats().last_write_error, errors_.back().error);
    EXPECT_EQ(journal_->unwritten(), 3u);
    EXPECT_EQ(journal_->stats().written, 1u);
    EXPECT_EQ(seqs_of(written()), range(1, 1)) << "nothing more is reported";
    // The partial write was cut back: the file is exactly as before, ending with a whole line.
    EXPECT_EQ(read_file(path_), before_failure_);
  }

  std::string before_failure_;
};

TEST_F(EventJournalFailureTest, FailedWriteIsCutBackAndRetriedUntilItWorks) {
  open_padded();
  make_writes_fail();
  append_and_fail();
  expect_failure_reported(1);
  // Appended while the retry waits: queued behind the failed ones.
  EXPECT_EQ(journal_->append(make_record(5)).seq, 5u);
  EXPECT_EQ(journal_->unwritten(), 4u);

  limit_.restore();
  ASSERT_TRUE(wait_written(5)) << "the retry never wrote the records";
  EXPECT_EQ(seqs_of(written()), range(1, 5)) << "every record, once, in order";
  EXPECT_EQ(journal_->unwritten(), 0u);
  EXPECT_EQ(journal_->stats().written, 5u);
  EXPECT_EQ(journal_->stats().write_errors, 1u);
  EXPECT_EQ(journal_->stats().last_write_error, "");
  const std::string content = read_file(path_);
  EXPECT_EQ(content.substr(0, before_failure_.size()), before_failure_);
  EXPECT_EQ(seqs_in_file(path_), range(1, 5));
  EXPECT_EQ(lines_of(content).size(), 6u) << "padding line and five records, no fragment";
  EXPECT_EQ(content.back(), '\n');

  // The numbering goes on without a gap at the next start.
  const JournalOpened opened = open_ok(settings());
  EXPECT_EQ(opened.last_seq, 5u);
  EXPECT_EQ(opened.torn_bytes, 0u);
}

TEST_F(EventJournalFailureTest, CloseMakesOneLastAttempt) {
  open_padded();
  make_writes_fail();
  append_and_fail();
  expect_failure_reported(1);

  // The disk has room again; close() does not wait for the back-off.
  limit_.restore();
  journal_->close();
  ASSERT_TRUE(run_until([&] { return written().size() == 4 && !journal_->busy(); }));
  EXPECT_EQ(seqs_of(written()), range(1, 4));
  EXPECT_EQ(seqs_in_file(path_), range(1, 4));
  EXPECT_EQ(journal_->unwritten(), 0u);
}

TEST_F(EventJournalFailureTest, CloseWhileWritesStillFailStopsRetrying) {
  open_padded();
  make_writes_fail();
  append_and_fail();
  expect_failure_reported(1);

  journal_->close();
  ASSERT_TRUE(run_until([&] { return errors_.size() == 2 && !journal_->busy(); })) << "no last attempt";
  expect_failure_reported(2);
  // No retry is scheduled after close: the loop has nothing left to do.
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_FALSE(uv_loop_alive(&loop_)) << "a retry is still scheduled after close()";
  EXPECT_EQ(journal_->unwritten(), 3u);
}

TEST_F(EventJournalFailureTest, FileSizeLimitGuardRestoresTheOldLimit) {
  // The guard the failure tests rely on: a test that fails with the limit lowered must not leave
  // it lowered for the next ones.
  struct rlimit before {};
  ASSERT_EQ(0, ::getrlimit(RLIMIT_FSIZE, &before));
  {
    FileSizeLimit scoped;
    scoped.lower_to(4096);
    struct rlimit lowered {};
    ASSERT_EQ(0, ::getrlimit(RLIMIT_FSIZE, &lowered));
    EXPECT_EQ(lowered.rlim_cur, 4096u);
  }
  struct rlimit after {};
  ASSERT_EQ(0, ::getrlimit(RLIMIT_FSIZE, &after));
  EXPECT_EQ(after.rlim_cur, before.rlim_cur);
  EXPECT_EQ(after.rlim_max, before.rlim_max);
}

}  // namespace
}  // namespace unshelver::io
