// LogFollower implementation.
//
// The flow, in one paragraph. start() loads the checkpoint, starts an inotify watch on the
// directory (uv_fs_event_t) and decides where reading begins. From then on every event for our
// basename, every tick of the stat timer and every read that ran out of budget schedules *work*
// on a uv_idle_t, so that a burst of inotify events costs one pass per loop turn. A pass first
// stat()s the path when asked to (a rename/create/delete event or the timer): a new (st_dev,
// st_ino) at the path is appended to a queue of *sources* (open descriptors). Then it reads the
// queue front to back with pread(2): every source except the last is a file that has been
// rotated away, and it is drained to EOF, then closed; the last one is the file at the path (or
// the file that was there last, while the path is missing). Keeping the old descriptor open until
// it is drained makes an immediate unlink or gzip of the rotated file harmless: an open
// descriptor keeps the inode readable (caddy-facts §4d: lumberjack gzips and deletes the backup
// within milliseconds).
//
// Truncation (copytruncate) is detected before each pass on the same inode, and again after each
// read (a truncation may come between the check and the read), in two ways: the size
// is below our read offset, or the last bytes before our line offset (the *tail*, up to
// kTailBytes) are no longer what we read there. The second catches a file that was truncated and
// has already grown past our offset again, which the size check alone would miss. After a
// truncation the file is read from 0; if we had not read everything before the truncation, the
// copy that copytruncate made still holds the rest, so a rotated sibling whose bytes at our offset
// match the tail is read from our offset first.
//
// The stat timer is one-shot and re-armed after each pass it starts. A pass that finds nothing
// new (no inotify event for the file since the last pass, no bytes, no rotation or truncation)
// doubles the next interval, up to stat_interval_max; any sign of life, whoever noticed it,
// returns it to stat_interval and re-arms the timer at once if it was set further out. While the
// log is written the net therefore runs as often as configured, and once it goes quiet the timer
// fires a few times at growing intervals and then about twice a minute.
//
// The checkpoint stores (device, inode, offset of the end of the last complete line, tail). The
// tail lets a restart tell "the same inode, appended to" from "the same inode number, different
// content" (an inode reused after deletion, or a file truncated and refilled while we were down).
#include "activity/log_follower.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <exception>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>
#include <vector>

#include "base/text.h"
#include "uv/files.h"
#include "uv/handle.h"
#include "uv/timer.h"

