#include "web/revocations.h"

#include <gtest/gtest.h>

#include <string>

namespace unshelver::core {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using WallTime = SessionRevocations::WallTime;

const WallTime kNow = WallTime{seconds(1'800'000'000)};

TEST(SessionRevocations, SurviveTheirFile) {
  SessionRevocations state;
  state.revoke(std::string("nonce-one\x01\xff", 11), kNow + hours(2), kNow);
  state.revoke("nonce-two", kNow + hours(1), kNow);
  const auto read = SessionRevocations::parse(state.serialize());
  ASSERT_TRUE(read);
  EXPECT_TRUE(read->revoked(std::string("nonce-one\x01\xff", 11)));
  EXPECT_TRUE(read->revoked("nonce-two"));
  EXPECT_FALSE(read->revoked("nonce-three"));
  EXPECT_EQ(read->generation(), 0U);
  EXPECT_EQ(read->serialize(), state.serialize());
}

TEST(SessionRevocations, ExpiredOnesAreForgotten) {
  SessionRevocations state;
  state.revoke("old", kNow + hours(1), kNow);
  state.revoke("new", kNow + hours(3), kNow + hours(2));
  EXPECT_FALSE(state.revoked("old"));
  EXPECT_TRUE(state.revoked("new"));
  state.revoke("already-over", kNow, kNow + hours(4));
  EXPECT_EQ(state.size(), 0U);
}

TEST(SessionRevocations, AFullListAdvancesTheGenerationInstead) {
  SessionRevocations state;
  for (std::size_t i = 0; i < kMaxRevokedSessions; ++i)
    state.revoke("n" + std::to_string(i), kNow + hours(1), kNow);
  EXPECT_EQ(state.size(), kMaxRevokedSessions);
  EXPECT_EQ(state.generation(), 0U);
  state.revoke("one-more", kNow + hours(1), kNow);
  EXPECT_EQ(state.generation(), 1U);
  EXPECT_EQ(state.size(), 0U);
  const auto read = SessionRevocations::parse(state.serialize());
  ASSERT_TRUE(read);
  EXPECT_EQ(read->generation(), 1U);
}

TEST(SessionRevocations, RefusesFilesThatAreNotOurs) {
  for (const char* text :
       {"", "[]", "{}", "{\"generation\":-1,\"revoked\":{}}", "{\"generation\":1}",
        "{\"generation\":1,\"revoked\":{\"!!\":5}}", "{\"generation\":1,\"revoked\":{\"bm9uY2U\":\"x\"}}"}) {
    EXPECT_FALSE(SessionRevocations::parse(text)) << text;
  }
  EXPECT_TRUE(SessionRevocations::parse("{\"generation\":2,\"revoked\":{\"bm9uY2U\":1800000000}}"));
}

TEST(SessionRevocations, ALostFileEndsEverySession) {
  SessionRevocations state;
  state.revoke("n", kNow + hours(1), kNow);
  const SessionRevocations after = SessionRevocations::after_loss(state);
  EXPECT_EQ(after.generation(), state.generation() + 1);
  EXPECT_EQ(after.size(), 0U);
}

}  // namespace
}  // namespace unshelver::core
