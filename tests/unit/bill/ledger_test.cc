// Tests of the ledger (bill/ledger.h) and of what the savings report makes of it (bill/savings.h):
// the figures of a scripted event log against a hand computation, periods cut in the middle of
// a state, month boundaries, a restart's gap, the Python unshelver's lines, dry runs, and the CSV.
#include "bill/ledger.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "base/time_format.h"
#include "bill/savings.h"

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;

TimePoint at(const char* text) {
  return parse_rfc3339(text).value_or(TimePoint{});
}

EventRecord event(const char* when, std::string action, std::string from, std::string to,
                  std::string backend = "gpu") {
  static std::uint64_t seq = 0;
  EventRecord record;
  record.seq = ++seq;
  record.at = at(when);
  record.backend = std::move(backend);
  record.action = std::move(action);
  record.from = std::move(from);
  record.to = std::move(to);
  return record;
}

constexpr double kHour = 3600.0;

// The scripted log: two days around a month's end, with a restart and a failed wake.
std::vector<EventRecord> scripted_log() {
  return {
      event("2026-11-30T22:00:00Z", "observed_asleep", "unknown", "asleep"),  // the first record
      event("2026-11-30T23:00:00Z", "unshelve_requested", "asleep", "waking"),
      event("2026-11-30T23:05:00Z", "cloud_running", "waking", "booting"),
      event("2026-11-30T23:10:00Z", "unshelve_complete", "booting", "ready"),
      event("2026-12-01T01:00:00Z", "shelve_requested", "ready", "sleeping"),
      event("2026-12-01T01:06:00Z", "shelve_complete", "sleeping", "asleep"),
      // The daemon was down from some time after 01:06 until 05:00: nothing changed meanwhile.
      event("2026-12-01T05:00:00Z", "observed_asleep", "unknown", "asleep"),
      event("2026-12-01T08:00:00Z", "unshelve_requested", "asleep", "waking"),
      event("2026-12-01T08:30:00Z", "workflow_failed", "waking", "error"),
      event("2026-12-01T09:00:00Z", "unshelve_requested", "error", "waking"),
      event("2026-12-01T09:10:00Z", "unshelve_complete", "booting", "ready"),
      event("2026-12-01T12:00:00Z", "shelve_complete", "sleeping", "asleep"),
  };
}

void add_all(Ledger& ledger, const std::vector<EventRecord>& records) {
  for (const EventRecord& record : records) ledger.add(record);
}

Ledger scripted_ledger() {
  Ledger ledger;
  add_all(ledger, scripted_log());
  return ledger;
}

const Price kPrice{2.80, 0.05, "EUR"};

TEST(LedgerTest, TheScriptedLogMatchesTheHandComputation) {
  // Over [11-30 20:00, 12-01 14:00), now 12-01 14:00 (18 h):
  //   unknown: 20:00-22:00 (before the first record) 2 h + 08:30-09:00 (error) 0.5 h = 2.5 h
  //   asleep:  22:00-23:00 1 h + 01:06-08:00 6.9 h (the restart's gap included) + 12:00-14:00 2 h = 9.9 h
  //   awake:   23:00-01:06 2.1 h + 08:00-08:30 0.5 h + 09:00-12:00 3 h = 5.6 h
  //   2.5 + 9.9 + 5.6 = 18 h.
  //   cost      = 5.6 × 2.80 + 9.9 × 0.05 = 15.68 + 0.495 = 16.175
  //   always on = (5.6 + 9.9) × 2.80 = 43.40
  //   savings   = 43.40 - 16.175 = 27.225 (= 9.9 × (2.80 - 0.05))
  const Ledger ledger = scripted_ledger();
  const Usage usage =
      ledger.usage("gpu", at("2026-11-30T20:00:00Z"), at("2026-12-01T14:00:00Z"), at("2026-12-01T14:00:00Z"));
  EXPECT_DOUBLE_EQ(usage.unknown, 2.5 * kHour);
  EXPECT_DOUBLE_EQ(usage.asleep, 9.9 * kHour);
  EXPECT_DOUBLE_EQ(usage.awake, 5.6 * kHour);
  EXPECT_DOUBLE_EQ(usage.would_sleep, 0);
  const Costs costs = costs_of(usage, kPrice);
  EXPECT_NEAR(costs.cost, 16.175, 1e-9);
  EXPECT_NEAR(costs.always_on, 43.40, 1e-9);
  EXPECT_NEAR(costs.savings, 27.225, 1e-9);
  EXPECT_NEAR(costs.projected_savings, 0, 1e-9);

  const nlohmann::json row =
      period_json(PeriodUsage{"gpu", at("2026-11-30T20:00:00Z"), at("2026-12-01T14:00:00Z"), usage, kPrice});
  EXPECT_EQ(row["awake_seconds"], 20160.0);
  EXPECT_EQ(row["always_on_cost"], 43.40);
  EXPECT_EQ(row["savings"], 27.23);  // 27.225 to the cent, as shown
  EXPECT_EQ(row["currency"], "EUR");
}

