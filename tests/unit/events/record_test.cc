// Tests of the audit trail's record (events/record.h): the action names, the ids, the Swift
// object names, the JSON line (its field order and its round trip), lines the Python unshelver
// wrote, and how much of a log file is intact after a crash.
#include "events/record.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/state_machine.h"
#include "base/time_format.h"

namespace unshelver::core {
namespace {

using S = BackendState;
using E = BackendEvent;

TimePoint at(const char* rfc3339) {
  const auto parsed = parse_rfc3339(rfc3339);
  EXPECT_TRUE(parsed.has_value()) << rfc3339;
  return parsed.value_or(TimePoint{});
}

std::string action(S from, S to, E event) {
  const Transition change{from, to, event, "actor", "detail", at("2026-11-22T10:15:00Z")};
  return action_for(change);
}

EventRecord sample_record() {
  EventRecord record;
  record.seq = 12;
  record.at = at("2026-11-22T10:15:00.123456Z");
  record.id = make_event_id(record.at, record.seq, 0x3fa9c2d1u);
  record.backend = "gpu";
  record.instance_name = "gpu-vm";
  record.action = "unshelve_requested";
  record.actor = "public-button";
  record.from = "asleep";
  record.to = "waking";
  record.detail = "wake button from 127.0.0.1";
  return record;
}

void expect_same_record(const EventRecord& expected, const EventRecord& actual) {
  EXPECT_EQ(expected.seq, actual.seq);
  EXPECT_EQ(expected.id, actual.id);
  EXPECT_EQ(expected.at, actual.at);
  EXPECT_EQ(expected.backend, actual.backend);
  EXPECT_EQ(expected.instance_name, actual.instance_name);
  EXPECT_EQ(expected.action, actual.action);
  EXPECT_EQ(expected.actor, actual.actor);
  EXPECT_EQ(expected.from, actual.from);
  EXPECT_EQ(expected.to, actual.to);
  EXPECT_EQ(expected.detail, actual.detail);
  EXPECT_EQ(expected.count, actual.count);
  EXPECT_EQ(expected.dropped, actual.dropped);
}

// Sets TZ for the lifetime of the object, so that a local-time mistake shows.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* zone) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    ::setenv("TZ", zone, 1);
    ::tzset();
  }
  ~ScopedTimeZone() {
    if (old_) {
      ::setenv("TZ", old_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  ScopedTimeZone(const ScopedTimeZone&) = delete;
  ScopedTimeZone& operator=(const ScopedTimeZone&) = delete;

 private:
  std::optional<std::string> old_;
};

// --- action_for ------------------------------------------------------------------------------

TEST(EventRecordAction, WakeRequestedIsUnshelveRequested) {
  EXPECT_EQ(action(S::kAsleep, S::kWaking, E::kWakeRequested), "unshelve_requested");
  EXPECT_EQ(action(S::kError, S::kWaking, E::kWakeRequested), "unshelve_requested");
}

TEST(EventRecordAction, CloudRunningAfterAWakeIsCloudRunning) {
  // The contract (issue 6): "cloud_running (waking→booting)"; tests/integration/test_events.py
  // expects the same name.
  EXPECT_EQ(action(S::kWaking, S::kBooting, E::kCloudRunning), "cloud_running");
  EXPECT_EQ(action(S::kSleeping, S::kBooting, E::kCloudRunning), "cloud_running");
  EXPECT_EQ(action(S::kError, S::kBooting, E::kCloudRunning), "cloud_running");
}

TEST(EventRecordAction, HealthPassedIsUnshelveComplete) {
  EXPECT_EQ(action(S::kBooting, S::kReady, E::kHealthPassed), "unshelve_complete");
}

TEST(EventRecordAction, HealthLostIsHealthLost) {
  EXPECT_EQ(action(S::kReady, S::kBooting, E::kHealthLost), "health_lost");
}

TEST(EventRecordAction, SleepRequestedIsShelveRequested) {
  EXPECT_EQ(action(S::kReady, S::kSleeping, E::kSleepRequested), "shelve_requested");
  EXPECT_EQ(action(S::kBooting, S::kSleeping, E::kSleepRequested), "shelve_requested");
  EXPECT_EQ(action(S::kError, S::kSleeping, E::kSleepRequested), "shelve_requested");
}

TEST(EventRecordAction, CloudStoppedAfterASleepIsShelveCompleteOtherwiseCloudStopped) {
  EXPECT_EQ(action(S::kSleeping, S::kAsleep, E::kCloudStopped), "shelve_complete");
  EXPECT_EQ(action(S::kReady, S::kAsleep, E::kCloudStopped), "cloud_stopped");
  EXPECT_EQ(action(S::kBooting, S::kAsleep, E::kCloudStopped), "cloud_stopped");
  EXPECT_EQ(action(S::kWaking, S::kAsleep, E::kCloudStopped), "cloud_stopped");
}

TEST(EventRecordAction, CloudStartingAndStopping) {
  EXPECT_EQ(action(S::kAsleep, S::kWaking, E::kCloudStarting), "cloud_starting");
  EXPECT_EQ(action(S::kSleeping, S::kWaking, E::kCloudStarting), "cloud_starting");
  EXPECT_EQ(action(S::kReady, S::kSleeping, E::kCloudStopping), "cloud_stopping");
  EXPECT_EQ(action(S::kWaking, S::kSleeping, E::kCloudStopping), "cloud_stopping");
}

TEST(EventRecordAction, FailedWhileBootingIsUnshelveIncompleteOtherwiseWorkflowFailed) {
  EXPECT_EQ(action(S::kBooting, S::kError, E::kFailed), "unshelve_incomplete");
  EXPECT_EQ(action(S::kWaking, S::kError, E::kFailed), "workflow_failed");
  EXPECT_EQ(action(S::kReady, S::kError, E::kFailed), "workflow_failed");
  EXPECT_EQ(action(S::kSleeping, S::kError, E::kFailed), "workflow_failed");
  EXPECT_EQ(action(S::kAsleep, S::kError, E::kFailed), "workflow_failed");
  EXPECT_EQ(action(S::kError, S::kError, E::kFailed), "workflow_failed");
}

TEST(EventRecordAction, FirstObservationIsObservedState) {
  EXPECT_EQ(action(S::kUnknown, S::kAsleep, E::kCloudStopped), "observed_asleep");
  EXPECT_EQ(action(S::kUnknown, S::kWaking, E::kCloudStarting), "observed_waking");
  EXPECT_EQ(action(S::kUnknown, S::kBooting, E::kCloudRunning), "observed_booting");
  EXPECT_EQ(action(S::kUnknown, S::kSleeping, E::kCloudStopping), "observed_sleeping");
}

TEST(EventRecordAction, RequestsAndFailuresFromUnknownKeepTheirNames) {
  EXPECT_EQ(action(S::kUnknown, S::kWaking, E::kWakeRequested), "unshelve_requested");
  EXPECT_EQ(action(S::kUnknown, S::kSleeping, E::kSleepRequested), "shelve_requested");
  EXPECT_EQ(action(S::kUnknown, S::kError, E::kFailed), "workflow_failed");
}

TEST(EventRecordAction, EveryLegalTransitionHasAName) {
  for (S from : kAllStates) {
    for (E event : kAllEvents) {
      const std::optional<S> to = transition(from, event);
      if (!to) continue;
      const std::string name = action(from, *to, event);
      EXPECT_FALSE(name.empty()) << to_string(from) << " + " << to_string(event);
      EXPECT_NE(name, "transition") << to_string(from) << " + " << to_string(event);
      EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string::npos) << name;
    }
  }
}

// --- make_event_id ---------------------------------------------------------------------------

TEST(EventRecordId, Format) {
  EXPECT_EQ(make_event_id(at("2026-11-22T10:15:00.123456Z"), 12, 0x3fa9c2d1u),
            "20261122T101500.123456Z-000012-3fa9c2d1");
  EXPECT_EQ(make_event_id(at("2026-01-02T03:04:05Z"), 1, 0), "20260102T030405.000000Z-000001-00000000");
  EXPECT_EQ(make_event_id(at("2026-01-02T03:04:05Z"), 0, 0xffffffffu),
            "20260102T030405.000000Z-000000-ffffffff");
  // Past six digits the seq simply grows: ids stay unique.
  EXPECT_EQ(make_event_id(at("2026-01-02T03:04:05Z"), 1234567, 0xau),
            "20260102T030405.000000Z-1234567-0000000a");
}

TEST(EventRecordId, IsInUtcWhateverTheLocalZone) {
  const ScopedTimeZone zone("XYZ-14");  // UTC+14: the local date is a day ahead
  EXPECT_EQ(make_event_id(at("2026-12-31T23:59:59.999999Z"), 3, 1),
            "20261231T235959.999999Z-000003-00000001");
}

TEST(EventRecordId, UniqueBySeqAndByRandomPart) {
  const TimePoint when = at("2026-11-22T10:15:00.123456Z");
  std::set<std::string> ids;
  for (std::uint64_t seq = 1; seq <= 1000; ++seq) ids.insert(make_event_id(when, seq, 7));
  for (std::uint32_t random = 0; random < 1000; ++random) ids.insert(make_event_id(when, 1001, random));
  EXPECT_EQ(ids.size(), 2000u);
  // Two daemons sharing a container, same time, same seq: the random part tells them apart.
  EXPECT_NE(make_event_id(when, 5, 0x12345678u), make_event_id(when, 5, 0x12345679u));
}

TEST(EventRecordId, SortsByTime) {
  const std::string earlier = make_event_id(at("2026-11-22T10:15:00.123456Z"), 99, 0xffffffffu);
  const std::string later = make_event_id(at("2026-11-22T10:15:00.123457Z"), 1, 0);
  EXPECT_LT(earlier, later);
}

// --- swift_object_name -----------------------------------------------------------------------

TEST(EventRecordObjectName, PrefixDateAndId) {
  const EventRecord record = sample_record();
  EXPECT_EQ(swift_object_name("unshelver-events", record),
            "unshelver-events/2026/11/22/20261122T101500.123456Z-000012-3fa9c2d1.json");
}

TEST(EventRecordObjectName, TrailingSlashesOfThePrefixAreNotDoubled) {
  const EventRecord record = sample_record();
  const std::string expected = "events/gpu/2026/11/22/" + record.id + ".json";
  EXPECT_EQ(swift_object_name("events/gpu", record), expected);
  EXPECT_EQ(swift_object_name("events/gpu/", record), expected);
  EXPECT_EQ(swift_object_name("events/gpu//", record), expected);
}

TEST(EventRecordObjectName, EmptyPrefixPutsTheDateAtTheTop) {
  const EventRecord record = sample_record();
  EXPECT_EQ(swift_object_name("", record), "2026/11/22/" + record.id + ".json");
  EXPECT_EQ(swift_object_name("/", record), "2026/11/22/" + record.id + ".json");
}

TEST(EventRecordObjectName, DateIsTheUtcDateOfTheEvent) {
  const ScopedTimeZone zone("XYZ-14");  // UTC+14: local time is already 2027-01-01
  EventRecord record = sample_record();
  record.at = at("2026-12-31T23:59:59.999999Z");
  record.id = make_event_id(record.at, 1, 2);
  EXPECT_EQ(swift_object_name("p", record), "p/2026/12/31/20261231T235959.999999Z-000001-00000002.json");
  record.at = at("2027-01-01T00:00:00Z");
  EXPECT_EQ(swift_object_name("p", record).substr(0, 13), "p/2027/01/01/");
  // Months and days below ten keep their leading zero.
  record.at = at("2026-03-04T05:06:07Z");
  EXPECT_EQ(swift_object_name("p", record).substr(0, 13), "p/2026/03/04/");
}

// --- to_json_line and parse_event_line -------------------------------------------------------

TEST(EventRecordJson, FieldOrderAndExactText) {
  EXPECT_EQ(to_json_line(sample_record()),
            R"({"seq":12,"id":"20261122T101500.123456Z-000012-3fa9c2d1","ts":"2026-11-22T10:15:00.123456Z",)"
            R"("timestamp":"2026-11-22T10:15:00.123456Z","backend":"gpu","instance_name":"gpu-vm",)"
            R"("action":"unshelve_requested","actor":"public-button","from":"asleep","to":"waking",)"
            R"("detail":"wake button from 127.0.0.1"})");
}

TEST(EventRecordJson, EmptyFieldsAreWrittenAsEmptyStrings) {
  EventRecord record;
  record.seq = 1;
  record.at = at("2026-11-22T10:15:00Z");
  record.id = make_event_id(record.at, 1, 0);
  record.action = "caddy_load_failed";
  EXPECT_EQ(to_json_line(record),
            R"({"seq":1,"id":"20261122T101500.000000Z-000001-00000000","ts":"2026-11-22T10:15:00.000000Z",)"
            R"("timestamp":"2026-11-22T10:15:00.000000Z","backend":"","instance_name":"",)"
            R"("action":"caddy_load_failed","actor":"","from":"","to":"","detail":""})");
  auto parsed = parse_event_line(to_json_line(record));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  expect_same_record(record, *parsed);
}

TEST(EventRecordJson, CountAndDroppedAreWrittenOnlyWhenSetAndRoundTrip) {
  // A summary of noise, written after drops (issue 15 §3).
  EventRecord record = sample_record();
  record.action = "login_failed";
  record.count = 1999;
  record.dropped = {{"login_failed", 7}};
  const std::string line = to_json_line(record);
  EXPECT_NE(std::string::npos, line.find(R"("detail":"wake button from 127.0.0.1","count":1999,)"
                                         R"("dropped":{"login_failed":7}})"))
      << line;
  auto parsed = parse_event_line(line);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  expect_same_record(record, *parsed);
  // A malformed count is ignored, not fatal: the line stays a record.
  auto odd = parse_event_line(R"({"ts":"2026-11-22T10:15:00Z","action":"x","count":"many","dropped":[1]})");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(0u, odd->count);
  EXPECT_TRUE(odd->dropped.empty());
}

TEST(EventRecordJson, RoundTrip) {
  const EventRecord record = sample_record();
  auto parsed = parse_event_line(to_json_line(record));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  expect_same_record(record, *parsed);
}

TEST(EventRecordJson, SpecialCharactersStayOnOneLineAndRoundTrip) {
  EventRecord record = sample_record();
  record.detail =
      "quote \" backslash \\ newline \n tab \t cr \r nul " + std::string(1, '\0') + " umlaut \xC3\xA4 end";
  record.actor = "user@example.org";
  record.backend = "gpu box";
  const std::string line = to_json_line(record);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  EXPECT_NE(line.find("\xC3\xA4"), std::string::npos) << "valid UTF-8 is written as it is";
  auto parsed = parse_event_line(line);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  expect_same_record(record, *parsed);
}

TEST(EventRecordJson, InvalidUtf8IsReplacedNotThrown) {
  EventRecord record = sample_record();
  record.detail = "cloud said \xFF\xFE and \xC3 then ok";
  record.instance_name = "vm-\x80";
  std::string line;
  ASSERT_NO_THROW(line = to_json_line(record));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("\xEF\xBF\xBD"), std::string::npos) << "U+FFFD replaces the bad bytes: " << line;
  EXPECT_EQ(line.find('\xFF'), std::string::npos);
  auto parsed = parse_event_line(line);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->seq, record.seq);
  EXPECT_EQ(parsed->action, record.action);
  EXPECT_NE(parsed->detail.find("cloud said "), std::string::npos);
  EXPECT_NE(parsed->detail.find(" then ok"), std::string::npos);
  EXPECT_NE(parsed->detail.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(parsed->instance_name.substr(0, 3), "vm-");
}

TEST(EventRecordJson, LargeSeqRoundTrips) {
  EventRecord record = sample_record();
  record.seq = 9'007'199'254'740'993ULL;  // beyond a double's exact integers
  record.id = make_event_id(record.at, record.seq, 1);
  auto parsed = parse_event_line(to_json_line(record));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->seq, record.seq);
}

