// StateStore: what each backend's reconciler must remember across restarts (its desired state,
// last activity and last known state), kept in one JSON file under `state_dir`.
//
// Writes are atomic (uv/files.h), so a crash leaves either the old or the new file, never a
// torn one. They happen in libuv's thread pool (uv_queue_work), because the fsync that makes them
// durable can take milliseconds, and a wake request must not wait for it to reach the cloud. At
// most one write runs at a time; snapshots saved meanwhile are coalesced into one more write of
// the newest, so the file always ends with the latest state. The loop stays alive until the last
// write is done, so a clean shutdown never loses one.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <optional>
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
  // Writes in the thread pool of `loop`; `on_error` runs on the loop when a write fails. The store
  // must outlive the loop's last iteration (App destroys it after uv_run has returned).
  void save_in_background(uv_loop_t* loop, const std::map<std::string, core::PersistedBackend>& backends,
                          std::function<void(const Status&)> on_error);
  bool writing() const { return writing_; }
  const std::string& path() const { return path_; }

 private:
  struct Write;
  void start_write(uv_loop_t* loop, std::string data);

  std::string directory_;
  std::string path_;
  std::map<std::string, core::PersistedBackend> loaded_;
  bool writing_ = false;
  std::optional<std::string> next_;  // the newest snapshot saved while a write was running
  std::function<void(const Status&)> on_error_;
};

}  // namespace unshelver::io
