#include "io/state_store.h"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/time_format.h"

namespace unshelver::io {

namespace {
using nlohmann::json;

std::string errno_text() { return std::strerror(errno); }

Status write_all(int fd, const std::string& data, const std::string& path) {
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
  const std::string text = document.dump(2) + "\n";
  const std::string temporary = path_ + ".tmp";

  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error{"cannot write " + temporary + ": " + errno_text()};
  Status written = write_all(fd, text, temporary);
  if (written && ::fsync(fd) != 0) written = Error{"cannot fsync " + temporary + ": " + errno_text()};
  ::close(fd);
  if (!written) return written;
  if (::rename(temporary.c_str(), path_.c_str()) != 0) {
    return Error{"cannot rename " + temporary + " to " + path_ + ": " + errno_text()};
  }
  // The rename is durable only once the directory entry is on disk.
  int directory = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory >= 0) {
    ::fsync(directory);
    ::close(directory);
  }
  return ok_status();
}

}  // namespace unshelver::io
