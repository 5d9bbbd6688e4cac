// StateStore: what each backend's reconciler must remember across restarts (its desired state,
// last activity and last known state), kept in one JSON file under `state_dir`.
//
// Writes are atomic (io/atomic_file.h), so a crash leaves either the old or the new file, never a
// torn one. The file is tiny and written only when something changes (a transition, a new desired
// state, activity at most once per flush interval), so the synchronous write costs the loop
// microseconds.
#pragma once

#include <map>
#include <string>

#include "core/reconciler.h"
#include "core/result.h"

namespace unshelver::io {

class StateStore {
 public:
  explicit StateStore(std::string directory);

  // Creates the directory if needed and checks that it is writable; reads the file if present.
  // A file that exists but cannot be parsed is an error (it is never silently replaced).
  Status open();
  const std::map<std::string, core::PersistedBackend>& loaded() const { return loaded_; }

  Status save(const std::map<std::string, core::PersistedBackend>& backends);
  const std::string& path() const { return path_; }

 private:
  std::string directory_;
  std::string path_;
  std::map<std::string, core::PersistedBackend> loaded_;
};

}  // namespace unshelver::io
