// Exoscale as data: the request signature against the contract's four test vectors, the
// instance and operation answers, the error texts, the state mapping and the action plans
// (contract §5).
#include "exoscale/exoscale.h"

#include <gtest/gtest.h>

namespace unshelver::core::exoscale {
namespace {

using Kind = CloudObservation::Kind;

const std::string kKey = "EXOxxxxxxxxxxxxxxxxxxxxxxxx";
const std::string kSecret(43, 'X');
constexpr std::int64_t kExpires = 3376684800;
constexpr std::string_view kInstance = "85664334-0fd5-47bd-94a1-b4f40b1d2eb7";

std::string expected_header(std::string_view signature, std::string_view signed_args = "") {
  return "EXO2-HMAC-SHA256 credential=" + kKey +
         (signed_args.empty() ? "" : ",signed-query-args=" + std::string(signed_args)) +
         ",expires=3376684800,signature=" + std::string(signature);
}

TEST(ExoscaleSignature, GetWithoutQueryMatchesEgoscalesVector) {
  EXPECT_EQ(signature_message("GET", "/v2/zone", {}, "", kExpires), "GET /v2/zone\n\n\n\n3376684800");
  EXPECT_EQ(authorization(kKey, kSecret, "GET", "/v2/zone", {}, "", kExpires),
            expected_header("Ntbq/p0HVmA3Zg1HHY+Lq1vjFGi7HeMrrgXDS5jRNlY="));
}

TEST(ExoscaleSignature, QueryValuesAreSignedInTheOrderOfTheirNames) {
  // Given out of order: the signature and the header list them by name.
  const std::vector<QueryArg> query = {{"k2", "v2"}, {"k1", "v1"}};
  EXPECT_EQ(signature_message("GET", "/v2/zone", query, "", kExpires), "GET /v2/zone\n\nv1v2\n\n3376684800");
  EXPECT_EQ(authorization(kKey, kSecret, "GET", "/v2/zone", query, "", kExpires),
            expected_header("iqOBz13+44L5j0uJclE8hmUhQQcvtCSoPEOXYK6liqY=", "k1;k2"));
}

TEST(ExoscaleSignature, RepeatedQueryParametersAreNotSigned) {
  const std::vector<QueryArg> query = {{"k1", "v1"}, {"k2", "v2"}, {"labels", "a"}, {"labels", "b"}};
  EXPECT_EQ(authorization(kKey, kSecret, "GET", "/v2/zone", query, "", kExpires),
            expected_header("iqOBz13+44L5j0uJclE8hmUhQQcvtCSoPEOXYK6liqY=", "k1;k2"));
}

TEST(ExoscaleSignature, StartWithItsBodyMatchesTheContractVector) {
  const std::string path = "/v2/instance/" + std::string(kInstance) + ":start";
  EXPECT_EQ(authorization(kKey, kSecret, "PUT", path, {}, "{}", kExpires),
            expected_header("NLBX/U+Iulls9loQV6mBTxHnNDVXXVvEevLz8X+qYNU="));
}

TEST(ExoscaleSignature, StopWithoutBodyMatchesTheContractVector) {
  const std::string path = "/v2/instance/" + std::string(kInstance) + ":stop";
  EXPECT_EQ(signature_message("PUT", path, {}, "", kExpires),
            "PUT /v2/instance/85664334-0fd5-47bd-94a1-b4f40b1d2eb7:stop\n\n\n\n3376684800");
  EXPECT_EQ(authorization(kKey, kSecret, "PUT", path, {}, "", kExpires),
            expected_header("lsoIOlegdWdI0sIiSZrygQCnUxe2+x5NbIXI1a4j+8s="));
}

TEST(ExoscaleSignature, ExpiresTenMinutesAfterTheInjectedClock) {
  const TimePoint now{std::chrono::seconds(1'700'000'000) + std::chrono::milliseconds(900)};
  EXPECT_EQ(expiry_for(now), 1'700'000'600);
}

TEST(ExoscaleZone, AcceptsZoneNamesAndRefusesOtherShapes) {
  EXPECT_EQ(check_zone("ch-gva-2"), "");
  EXPECT_EQ(check_zone("de-fra-1"), "");
  EXPECT_EQ(check_zone("at-vie-2"), "");
  EXPECT_EQ(check_zone("ch-dk-2"), "");
  EXPECT_NE(check_zone("CH-GVA-2"), "");
  EXPECT_NE(check_zone("gva2"), "");
  EXPECT_NE(check_zone("ch-gva-"), "");
  EXPECT_NE(check_zone("ch-gva-2/../x"), "");
  EXPECT_NE(check_zone(""), "");
  EXPECT_EQ(api_url_for(kDefaultApiUrl, "de-fra-1"), "https://api-de-fra-1.exoscale.com/v2");
  EXPECT_EQ(check_api_url(kDefaultApiUrl), "");
  EXPECT_EQ(check_api_url("http://127.0.0.1:8080/v2"), "");
  EXPECT_NE(check_api_url("api.exoscale.com"), "");
  EXPECT_NE(check_api_url("https://user:pw@api.exoscale.com/v2"), "");
}

TEST(ExoscaleInstance, ParsesTheInstanceAnswer) {
  auto parsed = parse_instance(R"({"id":"8566","name":"gpu","state":"running","public-ip":"194.182.1.2",
    "instance-type":{"id":"t"},"labels":{}})");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->id, "8566");
  EXPECT_EQ(parsed->name, "gpu");
  EXPECT_EQ(parsed->state, "running");
  EXPECT_EQ(upstream_address(*parsed, 8080), "194.182.1.2:8080");
  auto no_ip = parse_instance(R"({"id":"8566","name":"gpu","state":"stopped","public-ip":null})");
  ASSERT_TRUE(no_ip);
  EXPECT_EQ(upstream_address(*no_ip, 80), "");
  EXPECT_FALSE(parse_instance(R"({"instances":[]})"));
  EXPECT_FALSE(parse_instance("not json"));
}

TEST(ExoscaleInstance, FindsTheInstanceByIdOrExactName) {
  const std::string list = R"({"instances":[{"id":"a1","name":"gpu"},{"id":"b2","name":"gpu-old"},
    {"id":"c3","name":"twin"},{"id":"d4","name":"twin"}]})";
  EXPECT_EQ(find_instance_id(list, "gpu").value(), "a1");
  EXPECT_EQ(find_instance_id(list, "b2").value(), "b2");
  auto missing = find_instance_id(list, "gp");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no instance"), std::string::npos);
  auto twice = find_instance_id(list, "twin");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("c3, d4"), std::string::npos);
  EXPECT_NE(twice.error().message.find("instance_id"), std::string::npos);
  EXPECT_FALSE(find_instance_id(R"({"servers":[]})", "gpu"));
}

