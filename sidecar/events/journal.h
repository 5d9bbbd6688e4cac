// EventJournal: the local audit log (`local_event_log`), one JSON record per line, and the
// cursors of its outboxes beside it (`{local_event_log}.outbox`): one named cursor per consumer
// that must see every record exactly once (the Swift mirror: "swift"; each webhook receiver:
// "webhook-<hash of its URL>").
//
// - Start-up (open, synchronous, before the loop runs): creates the directory, cuts off a torn
//   last line left by a crash (core::intact_length), continues the numbering from the last
//   record, and hands back the records some consumer has not confirmed yet (seq above the lowest
//   cursor), from the current file and from rotated files that still hold some. A path that cannot be
//   written, or a device with no space left, is an error: the caller stops with exit code 2.
// - Appends run in libuv's thread pool (uv_queue_work), one batch at a time: write(2) of every
//   queued line, then fdatasync(2). Only after that does the loop hear of the records (the
//   WrittenCallback), so whatever reports an event reports one that survives a crash. Records
//   queued while a batch is written form the next batch (group commit).
// - A failed write (ENOSPC, EFBIG, EIO) is cut back with ftruncate(2) to where the batch began, so
//   the file never holds half a line; the records stay queued, in order, and are tried again
//   with back-off. The loop is never blocked and nothing is dropped.
// - Rotation by size: past `rotate_bytes` the file becomes `.1` (older ones shift up), and files
//   beyond `keep_files` are deleted, except ones that still hold records some cursor has not
//   passed (they are kept until every cursor has).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/result.h"
#include "events/record.h"
#include "uv/timer.h"

namespace unshelver::io {

// A consumer of the records that confirms them in seq order: every record up to its position is
// done with. Its position survives restarts in the outbox file.
struct OutboxCursor {
  std::string name;  // "swift", "webhook-1a2b3c4d5e6f"
  // Where a cursor that the outbox file does not hold (a consumer added since, or no file yet)
  // starts: at the log's beginning, for a consumer that takes repeats in its stride (Swift answers
  // 412), or at its end, for one that must not get the old records (a new webhook receiver gets the
  // events from now on). The same applies to a cursor found ahead of the log (a replaced log).
  bool new_starts_at_beginning = false;
};

struct JournalSettings {
  std::string path;
  std::uint64_t rotate_bytes = std::uint64_t{10} * 1024 * 1024;
  int keep_files = 5;
  // Rotated files are kept until every cursor has passed every record in them. Cursors the outbox
  // file holds but that are not named here (a receiver removed from the config) are forgotten.
  std::vector<OutboxCursor> cursors;
};

// What open() found.
struct JournalOpened {
  std::uint64_t last_seq = 0;
  std::map<std::string, std::uint64_t> cursors;  // every configured cursor's position
  // seq > the lowest cursor, oldest first (empty without cursors); each consumer skips what lies
  // at or below its own position.
  std::vector<core::EventRecord> unconfirmed;
  std::vector<core::EventRecord> recent;  // the newest records of the current file
  // The records in the log's last `history_bytes` (the current file, and the end of the previous
  // one when the current is shorter), oldest first, the Python unshelver's lines included.
  std::vector<core::EventRecord> history;
  std::uint64_t torn_bytes = 0;        // cut off the end of the current file
  std::uint64_t unreadable_lines = 0;  // complete lines that are not event records
};

struct JournalStats {
  std::uint64_t written = 0;       // records written and fsync'd by this process
  std::uint64_t write_errors = 0;  // failed batches
  std::string last_write_error;    // "" once a batch was written again
  std::uint64_t rotations = 0;
  std::uint64_t kept_for_outbox = 0;  // rotated files kept beyond keep_files for a cursor
};

class EventJournal {
 public:
  using WrittenCallback = std::function<void(const std::vector<core::EventRecord>& records)>;
  // `records_wait`: a batch of records failed to be written (they wait, in order); otherwise the
  // trouble was housekeeping (rotation, pruning, saving the cursor) and no record is at stake.
  using ErrorCallback =
      std::function<void(const std::string& error, bool records_wait, std::size_t unwritten)>;

  EventJournal(uv_loop_t* loop, JournalSettings settings);
  ~EventJournal();
  EventJournal(const EventJournal&) = delete;
  EventJournal& operator=(const EventJournal&) = delete;

