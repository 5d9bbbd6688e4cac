#include "openstack/designate.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace unshelver::core::designate {
namespace {

using nlohmann::json;

IpAddress ip(std::string_view text) {
  auto parsed = parse_ip(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(IpAddress{});
}

// --- Names -----------------------------------------------------------------------------------

TEST(DesignateName, LowerCasesAndAddsTheTrailingDot) {
  EXPECT_EQ(*normalize_fqdn("WWW.Example.ORG"), "www.example.org.");
  EXPECT_EQ(*normalize_fqdn("www.example.org."), "www.example.org.");
  EXPECT_EQ(*normalize_fqdn("_acme-challenge.example.org"), "_acme-challenge.example.org.");
  EXPECT_EQ(*normalize_fqdn("*.apps.example.org"), "*.apps.example.org.");
  EXPECT_EQ(*normalize_fqdn("example.org"), "example.org.");
}

TEST(DesignateName, RefusesWhatDesignatesHostnameFieldRefuses) {
  for (const char* bad :
       {"", ".", "org", "org.", "www..example.org", "-www.example.org", "www-.example.org", "www example.org",
        "www.exa$mple.org", "a.*.example.org", "*x.example.org", "www.example.org..", "ünï.example.org"}) {
    EXPECT_FALSE(normalize_fqdn(bad).ok()) << bad;
  }
  const std::string label63(63, 'a');
  EXPECT_TRUE(normalize_fqdn(label63 + ".example.org").ok());
  EXPECT_FALSE(normalize_fqdn(label63 + "a.example.org").ok());
  // 254 characters with the trailing dot is the most Designate accepts.
  std::string name;
  while (name.size() < 250) name += "abcdefghi.";
  name.resize(249);  // "...abcdefghi" ends on a letter
  name += ".org";    // 253 characters, 254 with the dot
  ASSERT_EQ(name.size(), 253u);
  EXPECT_TRUE(normalize_fqdn(name).ok()) << normalize_fqdn(name).error().message;
  EXPECT_FALSE(normalize_fqdn("a" + name).ok());
}

// --- Addresses -------------------------------------------------------------------------------

TEST(DesignateIp, Ipv4AsInetPtonAcceptsIt) {
  EXPECT_EQ(format_ip(ip("10.0.0.5")), "10.0.0.5");
  EXPECT_EQ(format_ip(ip("0.0.0.0")), "0.0.0.0");
  EXPECT_EQ(format_ip(ip("255.255.255.255")), "255.255.255.255");
  EXPECT_EQ(ip("10.0.0.5").type, RecordType::kA);
  for (const char* bad :
       {"", "10.0.0", "10.0.0.5.6", "10.0.0.256", "010.0.0.5", "10.0.0.05", "10.0.0.5 ", " 10.0.0.5",
        "10..0.5", "10.0.0.", "1e.0.0.5", "0x10.0.0.5", "1000.0.0.5", "10.0.0.-1"}) {
    EXPECT_FALSE(parse_ip(bad).has_value()) << bad;
  }
}

TEST(DesignateIp, Ipv6AsInetPtonAcceptsIt) {
  EXPECT_EQ(ip("2001:db8::1").type, RecordType::kAAAA);
  EXPECT_EQ(format_ip(ip("2001:DB8:0:0:0:0:0:1")), "2001:db8::1");
  EXPECT_EQ(format_ip(ip("::")), "::");
  EXPECT_EQ(format_ip(ip("::1")), "::1");
  EXPECT_EQ(format_ip(ip("1::")), "1::");
  EXPECT_EQ(format_ip(ip("fe80::0001:0:0:2")), "fe80::1:0:0:2");
  EXPECT_EQ(format_ip(ip("1:0:0:2:0:0:0:3")), "1:0:0:2::3");       // the longest run
  EXPECT_EQ(format_ip(ip("1:0:0:2:0:0:3:4")), "1::2:0:0:3:4");     // the first of equal runs
  EXPECT_EQ(format_ip(ip("1:0:2:3:4:5:6:7")), "1:0:2:3:4:5:6:7");  // a single zero stays
  EXPECT_EQ(format_ip(ip("1:2:3:4:5:6:7::")), "1:2:3:4:5:6:7:0");
  EXPECT_EQ(format_ip(ip("::ffff:10.0.0.5")), "::ffff:10.0.0.5");
  EXPECT_EQ(format_ip(ip("::FFFF:a00:5")), "::ffff:10.0.0.5");
  EXPECT_EQ(format_ip(ip("64:ff9b::10.0.0.5")), "64:ff9b::a00:5");
  EXPECT_EQ(format_ip(ip("1:2:3:4:5:6:1.2.3.4")), "1:2:3:4:5:6:102:304");
  EXPECT_EQ(ip("2001:db8::1"), ip("2001:0db8:0000::0001"));
  for (const char* bad : {":", ":::", "1:::2", "1::2::3", ":1::2", "1::2:", "1:2:3:4:5:6:7",
                          "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "12345::1", "g::1", "::1%eth0", "[::1]",
                          "1.2.3.4::", "::1.2.3.4:5", "::256.0.0.1", "1:2:3:4:5:6:7:1.2.3.4", " ::1"}) {
    EXPECT_FALSE(parse_ip(bad).has_value()) << bad;
  }
  // inet_pton reads a C string; what follows an embedded NUL must not be ignored.
  EXPECT_FALSE(parse_ip(std::string_view("1.2.3.4\0junk", 12)).has_value());
  EXPECT_FALSE(parse_ip(std::string_view("::1\0", 4)).has_value());
}

// --- Command line ----------------------------------------------------------------------------

TEST(DesignateArguments, EnsureWithFlagsAnywhere) {
  auto request = parse_ensure_arguments({"--json", "ensure", "WWW.example.org", "--ttl", "60", "10.0.0.5",
                                         "--config=/etc/unshelver.yaml", "--wait-seconds", "0"});
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->fqdn, "www.example.org.");
  EXPECT_EQ(format_ip(request->address), "10.0.0.5");
  EXPECT_EQ(request->ttl, 60);
  EXPECT_EQ(request->config_path, "/etc/unshelver.yaml");
  EXPECT_EQ(request->wait, std::chrono::seconds(0));
  EXPECT_TRUE(request->json);

  auto defaults = parse_ensure_arguments({"ensure", "www.example.org.", "2001:db8::5", "-c", "c.yaml"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->ttl.has_value());
  EXPECT_EQ(defaults->wait, kDefaultWait);
  EXPECT_EQ(defaults->address.type, RecordType::kAAAA);
  EXPECT_EQ(defaults->config_path, "c.yaml");
  EXPECT_TRUE(parse_ensure_arguments({"--help"})->help);
}

TEST(DesignateArguments, UsageErrors) {
  using Args = std::vector<std::string>;
  for (const Args& args :
       {Args{}, Args{"ensure"}, Args{"ensure", "www.example.org"},
        Args{"ensure", "www.example.org", "10.0.0.5", "extra"}, Args{"delete", "a.b", "10.0.0.5"},
        Args{"ensure", "www..example.org", "10.0.0.5"}, Args{"ensure", "www.example.org", "10.0.0"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--ttl"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--ttl", "0"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--ttl", "5m"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--ttl", "2147483648"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--wait-seconds", "-1"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--log-level", "loud"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--config"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--json=yes"},
        Args{"ensure", "www.example.org", "10.0.0.5", "--force"}}) {
    EXPECT_FALSE(parse_ensure_arguments(args).ok()) << ::testing::PrintToString(args);
  }
  EXPECT_EQ(parse_ensure_arguments({"ensure", "www.example.org", "10.0.0.5", "--force"}).error().message,
            "unknown option --force for `dns`");
}

// --- Zones -----------------------------------------------------------------------------------

// The api-ref's list-zones-response.json, with a second zone and a next link.
constexpr const char* kZonePage = R"({"zones":[
  {"id":"a86dba58-0043-4cc6-a1bb-69d5e86f3ca3","name":"example.org.","email":"joe@example.org","ttl":7200,
   "serial":1404757531,"status":"ACTIVE","action":"CREATE","type":"PRIMARY","version":1,
   "links":{"self":"https://127.0.0.1:9001/v2/zones/a86dba58-0043-4cc6-a1bb-69d5e86f3ca3"}},
  {"id":"b1","name":"Lab.Example.ORG.","status":"PENDING","type":"PRIMARY"}],
 "links":{"self":"http://127.0.0.1:9001/v2/zones","next":"http://designate.internal:9001/v2/zones?limit=2&marker=b1"},
 "metadata":{"total_count":3}})";

