// EventRecorder: the audit trail as the rest of the daemon sees it.
//
// Every transition (and every Caddy load error, admin action and failed login) becomes a
// core::EventRecord, numbered and handed to the journal, which writes and fsyncs it in the thread
// pool. Only then is the event reported: logged as "event N recorded", kept among the recent
// ones for /api/events and `unshelver events`, given to waiting long-polls, and put in the Swift
// mirror's outbox and each webhook receiver's. So an event that anyone has seen survives a crash,
// and reaches Swift and every receiver exactly once (see events/swift_mirror.h, events/webhook.h).
// Listeners (the event streams, web/event_stream.h, and the mail notifier) hear of each record at the same
// moment.
//
// Noise (a failed login: anyone can cause one, as often as they like) passes the noise policy
// first (events/noise_policy.h, issue 15 §3): one record per client and minute plus a summary
// with a count, a short detail, and none at all while the backlog of unwritten events is full.
// What was summarised or dropped is counted in the records, in /metrics and in the log.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backend/reconciler.h"
#include "base/prometheus.h"
#include "bill/ledger.h"
#include "config/config.h"
#include "events/journal.h"
#include "events/noise_policy.h"
#include "events/record.h"
#include "events/swift_mirror.h"
#include "events/wake_history.h"
#include "events/webhook.h"
#include "openstack/session.h"
#include "uv/timer.h"

namespace unshelver::app {

struct RecorderStats {
  std::uint64_t recorded = 0;             // events written and fsync'd by this process
  std::uint64_t unreadable_lines = 0;     // found in the event log at start-up
  std::uint64_t torn_bytes_repaired = 0;  // a torn last line cut off at start-up
  // Noise events not written on their own, by action: counted in a written summary, or dropped
  // because the backlog of unwritten events was full.
  std::map<std::string, std::uint64_t> summarised;
  std::map<std::string, std::uint64_t> dropped;
};

class EventRecorder {
 public:
  // `session` is needed only when the config names a Swift container.
  // `on_change` runs after anything that write_status() shows changed (so that cached pages refresh).
  // `noise`: the noise policy's window and client limit (the defaults in production; tests
  // shorten the window).
  EventRecorder(uv_loop_t* loop, const core::Config& config, providers::OpenStackSession* session,
                std::function<void()> on_change, core::NoiseSettings noise = {});
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // The client the webhooks send with (needed only when the config has webhooks); before start().
  void use_webhook_client(io::HttpClient* client) { webhook_client_ = client; }
  // Start-up: opens the journal (an error here stops the daemon with exit code 2) and puts what
  // Swift and the webhook receivers have not confirmed back into their outboxes.
  Status start();
  // `listener` hears of every record once it is written, in seq order, until unlisten(id).
  using ListenerId = std::uint64_t;
  ListenerId listen(std::function<void(const core::EventRecord& record)> listener);
  void unlisten(ListenerId id);
  void record_transition(const core::BackendConfig& backend, const core::Transition& transition);
  // A backend's event that changes no state (shelve_failed, dry_run_would_*): no from or to.
  void record_notice(const core::BackendConfig& backend, const core::Notice& notice);
  // `event_class` is decided by whoever reports the event (App::record_event for the web layer);
  // an essential event is always written, noise may be summarised or dropped.
  void record(core::EventRecord record, core::EventClass event_class = core::EventClass::kEssential);
  // Stops retries and uploads; writes still queued get one last attempt.
  void close();
  // The same for a stop, after each webhook delivery in flight was answered (at most `grace`; see
  // WebhookSender::finish), so that its cursor is saved by the journal's last write; then `then`.
  void close_after_deliveries(std::chrono::milliseconds grace, std::function<void()> then);
  // The Swift mirror, when swift_event_container is set (its health, for the mail notifier).
  const providers::SwiftMirror* mirror() const { return mirror_.get(); }

