#include "events/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/backoff.h"
#include "base/text.h"
#include "uv/files.h"

namespace unshelver::io {

namespace {
using namespace std::chrono_literals;
// A failed write is retried after 500 ms, doubling up to 5 s, without jitter: there is one writer.
// A write attempt costs next to nothing, and a full disk is often freed by hand: retry soon.
constexpr core::BackoffPolicy kRetryPolicy{500ms, 5'000ms, 0.0};
// A line longer than this is damage, not a record (a record's detail is bounded far below it).
constexpr std::size_t kMaxLogLineBytes = std::size_t{1024} * 1024;
// The newest records' seq is read from this much of a rotated file's end.
constexpr std::size_t kTailBytes = std::size_t{64} * 1024;

using core::errno_text;

std::string rotated_path(const std::string& path, int index) {
  return path + "." + std::to_string(index);
}

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

// The highest N of the rotated files "path.N". The directory is listed rather than probed
// index by index, so that a gap (a crash in the middle of a rotation) hides no older file.
int highest_rotated(const std::string& path) {
  const std::filesystem::path file(path);
  const std::string stem = file.filename().string() + ".";
  std::error_code failed;
  int highest = 0;
  const std::filesystem::path directory = file.parent_path().empty() ? "." : file.parent_path();
  for (const auto& entry : std::filesystem::directory_iterator(directory, failed)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= stem.size() || name.compare(0, stem.size(), stem) != 0 ||
        name.size() - stem.size() > 6)
      continue;
    const std::string digits = name.substr(stem.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits[0] == '0') continue;
    highest = std::max(highest, std::stoi(digits));
  }
  return highest;
}

// Calls `visit` for every complete line of `content`.
template <typename Visit>
void for_each_line(std::string_view content, Visit visit) {
  std::size_t start = 0;
  while (start < content.size()) {
    const std::size_t end = content.find('\n', start);
    if (end == std::string_view::npos) return;
    if (end > start) visit(content.substr(start, end - start));
    start = end + 1;
  }
}

// The last `bytes` of a file ("" when it cannot be read). The first line may be cut.
std::string tail_of(const std::string& path, std::size_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat info {};
  std::string tail;
  if (::fstat(fd, &info) == 0 && info.st_size > 0) {
    const auto size = static_cast<std::size_t>(info.st_size);
    const std::size_t length = std::min(size, bytes);
    tail.resize(length);
    const ssize_t got = ::pread(fd, tail.data(), length, static_cast<off_t>(size - length));
    tail.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  }
  ::close(fd);
  return tail;
}

// Where the whole lines of the last `bytes` of `content` begin.
std::size_t whole_lines_within(std::string_view content, std::size_t bytes) {
  if (content.size() <= bytes) return 0;
  const std::size_t newline = content.find('\n', content.size() - bytes - 1);
  return newline == std::string_view::npos ? content.size() : newline + 1;
}

// The seq of the newest record in a rotated file (0 when none can be read).
std::uint64_t last_seq_of(const std::string& path) {
  const std::string tail = tail_of(path, kTailBytes);
  std::uint64_t newest = 0;
  for_each_line(tail, [&](std::string_view line) {
    if (auto record = core::parse_event_line(line)) newest = std::max(newest, record->seq);
  });
  return newest;
}

// Read-write, because an append first reads the last byte (pread(2) on a write-only descriptor
// fails with EBADF) to see whether the file ends inside a line. O_NOFOLLOW: the event log is
// never a link, so one planted there is refused (ELOOP) rather than appended through.
int open_for_append(const std::string& path) {
  return ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
}

std::string cursor_path(const std::string& path) {
  return path + ".outbox";
}

// The outbox file: {"cursors": {"swift": 12, "webhook-…": 9}, "uploaded_through": 12}. The
// top-level "uploaded_through" is the Swift cursor as Unshelver wrote it before there were named
// cursors; it is still written, so that an older Unshelver started on the same log re-uploads
// nothing.
std::string cursor_text(const std::map<std::string, std::uint64_t>& cursors) {
  nlohmann::json document{{"cursors", cursors}};
  if (const auto swift = cursors.find("swift"); swift != cursors.end()) {
    document["uploaded_through"] = swift->second;
  }
  return document.dump() + "\n";
}

// The saved positions; a missing or unreadable file holds none.
std::map<std::string, std::uint64_t> read_cursors(const std::string& path) {
  std::map<std::string, std::uint64_t> found;
  if (!exists(cursor_path(path))) return found;
  auto text = read_file(cursor_path(path));
  const nlohmann::json document = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  if (!document.is_object()) return found;
  if (const auto legacy = document.find("uploaded_through");
      legacy != document.end() && legacy->is_number_unsigned()) {
    found["swift"] = legacy->get<std::uint64_t>();
  }
  if (const auto named = document.find("cursors"); named != document.end() && named->is_object()) {
    for (const auto& [name, value] : named->items()) {
      if (value.is_number_unsigned()) found[name] = value.get<std::uint64_t>();
    }
  }
  return found;
}

std::uint64_t lowest(const std::map<std::string, std::uint64_t>& cursors) {
  std::uint64_t low = UINT64_MAX;
  for (const auto& [name, seq] : cursors) low = std::min(low, seq);
  return low;
}
}  // namespace

// One batch for the thread pool. The worker touches only this block and the files; the journal
// itself is read and changed on the loop alone.
struct EventJournal::Work {
  uv_work_t request{};
  EventJournal* journal = nullptr;
  // In.
  JournalSettings settings;
  int fd = -1;
  std::vector<core::EventRecord> records;
  std::string data;                                             // their lines, each with its newline
  std::size_t bytes = 0;                                        // data's length before a repairing newline
  std::optional<std::map<std::string, std::uint64_t>> cursors;  // the outbox cursors to save
  std::uint64_t prune_through = UINT64_MAX;  // rotated files whose records are all <= this may go
  // Out.
  std::string error;         // the batch was not written (the file is as before)
  std::string cursor_error;  // the cursors were not saved (they are tried again with the next batch)
  std::string notice;        // rotation or pruning trouble, for the log
  bool rotated = false;
  bool first = false;  // the first batch of this process
  bool pruned = false;
  std::uint64_t kept_for_outbox = 0;