TEST(LedgerTest, AStateCutByThePeriodCountsOnlyItsPartInside) {
  const Ledger ledger = scripted_ledger();
  const TimePoint now = at("2026-12-01T14:00:00Z");
  // [23:30, 00:30): inside the awake period 23:00-01:06.
  Usage usage = ledger.usage("gpu", at("2026-11-30T23:30:00Z"), at("2026-12-01T00:30:00Z"), now);
  EXPECT_DOUBLE_EQ(usage.awake, 1 * kHour);
  EXPECT_DOUBLE_EQ(usage.asleep + usage.unknown, 0);
  // [00:30, 03:00): 36 min awake (until 01:06), 1 h 54 min asleep.
  usage = ledger.usage("gpu", at("2026-12-01T00:30:00Z"), at("2026-12-01T03:00:00Z"), now);
  EXPECT_DOUBLE_EQ(usage.awake, 0.6 * kHour);
  EXPECT_DOUBLE_EQ(usage.asleep, 1.9 * kHour);
  // The current state counts until now, not until the period's end; the future is not counted.
  usage = ledger.usage("gpu", at("2026-12-01T13:00:00Z"), at("2026-12-02T00:00:00Z"), now);
  EXPECT_DOUBLE_EQ(usage.asleep, 1 * kHour);
  EXPECT_DOUBLE_EQ(usage.awake + usage.unknown, 0);
}

TEST(LedgerTest, MonthsSplitAtMidnightUtc) {
  const Ledger ledger = scripted_ledger();
  const TimePoint now = at("2026-12-01T14:00:00Z");
  EXPECT_EQ(start_of_month(now), at("2026-12-01T00:00:00Z"));
  EXPECT_EQ(start_of_next_month(at("2026-12-31T23:59:59Z")), at("2027-01-01T00:00:00Z"));
  EXPECT_EQ(start_of_month(at("2026-03-01T00:00:00Z") - 1s), at("2026-02-01T00:00:00Z"));
  // November: unknown until the first record (29 days 22 h = 718 h), asleep 22:00-23:00, awake
  // 23:00-24:00.
  const Usage november = ledger.usage("gpu", at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"), now);
  EXPECT_DOUBLE_EQ(november.unknown, 718 * kHour);
  EXPECT_DOUBLE_EQ(november.asleep, 1 * kHour);
  EXPECT_DOUBLE_EQ(november.awake, 1 * kHour);
  // December until now (14 h): awake 00:00-01:06 1.1 h + 0.5 h + 3 h = 4.6 h; asleep 6.9 h +
  // 2 h = 8.9 h; unknown (error) 0.5 h.
  const Usage december = ledger.usage("gpu", at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), now);
  EXPECT_DOUBLE_EQ(december.awake, 4.6 * kHour);
  EXPECT_DOUBLE_EQ(december.asleep, 8.9 * kHour);
  EXPECT_DOUBLE_EQ(december.unknown, 0.5 * kHour);

  // The days add up to the whole, each cut at midnight UTC.
  const auto days = ledger.daily("gpu", at("2026-11-30T00:00:00Z"), at("2026-12-02T00:00:00Z"), now);
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].day, at("2026-11-30T00:00:00Z"));
  EXPECT_DOUBLE_EQ(days[0].usage.unknown, 22 * kHour);
  EXPECT_DOUBLE_EQ(days[0].usage.awake, 1 * kHour);
  EXPECT_DOUBLE_EQ(days[1].usage.awake, 4.6 * kHour);
  EXPECT_DOUBLE_EQ(days[1].usage.asleep, 8.9 * kHour);

  const nlohmann::json savings = savings_json(ledger, "gpu", kPrice, now, 2);
  EXPECT_EQ(savings["this_month"]["since"], "2026-12-01T00:00:00.000000Z");
  EXPECT_EQ(savings["this_month"]["awake_seconds"], 4.6 * kHour);
  EXPECT_EQ(savings["last_month"]["unknown_seconds"], 718 * kHour);
  ASSERT_EQ(savings["days"].size(), 2u);
  EXPECT_EQ(savings["days"][1]["day"], "2026-12-01");
}

