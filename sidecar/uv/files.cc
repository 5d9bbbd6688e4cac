#include "uv/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "base/text.h"

namespace unshelver::io {

namespace {

using core::errno_text;

// The file that a write to `path` should replace: the target of a symbolic link (followed all
// the way), otherwise `path` itself. A dangling link is replaced by its target's path as well,
// which creates the target.
std::string resolve_target(const std::string& path) {
  std::error_code error;
  std::filesystem::path current = path;
  // A bound on the hops, like the kernel's (MAXSYMLINKS is 40), so that a loop cannot hang us.
  for (int hops = 0; hops < 40; ++hops) {
    if (!std::filesystem::is_symlink(std::filesystem::symlink_status(current, error))) break;
    std::filesystem::path next = std::filesystem::read_symlink(current, error);
    if (error) break;
    current = next.is_absolute() ? next : current.parent_path() / next;
  }
  return current.string();
}

}  // namespace

Result<std::optional<std::string>> read_file_if_exists(const std::string& path, std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Error{"cannot read " + path + ": " + errno_text()};
  }
  std::string content;
  char buffer[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return Error{"cannot read " + path + ": " + errno_text(error)};
    }
    if (n == 0) break;
    if (static_cast<std::size_t>(n) > max_bytes - content.size()) {
      ::close(fd);
      return Error{path + " is larger than " + std::to_string(max_bytes) + " bytes"};
    }
    content.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(content));
}

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  Result<std::optional<std::string>> content = read_file_if_exists(path, max_bytes);
  if (!content.ok()) return content.error();
  if (!*content) return Error{"cannot read " + path + ": " + errno_text(ENOENT)};
  return std::move(**content);
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  std::size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{"cannot write " + path + ": " + errno_text()};
    }
    written += static_cast<std::size_t>(n);
  }
  return ok_status();
}

Status fsync_directory_of(const std::string& path) {
  std::filesystem::path directory = std::filesystem::path(path).parent_path();
  if (directory.empty()) directory = ".";
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{"cannot open the directory of " + path + ": " + errno_text()};
  Status synced = ok_status();
  if (::fsync(fd) != 0) synced = Error{"cannot fsync the directory of " + path + ": " + errno_text()};
  ::close(fd);
  return synced;
}

Status write_file_atomically(const std::string& path, std::string_view data, int mode,
                             SymlinkTarget symlink) {
  if (symlink == SymlinkTarget::kRefuse) {
    // lstat: the name itself, as O_NOFOLLOW would see it. rename() below replaces a link put
    // there later rather than follow it, so the check cannot be raced into a write elsewhere.
    struct stat link {};
    if (::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      return Error{"refusing to write " + path +
                   ": it is a symbolic link (Unshelver's own files are never links; remove it)"};
    }
  }
  const std::string target = symlink == SymlinkTarget::kFollow ? resolve_target(path) : path;
  // An existing file keeps its mode (an admin may have chmod'ed it); `mode` is for a new one.
  if (struct stat existing{}; ::stat(target.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)) {
    mode = static_cast<int>(existing.st_mode & 07777);
  }
  // A fresh name that nobody can guess, created exclusively (mkostemp: O_CREAT | O_EXCL, mode
  // 0600, which also fails on a symbolic link planted under that name): a fixed name such as
  // "target.tmp" let a local user plant a symlink there and have the next write overwrite any
  // file Unshelver may write (issue 15 §8).
  std::string temporary = target + ".tmp-XXXXXX";
  int fd = ::mkostemp(temporary.data(), O_CLOEXEC);
  if (fd < 0) return Error{"cannot write a temporary file next to " + target + ": " + errno_text()};
  Status written = write_all(fd, data, temporary);
  // open()'s mode is filtered through the umask; fchmod() sets exactly what the caller asked for.
  if (written && ::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    written = Error{"cannot chmod " + temporary + ": " + errno_text()};
  }
  if (written && ::fsync(fd) != 0) written = Error{"cannot fsync " + temporary + ": " + errno_text()};
  ::close(fd);
  if (!written) {
    ::unlink(temporary.c_str());
    return written;
  }
  if (::rename(temporary.c_str(), target.c_str()) != 0) {
    Status failed = Error{"cannot rename " + temporary + " to " + target + ": " + errno_text()};
    ::unlink(temporary.c_str());
    return failed;
  }
  // A failed directory fsync leaves the new content in place but perhaps not durable; there is
  // nothing better to do than carry on (the next write tries again).
  static_cast<void>(fsync_directory_of(target));
  return ok_status();
}

}  // namespace unshelver::io
