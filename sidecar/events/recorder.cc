#include "events/recorder.h"

#include <spdlog/spdlog.h>

#include "base/json_values.h"
#include "bill/savings.h"
#include "events/webhook_policy.h"

namespace unshelver::app {

namespace {
using nlohmann::json;
// Enough for the control page and `unshelver events` without a file read.
constexpr std::size_t kRecentKept = 1000;
// The wake history is seeded from this much of the log's end: some 10,000 records, weeks of a
// busy backend's transitions, read once at start-up (the current file is read whole anyway).
constexpr std::size_t kHistoryBytes = std::size_t{4} * 1024 * 1024;
constexpr std::string_view kSwiftCursor = "swift";

io::JournalSettings journal_settings(const core::Config& config) {
  io::JournalSettings settings;
  settings.path = config.event_log_path();
  settings.rotate_bytes = config.events.rotate_bytes;
  settings.keep_files = config.events.keep_files;
  // Swift answers a repeated upload with 412, so its cursor may start at the beginning.
  if (config.swift_event_container) settings.cursors.push_back({std::string(kSwiftCursor), true});
  // A new receiver gets the events from now on, not the whole log.
  for (const core::WebhookConfig& webhook : config.webhooks) {
    settings.cursors.push_back({core::webhook_cursor_name(webhook.url), false});
  }
  return settings;
}
}  // namespace

EventRecorder::EventRecorder(uv_loop_t* loop, const core::Config& config,
                             providers::OpenStackSession* session, std::function<void()> on_change,
                             core::NoiseSettings noise)
    : loop_(loop),
      config_(config),
      session_(session),
      journal_(loop, journal_settings(config)),
      ledger_(core::backends_by_instance(config.backends)),
      noise_(noise),
      noise_timer_(loop),
      on_change_(std::move(on_change)) {}

// The savings ledger's read of the whole log. The worker touches only this block and the files
// of the snapshot; the recorder's ledger is changed on the loop alone.
struct EventRecorder::LedgerSeeding {
  uv_work_t request{};
  EventRecorder* recorder = nullptr;
  // In: the log's files as they were before this process wrote anything (the records written
  // since, seq above `through`, reach the ledger through on_written instead).
  std::optional<io::EventLogSnapshot> snapshot;
  std::uint64_t through = 0;
  // Out.
  core::Ledger ledger;
  Status read = ok_status();
  std::size_t records = 0;
  std::size_t unreadable = 0;
  std::chrono::steady_clock::duration took{};