TEST(LedgerTest, TheStateContinuesThroughARestartsGap) {
  Ledger ledger;
  ledger.add(event("2026-12-01T10:00:00Z", "unshelve_complete", "booting", "ready"));
  // Down from 10:30 to 13:00; the new process finds the machine shelved (someone shelved it from
  // the cloud's console): it ran until the observation, as far as the log can tell.
  ledger.add(event("2026-12-01T13:00:00Z", "observed_asleep", "unknown", "asleep"));
  const Usage usage =
      ledger.usage("gpu", at("2026-12-01T10:00:00Z"), at("2026-12-01T14:00:00Z"), at("2026-12-01T14:00:00Z"));
  EXPECT_DOUBLE_EQ(usage.awake, 3 * kHour);
  EXPECT_DOUBLE_EQ(usage.asleep, 1 * kHour);
  EXPECT_DOUBLE_EQ(usage.unknown, 0);
}

TEST(LedgerTest, PythonUnshelverLinesCountForTheBackendOfTheirInstance) {
  Ledger ledger(std::map<std::string, std::string>{{"gpu-chat-instance", "gpu"}});
  std::vector<EventRecord> records;
  for (
      const char* line : {
          R"({"timestamp": "2025-06-01T08:00:00+00:00", "action": "unshelve_requested", "instance_name": "gpu-chat-instance"})",
          R"({"timestamp": "2025-06-01T08:10:00+00:00", "action": "unshelve_complete", "instance_name": "gpu-chat-instance"})",
          R"({"timestamp": "2025-06-01T09:00:00+00:00", "action": "shelve_requested", "instance_name": "gpu-chat-instance"})",
          R"({"timestamp": "2025-06-01T09:30:00+00:00", "action": "shelve_complete", "instance_name": "gpu-chat-instance"})",
          R"({"timestamp": "2025-06-01T09:40:00+00:00", "action": "unshelve_requested", "instance_name": "another-vm"})",
      }) {
    auto record = parse_event_line(line);
    ASSERT_TRUE(record.ok()) << line;
    records.push_back(std::move(*record));
  }
  // Then Unshelver took over and found it asleep at 10:00 (its first record).
  EventRecord first = event("2025-06-01T10:00:00Z", "observed_asleep", "unknown", "asleep");
  records.push_back(first);
  add_all(ledger, records);
  // Awake 08:00-09:30 (1.5 h), asleep 09:30-11:00 (1.5 h); the other instance's line is not ours.
  const Usage usage =
      ledger.usage("gpu", at("2025-06-01T08:00:00Z"), at("2025-06-01T11:00:00Z"), at("2025-06-01T11:00:00Z"));
  EXPECT_DOUBLE_EQ(usage.awake, 1.5 * kHour);
  EXPECT_DOUBLE_EQ(usage.asleep, 1.5 * kHour);
  EXPECT_DOUBLE_EQ(usage.unknown, 0);
  EXPECT_EQ(ledger.backends(), std::vector<std::string>{"gpu"});
}

TEST(LedgerTest, ADryRunsWouldSleepTimeIsProjectedSavingsAndStillCosts) {
  Ledger ledger;
  ledger.add(event("2026-12-01T08:00:00Z", "observed_ready", "unknown", "ready"));
  ledger.add(event("2026-12-01T10:00:00Z", "dry_run_would_shelve", "", ""));  // T1
  ledger.add(event("2026-12-01T11:00:00Z", "dry_run_would_shelve", "", ""));  // again: still T1
  ledger.add(event("2026-12-01T13:00:00Z", "dry_run_would_wake", "", ""));    // T2
  ledger.add(event("2026-12-01T15:00:00Z", "dry_run_would_shelve", "", ""));  // open until now
  // Over 08:00-16:00: awake 8 h (the machine ran all along), would have slept 3 h + 1 h = 4 h:
  // projected savings 4 × (2.80 - 0.05) = 11.00; cost 8 × 2.80 = 22.40, saved nothing.
  const Usage usage =
      ledger.usage("gpu", at("2026-12-01T08:00:00Z"), at("2026-12-01T16:00:00Z"), at("2026-12-01T16:00:00Z"));
  EXPECT_DOUBLE_EQ(usage.awake, 8 * kHour);
  EXPECT_DOUBLE_EQ(usage.would_sleep, 4 * kHour);
  const Costs costs = costs_of(usage, kPrice);
  EXPECT_NEAR(costs.projected_savings, 11.0, 1e-9);
  EXPECT_NEAR(costs.cost, 22.40, 1e-9);
  EXPECT_NEAR(costs.savings, 0, 1e-9);
  // A period that cuts the would-sleep time.
  EXPECT_DOUBLE_EQ(
      ledger.usage("gpu", at("2026-12-01T12:00:00Z"), at("2026-12-01T16:00:00Z"), at("2026-12-01T16:00:00Z"))
          .would_sleep,
      2 * kHour);
}

