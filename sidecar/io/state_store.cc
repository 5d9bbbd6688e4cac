#include "io/state_store.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/time_format.h"
#include "io/atomic_file.h"

namespace unshelver::io {

namespace {
using nlohmann::json;

std::string errno_text() { return std::strerror(errno); }

json to_json(const core::PersistedBackend& backend) {
  json out;
  out["desired"] = {{"awake", backend.desired.awake},
                    {"actor", backend.desired.actor},
                    {"reason", backend.desired.reason},
                    {"since", core::format_rfc3339(backend.desired.since)}};
  out["last_activity"] = backend.last_activity ? json(core::format_rfc3339(*backend.last_activity)) : json();
  out["state"] = std::string(core::to_string(backend.state));
  return out;
}

Result<core::PersistedBackend> from_json(const json& in) {
  core::PersistedBackend backend;
  try {
    const json& desired = in.at("desired");
    backend.desired.awake = desired.at("awake").get<bool>();
    backend.desired.actor = desired.value("actor", "reconciler");
    backend.desired.reason = desired.value("reason", "");
    if (auto since = core::parse_rfc3339(desired.value("since", ""))) backend.desired.since = *since;
    if (in.contains("last_activity") && in["last_activity"].is_string()) {
      backend.last_activity = core::parse_rfc3339(in["last_activity"].get<std::string>());
    }
    backend.state = core::backend_state_from_string(in.value("state", "unknown"))
                        .value_or(core::BackendState::kUnknown);
  } catch (const json::exception& error) {
    return Error{error.what()};
  }
  return backend;
}
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
  std::ifstream file(path_);
  if (!file) {
    if (errno == ENOENT) return ok_status();
    return Error{"cannot read " + path_ + ": " + errno_text()};
  }
  std::stringstream text;
  text << file.rdbuf();
  json document = json::parse(text.str(), nullptr, false);
  if (document.is_discarded() || !document.is_object() || !document.contains("backends") ||
      !document["backends"].is_object()) {
    return Error{path_ + " is not a valid Unshelver state file; move it away to start afresh"};
  }
  for (const auto& [name, entry] : document["backends"].items()) {
    auto backend = from_json(entry);
    if (!backend) return Error{path_ + ": backend " + name + ": " + backend.error().message};
    loaded_[name] = *backend;
  }
  return ok_status();
}

Status StateStore::save(const std::map<std::string, core::PersistedBackend>& backends) {
  json document;
  document["version"] = 1;
  document["backends"] = json::object();
  for (const auto& [name, backend] : backends) document["backends"][name] = to_json(backend);
  return write_file_atomically(path_, document.dump(2) + "\n", 0600);
}

}  // namespace unshelver::io
