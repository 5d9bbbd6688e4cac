#include "backend/state_store.h"

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "backend/persisted_json.h"
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
}  // namespace

Status StateStore::save(const std::map<std::string, core::PersistedBackend>& backends) {
  return write_file_atomically(path_, serialize(backends), 0600);
}

// One write in the thread pool. The work callback touches only this block (never the store),
// so nothing is shared with the loop thread while it runs.
struct StateStore::Write {
  uv_work_t request{};
  StateStore* store = nullptr;
  uv_loop_t* loop = nullptr;
  std::string path;
  std::string data;
  std::optional<Error> failure;
};

void StateStore::save_in_background(uv_loop_t* loop,
                                    const std::map<std::string, core::PersistedBackend>& backends,
                                    std::function<void(const Status&)> on_error) {
  on_error_ = std::move(on_error);
  std::string data = serialize(backends);
  if (writing_) {
    next_ = std::move(data);
    return;
  }
  start_write(loop, std::move(data));
}

void StateStore::start_write(uv_loop_t* loop, std::string data) {
  auto* write = new Write;
  write->request.data = write;
  write->store = this;
  write->loop = loop;
  write->path = path_;
  write->data = std::move(data);
  writing_ = true;
  const int queued = uv_queue_work(
      loop, &write->request,
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
        if (store->next_) {
          std::string newest = std::move(*store->next_);
          store->next_.reset();
          store->start_write(job->loop, std::move(newest));
        }
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