TEST(EventRecordParse, PythonUnshelverLinesParseWithSeqZero) {
  auto parsed = parse_event_line(
      R"({"timestamp": "2025-06-01T08:30:00.250000+00:00", "action": "unshelve_requested", )"
      R"("actor": "alice@example.org", "instance_name": "cosmosage_70b", "detail": "via the button"})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->seq, 0u);
  EXPECT_EQ(parsed->id, "");
  EXPECT_EQ(parsed->at, at("2025-06-01T08:30:00.25Z"));
  EXPECT_EQ(parsed->action, "unshelve_requested");
  EXPECT_EQ(parsed->actor, "alice@example.org");
  EXPECT_EQ(parsed->instance_name, "cosmosage_70b");
  EXPECT_EQ(parsed->detail, "via the button");
  EXPECT_EQ(parsed->backend, "");
  EXPECT_EQ(parsed->from, "");
  EXPECT_EQ(parsed->to, "");

  // Without a fraction (Python's isoformat() when the microseconds are 0), and with 'Z'.
  auto whole = parse_event_line(R"({"timestamp":"2025-06-01T08:30:00+00:00","action":"shelve_complete"})");
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(whole->at, at("2025-06-01T08:30:00Z"));
  EXPECT_EQ(whole->seq, 0u);
  auto zulu =
      parse_event_line(R"({"timestamp":"2025-06-01T08:30:00Z","action":"workflow_failed","detail":null})");
  ASSERT_TRUE(zulu.ok()) << zulu.error().message;
  EXPECT_EQ(zulu->detail, "");
}

TEST(EventRecordParse, TsWinsOverTimestampAndUnknownFieldsAreIgnored) {
  auto parsed =
      parse_event_line(R"({"seq":3,"id":"x","ts":"2026-01-01T00:00:01Z","timestamp":"2026-01-01T00:00:02Z",)"
                       R"("action":"vm_stopped","extra":{"nested":[1,2]},"backend":"gpu"})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->at, at("2026-01-01T00:00:01Z"));
  EXPECT_EQ(parsed->seq, 3u);
  EXPECT_EQ(parsed->backend, "gpu");
}

TEST(EventRecordParse, RejectsWhatIsNotARecord) {
  const std::vector<std::string> rejected = {
      "",
      "garbage",
      "a person's note about the log",
      R"({"seq":1,"id":"x","ts":"2026-01-01T00:00:00Z","action":"a")",  // cut short
      "[1,2,3]",
      R"("a string")",
      "42",
      "null",
      "{}",
      // Missing, empty or non-string action.
      R"({"seq":1,"id":"x","ts":"2026-01-01T00:00:00Z"})",
      R"({"seq":1,"id":"x","ts":"2026-01-01T00:00:00Z","action":""})",
      R"({"seq":1,"id":"x","ts":"2026-01-01T00:00:00Z","action":7})",
      // Missing or invalid time.
      R"({"seq":1,"id":"x","action":"a"})",
      R"({"seq":1,"id":"x","ts":"yesterday","action":"a"})",
      R"({"seq":1,"id":"x","ts":"2026-01-01T00:00:00+02:00","action":"a"})",
      // A seq that is not a positive integer, or a seq without an id.
      R"({"seq":-1,"id":"x","ts":"2026-01-01T00:00:00Z","action":"a"})",
      R"({"seq":"12","id":"x","ts":"2026-01-01T00:00:00Z","action":"a"})",
      R"({"seq":1.5,"id":"x","ts":"2026-01-01T00:00:00Z","action":"a"})",
      R"({"seq":2,"ts":"2026-01-01T00:00:00Z","action":"a"})",
      std::string("\0\0\0\0", 4),
  };
  for (const std::string& line : rejected) {
    auto parsed = parse_event_line(line);
    EXPECT_FALSE(parsed.ok()) << "accepted: " << line;
    if (!parsed.ok()) {
      EXPECT_FALSE(parsed.error().message.empty()) << line;
    }
  }
}

TEST(EventRecordParse, SpecificErrorMessages) {
  EXPECT_EQ(parse_event_line("garbage").error().message, "not a JSON object");
  EXPECT_EQ(parse_event_line("[1]").error().message, "not a JSON object");
  EXPECT_EQ(parse_event_line(R"({"ts":"2026-01-01T00:00:00Z"})").error().message, "no action");
}

// --- intact_length ---------------------------------------------------------------------------

TEST(EventRecordIntact, EmptyFile) {
  EXPECT_EQ(intact_length(""), 0u);
}

TEST(EventRecordIntact, NoNewlineAtAllIsAllTorn) {
  EXPECT_EQ(intact_length("{\"seq\":1,\"id\":"), 0u);
  EXPECT_EQ(intact_length(std::string("\0\0\0\0", 4)), 0u);
}

TEST(EventRecordIntact, BytesAfterTheLastNewlineAreTorn) {
  const std::string good = to_json_line(sample_record()) + "\n";
  EXPECT_EQ(intact_length(good + good + "{\"seq\":14,\"id\":\"2026"), 2 * good.size());
  EXPECT_EQ(intact_length(good + good.substr(0, good.size() - 1)), good.size()) << "all but the newline";
  // The zeros a file system may show after a crash.
  EXPECT_EQ(intact_length(good + std::string(512, '\0')), good.size());
}

TEST(EventRecordIntact, ALastLineThatIsNotARecordIsTorn) {
  // The newline reached the disk, earlier bytes of the line did not.
  const std::string good = to_json_line(sample_record()) + "\n";
  EXPECT_EQ(intact_length(good + std::string(good.size() - 1, '\0') + "\n"), good.size());
  EXPECT_EQ(intact_length(good + "{\"seq\":13,\"id\":\"2026\0\0\0\n"), good.size());
  EXPECT_EQ(intact_length(good + "not json\n"), good.size());
  EXPECT_EQ(intact_length("garbage\n"), 0u);
}

TEST(EventRecordIntact, WithATornTailOnlyTheTailIsCut) {
  // One interrupted append damages one place: the tail. A damaged complete line before it was
  // written earlier, by something else, and stays (found by event_log_fuzz).
  const std::string good = to_json_line(sample_record()) + "\n";
  const std::string noted = good + "not json\n";
  EXPECT_EQ(intact_length(noted + "{\"seq\":3,\"id\":\"x"), noted.size());
}

TEST(EventRecordParse, TimestampsOutsideTheClocksRangeAreRejected) {
  // system_clock ends in 2262; the year 8764 overflowed the conversion (found by event_log_fuzz).
  EXPECT_FALSE(parse_event_line(R"({"timestamp":"8764-01-02T03:04:05.000001+00:00","action":"x"})").ok());
  EXPECT_FALSE(parse_event_line(R"({"timestamp":"1969-12-31T23:59:59Z","action":"x"})").ok());
  EXPECT_TRUE(parse_event_line(R"({"timestamp":"2200-12-31T23:59:59Z","action":"x"})").ok());
}

TEST(EventRecordIntact, CompleteContentIsWhole) {
  const std::string good = to_json_line(sample_record()) + "\n";
  EXPECT_EQ(intact_length(good), good.size());
  EXPECT_EQ(intact_length(good + good), 2 * good.size());
  // A damaged line further up cannot come from a crash: it is left alone (and counted at start).
  const std::string noted = good + "a person's note\n" + "\0\0garbage\n" + good;
  EXPECT_EQ(intact_length(noted), noted.size());
  // A line the Python unshelver wrote is a record.
  const std::string python =
      good + R"({"timestamp": "2025-06-01T08:30:00+00:00", "action": "shelve_complete"})" + "\n";
  EXPECT_EQ(intact_length(python), python.size());
}

}  // namespace
}  // namespace unshelver::core
