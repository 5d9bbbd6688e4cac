// Nova as data: status and task_state mapped onto Unshelver's view, the action that moves a
// server from where it is, the upstream address and the instance-action verdict (contract §2 and
// its "No valid host" addendum).
#include "openstack/nova.h"

#include <gtest/gtest.h>

namespace unshelver::core::nova {
namespace {

using Kind = CloudObservation::Kind;

Server server(std::string status, std::string task = "") {
  Server s;
  s.id = "0e44cc9c";
  s.name = "gpu";
  s.status = std::move(status);
  s.task_state = std::move(task);
  return s;
}

Kind kind_of(const std::string& status, const std::string& task = "",
             SleepAction action = SleepAction::kShelve) {
  return observe(server(status, task), action).kind;
}

TEST(Nova, ParsesTheServerAnswer) {
  auto parsed = parse_server(R"({"server":{"id":"0e44","name":"gpu","status":"ERROR",
    "OS-EXT-STS:task_state":null,"OS-EXT-STS:vm_state":"error","OS-EXT-STS:power_state":0,
    "fault":{"code":500,"message":"Build of instance aborted","created":"2026-11-22T10:00:00Z"},
    "addresses":{"private":[{"addr":"10.0.0.5","version":4,"OS-EXT-IPS:type":"fixed"}]}}})");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->status, "ERROR");
  EXPECT_EQ(parsed->task_state, "");
  EXPECT_EQ(parsed->fault_message, "Build of instance aborted");
  EXPECT_EQ(observe(*parsed, SleepAction::kShelve).detail,
            "the server is in ERROR: Build of instance aborted");
  EXPECT_FALSE(parse_server(R"({"servers":[]})"));
  EXPECT_FALSE(parse_server("not json"));
}

// The status lies during shelve and unshelve; the task state tells the truth.
TEST(Nova, ParsesAServerListPageAndItsNextLink) {
  auto page = parse_server_page(R"({"servers":[
      {"id":"a1","name":"gpu-1","status":"SHELVED_OFFLOADED","OS-EXT-STS:task_state":null},
      {"id":"b2","name":"gpu-2","status":"ACTIVE","OS-EXT-STS:task_state":null,
       "addresses":{"net":[{"addr":"10.0.0.5","version":4}]}}],
    "servers_links":[{"rel":"next",
      "href":"http://nova.example:8774/v2.1/servers/detail?limit=2&marker=b2"}]})",
                                100);
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(2U, page->servers.size());
  EXPECT_EQ("a1", page->servers[0].id);
  EXPECT_EQ("SHELVED_OFFLOADED", page->servers[0].status);
  EXPECT_EQ("ACTIVE", page->servers[1].status);
  EXPECT_EQ("10.0.0.5:80", upstream_address(page->servers[1], {}, 80));
  // Only the query is kept: the next page is asked of the session's own endpoint.
  EXPECT_EQ("limit=2&marker=b2", page->next_query);
}

