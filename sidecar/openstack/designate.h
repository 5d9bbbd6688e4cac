// Designate v2 as data, for `unshelver dns ensure FQDN IP` (issue #5): the name and address to
// publish, the zone that holds the name, the recordset already there, and what to send so that
// the name resolves to exactly that address. Pure; cli/dns_command.h sends the requests.
//
// The flow the command follows, each step a function here:
//   parse_ensure_arguments      FQDN, IP and flags from the command line (usage errors: exit 64)
//   parse_zone_page             GET /v2/zones, page by page (next_page_path follows links.next)
//   choose_zone                 the longest zone whose name ends the FQDN on a label boundary
//   parse_recordsets            GET /v2/zones/{id}/recordsets?name=FQDN&type=A
//   plan_recordset              create (POST), update (PUT) or leave it as it is
//   parse_recordset, poll_verdict   GET /v2/zones/{id}/recordsets/{id} until ACTIVE
//
// Contract: ../shared/research/api-contracts.md §4 (designate api-ref and designate/objects).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace unshelver::core::designate {

// --- Names and addresses ---------------------------------------------------------------------

// The FQDN as Designate stores it: lower-case, with the trailing dot (contract §4: "Names must be
// FQDNs with a trailing dot"; HostField raises otherwise). The labels follow Designate's
// Hostname regular expression (designate/objects/fields.py): 1 to 63 of [a-z0-9_-], not starting
// or ending with '-', a '*' allowed only as the whole first label (a wildcard record), and the
// whole name shorter than 255 characters. At least two labels: a bare TLD holds no A record.
Result<std::string> normalize_fqdn(std::string_view text);

enum class RecordType { kA, kAAAA };
std::string_view record_type_name(RecordType type);

// An address as the 4 or 16 bytes it stands for, so that "2001:DB8:0::1" and "2001:db8::1" (the
// form Designate stores, via netaddr) compare equal.
struct IpAddress {
  RecordType type = RecordType::kA;      // A for IPv4, AAAA for IPv6
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4
  bool operator==(const IpAddress&) const = default;
};

// The text forms that inet_pton(3) accepts, and nothing else: IPv4 as exactly four decimal
// numbers of 0..255 without leading zeros; IPv6 as eight groups of 1..4 hex digits, with at most
// one "::" and optionally a dotted IPv4 address in place of the last two groups. No zone index
// ("%eth0") and no brackets.
std::optional<IpAddress> parse_ip(std::string_view text);

// The canonical text: dotted decimal, or RFC 5952 for IPv6 (lower-case, no leading zeros, the
// longest run of two or more zero groups as "::", the first on a tie; IPv4-mapped addresses as
// ::ffff:a.b.c.d). This is what the command sends and prints.
std::string format_ip(const IpAddress& address);

// --- Command line ----------------------------------------------------------------------------

inline constexpr int kDefaultTtl = 300;  // the Python unshelver's ensure_dns_record.py default
inline constexpr std::chrono::seconds kDefaultWait{120};

struct EnsureRequest {
  std::string fqdn;  // normalised, with the trailing dot
  IpAddress address;
  std::optional<int> ttl;                   // --ttl; when absent an update leaves the TTL alone
  std::string config_path;                  // --config ("" : the usual search)
  std::chrono::seconds wait{kDefaultWait};  // --wait-seconds; 0: do not wait for ACTIVE
  bool json = false;                        // --json: one JSON object on stdout instead of a sentence
  std::string log_level;                    // --log-level; "" : only the result or the error
  bool help = false;
};

// Parses the arguments after `dns`: "ensure FQDN IP [--ttl N] [--config F] [--wait-seconds N]
// [--json] [--log-level L]". Flags may come before, between or after the two operands, and as
// "--flag=value". An error is a usage error (exit 64), its message a sentence for stderr.
Result<EnsureRequest> parse_ensure_arguments(const std::vector<std::string>& args);

// --- Zones -----------------------------------------------------------------------------------

struct Zone {
  std::string id;
  std::string name;    // "example.org." (lower-cased here)
  std::string status;  // ACTIVE, PENDING, ERROR, DELETED, ...
  std::string type;    // PRIMARY or SECONDARY
};

struct ZonePage {
  std::vector<Zone> zones;
  std::string next;  // links.next as given ("" on the last page)
};

// Parses a GET /v2/zones answer: {"zones":[...],"links":{"self":..,"next":..},"metadata":..}.
Result<ZonePage> parse_zone_page(std::string_view body);

// The path to request for the next page: the part of `next_link` from "/v2/" on (its query
// included), to be appended to the catalog's endpoint. Designate builds its links from its
// api_base_uri setting, which is often an internal host name; following the path instead keeps
// every request, and the token it carries, on the endpoint the catalog gave. "" when there is no
// next page or the link has no "/v2/".
std::string next_page_path(std::string_view next_link);

// The zone names that could hold `fqdn`, longest first: "www.example.org." gives
// "www.example.org.", "example.org.", "org." (for the message when none exists).
std::vector<std::string> candidate_zone_names(std::string_view fqdn);