TEST(LedgerTest, AShelveThatFailedLeavesTheMachineRunning) {
  Ledger ledger;
  ledger.add(event("2026-12-01T08:00:00Z", "shelve_requested", "ready", "sleeping"));
  ledger.add(event("2026-12-01T08:10:00Z", "shelve_failed", "sleeping", "error"));
  ledger.add(event("2026-12-01T09:00:00Z", "shelve_complete", "sleeping", "asleep"));
  const Usage usage =
      ledger.usage("gpu", at("2026-12-01T08:00:00Z"), at("2026-12-01T10:00:00Z"), at("2026-12-01T10:00:00Z"));
  EXPECT_DOUBLE_EQ(usage.awake, 1 * kHour);
  EXPECT_DOUBLE_EQ(usage.asleep, 1 * kHour);
  EXPECT_DOUBLE_EQ(usage.unknown, 0);
}

TEST(LedgerTest, NothingIsInventedForABackendWithoutRecords) {
  const Ledger ledger = scripted_ledger();
  const Usage usage =
      ledger.usage("cpu", at("2026-12-01T00:00:00Z"), at("2026-12-01T10:00:00Z"), at("2026-12-01T14:00:00Z"));
  EXPECT_DOUBLE_EQ(usage.unknown, 10 * kHour);
  EXPECT_DOUBLE_EQ(usage.awake + usage.asleep, 0);
  EXPECT_FALSE(ledger.first_record("cpu").has_value());
}

TEST(LedgerTest, TotalsGrowWithTimeAndMatchTheWholeLedger) {
  Ledger ledger;
  for (const EventRecord& record : scripted_log()) ledger.add(record);  // as written, one by one
  const Usage total = ledger.total("gpu", at("2026-12-01T14:00:00Z"));
  // From the first record (11-30 22:00) to now: 16 h, of which 0.5 h unknown (error).
  EXPECT_DOUBLE_EQ(total.awake, 5.6 * kHour);
  EXPECT_DOUBLE_EQ(total.asleep, 9.9 * kHour);
  EXPECT_DOUBLE_EQ(total.unknown, 0.5 * kHour);
  // The wall clock stepped back: the counters stay where they were.
  const Usage back = ledger.total("gpu", at("2026-12-01T11:00:00Z"));
  EXPECT_GE(back.asleep + back.awake, 5.6 * kHour + 7.9 * kHour);
  EXPECT_GT(ledger.total("gpu", at("2026-12-01T15:00:00Z")).asleep, total.asleep);
}

TEST(LedgerTest, RecordsOutOfOrderNeverMakeANegativePeriod) {
  Ledger ledger;
  ledger.add(event("2026-12-01T10:00:00Z", "observed_asleep", "unknown", "asleep"));
  ledger.add(event("2026-12-01T12:00:00Z", "unshelve_requested", "asleep", "waking"));
  ledger.add(event("2026-12-01T11:00:00Z", "shelve_complete", "sleeping", "asleep"));  // clock stepped back
  const Usage usage =
      ledger.usage("gpu", at("2026-12-01T10:00:00Z"), at("2026-12-01T13:00:00Z"), at("2026-12-01T13:00:00Z"));
  EXPECT_DOUBLE_EQ(usage.asleep, 3 * kHour);  // 10-12, then 12-13 (the late record counts at 12:00)
  EXPECT_DOUBLE_EQ(usage.awake, 0);
}

// The daemon keeps only what it shows: last month, or the chart's 30 days when they reach further.
TEST(SavingsHorizon, IsLastMonthsStartOrTheChartsFirstDay) {
  EXPECT_EQ(savings_horizon(at("2026-12-15T10:00:00Z")), at("2026-11-01T00:00:00Z"));
  EXPECT_EQ(savings_horizon(at("2026-01-05T00:00:00Z")), at("2025-12-01T00:00:00Z"));
  // March 1st: February has 28 days, so the chart's 30 days begin on January 31st.
  EXPECT_EQ(savings_horizon(at("2026-03-01T10:00:00Z")), at("2026-01-31T00:00:00Z"));
}

