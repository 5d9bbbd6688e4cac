// Tests of the audit trail's noise policy (events/noise_policy.h, issue 15 §3): which events are
// noise, the bound on a detail, the client a detail names, one record per client and window plus
// a summary with a count, the bound on tracked clients, and the backlog that noise may join.
#include "events/noise_policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/time_format.h"

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;
using Clock = NoiseAggregator::Clock;

EventRecord failed_login(const std::string& client, const std::string& path = "/api/status") {
  EventRecord record;
  record.action = "login_failed";
  record.actor = "control";
  record.detail = "wrong bearer token from " + client + " for GET " + path;
  return record;
}

const TimePoint kWallNow = parse_rfc3339("2026-12-06T16:00:00Z").value_or(TimePoint{});

// --- classes -------------------------------------------------------------------------------

TEST(NoiseClass, OnlyFailedLoginsAreNoise) {
  EXPECT_EQ(EventClass::kNoise, web_event_class("login_failed"));
  for (const char* action : {"login", "logout", "caddy_load_failed", "unshelve_requested", "something_new"}) {
    EXPECT_EQ(EventClass::kEssential, web_event_class(action)) << action;
  }
}

// --- detail bound --------------------------------------------------------------------------

TEST(NoiseDetail, ADetailWithinTheBoundIsLeftAsItIs) {
  std::string detail(256, 'a');
  truncate_detail(detail, 256);
  EXPECT_EQ(std::string(256, 'a'), detail);
}

TEST(NoiseDetail, ALongDetailIsCutAndMarked) {
  std::string detail = "wrong bearer token from 127.0.0.1 for GET /" + std::string(8192, 'x');
  const std::size_t total = detail.size();
  truncate_detail(detail, kNoiseDetailBytes);
  const std::string mark = "...[truncated: " + std::to_string(total) + " bytes in all]";
  ASSERT_EQ(kNoiseDetailBytes + mark.size(), detail.size());
  EXPECT_EQ(0u, detail.find("wrong bearer token from 127.0.0.1 for GET /xxx"));
  EXPECT_EQ(kNoiseDetailBytes, detail.rfind(mark));
}

TEST(NoiseDetail, TheCutNeverSplitsAUtf8Character) {
  // "ä" is two bytes; the limit falls between them.
  std::string detail = "abc\xC3\xA4" + std::string(10, 'z');
  truncate_detail(detail, 4);
  EXPECT_EQ("abc...[truncated: 15 bytes in all]", detail);
}

// --- client --------------------------------------------------------------------------------

TEST(NoiseClient, TheWordAfterTheFirstFrom) {
  EXPECT_EQ("127.0.0.1", noise_client("wrong bearer token from 127.0.0.1 for GET /x"));
  EXPECT_EQ("::1", noise_client("wrong control token on the login form from ::1"));
  // The path is the client's to choose: a second " from " in it does not count.
  EXPECT_EQ("10.0.0.1", noise_client("wrong bearer token from 10.0.0.1 for GET /a from 1.2.3.4"));
  EXPECT_EQ("", noise_client("a detail that names nobody"));
  EXPECT_EQ("", noise_client("from the start, no space before it"));
  EXPECT_EQ("", noise_client("wrong bearer token from " + std::string(65, '1')));
}

// --- aggregation ---------------------------------------------------------------------------

TEST(NoiseAggregator, TheFirstEventOfAClientIsWrittenTheRepeatsAreSummarisedAtTheWindowsEnd) {
  NoiseAggregator noise;
  const Clock::time_point start{};
  EXPECT_TRUE(noise.admit(failed_login("127.0.0.1"), start));
  for (int i = 1; i < 2000; ++i) {
    EXPECT_FALSE(noise.admit(failed_login("127.0.0.1", "/p" + std::to_string(i)), start + i * 10ms)) << i;
  }
  EXPECT_EQ(1u, noise.open_windows());
  ASSERT_TRUE(noise.next_end().has_value());
  EXPECT_EQ(start + 60s, *noise.next_end());
  EXPECT_TRUE(noise.take_summaries(start + 59s, kWallNow).empty()) << "the window is still open";

  const std::vector<EventRecord> summaries = noise.take_summaries(start + 60s, kWallNow);
  ASSERT_EQ(1u, summaries.size());
  const EventRecord& summary = summaries[0];
  EXPECT_EQ("login_failed", summary.action);
  EXPECT_EQ("control", summary.actor);
  EXPECT_EQ(1999u, summary.count);
  EXPECT_EQ(kWallNow, summary.at);
  EXPECT_EQ(
      "1999 more in 60 s from 127.0.0.1 (summarised); the last: wrong bearer token from 127.0.0.1 for GET "
      "/p1999",
      summary.detail);
  EXPECT_EQ(0u, noise.open_windows());
  EXPECT_FALSE(noise.next_end().has_value());
  // The next event opens a new window and is written again.
  EXPECT_TRUE(noise.admit(failed_login("127.0.0.1"), start + 61s));
}

TEST(NoiseAggregator, AWindowWithoutRepeatsClosesWithoutASummary) {
  NoiseAggregator noise;
  const Clock::time_point start{};
  EXPECT_TRUE(noise.admit(failed_login("127.0.0.1"), start));
  EXPECT_TRUE(noise.take_summaries(start + 60s, kWallNow).empty());
  EXPECT_EQ(0u, noise.open_windows());
}

