// ActivityClassifier: decides, for one line of Caddy's JSON access log, whether it is activity
// on one of our backends. Pure: no I/O, no clock, no allocation per line on the common path.
//
// A line is activity for a backend when its `request.host`, with any ":port" stripped and
// compared case-insensitively, is the backend's host AND its `resp_headers` carry the backend's
// label in `X-Served-By` (set by `header_down X-Served-By <label>` in the managed Caddy config,
// so a fallback answer from Unshelver itself never counts). The request began at `ts - duration`
// and ended at `ts` (Caddy writes the line when the response completes; caddy-facts §4b).
// Lines matching an ignore rule (user agent, path, method) are counted apart and never count as
// activity. Malformed lines are counted per reason and skipped: nothing in a line is fatal.
//
// A line of a host that is none of the backends' (a product decision: such lines need no
// validation) is decided by a pre-scan that looks only at the line's "host" keys, and is counted
// as "other_host" without a malformed-reason breakdown.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace unshelver::core {

struct ActivityTarget {
  std::string backend;  // the backend's name
  std::string host;     // hostname without port, any case
  std::string label;    // the X-Served-By value
};

enum class LineOutcome {
  kActivity,       // counts for `backend`
  kIgnored,        // a backend's line, but an ignore rule matched (`reason` says which)
  kOtherTraffic,   // valid, but not a backend's (other host, fallback answer, launcher, ...)
  kMalformedJson,  // not a JSON object
  kMissingField,   // ts, request.host or resp_headers missing
  kWrongType,      // a field of the wrong JSON type
  // The pre-scan found that every "host" key of the line (request.host among them) names a host
  // that is none of the targets': the rest of the line was not validated, so a malformed line of
  // another host is counted here too.
  kOtherHost,
};
std::string_view to_string(LineOutcome outcome);

struct LineResult {
  LineOutcome outcome = LineOutcome::kMalformedJson;
  int backend = -1;          // index into the targets for kActivity and kIgnored
  double start_seconds = 0;  // Unix seconds: ts - duration (for kActivity and kIgnored; else 0)
  double end_seconds = 0;    // Unix seconds: ts (for kActivity and kIgnored; else 0)
  std::string_view reason;   // for kIgnored and the malformed kinds: a short static text
};

struct ClassifierCounters {
  std::uint64_t lines = 0;
  std::map<std::string, std::uint64_t> by_outcome;  // "activity", "ignored", "malformed_json", ...
  std::vector<std::uint64_t> activity_by_backend;   // parallel to the targets
  std::vector<std::uint64_t> ignored_by_backend;
  std::uint64_t fast_path = 0;  // lines decided by the fast walk
  std::uint64_t prescan = 0;    // lines decided by the pre-scan (other hosts); the rest took the full parse
};

class ActivityClassifier {
 public:
  // The ignore rules were validated by the config parser (regexes compile).
  ActivityClassifier(std::vector<ActivityTarget> targets, const IgnoreRules& rules);
  ~ActivityClassifier();
  ActivityClassifier(ActivityClassifier&&) noexcept;
  ActivityClassifier& operator=(ActivityClassifier&&) noexcept;

  // Classifies and counts one line (without its trailing newline). A line whose hosts are none of
  // the targets' is kOtherHost by the pre-scan; the others get the validating parse.
  LineResult classify(std::string_view line);
  // The pre-scan alone: true when the line's request.host is certainly none of the targets'
  // (every "host" key holds another host's name), whatever the rest of the line holds. It then holds that
  // classify_reference() attributes the line to no target (kOtherTraffic or a malformed kind); the fuzz
  // target checks exactly that. False when the host is a target's or the pre-scan is unsure.
  bool other_host(std::string_view line) const;
  // The same decision from a plain DOM parse (nlohmann::json), without the fast path and without
  // counting. This is the specification: classify() must always agree with it, and the fuzz
  // target (tests/fuzz/classifier_fuzz.cc) checks that on arbitrary bytes.
  LineResult classify_reference(std::string_view line) const;
  // The implementations of the fast path's byte scan that this CPU can run, fastest first
  // ("avx2", "sse2", "portable"); the constructor picks the first. Tests and the fuzz target pin
  // each in turn with use_scan_variant(), which returns false for an unknown name.
  static std::vector<std::string> scan_variants();
  bool use_scan_variant(std::string_view name);
  // The ignore rule that a live request matches ("user_agent", "path", "method"), or "" when it
  // matches none: the same rules as for log lines, for requests that reach Unshelver itself
  // (a bot must not wake a backend by calling its host either). `user_agent` empty: none sent.
  std::string_view ignore_reason(std::string_view method, std::string_view uri,
                                 std::string_view user_agent) const;
  const ClassifierCounters& counters() const { return counters_; }
  const std::vector<ActivityTarget>& targets() const { return targets_; }

  struct Impl;

 private:
  std::vector<ActivityTarget> targets_;
  ClassifierCounters counters_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unshelver::core
