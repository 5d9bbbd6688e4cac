// The gate's decisions (web/gate_policy.h): every state against every kind of request.
#include "web/gate_policy.h"

#include <gtest/gtest.h>

namespace unshelver::web {
namespace {

using core::BackendState;

GateFacts api_request(BackendState state, bool desired_awake) {
  GateFacts facts;
  facts.state = state;
  facts.desired_awake = desired_awake;
  facts.wake_on_request = true;
  facts.max_held = 4;
  return facts;
}

TEST(GatePolicy, AReadyBackendWantedAwakeLetsEveryRequestThrough) {
  GateFacts facts = api_request(BackendState::kReady, true);
  EXPECT_EQ(GateVerdict::kPass, decide_gate(facts).verdict);
  facts.wants_html = true;
  EXPECT_EQ(GateVerdict::kPass, decide_gate(facts).verdict);
  facts.ignored = true;  // a monitor may reach a ready backend; its line is not activity
  EXPECT_EQ(GateVerdict::kPass, decide_gate(facts).verdict);
}

TEST(GatePolicy, ApiRequestsToASleepingBackendAreHeldAndWakeIt) {
  for (BackendState state : {BackendState::kAsleep, BackendState::kSleeping, BackendState::kUnknown}) {
    const GateDecision decision = decide_gate(api_request(state, false));
    EXPECT_EQ(GateVerdict::kHold, decision.verdict) << core::to_string(state);
    EXPECT_TRUE(decision.wake) << core::to_string(state);
  }
}

TEST(GatePolicy, ABackendOnItsWayUpHoldsWithoutAnotherWake) {
  for (BackendState state : {BackendState::kAsleep, BackendState::kWaking, BackendState::kBooting,
                             BackendState::kSleeping, BackendState::kUnknown}) {
    GateFacts facts = api_request(state, true);
    facts.wake_on_request = false;  // someone else woke it: waiting costs nothing
    const GateDecision decision = decide_gate(facts);
    EXPECT_EQ(GateVerdict::kHold, decision.verdict) << core::to_string(state);
    EXPECT_FALSE(decision.wake) << core::to_string(state);
  }
}

// Draining: the idle monitor wants the backend asleep but the shelve was not sent yet. Nothing
// new may reach it; the request is held and wakes it again.
TEST(GatePolicy, NothingNewReachesABackendThatIsBeingShelved) {
  const GateDecision decision = decide_gate(api_request(BackendState::kReady, false));
  EXPECT_EQ(GateVerdict::kHold, decision.verdict);
  EXPECT_TRUE(decision.wake);
}

TEST(GatePolicy, WithoutWakeOnRequestASleepingBackendAnswersAtOnce) {
  GateFacts facts = api_request(BackendState::kAsleep, false);
  facts.wake_on_request = false;
  EXPECT_EQ(GateVerdict::kAsleep, decide_gate(facts).verdict);
}

TEST(GatePolicy, BrowsersGetTheWaitingPageAndWakeNothing) {
  for (BackendState state : {BackendState::kAsleep, BackendState::kWaking, BackendState::kBooting}) {
    GateFacts facts = api_request(state, state != BackendState::kAsleep);
    facts.wants_html = true;
    const GateDecision decision = decide_gate(facts);
    EXPECT_EQ(GateVerdict::kWaitingPage, decision.verdict) << core::to_string(state);
    EXPECT_FALSE(decision.wake);
  }
}

TEST(GatePolicy, IgnoredClientsAreNeverHeldNorWake) {
  for (BackendState state : {BackendState::kAsleep, BackendState::kWaking, BackendState::kError}) {
    GateFacts facts = api_request(state, state == BackendState::kWaking);
    facts.ignored = true;
    const GateDecision decision = decide_gate(facts);
    EXPECT_EQ(GateVerdict::kIgnored, decision.verdict) << core::to_string(state);
    EXPECT_FALSE(decision.wake);
  }
}

TEST(GatePolicy, AnErrorIsAnsweredNeverHeld) {
  for (bool desired : {false, true}) {
    EXPECT_EQ(GateVerdict::kError, decide_gate(api_request(BackendState::kError, desired)).verdict);
    // A browser gets the waiting page, which says what failed and offers to try again.
    GateFacts browser = api_request(BackendState::kError, desired);
    browser.wants_html = true;
    const GateDecision decision = decide_gate(browser);
    EXPECT_EQ(GateVerdict::kWaitingPage, decision.verdict);
    EXPECT_FALSE(decision.wake);
  }
}

TEST(GatePolicy, AKeyedBackendAnswersNobodyWithoutAValidKey) {
  for (BackendState state : {BackendState::kReady, BackendState::kAsleep, BackendState::kError}) {
    GateFacts facts = api_request(state, state == BackendState::kReady);
    facts.key_required = true;
    EXPECT_EQ(GateVerdict::kUnauthorized, decide_gate(facts).verdict) << core::to_string(state);
    facts.key_valid = true;
    EXPECT_NE(GateVerdict::kUnauthorized, decide_gate(facts).verdict) << core::to_string(state);
  }
}

TEST(GatePolicy, AFullQueueRefusesAtOnce) {
  GateFacts facts = api_request(BackendState::kWaking, true);
  facts.held = 3;
  EXPECT_EQ(GateVerdict::kHold, decide_gate(facts).verdict);
  facts.held = 4;
  EXPECT_EQ(GateVerdict::kFull, decide_gate(facts).verdict);
}

TEST(GatePolicy, HeldRequestsGoWhenReadyAndFailOnError) {
  EXPECT_EQ(HeldFate::kRelease, held_fate(BackendState::kReady, true));
  EXPECT_EQ(HeldFate::kKeep, held_fate(BackendState::kReady, false));  // draining
  EXPECT_EQ(HeldFate::kFail, held_fate(BackendState::kError, true));
  for (BackendState state : {BackendState::kAsleep, BackendState::kWaking, BackendState::kBooting,
                             BackendState::kSleeping, BackendState::kUnknown}) {
    EXPECT_EQ(HeldFate::kKeep, held_fate(state, true)) << core::to_string(state);
  }
}

}  // namespace
}  // namespace unshelver::web