TEST(NoiseAggregator, EachClientAndActionHasItsOwnWindow) {
  NoiseAggregator noise;
  const Clock::time_point start{};
  EXPECT_TRUE(noise.admit(failed_login("10.0.0.1"), start));
  EXPECT_TRUE(noise.admit(failed_login("10.0.0.2"), start + 1s));
  EventRecord form = failed_login("10.0.0.1");
  form.detail = "wrong control token on the login form from 10.0.0.1";
  form.action = "login_failed_form";  // another action: another window
  EXPECT_TRUE(noise.admit(form, start + 2s));
  EXPECT_FALSE(noise.admit(failed_login("10.0.0.1"), start + 3s));
  EXPECT_FALSE(noise.admit(failed_login("10.0.0.2"), start + 3s));
  EXPECT_FALSE(noise.admit(failed_login("10.0.0.2"), start + 4s));
  EXPECT_EQ(3u, noise.open_windows());
  // Windows end 60 s after their own first event.
  auto first = noise.take_summaries(start + 60s, kWallNow);
  ASSERT_EQ(1u, first.size());
  EXPECT_EQ(1u, first[0].count);
  EXPECT_NE(std::string::npos, first[0].detail.find("from 10.0.0.1"));
  auto second = noise.take_summaries(start + 61s, kWallNow);
  ASSERT_EQ(1u, second.size());
  EXPECT_EQ(2u, second[0].count);
  EXPECT_NE(std::string::npos, second[0].detail.find("from 10.0.0.2"));
  EXPECT_TRUE(noise.take_summaries(start + 62s, kWallNow).empty()) << "the form's window had no repeat";
  EXPECT_EQ(0u, noise.open_windows());
}

TEST(NoiseAggregator, ClientsBeyondTheLimitShareOneWindow) {
  NoiseAggregator noise(NoiseSettings{60s, 4});
  const Clock::time_point start{};
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(noise.admit(failed_login("10.0.0." + std::to_string(i)), start));
  // The fifth client opens the shared window; every later new client counts into it.
  EXPECT_TRUE(noise.admit(failed_login("10.0.1.0"), start));
  for (int i = 1; i <= 1000; ++i) {
    EXPECT_FALSE(noise.admit(failed_login("10.0.1." + std::to_string(i)), start + 1s)) << i;
  }
  EXPECT_EQ(5u, noise.open_windows());
  auto summaries = noise.take_summaries(start + 60s, kWallNow);
  ASSERT_EQ(1u, summaries.size());
  EXPECT_EQ(1000u, summaries[0].count);
  EXPECT_NE(std::string::npos, summaries[0].detail.find("from clients beyond the first ones tracked"));
}

TEST(NoiseAggregator, AtShutdownEveryOpenWindowIsSummedUp) {
  NoiseAggregator noise;
  const Clock::time_point start{};
  EXPECT_TRUE(noise.admit(failed_login("127.0.0.1"), start));
  EXPECT_FALSE(noise.admit(failed_login("127.0.0.1"), start + 1s));
  EXPECT_TRUE(noise.admit(failed_login("::1"), start + 2s));
  auto summaries = noise.take_summaries(start + 2500ms, kWallNow, true);
  ASSERT_EQ(1u, summaries.size());
  EXPECT_EQ(1u, summaries[0].count);
  EXPECT_EQ(0u, summaries[0].detail.find("1 more in 3 s from 127.0.0.1"));
  EXPECT_EQ(0u, noise.open_windows());
}

TEST(NoiseAggregator, RecordsPerWindowAreBoundedWhateverTheFlood) {
  // 100,000 failed logins from 1,000 addresses within one minute: at most one record per tracked
  // client and one for the rest, plus as many summaries.
  NoiseAggregator noise;
  const Clock::time_point start{};
  std::size_t written = 0;
  for (int i = 0; i < 100'000; ++i) {
    if (noise.admit(failed_login("10.1." + std::to_string(i % 1000 / 250) + "." + std::to_string(i % 250)),
                    start + std::chrono::microseconds(i * 500))) {
      ++written;
    }
  }
  EXPECT_EQ(noise.settings().max_clients + 1, written);
  std::uint64_t summarised = 0;
  const auto summaries = noise.take_summaries(start + 120s, kWallNow);
  for (const EventRecord& summary : summaries) summarised += summary.count;
  EXPECT_EQ(written, summaries.size());
  EXPECT_EQ(100'000u, written + summarised) << "every event is either written or counted";
}

// --- backlog -------------------------------------------------------------------------------

TEST(NoiseBacklog, NoiseJoinsOnlyABacklogBelowBothLimits) {
  const BacklogLimits limits{3, 1000};
  EXPECT_TRUE(noise_fits(0, 0, limits));
  EXPECT_TRUE(noise_fits(2, 999, limits));
  EXPECT_FALSE(noise_fits(3, 10, limits));
  EXPECT_FALSE(noise_fits(1, 1000, limits));
}

}  // namespace
}  // namespace unshelver::core
