// Whole files, read and written by one implementation each.
//
// read_file: the whole content of a (small) file, with read(2), so that the error names the exact
// errno even on uv_queue_work threads.
//
// write_file_atomically: replaces a file so that a reader (or a crash) sees either the old or the
// new content, never a torn one.
//
// The data goes to a temporary file next to the target (same directory, so the same file system;
// an unpredictable name, created exclusively, so that nothing planted there is followed),
// which is fsync'd and renamed over the target; then the directory is fsync'd, because the rename
// is durable only once the directory entry is on disk (rename(2), fsync(2)).
//
// A target that is a symbolic link is refused ("PATH is a symbolic link; ...") unless the caller
// asks to follow it (SymlinkTarget::kFollow): Unshelver's own files (state, event log cursor,
// access-log checkpoint) are never links, so a link there was planted and is not followed
// anywhere. The Caddyfile follows, so that a user who links /etc/caddy/Caddyfile elsewhere keeps
// the link and the file it points to is replaced.
//
// Synchronous: meant for small files (state.json, a Caddyfile) written rarely from the loop.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace unshelver::io {

constexpr std::size_t kNoSizeLimit = std::numeric_limits<std::size_t>::max();

// The whole file. Errors: "cannot read PATH: <errno text>", or "PATH is larger than N bytes" when
// it holds more than `max_bytes`.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes = kNoSizeLimit);
// The same, but a file that does not exist (ENOENT) is std::nullopt rather than an error.
Result<std::optional<std::string>> read_file_if_exists(const std::string& path,
                                                       std::size_t max_bytes = kNoSizeLimit);

// What write_file_atomically does with a target that is a symbolic link.
enum class SymlinkTarget {
  kRefuse,  // an error, and nothing is written
  kFollow,  // the file it points to (through every hop) is replaced, the link kept
};

// `mode` is the mode of a target that does not exist yet, applied exactly (not filtered through
// the umask), e.g. 0600 for state, 0644 for a Caddyfile that Caddy's own user must read. An
// existing target keeps its mode, so that an admin's chmod stays. The error text names the path
// and the failing step.
Status write_file_atomically(const std::string& path, std::string_view data, int mode,
                             SymlinkTarget symlink = SymlinkTarget::kRefuse);

// The building blocks, also for files that are appended to (events/journal.h):
// every byte of `data` to `fd`, through short writes and EINTR ("cannot write PATH: ..." else);
Status write_all(int fd, std::string_view data, const std::string& path);
// fsync(2) of the directory that holds `path`, which makes a new or renamed entry durable.
Status fsync_directory_of(const std::string& path);

}  // namespace unshelver::io
