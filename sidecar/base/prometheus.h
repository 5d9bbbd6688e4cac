// MetricsPage: writes a page of the Prometheus text exposition format, version 0.0.4, for a
// scrape of /metrics. Pure: the daemon writes pages from its counters (declare each sample with
// its family's name, help text and type, in any order), keeps each backend's page while it does
// not change, joins them (join) and serves the text with kPrometheusContentType.
//
// The page groups what it is given: each family (metric name) gets one "# HELP" and one "# TYPE"
// line, followed by all of its samples in the order they were added, even when samples of
// different families were added interleaved. Families appear in the order of their first sample.
//
// A call that would make the page invalid is a programming mistake, not a runtime condition: it
// is dropped (the first declaration and the first sample win), counted in conflicts() so that a
// test can see it, and never throws. The mistakes are: an invalid metric or label name, a label
// name given twice, a label value or help text that is not UTF-8, a family declared again with
// another type or help text, a series (name and label set) added twice, a sample name that
// belongs to another family (a gauge "x_count" next to a histogram "x"), a counter whose name
// does not end in "_total", and a negative or NaN counter.
//
// Counters carry their full name, "_total" included, in "# HELP", "# TYPE" and the sample
// ("# TYPE unshelver_wakes_total counter" then "unshelver_wakes_total 3"). In the 0.0.4 text
// format a family's samples must carry the name of its TYPE line exactly (only histograms and
// summaries add suffixes), so "# TYPE unshelver_wakes counter" followed by
// "unshelver_wakes_total 3" is read as two families, and `promtool check metrics` then reports
// 'counter metrics should have "_total" suffix' and "no help text" (checked with promtool
// 2.42). The client libraries write counters this way in this format too. (OpenMetrics is
// different: there the TYPE line names the family without "_total".)
//
// Values: integers (up to 2^53) are written as integers ("12", "1700000000"), other finite values
// in the shortest form that reads back to the same double, as Go's strconv.FormatFloat(v, 'g', -1)
// writes them ("0.25", "1e-07", "9.1e+15"); the special values are "+Inf", "-Inf" and "NaN". A
// histogram's "le" label is written exactly as the Go client library writes it ("0.5", "1",
// "30", "1e+06", "+Inf"): Prometheus compares "le" as text, so a series keeps its identity only
// if every writer spells it alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/shared_text.h"

namespace unshelver::core {

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::vector<std::pair<std::string, std::string>>;

// A classic Prometheus histogram: counts of observations at or below each upper bound, plus
// their count and sum.
class Histogram {
 public:
  // The bounds are sorted and deduplicated; NaN and infinite bounds are dropped (the "+Inf"
  // bucket is always there, and holds every observation).
  explicit Histogram(std::vector<double> upper_bounds);

  // Counts `value` in the first bucket whose bound is >= value (an observation equal to a bound
  // belongs to that bound's bucket: "le" means less or equal). A NaN observation is ignored:
  // it would turn the sum into NaN for good.
  void observe(double value);

  // The finite bounds, sorted, without duplicates.
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Cumulative counts, one per bound and then one for "+Inf" (equal to count()).
  std::vector<std::uint64_t> cumulative_counts() const;
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> upper_bounds_;
  std::vector<std::uint64_t> bucket_counts_;  // not cumulative; the last one is "+Inf"
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

class MetricsPage {
 public:
  // `help` should not be empty: promtool's lint reports "no help text".
  void counter(std::string_view name, std::string_view help, const Labels& labels, double value);
  // Counters of one family with one label, a sample per value of it: the same as counter() for
  // each (the same checks and mistakes), but the name and help are checked once, for what is
  // written at every scrape for every backend (seconds that grow with the clock).
  void counters(std::string_view name, std::string_view help, std::string_view label,
                const std::vector<std::pair<std::string_view, double>>& samples);
  void gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  // Writes name_bucket{...,le="..."} for each bound and "+Inf", then name_sum and name_count.
  void histogram(std::string_view name, std::string_view help, const Labels& labels,
                 const Histogram& histogram);