  void run();
  void append();
  void rotate();
  void prune();
};

void EventJournal::Work::run() {
  if (!data.empty()) append();
  if (error.empty() && cursors) {
    if (Status saved = write_file_atomically(cursor_path(settings.path), cursor_text(*cursors), 0640);
        !saved) {
      cursor_error = saved.error().message;
    }
  }
  // Only when something could have made a rotated file unnecessary (or at the first batch, for
  // files left by an earlier run with a larger keep_files).
  if (rotated || cursors || first) prune();
}

void EventJournal::Work::append() {
  const std::string& path = settings.path;
  if (fd < 0) {
    fd = open_for_append(path);
    if (fd < 0) {
      error = "cannot open " + path + ": " + errno_text();
      return;
    }
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    error = "cannot stat " + path + ": " + errno_text();
    return;
  }
  const off_t size_before = info.st_size;
  // If an earlier failure could not be cut back, the file ends inside a line: end that line
  // first, so that the fragment stays a line of its own and never merges with a record.
  if (size_before > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, size_before - 1) == 1 && last != '\n') data.insert(data.begin(), '\n');
  }
  Status written = write_all(fd, data, path);
  if (written && ::fdatasync(fd) != 0) written = Error{"cannot write " + path + ": " + errno_text()};
  if (!written) {
    error = written.error().message;
    // Cut back what part of the batch reached the file: it must end with a whole line.
    if (::ftruncate(fd, size_before) != 0 || ::fdatasync(fd) != 0) {
      error += " (and cannot cut the partial write back: " + errno_text() + ")";
    }
    return;
  }
  if (static_cast<std::uint64_t>(size_before) + data.size() >= settings.rotate_bytes) rotate();
}

void EventJournal::Work::rotate() {
  const std::string& path = settings.path;
  ::close(fd);
  fd = -1;
  for (int index = highest_rotated(path); index >= 1; --index) {
    if (!exists(rotated_path(path, index))) continue;  // a gap left by a crash mid-rotation
    if (::rename(rotated_path(path, index).c_str(), rotated_path(path, index + 1).c_str()) != 0) {
      notice = "cannot rotate " + rotated_path(path, index) + ": " + errno_text();
    }
  }
  if (::rename(path.c_str(), rotated_path(path, 1).c_str()) != 0) {
    notice = "cannot rotate " + path + ": " + errno_text() + "; it keeps growing";
  } else {
    rotated = true;
  }
  fd = open_for_append(path);  // a failure here is met by the next batch, which opens again
  if (Status synced = fsync_directory_of(path); !synced) notice = synced.error().message;
}

