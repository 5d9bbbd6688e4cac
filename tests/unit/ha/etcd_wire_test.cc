// etcd's v3 gateway as data: the bodies the builders write, byte for byte (base64 keys and
// values, int64 as strings), and the readers on answers captured from Debian's etcd 3.4.23
// (omitted false/zero fields included), on garbage and on fields of the wrong type.
#include "ha/etcd_wire.h"

#include <gtest/gtest.h>

#include <string>

namespace unshelver::core::etcd {
namespace {

// Captured from /usr/bin/etcd 3.4.23 with curl (2026-12).
constexpr std::string_view kHeader =
    R"("header":{"cluster_id":"13455796455940752355","member_id":"443629905751424238","revision":"5","raft_term":"2"})";

std::string answer(std::string_view rest) {
  return "{" + std::string(kHeader) + (rest.empty() ? "" : ",") + std::string(rest) + "}";
}

TEST(EtcdPrefixEnd, IncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(prefix_end("unshelver/"), "unshelver0");
  EXPECT_EQ(prefix_end("a"), "b");
  EXPECT_EQ(prefix_end("a\xff"), "b");
  EXPECT_EQ(prefix_end("a\xff\xff"), "b");
  EXPECT_EQ(prefix_end("\xff"), std::string(1, '\0'));
  EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

TEST(EtcdBodies, CampaignTxnIsWrittenAsEtcdDocumentsIt) {
  Txn txn;
  txn.compare.push_back({"unshelver/gpu1/leader", CompareTarget::kCreate, CompareResult::kEqual, 0, ""});
  txn.success.emplace_back(Put{"unshelver/gpu1/leader", "node-a", 4390625147199987214});
  txn.failure.emplace_back(Range{"unshelver/gpu1/leader", false});
  EXPECT_EQ(txn_body(txn),
            R"({"compare":[{"key":"dW5zaGVsdmVyL2dwdTEvbGVhZGVy","target":"CREATE","result":"EQUAL",)"
            R"("create_revision":"0"}],"success":[{"request_put":{"key":"dW5zaGVsdmVyL2dwdTEvbGVhZGVy",)"
            R"("value":"bm9kZS1h","lease":"4390625147199987214"}}],"failure":[{"request_range":)"
            R"({"key":"dW5zaGVsdmVyL2dwdTEvbGVhZGVy"}}]})");
}

TEST(EtcdBodies, EveryTargetCarriesItsOwnField) {
  Txn txn;
  txn.compare.push_back({"k", CompareTarget::kVersion, CompareResult::kLess, 5, ""});
  txn.compare.push_back({"k", CompareTarget::kMod, CompareResult::kGreater, 1, ""});
  txn.compare.push_back({"k", CompareTarget::kValue, CompareResult::kNotEqual, 0, "A"});
  txn.compare.push_back({"k", CompareTarget::kLease, CompareResult::kEqual, -7, ""});
  txn.success.emplace_back(DeleteRange{"p/", true});
  txn.success.emplace_back(Put{"k", "", 0});  // no lease: no "lease" field
  EXPECT_EQ(txn_body(txn), R"({"compare":[{"key":"aw==","target":"VERSION","result":"LESS","version":"5"},)"
                           R"({"key":"aw==","target":"MOD","result":"GREATER","mod_revision":"1"},)"
                           R"({"key":"aw==","target":"VALUE","result":"NOT_EQUAL","value":"QQ=="},)"
                           R"({"key":"aw==","target":"LEASE","result":"EQUAL","lease":"-7"}],)"
                           R"("success":[{"request_delete_range":{"key":"cC8=","range_end":"cDA="}},)"
                           R"({"request_put":{"key":"aw==","value":""}}],"failure":[]})");
}

TEST(EtcdBodies, RangeLeaseAndAuthBodies) {
  EXPECT_EQ(range_body({"foo", false}), R"({"key":"Zm9v"})");
  EXPECT_EQ(range_body({"l", true}), R"({"key":"bA==","range_end":"bQ=="})");
  // The empty prefix is every key, as clientv3 spells it: "\0" to "\0".
  EXPECT_EQ(range_body({"", true}), R"({"key":"AA==","range_end":"AA=="})");
  EXPECT_EQ(grant_body(15), R"({"TTL":"15"})");
  EXPECT_EQ(keepalive_body(4390625147199987214), R"({"ID":"4390625147199987214"})");
  EXPECT_EQ(revoke_body(12345), R"({"ID":"12345"})");
  EXPECT_EQ(authenticate_body("root", "p\"w"), R"({"name":"root","password":"p\"w"})");
  // Bytes that are not UTF-8 are replaced rather than thrown about.
  EXPECT_EQ(authenticate_body("r", "\xff"), "{\"name\":\"r\",\"password\":\"\xef\xbf\xbd\"}");
}

TEST(EtcdTxnAnswer, TheWinnerSucceedsWithAPut) {
  auto result =
      parse_txn(answer(R"("succeeded":true,"responses":[{"response_put":{"header":{"revision":"5"}}}])"));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->revision, 5);
  EXPECT_TRUE(result->succeeded);
  ASSERT_EQ(result->responses.size(), 1U);
  EXPECT_EQ(result->responses[0].kind, OpResult::Kind::kPut);
}

TEST(EtcdTxnAnswer, TheLoserHasNoSucceededButTheHoldersKey) {
  auto result = parse_txn(answer(
      R"("responses":[{"response_range":{"header":{"revision":"5"},"kvs":[{"key":"bGVhZGVy",)"
      R"("create_revision":"5","mod_revision":"5","version":"1","value":"QQ==","lease":"4390625147199987214"}],)"
      R"("count":"1"}}])"));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_FALSE(result->succeeded);
  ASSERT_EQ(result->responses.size(), 1U);
  EXPECT_EQ(result->responses[0].kind, OpResult::Kind::kRange);
  ASSERT_EQ(result->responses[0].kvs.size(), 1U);
  const KeyValue& kv = result->responses[0].kvs[0];
  EXPECT_EQ(kv.key, "leader");
  EXPECT_EQ(kv.value, "A");
  EXPECT_EQ(kv.create_revision, 5);
  EXPECT_EQ(kv.mod_revision, 5);
  EXPECT_EQ(kv.version, 1);
  EXPECT_EQ(kv.lease, 4390625147199987214);
}

TEST(EtcdTxnAnswer, AFailedFenceWithoutFailureOpsIsOnlyAHeader) {
  auto result = parse_txn(answer(""));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_FALSE(result->succeeded);
  EXPECT_TRUE(result->responses.empty());
  EXPECT_EQ(result->revision, 5);
}

TEST(EtcdTxnAnswer, DeleteCountsTheKeysAndAnEmptyRangeHasNoKvs) {
  auto result = parse_txn(answer(
      R"("succeeded":true,"responses":[{"response_delete_range":{"header":{"revision":"4"},"deleted":"1"}},)"
      R"({"response_range":{"header":{"revision":"4"}}},{"response_delete_range":{"header":{}}}])"));
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->responses.size(), 3U);
  EXPECT_EQ(result->responses[0].kind, OpResult::Kind::kDelete);
  EXPECT_EQ(result->responses[0].deleted, 1);
  EXPECT_EQ(result->responses[1].kind, OpResult::Kind::kRange);
  EXPECT_TRUE(result->responses[1].kvs.empty());
  EXPECT_EQ(result->responses[2].deleted, 0);
}

