// The audit trail's record: one JSON object per line in `local_event_log`, and one Swift object
// per event (DESIGN.md "Event record").
//
// Pure: building, naming, serialising and parsing records, and finding the intact part of a log
// file that a crash may have cut in the middle of a line. The files and uploads are in
// io/event_journal and providers/swift_mirror.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/reconciler.h"
#include "base/result.h"

namespace unshelver::core {

struct EventRecord {
  std::uint64_t seq = 0;  // 1, 2, 3... across restarts (continued from the log); 0 = not yet numbered
  std::string id;         // unique; also the stem of the Swift object's name
  TimePoint at;
  std::string backend;        // "" for events of the whole daemon (a Caddy load error)
  std::string instance_name;  // the cloud's server (the Python unshelver's field)
  std::string action;         // the Python unshelver's names where they exist (see action_for)
  std::string actor;
  std::string from;  // states; "" when the event is no transition
  std::string to;
  std::string detail;
  // A summary of repeated noise (events/noise_policy.h): how many events of its action, actor and
  // client it stands for, none of which was written on its own. 0 for any other record, and then
  // not written. Issue 15 §3.
  std::uint64_t count = 0;
  // Noise events dropped unwritten, by action, since the record before this one: the backlog of
  // unwritten events was full (events/noise_policy.h). Empty for most records, and then not
  // written.
  std::map<std::string, std::uint64_t> dropped;
};

// The record's action for a transition. The Python unshelver's names where the meaning is the
// same (unshelve_requested, unshelve_complete, unshelve_incomplete, shelve_requested,
// shelve_complete, workflow_failed), ours otherwise (cloud_running, health_lost, cloud_starting,
// cloud_stopping, cloud_stopped, observed_<state> for what the first observation found).
std::string action_for(const Transition& transition);
//
// A backend's events that change no state (core::Notice) have empty `from` and `to`:
// - shelve_failed: a sleep command failed or was refused while the VM runs: it runs, and costs,
//   with no way to shelve it until a retry works (detail: the cloud's reason and the next try).
// - pinned_awake, unpinned: an admin pinned the backend awake (no idle shutdown until unpinned)
//   or lifted the pin (detail: the reason given).
// - ha_leading, ha_stepped_down (with `ha`): this controller (the actor) began or stopped leading
//   the backend (detail: won the bid, resumed, the lease lapsed, the lead passed to another, ...).
// - dry_run_would_shelve, dry_run_would_wake (backends with dry_run: true, which never act):
//   the moment Unshelver would have put the VM to sleep (the idle rule, with the idle time and
//   since when in detail, or someone's sleep request) or woken it (a wake request, a schedule,
//   or activity on the running VM; actor and detail say which). They alternate unless the VM
//   was stopped or started outside Unshelver in between (transitions by "cloud"): a would-shelve at T1
//   followed by a would-wake at T2 means the VM would have been asleep from T1 to T2 (a would-shelve not yet
//   followed: asleep from T1 until now). What a shelve and a wake themselves take is not in these times.

// "20261122T101500.123456Z-000012-3fa9c2d1": sortable by time, unique across restarts (seq) and
// across instances that share a container (the random part).
std::string make_event_id(TimePoint at, std::uint64_t seq, std::uint32_t random);

// "{prefix}/{YYYY}/{MM}/{DD}/{id}.json", with the UTC date of the event. An empty prefix leaves
// the date at the top.
std::string swift_object_name(std::string_view prefix, const EventRecord& record);

// The JSON object, on one line, without the newline. Besides DESIGN.md's fields (ts, id, backend,
// action, actor, from, to, detail) it carries `seq`, and `timestamp` and `instance_name` for
// readers written for the Python unshelver; `count` and `dropped` only when they are not empty.
std::string to_json_line(const EventRecord& record);

// A line of the log. Lines that the Python unshelver wrote (no seq) parse with seq 0.
Result<EventRecord> parse_event_line(std::string_view line);

// How much of a log file's content is intact. Records are appended whole, each with its newline,
// so a crash in the middle of an append leaves at most one damaged line, at the end: bytes after
// the last newline (or the zeros a file system may show there after a crash), or, when the
// newline made it but earlier bytes did not, a last line that is not a record. Both are cut off
// at start (io/event_journal keeps them aside in `{log}.torn`). Damaged lines further up cannot
// come from a crash; they are counted and left alone.
std::size_t intact_length(std::string_view content);

}  // namespace unshelver::core