  // The page; empty when nothing was added, otherwise every line ends with "\n".
  std::string text() const;

  // How many calls were dropped as mistakes (see the top of this file).
  std::size_t conflicts() const { return conflicts_; }

  // For a page kept in a cache and joined with others (join below): drops what checks further
  // samples (the series and sample names seen), so the page holds little more than its text.
  // Samples added afterwards are dropped as mistakes. With `like` (another page written the same
  // way, such as another backend's), each family that has the same name, help and type there
  // shares that page's copy of them: the pages hold one copy between them, and join_shared tells
  // such families the same by a pointer rather than by comparing their text.
  void freeze(const MetricsPage* like = nullptr);

  // The pages as one exposition, as if every sample had been added to one page in the order of
  // `pages`: each family once, with one "# HELP" and "# TYPE" and the samples of every page. A
  // page's family whose type or help differs from the first page's is a mistake: its samples are
  // left out and counted in `conflicts`. Series are not compared across pages: each page's
  // must be its own (one page per backend, each series with its backend label). Joining copies
  // text; nothing is formatted again.
  static std::string join(const std::vector<const MetricsPage*>& pages, std::size_t* conflicts = nullptr);
  // The same text as join, as slices of the pages' own samples (each page is kept with the
  // text, so a page replaced while the text is being sent stays until then): only the families'
  // HELP and TYPE lines are written, a few kilobytes, whatever the number of pages.
  static SharedText join_shared(const std::vector<std::shared_ptr<const MetricsPage>>& pages,
                                std::size_t* conflicts = nullptr);
  // The pages as one frozen page, each family's samples of every page copied together, as join
  // writes them: what join and join_shared give for the result is what they give for `pages`.
  // For pages that change far less often than they are served (one per backend, scraped every
  // few seconds): joined once per change, a scrape sends each family as one slice rather than one
  // per page.
  static MetricsPage merge(const std::vector<const MetricsPage*>& pages, std::size_t* conflicts = nullptr);

 private:
  enum class Type { kCounter, kGauge, kHistogram };

  // What makes a family the same one on every page: shared between pages by freeze(like).
  struct Kind {
    std::string name;
    std::string help;
    Type type;
  };
  struct Family {
    std::shared_ptr<const Kind> kind;
    std::string samples;                // the sample lines, in the order they were added
    std::set<std::string> series_keys;  // label sets already written, in a canonical order
  };

  // The family to add a new series to, created if needed, with the series recorded; nullptr (and
  // a counted mistake) when the name, help or labels are invalid, the declaration conflicts or
  // the series exists. Sets `rendered_labels` to the labels as written between the braces.
  static void write_header(const Family& family, std::string& page);
  // For join: each family of `pages` once, in the order of its first page, with the samples of
  // every page that has it; adds the samples' size to `sample_bytes`.
  struct Joined {
    const Family* first;
    std::vector<const std::string*> samples;
  };
  static std::vector<Joined> families_of(const std::vector<const MetricsPage*>& pages, std::size_t* conflicts,
                                         std::size_t* sample_bytes);
  Family* declare(std::string_view name, std::string_view help, Type type, const Labels& labels,
                  std::string& rendered_labels);

  std::vector<Family> families_;                             // in the order of their first sample
  std::map<std::string, std::size_t, std::less<>> by_name_;  // family name -> index
  // Every sample name in use; a histogram uses name_bucket, name_sum and name_count.
  std::set<std::string, std::less<>> sample_names_;
  std::size_t conflicts_ = 0;
  bool frozen_ = false;
};

// Exposed for tests: how MetricsPage writes a sample value and a histogram's "le".
std::string format_metric_value(double value);
std::string format_le(double upper_bound);

}  // namespace unshelver::core
