// `unshelver events [--follow] [--backend NAME] [--limit N] [--json] [--config F] [--url URL]
// [--local]`: prints the recent events of a running instance (issue #6).
//
// It asks the instance named by the configuration's `listen` (or --url) for GET /api/events;
// with --follow it long-polls for new ones until interrupted, and rides out a restart of the
// daemon (the numbering continues from its log, so nothing is printed twice or skipped). Only
// events already written and fsync'd are printed. --local reads the configuration's event log
// file instead, for when the daemon is not running. Until the control token lands, the instance
// answers local clients only.
//
// Exit codes: 0 printed, 1 the instance or the file could not be read, 2 usage or configuration.
#pragma once

#include <string>
#include <vector>

namespace unshelver::app {

extern const char* const kEventsUsage;

// Runs `unshelver events ARGS...` (`args` are the arguments after "events").
int run_events_command(const std::vector<std::string>& args);

}  // namespace unshelver::app
