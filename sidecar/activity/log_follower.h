// LogFollower: follows one log file (Caddy's access log) across rotation, line by line.
//
// It watches the file's *directory* with inotify (uv_fs_event_t on the directory), because a
// watch on the file itself follows the renamed inode (STYLE.md §3; Envoy's watcher does the
// same), and filters events by the file's name. It survives:
// - lumberjack rotation, as Caddy does it (caddy-facts §4d): rename to name-<timestamp>.log, a
//   new file with a new inode, a moment with no file at the path, the old file gzipped at once;
// - copytruncate by an external tool (size < offset: read from 0);
// - delete and re-create; the file not existing yet at start; Caddy restarting and appending.
// On rotation it drains the old descriptor to EOF before it switches, so nothing written to the
// old file is lost. Only complete lines ('\n'-terminated) are emitted; a partial last line waits
// in a carry-over buffer. Lines longer than `max_line_bytes` are counted and skipped.
// A slow stat() timer is the safety net for missed events (a log path that is a symlink into
// another directory, an inotify queue overflow, a file system without inotify). It backs off
// while nothing happens: after each quiet stat pass its interval doubles, from `stat_interval` up
// to `stat_interval_max`, and any sign of life (an inotify event for the file, bytes read, a
// rotation or truncation) brings it back to `stat_interval`. An idle daemon then wakes for it a
// couple of times a minute instead of every `stat_interval` (issue 20), and a change that
// inotify missed is still found within `stat_interval_max`.
//
// It checkpoints (device, inode, offset of the last complete line) to `checkpoint_path`
// (atomically, at most once per `checkpoint_interval`, and on close), so that a restart neither
// replays the file nor misses what was written while Unshelver was down: at start, the file at
// the checkpoint's inode is read from the checkpoint's offset, including a rotated sibling
// (name-*.log) that still has that inode; with no checkpoint it starts at the end of the file.
//
// Reads are plain read(2) calls on the loop thread: regular files do not block on readiness,
// and each callback reads at most `read_budget` bytes before yielding to the loop.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace unshelver::io {

struct LogFollowerOptions {
  std::size_t max_line_bytes = std::size_t{64} * 1024;
  // The stat net's shortest interval, used while the file shows signs of life.
  std::chrono::milliseconds stat_interval{2'000};
  // The longest interval it backs off to while nothing happens; when this is below
  // `stat_interval`, `stat_interval` is used throughout (no back-off).
  std::chrono::milliseconds stat_interval_max{30'000};
  std::string checkpoint_path;  // empty: no checkpoint
  std::chrono::milliseconds checkpoint_interval{1'000};
  std::size_t read_budget = std::size_t{4} * 1024 * 1024;  // bytes per loop turn before yielding
};

struct LogFollowerStats {
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  std::uint64_t overlong_lines = 0;
  std::uint64_t rotations = 0;          // switched to a new inode at the path
  std::uint64_t truncations = 0;        // size < offset on the same inode
  std::uint64_t missed_while_down = 0;  // a rotated file gone (e.g. gzipped) before we could read it
  std::uint64_t read_errors = 0;
  std::uint64_t stat_passes = 0;  // passes started by the stat timer (the safety net)
};

struct LogCheckpoint {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;
};

class LogFollower {
 public:
  using LineCallback = std::function<void(std::string_view line)>;

  LogFollower(uv_loop_t* loop, std::string path, LogFollowerOptions options, LineCallback on_line);
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  // Loads the checkpoint, opens the file if it exists, starts watching. Errors: the directory
  // does not exist or cannot be watched, an unreadable checkpoint file.
  Status start();
  // Writes the checkpoint and releases every handle (the loop then closes them).
  void close();

  const LogFollowerStats& stats() const;
  std::optional<LogCheckpoint> position() const;
  // The stat net's current interval: from options.stat_interval up to options.stat_interval_max.
  std::chrono::milliseconds stat_interval() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace unshelver::io
