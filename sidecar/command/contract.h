// The contract between Unshelver and the three commands of a `provider: command` backend (README
// "Any cloud through commands"), as pure functions: what observe's output means, and how the way a
// wake or sleep command ended is answered to the reconciler.
//
// observe prints exactly one JSON object on stdout and exits 0:
//   {"state": "running", "address": "203.0.113.7:8080", "message": "optional words"}
// `state` is one word of a small closed vocabulary (kStates below, case-insensitive): the five
// states of Unshelver's own view and the words the documented CLIs print for them (AWS's
// `pending`, gcloud's `TERMINATED`, az's `deallocated`, virsh's `shut off`). Anything else is an
// error that quotes what was printed, so a wrapper script's mistake is seen at once rather than
// read as some state.
//
// wake and sleep only request the change, like a cloud API call. Their exit code says how:
//   0                 accepted: Unshelver observes until the VM gets there
//   75 (EX_TEMPFAIL)  busy or not reachable now, like Nova's 409 or a 5xx: observe, decide afresh
//   a timeout         outcome unknown, like a request that timed out: treated as busy
//   anything else     refused (non-zero exit, killed by a signal, cannot be started): the backend
//                     goes to `error` with stderr's first line as the reason, and its on_error
//                     policy decides whether to try again, as for a wake that Nova refused.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "backend/reconciler.h"
#include "base/result.h"
#include "config/config.h"

namespace unshelver::core::command {

// The exit code that asks Unshelver to observe and try again (sysexits.h's EX_TEMPFAIL).
inline constexpr int kBusyExitStatus = 75;
// How much of a command's output a message quotes.
inline constexpr std::size_t kQuoteLimit = 200;

struct StateWord {
  std::string_view word;  // lower case
  CloudObservation::Kind kind;
};
// The accepted `state` words; the README's table lists the same.
inline constexpr StateWord kStates[] = {
    {"stopped", CloudObservation::Kind::kStopped},       {"asleep", CloudObservation::Kind::kStopped},
    {"suspended", CloudObservation::Kind::kStopped},     {"deallocated", CloudObservation::Kind::kStopped},
    {"terminated", CloudObservation::Kind::kStopped},    {"shut off", CloudObservation::Kind::kStopped},
    {"starting", CloudObservation::Kind::kStarting},     {"pending", CloudObservation::Kind::kStarting},
    {"provisioning", CloudObservation::Kind::kStarting}, {"staging", CloudObservation::Kind::kStarting},
    {"running", CloudObservation::Kind::kRunning},       {"stopping", CloudObservation::Kind::kStopping},
    {"suspending", CloudObservation::Kind::kStopping},   {"deallocating", CloudObservation::Kind::kStopping},
    {"in shutdown", CloudObservation::Kind::kStopping},  {"error", CloudObservation::Kind::kError},
};

// `text` cut to its first line and to `limit` bytes ("..." marks a cut), with control
// characters made visible: safe to quote in a log line or a status page.
std::string quote(std::string_view text, std::size_t limit = kQuoteLimit);

// The whole environment of a backend's commands: nothing is inherited. PATH (the daemon's, or a
// standard one), HOME, USER, LOGNAME and LANG from the daemon; UNSHELVER_BACKEND (the backend's
// name) and UNSHELVER_COMMAND (wake, sleep or observe, set per run by the provider, not here);
// then `environment`'s entries; then each `pass_environment` variable the daemon has. A later
// entry replaces an earlier one of the same name.
struct ChildEnvironment {
  std::vector<std::string> entries;  // "NAME=value"
  std::vector<std::string> secrets;  // the passed variables' values: scrubbed from every message
  std::vector<std::string> missing;  // pass_environment names the daemon does not have
  std::string path;                  // the PATH the commands get, to find their programs by
};
ChildEnvironment child_environment(const BackendConfig& backend,
                                   const std::map<std::string, std::string>& daemon_environment);

// Reads observe's stdout. `default_port` completes an address printed without a port (the
// backend's port); `truncated` says the output went past the output limit, which is an error.
Result<CloudObservation> parse_observation(std::string_view output, bool truncated, int default_port);

// How a child ended, without the loop's types (uv/process.h's ProcessResult::Outcome).
enum class Ending { kExited, kSignalled, kTimedOut, kSpawnFailed };

// The reconciler's answer for a wake or sleep command that ended so (see the table above).
ActionOutcome action_outcome(Ending ending, int exit_status);

}  // namespace unshelver::core::command
