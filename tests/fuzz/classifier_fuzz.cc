// classifier_fuzz: ActivityClassifier::classify() on arbitrary bytes must never crash, throw or
// trip a sanitizer, and must decide every line exactly as classify_reference() does (the plain
// nlohmann::json parse that specifies it), except the lines that the pre-scan settles as another
// host's: for those, the reference must attribute the line to no target (it may call it other
// traffic or malformed; the pre-scan does not validate). These checks are what make the fast
// paths safe: whatever the fuzzer finds where they fail is a fast-path bug.
//
//   scripts/fuzz [SECONDS]    builds this with clang and runs it on corpus/classifier/
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "activity/classifier.h"

namespace {

using unshelver::core::ActivityClassifier;
using unshelver::core::IgnoreRules;
using unshelver::core::LineResult;

ActivityClassifier& classifier() {
  // Targets with a port-less host, an IPv6 literal and upper-case letters; every kind of rule.
  static ActivityClassifier* instance = [] {
    IgnoreRules rules;  // the default monitor names
    rules.user_agent_patterns = {"^health-[0-9]+$", "bot\\b"};
    rules.paths = {"/healthz", "/metrics/*"};
    rules.methods = {"OPTIONS", "HEAD"};
    return new ActivityClassifier(
        {{"chat", "chat.localhost", "gpu"}, {"v6", "[::1]", "v6"}, {"upper", "UPPER.Example", "Label"}},
        rules);
  }();
  return *instance;
}

bool same_seconds(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

bool same(const LineResult& a, const LineResult& b) {
  return a.outcome == b.outcome && a.backend == b.backend && a.reason == b.reason &&
         same_seconds(a.start_seconds, b.start_seconds) && same_seconds(a.end_seconds, b.end_seconds);
}

void print(const char* name, const LineResult& result) {
  std::string_view outcome = to_string(result.outcome);
  std::fprintf(stderr, "%s: %.*s backend=%d reason=%.*s start=%.17g end=%.17g\n", name,
               static_cast<int>(outcome.size()), outcome.data(), result.backend,
               static_cast<int>(result.reason.size()), result.reason.data(), result.start_seconds,
               result.end_seconds);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  ActivityClassifier& instance = classifier();
  static const std::vector<std::string> variants = ActivityClassifier::scan_variants();
  LineResult reference = instance.classify_reference(line);
  const bool other_host = instance.other_host(line);
  if (other_host && (reference.backend >= 0 || reference.outcome == unshelver::core::LineOutcome::kActivity ||
                     reference.outcome == unshelver::core::LineOutcome::kIgnored)) {
    std::fprintf(stderr, "the pre-scan called a line of a target another host's (%zu bytes):\n", size);
    print("reference", reference);
    std::abort();
  }
  // Every byte-scan variant this CPU has (AVX2, SSE2, portable) must agree with the reference.
  for (const std::string& variant : variants) {
    instance.use_scan_variant(variant);
    std::uint64_t lines_before = instance.counters().lines;
    LineResult fast = instance.classify(line);
    if (other_host) {
      if (fast.outcome != unshelver::core::LineOutcome::kOtherHost || fast.backend != -1) {
        std::fprintf(stderr, "classify() did not follow the pre-scan on %zu bytes:\n", size);
        print("classify", fast);
        std::abort();
      }
    } else if (!same(fast, reference)) {
      std::fprintf(stderr, "classify() (%s scan) and classify_reference() disagree on %zu bytes:\n",
                   variant.c_str(), size);
      print("classify", fast);
      print("reference", reference);
      std::abort();
    }
    if (instance.counters().lines != lines_before + 1) {
      std::fprintf(stderr, "classify() did not count the line\n");
      std::abort();
    }
  }
  return 0;
}