TEST(EtcdRangeAnswer, ReadsKvsAndTheRevision) {
  auto result = parse_range(answer(
      R"("kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1")"));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->revision, 5);
  ASSERT_EQ(result->kvs.size(), 1U);
  EXPECT_EQ(result->kvs[0].key, "foo");
  EXPECT_EQ(result->kvs[0].value, "bar");
  EXPECT_EQ(result->kvs[0].lease, 0);  // omitted: no lease
  auto empty = parse_range(answer(""));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->kvs.empty());
}

TEST(EtcdRangeAnswer, AnEmptyValueIsOmittedAndIntegersAreAcceptedToo) {
  auto result = parse_range(R"({"kvs":[{"key":"aw==","create_revision":3,"version":"1"}]})");
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->revision, 0);
  EXPECT_EQ(result->kvs[0].value, "");
  EXPECT_EQ(result->kvs[0].create_revision, 3);
}

TEST(EtcdLeaseAnswers, GrantKeepaliveAndALostLease) {
  auto lease = parse_grant(answer(R"("ID":"4390625147199987205","TTL":"15")"));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->id, 4390625147199987205);
  EXPECT_EQ(lease->ttl_seconds, 15);

  // Streamed: one object and a newline.
  auto alive = parse_keepalive("{\"result\":{" + std::string(kHeader) +
                               R"(,"ID":"4390625147199987214","TTL":"30"}})" + "\n");
  ASSERT_TRUE(alive) << alive.error().message;
  EXPECT_EQ(*alive, std::optional<std::int64_t>(30));

  auto gone = parse_keepalive("{\"result\":{" + std::string(kHeader) + R"(,"ID":"12345"}})" + "\n");
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ(*gone, std::nullopt);

  // A stream error in grpc-gateway's form.
  auto failed = parse_keepalive(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})");
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("etcdserver: no leader (code 14)"), std::string::npos);
}

TEST(EtcdLeaseAnswers, AGrantWithoutAnIdIsAnError) {
  auto refused = parse_grant(R"({"error":"lessor: not primary"})");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "etcd lease grant: lessor: not primary");
  EXPECT_FALSE(parse_grant(answer("")));
}

