#include "backend/state_store.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>

#include "backend/persisted_json.h"
#include "base/json_text.h"
#include "base/text.h"
#include "base/time_format.h"
#include "uv/files.h"

namespace unshelver::io {

namespace {
using nlohmann::json;

using core::errno_text;

}  // namespace

StateStore::StateStore(std::string directory)
    : directory_(std::move(directory)), path_(directory_ + "/state.json") {}

Status StateStore::open() {
  std::error_code error;
  std::filesystem::create_directories(directory_, error);
  if (error) return Error{"cannot create state_dir " + directory_ + ": " + error.message()};
  if (::access(directory_.c_str(), W_OK | X_OK) != 0) {
    return Error{"state_dir " + directory_ + " is not writable: " + errno_text()};
  }
  Result<std::optional<std::string>> text = read_file_if_exists(path_);
  if (!text.ok()) return text.error();
  if (!*text) return ok_status();
  json document = json::parse(**text, nullptr, false);
  if (document.is_discarded() || !document.is_object() || !document.contains("backends") ||
      !document["backends"].is_object()) {
    return Error{path_ + " is not a valid Unshelver state file; move it away to start afresh"};
  }
  for (const auto& [name, entry] : document["backends"].items()) {
    auto backend = core::persisted_from_json(entry);
    if (!backend) return Error{path_ + ": backend " + name + ": " + backend.error().message};
    loaded_[name] = *backend;
  }
  return ok_status();
}

namespace {
std::string serialize(const std::map<std::string, core::PersistedBackend>& backends) {
  json document;
  document["version"] = 1;
  document["backends"] = json::object();
  for (const auto& [name, backend] : backends) document["backends"][name] = core::persisted_to_json(backend);
  return document.dump(2) + "\n";
}

bool same_hold(const core::AwakeHold& a, const core::AwakeHold& b) {
  return std::tie(a.reason, a.actor, a.detail, a.since, a.until) ==
         std::tie(b.reason, b.actor, b.detail, b.since, b.until);
}

// Every field that persisted_to_json writes.
bool same_persisted(const core::PersistedBackend& a, const core::PersistedBackend& b) {
  return std::tie(a.desired.awake, a.desired.actor, a.desired.reason, a.desired.since, a.last_activity,
                  a.state) == std::tie(b.desired.awake, b.desired.actor, b.desired.reason, b.desired.since,
                                       b.last_activity, b.state) &&
         std::equal(a.holds.begin(), a.holds.end(), b.holds.begin(), b.holds.end(), same_hold);
}
}  // namespace

std::string StateStore::serialize_reusing(const std::map<std::string, core::PersistedBackend>& backends) {
  // As serialize() writes it (nlohmann's objects keep their keys in std::map order, as `backends`
  // does): each backend's text is written again only when its state changed.
  std::map<std::string, Piece> pieces;
  std::size_t size = 64;
  for (const auto& [name, backend] : backends) {
    auto kept = pieces_.find(name);
    if (kept != pieces_.end() && same_persisted(kept->second.backend, backend)) {
      size += kept->second.text.size();
      pieces.emplace(name, std::move(kept->second));
      continue;
    }
    // Two levels deep: in the document's object, in its "backends" object.
    std::string text = json(name).dump() + ": " + core::indented_json(core::persisted_to_json(backend), 2);
    size += text.size();
    pieces.emplace(name, Piece{backend, std::move(text)});
  }
  pieces_ = std::move(pieces);
  std::string data;
  data.reserve(size + 8 * pieces_.size());
  data += "{\n  \"backends\": {";
  bool first = true;
  for (const auto& [name, piece] : pieces_) {
    data += first ? "\n    " : ",\n    ";
    data += piece.text;
    first = false;
  }
  data += pieces_.empty() ? "}" : "\n  }";
  data += ",\n  \"version\": 1\n}\n";
  return data;
}

Status StateStore::save(const std::map<std::string, core::PersistedBackend>& backends) {
  return write_file_atomically(path_, serialize(backends), 0600);
}

// One write in the thread pool. The work callback touches only this block (never the store),
// so nothing is shared with the loop thread while it runs.
struct StateStore::Write {
  uv_work_t request{};
  StateStore* store = nullptr;
  std::string path;
  std::string data;
  std::optional<Error> failure;
};

void StateStore::save_in_background(uv_loop_t* loop, Snapshot snapshot,
                                    std::function<void(const Status&)> on_error) {
  loop_ = loop;
  snapshot_ = std::move(snapshot);
  on_error_ = std::move(on_error);
}

void StateStore::mark_dirty() {
  dirty_ = true;
  // The running write's completion starts the next one, with the state as it is then.
  if (!writing_ && snapshot_) start_write();
}

void StateStore::start_write() {
  dirty_ = false;
  ++writes_started_;
  auto* write = new Write;
  write->request.data = write;
  write->store = this;
  write->path = path_;
  write->data = serialize_reusing(snapshot_());
  writing_ = true;
  const int queued = uv_queue_work(
      loop_, &write->request,
      [](uv_work_t* request) noexcept {
        auto* job = static_cast<Write*>(request->data);
        if (Status written = write_file_atomically(job->path, job->data, 0600); !written)
          job->failure = written.error();
      },
      [](uv_work_t* request, int) noexcept {
        std::unique_ptr<Write> job(static_cast<Write*>(request->data));
        StateStore* store = job->store;
        store->writing_ = false;
        if (job->failure && store->on_error_) store->on_error_(Status(*job->failure));
        if (store->dirty_) store->start_write();
      });
  if (queued != 0) {
    // Cannot happen with a live loop; write synchronously rather than lose the state.
    writing_ = false;
    std::unique_ptr<Write> job(write);
    if (Status written = write_file_atomically(job->path, job->data, 0600); !written && on_error_)
      on_error_(written);
  }
}

}  // namespace unshelver::io
