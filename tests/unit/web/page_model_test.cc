// Unit tests for the page model: what each effective state means to visitors and API clients,
// and the one rule that makes a ready backend `booting` until Caddy routes to it.
#include "web/page_model.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

}  // namespace
}  // namespace unshelver::web