TEST(LedgerTest, ForgettingBeforeAHorizonKeepsTheTotalsAndEverythingAfterIt) {
  const TimePoint now = at("2026-12-02T00:00:00Z");
  Ledger whole;
  add_all(whole, scripted_log());
  Ledger bounded;
  bounded.forget_before(at("2026-12-01T02:00:00Z"));  // before the records: spans are never kept
  add_all(bounded, scripted_log());
  Ledger pruned;
  add_all(pruned, scripted_log());
  pruned.forget_before(at("2026-12-01T02:00:00Z"));  // after them: kept spans go
  pruned.forget_before(at("2026-11-01T00:00:00Z"));  // a horizon never moves back
  for (const Ledger* ledger : {&bounded, &pruned}) {
    EXPECT_EQ(ledger->total("gpu", now), whole.total("gpu", now));
    EXPECT_EQ(ledger->usage("gpu", at("2026-12-01T02:00:00Z"), now, now),
              whole.usage("gpu", at("2026-12-01T02:00:00Z"), now, now));
    EXPECT_EQ(ledger->usage("gpu", at("2026-12-01T08:15:00Z"), at("2026-12-01T10:00:00Z"), now),
              whole.usage("gpu", at("2026-12-01T08:15:00Z"), at("2026-12-01T10:00:00Z"), now));
    // Before the horizon the periods are gone: the wake of 23:00 is no longer seen.
    EXPECT_EQ(ledger->usage("gpu", at("2026-11-30T22:00:00Z"), at("2026-12-01T00:00:00Z"), now).awake, 0.0);
  }
  EXPECT_EQ(whole.usage("gpu", at("2026-11-30T22:00:00Z"), at("2026-12-01T00:00:00Z"), now).awake, 1 * kHour);
}

TEST(SavingsReportTest, CsvQuotesWhatNeedsQuotingAndLeavesMissingPricesEmpty) {
  EXPECT_EQ(csv_field("gpu"), "gpu");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  const Usage usage{.awake = 3600, .asleep = 7200, .unknown = 0, .would_sleep = 0};
  const std::string csv =
      report_csv({PeriodUsage{"gpu", at("2026-12-01T00:00:00Z"), at("2026-12-02T00:00:00Z"), usage, kPrice},
                  PeriodUsage{"cpu,small", at("2026-12-01T00:00:00Z"), at("2026-12-02T00:00:00Z"), usage,
                              std::nullopt}});
  const std::string header =
      "backend,since,until,awake_hours,asleep_hours,unknown_hours,would_sleep_hours,currency,running_per_"
      "hour,"
      "asleep_per_hour,cost,always_on_cost,savings,projected_savings\r\n";
  ASSERT_EQ(csv.substr(0, header.size()), header);
  // cost 1 × 2.80 + 2 × 0.05 = 2.90; always on 3 × 2.80 = 8.40; saved 5.50.
  EXPECT_NE(
      csv.find("gpu,2026-12-01T00:00:00.000000Z,2026-12-02T00:00:00.000000Z,1.0000,2.0000,0.0000,0.0000,"
               "EUR,2.8000,0.0500,2.90,8.40,5.50,0.00\r\n"),
      std::string::npos)
      << csv;
  EXPECT_NE(
      csv.find("\"cpu,small\",2026-12-01T00:00:00.000000Z,2026-12-02T00:00:00.000000Z,1.0000,2.0000,0.0000,"
               "0.0000,,,,,,,\r\n"),
      std::string::npos)
      << csv;
}

TEST(SavingsReportTest, ChartBarsAreAsTallAsTheKnownPartOfTheDay) {
  const nlohmann::json days = nlohmann::json::array({{{"day", "2026-12-01"},
                                                      {"awake_seconds", 21600.0},
                                                      {"asleep_seconds", 64800.0},
                                                      {"unknown_seconds", 0.0}},
                                                     {{"day", "2026-12-02"},
                                                      {"awake_seconds", 0.0},
                                                      {"asleep_seconds", 0.0},
                                                      {"unknown_seconds", 86400.0}}});
  const nlohmann::json bars = chart_bars(days);
  ASSERT_EQ(bars.size(), 2u);
  // 6 h awake on 18 h asleep: a quarter and three quarters of the 60 units.
  EXPECT_EQ(bars[0]["awake_height"], "15.00");
  EXPECT_EQ(bars[0]["asleep_height"], "45.00");
  EXPECT_EQ(bars[0]["asleep_y"], "15.00");
  EXPECT_EQ(bars[0]["awake_y"], "0.00");
  EXPECT_EQ(bars[1]["awake_height"], "0.00");
  EXPECT_EQ(bars[0]["title"], "2026-12-01: awake 6.0 h, asleep 18.0 h");
}

}  // namespace
}  // namespace unshelver::core