TEST(Nova, TheLastPageHasNoNextQuery) {
  auto page =
      parse_server_page(R"({"servers":[],"servers_links":[{"rel":"self","href":"http://x/?a=b"}]})", 10);
  ASSERT_TRUE(page);
  EXPECT_TRUE(page->servers.empty());
  EXPECT_EQ("", page->next_query);
  page = parse_server_page(R"({"servers":[{"id":"a","status":"ACTIVE"}]})", 10);
  ASSERT_TRUE(page);
  EXPECT_EQ("", page->next_query);
}

TEST(Nova, ServerListPagesAreBounded) {
  // More servers on one page than allowed.
  auto page = parse_server_page(R"({"servers":[{"id":"a","status":"ACTIVE"},{"id":"b","status":"ACTIVE"},
                                               {"id":"c","status":"ACTIVE"}]})",
                                2);
  ASSERT_FALSE(page);
  EXPECT_NE(std::string::npos, page.error().message.find("more than 2")) << page.error().message;
  // A next link without a marker, or with an oversized query.
  EXPECT_FALSE(
      parse_server_page(R"({"servers":[],"servers_links":[{"rel":"next","href":"http://x/servers"}]})", 10));
  const std::string long_query(kMaxNextQuery + 1, 'm');
  EXPECT_FALSE(parse_server_page(
      R"({"servers":[],"servers_links":[{"rel":"next","href":"http://x/servers?)" + long_query + R"("}]})",
      10));
  // Not the documented shape, or a server without id or status.
  EXPECT_FALSE(parse_server_page(R"({"server":{"id":"a","status":"ACTIVE"}})", 10));
  EXPECT_FALSE(parse_server_page("not json", 10));
  EXPECT_FALSE(parse_server_page(R"({"servers":[{"id":"a"}]})", 10));
  EXPECT_FALSE(parse_server_page(R"({"servers":["a"]})", 10));
}

TEST(Nova, TaskStateTellsTheTruthDuringShelveAndUnshelve) {
  EXPECT_EQ(kind_of("ACTIVE"), Kind::kRunning);
  for (const char* task : {"shelving", "shelving_image_pending_upload", "shelving_image_uploading"}) {
    EXPECT_EQ(kind_of("ACTIVE", task), Kind::kStopping) << task;
  }
  EXPECT_EQ(kind_of("SHELVED", "shelving_offloading"), Kind::kStopping);
  EXPECT_EQ(kind_of("SHELVED_OFFLOADED"), Kind::kStopped);
  EXPECT_EQ(kind_of("SHELVED_OFFLOADED", "unshelving"), Kind::kStarting);
  EXPECT_EQ(kind_of("SHELVED_OFFLOADED", "spawning"), Kind::kStarting);
  EXPECT_EQ(kind_of("SHUTOFF", "powering-on"), Kind::kStarting);
  EXPECT_EQ(kind_of("ACTIVE", "powering-off"), Kind::kStopping);
  EXPECT_EQ(kind_of("BUILD"), Kind::kStarting);
  EXPECT_EQ(kind_of("HARD_REBOOT"), Kind::kStarting);
  EXPECT_EQ(kind_of("ACTIVE", "migrating"), Kind::kRunning);  // unrelated tasks do not matter
  EXPECT_EQ(kind_of("UNKNOWN"), Kind::kError);
  EXPECT_EQ(kind_of("DELETED"), Kind::kError);
  EXPECT_EQ(observe(server("SHELVED_OFFLOADED", "unshelving"), SleepAction::kShelve).status,
            "SHELVED_OFFLOADED (unshelving)");
}

TEST(Nova, OffOtherwiseThanConfiguredIsNotSettled) {
  EXPECT_TRUE(observe(server("SHELVED_OFFLOADED"), SleepAction::kShelve).settled_asleep);
  EXPECT_FALSE(observe(server("SHUTOFF"), SleepAction::kShelve).settled_asleep);
  EXPECT_FALSE(observe(server("SUSPENDED"), SleepAction::kShelve).settled_asleep);
  EXPECT_TRUE(observe(server("SHUTOFF"), SleepAction::kStop).settled_asleep);
  EXPECT_TRUE(observe(server("SUSPENDED"), SleepAction::kSuspend).settled_asleep);
  EXPECT_TRUE(observe(server("SHELVED"), SleepAction::kStop).settled_asleep);
}

TEST(Nova, WakeSendsTheActionThatFitsTheState) {
  EXPECT_EQ(wake_plan(server("SHELVED_OFFLOADED"))->body, R"({"unshelve":null})");
  EXPECT_EQ(wake_plan(server("SHELVED"))->name, "unshelve");
  EXPECT_EQ(wake_plan(server("SHUTOFF"))->body, R"({"os-start":null})");
  EXPECT_EQ(wake_plan(server("SUSPENDED"))->body, R"({"resume":null})");
  EXPECT_EQ(wake_plan(server("PAUSED"))->body, R"({"unpause":null})");
  EXPECT_EQ(wake_plan(server("ACTIVE"))->kind, ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(wake_plan(server("SHELVED_OFFLOADED", "unshelving"))->kind, ActionPlan::Kind::kAlreadyThere);
  auto busy = wake_plan(server("ACTIVE", "shelving"));
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->kind, ActionPlan::Kind::kBusy);
  EXPECT_NE(busy->reason.find("shelving"), std::string::npos);
  auto broken = wake_plan(server("ERROR"));
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find("ERROR"), std::string::npos);
}

