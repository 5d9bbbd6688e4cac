// The audit trail's defence against noise (issue 15 §3): what any client can cause at will (a
// wrong bearer token, a wrong token on the login form) must neither fill the disk, nor rotate the
// genuine records out of `events.keep_files`, nor fill memory while the log cannot be written.
//
// Pure: the class of an event, the bound on its detail, the aggregation of repeated noise into
// one summary per client and window, and the bound on the backlog of unwritten events that noise
// may join. events/recorder applies them on the loop; essential events pass untouched (except
// the detail bound), so that no state transition, admin action or cloud action is ever summarised
// or dropped.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/record.h"

namespace unshelver::core {

// How the audit trail treats an event, decided once where the event enters it (App::record_event
// for the web layer's events; transitions are essential by construction).
enum class EventClass {
  // Transitions, admin actions (login, logout, wake, shelve), cloud and Caddy actions: always
  // written, never summarised, never dropped.
  kEssential,
  // What a client can cause without any credential, as often as it likes: summarised per client
  // and window, and dropped (counted) when the backlog of unwritten events is full.
  kNoise,
};

// The class of an event reported by the web layer: a failed login is noise, anything else
// (login, logout, an action name not known here) is essential, so that a new kind of event is
// kept whole until someone decides otherwise.
EventClass web_event_class(std::string_view action);

// Bounds on an event's detail, in bytes. A noise event's detail holds a client's address and
// the request line (a path of up to 8 KB before this bound); an essential one may quote a
// cloud's error message, which is worth more room but not unbounded room.
inline constexpr std::size_t kNoiseDetailBytes = 256;
inline constexpr std::size_t kEssentialDetailBytes = 4096;

// Cuts `detail` to at most `limit` bytes of its text (never inside a UTF-8 character) and marks
// the cut: "...[truncated: 8214 bytes in all]". A detail within the bound is left as it is.
void truncate_detail(std::string& detail, std::size_t limit);

// The client a noise event's detail names: the word after its first " from " ("wrong bearer
// token from 127.0.0.1 for GET /x" -> "127.0.0.1"), at most 64 bytes; "" when it names none.
// The first occurrence is taken because the client comes before the request's path, which the
// client chooses. A detail that names no client groups with the others of its action and actor.
std::string_view noise_client(std::string_view detail);

struct NoiseSettings {
  // One window per client: its first event is written at once, the others in the window are
  // counted and written as one summary when the window ends. A steady flood from one client
  // therefore costs two records a minute.
  std::chrono::milliseconds window{std::chrono::seconds(60)};
  // Clients tracked at once. Beyond them, events are counted under one shared window per action
  // ("other clients"), so that many addresses cost no more memory and no more records: a flood
  // from any number of addresses writes at most 17 records and 17 summaries a minute (some 20 MB
  // a day), which the default rotation (5 files of 10 MB) holds for days.
  std::size_t max_clients = 16;
};

// Aggregates repeated noise events. Time is passed in (a steady clock for the windows, the wall
// clock for the summaries' timestamps), so that the policy is tested without a loop.
class NoiseAggregator {
 public:
  using Clock = std::chrono::steady_clock;

  explicit NoiseAggregator(NoiseSettings settings = {}) : settings_(settings) {}

  // True when `record` opens its client's window and is to be written now; false when it was
  // counted into an open window's summary.
  bool admit(const EventRecord& record, Clock::time_point now);
  // The summaries of the windows that ended by `now` (of every open window with `all`, at
  // shutdown) and held more than their first event; the windows are closed. Each summary has the
  // first event's action, actor and backend, `count` = the events it stands for (those not
  // written on their own), and a detail naming the client, the span and the last event's detail.
  std::vector<EventRecord> take_summaries(Clock::time_point now, TimePoint wall_now, bool all = false);
  // When the next window ends, if any is open.
  std::optional<Clock::time_point> next_end() const;
  std::size_t open_windows() const { return windows_.size(); }
  const NoiseSettings& settings() const { return settings_; }

 private:
  struct Window {
    Clock::time_point opened;
    EventRecord first;   // action, actor, backend and instance name of the summary
    std::string client;  // "" for the shared window of clients beyond max_clients
    std::uint64_t repeats = 0;
    std::string last_detail;
  };
  NoiseSettings settings_;
  // Keyed by action, actor and client (each followed by '\n', which none of them holds).
  std::map<std::string, Window> windows_;
};

// A bound on the backlog of unwritten events (the journal's queue while the disk is full or the
// file system fails). Essential events always join it: they are rare, and losing one is worse
// than holding it. Noise joins only while the backlog is below both limits, so that a flood
// during an outage costs a few dozen kilobytes rather than hundreds of megabytes.
struct BacklogLimits {
  std::size_t events = 64;
  std::size_t bytes = std::size_t{64} * 1024;
};

inline bool noise_fits(std::size_t unwritten_events, std::size_t unwritten_bytes, BacklogLimits limits = {}) {
  return unwritten_events < limits.events && unwritten_bytes < limits.bytes;
}

}  // namespace unshelver::core