TEST(ExoscaleInstanceList, ListsEveryInstanceWithTheFieldsAnObservationNeeds) {
  // list-instances items carry id, name, state and public-ip as get-instance does (contract §5).
  auto listed = parse_instance_list(R"({"instances":[
    {"id":"a1","name":"gpu","state":"running","public-ip":"194.182.1.2","instance-type":{"id":"t"}},
    {"id":"b2","name":"cpu","state":"stopped","public-ip":null,"labels":{}}]})");
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 2U);
  EXPECT_EQ((*listed)[0].id, "a1");
  EXPECT_EQ((*listed)[0].state, "running");
  EXPECT_EQ(upstream_address((*listed)[0], 8080), "194.182.1.2:8080");
  EXPECT_EQ((*listed)[1].name, "cpu");
  EXPECT_EQ(observe((*listed)[1]).kind, Kind::kStopped);
  EXPECT_EQ(upstream_address((*listed)[1], 80), "");
}

TEST(ExoscaleInstanceList, AnEmptyListIsAListOfNone) {
  auto listed = parse_instance_list(R"({"instances":[]})");
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_TRUE(listed->empty());
}

TEST(ExoscaleInstanceList, RefusesWrongTypesAndWhatIsNotAList) {
  EXPECT_FALSE(parse_instance_list("not json"));
  EXPECT_FALSE(parse_instance_list(R"([])"));
  EXPECT_FALSE(parse_instance_list(R"({"servers":[]})"));
  EXPECT_FALSE(parse_instance_list(R"({"instances":{"id":"a1","state":"running"}})"));
  EXPECT_FALSE(parse_instance_list(R"({"instances":["a1"]})"));
  auto numeric_state = parse_instance_list(R"({"instances":[{"id":"a1","state":3}]})");
  ASSERT_FALSE(numeric_state);
  EXPECT_NE(numeric_state.error().message.find("id and state"), std::string::npos);
  EXPECT_FALSE(parse_instance_list(R"({"instances":[{"id":7,"state":"running"}]})"));
  EXPECT_FALSE(parse_instance_list(R"({"instances":[{"id":"a1","state":"running"},{"name":"x"}]})"));
}

TEST(ExoscaleInstanceList, RefusesMoreInstancesThanTheBound) {
  const std::string three = R"({"instances":[{"id":"a","state":"stopped"},{"id":"b","state":"stopped"},
    {"id":"c","state":"stopped"}]})";
  EXPECT_TRUE(parse_instance_list(three, 3));
  auto over = parse_instance_list(three, 2);
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message.find("3 instances, more than 2"), std::string::npos);
}

