// `unshelver dns ensure FQDN IP [--ttl N] [--config F] [--wait-seconds N] [--json]` (issue #5):
// makes a Designate A (IPv4) or AAAA (IPv6) record say exactly IP, and waits until Designate
// reports it ACTIVE. Ops scripts call it through scripts/ensure_dns_record.
//
// It runs its own short-lived loop: one OpenStackSession (Keystone token, catalog type "dns",
// retries) lists the project's zones page by page, picks the longest zone that contains the name,
// looks the recordset up, creates (POST), updates (PUT) or leaves it, then polls it until ACTIVE.
// The decisions are openstack/designate.h; this file only sends the requests and prints the result.
//
// Exit codes, as the Python unshelver's ensure_dns_record.py (with 64 from sysexits.h for usage):
//   0  the record is in place (created, updated or unchanged) and ACTIVE
//   1  no zone of the project contains the name
//   2  the configuration, the credentials or the API failed (after the session's retries), the
//      recordset went to ERROR, or it was not ACTIVE within --wait-seconds
//   64 usage: unknown option, missing operand, a name that is not an FQDN, an address that is not
//      an IP address
#pragma once

#include <string>
#include <vector>

namespace unshelver::app {

inline constexpr int kDnsExitOk = 0;
inline constexpr int kDnsExitNoZone = 1;
inline constexpr int kDnsExitFailed = 2;
inline constexpr int kDnsExitUsage = 64;  // EX_USAGE

// The usage text of the dns command, for `unshelver dns --help` and usage errors.
extern const char* const kDnsUsage;

// Runs `unshelver dns ARGS...` (`args` are the arguments after "dns") and returns the exit code.
// The one result line goes to stdout, errors to stderr; no secret is ever printed. The
// configuration comes from --config, else $UNSHELVER_CONFIG, else ./config.yaml; when none of
// these exists the OS_* variables (OS_CLOUD or OS_AUTH_URL ...) alone are used, as the openstack
// CLI does.
int run_dns_command(const std::vector<std::string>& args);

}  // namespace unshelver::app