TEST(DesignateZones, ParsesAPageAndItsNextLink) {
  auto page = parse_zone_page(kZonePage);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->zones.size(), 2u);
  EXPECT_EQ(page->zones[0].id, "a86dba58-0043-4cc6-a1bb-69d5e86f3ca3");
  EXPECT_EQ(page->zones[0].name, "example.org.");
  EXPECT_EQ(page->zones[0].status, "ACTIVE");
  EXPECT_EQ(page->zones[1].name, "lab.example.org.");
  EXPECT_EQ(next_page_path(page->next), "/v2/zones?limit=2&marker=b1");

  auto last = parse_zone_page(R"({"zones":[],"links":{"self":"x"},"metadata":{"total_count":0}})");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->zones.empty());
  EXPECT_EQ(next_page_path(last->next), "");
  EXPECT_FALSE(parse_zone_page("<html>").ok());
  EXPECT_FALSE(parse_zone_page(R"({"zones":{}})").ok());
}

TEST(DesignateZones, NextPagePathKeepsTheCatalogEndpoint) {
  EXPECT_EQ(next_page_path("https://dns.example.com/dns/v2/zones?marker=x"), "/v2/zones?marker=x");
  EXPECT_EQ(next_page_path("/v2/zones?marker=x"), "/v2/zones?marker=x");
  EXPECT_EQ(next_page_path("https://dns.example.com/zones?marker=x"), "");
}