TEST(ExoscaleOperation, ParsesPendingAndFailedOperations) {
  auto pending = parse_operation(R"({"id":"4c55","state":"pending",
    "reference":{"id":"8566","link":"/v2/instance/8566","command":"get-instance"}})");
  ASSERT_TRUE(pending);
  EXPECT_TRUE(pending->pending());
  EXPECT_EQ(operation_failure(*pending, "start"), "");
  auto failed = parse_operation(R"({"id":"4c55","state":"failure","reason":"unavailable",
    "message":"no capacity for gpu3 in ch-gva-2"})");
  ASSERT_TRUE(failed);
  EXPECT_EQ(operation_failure(*failed, "start"),
            "start failed (unavailable): no capacity for gpu3 in ch-gva-2");
  auto timeout = parse_operation(R"({"id":"4c55","state":"timeout"})");
  ASSERT_TRUE(timeout);
  EXPECT_EQ(operation_failure(*timeout, "stop"), "stop timed out at Exoscale");
  EXPECT_FALSE(parse_operation("[]"));
}

TEST(ExoscaleErrors, ReadsMessageErrorOrProblemDetails) {
  EXPECT_EQ(error_message_of(R"({"message":"Invalid request signature"})"), "Invalid request signature");
  EXPECT_EQ(error_message_of(R"({"error":"Forbidden"})"), "Forbidden");
  EXPECT_EQ(error_message_of(R"({"title":"Not Found","detail":"no such instance"})"),
            "Not Found: no such instance");
  EXPECT_EQ(error_message_of(R"({"detail":"busy"})"), "busy");
  EXPECT_EQ(error_message_of("<html>bad gateway</html>"), "");
}

Kind kind_of(std::string state) {
  return observe(Instance{"id", "gpu", std::move(state), ""}).kind;
}

TEST(ExoscaleState, MapsEveryDocumentedState) {
  EXPECT_EQ(kind_of("running"), Kind::kRunning);
  EXPECT_EQ(kind_of("migrating"), Kind::kRunning);
  EXPECT_EQ(kind_of("starting"), Kind::kStarting);
  EXPECT_EQ(kind_of("stopping"), Kind::kStopping);
  EXPECT_EQ(kind_of("stopped"), Kind::kStopped);
  for (std::string state : {"error", "expunging", "destroying", "destroyed", "levitating"}) {
    const CloudObservation observation = observe(Instance{"id", "gpu", state, ""});
    EXPECT_EQ(observation.kind, Kind::kError) << state;
    EXPECT_FALSE(observation.detail.empty()) << state;
    EXPECT_EQ(observation.status, state);
  }
  EXPECT_EQ(observe(Instance{"id", "gpu", "destroying", ""}).detail,
            "the instance is being destroyed (state destroying)");
  EXPECT_EQ(observe(Instance{"id", "gpu", "destroyed", ""}).detail, "the instance was destroyed");
}

ActionPlan::Kind wake_kind(std::string state) {
  return wake_plan(Instance{"id", "gpu", std::move(state), ""}).value().kind;
}
ActionPlan::Kind sleep_kind(std::string state) {
  return sleep_plan(Instance{"id", "gpu", std::move(state), ""}).value().kind;
}

TEST(ExoscalePlan, StartsOnlyAStoppedInstanceAndStopsOnlyARunningOne) {
  EXPECT_EQ(wake_kind("stopped"), ActionPlan::Kind::kSend);
  EXPECT_EQ(wake_plan(Instance{"id", "gpu", "stopped", ""}).value().name, "start");
  EXPECT_EQ(wake_kind("running"), ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(wake_kind("starting"), ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(wake_kind("migrating"), ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(wake_kind("stopping"), ActionPlan::Kind::kBusy);
  EXPECT_FALSE(wake_plan(Instance{"id", "gpu", "destroyed", ""}));

  EXPECT_EQ(sleep_kind("running"), ActionPlan::Kind::kSend);
  EXPECT_EQ(sleep_plan(Instance{"id", "gpu", "running", ""}).value().name, "stop");
  EXPECT_EQ(sleep_kind("stopped"), ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(sleep_kind("stopping"), ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(sleep_kind("starting"), ActionPlan::Kind::kBusy);
  EXPECT_EQ(sleep_kind("migrating"), ActionPlan::Kind::kBusy);
  EXPECT_FALSE(sleep_plan(Instance{"id", "gpu", "error", ""}));
}

}  // namespace
}  // namespace unshelver::core::exoscale
