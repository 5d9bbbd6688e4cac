// Tests of the Prometheus text page (base/prometheus.h): a whole page to the byte, families grouped
// when added interleaved, escaping, the spelling of values and of "le", histogram buckets, and
// the mistakes that are counted and dropped instead of breaking the page.
#include "base/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace unshelver::core {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(MetricsPage, ContentTypeIsTheTextFormat004) {
  EXPECT_EQ(kPrometheusContentType, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(MetricsPage, WritesASmallPageExactly) {
  MetricsPage page;
  Histogram wake_seconds({30, 1, 0.5, 5, 1});
  for (double seconds : {0.25, 0.5, 2.0, 40.0}) wake_seconds.observe(seconds);

  page.counter("unshelver_wakes_total", "Wakes requested, by backend.", {{"backend", "gpu"}}, 3);
  page.gauge("unshelver_backend_ready", "1 while the backend is ready.", {{"backend", "gpu"}}, 1);
  page.counter("unshelver_wakes_total", "Wakes requested, by backend.", {{"backend", "cpu"}}, 0);
  page.histogram("unshelver_wake_duration_seconds", "Seconds from a wake request to ready.",
                 {{"backend", "gpu"}}, wake_seconds);
  page.gauge("unshelver_start_time_seconds", "Start of the process, in Unix seconds.", {}, 1700000000);
  page.gauge("unshelver_backend_ready", "1 while the backend is ready.", {{"backend", "cpu"}}, 0);

  EXPECT_EQ(page.text(),
            "# HELP unshelver_wakes_total Wakes requested, by backend.\n"
            "# TYPE unshelver_wakes_total counter\n"
            "unshelver_wakes_total{backend=\"gpu\"} 3\n"
            "unshelver_wakes_total{backend=\"cpu\"} 0\n"
            "# HELP unshelver_backend_ready 1 while the backend is ready.\n"
            "# TYPE unshelver_backend_ready gauge\n"
            "unshelver_backend_ready{backend=\"gpu\"} 1\n"
            "unshelver_backend_ready{backend=\"cpu\"} 0\n"
            "# HELP unshelver_wake_duration_seconds Seconds from a wake request to ready.\n"
            "# TYPE unshelver_wake_duration_seconds histogram\n"
            "unshelver_wake_duration_seconds_bucket{backend=\"gpu\",le=\"0.5\"} 2\n"
            "unshelver_wake_duration_seconds_bucket{backend=\"gpu\",le=\"1\"} 2\n"
            "unshelver_wake_duration_seconds_bucket{backend=\"gpu\",le=\"5\"} 3\n"
            "unshelver_wake_duration_seconds_bucket{backend=\"gpu\",le=\"30\"} 3\n"
            "unshelver_wake_duration_seconds_bucket{backend=\"gpu\",le=\"+Inf\"} 4\n"
            "unshelver_wake_duration_seconds_sum{backend=\"gpu\"} 42.75\n"
            "unshelver_wake_duration_seconds_count{backend=\"gpu\"} 4\n"
            "# HELP unshelver_start_time_seconds Start of the process, in Unix seconds.\n"
            "# TYPE unshelver_start_time_seconds gauge\n"
            "unshelver_start_time_seconds 1700000000\n");
  EXPECT_EQ(page.conflicts(), 0u);
}

TEST(MetricsPage, GroupsInterleavedFamiliesInOrderOfFirstSample) {
  MetricsPage page;
  page.gauge("b", "B.", {{"n", "1"}}, 1);
  page.gauge("a", "A.", {{"n", "1"}}, 1);
  page.gauge("b", "B.", {{"n", "2"}}, 2);
  page.gauge("a", "A.", {{"n", "2"}}, 2);
  page.gauge("b", "B.", {{"n", "3"}}, 3);
  EXPECT_EQ(page.text(),
            "# HELP b B.\n# TYPE b gauge\nb{n=\"1\"} 1\nb{n=\"2\"} 2\nb{n=\"3\"} 3\n"
            "# HELP a A.\n# TYPE a gauge\na{n=\"1\"} 1\na{n=\"2\"} 2\n");
  EXPECT_EQ(page.conflicts(), 0u);
}

TEST(MetricsPage, EscapesLabelValuesAndHelp) {
  MetricsPage page;
  page.gauge("path_info", "Reads C:\\dir and \"quotes\"\nsecond line.",
             {{"path", "C:\\dir \"x\"\nnext"}, {"plain", "caf\xc3\xa9 {a=b}, ok"}}, 1);
  EXPECT_EQ(page.text(),
            "# HELP path_info Reads C:\\\\dir and \"quotes\"\\nsecond line.\n"
            "# TYPE path_info gauge\n"
            "path_info{path=\"C:\\\\dir \\\"x\\\"\\nnext\",plain=\"caf\xc3\xa9 {a=b}, ok\"} 1\n");
  EXPECT_EQ(page.conflicts(), 0u);
}

TEST(MetricsPage, EmptyHelpWritesTheHelpLineWithoutText) {
  MetricsPage page;
  page.gauge("g", "", {}, 1);
  EXPECT_EQ(page.text(), "# HELP g\n# TYPE g gauge\ng 1\n");
}

TEST(MetricsPage, WritesSpecialValuesAsPrometheusSpellsThem) {
  MetricsPage page;
  page.gauge("g", "G.", {{"v", "nan"}}, kNaN);
  page.gauge("g", "G.", {{"v", "inf"}}, kInf);
  page.gauge("g", "G.", {{"v", "-inf"}}, -kInf);
  page.counter("c_total", "C.", {}, kInf);
  EXPECT_EQ(page.text(),
            "# HELP g G.\n# TYPE g gauge\n"
            "g{v=\"nan\"} NaN\ng{v=\"inf\"} +Inf\ng{v=\"-inf\"} -Inf\n"
            "# HELP c_total C.\n# TYPE c_total counter\nc_total +Inf\n");
}

TEST(MetricsValue, IntegersHaveNoExponentOrPoint) {
  EXPECT_EQ(format_metric_value(0), "0");
  EXPECT_EQ(format_metric_value(-0.0), "0");
  EXPECT_EQ(format_metric_value(12), "12");
  EXPECT_EQ(format_metric_value(-3), "-3");
  EXPECT_EQ(format_metric_value(1700000000), "1700000000");
  EXPECT_EQ(format_metric_value(1e15), "1000000000000000");
  EXPECT_EQ(format_metric_value(9007199254740992.0), "9007199254740992");  // 2^53
}

TEST(MetricsValue, OtherValuesAreShortestRoundTrip) {
  EXPECT_EQ(format_metric_value(0.1), "0.1");
  EXPECT_EQ(format_metric_value(0.25), "0.25");
  EXPECT_EQ(format_metric_value(-1.5), "-1.5");
  EXPECT_EQ(format_metric_value(123456.5), "123456.5");
  EXPECT_EQ(format_metric_value(1234567.5), "1.2345675e+06");
  EXPECT_EQ(format_metric_value(1e-7), "1e-07");
  EXPECT_EQ(format_metric_value(0.0001), "0.0001");
  EXPECT_EQ(format_metric_value(9007199254740994.0), "9.007199254740994e+15");  // 2^53 + 2
  EXPECT_EQ(format_metric_value(1e20), "1e+20");
  EXPECT_EQ(format_metric_value(kNaN), "NaN");
  EXPECT_EQ(format_metric_value(kInf), "+Inf");
  EXPECT_EQ(format_metric_value(-kInf), "-Inf");

  const std::vector<double> values = {
      0.1 + 0.2, 1.0 / 3,       2.0 / 3 * 1e-300, 4.9e-324, 1.7976931348623157e308,
      -123.456,  6.02214076e23, 1e21 + 1e5,       42.7};
  for (double value : values) {
    const std::string text = format_metric_value(value);
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), value) << text;
  }
}