  // Recorded events, oldest first, optionally of one backend: without `after` the newest `limit`
  // ones; with it the first `limit` ones after that seq (so that a reader paging forward never
  // skips one).
  std::vector<core::EventRecord> recent(std::optional<std::uint64_t> after, const std::string& backend,
                                        std::size_t limit) const;
  // Calls `then` once an event with seq > after is recorded, or after `timeout`, whichever comes
  // first (never inside this call).
  void wait(std::uint64_t after, std::chrono::milliseconds timeout, std::function<void()> then);
  // Calls `then` once every event recorded so far is written and fsync'd, or after `timeout`,
  // whichever comes first; never inside this call.
  void when_written(std::chrono::milliseconds timeout, std::function<void()> then);
  std::uint64_t last_recorded_seq() const { return last_recorded_seq_; }
  std::size_t unwritten() const { return journal_.unwritten(); }
  std::size_t unwritten_bytes() const { return journal_.unwritten_bytes(); }
  const RecorderStats& stats() const { return stats_; }
  // The backends' awake and asleep periods and wakes: seeded from the log's end at start(), and
  // fed every record once it is written.
  const core::WakeHistory& history() const { return history_; }
  // The backends' awake and asleep time for the savings report (bill/ledger.h): read from the
  // whole log (every rotated file) in libuv's thread pool after start(), so that a long log
  // delays neither the start nor the loop, then fed every record once it is written. Until that
  // read is done (ledger_complete()) it holds only what was written since the start.
  const core::Ledger& ledger() const { return ledger_; }
  bool ledger_complete() const { return ledger_complete_; }
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
  void record_noise(core::EventRecord record);
  // Appends noise that the policy let through, if the backlog has room; counts it as dropped
  // otherwise. `occurrences`: the events it stands for (a summary's count, or 1).
  void append_noise(core::EventRecord record, std::uint64_t occurrences);
  // Hands a record to the journal with the drops counted since the previous one.
  void append(core::EventRecord record);
  // Writes the summaries of the noise windows that ended (all of them with `all`), re-arms the
  // timer for the next, and logs what was suppressed once per window length.
  void flush_noise(bool all);
  void log_suppressed(bool now);
  struct LedgerSeeding;
  void start_ledger_seeding();
  void finish_ledger_seeding(std::unique_ptr<LedgerSeeding> seeding);
  void arm(std::list<Waiter>::iterator position, std::chrono::milliseconds delay);
  void release_waiters();

  uv_loop_t* loop_;
  const core::Config& config_;
  providers::OpenStackSession* session_;
  io::EventJournal journal_;
  std::unique_ptr<providers::SwiftMirror> mirror_;
  io::HttpClient* webhook_client_ = nullptr;
  std::vector<std::unique_ptr<providers::WebhookSender>> webhooks_;
  std::map<ListenerId, std::function<void(const core::EventRecord&)>> listeners_;
  ListenerId next_listener_ = 1;
  std::deque<core::EventRecord> recent_;  // the newest recorded events
  core::WakeHistory history_;
  core::Ledger ledger_;
  // The whole log's read, while in the thread pool; the records written meanwhile that the ledger
  // counts, added once it is done (a few per second at most: transitions, not noise).
  LedgerSeeding* ledger_seeding_ = nullptr;
  std::vector<core::EventRecord> ledger_backlog_;
  bool ledger_complete_ = false;
  std::uint64_t last_recorded_seq_ = 0;
  RecorderStats stats_;
  std::list<Waiter> waiters_;
  core::NoiseAggregator noise_;
  io::Timer noise_timer_;
  std::map<std::string, std::uint64_t> dropped_since_append_;  // for the next record appended
  // What was suppressed since the last log line about it, and when that line was written.
  std::map<std::string, std::uint64_t> summarised_unlogged_;
  std::map<std::string, std::uint64_t> dropped_unlogged_;
  std::chrono::steady_clock::time_point suppressed_logged_at_{};
  std::function<void()> on_change_;
  bool closed_ = false;
};

}  // namespace unshelver::app
