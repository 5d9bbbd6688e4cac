// WakeHistory: what the event log says about each backend's recent past, for the pages: when it
// was awake and when asleep over the last 7 days, how long its wakes took, and from those an
// estimate of how long the next wake will take (issue 16).
//
// Pure: it is fed event records (events/record.h), from the tail of the log at start-up and then
// each record as it is written, and answers from memory. Bounded per backend: periods and wakes
// older than the window are dropped, and at most `max_periods` periods and `max_wakes` wakes are
// kept (the oldest go first); the estimate's last `estimate_wakes` durations are kept whatever
// their age, so that a backend unused for a fortnight still has an estimate.
//
// How records are read:
// - A period's state follows each record's `to`: asleep is "asleep"; waking, booting, ready and
//   sleeping are "awake" (the machine runs or is being started or stopped); error and unknown end
//   the period without starting one (the timeline shows a gap: nobody knows). Lines of the Python
//   unshelver, which have no `to`, count by action (unshelve_requested and unshelve_complete:
//   awake; shelve_complete: asleep). Other actions (logins, Caddy, unknown ones) change nothing.
// - A wake runs from unshelve_requested to unshelve_complete. It is abandoned, and never counted,
//   when it fails or is called off (a `to` of error, asleep, sleeping or unknown; the actions
//   unshelve_incomplete, workflow_failed, shelve_requested, shelve_complete), and when the daemon
//   restarts in the middle (a record `from` unknown: the first observation of a new process),
//   because its duration would include the time the daemon was down. A second request while one
//   is open replaces it: the first never completed as far as the log shows.
// - Out of order: seed() sorts the records by time (then seq); a record added later that is older
//   than the backend's newest one (the wall clock stepped back) counts at the newest one's time,
//   so that no period or wake has a negative length.
// - The daemon's own downtime is not known from the log: the period before a restart lasts until
//   the new process's first record for the backend.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "events/record.h"

namespace unshelver::core {

struct WakeHistorySettings {
  std::chrono::seconds window = std::chrono::hours(24 * 7);
  std::size_t max_periods = 500;   // per backend: a change of state every 20 minutes for a week
  std::size_t max_wakes = 200;     // per backend
  std::size_t estimate_wakes = 5;  // the estimate is the median of this many last wakes
};

enum class Presence { kAwake, kAsleep };

struct PresencePeriod {
  Presence state = Presence::kAsleep;
  TimePoint from;
  TimePoint to;
};

struct CompletedWake {
  TimePoint requested_at;
  std::chrono::milliseconds took{0};  // from the request to ready
};

// One backend's history as the pages show it.
struct BackendHistory {
  std::vector<PresencePeriod> periods;     // oldest first, within the window, the last one ending now
  std::vector<CompletedWake> wakes;        // oldest first, requested within the window
  std::optional<double> estimate_seconds;  // nullopt before the first completed wake
};

class WakeHistory {
 public:
  explicit WakeHistory(WakeHistorySettings settings = {}) : settings_(settings) {}

  // The records of the log's tail, in any order; replaces nothing that was added before, so it is
  // called once, before add().
  void seed(std::vector<EventRecord> records);
  // A record just written.
  void add(const EventRecord& record);

  // The backend's history at `now`: periods clipped to [now - window, now] (the current one ends
  // at `now`), wakes requested within the window, and the estimate.
  BackendHistory history(const std::string& backend, TimePoint now) const;
  // The median of the last `estimate_wakes` completed wakes, in seconds; nullopt before the first.
  std::optional<double> estimate_seconds(const std::string& backend) const;

  const WakeHistorySettings& settings() const { return settings_; }

 private:
  struct Track {
    std::deque<PresencePeriod> closed;  // oldest first
    std::optional<Presence> current;    // nullopt: not known (error, unknown, nothing seen yet)
    TimePoint current_from{};
    std::optional<TimePoint> wake_requested;
    std::deque<CompletedWake> wakes;
    std::deque<std::chrono::milliseconds> last_durations;  // for the estimate, oldest first
    std::optional<TimePoint> newest;                       // the newest record's time
  };
  void enter(Track& track, std::optional<Presence> state, TimePoint at) const;
  void prune(Track& track, TimePoint now) const;

  WakeHistorySettings settings_;
  std::map<std::string, Track> tracks_;
};

// {"periods": [{"state", "from", "to"}], "wakes": [{"requested_at", "seconds"}]}, times in RFC 3339.
nlohmann::json history_json(const BackendHistory& history);
// The seconds as the JSON shows them: to a tenth of a second.
double rounded_seconds(double seconds);
// One line for the control page without JavaScript: "awake 12 h in the last 7 days, 9 wakes,
// median 2 min".
std::string history_summary(const BackendHistory& history, std::chrono::seconds window);

}  // namespace unshelver::core