TEST(MetricsValue, LeIsSpelledAsTheGoClientDoes) {
  EXPECT_EQ(format_le(0.005), "0.005");
  EXPECT_EQ(format_le(0.5), "0.5");
  EXPECT_EQ(format_le(1), "1");
  EXPECT_EQ(format_le(30), "30");
  EXPECT_EQ(format_le(0), "0");
  EXPECT_EQ(format_le(100000), "100000");
  EXPECT_EQ(format_le(1e6), "1e+06");
  EXPECT_EQ(format_le(2.5e6), "2.5e+06");
  EXPECT_EQ(format_le(0.0001), "0.0001");
  EXPECT_EQ(format_le(0.00001), "1e-05");
  EXPECT_EQ(format_le(kInf), "+Inf");
}

TEST(MetricsHistogram, SortsAndDeduplicatesBoundsAndDropsNonFinite) {
  const Histogram histogram({5, 1, kNaN, 0.5, 5, kInf, 1, -kInf, 2.5});
  EXPECT_EQ(histogram.upper_bounds(), (std::vector<double>{0.5, 1, 2.5, 5}));
  EXPECT_EQ(histogram.cumulative_counts(), (std::vector<std::uint64_t>{0, 0, 0, 0, 0}));
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.sum(), 0);
}

TEST(MetricsHistogram, CountsAreCumulativeAndInfEqualsCount) {
  Histogram histogram({1, 2, 4});
  // 1 is "le 1"; 4.5 and 100 are only in +Inf; NaN is ignored.
  for (double value : {0.5, 1.0, 1.5, 4.0, 4.5, 100.0, -3.0, kNaN}) histogram.observe(value);
  EXPECT_EQ(histogram.cumulative_counts(), (std::vector<std::uint64_t>{3, 4, 5, 7}));
  EXPECT_EQ(histogram.count(), 7u);
  EXPECT_EQ(histogram.cumulative_counts().back(), histogram.count());
  EXPECT_EQ(histogram.sum(), 0.5 + 1.0 + 1.5 + 4.0 + 4.5 + 100.0 - 3.0);
}

