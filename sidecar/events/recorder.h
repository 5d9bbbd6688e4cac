// EventRecorder: the audit trail as the rest of the daemon sees it.
//
// Every transition (and every Caddy load error; later admin actions and failed logins) becomes a
// core::EventRecord, numbered and handed to the journal, which writes and fsyncs it in the thread
// pool. Only then is the event reported: logged as "event N recorded", kept among the recent
// ones for /api/events and `unshelver events`, given to waiting long-polls, and put in the Swift
// mirror's outbox. So an event that anyone has seen survives a crash, and reaches Swift exactly
// once (see events/swift_mirror.h).
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backend/reconciler.h"
#include "base/prometheus.h"
#include "config/config.h"
#include "events/journal.h"
#include "events/record.h"
#include "events/swift_mirror.h"
#include "openstack/session.h"
#include "uv/timer.h"

namespace unshelver::app {

struct RecorderStats {
  std::uint64_t recorded = 0;             // events written and fsync'd by this process
  std::uint64_t unreadable_lines = 0;     // found in the event log at start-up
  std::uint64_t torn_bytes_repaired = 0;  // a torn last line cut off at start-up
};

class EventRecorder {
 public:
  // `session` is needed only when the config names a Swift container.
  // `on_change` runs after anything that write_status() shows changed (so that cached pages refresh).
  EventRecorder(uv_loop_t* loop, const core::Config& config, providers::OpenStackSession* session,
                std::function<void()> on_change);
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Start-up: opens the journal (an error here stops the daemon with exit code 2) and puts what
  // Swift has not confirmed back into the outbox.
  Status start();
  void record_transition(const core::BackendConfig& backend, const core::Transition& transition);
  void record(core::EventRecord record);
  // Stops retries and uploads; writes still queued get one last attempt.
  void close();

  // Recorded events, oldest first, optionally of one backend: without `after` the newest `limit`
  // ones; with it the first `limit` ones after that seq (so that a reader paging forward never
  // skips one).
  std::vector<core::EventRecord> recent(std::optional<std::uint64_t> after, const std::string& backend,
                                        std::size_t limit) const;
  // Calls `then` once an event with seq > after is recorded, or after `timeout`, whichever comes
  // first (never inside this call).
  void wait(std::uint64_t after, std::chrono::milliseconds timeout, std::function<void()> then);
  std::uint64_t last_recorded_seq() const { return last_recorded_seq_; }
  std::size_t unwritten() const { return journal_.unwritten(); }
  const RecorderStats& stats() const { return stats_; }
  // Sets the status document's "events"; adds the events' metrics (the journal's and Swift's).
  void write_status(nlohmann::json& document) const;
  void write_metrics(core::MetricsPage& page) const;

 private:
  struct Waiter {
    std::uint64_t after;
    std::function<void()> then;
    std::unique_ptr<io::Timer> timer;
  };
  void on_written(const std::vector<core::EventRecord>& records);
  void arm(std::list<Waiter>::iterator position, std::chrono::milliseconds delay);
  void release_waiters();

  uv_loop_t* loop_;
  const core::Config& config_;
  providers::OpenStackSession* session_;
  io::EventJournal journal_;
  std::unique_ptr<providers::SwiftMirror> mirror_;
  std::deque<core::EventRecord> recent_;  // the newest recorded events
  std::uint64_t last_recorded_seq_ = 0;
  RecorderStats stats_;
  std::list<Waiter> waiters_;
  std::function<void()> on_change_;
  bool closed_ = false;
};

}  // namespace unshelver::app
