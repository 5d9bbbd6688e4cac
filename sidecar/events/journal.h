// EventJournal: the local audit log (`local_event_log`), one JSON record per line, and the
// cursor of the Swift mirror's outbox beside it (`{local_event_log}.outbox`).
//
// - Start-up (open, synchronous, before the loop runs): creates the directory, cuts off a torn
//   last line left by a crash (core::intact_length), continues the numbering from the last
//   record, and hands back the records the mirror has not confirmed yet (seq above the cursor),
//   from the current file and from rotated files that still hold some. A path that cannot be
//   written, or a device with no space left, is an error: the caller stops with exit code 2.
// - Appends run in libuv's thread pool (uv_queue_work), one batch at a time: write(2) of every
//   queued line, then fdatasync(2). Only after that does the loop hear of the records (the
//   WrittenCallback), so whatever reports an event reports one that survives a crash. Records
//   queued while a batch is written form the next batch (group commit).
// - A failed write (ENOSPC, EFBIG, EIO) is cut back with ftruncate(2) to where the batch began, so
//   the file never holds half a line; the records stay queued, in order, and are tried again
//   with back-off. The loop is never blocked and nothing is dropped.
// - Rotation by size: past `rotate_bytes` the file becomes `.1` (older ones shift up), and files
//   beyond `keep_files` are deleted, except ones that still hold records the mirror has not
//   confirmed (they are kept until it has).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/result.h"
#include "events/record.h"
#include "uv/timer.h"

namespace unshelver::io {

struct JournalSettings {
  std::string path;
  std::uint64_t rotate_bytes = std::uint64_t{10} * 1024 * 1024;
  int keep_files = 5;
  // With a mirror, rotated files are kept until every record in them is confirmed uploaded.
  bool mirrored = false;
};

// What open() found.
struct JournalOpened {
  std::uint64_t last_seq = 0;
  std::uint64_t uploaded_through = 0;          // the outbox cursor
  std::vector<core::EventRecord> unconfirmed;  // seq > uploaded_through, oldest first (mirrored only)
  std::vector<core::EventRecord> recent;       // the newest records of the current file
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
  std::uint64_t kept_for_mirror = 0;  // rotated files kept beyond keep_files for the mirror
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
  // The mirror confirmed every record up to `seq`; saved with the next batch (a stale cursor
  // only costs a re-upload, which Swift answers with 412).
  void set_uploaded_through(std::uint64_t seq);
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
  std::uint64_t uploaded_through_ = 0;
  std::uint64_t saved_cursor_ = 0;
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

}  // namespace unshelver::io