TEST(MetricsHistogram, WithoutBoundsOrLabelsOnlyInf) {
  MetricsPage page;
  Histogram empty({});
  page.histogram("h_seconds", "H.", {}, empty);
  Histogram one({0.5});
  one.observe(0.125);
  page.histogram("i_seconds", "I.", {}, one);
  EXPECT_EQ(page.text(),
            "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"+Inf\"} 0\nh_seconds_sum 0\nh_seconds_count 0\n"
            "# HELP i_seconds I.\n# TYPE i_seconds histogram\n"
            "i_seconds_bucket{le=\"0.5\"} 1\ni_seconds_bucket{le=\"+Inf\"} 1\n"
            "i_seconds_sum 0.125\ni_seconds_count 1\n");
}

TEST(MetricsConflicts, KeepsTheFirstDeclarationAndSeries) {
  MetricsPage page;
  page.gauge("g", "G.", {{"a", "1"}}, 1);
  page.counter("g", "G.", {{"a", "2"}}, 2);         // another type (and no _total)
  page.gauge("g", "Other help.", {{"a", "3"}}, 3);  // another help text
  page.gauge("g", "G.", {{"a", "1"}}, 4);           // the same series again
  page.gauge("t", "T.", {{"x", "1"}, {"y", "2"}}, 1);
  page.gauge("t", "T.", {{"y", "2"}, {"x", "1"}}, 2);  // the same label set in another order
  page.counter("g_total", "C.", {}, 1);
  page.gauge("g_total", "C.", {}, 1);  // a gauge where a counter was
  EXPECT_EQ(page.conflicts(), 5u);
  EXPECT_EQ(page.text(),
            "# HELP g G.\n# TYPE g gauge\ng{a=\"1\"} 1\n"
            "# HELP t T.\n# TYPE t gauge\nt{x=\"1\",y=\"2\"} 1\n"
            "# HELP g_total C.\n# TYPE g_total counter\ng_total 1\n");
}