namespace unshelver::io {

namespace {

using nlohmann::json;

// How many bytes before the line offset identify a position. Long enough to span a whole line in
// tests and the varying end of a Caddy access line (duration, size, status, response headers).
constexpr std::size_t kTailBytes = 256;
// One pread(2) reads at most this much; the per-turn budget is spent in chunks of this size.
constexpr std::size_t kChunkBytes = std::size_t{64} * 1024;
constexpr std::size_t kMinReadBudget = std::size_t{4} * 1024;
// A copytruncate recovery looks at no more than this many siblings, to bound the work in a
// directory full of old logs.
constexpr std::size_t kMaxCopyCandidates = 64;
constexpr int kCheckpointVersion = 1;
// A checkpoint is a few hundred bytes; anything much larger is not one.
constexpr std::size_t kMaxCheckpointBytes = std::size_t{64} * 1024;
// The checkpoint says how far the access log was read; only Unshelver's user reads it.
constexpr int kCheckpointMode = 0600;

using core::errno_text;

// An owned file descriptor. Sources are moved around in a deque; the descriptor must be closed
// exactly once, when the source is dropped.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Reads up to `size` bytes at `offset`, retrying short reads and EINTR; returns the number of
// bytes read (less than `size` only at EOF) or -1 with errno set.
ssize_t pread_full(int fd, char* data, std::size_t size, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

bool is_compressed_name(std::string_view name) {
  for (std::string_view suffix : {".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"}) {
    if (name.ends_with(suffix)) return true;
  }
  return false;
}

// lumberjack's backup timestamp, "2006-01-02T15-04-05.000" (lumberjack.go backupTimeFormat).
bool is_lumberjack_stamp(std::string_view text) {
  constexpr std::string_view kShape = "dddd-dd-ddTdd-dd-dd.ddd";
  if (text.size() != kShape.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (kShape[i] == 'd' ? (text[i] < '0' || text[i] > '9') : text[i] != kShape[i]) return false;
  }
  return true;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int high = digit(hex[i]);
    int low = digit(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

// Keeps the last kTailBytes of `text`.
void keep_tail(std::string& text) {
  if (text.size() > kTailBytes) text.erase(0, text.size() - kTailBytes);
}

std::string parent_directory(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

struct StoredCheckpoint {
  LogCheckpoint position;
  std::string tail;
  std::string path;
};

// Reads the checkpoint file. A missing file is "no checkpoint"; anything else that cannot be
// read or parsed is an error naming the file (the header's contract for start()).
Result<std::optional<StoredCheckpoint>> load_checkpoint(const std::string& path) {
  Result<std::optional<std::string>> text = read_file_if_exists(path, kMaxCheckpointBytes);
  if (!text.ok()) return Error{"log checkpoint: " + text.error().message};
  if (!*text) return std::optional<StoredCheckpoint>{};
  json document = json::parse(**text, nullptr, false);
  auto invalid = [&](const std::string& why) {
    return Error{"log checkpoint " + path + " cannot be parsed (" + why +
                 "); delete it to start at the end of the log"};
  };
  if (document.is_discarded() || !document.is_object()) return invalid("not a JSON object");
  for (const char* key : {"device", "inode", "offset"}) {
    if (!document.contains(key) || !document[key].is_number_unsigned()) {
      return invalid(std::string("missing or invalid \"") + key + "\"");
    }
  }
  StoredCheckpoint stored;
  stored.position.device = document["device"].get<std::uint64_t>();
  stored.position.inode = document["inode"].get<std::uint64_t>();
  stored.position.offset = document["offset"].get<std::uint64_t>();
  if (document.contains("tail")) {
    if (!document["tail"].is_string()) return invalid("\"tail\" is not a string");
    auto tail = from_hex(document["tail"].get<std::string>());
    if (!tail || tail->size() > kTailBytes || tail->size() > stored.position.offset) {
      return invalid("\"tail\" is not valid");
    }
    stored.tail = std::move(*tail);
  }
  if (document.contains("path") && document["path"].is_string()) {
    stored.path = document["path"].get<std::string>();
  }
  return std::optional<StoredCheckpoint>(std::move(stored));
}

}  // namespace

struct LogFollower::Impl {
  // One open file: the file at the path (the last source) or a rotated file being drained.
  struct Source {
    UniqueFd fd;
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::string name;               // for log messages only
    std::uint64_t read_offset = 0;  // the next byte to read
    std::uint64_t line_start = 0;   // the end of the last complete line consumed
    std::string tail;               // up to kTailBytes of the file right before line_start
    std::string carry;              // bytes [line_start, read_offset) unless skipping
    bool skipping = false;          // inside an overlong line: drop bytes through its '\n'
  };

  // Handle blocks: the handle first (uv_handle.h), then a pointer back that close() clears, so a
  // callback that libuv delivers after close() finds no owner.
  struct FsEventBlock {
    uv_fs_event_t handle;
    Impl* owner = nullptr;
  };
  struct IdleBlock {
    uv_idle_t handle;
    Impl* owner = nullptr;
  };

  // What consume() has seen of the chunk it is splitting, so that a checkpoint written from
  // inside the line callback (close() called by the callback) gets a tail that matches the
  // line offset it writes.
  struct ChunkContext {
    std::string_view before;  // known bytes right before the chunk (up to kTailBytes)
    const char* data = nullptr;
    std::size_t boundary = 0;  // index in data after the last line consumed
  };

  enum class State { kCreated, kRunning, kClosed };

  Impl(uv_loop_t* loop, std::string path, LogFollowerOptions options, LineCallback on_line)
      : loop_(loop),
        path_(std::move(path)),
        options_(std::move(options)),
        on_line_(std::move(on_line)),
        buffer_(kChunkBytes) {
    directory_ = parent_directory(path_);
    auto slash = path_.rfind('/');
    basename_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    // lumberjack names backups <stem>-<timestamp><ext>, with ext = filepath.Ext(name).
    auto dot = basename_.rfind('.');
    if (dot == std::string::npos || dot == 0) {
      stem_ = basename_;
    } else {
      stem_ = basename_.substr(0, dot);
      extension_ = basename_.substr(dot);
    }
  }

  // A destructor must not throw; close() only logs and writes a file, but both allocate.
  ~Impl() {
    try {
      close();
    } catch (...) {
      spdlog::critical("log follower {}: close() failed in the destructor", path_);
    }
  }

  // ---- start -----------------------------------------------------------------------------

  Status start() {
    if (state_ != State::kCreated) return Error{"log follower for " + path_ + " was already started"};
    if (basename_.empty()) return Error{"log path " + path_ + " names a directory, not a file"};

    std::optional<StoredCheckpoint> checkpoint;
    if (!options_.checkpoint_path.empty()) {
      auto loaded = load_checkpoint(options_.checkpoint_path);
      if (!loaded) return loaded.error();
      checkpoint = std::move(*loaded);
      if (checkpoint && !checkpoint->path.empty() && checkpoint->path != path_) {
        spdlog::warn("log follower {}: ignoring checkpoint {}, which is for {}; starting at the end", path_,
                     options_.checkpoint_path, checkpoint->path);
        checkpoint.reset();
      }
    }

    // Watch first, then look: a file created between the two is then seen by both, and
    // check_path() ignores an inode it already follows.
    fs_event_ = new FsEventBlock{};
    int rc = uv_fs_event_init(loop_, &fs_event_->handle);
    if (rc == 0) {
      fs_event_->handle.data = fs_event_;
      fs_event_->owner = this;
      rc = uv_fs_event_start(&fs_event_->handle, on_uv_fs_event, directory_.c_str(), 0);
    }
    if (rc != 0) {
      // If init failed the handle is not on the loop and must be deleted directly; if only start
      // failed it is, and must be closed (uv_handle.h).
      if (fs_event_->owner == nullptr) {
        delete fs_event_;
      } else {
        fs_event_->owner = nullptr;
        close_and_free(fs_event_);
      }
      fs_event_ = nullptr;
      state_ = State::kClosed;
      return Error{"cannot watch the log directory " + directory_ + ": " + uv_strerror(rc)};
    }
    idle_ = new IdleBlock{};
    uv_idle_init(loop_, &idle_->handle);  // Cannot fail: it only initialises fields.
    idle_->handle.data = idle_;
    idle_->owner = this;
    stat_timer_ = std::make_unique<Timer>(loop_);
    checkpoint_timer_ = std::make_unique<Timer>(loop_);
    state_ = State::kRunning;

    if (checkpoint) {
      resume_from(*checkpoint);
    } else {
      start_at_end();
    }

    stat_interval_ = shortest_stat_interval();
    arm_stat_timer();
    request_work(false);
    return ok_status();
  }

  // No checkpoint: follow only what is written from now on. If the file ends in a partial line
  // (the writer is in the middle of a write), start at that line so that it is emitted whole.
  void start_at_end() {
    auto source = open_source(path_);
    if (!source) {
      spdlog::debug("log follower {}: the file does not exist yet; waiting for it", path_);
      return;
    }
    struct stat st {};
    if (::fstat(source->fd.get(), &st) != 0) return;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t window = std::min<std::uint64_t>(size, options_.max_line_bytes + 1);
    std::string bytes(window, '\0');
    ssize_t n = pread_full(source->fd.get(), bytes.data(), bytes.size(), size - window);
    if (n != static_cast<ssize_t>(window)) {
      source->read_offset = source->line_start = size;
    } else {
      auto newline = bytes.rfind('\n');
      if (newline != std::string::npos) {
        source->line_start = size - window + newline + 1;
        source->tail = bytes.substr(0, newline + 1);
        keep_tail(source->tail);
      } else if (window == size) {
        source->line_start = 0;  // The whole file is one line still being written.
      } else {
        // The line in progress began more than max_line_bytes ago: it is overlong anyway.
        source->line_start = size;
        source->skipping = true;
      }
      source->read_offset = source->line_start;
    }
    spdlog::debug("log follower {}: no checkpoint; starting at offset {} of {} bytes", path_,
                  source->line_start, size);
    sources_.push_back(std::move(*source));
  }

  void resume_from(const StoredCheckpoint& checkpoint) {
    const LogCheckpoint& at = checkpoint.position;
    struct stat st {};
    const bool path_exists = ::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    if (path_exists && static_cast<std::uint64_t>(st.st_dev) == at.device &&
        static_cast<std::uint64_t>(st.st_ino) == at.inode) {
      auto source = open_source(path_);
      if (source && source->device == at.device && source->inode == at.inode) {
        source->read_offset = source->line_start = at.offset;
        source->tail = checkpoint.tail;
        sources_.push_back(std::move(*source));
        if (!same_bytes_before(sources_.back(), at.offset, checkpoint.tail)) {
          // Truncated (or truncated and refilled) while we were down: the same handling as a
          // live truncation, including the search for a copy holding the rest.
          spdlog::debug("log follower {}: the file was truncated while Unshelver was down", path_);
          on_truncated();
        } else {
          spdlog::debug("log follower {}: resuming at offset {}", path_, at.offset);
        }
        return;
      }
    }

    // The path holds another file (or none): the checkpoint's file was rotated while we were
    // down. Read what is left of it, then any newer lumberjack backups, then the current file.
    ++stats_.rotations;
    std::vector<Sibling> siblings = list_siblings();
    const Sibling* found = nullptr;
    for (const auto& sibling : siblings) {
      if (sibling.device == at.device && sibling.inode == at.inode) found = &sibling;
    }
    std::optional<Source> old;
    if (found != nullptr) old = open_source(directory_ + "/" + found->name);
    if (old && old->device == at.device && old->inode == at.inode &&
        same_bytes_before(*old, at.offset, checkpoint.tail)) {
      old->read_offset = old->line_start = at.offset;
      old->tail = checkpoint.tail;
      spdlog::debug("log follower {}: resuming in rotated file {} at offset {}", path_, old->name, at.offset);
      sources_.push_back(std::move(*old));
      // lumberjack's names sort by time, so backups that sort after ours were written after it.
      if (is_lumberjack_backup(found->name)) {
        std::vector<std::string> newer;
        for (const auto& sibling : siblings) {
          if (is_lumberjack_backup(sibling.name) && sibling.name > found->name &&
              !(path_exists && sibling.device == static_cast<std::uint64_t>(st.st_dev) &&
                sibling.inode == static_cast<std::uint64_t>(st.st_ino))) {
            newer.push_back(sibling.name);
          }
        }
        std::sort(newer.begin(), newer.end());
        for (const auto& name : newer) {
          if (auto source = open_source(directory_ + "/" + name)) {
            sources_.push_back(std::move(*source));
            ++stats_.rotations;
          }
        }
      }
    } else {
      ++stats_.missed_while_down;
      spdlog::warn(
          "log follower {}: the file of the checkpoint (inode {}, offset {}) was rotated "
          "and removed or compressed while Unshelver was down; lines written to it after "
          "that offset are lost; continuing with the current file from its start",
          path_, at.inode, at.offset);
    }
    if (path_exists) {
      if (auto source = open_source(path_)) {
        if (!follows(source->device, source->inode)) sources_.push_back(std::move(*source));
      }
    }
    checkpoint_dirty_ = true;
  }

  // ---- close -----------------------------------------------------------------------------

  void close() {
    if (state_ == State::kClosed) return;
    const bool was_running = state_ == State::kRunning;
    state_ = State::kClosed;
    if (was_running) write_checkpoint();
    if (fs_event_ != nullptr) {
      fs_event_->owner = nullptr;
      uv_fs_event_stop(&fs_event_->handle);
      close_and_free(fs_event_);
      fs_event_ = nullptr;
    }
    if (idle_ != nullptr) {
      idle_->owner = nullptr;
      close_and_free(idle_);
      idle_ = nullptr;
    }
    // Timer's destructor stops and closes its handle; the memory goes in the close callback.
    stat_timer_.reset();
    checkpoint_timer_.reset();
    // Inside the line callback the source being split is still in use; it is released once the
    // callback has returned (see on_work).
    if (!delivering_) sources_.clear();
  }

  // ---- events ----------------------------------------------------------------------------

  static void on_uv_fs_event(uv_fs_event_t* handle, const char* filename, int events, int status) noexcept {
    auto* block = static_cast<FsEventBlock*>(handle->data);
    if (block->owner == nullptr) return;
    try {
      block->owner->on_fs_event(filename, events, status);
    } catch (const std::exception& error) {
      spdlog::critical("log follower: exception in the inotify callback: {}", error.what());
    } catch (...) {
      spdlog::critical("log follower: non-standard exception in the inotify callback");
    }
  }

  static void on_uv_idle(uv_idle_t* handle) noexcept {
    auto* block = static_cast<IdleBlock*>(handle->data);
    if (block->owner == nullptr) return;
    try {
      block->owner->on_work();
    } catch (const std::exception& error) {
      spdlog::critical("log follower: exception while reading: {}", error.what());
    } catch (...) {
      spdlog::critical("log follower: non-standard exception while reading");
    }
  }

  void on_fs_event(const char* filename, int events, int status) {
    if (status < 0) {
      spdlog::warn("log follower {}: inotify error: {}", path_, uv_strerror(status));
      event_seen_ = true;  // Events may have been lost: the net runs at its shortest again.
      request_work(true);
      return;
    }
    // libuv reports modify/attrib as UV_CHANGE and everything else (create, delete, moves) as
    // UV_RENAME, with the entry's name (STYLE.md §3). Other files in the directory, including
    // our own rotated backups, do not concern us.
    if (filename != nullptr && basename_ != filename) return;
    event_seen_ = true;
    request_work((events & UV_RENAME) != 0 || filename == nullptr);
  }

  // ---- the stat net ----------------------------------------------------------------------

  void arm_stat_timer() {
    stat_timer_->start(stat_interval_, [this] {
      stat_pass_pending_ = true;
      ++stats_.stat_passes;
      request_work(true);
    });
  }

  // A configured interval that rounds to 0 ms would re-arm the timer in a busy loop.
  std::chrono::milliseconds shortest_stat_interval() const {
    return std::max(options_.stat_interval, std::chrono::milliseconds(1));
  }

  // What a pass can change when the file shows signs of life; compared before and after it.
  struct Progress {
    std::uint64_t bytes;
    std::uint64_t rotations;
    std::uint64_t truncations;
    std::size_t sources;
    bool path_missing;
    bool operator==(const Progress&) const = default;
  };
  Progress progress() const {
    return Progress{stats_.bytes, stats_.rotations, stats_.truncations, sources_.size(), path_missing_};
  }

  // After a pass: back to the shortest interval on any sign of life, one step longer after a quiet
  // pass that the timer started. The longest is never below the shortest (a configured interval
  // above the default cap simply does not back off).
  void adjust_stat_interval(bool alive, bool timer_pass) {
    const auto shortest = shortest_stat_interval();
    const auto longest = std::max(options_.stat_interval_max, shortest);
    if (alive) {
      // Re-armed only when it was set further out: a busy log does not restart the timer on
      // every pass, and the net still runs every `shortest` while lines keep coming.
      if (stat_interval_ != shortest || timer_pass) {
        stat_interval_ = shortest;
        arm_stat_timer();
      }
      return;
    }
    if (timer_pass) {
      stat_interval_ = std::min(stat_interval_ * 2, longest);
      arm_stat_timer();
    }
  }

  void request_work(bool check_path) {
    if (state_ != State::kRunning) return;
    check_path_pending_ = check_path_pending_ || check_path;
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_->handle))) {
      uv_idle_start(&idle_->handle, on_uv_idle);
    }
  }

  // One pass per loop turn while there is work: look at the path if asked, then read.
  void on_work() {
    const Progress before = progress();
    const bool timer_pass = std::exchange(stat_pass_pending_, false);
    if (check_path_pending_) {
      check_path_pending_ = false;
      check_path();
    }
    const bool more = pump();
    if (state_ != State::kRunning) {
      // close() was called from the line callback; the sources could not be dropped there.
      sources_.clear();
      return;
    }
    adjust_stat_interval(std::exchange(event_seen_, false) || progress() != before, timer_pass);
    if (!more && !check_path_pending_) uv_idle_stop(&idle_->handle);
    if (checkpoint_dirty_ && !options_.checkpoint_path.empty() && !checkpoint_timer_->active()) {
      // At most one write per interval while the position keeps changing.
      checkpoint_timer_->start(options_.checkpoint_interval, [this] {
        if (checkpoint_dirty_) write_checkpoint();
      });
    }
  }

  // Compares the path's inode with the files we hold; a new one is queued after them, to be read
  // from its start once they are drained.
  void check_path() {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      int error = errno;
      if (error == ENOENT || error == ENOTDIR) {
        // lumberjack renames and then creates: the path is missing for a moment (§4d). Keep
        // reading the descriptor we hold; the create event or the stat timer brings us back.
        if (!path_missing_) spdlog::debug("log follower {}: the path is missing", path_);
        path_missing_ = true;
      } else if (!stat_error_logged_) {
        spdlog::warn("log follower {}: cannot stat: {}", path_, errno_text(error));
        stat_error_logged_ = true;
      }
      return;
    }
    path_missing_ = false;
    stat_error_logged_ = false;
    if (!S_ISREG(st.st_mode)) {
      if (!not_regular_logged_) {
        spdlog::warn("log follower {}: the path is not a regular file; ignoring it", path_);
        not_regular_logged_ = true;
      }
      return;
    }
    not_regular_logged_ = false;
    if (follows(st.st_dev, st.st_ino)) return;
    auto source = open_source(path_);
    if (!source || follows(source->device, source->inode)) return;
    if (!sources_.empty()) {
      ++stats_.rotations;
      spdlog::debug("log follower {}: rotated (inode {} -> {}); draining the old file first", path_,
                    sources_.back().inode, source->inode);
    } else {
      spdlog::debug("log follower {}: the file appeared (inode {})", path_, source->inode);
    }
    sources_.push_back(std::move(*source));
    checkpoint_dirty_ = true;
  }

