// Unit tests for the page model: what each effective state means to visitors and API clients,
// and the one rule that makes a ready backend `booting` until Caddy routes to it.
#include "web/page_model.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/time_format.h"
#include "web/controller.h"

namespace unshelver::web {
namespace {

using core::BackendState;

TEST(EffectiveStateTest, ReadyOnlyOnceCaddyRoutesToTheBackend) {
  EXPECT_EQ(BackendState::kReady, effective_state(BackendState::kReady, std::nullopt));  // Caddy not managed
  EXPECT_EQ(BackendState::kReady, effective_state(BackendState::kReady, std::string("backend")));
  EXPECT_EQ(BackendState::kBooting, effective_state(BackendState::kReady, std::string("unshelver")));
  EXPECT_EQ(BackendState::kBooting, effective_state(BackendState::kReady, std::string("")));
  EXPECT_EQ(BackendState::kAsleep, effective_state(BackendState::kAsleep, std::string("backend")));
  EXPECT_EQ(BackendState::kWaking, effective_state(BackendState::kWaking, std::string("unshelver")));
}

TEST(PageModelTest, WhatEachStateOffers) {
  for (BackendState state : core::kAllStates) {
    const bool sleeping_or_failed =
        state == BackendState::kAsleep || state == BackendState::kError || state == BackendState::kSleeping;
    EXPECT_EQ(sleeping_or_failed, can_wake(state)) << core::to_string(state);
    EXPECT_EQ(state != BackendState::kAsleep && state != BackendState::kError, auto_refresh(state));
  }
  EXPECT_TRUE(is_busy(BackendState::kUnknown));
  EXPECT_TRUE(is_busy(BackendState::kBooting));
  EXPECT_FALSE(is_busy(BackendState::kReady));
  EXPECT_FALSE(is_busy(BackendState::kAsleep));
  EXPECT_EQ(10, retry_after_seconds(BackendState::kWaking));
  EXPECT_EQ(10, retry_after_seconds(BackendState::kBooting));
  EXPECT_EQ(30, retry_after_seconds(BackendState::kAsleep));
  EXPECT_EQ(30, retry_after_seconds(BackendState::kError));
}

TEST(PageModelTest, LabelsAndExplanations) {
  EXPECT_EQ("Waking up", state_label(BackendState::kWaking));
  EXPECT_EQ("Checking", state_label(BackendState::kUnknown));
  EXPECT_EQ("The machine runs; GPU's services are starting.", explanation(BackendState::kBooting, "GPU"));
  EXPECT_EQ("Checking GPU's state.", explanation(BackendState::kUnknown, "GPU"));
}

TEST(PageModelTest, AddsThePageFields) {
  BackendView view;
  view.label = "GPU";
  view.state = BackendState::kAsleep;
  nlohmann::json entry = nlohmann::json::object();
  add_page_fields(view, entry);
  EXPECT_EQ("Asleep", entry["state_label"]);
  EXPECT_EQ(true, entry["can_wake"]);
  EXPECT_EQ(false, entry["is_ready"]);
  EXPECT_EQ(false, entry["is_busy"]);
  EXPECT_EQ(false, entry["is_error"]);
  EXPECT_EQ(false, entry["auto_refresh"]);
  EXPECT_EQ("GPU is asleep to save costs. Wake it to continue; waking takes a few minutes.",
            entry["explanation"]);
}

TEST(PageModelTest, StepsFollowTheWake) {
  BackendView view;
  view.label = "GPU";
  view.state = BackendState::kAsleep;
  // Asleep with nobody asking: no step, and no promise that the page moves on.
  EXPECT_FALSE(current_step(view));
  EXPECT_EQ("Nothing happens until someone wakes GPU.", hint(view));
  view.desired_awake = true;
  EXPECT_EQ(WakeStep::kRequested, current_step(view));
  EXPECT_EQ("This page moves on to GPU by itself as soon as it is ready.", hint(view));
  // With ha and no controller able to act, the pages say so instead of promising progress.
  view.coordination = Coordination::kStoreUnreachable;
  EXPECT_EQ(
      "Unshelver cannot reach the store its controllers agree through: nothing is woken or put to sleep "
      "until it can. Please try again in a minute.",
      hint(view));
  EXPECT_EQ("etcd_unreachable", coordination_code(view.coordination));
  view.coordination = Coordination::kHandingOver;
  EXPECT_EQ(
      "Unshelver is handing GPU over to another controller; this takes a few seconds, and this page "
      "moves on by itself.",
      hint(view));
  view.coordination = Coordination::kActing;
  EXPECT_EQ("", coordination_code(view.coordination));
  view.state = BackendState::kWaking;
  EXPECT_EQ(WakeStep::kMachineStarting, current_step(view));
  view.state = BackendState::kBooting;
  EXPECT_EQ(WakeStep::kServicesStarting, current_step(view));
  nlohmann::json entry = nlohmann::json::object();
  view.idle_timeout = std::chrono::minutes(10);
  add_page_fields(view, entry);
  EXPECT_EQ("services", entry["step"]);
  ASSERT_EQ(4u, entry["steps"].size());
  EXPECT_EQ(true, entry["steps"][1]["is_done"]);
  EXPECT_EQ(true, entry["steps"][2]["is_current"]);
  EXPECT_EQ(false, entry["steps"][3]["is_current"]);
  EXPECT_EQ("Services starting", entry["steps"][2]["label"]);
  EXPECT_EQ("10 minutes", entry["idle_timeout_text"]);
  EXPECT_EQ("Wake GPU", entry["wake_button"]);
  // In error the button retries and the hint says what the visitor can do.
  view.state = BackendState::kError;
  EXPECT_FALSE(current_step(view));
  entry = nlohmann::json::object();
  add_page_fields(view, entry);
  EXPECT_EQ("Try again to wake GPU", entry["wake_button"]);
  EXPECT_EQ("", entry["step"]);
  EXPECT_NE(std::string::npos, entry["hint"].get<std::string>().find("try again"));
}

TEST(PageModelTest, DurationsAndTimeLeftInWords) {
  using std::chrono::seconds;
  EXPECT_EQ("1 second", duration_in_words(seconds(1)));
  EXPECT_EQ("45 seconds", duration_in_words(seconds(45)));
  EXPECT_EQ("1 minute", duration_in_words(seconds(60)));
  EXPECT_EQ("1 min 30 s", duration_in_words(seconds(90)));
  EXPECT_EQ("2 hours", duration_in_words(seconds(7200)));
  EXPECT_EQ("1 h 1 min", duration_in_words(seconds(3660)));
  EXPECT_EQ("about 30 seconds left", time_left(seconds(60), seconds(90)));
  EXPECT_EQ("about 2 minutes left", time_left(seconds(10), seconds(100)));
  EXPECT_EQ("taking longer than usual", time_left(seconds(100), seconds(100)));
}

// Each reason from the texts the reconciler and the providers really produce (backend/reconciler.cc,
// openstack/nova.cc, uv/http_client.cc, the simulated cloud's default failure_message).
TEST(PageModelTest, ClassifiesFailures) {
  EXPECT_EQ(FailureReason::kNone, classify_failure(""));
  EXPECT_EQ(FailureReason::kNone, classify_failure(" \n"));
  EXPECT_EQ(FailureReason::kNotReadyInTime, classify_failure("not ready within 900 s of the wake request"));
  EXPECT_EQ(FailureReason::kUnhealthy,
            classify_failure("health check did not pass after 60 attempts: HTTP 502 from 10.0.0.5:8000"));
  EXPECT_EQ(
      FailureReason::kCloudStuck,
      classify_failure("the cloud still reports the VM stopped (SHELVED_OFFLOADED) after the wake request"));
  EXPECT_EQ(FailureReason::kNoCapacity,
            classify_failure("No valid host was found. There are not enough hosts available."));
  EXPECT_EQ(FailureReason::kNoCapacity,
            classify_failure("wake failed: Nova answered 403: Quota exceeded for cores: Requested 8, but "
                             "already used 60 of 64 cores"));
  EXPECT_EQ(
      FailureReason::kCloudUnreachable,
      classify_failure("wake failed: Timeout was reached: Operation timed out after 30000 milliseconds"));
  EXPECT_EQ(FailureReason::kCloudUnreachable,
            classify_failure("sleep failed: Couldn't connect to server: Failed to connect to nova.internal "
                             "port 8774"));
  EXPECT_EQ(FailureReason::kCloudUnreachable, classify_failure("wake failed: Nova answered 503"));
  EXPECT_EQ(FailureReason::kCloudRefused,
            classify_failure("wake failed: Nova answered 409: Cannot 'unshelve' instance while it is in "
                             "vm_state active"));
  EXPECT_EQ(FailureReason::kCloudRefused, classify_failure("sleep failed: Nova answered 500"));
  // A fault message with a traceback and host names, as Nova shows it for a server in ERROR.
  EXPECT_EQ(
      FailureReason::kCloudFault,
      classify_failure("Traceback (most recent call last):\n  File \"/usr/lib/python3/nova/compute/"
                       "manager.py\", line 2442\nlibvirtError: internal error on compute-17.int.example"));
  EXPECT_EQ(FailureReason::kCloudFault,
            classify_failure("the server is in rescue mode (an operator is repairing it)"));
}

TEST(PageModelTest, FailureSummariesNameNoCloudDetail) {
  EXPECT_EQ("", failure_summary(FailureReason::kNone));
  EXPECT_EQ("", failure_code(FailureReason::kNone));
  EXPECT_EQ("The cloud refused the request.", failure_summary(FailureReason::kCloudRefused));
  EXPECT_EQ("cloud_unreachable", failure_code(FailureReason::kCloudUnreachable));
  for (FailureReason reason :
       {FailureReason::kCloudRefused, FailureReason::kCloudUnreachable, FailureReason::kNoCapacity,
        FailureReason::kCloudFault, FailureReason::kNotReadyInTime, FailureReason::kUnhealthy,
        FailureReason::kCloudStuck}) {
    EXPECT_FALSE(failure_summary(reason).empty());
    EXPECT_FALSE(failure_code(reason).empty());
  }
}

TEST(PageModelTest, TimesWithoutTheScriptAreHumanNotIso) {
  const auto now = *core::parse_rfc3339("2026-12-06T21:00:00Z");
  EXPECT_EQ(human_time("2026-12-06T14:02:07.123456Z", now), "14:02:07 UTC");
  EXPECT_EQ(human_time("2026-12-05T23:59:00Z", now), "5 Dec 23:59 UTC");
  EXPECT_EQ(human_time(nullptr, now), "");
  EXPECT_EQ(human_time("not a time", now), "");
  nlohmann::json backend = {{"since", "2026-12-06T14:02:07Z"},
                            {"last_activity", nullptr},
                            {"idle_deadline", "2026-12-07T01:30:00Z"}};
  add_time_texts(backend, now);
  EXPECT_EQ(backend["since_text"], "14:02:07 UTC");
  EXPECT_EQ(backend["last_activity_text"], "");
  EXPECT_EQ(backend["idle_deadline_text"], "7 Dec 01:30 UTC");
}

}  // namespace
}  // namespace unshelver::web