void EventJournal::Work::prune() {
  const std::string& path = settings.path;
  pruned = true;
  // The highest index is the oldest file; a file still needed by a cursor means every newer one
  // is needed too.
  for (int index = highest_rotated(path); index > settings.keep_files; --index) {
    const std::string old = rotated_path(path, index);
    if (!exists(old)) continue;
    if (!settings.cursors.empty() && last_seq_of(old) > prune_through) {
      kept_for_outbox = static_cast<std::uint64_t>(index - settings.keep_files);
      return;
    }
    if (::unlink(old.c_str()) != 0) notice = "cannot delete " + old + ": " + errno_text();
  }
}

std::vector<std::string> event_log_files(const std::string& path) {
  std::vector<std::string> files;
  for (int index = highest_rotated(path); index >= 1; --index) {
    if (exists(rotated_path(path, index))) files.push_back(rotated_path(path, index));
  }
  files.push_back(path);
  return files;
}

Result<EventLogSnapshot> EventLogSnapshot::open(const std::string& path, std::size_t newest_files) {
  EventLogSnapshot snapshot;
  std::vector<std::string> files = event_log_files(path);
  if (files.size() > newest_files)
    files.erase(files.begin(), files.end() - static_cast<std::ptrdiff_t>(newest_files));
  for (const std::string& file : files) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      // A rotated file pruned since it was listed holds nothing anyone still needs.
      if (errno == ENOENT && file != path) continue;
      return Error{"cannot read " + file + ": " + errno_text()};
    }
    snapshot.files_.emplace_back(file, fd);
  }
  return snapshot;
}

EventLogSnapshot::~EventLogSnapshot() {
  for (const auto& [file, fd] : files_) ::close(fd);
}

Status EventLogSnapshot::for_each_record(const std::function<void(const core::EventRecord&)>& each,
                                         std::size_t& unreadable) const {
  std::string chunk(std::size_t{64} * 1024, '\0');
  for (const auto& [file, fd] : files_) {
    std::string line;
    bool overlong = false;  // the rest of a line that outgrew kMaxLogLineBytes, until its newline
    for (;;) {
      const ssize_t got = ::read(fd, chunk.data(), chunk.size());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Error{"cannot read " + file + ": " + errno_text()};
      if (got == 0) break;  // what is left in `line` has no newline: not a record yet
      std::string_view rest(chunk.data(), static_cast<std::size_t>(got));
      while (!rest.empty()) {
        const std::size_t newline = rest.find('\n');
        const std::string_view piece = rest.substr(0, newline);
        if (!overlong) line.append(piece);
        if (line.size() > kMaxLogLineBytes) {
          overlong = true;
          line.clear();
        }
        if (newline == std::string_view::npos) break;
        rest.remove_prefix(newline + 1);
        if (overlong) {
          ++unreadable;
        } else if (!line.empty()) {
          if (auto record = core::parse_event_line(line)) {
            each(*record);
          } else {
            ++unreadable;
          }
        }
        line.clear();
        overlong = false;
      }
    }
  }
  return ok_status();
}

EventJournal::EventJournal(uv_loop_t* loop, JournalSettings settings)
    : loop_(loop), settings_(std::move(settings)), retry_timer_(loop), random_(std::random_device{}()) {
  settings_.keep_files = std::max(1, settings_.keep_files);
}