  // ---- reading ---------------------------------------------------------------------------

  enum class Check { kUnchanged, kTruncated, kError };

  // Is the front source still the file we have been reading, with our bytes where we read them?
  Check check_unchanged(Source& source) {
    struct stat st {};
    if (::fstat(source.fd.get(), &st) != 0) return Check::kError;
    if (static_cast<std::uint64_t>(st.st_size) < source.read_offset) return Check::kTruncated;
    switch (matches_known_bytes(source.fd.get(), source)) {
      case Match::kYes: return Check::kUnchanged;
      case Match::kNo: return Check::kTruncated;
      case Match::kError: return Check::kError;  // Not a reason to read it all again.
    }
    return Check::kError;
  }

  // The bytes we know to be in the file of `source` right before line_start + carry.size(): the
  // tail, then the partial line we hold (nothing while skipping: the carry is empty then). Does
  // the file `fd` (the source's own, or a candidate copy) hold exactly those bytes there?
  enum class Match { kYes, kNo, kError };
  Match matches_known_bytes(int fd, const Source& source) {
    const std::size_t known = source.tail.size() + source.carry.size();
    if (known == 0) return Match::kYes;
    const std::uint64_t end = source.line_start + source.carry.size();
    if (known > end) return Match::kNo;
    scratch_.resize(known);
    const ssize_t n = pread_full(fd, scratch_.data(), known, end - known);
    if (n < 0) return Match::kError;
    if (n != static_cast<ssize_t>(known)) return Match::kNo;
    const bool same =
        std::memcmp(scratch_.data(), source.tail.data(), source.tail.size()) == 0 &&
        std::memcmp(scratch_.data() + source.tail.size(), source.carry.data(), source.carry.size()) == 0;
    return same ? Match::kYes : Match::kNo;
  }