TEST(MetricsConflicts, SampleNamesOfAHistogramAreTaken) {
  MetricsPage page;
  Histogram histogram({1});
  page.histogram("wait_seconds", "W.", {}, histogram);
  page.gauge("wait_seconds_count", "Clash.", {}, 1);
  page.gauge("wait_seconds_bucket", "Clash.", {}, 1);
  page.gauge("used_sum", "U.", {}, 1);
  page.histogram("used", "Clash.", {}, histogram);
  EXPECT_EQ(page.conflicts(), 3u);
  EXPECT_EQ(page.text(),
            "# HELP wait_seconds W.\n# TYPE wait_seconds histogram\n"
            "wait_seconds_bucket{le=\"1\"} 0\nwait_seconds_bucket{le=\"+Inf\"} 0\n"
            "wait_seconds_sum 0\nwait_seconds_count 0\n"
            "# HELP used_sum U.\n# TYPE used_sum gauge\nused_sum 1\n");
}

TEST(MetricsConflicts, CountersMustEndInTotalAndNeverGoNegative) {
  MetricsPage page;
  page.counter("unshelver_wakes", "No suffix.", {}, 1);
  page.counter("_total", "Only the suffix.", {}, 1);
  page.counter("unshelver_errors_total", "Negative.", {}, -1);
  page.counter("unshelver_errors_total", "NaN.", {}, kNaN);
  EXPECT_EQ(page.conflicts(), 4u);
  EXPECT_EQ(page.text(), "");
}

TEST(MetricsConflicts, InvalidNamesAreSkipped) {
  MetricsPage page;
  page.gauge("1abc", "Digit first.", {}, 1);
  page.gauge("a-b", "Dash.", {}, 1);
  page.gauge("", "Empty.", {}, 1);
  page.gauge("caf\xc3\xa9", "Not ASCII.", {}, 1);
  page.gauge("g", "G.", {{"1a", "v"}}, 1);
  page.gauge("g", "G.", {{"a:b", "v"}}, 1);  // a colon is allowed in metric names only
  page.gauge("g", "G.", {{"", "v"}}, 1);
  page.gauge("g", "G.", {{"__name__", "v"}}, 1);
  page.gauge("g", "G.", {{"a", "1"}, {"a", "2"}}, 1);
  page.gauge("g", "G.", {{"a", "\xff"}}, 1);  // not UTF-8
  page.gauge("g", "\xc3(", {}, 1);            // nor is this help
  Histogram histogram({1});
  page.histogram("h", "H.", {{"le", "1"}}, histogram);
  EXPECT_EQ(page.conflicts(), 12u);
  EXPECT_EQ(page.text(), "");

  page.gauge("ns:metric_name:rate5m", "Colons are allowed here.", {{"_Label9", "v"}}, 1);
  EXPECT_EQ(page.conflicts(), 12u);
  EXPECT_EQ(page.text(),
            "# HELP ns:metric_name:rate5m Colons are allowed here.\n"
            "# TYPE ns:metric_name:rate5m gauge\n"
            "ns:metric_name:rate5m{_Label9=\"v\"} 1\n");
}

TEST(MetricsPage, EmptyPageIsEmpty) {
  const MetricsPage page;
  EXPECT_EQ(page.text(), "");
  EXPECT_EQ(page.conflicts(), 0u);
}

// Pages written apart (one per backend, kept between scrapes) join into the page that one
// MetricsPage given every sample in the same order writes.
TEST(MetricsPageJoin, EqualsOnePageWithEverySample) {
  auto write_backend = [](MetricsPage& page, const std::string& name, double state) {
    page.gauge("x_state", "The state.", {{"backend", name}}, state);
    Histogram durations({1, 5});
    durations.observe(state);
    page.histogram("x_duration_seconds", "Durations.", {{"backend", name}}, durations);
    if (state > 1) page.counter("x_wakes_total", "Wakes.", {{"backend", name}}, state);
  };
  MetricsPage whole;
  MetricsPage head;
  for (MetricsPage* page : {&whole, &head}) page->counter("x_reloads_total", "Reloads.", {}, 3);
  std::vector<MetricsPage> backends(3);
  for (int i = 0; i < 3; ++i) {
    write_backend(whole, "b" + std::to_string(i), i);
    write_backend(backends[static_cast<std::size_t>(i)], "b" + std::to_string(i), i);
    // The last page shares the families it has in common with the one before (freeze(like)):
    // the join tells those apart by pointer, the others by their text.
    backends[static_cast<std::size_t>(i)].freeze(i == 2 ? &backends[1] : nullptr);
  }
  std::vector<const MetricsPage*> pages{&head};
  for (const MetricsPage& page : backends) pages.push_back(&page);
  std::size_t conflicts = 0;
  EXPECT_EQ(MetricsPage::join(pages, &conflicts), whole.text());
  EXPECT_EQ(conflicts, 0u);
  EXPECT_EQ(MetricsPage::join({}), "");
}

