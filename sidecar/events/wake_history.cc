#include "events/wake_history.h"

#include <algorithm>
#include <cmath>

#include "base/text.h"
#include "base/time_format.h"

namespace unshelver::core {

namespace {
using std::chrono::milliseconds;

// What a record says about the machine, or nullopt when it says nothing (see the header).
struct Reading {
  bool says_presence = false;
  std::optional<Presence> presence;  // with says_presence: nullopt means "not known"
};

Reading read_presence(const EventRecord& record) {
  if (!record.to.empty()) {
    if (record.to == "asleep") return {true, Presence::kAsleep};
    if (record.to == "waking" || record.to == "booting" || record.to == "ready" || record.to == "sleeping")
      return {true, Presence::kAwake};
    return {true, std::nullopt};  // error, unknown, or a state this version does not know
  }
  if (record.action == "unshelve_requested" || record.action == "unshelve_complete")
    return {true, Presence::kAwake};
  if (record.action == "shelve_complete") return {true, Presence::kAsleep};
  return {};
}

bool abandons_wake(const EventRecord& record) {
  if (record.from == "unknown") return true;  // a new process: the wake spans the daemon's downtime
  if (record.to == "error" || record.to == "asleep" || record.to == "sleeping" || record.to == "unknown")
    return true;
  return record.action == "unshelve_incomplete" || record.action == "workflow_failed" ||
         record.action == "shelve_requested" || record.action == "shelve_complete";
}

double median_seconds(std::vector<milliseconds> durations) {
  std::sort(durations.begin(), durations.end());
  const std::size_t middle = durations.size() / 2;
  const double upper = static_cast<double>(durations[middle].count()) / 1000.0;
  if (durations.size() % 2 == 1) return upper;
  return (static_cast<double>(durations[middle - 1].count()) / 1000.0 + upper) / 2.0;
}

}  // namespace

void WakeHistory::seed(std::vector<EventRecord> records) {
  std::stable_sort(records.begin(), records.end(), [](const EventRecord& a, const EventRecord& b) {
    return a.at != b.at ? a.at < b.at : a.seq < b.seq;
  });
  for (const EventRecord& record : records) add(record);
}

void WakeHistory::add(const EventRecord& record) {
  if (record.backend.empty()) return;  // an event of the whole daemon
  const Reading reading = read_presence(record);
  const bool starts_wake = record.action == "unshelve_requested";
  const bool completes_wake = record.action == "unshelve_complete";
  const bool abandons = abandons_wake(record);
  if (!reading.says_presence && !starts_wake && !completes_wake && !abandons) return;

  Track& track = tracks_[record.backend];
  const TimePoint at = track.newest ? std::max(record.at, *track.newest) : record.at;
  track.newest = at;

  if (completes_wake && track.wake_requested) {
    const auto took = std::chrono::duration_cast<milliseconds>(at - *track.wake_requested);
    track.wakes.push_back(CompletedWake{*track.wake_requested, took});
    track.last_durations.push_back(took);
    if (track.last_durations.size() > settings_.estimate_wakes) track.last_durations.pop_front();
    track.wake_requested.reset();
  }
  // A restart's first observation abandons the wake before a request in the same record (there
  // is none today) could open a new one.
  if (abandons) track.wake_requested.reset();
  if (starts_wake) track.wake_requested = at;
  if (reading.says_presence) enter(track, reading.presence, at);
  prune(track, at);
}

void WakeHistory::enter(Track& track, std::optional<Presence> state, TimePoint at) const {
  if (state == track.current && track.current) return;  // waking -> booting -> ready: one period
  if (track.current && at > track.current_from) {
    track.closed.push_back(PresencePeriod{*track.current, track.current_from, at});
  }
  track.current = state;
  track.current_from = at;
}

void WakeHistory::prune(Track& track, TimePoint now) const {
  const TimePoint start = now - settings_.window;
  while (!track.closed.empty() &&
         (track.closed.front().to <= start || track.closed.size() > settings_.max_periods)) {
    track.closed.pop_front();
  }
  while (!track.wakes.empty() &&
         (track.wakes.front().requested_at < start || track.wakes.size() > settings_.max_wakes)) {
    track.wakes.pop_front();
  }
}

BackendHistory WakeHistory::history(const std::string& backend, TimePoint now) const {
  BackendHistory result;
  result.estimate_seconds = estimate_seconds(backend);
  const auto found = tracks_.find(backend);
  if (found == tracks_.end()) return result;
  const Track& track = found->second;
  const TimePoint start = now - settings_.window;
  auto keep = [&](Presence state, TimePoint from, TimePoint to) {
    from = std::max(from, start);
    to = std::min(to, now);
    if (to > from) result.periods.push_back(PresencePeriod{state, from, to});
  };
  for (const PresencePeriod& period : track.closed) keep(period.state, period.from, period.to);
  if (track.current) keep(*track.current, track.current_from, now);
  for (const CompletedWake& wake : track.wakes) {
    if (wake.requested_at >= start && wake.requested_at <= now) result.wakes.push_back(wake);
  }
  return result;
}

std::optional<double> WakeHistory::estimate_seconds(const std::string& backend) const {
  const auto found = tracks_.find(backend);
  if (found == tracks_.end() || found->second.last_durations.empty()) return std::nullopt;
  const auto& durations = found->second.last_durations;
  return rounded_seconds(median_seconds({durations.begin(), durations.end()}));
}

double rounded_seconds(double seconds) {
  return std::round(seconds * 10.0) / 10.0;
}

nlohmann::json history_json(const BackendHistory& history) {
  nlohmann::json periods = nlohmann::json::array();
  for (const PresencePeriod& period : history.periods) {
    periods.push_back({{"state", period.state == Presence::kAwake ? "awake" : "asleep"},
                       {"from", format_rfc3339(period.from)},
                       {"to", format_rfc3339(period.to)}});
  }
  nlohmann::json wakes = nlohmann::json::array();
  for (const CompletedWake& wake : history.wakes) {
    wakes.push_back({{"requested_at", format_rfc3339(wake.requested_at)},
                     {"seconds", rounded_seconds(static_cast<double>(wake.took.count()) / 1000.0)}});
  }
  return {{"periods", std::move(periods)}, {"wakes", std::move(wakes)}};
}

std::string history_summary(const BackendHistory& history, std::chrono::seconds window) {
  std::chrono::seconds awake{0};
  for (const PresencePeriod& period : history.periods) {
    if (period.state == Presence::kAwake)
      awake += std::chrono::duration_cast<std::chrono::seconds>(period.to - period.from);
  }
  const std::size_t wakes = history.wakes.size();
  const long long days = window.count() / 86400;
  const std::string span = days * 86400 == window.count()
                               ? std::to_string(days) + (days == 1 ? " day" : " days")
                               : human_duration(window);
  std::string text = "awake " + human_duration(awake) + " in the last " + span + ", " +
                     std::to_string(wakes) + (wakes == 1 ? " wake" : " wakes");
  if (history.estimate_seconds) {
    text += ", a wake takes about " +
            human_duration(std::chrono::seconds(std::llround(*history.estimate_seconds)));
  }
  return text;
}

}  // namespace unshelver::core
