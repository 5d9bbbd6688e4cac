// Reads time zones from the system's zone files (tzdata: /usr/share/zoneinfo/<Name>, or $TZDIR),
// once, at start-up (and in `check-config`): an unknown zone is a configuration error that names
// file, line and key (config/files.h), never a surprise at run time.
#pragma once

#include <map>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "schedule/time_zone.h"

namespace unshelver::io {

// The zone `name` ("Europe/Zurich"; "UTC" needs no file). `directory` empty: $TZDIR, else
// /usr/share/zoneinfo.
Result<core::TimeZone> load_time_zone(const std::string& name, const std::string& directory = "");

// Every zone the configuration names (keep_warm windows, prewarm.time_zone), by name; an error
// lists one line per unknown zone with the file, line and key that names it.
Result<std::map<std::string, core::TimeZone>> load_config_zones(const core::Config& config);

}  // namespace unshelver::io