TEST(MetricsPageJoin, AFamilyDeclaredOtherwiseIsLeftOutAndCounted) {
  MetricsPage first;
  first.gauge("x_things", "Things.", {{"backend", "a"}}, 1);
  MetricsPage second;
  second.counter("x_things_total", "Other things.", {{"backend", "b"}}, 1);
  second.gauge("x_things", "Another help.", {{"backend", "b"}}, 2);
  std::size_t conflicts = 0;
  const std::string text = MetricsPage::join({&first, &second}, &conflicts);
  EXPECT_EQ(conflicts, 1u);
  EXPECT_EQ(text.find("x_things{backend=\"b\"}"), std::string::npos);
  EXPECT_NE(text.find("x_things_total{backend=\"b\"} 1"), std::string::npos);
}

// counters() writes what counter() writes for each sample, mistakes included.
TEST(MetricsPageJoin, CountersEqualCounterForEachSample) {
  const std::vector<std::pair<std::string_view, double>> samples = {
      {"a", 1}, {"b\"x", 2.5}, {"a", 3}, {"c", -1}, {"\xff", 4}, {"d", std::nan("")}, {"e", 1e12}};
  MetricsPage one_by_one;
  MetricsPage at_once;
  for (MetricsPage* page : {&one_by_one, &at_once}) page->gauge("x_up", "Up.", {}, 1);
  for (const auto& [value, count] : samples)
    one_by_one.counter("x_seconds_total", "Seconds.", {{"backend", std::string(value)}}, count);
  at_once.counters("x_seconds_total", "Seconds.", "backend", samples);
  EXPECT_EQ(at_once.text(), one_by_one.text());
  EXPECT_EQ(at_once.conflicts(), one_by_one.conflicts());
  EXPECT_EQ(at_once.conflicts(), 4u);
  // A first sample that is a mistake does not stop the others.
  MetricsPage bad_first;
  bad_first.counters("x_seconds_total", "Seconds.", "backend", {{"\xff", 1}, {"a", 2}});
  EXPECT_EQ(bad_first.conflicts(), 1u);
  EXPECT_NE(bad_first.text().find("x_seconds_total{backend=\"a\"} 2\n"), std::string::npos);
  // An invalid name is a mistake for every sample.
  MetricsPage bad_name;
  bad_name.counters("x seconds_total", "Seconds.", "backend", {{"a", 1}, {"b", 2}});
  EXPECT_EQ(bad_name.conflicts(), 2u);
  EXPECT_EQ(bad_name.text(), "");
}

// The shared join is the same text as slices of the pages' own samples, and keeps the pages.
TEST(MetricsPageJoin, SharedEqualsTheCopiedJoinAndKeepsItsPages) {
  auto head = std::make_shared<MetricsPage>();
  head->counter("x_reloads_total", "Reloads.", {}, 3);
  std::vector<std::shared_ptr<const MetricsPage>> pages{head};
  std::vector<const MetricsPage*> plain{head.get()};
  for (int i = 0; i < 4; ++i) {
    MetricsPage page;
    page.gauge("x_state", "The state.", {{"backend", "b" + std::to_string(i)}}, i);
    page.counter("x_wakes_total", "Wakes.", {{"backend", "b" + std::to_string(i)}}, i);
    page.freeze(pages.size() > 1 ? pages.back().get() : nullptr);
    auto kept = std::make_shared<const MetricsPage>(std::move(page));
    plain.push_back(kept.get());
    pages.push_back(std::move(kept));
  }
  MetricsPage other;
  other.counter("x_state_total", "Clashes with nothing.", {}, 1);
  other.counter("x_wakes_total", "Another help.", {{"backend", "z"}}, 1);  // a conflict
  pages.push_back(std::make_shared<const MetricsPage>(std::move(other)));
  plain.push_back(pages.back().get());

  std::size_t copied_conflicts = 0;
  std::size_t shared_conflicts = 0;
  const std::string copied = MetricsPage::join(plain, &copied_conflicts);
  const std::weak_ptr<const MetricsPage> watched = pages[1];
  SharedText text = MetricsPage::join_shared(pages, &shared_conflicts);
  EXPECT_EQ(shared_conflicts, copied_conflicts);
  EXPECT_EQ(shared_conflicts, 1u);
  plain.clear();
  pages.clear();
  head.reset();
  // The text still reads whole with every page dropped by its writers, and then lets them go.
  EXPECT_FALSE(watched.expired());
  EXPECT_EQ(text.joined(), copied);
  EXPECT_EQ(text.size(), copied.size());
  text.clear();
  EXPECT_TRUE(watched.expired());
  EXPECT_EQ(MetricsPage::join_shared({}).joined(), "");
}