TEST(DesignateZones, ChoosesTheLongestSuffixOnALabelBoundary) {
  const std::vector<Zone> zones = {{"1", "org.", "ACTIVE", "PRIMARY"},
                                   {"2", "example.org.", "ACTIVE", "PRIMARY"},
                                   {"3", "lab.example.org.", "ACTIVE", "PRIMARY"},
                                   {"4", "ample.org.", "ACTIVE", "PRIMARY"},
                                   {"5", "gone.example.org.", "DELETED", "PRIMARY"}};
  EXPECT_EQ(choose_zone("www.lab.example.org.", zones)->id, "3");
  EXPECT_EQ(choose_zone("www.example.org.", zones)->id, "2");
  EXPECT_EQ(choose_zone("example.org.", zones)->id, "2");  // the apex is in its own zone
  EXPECT_EQ(choose_zone("WWW.Example.Org.", zones)->id, "2");
  EXPECT_EQ(choose_zone("x.gone.example.org.", zones)->id, "2");  // a zone being deleted is skipped
  EXPECT_EQ(choose_zone("www.sample.org.", zones)->id, "1");      // "ample.org." is not a label suffix
  EXPECT_FALSE(choose_zone("www.example.com.", zones).has_value());
  EXPECT_FALSE(choose_zone("www.example.org.", {}).has_value());
}

TEST(DesignateZones, CandidateNamesLongestFirst) {
  EXPECT_EQ(candidate_zone_names("www.example.org."),
            (std::vector<std::string>{"www.example.org.", "example.org.", "org."}));
}

// --- Recordsets ------------------------------------------------------------------------------

// The api-ref's create-recordset response (contract §4).
constexpr const char* kRecordSet = R"({"id":"f7b10e9b-0cae-4a91-b162-562bc6096648","zone_id":"2150b1bf",
  "zone_name":"example.org.","name":"www.example.org.","type":"A","ttl":3600,"records":["10.1.0.2"],
  "status":"PENDING","action":"CREATE","version":1,"description":"optional",
  "created_at":"2014-10-24T19:59:44.000000","updated_at":null,"project_id":"4335",
  "links":{"self":"https://127.0.0.1:9001/v2/zones/2150b1bf/recordsets/f7b10e9b"}})";

TEST(DesignateRecordSets, ParsesOneAndAList) {
  auto one = parse_recordset(kRecordSet);
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->id, "f7b10e9b-0cae-4a91-b162-562bc6096648");
  EXPECT_EQ(one->zone_id, "2150b1bf");
  EXPECT_EQ(one->type, "A");
  EXPECT_EQ(one->ttl, 3600);
  EXPECT_EQ(one->records, std::vector<std::string>{"10.1.0.2"});
  EXPECT_EQ(parse_record_status(one->status), RecordStatus::kPending);

  auto list = parse_recordsets(std::string(R"({"recordsets":[)") + kRecordSet +
                               R"(,{"id":"x","name":"a.example.org.","type":"A","ttl":null,"records":[],
                                  "status":"ACTIVE"}],"links":{},"metadata":{"total_count":2}})");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_FALSE((*list)[1].ttl.has_value());
  EXPECT_FALSE(parse_recordsets(R"({"code":500})").ok());
  EXPECT_FALSE(parse_recordset(R"({"name":"x"})").ok());
}

