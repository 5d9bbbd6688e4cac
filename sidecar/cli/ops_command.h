// The ops commands of a running unshelver, for people and scripts on the controller:
//
//   unshelver status [--json]                  GET /api/status: every backend, Caddy, the event log
//   unshelver wake NAME [--wait [SECONDS]]     POST /control/wake/NAME, then optionally follow the
//                                              status until NAME is ready
//   unshelver shelve NAME [--wait [SECONDS]]   POST /control/shelve/NAME, likewise until asleep
//
// Every request carries the control token as `Authorization: Bearer`; where the instance and the
// token come from, and the exit codes (shared with `unshelver events`), are in app/cli_client.h.
// --json prints the instance's answer as one JSON document; without it the output is for people
// and its layout may change.
//
// Waiting polls /api/status once a second. A backend found in `error` when the wait begins is
// given a few seconds to leave it (the wake or shelve may not have been picked up yet); an error
// entered after that, with its own `since`, ends the wait at once.
#pragma once

#include <string>
#include <vector>

namespace unshelver::app {

// `args` are the arguments after the command's name.
int run_status_command(const std::vector<std::string>& args);
int run_wake_command(const std::vector<std::string>& args);
int run_shelve_command(const std::vector<std::string>& args);

}  // namespace unshelver::app