  void run() {
    const auto began = std::chrono::steady_clock::now();
    read = snapshot->for_each_record(
        [this](const core::EventRecord& record) {
          if (record.seq > through) return;
          ++records;
          ledger.add(record);
        },
        unreadable);
    took = std::chrono::steady_clock::now() - began;
  }
};

EventRecorder::~EventRecorder() {
  close();
  // A read still in the thread pool finds no recorder when it comes back, and only frees itself.
  if (ledger_seeding_ != nullptr) ledger_seeding_->recorder = nullptr;
}

void EventRecorder::start_ledger_seeding() {
  auto seeding = std::make_unique<LedgerSeeding>();
  seeding->recorder = this;
  seeding->through = last_recorded_seq_;
  seeding->ledger = core::Ledger(core::backends_by_instance(config_.backends));
  // Only what the daemon shows is kept (bill/savings.h): memory by the last two months' wakes.
  seeding->ledger.forget_before(core::savings_horizon(std::chrono::system_clock::now()));
  auto snapshot = io::EventLogSnapshot::open(journal_.path());
  if (!snapshot) {
    seeding->read = Error{snapshot.error().message};
    finish_ledger_seeding(std::move(seeding));
    return;
  }
  seeding->snapshot.emplace(std::move(*snapshot));
  seeding->request.data = seeding.get();
  ledger_seeding_ = seeding.get();
  const int queued = uv_queue_work(
      loop_, &seeding->request,
      [](uv_work_t* request) noexcept { static_cast<LedgerSeeding*>(request->data)->run(); },
      [](uv_work_t* request, int) noexcept {
        std::unique_ptr<LedgerSeeding> done(static_cast<LedgerSeeding*>(request->data));
        if (EventRecorder* recorder = done->recorder) recorder->finish_ledger_seeding(std::move(done));
      });
  if (queued != 0) {
    // Only on a loop that is closing: read here rather than show figures without the history.
    seeding->run();
    finish_ledger_seeding(std::move(seeding));
    return;
  }
  // Owned by the thread pool until the after-work callback, which takes it back.
  static_cast<void>(seeding.release());
}

void EventRecorder::finish_ledger_seeding(std::unique_ptr<LedgerSeeding> seeding) {
  ledger_seeding_ = nullptr;
  if (!seeding->read) {
    // The figures then cover what is written from now on; the report reads the files itself.
    spdlog::error("events: the savings figures leave out the log's history: {}",
                  seeding->read.error().message);
  } else {
    ledger_ = std::move(seeding->ledger);
    spdlog::info("events: the savings figures read {} record(s) of {} and its rotated files in {} ms{}",
                 seeding->records, journal_.path(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(seeding->took).count(),
                 seeding->unreadable > 0
                     ? "; " + std::to_string(seeding->unreadable) + " line(s) are not event records"
                     : std::string());
  }
  for (const core::EventRecord& record : ledger_backlog_) ledger_.add(record);
  ledger_backlog_.clear();
  ledger_complete_ = true;
  if (on_change_) on_change_();
}

Status EventRecorder::start() {
  auto opened = journal_.open(kRecentKept, kHistoryBytes);
  if (!opened) return Error{opened.error().message};
  if (opened->torn_bytes > 0) {
    spdlog::warn(
        "events: cut {} byte(s) of a torn last line off {} (a write that a crash interrupted; it was "
        "never reported); they are kept in {}.torn",
        opened->torn_bytes, journal_.path(), journal_.path());
  }
  if (opened->unreadable_lines > 0) {
    spdlog::warn("events: {} line(s) of {} are not event records; they are left as they are",
                 opened->unreadable_lines, journal_.path());
  }
  stats_.torn_bytes_repaired = opened->torn_bytes;
  stats_.unreadable_lines = opened->unreadable_lines;
  last_recorded_seq_ = opened->last_seq;
  recent_.assign(opened->recent.begin(), opened->recent.end());
  start_ledger_seeding();
  history_.seed(std::move(opened->history));
  journal_.on_written([this](const std::vector<core::EventRecord>& records) { on_written(records); });
  journal_.on_error([this](const std::string& error, bool records_wait, std::size_t unwritten) {
    if (on_change_) on_change_();
    if (!records_wait) {
      // Rotation, pruning or the outbox cursor: no record is lost (a stale cursor only re-sends).
      spdlog::error("events: {}", error);
      return;
    }
    spdlog::error(
        "events: cannot record event(s): {}; {} event(s) wait in memory and are written as soon as "
        "the log can be written again",
        error, unwritten);
  });

  if (config_.swift_event_container) {
    providers::MirrorSettings settings;
    settings.container = *config_.swift_event_container;
    settings.prefix = config_.swift_event_prefix;
    settings.concurrency = config_.events.upload_concurrency;
    settings.backoff.max = config_.events.upload_retry_max;
    mirror_ = std::make_unique<providers::SwiftMirror>(
        loop_, *session_, std::move(settings), opened->cursors.at(std::string(kSwiftCursor)),
        [this](std::uint64_t uploaded_through) {
          journal_.set_cursor(std::string(kSwiftCursor), uploaded_through);
        },
        [this] {
          if (on_change_) on_change_();
        });
    for (const core::EventRecord& record : opened->unconfirmed) mirror_->enqueue(record);
    spdlog::info("events: recorded in {} and mirrored into Swift container {} ({} event(s) to upload)",
                 journal_.path(), *config_.swift_event_container, mirror_->outbox());
  } else {
    spdlog::info("events: recorded in {} (no Swift mirror: swift_event_container is not set)",
                 journal_.path());
  }
  for (const core::WebhookConfig& webhook : config_.webhooks) {
    if (webhook_client_ == nullptr) return Error{"events: webhooks need an HTTP client"};
    const std::string cursor = core::webhook_cursor_name(webhook.url);
    auto sender = std::make_unique<providers::WebhookSender>(
        loop_, *webhook_client_, webhook, opened->cursors.at(cursor),
        [this, cursor](std::uint64_t delivered_through) { journal_.set_cursor(cursor, delivered_through); },
        [this] {
          if (on_change_) on_change_();
        });
    for (const core::EventRecord& record : opened->unconfirmed) sender->enqueue(record);
    spdlog::info("events: webhook {} posts to {} ({} event(s) to deliver, outbox cursor {})", webhook.name,
                 sender->display_url(), sender->pending(), cursor);
    webhooks_.push_back(std::move(sender));
  }
  return ok_status();
}

namespace {
// A record of one backend's event, with the instance it names.
core::EventRecord backend_record(const core::BackendConfig& backend, core::TimePoint at, std::string action,
                                 std::string actor, std::string detail) {
  core::EventRecord record;
  record.at = at;
  record.backend = backend.name;
  record.instance_name = backend.instance_name.empty() ? backend.instance_id : backend.instance_name;
  record.action = std::move(action);
  record.actor = std::move(actor);
  record.detail = std::move(detail);
  return record;
}
}  // namespace

void EventRecorder::record_transition(const core::BackendConfig& backend,
                                      const core::Transition& transition) {
  core::EventRecord record = backend_record(backend, transition.at, core::action_for(transition),
                                            transition.actor, transition.detail);
  record.from = std::string(core::to_string(transition.from));
  record.to = std::string(core::to_string(transition.to));
  this->record(std::move(record));
}

void EventRecorder::record_notice(const core::BackendConfig& backend, const core::Notice& notice) {
  this->record(backend_record(backend, notice.at, notice.action, notice.actor, notice.detail));
}

void EventRecorder::record(core::EventRecord record, core::EventClass event_class) {
  if (closed_) {
    spdlog::warn("events: {} {} after shutdown began is not recorded", record.backend, record.action);
    return;
  }
  if (event_class == core::EventClass::kNoise) {
    record_noise(std::move(record));
    return;
  }
  core::truncate_detail(record.detail, core::kEssentialDetailBytes);
  append(std::move(record));
}

void EventRecorder::record_noise(core::EventRecord record) {
  core::truncate_detail(record.detail, core::kNoiseDetailBytes);
  const bool opens_window = noise_.admit(record, std::chrono::steady_clock::now());
  if (!noise_timer_.active()) flush_noise(false);  // arms the timer for the window just opened
  if (opens_window) append_noise(std::move(record), 1);
}

void EventRecorder::append_noise(core::EventRecord record, std::uint64_t occurrences) {
  if (!core::noise_fits(journal_.unwritten(), journal_.unwritten_bytes())) {
    stats_.dropped[record.action] += occurrences;
    dropped_unlogged_[record.action] += occurrences;
    dropped_since_append_[record.action] += occurrences;
    return;
  }
  if (record.count > 0) {
    stats_.summarised[record.action] += record.count;
    summarised_unlogged_[record.action] += record.count;
  }
  append(std::move(record));
}

void EventRecorder::append(core::EventRecord record) {
  record.dropped = std::move(dropped_since_append_);
  dropped_since_append_.clear();
  journal_.append(std::move(record));
}

void EventRecorder::flush_noise(bool all) {
  const auto now = std::chrono::steady_clock::now();
  for (core::EventRecord& summary : noise_.take_summaries(now, std::chrono::system_clock::now(), all)) {
    const std::uint64_t count = summary.count;
    append_noise(std::move(summary), count);
  }
  log_suppressed(all);
  if (all) {
    noise_timer_.stop();
    return;
  }
  if (auto next = noise_.next_end()) {
    const auto delay = std::chrono::ceil<std::chrono::milliseconds>(*next - now);
    noise_timer_.start(std::max(delay, std::chrono::milliseconds(1)), [this] { flush_noise(false); });
  }
}

void EventRecorder::log_suppressed(bool now) {
  if (summarised_unlogged_.empty() && dropped_unlogged_.empty()) return;
  const auto at = std::chrono::steady_clock::now();
  if (!now && at - suppressed_logged_at_ < noise_.settings().window) return;
  std::string text;
  for (const auto& [action, count] : summarised_unlogged_) {
    text += fmt::format("{}{} {} summarised", text.empty() ? "" : ", ", count, action);
  }
  for (const auto& [action, count] : dropped_unlogged_) {
    text += fmt::format("{}{} {} dropped unwritten (the backlog of unwritten events was full)",
                        text.empty() ? "" : ", ", count, action);
  }
  spdlog::warn(
      "events: noise kept out of the event log since the last such line: {} (see "
      "unshelver_events_suppressed_total)",
      text);
  summarised_unlogged_.clear();
  dropped_unlogged_.clear();
  suppressed_logged_at_ = at;
}

void EventRecorder::on_written(const std::vector<core::EventRecord>& records) {
  for (const core::EventRecord& record : records) {
    // The transition itself is logged by its driver; this line says it is on disk.
    spdlog::info("event {} recorded: {} {} by {}", record.seq, record.backend.empty() ? "-" : record.backend,
                 record.action, record.actor.empty() ? "-" : record.actor);
    ++stats_.recorded;
    last_recorded_seq_ = record.seq;
    recent_.push_back(record);
    if (recent_.size() > kRecentKept) recent_.pop_front();
    history_.add(record);
    if (ledger_seeding_ == nullptr) {
      ledger_.add(record);
      ledger_.forget_before(core::savings_horizon(std::chrono::system_clock::now()));
    } else if (ledger_.counts(record)) {
      ledger_backlog_.push_back(record);
    }
    if (mirror_) mirror_->enqueue(record);
    for (const auto& webhook : webhooks_) webhook->enqueue(record);
    // A listener may unlisten (itself or another) while hearing; the copy of the ids keeps the
    // walk valid.
    std::vector<ListenerId> ids;
    for (const auto& [id, listener] : listeners_) ids.push_back(id);
    for (ListenerId id : ids) {
      if (const auto found = listeners_.find(id); found != listeners_.end()) {
        auto listener = found->second;
        listener(record);
      }
    }
  }
  release_waiters();
  if (on_change_) on_change_();
}

std::vector<core::EventRecord> EventRecorder::recent(std::optional<std::uint64_t> after,
                                                     const std::string& backend, std::size_t limit) const {
  const auto wanted = [&](const core::EventRecord& record) {
    return backend.empty() || record.backend == backend;
  };
  std::vector<core::EventRecord> out;
  if (after) {
    for (const core::EventRecord& record : recent_) {
      if (out.size() >= limit) break;
      if (record.seq > *after && wanted(record)) out.push_back(record);
    }
    return out;
  }
  for (auto it = recent_.rbegin(); it != recent_.rend() && out.size() < limit; ++it) {
    if (wanted(*it)) out.push_back(*it);
  }
  return {out.rbegin(), out.rend()};
}

void EventRecorder::wait(std::uint64_t after, std::chrono::milliseconds timeout, std::function<void()> then) {
  waiters_.push_back(Waiter{after, std::move(then), std::make_unique<io::Timer>(loop_)});
  // Also when an event is already there: the answer must not come inside this call.
  const bool due = last_recorded_seq_ > after || closed_;
  arm(std::prev(waiters_.end()), due ? std::chrono::milliseconds(0) : timeout);
}

void EventRecorder::when_written(std::chrono::milliseconds timeout, std::function<void()> then) {
  const std::uint64_t target = journal_.last_seq();
  const bool written = target <= last_recorded_seq_ || closed_;
  // A waiter for "a seq above target - 1" is released by the write that makes `target` durable.
  waiters_.push_back(Waiter{written ? 0 : target - 1, std::move(then), std::make_unique<io::Timer>(loop_)});
  arm(std::prev(waiters_.end()), written ? std::chrono::milliseconds(0) : timeout);
}

void EventRecorder::arm(std::list<Waiter>::iterator position, std::chrono::milliseconds delay) {
  position->timer->start(delay, [this, position] {
    auto then = std::move(position->then);
    waiters_.erase(position);  // destroys the running timer, which io::Timer allows
    if (then) then();
  });
}

void EventRecorder::release_waiters() {
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->after < last_recorded_seq_) arm(it, std::chrono::milliseconds(0));
  }
}