TEST(DesignateRecordSets, Statuses) {
  EXPECT_EQ(poll_verdict(parse_record_status("ACTIVE")), PollVerdict::kDone);
  EXPECT_EQ(poll_verdict(parse_record_status("PENDING")), PollVerdict::kWait);
  EXPECT_EQ(poll_verdict(parse_record_status("SOMETHING")), PollVerdict::kWait);
  EXPECT_EQ(poll_verdict(parse_record_status("ERROR")), PollVerdict::kFailed);
  EXPECT_EQ(poll_verdict(parse_record_status("DELETED")), PollVerdict::kFailed);
}

TEST(DesignateRecordSets, Paths) {
  EXPECT_EQ(recordsets_query_path("z1", "www.example.org.", RecordType::kA),
            "/v2/zones/z1/recordsets?name=www.example.org.&type=A");
  EXPECT_EQ(recordsets_query_path("z1", "*.example.org.", RecordType::kAAAA),
            "/v2/zones/z1/recordsets?name=%2A.example.org.&type=AAAA");
  EXPECT_EQ(recordset_path("z1", "r/1"), "/v2/zones/z1/recordsets/r%2F1");
}

RecordSet recordset(std::string name, std::string type, std::optional<int> ttl,
                    std::vector<std::string> records, std::string status = "ACTIVE") {
  RecordSet r;
  r.id = "rs-" + name + type;
  r.zone_id = "z";
  r.name = std::move(name);
  r.type = std::move(type);
  r.ttl = ttl;
  r.records = std::move(records);
  r.status = std::move(status);
  return r;
}

TEST(DesignatePlan, CreatesWhenNothingMatchesExactly) {
  // The lookup's '*' wildcard and a recordset of the other type do not count.
  auto plan = plan_recordset("www.example.org.", ip("10.0.0.5"), std::nullopt,
                             {recordset("x.www.example.org.", "A", 300, {"10.0.0.5"}),
                              recordset("www.example.org.", "AAAA", 300, {"2001:db8::5"})});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->kind, Plan::Kind::kCreate);
  EXPECT_EQ(plan->ttl, kDefaultTtl);
  EXPECT_EQ(json::parse(plan->body),
            json::parse(R"({"name":"www.example.org.","type":"A","ttl":300,"records":["10.0.0.5"]})"));

  auto with_ttl = plan_recordset("www.example.org.", ip("2001:DB8::0:5"), 60, {});
  EXPECT_EQ(json::parse(with_ttl->body),
            json::parse(R"({"name":"www.example.org.","type":"AAAA","ttl":60,"records":["2001:db8::5"]})"));
}

TEST(DesignatePlan, UnchangedWhenTheAddressIsTheSameWrittenDifferently) {
  auto plan = plan_recordset("www.example.org.", ip("2001:db8::5"), std::nullopt,
                             {recordset("www.example.org.", "AAAA", 3600, {"2001:0DB8:0:0::5"}, "PENDING")});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->kind, Plan::Kind::kUnchanged);
  EXPECT_EQ(plan->recordset_id, "rs-www.example.org.AAAA");
  EXPECT_EQ(plan->ttl, 3600);
  // Without --ttl the TTL is not compared; with the same --ttl nothing changes either.
  EXPECT_EQ(plan_recordset("www.example.org.", ip("10.0.0.5"), 3600,
                           {recordset("www.example.org.", "A", 3600, {"10.0.0.5"})})
                ->kind,
            Plan::Kind::kUnchanged);
}