// Merged pages join as the pages they were merged from, beside others (a page before and after
// them, with a family of theirs), with the same mistakes left out, and take no more samples.
TEST(MetricsPageJoin, AMergedPageJoinsAsItsPages) {
  MetricsPage head;
  head.counter("x_wakes_total", "Wakes.", {{"backend", "head"}}, 7);
  std::vector<MetricsPage> backends;
  for (int i = 0; i < 5; ++i) {
    MetricsPage page;
    const Labels labels{{"backend", "b" + std::to_string(i)}};
    page.gauge("x_state", "The state.", labels, i);
    if (i % 2 == 0) page.counter("x_wakes_total", "Wakes.", labels, i);
    Histogram durations({1, 10});
    durations.observe(i);
    page.histogram("x_wake_seconds", "Durations.", labels, durations);
    page.freeze(backends.empty() ? nullptr : &backends.back());
    backends.push_back(std::move(page));
  }
  MetricsPage clash;
  clash.gauge("x_state", "Another help.", {{"backend", "z"}}, 1);  // a conflict
  backends.push_back(std::move(clash));
  MetricsPage tail;
  tail.counter("x_seconds_total", "Seconds.", {{"backend", "b0"}}, 2.5);
  tail.counter("x_wakes_total", "Wakes.", {{"backend", "tail"}}, 1);

  std::vector<const MetricsPage*> separate{&head};
  std::vector<const MetricsPage*> merged_from;
  for (const MetricsPage& page : backends) {
    separate.push_back(&page);
    merged_from.push_back(&page);
  }
  separate.push_back(&tail);
  std::size_t separate_conflicts = 0;
  std::size_t merge_conflicts = 0;
  const std::string expected = MetricsPage::join(separate, &separate_conflicts);
  MetricsPage merged = MetricsPage::merge(merged_from, &merge_conflicts);
  EXPECT_EQ(merge_conflicts, separate_conflicts);
  EXPECT_EQ(merge_conflicts, 1u);
  EXPECT_EQ(MetricsPage::join({&head, &merged, &tail}), expected);
  EXPECT_EQ(merged.text(), MetricsPage::join(merged_from));
  // One family, one piece: the shared join of the merged page is a slice per family.
  auto kept = std::make_shared<const MetricsPage>(std::move(merged));
  const SharedText text = MetricsPage::join_shared({kept});
  EXPECT_EQ(text.joined(), MetricsPage::join(merged_from));
  EXPECT_LE(text.slices().size(), 6u);
  MetricsPage frozen = MetricsPage::merge(merged_from);
  frozen.gauge("x_late", "Late.", {}, 1);
  EXPECT_EQ(frozen.conflicts(), 1u);
  EXPECT_EQ(MetricsPage::merge({}).text(), "");
}

TEST(MetricsPageJoin, AFrozenPageTakesNoMoreSamples) {
  MetricsPage page;
  page.gauge("x_up", "Up.", {}, 1);
  const std::string before = page.text();
  page.freeze();
  page.gauge("x_other", "Other.", {}, 2);
  EXPECT_EQ(page.text(), before);
  EXPECT_EQ(page.conflicts(), 1u);
}

}  // namespace
}  // namespace unshelver::core
