// Every (state, event) pair of the backend state machine, legal and illegal, written out by hand
// so that a change to the table in state_machine.cc must be matched here on purpose.
#include "backend/state_machine.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <utility>

namespace unshelver::core {
namespace {

using S = BackendState;
using E = BackendEvent;
constexpr std::optional<S> kIllegal = std::nullopt;

const std::map<std::pair<S, E>, std::optional<S>>& expected_table() {
  static const std::map<std::pair<S, E>, std::optional<S>> table = {
      // unknown: only observations (and an observed error) are meaningful.
      {{S::kUnknown, E::kWakeRequested}, kIllegal},
      {{S::kUnknown, E::kSleepRequested}, kIllegal},
      {{S::kUnknown, E::kCloudStopped}, S::kAsleep},
      {{S::kUnknown, E::kCloudStarting}, S::kWaking},
      {{S::kUnknown, E::kCloudRunning}, S::kBooting},
      {{S::kUnknown, E::kCloudStopping}, S::kSleeping},
      {{S::kUnknown, E::kHealthPassed}, kIllegal},
      {{S::kUnknown, E::kHealthLost}, kIllegal},
      {{S::kUnknown, E::kFailed}, S::kError},
      // asleep
      {{S::kAsleep, E::kWakeRequested}, S::kWaking},
      {{S::kAsleep, E::kSleepRequested}, kIllegal},
      {{S::kAsleep, E::kCloudStopped}, S::kAsleep},
      {{S::kAsleep, E::kCloudStarting}, S::kWaking},
      {{S::kAsleep, E::kCloudRunning}, S::kBooting},
      {{S::kAsleep, E::kCloudStopping}, S::kSleeping},
      {{S::kAsleep, E::kHealthPassed}, kIllegal},
      {{S::kAsleep, E::kHealthLost}, kIllegal},
      {{S::kAsleep, E::kFailed}, S::kError},
      // waking
      {{S::kWaking, E::kWakeRequested}, kIllegal},
      {{S::kWaking, E::kSleepRequested}, kIllegal},
      {{S::kWaking, E::kCloudStopped}, S::kAsleep},
      {{S::kWaking, E::kCloudStarting}, S::kWaking},
      {{S::kWaking, E::kCloudRunning}, S::kBooting},
      {{S::kWaking, E::kCloudStopping}, S::kSleeping},
      {{S::kWaking, E::kHealthPassed}, S::kReady},
      {{S::kWaking, E::kHealthLost}, kIllegal},
      {{S::kWaking, E::kFailed}, S::kError},
      // booting
      {{S::kBooting, E::kWakeRequested}, kIllegal},
      {{S::kBooting, E::kSleepRequested}, S::kSleeping},
      {{S::kBooting, E::kCloudStopped}, S::kAsleep},
      {{S::kBooting, E::kCloudStarting}, kIllegal},
      {{S::kBooting, E::kCloudRunning}, S::kBooting},
      {{S::kBooting, E::kCloudStopping}, S::kSleeping},
      {{S::kBooting, E::kHealthPassed}, S::kReady},
      {{S::kBooting, E::kHealthLost}, kIllegal},
      {{S::kBooting, E::kFailed}, S::kError},
      // ready
      {{S::kReady, E::kWakeRequested}, kIllegal},
      {{S::kReady, E::kSleepRequested}, S::kSleeping},
      {{S::kReady, E::kCloudStopped}, S::kAsleep},
      {{S::kReady, E::kCloudStarting}, S::kReady},
      {{S::kReady, E::kCloudRunning}, S::kReady},
      {{S::kReady, E::kCloudStopping}, S::kSleeping},
      {{S::kReady, E::kHealthPassed}, kIllegal},
      {{S::kReady, E::kHealthLost}, S::kBooting},
      {{S::kReady, E::kFailed}, S::kError},
      // sleeping
      {{S::kSleeping, E::kWakeRequested}, kIllegal},
      {{S::kSleeping, E::kSleepRequested}, kIllegal},
      {{S::kSleeping, E::kCloudStopped}, S::kAsleep},
      {{S::kSleeping, E::kCloudStarting}, S::kWaking},
      {{S::kSleeping, E::kCloudRunning}, S::kBooting},
      {{S::kSleeping, E::kCloudStopping}, S::kSleeping},
      {{S::kSleeping, E::kHealthPassed}, kIllegal},
      {{S::kSleeping, E::kHealthLost}, kIllegal},
      {{S::kSleeping, E::kFailed}, S::kError},
      // error
      {{S::kError, E::kWakeRequested}, S::kWaking},
      {{S::kError, E::kSleepRequested}, S::kSleeping},
      {{S::kError, E::kCloudStopped}, S::kError},
      {{S::kError, E::kCloudStarting}, S::kWaking},
      {{S::kError, E::kCloudRunning}, S::kBooting},
      {{S::kError, E::kCloudStopping}, S::kSleeping},
      {{S::kError, E::kHealthPassed}, S::kReady},
      {{S::kError, E::kHealthLost}, kIllegal},
      {{S::kError, E::kFailed}, S::kError},
  };
  return table;
}

TEST(StateMachine, TableCoversEveryPair) {
  EXPECT_EQ(expected_table().size(), std::size(kAllStates) * std::size(kAllEvents));
}

TEST(StateMachine, EveryPairMatchesTheTable) {
  for (S state : kAllStates) {
    for (E event : kAllEvents) {
      auto found = expected_table().find({state, event});
      ASSERT_NE(found, expected_table().end()) << to_string(state) << " + " << to_string(event);
      EXPECT_EQ(transition(state, event), found->second) << to_string(state) << " + " << to_string(event);
    }
  }
}

TEST(StateMachine, NoEventLeadsBackToUnknown) {
  for (S state : kAllStates) {
    for (E event : kAllEvents) {
      EXPECT_NE(transition(state, event), std::optional<S>(S::kUnknown));
    }
  }
}

TEST(StateMachine, ReadyIsReachedOnlyThroughHealth) {
  for (S state : kAllStates) {
    for (E event : kAllEvents) {
      if (transition(state, event) == std::optional<S>(S::kReady) && state != S::kReady) {
        EXPECT_EQ(event, E::kHealthPassed) << to_string(state);
        // From booting, from waking when the service answers before the cloud says it runs
        // (issue 20), or from an error while the VM runs and its health passes (issue 17).
        EXPECT_TRUE(state == S::kWaking || state == S::kBooting || state == S::kError) << to_string(state);
      }
    }
  }
}

TEST(StateMachine, NamesRoundTrip) {
  for (S state : kAllStates) {
    EXPECT_EQ(backend_state_from_string(to_string(state)), std::optional<S>(state));
  }
  EXPECT_EQ(backend_state_from_string("shelved"), std::nullopt);
  EXPECT_EQ(to_string(S::kReady), "ready");
  EXPECT_EQ(to_string(E::kHealthPassed), "health_passed");
}

}  // namespace
}  // namespace unshelver::core
