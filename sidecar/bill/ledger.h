// Ledger: how long each backend's machine ran and how long it slept, over any period, from the
// event log (issue 17, "Savings report"); bill/costs.h turns the seconds into money.
//
// Pure: it is fed event records (events/record.h) in the order they were written (add), and
// answers from memory. It keeps periods, not records: its memory grows with the number of
// awake/asleep changes. The daemon keeps one, fed the whole log (every rotated file) at start-up
// and then each record as it is written; `unshelver report` builds one from the log files the same
// way (io::EventLogSnapshot::for_each_record), so both show the same figures.
//
// How a record is read (the state machine in backend/state_machine.h):
// - Awake (the running price) from the first record whose `to` is waking, booting, ready or
//   sleeping: from the moment the wake is requested (or the first observation finds the machine
//   starting or running) until a record's `to` is asleep (shelve_complete, cloud_stopped, or a
//   first observation that finds it shelved). A cloud bills a starting and a stopping machine,
//   and the log cannot tell when within `waking` the meter starts, so the whole wake counts.
// - Asleep (the shelved price) from a record whose `to` is asleep until the next awake one.
// - Unknown (neither price, shown apart) for `to` error or unknown: a failed wake may or may not
//   have left the machine running, and the log does not say. An exception is the action
//   `shelve_failed`, which says the machine runs with no way to shelve it: awake.
// - Lines of the Python unshelver, which have no `to` and no backend, count by action
//   (unshelve_requested and unshelve_complete: awake; shelve_complete: asleep) for the backend
//   whose instance_name (or instance_id) they name; lines of other instances are left out.
// - Before a backend's first record nothing is known: a period that starts earlier counts the
//   time before it as unknown. Nothing after `now` is counted.
// - A restart leaves a gap in the records while the daemon was down; the state continues through
//   it (the machine does not change while nobody acts on it), until the new process's first
//   observation says what it found.
// - Dry run: `dry_run_would_shelve` opens a period during which the backend would have been
//   asleep, `dry_run_would_wake` closes it (so does a record that the machine really stopped or
//   became unknown). That time is also awake time (the machine really ran); it is reported apart
//   as projected savings.
// - Out of order (a clock stepped back): a record older than the backend's newest counts at the
//   newest one's time, so that no period has a negative length. Records are never sorted: the
//   order written is the order things happened in, whatever the clock said.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "events/record.h"

namespace unshelver::core {

// Seconds of one backend over a period.
struct Usage {
  double awake = 0;    // the machine ran, or was being started or stopped
  double asleep = 0;   // shelved
  double unknown = 0;  // no record says: before the first record, in error or unknown
  // Dry run: seconds it would have been asleep had it not been a dry run (a part of `awake`).
  double would_sleep = 0;

  Usage& operator+=(const Usage& other);
  bool operator==(const Usage&) const = default;
};

// One UTC day's usage, for the charts.
struct DayUsage {
  TimePoint day;  // 00:00 UTC
  Usage usage;
};

class Ledger {
 public:
  // `backend_of_instance`: the configured backends by their instance_name and instance_id, for
  // the Python unshelver's lines, which name the instance only.
  explicit Ledger(std::map<std::string, std::string> backend_of_instance = {})
      : backend_of_instance_(std::move(backend_of_instance)) {}

  // The next record, in the order written (a log read from its oldest file on, then each record
  // as it is written).
  void add(const EventRecord& record);
  // Keeps no period that ended before `horizon` (a horizon never moves back), so that a daemon
  // that runs for months holds only what it still shows: total() is unchanged, while usage() and
  // daily() are answered right from the horizon on only.
  void forget_before(TimePoint horizon);
  // Whether add() takes anything from the record (a state it names, a dry run's would-be
  // action); those that say nothing about a machine need not be kept for it.
  bool counts(const EventRecord& record) const;

  // The backend's usage over [since, until), counted up to `now`.
  Usage usage(const std::string& backend, TimePoint since, TimePoint until, TimePoint now) const;
  // The same, per UTC day: one entry per day that [since, until) touches, oldest first.
  std::vector<DayUsage> daily(const std::string& backend, TimePoint since, TimePoint until,
                              TimePoint now) const;
  // Everything the ledger saw, up to `now` (never less than what an earlier call answered while
  // the clock goes forward): the /metrics counters.
  Usage total(const std::string& backend, TimePoint now) const;
  // When the backend's first record was, nullopt before it.
  std::optional<TimePoint> first_record(const std::string& backend) const;
  // The backends that have records, sorted.
  std::vector<std::string> backends() const;

 private:
  enum class Kind { kAwake, kAsleep, kUnknown };
  // The backend a record is about: its own, or for a line of the Python unshelver the one whose
  // instance it names; "" for records of the whole daemon and of other instances.
  std::string backend_of(const EventRecord& record) const;
  struct Span {
    Kind kind;
    TimePoint from;
    TimePoint to;
  };
  struct Track {
    std::vector<Span> closed;  // oldest first, contiguous from `first`
    Kind current = Kind::kUnknown;
    TimePoint current_from{};
    std::optional<TimePoint> first;
    TimePoint newest{};
    std::vector<Span> would_sleep;  // closed dry-run periods (kind unused), oldest first
    std::optional<TimePoint> would_sleep_from;
    Usage closed_total;  // the closed spans' seconds, for total()
  };
  void enter(Track& track, Kind kind, TimePoint at) const;
  void close_would_sleep(Track& track, TimePoint at) const;
  static void count(const std::vector<Span>& spans, TimePoint from, TimePoint to,
                    const std::function<void(const Span&, double)>& add);

  std::map<std::string, std::string> backend_of_instance_;
  std::map<std::string, Track> tracks_;
  TimePoint horizon_{TimePoint::min()};
};

// The configured backends by their instance_name and by their instance_id, for Ledger's
// constructor.
std::map<std::string, std::string> backends_by_instance(const std::vector<BackendConfig>& backends);

// 00:00 UTC of the day `at` falls in, and of the first day of its month; the first day of the
// next month.
TimePoint start_of_day(TimePoint at);
TimePoint start_of_month(TimePoint at);
TimePoint start_of_next_month(TimePoint at);

}  // namespace unshelver::core