TEST(DesignatePlan, UpdatesOtherRecordsOrTtlAndLeavesTtlAloneWithoutTheFlag) {
  auto records = plan_recordset("www.example.org.", ip("10.0.0.5"), std::nullopt,
                                {recordset("www.example.org.", "A", 3600, {"10.0.0.4"})});
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->kind, Plan::Kind::kUpdate);
  EXPECT_EQ(records->recordset_id, "rs-www.example.org.A");
  EXPECT_EQ(json::parse(records->body), json::parse(R"({"records":["10.0.0.5"]})"));
  EXPECT_EQ(records->ttl, 3600);
  EXPECT_EQ(records->reason, "records 10.0.0.4 -> 10.0.0.5");

  auto extra = plan_recordset("www.example.org.", ip("10.0.0.5"), std::nullopt,
                              {recordset("www.example.org.", "A", 300, {"10.0.0.5", "10.0.0.6"})});
  EXPECT_EQ(extra->kind, Plan::Kind::kUpdate);
  EXPECT_EQ(extra->reason, "records 10.0.0.5,10.0.0.6 -> 10.0.0.5");

  auto ttl = plan_recordset("www.example.org.", ip("10.0.0.5"), 60,
                            {recordset("www.example.org.", "A", std::nullopt, {"10.0.0.5"})});
  EXPECT_EQ(ttl->kind, Plan::Kind::kUpdate);
  EXPECT_EQ(json::parse(ttl->body), json::parse(R"({"records":["10.0.0.5"],"ttl":60})"));
  EXPECT_EQ(ttl->reason, "ttl the zone's default -> 60");
  EXPECT_EQ(ttl->ttl, 60);

  auto error = plan_recordset("www.example.org.", ip("10.0.0.5"), std::nullopt,
                              {recordset("www.example.org.", "A", 300, {"10.0.0.5"}, "ERROR")});
  EXPECT_EQ(error->kind, Plan::Kind::kUpdate);
  EXPECT_EQ(error->reason, "the recordset was in ERROR");
}

TEST(DesignatePlan, RefusesToGuessBetweenTwoMatches) {
  auto plan = plan_recordset("www.example.org.", ip("10.0.0.5"), std::nullopt,
                             {recordset("www.example.org.", "A", 300, {"10.0.0.4"}),
                              recordset("www.example.org.", "A", 300, {"10.0.0.6"})});
  EXPECT_FALSE(plan.ok());
}

TEST(DesignatePlan, PollDelayGrowsFromHalfASecondToTwo) {
  EXPECT_EQ(poll_delay(1), std::chrono::milliseconds(500));
  EXPECT_EQ(poll_delay(2), std::chrono::milliseconds(750));
  EXPECT_EQ(poll_delay(3), std::chrono::milliseconds(1125));
  EXPECT_EQ(poll_delay(4), std::chrono::milliseconds(1687));
  EXPECT_EQ(poll_delay(5), std::chrono::milliseconds(2000));
  EXPECT_EQ(poll_delay(1000), std::chrono::milliseconds(2000));
}

TEST(DesignatePlan, DuplicateRecordset) {
  EXPECT_TRUE(is_duplicate_recordset(
      409, R"({"code":409,"type":"duplicate_recordset","message":"Duplicate RecordSet"})"));
  EXPECT_TRUE(is_duplicate_recordset(409, "conflict"));
  EXPECT_FALSE(is_duplicate_recordset(409, R"({"code":409,"type":"duplicate_zone"})"));
  EXPECT_FALSE(is_duplicate_recordset(400, R"({"type":"duplicate_recordset"})"));
}

TEST(DesignateOutcome, LineAndJson) {
  Outcome outcome{"created", "www.example.org.", ip("10.0.0.5"), 300, "example.org.", "z1", "r1", "ACTIVE",
                  ""};
  EXPECT_EQ(outcome_line(outcome),
            "created www.example.org. A 10.0.0.5 (ttl 300) in zone example.org.: ACTIVE");
  outcome.verb = "updated";
  outcome.reason = "records 10.0.0.4 -> 10.0.0.5";
  outcome.ttl.reset();
  EXPECT_EQ(outcome_line(outcome),
            "updated www.example.org. A 10.0.0.5 (ttl the zone's default) in zone example.org.: ACTIVE "
            "(records 10.0.0.4 -> 10.0.0.5)");
  const json object = json::parse(outcome_json(outcome));
  EXPECT_EQ(object["result"], "updated");
  EXPECT_EQ(object["records"], json::array({"10.0.0.5"}));
  EXPECT_TRUE(object["ttl"].is_null());
  EXPECT_EQ(object["zone_id"], "z1");
  EXPECT_EQ(object["recordset_id"], "r1");
}

}  // namespace
}  // namespace unshelver::core::designate
