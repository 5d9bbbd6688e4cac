#include "bill/ledger.h"

#include <algorithm>

namespace unshelver::core {

namespace {

double seconds_between(TimePoint from, TimePoint to) {
  if (to <= from) return 0;
  return std::chrono::duration<double>(to - from).count();
}

// What a record says about the machine: nullopt when it says nothing.
enum class Reading { kNothing, kAwake, kAsleep, kUnknown };

Reading read(const EventRecord& record) {
  // The machine runs and cannot be shelved, whatever state the record moves to.
  if (record.action == "shelve_failed") return Reading::kAwake;
  if (!record.to.empty()) {
    if (record.to == "asleep") return Reading::kAsleep;
    if (record.to == "waking" || record.to == "booting" || record.to == "ready" || record.to == "sleeping")
      return Reading::kAwake;
    return Reading::kUnknown;  // error, unknown, or a state this version does not know
  }
  if (record.action == "unshelve_requested" || record.action == "unshelve_complete") return Reading::kAwake;
  if (record.action == "shelve_complete") return Reading::kAsleep;
  return Reading::kNothing;
}

}  // namespace

Usage& Usage::operator+=(const Usage& other) {
  awake += other.awake;
  asleep += other.asleep;
  unknown += other.unknown;
  would_sleep += other.would_sleep;
  return *this;
}

std::string Ledger::backend_of(const EventRecord& record) const {
  if (!record.backend.empty()) return record.backend;
  // A line of the Python unshelver names the instance; other records without a backend are
  // events of the whole daemon.
  if (!record.to.empty() || record.instance_name.empty()) return {};
  const auto found = backend_of_instance_.find(record.instance_name);
  return found == backend_of_instance_.end() ? std::string() : found->second;
}

bool Ledger::counts(const EventRecord& record) const {
  const bool dry_run = record.action == "dry_run_would_shelve" || record.action == "dry_run_would_wake";
  return (read(record) != Reading::kNothing || dry_run) && !backend_of(record).empty();
}

void Ledger::add(const EventRecord& record) {
  if (!counts(record)) return;
  const std::string backend = backend_of(record);
  const Reading reading = read(record);
  const bool would_shelve = record.action == "dry_run_would_shelve";
  const bool would_wake = record.action == "dry_run_would_wake";

  Track& track = tracks_[backend];
  const TimePoint at = track.first ? std::max(record.at, track.newest) : record.at;
  if (!track.first) {
    track.first = at;
    track.current_from = at;
  }
  track.newest = at;

  if (reading == Reading::kAwake) enter(track, Kind::kAwake, at);
  if (reading == Reading::kAsleep) enter(track, Kind::kAsleep, at);
  if (reading == Reading::kUnknown) enter(track, Kind::kUnknown, at);
  if (would_wake || track.current != Kind::kAwake) close_would_sleep(track, at);
  // A dry run's backend runs all along: only then could it have been shelved.
  if (would_shelve && track.current == Kind::kAwake && !track.would_sleep_from) track.would_sleep_from = at;
}

void Ledger::enter(Track& track, Kind kind, TimePoint at) const {
  if (kind == track.current) return;  // waking -> booting -> ready -> sleeping: one period
  if (at > track.current_from) {
    if (at > horizon_) track.closed.push_back(Span{track.current, track.current_from, at});
    const double seconds = seconds_between(track.current_from, at);
    if (track.current == Kind::kAwake) track.closed_total.awake += seconds;
    if (track.current == Kind::kAsleep) track.closed_total.asleep += seconds;
    if (track.current == Kind::kUnknown) track.closed_total.unknown += seconds;
  }
  track.current = kind;
  track.current_from = at;
}

void Ledger::close_would_sleep(Track& track, TimePoint at) const {
  if (!track.would_sleep_from) return;
  if (at > *track.would_sleep_from) {
    if (at > horizon_) track.would_sleep.push_back(Span{Kind::kAwake, *track.would_sleep_from, at});
    track.closed_total.would_sleep += seconds_between(*track.would_sleep_from, at);
  }
  track.would_sleep_from.reset();
}

void Ledger::forget_before(TimePoint horizon) {
  if (horizon <= horizon_) return;
  horizon_ = horizon;
  auto ended = [horizon](const Span& span) { return span.to <= horizon; };
  for (auto& [name, track] : tracks_) {
    // Spans are in order: those that ended before the horizon are at the front.
    track.closed.erase(track.closed.begin(),
                       std::find_if_not(track.closed.begin(), track.closed.end(), ended));
    track.would_sleep.erase(track.would_sleep.begin(),
                            std::find_if_not(track.would_sleep.begin(), track.would_sleep.end(), ended));
  }
}

void Ledger::count(const std::vector<Span>& spans, TimePoint from, TimePoint to,
                   const std::function<void(const Span&, double)>& add) {
  // The spans are in order and do not overlap: skip those that end before the period.
  auto first = std::lower_bound(spans.begin(), spans.end(), from,
                                [](const Span& span, TimePoint at) { return span.to <= at; });
  for (auto span = first; span != spans.end() && span->from < to; ++span) {
    add(*span, seconds_between(std::max(span->from, from), std::min(span->to, to)));
  }
}

Usage Ledger::usage(const std::string& backend, TimePoint since, TimePoint until, TimePoint now) const {
  Usage usage;
  const TimePoint end = std::min(until, now);
  if (end <= since) return usage;
  const auto found = tracks_.find(backend);
  if (found == tracks_.end()) {
    usage.unknown = seconds_between(since, end);
    return usage;
  }
  const Track& track = found->second;
  usage.unknown = seconds_between(since, std::min(end, *track.first));
  auto add = [&usage](const Span& span, double seconds) {
    if (span.kind == Kind::kAwake) usage.awake += seconds;
    if (span.kind == Kind::kAsleep) usage.asleep += seconds;
    if (span.kind == Kind::kUnknown) usage.unknown += seconds;
  };
  count(track.closed, since, end, add);
  add(Span{track.current, track.current_from, end},
      seconds_between(std::max(track.current_from, since), end));
  count(track.would_sleep, since, end,
        [&usage](const Span&, double seconds) { usage.would_sleep += seconds; });
  if (track.would_sleep_from)
    usage.would_sleep += seconds_between(std::max(*track.would_sleep_from, since), end);
  return usage;
}

std::vector<DayUsage> Ledger::daily(const std::string& backend, TimePoint since, TimePoint until,
                                    TimePoint now) const {
  std::vector<DayUsage> days;
  for (TimePoint day = start_of_day(since); day < until; day += std::chrono::hours(24)) {
    const TimePoint next = day + std::chrono::hours(24);
    days.push_back(DayUsage{day, usage(backend, std::max(day, since), std::min(next, until), now)});
  }
  return days;
}

Usage Ledger::total(const std::string& backend, TimePoint now) const {
  const auto found = tracks_.find(backend);
  if (found == tracks_.end()) return {};
  const Track& track = found->second;
  Usage total = track.closed_total;
  // The clock may step back; the counters never do.
  const TimePoint end = std::max(now, track.newest);
  const double open = seconds_between(track.current_from, end);
  if (track.current == Kind::kAwake) total.awake += open;
  if (track.current == Kind::kAsleep) total.asleep += open;
  if (track.current == Kind::kUnknown) total.unknown += open;
  if (track.would_sleep_from) total.would_sleep += seconds_between(*track.would_sleep_from, end);
  return total;
}

std::optional<TimePoint> Ledger::first_record(const std::string& backend) const {
  const auto found = tracks_.find(backend);
  if (found == tracks_.end()) return std::nullopt;
  return found->second.first;
}

std::vector<std::string> Ledger::backends() const {
  std::vector<std::string> names;
  for (const auto& [name, track] : tracks_) names.push_back(name);
  return names;
}

std::map<std::string, std::string> backends_by_instance(const std::vector<BackendConfig>& backends) {
  std::map<std::string, std::string> names;
  for (const BackendConfig& backend : backends) {
    if (!backend.instance_name.empty()) names.emplace(backend.instance_name, backend.name);
    if (!backend.instance_id.empty()) names.emplace(backend.instance_id, backend.name);
  }
  return names;
}

TimePoint start_of_day(TimePoint at) {
  return std::chrono::floor<std::chrono::days>(at);
}

TimePoint start_of_month(TimePoint at) {
  const std::chrono::year_month_day date{std::chrono::floor<std::chrono::days>(at)};
  return std::chrono::sys_days{date.year() / date.month() / std::chrono::day{1}};
}

TimePoint start_of_next_month(TimePoint at) {
  const std::chrono::year_month_day date{std::chrono::floor<std::chrono::days>(at)};
  const std::chrono::year_month next = date.year() / date.month() + std::chrono::months{1};
  return std::chrono::sys_days{next / std::chrono::day{1}};
}

}  // namespace unshelver::core