EventRecorder::ListenerId EventRecorder::listen(
    std::function<void(const core::EventRecord& record)> listener) {
  const ListenerId id = next_listener_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void EventRecorder::unlisten(ListenerId id) {
  listeners_.erase(id);
}

void EventRecorder::close() {
  if (closed_) return;
  // The windows still open are summed up now, so that a stop loses no count.
  flush_noise(true);
  closed_ = true;
  if (mirror_) mirror_->close();
  for (const auto& webhook : webhooks_) webhook->close();
  journal_.close();
  // Long-polls answer now with what there is, so that the server can finish its requests.
  for (Waiter& waiter : waiters_) waiter.timer->stop();
  std::list<Waiter> waiting = std::move(waiters_);
  waiters_.clear();
  for (Waiter& waiter : waiting) {
    if (waiter.then) waiter.then();
  }
}

void EventRecorder::close_after_deliveries(std::chrono::milliseconds grace, std::function<void()> then) {
  if (closed_ || webhooks_.empty()) {
    close();
    if (then) then();
    return;
  }
  auto unfinished = std::make_shared<std::size_t>(webhooks_.size());
  auto finished = [this, unfinished, then = std::move(then)] {
    if (--*unfinished > 0) return;
    close();
    if (then) then();
  };
  // Each calls `finished` once; the last one closes, inside the loop's last iteration at worst.
  for (std::size_t i = 0, count = webhooks_.size(); i < count; ++i) webhooks_[i]->finish(grace, finished);
}

void EventRecorder::write_status(json& document) const {
  const io::JournalStats& stats = journal_.stats();
  json swift;
  if (mirror_) {
    const providers::MirrorStats& mirror = mirror_->stats();
    swift = json{{"container", mirror_->settings().container},
                 {"prefix", mirror_->settings().prefix},
                 {"outbox", mirror_->outbox()},
                 {"uploaded_through", mirror_->uploaded_through()},
                 {"uploaded", mirror.uploaded},
                 {"already_present", mirror.already_present},
                 {"upload_errors", mirror.upload_errors},
                 {"failing", mirror.failing},
                 {"last_upload_error", core::text_or_null(mirror.last_error)},
                 {"last_upload_error_at", core::time_or_null(mirror.last_error_at)},
                 {"last_upload_at", core::time_or_null(mirror.last_upload_at)}};
  }
  json webhooks = json::array();
  for (const auto& webhook : webhooks_) {
    const providers::WebhookStats& stats = webhook->stats();
    webhooks.push_back(json{{"name", webhook->config().name},
                            {"url", webhook->display_url()},
                            {"cursor", webhook->cursor_name()},
                            {"events", webhook->config().events},
                            {"pending", webhook->pending()},
                            {"delivered_through", webhook->delivered_through()},
                            {"delivered", stats.delivered},
                            {"skipped", stats.skipped},
                            {"failed_attempts", stats.failed_attempts},
                            {"rejected_attempts", stats.rejected_attempts},
                            {"failing", stats.failing},
                            {"last_error", core::text_or_null(stats.last_error)},
                            {"last_error_at", core::time_or_null(stats.last_error_at)},
                            {"last_delivery_at", core::time_or_null(stats.last_delivery_at)}});
  }
  document["events"] =
      json{{"log", journal_.path()},
           {"last_seq", last_recorded_seq_},
           {"recorded", stats_.recorded},
           {"unwritten", journal_.unwritten()},
           {"write_errors", stats.write_errors},
           {"last_write_error", core::text_or_null(stats.last_write_error)},
           {"rotations", stats.rotations},
           {"unreadable_lines", stats_.unreadable_lines},
           {"torn_bytes_repaired", stats_.torn_bytes_repaired},
           {"unwritten_bytes", journal_.unwritten_bytes()},
           {"noise_windows", noise_.open_windows()},
           {"suppressed", json{{"summarised", stats_.summarised}, {"dropped", stats_.dropped}}},
           {"swift", swift},
           {"webhooks", webhooks}};
}

void EventRecorder::write_metrics(core::MetricsPage& page) const {
  page.counter("unshelver_events_recorded_total", "Events written and fsync'd to the local event log.", {},
               static_cast<double>(stats_.recorded));
  page.gauge("unshelver_events_unwritten",
             "Events waiting in memory because the event log cannot be written.", {},
             static_cast<double>(journal_.unwritten()));
  page.counter("unshelver_event_write_errors_total", "Failed writes to the local event log.", {},
               static_cast<double>(journal_.stats().write_errors));
  for (const auto& [how, counts] :
       {std::pair{"summarised", &stats_.summarised}, std::pair{"dropped", &stats_.dropped}}) {
    for (const auto& [action, count] : *counts) {
      page.counter("unshelver_events_suppressed_total",
                   "Noise events (failed logins) not written on their own: counted in a summary "
                   "record, or dropped while the backlog of unwritten events was full.",
                   {{"action", action}, {"how", how}}, static_cast<double>(count));
    }
  }
  for (const auto& webhook : webhooks_) {
    const providers::WebhookStats& stats = webhook->stats();
    const core::Labels receiver{{"receiver", webhook->config().name}};
    page.counter("unshelver_webhook_deliveries_total", "Events a webhook receiver answered 2xx.", receiver,
                 static_cast<double>(stats.delivered));
    for (auto [kind, count] :
         {std::pair{"failed", stats.failed_attempts}, std::pair{"rejected", stats.rejected_attempts}}) {
      page.counter("unshelver_webhook_attempt_errors_total",
                   "Failed webhook attempts: failed (no answer, timeout, 5xx, 408, 429) or rejected (another "
                   "status). Both are retried.",
                   {{"receiver", webhook->config().name}, {"kind", kind}}, static_cast<double>(count));
    }
    page.gauge("unshelver_webhook_outbox_events", "Recorded events a webhook receiver has not accepted yet.",
               receiver, static_cast<double>(webhook->pending()));
    page.gauge("unshelver_webhook_failing", "1 while a webhook receiver's last attempt failed.", receiver,
               stats.failing ? 1.0 : 0.0);
  }
  if (!mirror_) return;
  const providers::MirrorStats& mirror = mirror_->stats();
  page.gauge("unshelver_swift_outbox_events", "Recorded events not yet confirmed by Swift.", {},
             static_cast<double>(mirror_->outbox()));
  for (auto [outcome, count] :
       {std::pair{"created", mirror.uploaded}, std::pair{"already_present", mirror.already_present}}) {
    page.counter("unshelver_swift_uploads_total", "Events uploaded to Swift, by outcome.",
                 {{"outcome", outcome}}, static_cast<double>(count));
  }
  page.counter("unshelver_swift_upload_errors_total", "Failed uploads of events to Swift.", {},
               static_cast<double>(mirror.upload_errors));
}

}  // namespace unshelver::app