// The zone to create the record in: the one with the longest name that is `fqdn` itself (a record
// at the zone's apex) or a suffix of it on a label boundary. Zones being deleted are skipped.
std::optional<Zone> choose_zone(std::string_view fqdn, const std::vector<Zone>& zones);

// --- Recordsets ------------------------------------------------------------------------------

enum class RecordStatus { kActive, kPending, kError, kDeleted, kUnknown };
RecordStatus parse_record_status(std::string_view status);

struct RecordSet {
  std::string id;
  std::string zone_id;
  std::string name;        // lower-cased
  std::string type;        // "A", "AAAA", ...
  std::optional<int> ttl;  // null: the zone's default
  std::vector<std::string> records;
  std::string status;  // as Designate sent it
  std::string action;  // CREATE, UPDATE, DELETE, NONE
};

// A single recordset (the answer to POST, PUT and GET .../recordsets/{id}).
Result<RecordSet> parse_recordset(std::string_view body);
// GET .../recordsets[?name=..&type=..]: {"recordsets":[...],"links":..,"metadata":..}.
Result<std::vector<RecordSet>> parse_recordsets(std::string_view body);

// The query path of the recordset lookup: "/v2/zones/{zone}/recordsets?name=www.example.org.&type=A".
std::string recordsets_query_path(std::string_view zone_id, std::string_view fqdn, RecordType type);
std::string recordsets_path(std::string_view zone_id);
std::string recordset_path(std::string_view zone_id, std::string_view recordset_id);

struct Plan {
  enum class Kind {
    kCreate,     // POST `body` to recordsets_path(zone)
    kUpdate,     // PUT `body` to recordset_path(zone, recordset_id)
    kUnchanged,  // the recordset already says this; wait for it if it is not ACTIVE yet
  } kind = Kind::kUnchanged;
  std::string recordset_id;  // kUpdate and kUnchanged
  std::string body;          // JSON, for kCreate and kUpdate
  std::optional<int> ttl;    // the TTL the recordset has afterwards; nullopt: the zone's default
  std::string reason;        // why an update: "records 10.0.0.4 -> 10.0.0.5", "ttl 3600 -> 300"
};

// What to do so that `fqdn` has exactly the record `address` (and the TTL `ttl`, when given).
// `existing` is the lookup's answer; Designate's filter treats '*' as a wildcard, so only the
// recordsets whose name and type match exactly are considered. An Error when more than one
// matches, which Designate's uniqueness of (zone, name, type) rules out.
// A recordset with the right data but in ERROR is written again, which makes Designate retry
// the propagation that failed.
Result<Plan> plan_recordset(std::string_view fqdn, const IpAddress& address, std::optional<int> ttl,
                            const std::vector<RecordSet>& existing);

// POST body: {"name":..,"type":..,"ttl":..,"records":[..]} (contract §4).
std::string create_body(std::string_view fqdn, const IpAddress& address, int ttl);
// PUT body: {"records":[..]} plus "ttl" when given. Without --ttl the TTL is not sent, because
// "ttl": null would reset it to the zone's default (the api-ref sample sends null).
std::string update_body(const IpAddress& address, std::optional<int> ttl);

// What a polled recordset's status means for the command.
enum class PollVerdict { kDone, kWait, kFailed };
PollVerdict poll_verdict(RecordStatus status);

// The wait before poll number `poll` (1 for the first): 0.5 s, growing by half each time, at most
// 2 s. Propagation usually takes a few seconds (designate-worker's polling), so the first checks
// are quick and later ones do not hammer the API.
std::chrono::milliseconds poll_delay(int poll);

// --- Result ----------------------------------------------------------------------------------

// What the command did, for its one line on stdout.
struct Outcome {
  std::string verb;  // "created", "updated" or "unchanged"
  std::string fqdn;
  IpAddress address;
  std::optional<int> ttl;  // nullopt: the zone's default TTL
  std::string zone_name;
  std::string zone_id;
  std::string recordset_id;
  std::string status;  // the recordset's last status: ACTIVE, or PENDING with --wait-seconds 0
  std::string reason;  // for "updated": what differed
};

// "created www.example.org. A 10.0.0.5 (ttl 300) in zone example.org.: ACTIVE"; an update adds
// what changed: "updated ... : ACTIVE (records 10.0.0.4 -> 10.0.0.5)".
std::string outcome_line(const Outcome& outcome);
// The same as one JSON object, for --json: {"result":"created","name":..,"type":..,"records":[..],
// "ttl":..,"zone":..,"zone_id":..,"recordset_id":..,"status":..,"reason":..}.
std::string outcome_json(const Outcome& outcome);

// True for Designate's answer to a create that lost a race with another creator:
// 409 {"type":"duplicate_recordset"} (contract §4 error bodies). Any 409 counts when the body
// cannot be read, since a POST of a recordset has no other conflict.
bool is_duplicate_recordset(long status, std::string_view body);

}  // namespace unshelver::core::designate