EventJournal::~EventJournal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<JournalOpened> EventJournal::open(std::size_t recent_limit, std::size_t history_bytes) {
  const std::string& path = settings_.path;
  const std::string where = "local_event_log " + path + ": ";
  std::error_code failed;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, failed);
    if (failed)
      return Error{where + "cannot create the directory " + parent.string() + ": " + failed.message()};
  }

  JournalOpened opened;
  const std::map<std::string, std::uint64_t> saved = read_cursors(path);

  fd_ = open_for_append(path);
  if (fd_ < 0) return Error{where + "cannot open for appending: " + errno_text()};
  if (Status synced = fsync_directory_of(path); !synced) return Error{where + synced.error().message};
  struct statvfs space {};
  if (::fstatvfs(fd_, &space) == 0 && space.f_bavail == 0) {
    return Error{where + "no space left on the device that holds it"};
  }

  auto content = read_file(path);
  if (!content) return Error{where + content.error().message};
  const std::size_t intact = core::intact_length(*content);
  if (intact < content->size()) {
    opened.torn_bytes = content->size() - intact;
    // Kept aside rather than destroyed: it was never reported, but a person may want to see it.
    const std::string torn_path = path + ".torn";
    const int torn = ::open(torn_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    const std::string torn_text = content->substr(intact) + (content->back() == '\n' ? "" : "\n");
    Status kept = torn >= 0 ? write_all(torn, torn_text, torn_path)
                            : Status(Error{"cannot open " + torn_path + ": " + errno_text()});
    if (kept && ::fdatasync(torn) != 0) kept = Error{"cannot fsync " + torn_path + ": " + errno_text()};
    if (torn >= 0) ::close(torn);
    if (!kept) return Error{where + "cannot keep a torn last line aside: " + kept.error().message};
    if (::ftruncate(fd_, static_cast<off_t>(intact)) != 0 || ::fdatasync(fd_) != 0) {
      return Error{where + "cannot cut off a torn last line: " + errno_text()};
    }
    content->resize(intact);
  }

  std::vector<core::EventRecord> current;
  // The history's share of the previous file: its last whole lines, older than the current ones.
  if (history_bytes > content->size() && exists(rotated_path(path, 1))) {
    const std::size_t wanted = history_bytes - content->size();
    // One byte more than wanted: when it is a newline, the tail begins with a whole line.
    const std::string older = tail_of(rotated_path(path, 1), wanted + 1);
    const std::string_view whole(older);
    const std::size_t newline = whole.find('\n');
    const std::size_t begin = older.size() <= wanted              ? 0
                              : newline == std::string_view::npos ? whole.size()
                                                                  : newline + 1;
    for_each_line(whole.substr(begin), [&](std::string_view line) {
      if (auto record = core::parse_event_line(line)) opened.history.push_back(std::move(*record));
    });
  }
  const std::size_t history_from = whole_lines_within(*content, history_bytes);
  for_each_line(*content, [&](std::string_view line) {
    if (auto record = core::parse_event_line(line)) {
      opened.last_seq = std::max(opened.last_seq, record->seq);
      if (static_cast<std::size_t>(line.data() - content->data()) >= history_from)
        opened.history.push_back(*record);
      current.push_back(std::move(*record));
    } else {
      ++opened.unreadable_lines;
    }
  });
  const int highest = highest_rotated(path);
  std::vector<std::uint64_t> newest_of(static_cast<std::size_t>(highest) + 1, 0);
  for (int index = 1; index <= highest; ++index) {
    newest_of[static_cast<std::size_t>(index)] = last_seq_of(rotated_path(path, index));
    opened.last_seq = std::max(opened.last_seq, newest_of[static_cast<std::size_t>(index)]);
  }
  // Each configured cursor: its saved position, or where a new one starts. A cursor ahead of the
  // log (the log was replaced or cut) must not hide the new records: it starts anew.
  for (const OutboxCursor& cursor : settings_.cursors) {
    const auto found = saved.find(cursor.name);
    const bool usable = found != saved.end() && found->second <= opened.last_seq;
    opened.cursors[cursor.name] = usable                           ? found->second
                                  : cursor.new_starts_at_beginning ? 0
                                                                   : opened.last_seq;
  }
  cursors_ = opened.cursors;
  // The file is brought up to date now when it no longer says where each cursor is: a new cursor
  // that starts at the log's end (even an empty log's: 0) would otherwise start later still after
  // a restart and skip what was recorded meanwhile; a reset one would be taken up again once the
  // log has grown past it; a removed receiver's would be kept. Only a missing cursor that starts
  // at the beginning anyway (Swift's) needs no saving.
  bool stale = false;
  for (const OutboxCursor& cursor : settings_.cursors) {
    const auto found = saved.find(cursor.name);
    if (found == saved.end() ? !cursor.new_starts_at_beginning : found->second != cursors_[cursor.name]) {
      stale = true;
    }
  }
  for (const auto& [name, seq] : saved) {
    if (!cursors_.contains(name)) stale = true;
  }
  if (stale) {
    if (Status written = write_file_atomically(cursor_path(path), cursor_text(cursors_), 0640); !written) {
      return Error{where + written.error().message};
    }
  }
  saved_cursors_ = cursors_;
  const std::uint64_t confirmed = lowest(cursors_);

  // Rotated files are read only while they hold records some cursor has not passed, oldest file
  // first.
  if (!settings_.cursors.empty()) {
    for (int index = highest; index >= 1; --index) {
      // A missing index (a gap) reads as newest 0, so it is skipped here too.
      if (newest_of[static_cast<std::size_t>(index)] <= confirmed) continue;
      auto text = read_file(rotated_path(path, index));
      if (!text) return Error{where + text.error().message};
      for_each_line(std::string_view(*text).substr(0, core::intact_length(*text)),
                    [&](std::string_view line) {
                      auto record = core::parse_event_line(line);
                      if (record && record->seq > confirmed) opened.unconfirmed.push_back(std::move(*record));
                    });
    }
  }
  for (core::EventRecord& record : current) {
    if (record.seq == 0) continue;  // the Python unshelver's lines: shown by nobody, uploaded long ago
    if (!settings_.cursors.empty() && record.seq > confirmed) opened.unconfirmed.push_back(record);
  }
  const std::size_t first_recent = current.size() > recent_limit ? current.size() - recent_limit : 0;
  for (std::size_t i = first_recent; i < current.size(); ++i) {
    if (current[i].seq != 0) opened.recent.push_back(std::move(current[i]));
  }
  last_seq_ = opened.last_seq;
  return opened;
}

