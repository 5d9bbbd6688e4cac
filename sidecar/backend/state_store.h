// StateStore: what each backend's reconciler must remember across restarts (its desired state,
// last activity and last known state), kept in one JSON file under `state_dir`.
//
// Writes are atomic (uv/files.h), so a crash leaves either the old or the new file, never a
// torn one. They happen in libuv's thread pool (uv_queue_work), because the fsync that makes them
// durable can take milliseconds, and a wake request must not wait for it to reach the cloud.
//
// Saving is coalesced: a change only marks the state dirty (mark_dirty). At most one write runs at
// a time; the snapshot is taken (and serialised) when a write starts, so any number of changes
// while one runs cost one more write, started right after it, of the state as it is then. The
// file therefore always ends with the latest state, and a fleet of 1,000 backends whose first
// observations arrive together costs a few serialisations, not one per backend. The loop stays
// alive until the last write is done, so a clean shutdown never loses one.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "backend/reconciler.h"
#include "base/result.h"

namespace unshelver::io {

class StateStore {
 public:
  explicit StateStore(std::string directory);

  // Creates the directory if needed and checks that it is writable; reads the file if present.
  // A file that exists but cannot be parsed is an error (it is never silently replaced).
  Status open();
  const std::map<std::string, core::PersistedBackend>& loaded() const { return loaded_; }

  // Writes now, on the calling thread (for tools and tests without a loop).
  Status save(const std::map<std::string, core::PersistedBackend>& backends);
  using Snapshot = std::function<std::map<std::string, core::PersistedBackend>()>;
  // Background saving in the thread pool of `loop`: `snapshot` gives the state to write, read on
  // the loop whenever a write starts; `on_error` runs on the loop when a write fails. The store
  // must outlive the loop's last iteration (App destroys it after uv_run has returned).
  void save_in_background(uv_loop_t* loop, Snapshot snapshot, std::function<void(const Status&)> on_error);
  // The state changed: writes it now when no write runs, else right after the running one.
  void mark_dirty();
  bool writing() const { return writing_; }
  bool dirty() const { return dirty_; }
  // Snapshots serialised so far (for tests: coalescing keeps this far below the changes).
  std::uint64_t writes_started() const { return writes_started_; }
  const std::string& path() const { return path_; }

 private:
  struct Write;
  void start_write();
  // The file's text, as save() writes it, reusing the text of each backend whose state did not
  // change since the last write: a change costs the text of one backend and a copy of the rest.
  std::string serialize_reusing(const std::map<std::string, core::PersistedBackend>& backends);
  struct Piece {
    core::PersistedBackend backend;
    std::string text;  // "name": {...}, indented for its place in the file
  };

  std::string directory_;
  std::string path_;
  std::map<std::string, core::PersistedBackend> loaded_;
  uv_loop_t* loop_ = nullptr;
  Snapshot snapshot_;
  bool writing_ = false;
  bool dirty_ = false;  // changed since the running write's snapshot was taken
  std::uint64_t writes_started_ = 0;
  std::map<std::string, Piece> pieces_;  // what the last write wrote of each backend
  std::function<void(const Status&)> on_error_;
};

}  // namespace unshelver::io