  // Used at start, for a checkpoint: are these `tail` bytes right before `offset`?
  bool same_bytes_before(const Source& source, std::uint64_t offset, const std::string& tail) {
    if (tail.size() > offset) return false;
    char now[kTailBytes];
    ssize_t n = pread_full(source.fd.get(), now, tail.size(), offset - tail.size());
    if (n != static_cast<ssize_t>(tail.size())) return false;
    if (tail.empty()) {
      // Without a tail only the size can be checked.
      struct stat st {};
      return ::fstat(source.fd.get(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) >= offset;
    }
    return std::memcmp(now, tail.data(), tail.size()) == 0;
  }

  // Reads the queue front to back within the budget. Returns true if the budget ran out before
  // EOF, i.e. there is more to read on the next turn.
  bool pump() {
    std::size_t budget = std::max(options_.read_budget, kMinReadBudget);
    while (state_ == State::kRunning && !sources_.empty()) {
      const bool draining = sources_.size() > 1;
      switch (check_unchanged(sources_.front())) {
        case Check::kUnchanged: break;
        case Check::kError:
          note_read_error("fstat", errno);
          if (draining) {
            drop_front("it cannot be read");
            continue;
          }
          return false;
        case Check::kTruncated:
          // Also for a rotated file: copytruncate, more lines, then a rotation, all before we
          // looked. What it holds now was written after the truncation and must be read.
          on_truncated();
          continue;  // The front may now be a copy to read first.
      }

      Source& source = sources_.front();
      bool at_eof = false;
      bool dropped = false;
      bool truncated_while_reading = false;
      while (budget > 0) {
        const std::size_t want = std::min(buffer_.size(), budget);
        ssize_t n = ::pread(source.fd.get(), buffer_.data(), want, static_cast<off_t>(source.read_offset));
        if (n < 0) {
          if (errno == EINTR) continue;
          note_read_error("read", errno);
          if (!draining) return false;
          drop_front("it cannot be read");
          dropped = true;
          break;
        }
        read_error_logged_ = false;
        if (n == 0) {
          at_eof = true;
          break;
        }
        // The check before this pass can be overtaken: a copytruncate, and enough new lines to
        // pass our offset, between that check and this read hand us the middle of the new
        // content (its first lines lost, a line cut in two). So the bytes we know must still be
        // where we read them after the read too; if not, what was read is dropped and the
        // truncation handled as any other (the copy holds whatever of the old content was read).
        if (matches_known_bytes(source.fd.get(), source) == Match::kNo) {
          on_truncated();
          truncated_while_reading = true;
          break;
        }
        const auto got = static_cast<std::size_t>(n);
        budget -= got;
        stats_.bytes += got;
        const std::uint64_t at = source.read_offset;
        source.read_offset += got;
        if (!consume(source, buffer_.data(), got, at)) return false;  // closed by the callback
      }
      if (dropped || truncated_while_reading) continue;  // The front may now be a copy to read first.
      if (!at_eof) return true;
      if (!draining) return false;
      finish_drained();
    }
    return false;
  }

  // Splits a chunk into lines. `at` is the file offset of data[0]. Returns false if the callback
  // closed the follower (the source must not be touched then).
  bool consume(Source& source, const char* data, std::size_t size, std::uint64_t at) {
    // The bytes right before data[0] are tail + carry when not skipping (carry is exactly
    // [line_start, at) then); they are needed to recompute the tail if the chunk ends less than
    // kTailBytes after its last line.
    char before[kTailBytes];
    std::size_t before_size = 0;
    if (!source.skipping) {
      const std::string& tail = source.tail;
      const std::string& carry = source.carry;
      const std::size_t from_carry = std::min(carry.size(), kTailBytes);
      const std::size_t from_tail = std::min(tail.size(), kTailBytes - from_carry);
      std::copy_n(tail.data() + tail.size() - from_tail, from_tail, before);
      std::copy_n(carry.data() + carry.size() - from_carry, from_carry, before + from_tail);
      before_size = from_tail + from_carry;
    }
    ChunkContext context{std::string_view(before, before_size), data, 0};
    bool boundary_seen = false;
    auto consumed_through = [&](std::size_t index) {
      context.boundary = index;
      boundary_seen = true;
      source.line_start = at + index;
      checkpoint_dirty_ = true;
    };

    const std::size_t max_line = options_.max_line_bytes;
    std::size_t pos = 0;
    while (pos < size) {
      const auto* newline = static_cast<const char*>(std::memchr(data + pos, '\n', size - pos));
      if (source.skipping) {
        if (newline == nullptr) break;
        source.skipping = false;
        consumed_through(static_cast<std::size_t>(newline - data) + 1);
        pos = context.boundary;
        continue;
      }
      const std::size_t length =
          newline != nullptr ? static_cast<std::size_t>(newline - (data + pos)) : size - pos;
      if (source.carry.size() + length > max_line) {
        note_overlong(source);
        source.carry.clear();
        if (newline == nullptr) {
          source.skipping = true;
          break;
        }
        consumed_through(static_cast<std::size_t>(newline - data) + 1);
        pos = context.boundary;
        continue;
      }
      if (newline == nullptr) {
        source.carry.append(data + pos, length);
        break;
      }
      const bool joined = !source.carry.empty();
      if (joined) source.carry.append(data + pos, length);
      std::string_view line = joined ? std::string_view(source.carry) : std::string_view(data + pos, length);
      consumed_through(static_cast<std::size_t>(newline - data) + 1);
      pos = context.boundary;
      ++stats_.lines;
      chunk_ = &context;
      deliver(line);
      chunk_ = nullptr;
      if (state_ != State::kRunning) return false;
      if (joined) source.carry.clear();
    }
    if (boundary_seen) source.tail = tail_of(context);
    return true;
  }

  static std::string tail_of(const ChunkContext& context) {
    if (context.boundary >= kTailBytes) {
      return std::string(context.data + context.boundary - kTailBytes, kTailBytes);
    }
    std::string tail(context.before);
    tail.append(context.data, context.boundary);
    keep_tail(tail);
    return tail;
  }

  void deliver(std::string_view line) {
    delivering_ = true;
    try {
      on_line_(line);
    } catch (const std::exception& error) {
      spdlog::error("log follower {}: the line callback threw: {}", path_, error.what());
    } catch (...) {
      spdlog::error("log follower {}: the line callback threw a non-standard exception", path_);
    }
    delivering_ = false;
  }

  void note_overlong(const Source& source) {
    ++stats_.overlong_lines;
    // One warning per thousand: an attacker who can write long lines must not flood our log.
    if (stats_.overlong_lines % 1000 == 1) {
      spdlog::warn(
          "log follower {}: skipped a line longer than {} bytes at offset {} "
          "({} so far)",
          path_, options_.max_line_bytes, source.line_start, stats_.overlong_lines);
    }
  }

  void note_read_error(const char* what, int error) {
    ++stats_.read_errors;
    if (!read_error_logged_) {
      spdlog::warn("log follower {}: {} failed: {}", path_, what, errno_text(error));
      read_error_logged_ = true;
    }
  }

  // The front (rotated) file reached EOF: it is complete, since the writer moved on to the new
  // file before we saw it at the path.
  void finish_drained() {
    Source& source = sources_.front();
    if (!source.carry.empty() || source.skipping) {
      spdlog::warn(
          "log follower {}: rotated file {} ends in an incomplete line ({} bytes); "
          "dropping it",
          path_, source.name, source.read_offset - source.line_start);
    }
    spdlog::debug("log follower {}: finished rotated file {} (inode {}) at offset {}", path_, source.name,
                  source.inode, source.read_offset);
    sources_.pop_front();
    checkpoint_dirty_ = true;
  }

  void drop_front(const char* why) {
    const Source& source = sources_.front();
    spdlog::warn("log follower {}: giving up on rotated file {} at offset {}: {}", path_, source.name,
                 source.line_start, why);
    sources_.pop_front();
    checkpoint_dirty_ = true;
  }

  // The front file is shorter than our offset, or the bytes we read from it changed:
  // copytruncate. Read it again from 0; but first, if a copy of the old content exists, read the
  // copy from our line offset, because lines written after our last read are in the copy only.
  // The copy is recognised by the bytes we know (tail and partial line) at the same offset: it
  // cannot be recognised if we had not read a single byte of the file before it was truncated.
  void on_truncated() {
    Source& source = sources_.front();
    ++stats_.truncations;
    std::optional<Source> copy;
    if (!source.tail.empty() || !source.carry.empty()) copy = find_copy(source);
    spdlog::debug("log follower {}: truncated at offset {}; reading it from the start{}", path_,
                  source.line_start, copy ? " after the rest of the copy " + copy->name : std::string());
    source.read_offset = source.line_start = 0;
    source.tail.clear();
    source.carry.clear();
    source.skipping = false;
    if (copy) sources_.push_front(std::move(*copy));
    checkpoint_dirty_ = true;
  }

  std::optional<Source> find_copy(const Source& truncated) {
    const std::uint64_t known_end = truncated.line_start + truncated.carry.size();
    std::optional<Source> best;
    std::pair<std::int64_t, std::uint64_t> best_rank{0, 0};
    std::size_t candidates = 0;
    for (const auto& sibling : list_siblings()) {
      if (follows(sibling.device, sibling.inode) || sibling.size < known_end) continue;
      if (++candidates > kMaxCopyCandidates) break;
      auto source = open_source(directory_ + "/" + sibling.name);
      if (!source || matches_known_bytes(source->fd.get(), truncated) != Match::kYes) continue;
      // The known bytes can be few (the start of the first line of the file, which every copy of
      // it shares), so several older copies may match too. The copy made by the truncation we
      // are handling is the newest of them.
      const std::pair<std::int64_t, std::uint64_t> rank{sibling.modified_ns, sibling.size};
      if (!best || rank > best_rank) {
        // Start at the line offset: the partial line we held is read again, whole, from the copy.
        source->read_offset = source->line_start = truncated.line_start;
        source->tail = truncated.tail;
        source->skipping = truncated.skipping;
        best_rank = rank;
        best = std::move(source);
      }
    }
    return best;
  }

  // ---- files -----------------------------------------------------------------------------

  bool follows(std::uint64_t device, std::uint64_t inode) const {
    for (const auto& source : sources_) {
      if (source.device == device && source.inode == inode) return true;
    }
    return false;
  }

  std::optional<Source> open_source(const std::string& file_path) {
    int fd = ::open(file_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      int error = errno;
      if (error != ENOENT && !open_error_logged_) {
        // Caddy's default mode for its logs is 0600 (STYLE.md §3): say so once, not every tick.
        spdlog::warn("log follower {}: cannot open {}: {}", path_, file_path, errno_text(error));
        ++stats_.read_errors;
        open_error_logged_ = true;
      }
      return std::nullopt;
    }
    open_error_logged_ = false;
    Source source;
    source.fd = UniqueFd(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    source.device = static_cast<std::uint64_t>(st.st_dev);
    source.inode = static_cast<std::uint64_t>(st.st_ino);
    auto slash = file_path.rfind('/');
    source.name = slash == std::string::npos ? file_path : file_path.substr(slash + 1);
    return source;
  }

  struct Sibling {
    std::string name;
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t size = 0;
    std::int64_t modified_ns = 0;
  };

  bool is_lumberjack_backup(std::string_view name) const {
    const std::string prefix = stem_ + "-";
    if (name.size() < prefix.size() + extension_.size() || !name.starts_with(prefix) ||
        !name.ends_with(extension_)) {
      return false;
    }
    return is_lumberjack_stamp(name.substr(prefix.size(), name.size() - prefix.size() - extension_.size()));
  }

  // Uncompressed regular files that look like rotations of ours: lumberjack's
  // <stem>-*<ext>, and logrotate's <name>.* and <name>-*.
  bool is_rotated_name(std::string_view name) const {
    if (name == basename_ || is_compressed_name(name)) return false;
    auto starts = [&](const std::string& prefix) {
      return name.size() > prefix.size() && name.starts_with(prefix);
    };
    if (starts(stem_ + "-") && name.ends_with(extension_)) return true;
    return starts(basename_ + ".") || starts(basename_ + "-");
  }

  std::vector<Sibling> list_siblings() {
    std::vector<Sibling> siblings;
    DIR* directory = ::opendir(directory_.c_str());
    if (directory == nullptr) return siblings;
    const int directory_fd = ::dirfd(directory);
    // readdir is only unsafe when two threads share one DIR stream; this one is ours alone.
    while (dirent* entry = ::readdir(directory)) {  // NOLINT(concurrency-mt-unsafe)
      std::string_view name = entry->d_name;
      if (!is_rotated_name(name)) continue;
      struct stat st {};
      if (::fstatat(directory_fd, entry->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
      siblings.push_back(
          Sibling{std::string(name), static_cast<std::uint64_t>(st.st_dev),
                  static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                  static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec});
    }
    ::closedir(directory);
    return siblings;
  }

  // ---- checkpoint ------------------------------------------------------------------------

  std::optional<LogCheckpoint> position() const {
    if (sources_.empty()) return std::nullopt;
    const Source& source = sources_.front();
    return LogCheckpoint{source.device, source.inode, source.line_start};
  }

  void write_checkpoint() {
    checkpoint_dirty_ = false;
    if (options_.checkpoint_path.empty() || sources_.empty()) return;
    const Source& source = sources_.front();
    // Inside the line callback the tail has not been brought up to date with line_start yet.
    const std::string tail = chunk_ != nullptr ? tail_of(*chunk_) : source.tail;
    json document = {{"version", kCheckpointVersion}, {"path", path_},
                     {"device", source.device},       {"inode", source.inode},
                     {"offset", source.line_start},   {"tail", to_hex(tail)}};
    Status written = write_file_atomically(options_.checkpoint_path, document.dump() + "\n", kCheckpointMode);
    if (!written) {
      if (!checkpoint_error_logged_) {
        spdlog::warn("log follower {}: {}", path_, written.error().message);
        checkpoint_error_logged_ = true;
      }
      return;
    }
    checkpoint_error_logged_ = false;
  }

  // ---- state -----------------------------------------------------------------------------

  uv_loop_t* loop_;
  std::string path_;
  std::string directory_;
  std::string basename_;
  std::string stem_;
  std::string extension_;
  LogFollowerOptions options_;
  LineCallback on_line_;
  State state_ = State::kCreated;
  LogFollowerStats stats_;

  // Front to back: rotated files still being drained, then the file at the path.
  std::deque<Source> sources_;
  std::vector<char> buffer_;
  std::string scratch_;  // for comparing known bytes with a file

  FsEventBlock* fs_event_ = nullptr;
  IdleBlock* idle_ = nullptr;
  std::unique_ptr<Timer> stat_timer_;
  std::unique_ptr<Timer> checkpoint_timer_;

  bool check_path_pending_ = false;
  // The stat net: its current interval, whether the next pass was started by its timer, and
  // whether an inotify event for the file arrived since the last pass.
  std::chrono::milliseconds stat_interval_{0};
  bool stat_pass_pending_ = false;
  bool event_seen_ = false;
  bool checkpoint_dirty_ = false;
  bool delivering_ = false;
  const ChunkContext* chunk_ = nullptr;

  // Each of these keeps a repeated failure to one warning until it clears.
  bool path_missing_ = false;
  bool stat_error_logged_ = false;
  bool not_regular_logged_ = false;
  bool open_error_logged_ = false;
  bool read_error_logged_ = false;
  bool checkpoint_error_logged_ = false;
};

LogFollower::LogFollower(uv_loop_t* loop, std::string path, LogFollowerOptions options, LineCallback on_line)
    : impl_(std::make_unique<Impl>(loop, std::move(path), std::move(options), std::move(on_line))) {}

// Impl's destructor closes (and catches); nothing else to do here.
LogFollower::~LogFollower() = default;

Status LogFollower::start() {
  return impl_->start();
}

void LogFollower::close() {
  impl_->close();
}

const LogFollowerStats& LogFollower::stats() const {
  return impl_->stats_;
}

std::optional<LogCheckpoint> LogFollower::position() const {
  return impl_->position();
}

std::chrono::milliseconds LogFollower::stat_interval() const {
  return impl_->stat_interval_;
}

}  // namespace unshelver::io