std::size_t EventJournal::unwritten() const {
  return queue_.size() + (work_ ? work_->records.size() : 0);
}

std::size_t EventJournal::unwritten_bytes() const {
  return queued_bytes_ + (work_ ? work_->bytes : 0);
}

core::EventRecord EventJournal::append(core::EventRecord record) {
  record.seq = ++last_seq_;
  record.id = core::make_event_id(record.at, record.seq, static_cast<std::uint32_t>(random_()));
  queued_bytes_ += core::to_json_line(record).size() + 1;
  queue_.push_back(record);
  if (work_ == nullptr && !retry_timer_.active()) start_batch();
  return record;
}

void EventJournal::set_cursor(const std::string& name, std::uint64_t seq) {
  const auto found = cursors_.find(name);
  if (found == cursors_.end() || seq <= found->second) return;
  found->second = seq;
  if (work_ == nullptr && !retry_timer_.active() && !closed_) start_batch();
}

std::uint64_t EventJournal::cursor(const std::string& name) const {
  const auto found = cursors_.find(name);
  return found == cursors_.end() ? 0 : found->second;
}

void EventJournal::close() {
  closed_ = true;
  retry_timer_.stop();
  if (work_ == nullptr && (!queue_.empty() || cursors_ != saved_cursors_)) start_batch();
}

void EventJournal::start_batch() {
  auto work = std::make_unique<Work>();
  work->journal = this;
  work->settings = settings_;
  work->fd = fd_;
  work->records.assign(queue_.begin(), queue_.end());
  queue_.clear();
  for (const core::EventRecord& record : work->records) work->data += core::to_json_line(record) + "\n";
  work->bytes = work->data.size();
  queued_bytes_ = 0;
  if (cursors_ != saved_cursors_) work->cursors = cursors_;
  work->prune_through = lowest(cursors_);
  work->first = !batched_before_;
  batched_before_ = true;
  // The fd belongs to the batch until it returns (the worker may rotate and reopen).
  fd_ = -1;
  work->request.data = work.get();
  work_ = work.get();
  const int queued = uv_queue_work(
      loop_, &work->request, [](uv_work_t* request) noexcept { static_cast<Work*>(request->data)->run(); },
      [](uv_work_t* request, int) noexcept {
        std::unique_ptr<Work> done(static_cast<Work*>(request->data));
        EventJournal* journal = done->journal;
        journal->finish_batch(std::move(done));
      });
  if (queued != 0) {
    // Only possible on a loop that is closing; write here rather than lose the records.
    work->run();
    finish_batch(std::move(work));
    return;
  }
  // Owned by the thread pool until the after-work callback, which takes it back.
  static_cast<void>(work.release());
}

void EventJournal::finish_batch(std::unique_ptr<Work> work) {
  work_ = nullptr;
  fd_ = work->fd;
  if (work->rotated) ++stats_.rotations;
  if (work->pruned) stats_.kept_for_outbox = work->kept_for_outbox;
  if (!work->notice.empty() && on_error_) on_error_(work->notice, false, queue_.size());
  if (!work->error.empty()) {
    // Back to the front of the queue, in order, before anything appended meanwhile.
    queue_.insert(queue_.begin(), work->records.begin(), work->records.end());
    queued_bytes_ += work->bytes;
    ++stats_.write_errors;
    stats_.last_write_error = work->error;
    ++failed_writes_;
    if (on_error_) on_error_(work->error, true, queue_.size());
    if (!closed_) {
      retry_timer_.start(core::backoff_delay(kRetryPolicy, failed_writes_, 0.0), [this] { start_batch(); });
    }
    return;
  }
  if (work->cursors && work->cursor_error.empty()) saved_cursors_ = *work->cursors;
  if (!work->cursor_error.empty() && on_error_) on_error_(work->cursor_error, false, queue_.size());
  failed_writes_ = 0;
  if (!work->records.empty()) {
    stats_.written += work->records.size();
    stats_.last_write_error.clear();
    if (on_written_) on_written_(work->records);
  }
  if (!queue_.empty() || (cursors_ != saved_cursors_ && work->cursor_error.empty())) start_batch();
}

}  // namespace unshelver::io
