#include "schedule/zone_files.h"

#include <cstdlib>

#include "config/parser.h"
#include "schedule/windows.h"
#include "uv/files.h"

namespace unshelver::io {

Result<core::TimeZone> load_time_zone(const std::string& name, const std::string& directory) {
  if (std::string problem = core::time_zone_name_problem(name); !problem.empty()) return Error{problem};
  std::string dir = directory;
  if (dir.empty()) {
    const char* tzdir = std::getenv("TZDIR");  // NOLINT(concurrency-mt-unsafe): read at start-up only
    dir = tzdir != nullptr && *tzdir != '\0' ? tzdir : "/usr/share/zoneinfo";
  }
  auto bytes = read_file(dir + "/" + name);
  if (!bytes) {
    // A system without tzdata still knows UTC.
    if (name == "UTC" || name == "Etc/UTC") return core::TimeZone::utc();
    return Error{"unknown time zone \"" + name + "\" (no zone file " + dir + "/" + name + ")"};
  }
  return core::TimeZone::parse(name, *bytes);
}

Result<std::map<std::string, core::TimeZone>> load_config_zones(const core::Config& config) {
  std::map<std::string, core::TimeZone> zones;
  std::string problems;
  auto need = [&](const std::string& name, const std::string& key) {
    if (zones.contains(name)) return;
    auto zone = load_time_zone(name);
    if (zone) {
      zones.emplace(name, std::move(*zone));
      return;
    }
    core::ConfigIssue issue{config.source_path, 0, 0, key, zone.error().message};
    if (const auto found = config.locations.find(key); found != config.locations.end()) {
      issue.line = found->second.line;
      issue.column = found->second.column;
    }
    problems += issue.to_string() + "\n";
  };
  for (std::size_t b = 0; b < config.backends.size(); ++b) {
    const core::BackendConfig& backend = config.backends[b];
    const std::string button = "buttons[" + std::to_string(b) + "]";
    for (const std::string& text : backend.keep_warm) {
      // The parser accepted every window already.
      if (auto window = core::parse_keep_warm_window(text)) need(window->time_zone, button + ".keep_warm");
    }
    if (backend.prewarm.enabled) need(backend.prewarm.time_zone, button + ".prewarm.time_zone");
  }
  if (!problems.empty()) {
    problems.pop_back();
    return Error{problems};
  }
  return zones;
}

}  // namespace unshelver::io
