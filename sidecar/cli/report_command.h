// `unshelver report [--since DATE] [--until DATE] [--backend NAME] [--json|--csv] [--config F]`:
// the savings report (issue 17): per backend, hours awake, asleep and unknown over a period, and
// with prices (buttons[].price) what they cost, what running all the time would have cost, and
// the difference (bill/savings.h says how).
//
// It reads the configuration's event log and its rotated files (local_event_log, log.1 ...),
// so it needs no running daemon and covers the time before prices were configured. The period
// is [since, until), UTC; by default the current month until now.
//
// Exit codes: 0 printed, 1 the log could not be read, 2 usage or configuration.
#pragma once

#include <string>
#include <vector>

namespace unshelver::app {

// Runs `unshelver report ARGS...` (`args` are the arguments after "report").
int run_report_command(const std::vector<std::string>& args);

}  // namespace unshelver::app
