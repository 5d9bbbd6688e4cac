// `unshelver events [--follow] [--backend NAME] [--limit N] [--json] [--config F] [--url URL]
// [--token-file F] [--local]`: prints the recent events of a running instance (issue #6).
//
// It asks the instance (--url, $UNSHELVER_URL, else the configuration's `listen`) for GET
// /api/events with the control token (cli/client.h says where it comes from); with --follow
// it long-polls for new ones until interrupted, and rides out a restart of the daemon (the
// numbering continues from its log, so nothing is printed twice or skipped). Only events already
// written and fsync'd are printed. --local reads the configuration's event log file instead, for
// when the daemon is not running; it needs no token.
//
// Exit codes (cli_client.h, shared with status, wake and shelve): 0 printed, 1 the instance or the
// file could not be read, 2 usage or configuration, 3 the token was refused.
#pragma once

#include <string>
#include <vector>

namespace unshelver::app {

// Runs `unshelver events ARGS...` (`args` are the arguments after "events").
int run_events_command(const std::vector<std::string>& args);

}  // namespace unshelver::app