TEST(Nova, SleepFollowsTheConfiguredAction) {
  EXPECT_EQ(sleep_plan(server("ACTIVE"), SleepAction::kShelve)->body, R"({"shelve":null})");
  EXPECT_EQ(sleep_plan(server("SHUTOFF"), SleepAction::kShelve)->body, R"({"shelve":null})");
  EXPECT_EQ(sleep_plan(server("SHELVED_OFFLOADED"), SleepAction::kShelve)->kind,
            ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(sleep_plan(server("ACTIVE"), SleepAction::kStop)->body, R"({"os-stop":null})");
  EXPECT_EQ(sleep_plan(server("SHUTOFF"), SleepAction::kStop)->kind, ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(sleep_plan(server("ACTIVE"), SleepAction::kSuspend)->body, R"({"suspend":null})");
  EXPECT_EQ(sleep_plan(server("ACTIVE", "shelving"), SleepAction::kShelve)->kind,
            ActionPlan::Kind::kAlreadyThere);
  EXPECT_EQ(sleep_plan(server("SHELVED_OFFLOADED", "unshelving"), SleepAction::kShelve)->kind,
            ActionPlan::Kind::kBusy);
}

TEST(Nova, ExactNameAmongRegexMatches) {
  const std::string list =
      R"({"servers":[{"id":"a","name":"gpu-old"},{"id":"b","name":"gpu"},{"id":"c","name":"gpu2"}]})";
  EXPECT_EQ(*exact_server_id(list, "gpu"), "b");
  auto none = exact_server_id(list, "gp");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no server is named exactly \"gp\""), std::string::npos);
  auto twice = exact_server_id(R"({"servers":[{"id":"a","name":"gpu"},{"id":"b","name":"gpu"}]})", "gpu");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("2 servers are named \"gpu\" (a, b)"), std::string::npos);
  EXPECT_NE(twice.error().message.find("instance_id"), std::string::npos);
}

TEST(Nova, UpstreamPrefersNetworksThenFloatingThenIpv4) {
  Server s = server("ACTIVE");
  s.addresses = nlohmann::json::parse(R"({
    "private":[{"addr":"fd00::5","version":6,"OS-EXT-IPS:type":"fixed"},
               {"addr":"10.0.0.5","version":4,"OS-EXT-IPS:type":"fixed"},
               {"addr":"203.0.113.7","version":4,"OS-EXT-IPS:type":"floating"}],
    "gpu-net":[{"addr":"192.168.7.9","version":4,"OS-EXT-IPS:type":"fixed"}]})");
  EXPECT_EQ(upstream_address(s, {"gpu-net"}, 8080), "192.168.7.9:8080");
  EXPECT_EQ(upstream_address(s, {"missing"}, 8080), "203.0.113.7:8080");
  s.addresses = nlohmann::json::parse(
      R"({"v6":[{"addr":"fd00::5","version":6}],"private":[{"addr":"10.0.0.5","version":4}]})");
  EXPECT_EQ(upstream_address(s, {}, 80), "10.0.0.5:80");
  EXPECT_EQ(upstream_address(s, {"v6"}, 80), "[fd00::5]:80");
  s.addresses = nlohmann::json::object();
  EXPECT_EQ(upstream_address(s, {}, 80), "");
  s.access_ipv4 = "198.51.100.2";
  EXPECT_EQ(upstream_address(s, {}, 443), "198.51.100.2:443");
}

// "No valid host": the server looks untouched, only the instance action records the failure.
TEST(Nova, InstanceActionVerdict) {
  const auto with_details =
      instance_action_verdict(R"({"instanceAction":{"action":"unshelve","message":"Error",
    "events":[{"event":"schedule_instances","result":"Error","finish_time":"2026-11-22T10:00:01.000000",
               "details":"No valid host was found. There are not enough hosts available."}]}})");
  EXPECT_EQ(with_details.kind, ActionVerdict::Kind::kFailed);
  EXPECT_EQ(with_details.message, "No valid host was found. There are not enough hosts available.");

  const auto without_details =
      instance_action_verdict(R"({"instanceAction":{"action":"unshelve","message":"Error",
    "events":[{"event":"schedule_instances","result":"Error","finish_time":"2026-11-22T10:00:01.000000"}]}})");
  EXPECT_EQ(without_details.kind, ActionVerdict::Kind::kFailed);
  EXPECT_NE(without_details.message.find("No valid host"), std::string::npos);
  EXPECT_NE(without_details.message.find("schedule_instances"), std::string::npos);

  const auto running = instance_action_verdict(R"({"instanceAction":{"action":"unshelve","message":null,
    "events":[{"event":"schedule_instances","result":null,"finish_time":null}]}})");
  EXPECT_EQ(running.kind, ActionVerdict::Kind::kPending);
  const auto done = instance_action_verdict(R"({"instanceAction":{"action":"unshelve","message":null,
    "events":[{"event":"compute_unshelve_instance","result":"Success","finish_time":"2026-11-22T10:01:00.000000"}]}})");
  EXPECT_EQ(done.kind, ActionVerdict::Kind::kSucceeded);
  EXPECT_EQ(instance_action_verdict("garbage").kind, ActionVerdict::Kind::kPending);
}

}  // namespace
}  // namespace unshelver::core::nova