TEST(EtcdAuthAnswer, ReadsTheToken) {
  auto token = parse_authenticate(answer(R"("token":"esNpPPoeVBuJvCjS.21")"));
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(*token, "esNpPPoeVBuJvCjS.21");
  EXPECT_FALSE(parse_authenticate(answer("")));
  EXPECT_FALSE(parse_authenticate(R"({"token":7})"));
}

TEST(EtcdAnswers, GarbageAndWrongTypesAreErrorsThatNameTheField) {
  EXPECT_EQ(parse_txn("garbage").error().message, "etcd txn: the answer is not JSON");
  EXPECT_EQ(parse_txn("[]").error().message, "etcd txn: the answer is not a JSON object");
  EXPECT_EQ(parse_txn("").error().message, "etcd txn: the answer is not JSON");
  EXPECT_EQ(parse_txn(R"({"succeeded":"true"})").error().message, "etcd txn: \"succeeded\" is not a boolean");
  EXPECT_EQ(parse_txn(R"({"header":{"revision":"12x"}})").error().message,
            "etcd txn: \"revision\" is not an int64");
  EXPECT_EQ(parse_txn(R"({"header":[]})").error().message, "etcd txn: \"header\" is not an object");
  EXPECT_EQ(parse_txn(R"({"responses":{}})").error().message, "etcd txn: \"responses\" is not an array");
  EXPECT_EQ(parse_txn(R"({"responses":[{"response_txn":{}}]})").error().message,
            "etcd txn: a response of an unknown kind");
  EXPECT_EQ(parse_txn(R"({"responses":[7]})").error().message, "etcd txn: a response is not an object");
  EXPECT_EQ(parse_range(R"({"kvs":[{"key":"not base64!"}]})").error().message,
            "etcd range: \"key\" is not base64");
  EXPECT_EQ(parse_range(R"({"kvs":[{"version":1.5}]})").error().message,
            "etcd range: \"version\" is not an int64");
  EXPECT_EQ(parse_range(R"({"kvs":[{"lease":"99999999999999999999"}]})").error().message,
            "etcd range: \"lease\" is not an int64");
  EXPECT_EQ(parse_range(R"({"kvs":[{"lease":18446744073709551615}]})").error().message,
            "etcd range: \"lease\" is out of range");
  EXPECT_EQ(parse_range(R"({"kvs":["a"]})").error().message, "etcd range: a kv is not an object");
  EXPECT_EQ(parse_grant(R"({"ID":true})").error().message, "etcd lease grant: \"ID\" is not an int64");
  EXPECT_EQ(parse_keepalive(R"({"result":"x"})").error().message,
            "etcd lease keepalive: \"result\" is not an object");
  EXPECT_FALSE(parse_keepalive(""));
}

TEST(EtcdAnswers, ErrorsNeverQuoteTheBody) {
  const std::string secret = "s3cret-in-the-body";
  auto result = parse_authenticate(R"({"token":")" + secret);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message.find(secret), std::string::npos);
}

TEST(EtcdAnswers, TooLargeOrTooDeepIsRefused) {
  EXPECT_EQ(parse_range(std::string(kMaxAnswerBytes + 1, ' ')).error().message,
            "etcd range: the answer is too large");
  std::string deep = R"({"kvs":)" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(parse_range(deep).error().message, "etcd range: the answer is nested too deeply");
}

TEST(EtcdErrorMessage, OneLineFromEtcdsErrorAnswers) {
  EXPECT_EQ(
      error_message(
          R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"),
      "etcdserver: requested lease not found (code 5)");
  EXPECT_EQ(
      error_message(
          R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})"),
      "etcdserver: invalid auth token (code 16)");
  EXPECT_EQ(error_message(R"({"message":"two\nlines","code":3})"), "two lines (code 3)");
  EXPECT_EQ(error_message("Not Found\n"), "");
  EXPECT_EQ(error_message(answer("")), "");
  EXPECT_EQ(error_message(R"({"message":""})"), "");
  EXPECT_EQ(error_message(R"({"message":")" + std::string(1000, 'x') + "\"}").size(), 303U);
}

TEST(EtcdErrorMessage, TokenRejectionsAreRecognised) {
  EXPECT_TRUE(token_rejected(
      R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})"));
  EXPECT_TRUE(token_rejected(R"({"message":"etcdserver: user name is empty","code":3})"));
  EXPECT_TRUE(token_rejected(R"({"message":"etcdserver: revision of auth store is old","code":3})"));
  EXPECT_FALSE(token_rejected(
      R"({"message":"etcdserver: authentication failed, invalid user ID or password","code":3})"));
  EXPECT_FALSE(token_rejected("garbage"));
}

}  // namespace
}  // namespace unshelver::core::etcd