  // Start-up; `recent_limit` bounds JournalOpened::recent, `history_bytes` JournalOpened::history.
  Result<JournalOpened> open(std::size_t recent_limit, std::size_t history_bytes = 0);
  void on_written(WrittenCallback callback) { on_written_ = std::move(callback); }
  void on_error(ErrorCallback callback) { on_error_ = std::move(callback); }

  // Numbers the record (seq, id), queues it, and returns the numbered copy.
  core::EventRecord append(core::EventRecord record);
  // The consumer `name` confirmed every record up to `seq`; saved with the next batch, which starts
  // at once when none runs. A cursor never moves back; unknown names are ignored. A stale cursor
  // after a crash only costs a repeat (Swift answers 412; a webhook receiver sees the same
  // delivery id again).
  void set_cursor(const std::string& name, std::uint64_t seq);
  std::uint64_t cursor(const std::string& name) const;
  // Stops retrying; a batch already running finishes (the loop waits for it), and what is still
  // queued gets one last attempt.
  void close();

  const JournalStats& stats() const { return stats_; }
  std::size_t unwritten() const;  // queued, and in the batch being written
  // Their lines' bytes: what they hold in memory, give or take the records' own copies. The
  // recorder bounds the backlog by both (events/noise_policy.h).
  std::size_t unwritten_bytes() const;
  std::uint64_t last_seq() const { return last_seq_; }
  const std::string& path() const { return settings_.path; }
  bool busy() const { return work_ != nullptr; }

 private:
  struct Work;
  void start_batch();
  void finish_batch(std::unique_ptr<Work> work);

  uv_loop_t* loop_;
  JournalSettings settings_;
  int fd_ = -1;
  std::uint64_t last_seq_ = 0;
  std::map<std::string, std::uint64_t> cursors_;
  std::map<std::string, std::uint64_t> saved_cursors_;
  std::deque<core::EventRecord> queue_;  // numbered, not yet written
  std::size_t queued_bytes_ = 0;         // the length of their lines, newlines included
  Work* work_ = nullptr;                 // the batch in the thread pool
  Timer retry_timer_;
  int failed_writes_ = 0;  // consecutive failed writes, for the back-off
  bool closed_ = false;
  bool batched_before_ = false;
  std::mt19937 random_;
  JournalStats stats_;
  WrittenCallback on_written_;
  ErrorCallback on_error_;
};

// The log's files as they exist now, oldest first: the rotated "path.N" down to "path.1", then
// `path` itself (whether or not it exists). For readers of the whole log (`unshelver report`).
std::vector<std::string> event_log_files(const std::string& path);

// The whole log as it is at one moment, for a reader of all its history (the savings ledger of
// the daemon, in the thread pool, and of `unshelver report`): open() opens every file
// (event_log_files) at once, so that a rotation afterwards (which renames them) or a pruning (which
// deletes them) does not change what is read. Move-only; the files are closed with it.
class EventLogSnapshot {
 public:
  // Every file of the log, or only the `newest_files` newest (the current file first to be kept,
  // then .1, ...) for a reader of the recent past (`unshelver events --local`).
  static Result<EventLogSnapshot> open(const std::string& path,
                                       std::size_t newest_files = std::numeric_limits<std::size_t>::max());
  EventLogSnapshot(EventLogSnapshot&& other) noexcept : files_(std::move(other.files_)) {
    other.files_.clear();
  }
  EventLogSnapshot& operator=(EventLogSnapshot&&) = delete;
  EventLogSnapshot(const EventLogSnapshot&) = delete;
  EventLogSnapshot& operator=(const EventLogSnapshot&) = delete;
  ~EventLogSnapshot();

  // Hands `each` every record, oldest file first, in the order written, one line at a time, so
  // that memory stays bounded whatever the log's size. A last line without its newline (a write
  // in progress, or torn by a crash) is not a record yet; other lines that are not records, and
  // lines longer than any record (damage), are counted in `unreadable` and left out. An error
  // names the file that cannot be read. Safe on any one thread.
  Status for_each_record(const std::function<void(const core::EventRecord&)>& each,
                         std::size_t& unreadable) const;

 private:
  EventLogSnapshot() = default;
  std::vector<std::pair<std::string, int>> files_;  // path (for messages) and descriptor
};

}  // namespace unshelver::io
