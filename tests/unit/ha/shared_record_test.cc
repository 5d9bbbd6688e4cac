#include "ha/shared_record.h"

#include <gtest/gtest.h>

#include "base/time_format.h"

namespace unshelver::core::ha {
namespace {

TimePoint wall(const char* text) {
  return *parse_rfc3339(text);
}

TEST(KeyLayout, EveryKeyParsesBackToWhatMadeIt) {
  const KeyLayout keys("unshelver");  // the trailing slash is added
  EXPECT_EQ(keys.prefix, "unshelver/");
  EXPECT_EQ(keys.leader("gpu"), "unshelver/backends/gpu/leader");

  KeyLayout::Parsed parsed = keys.parse(keys.leader("gpu"));
  EXPECT_EQ(parsed.kind, KeyLayout::Kind::kLeader);
  EXPECT_EQ(parsed.backend, "gpu");
  parsed = keys.parse(keys.state("gpu-2"));
  EXPECT_EQ(parsed.kind, KeyLayout::Kind::kState);
  EXPECT_EQ(parsed.backend, "gpu-2");
  parsed = keys.parse(keys.wish("gpu", "ctl.b", "pin"));
  EXPECT_EQ(parsed.kind, KeyLayout::Kind::kWish);
  EXPECT_EQ(parsed.instance, "ctl.b");
  EXPECT_EQ(parsed.slot, "pin");
  parsed = keys.parse(keys.activity("gpu", "ctl-a"));
  EXPECT_EQ(parsed.kind, KeyLayout::Kind::kActivity);
  EXPECT_EQ(parsed.instance, "ctl-a");
  parsed = keys.parse(keys.instance("ctl-a"));
  EXPECT_EQ(parsed.kind, KeyLayout::Kind::kInstance);
  EXPECT_EQ(parsed.instance, "ctl-a");
}

TEST(KeyLayout, ForeignAndMalformedKeysAreOther) {
  const KeyLayout keys("unshelver/");
  for (const char* key : {"other/backends/gpu/leader", "unshelver/backends//leader", "unshelver/backends/gpu",
                          "unshelver/backends/gpu/wish/a/other", "unshelver/backends/gpu/wish//pin",
                          "unshelver/backends/gpu/activity/", "unshelver/backends/gpu/activity/a/b",
                          "unshelver/instances/", "unshelver/instances/a/b", "unshelver/x"}) {
    EXPECT_EQ(keys.parse(key).kind, KeyLayout::Kind::kOther) << key;
  }
}

TEST(Wish, RoundTripsAndNamesItsSlot) {
  const Wish wish{Wish::Kind::kPin, "control", "demo at 3", wall("2026-12-07T10:00:00Z")};
  Result<Wish> back = wish_from_json(wish_to_json(wish));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->kind, Wish::Kind::kPin);
  EXPECT_EQ(back->actor, "control");
  EXPECT_EQ(back->reason, "demo at 3");
  EXPECT_EQ(back->at, wish.at);
  EXPECT_EQ(wish_slot(Wish::Kind::kUnpin), "pin");
  EXPECT_EQ(wish_slot(Wish::Kind::kShelve), "desired");
}

TEST(Wish, UnknownKindsAndGarbageAreErrorsThatDoNotEchoTheValue) {
  for (const char* text : {R"({"kind":"reboot"})", R"({"kind":3})", "[]", "not json {secret}", ""}) {
    Result<Wish> wish = wish_from_json(text);
    ASSERT_FALSE(wish) << text;
    EXPECT_EQ(wish.error().message.find("secret"), std::string::npos);
  }
}

TEST(ActivityReport, RoundTripsAndClampsTheCount) {
  const ActivityReport report{wall("2026-12-07T10:00:01Z"), 3};
  Result<ActivityReport> back = activity_from_json(activity_to_json(report));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, report);
  Result<ActivityReport> none = activity_from_json(activity_to_json(ActivityReport{}));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->last_activity);
  Result<ActivityReport> negative = activity_from_json(R"({"in_flight":-5})");
  ASSERT_TRUE(negative);
  EXPECT_EQ(negative->in_flight, 0);
}

TEST(SharedState, CarriesTheSnapshotTheLeaderAndTheTime) {
  SharedState state;
  state.snapshot.persisted.desired = Desired{true, "public-button", "visitor", wall("2026-12-07T09:00:00Z")};
  state.snapshot.persisted.state = BackendState::kWaking;
  state.snapshot.persisted.last_activity = wall("2026-12-07T09:30:00Z");
  state.snapshot.persisted.holds.push_back(
      AwakeHold{HoldReason::kPin, "admin", "demo", wall("2026-12-07T09:00:00Z"), {}});
  state.snapshot.state_since = wall("2026-12-07T09:00:01Z");
  state.snapshot.upstream = "10.0.0.5:8080";
  state.snapshot.cloud_status = "SHELVED_OFFLOADED (unshelving)";
  state.snapshot.requests_in_flight = 2;
  state.leader = "ctl-a";
  state.written = wall("2026-12-07T09:00:02Z");

  Result<SharedState> back = state_from_json(state_to_json(state));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->leader, "ctl-a");
  EXPECT_EQ(back->written, state.written);
  const BackendSnapshot& snapshot = back->snapshot;
  EXPECT_TRUE(snapshot.persisted.desired.awake);
  EXPECT_EQ(snapshot.persisted.desired.actor, "public-button");
  EXPECT_EQ(snapshot.persisted.state, BackendState::kWaking);
  EXPECT_EQ(snapshot.persisted.last_activity, state.snapshot.persisted.last_activity);
  ASSERT_EQ(snapshot.persisted.holds.size(), 1U);
  EXPECT_EQ(snapshot.persisted.holds[0].reason, HoldReason::kPin);
  EXPECT_EQ(snapshot.state_since, state.snapshot.state_since);
  EXPECT_EQ(snapshot.upstream, "10.0.0.5:8080");
  EXPECT_EQ(snapshot.cloud_status, "SHELVED_OFFLOADED (unshelving)");
  EXPECT_EQ(snapshot.requests_in_flight, 2);
}

TEST(SharedState, AStateWithoutItsDesiredPartIsAnError) {
  EXPECT_FALSE(state_from_json(R"({"state":"ready"})"));
  EXPECT_FALSE(state_from_json(R"({"desired":{"awake":"yes"}})"));
  EXPECT_FALSE(state_from_json("null"));
}

}  // namespace
}  // namespace unshelver::core::ha
