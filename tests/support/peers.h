// One policy for tests that need a program installed beside the build (a "peer": Caddy).
//
// CI installs every peer (scripts/setup test-tools), so a missing one is a broken setup and the
// test FAILS, naming the command that installs it. Where a peer is knowingly absent (a developer's
// machine without Caddy), UNSHELVER_ALLOW_MISSING_PEERS=1 turns the failure into a skip. The
// Python integration tests apply the same rule (tests/integration/harness.py, require_peer).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace unshelver::testing {

inline constexpr const char* kAllowMissingPeersVariable = "UNSHELVER_ALLOW_MISSING_PEERS";

inline bool missing_peers_allowed() {
  const char* value = std::getenv(kAllowMissingPeersVariable);
  return value != nullptr && std::string_view(value) == "1";
}

// The message of a missing peer, for the failure and for the skip.
inline std::string missing_peer_message(std::string_view path) {
  return std::string(path) + " is not installed; install it with `scripts/setup test-tools`, or set " +
         kAllowMissingPeersVariable + "=1 to skip the tests that need it";
}

}  // namespace unshelver::testing

// In SetUp() or a test body: returns from it, failing or skipping (see above), when the executable
// `path` is missing.
#define UNSHELVER_REQUIRE_PEER(path)                                      \
  do {                                                                    \
    if (::access((path), X_OK) != 0) {                                    \
      if (::unshelver::testing::missing_peers_allowed()) {                \
        GTEST_SKIP() << ::unshelver::testing::missing_peer_message(path); \
      }                                                                   \
      GTEST_FAIL() << ::unshelver::testing::missing_peer_message(path);   \
    }                                                                     \
  } while (false)
