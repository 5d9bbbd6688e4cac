#include "events/recorder.h"

#include <spdlog/spdlog.h>

#include "base/json_values.h"

namespace unshelver::app {

namespace {
using nlohmann::json;
// Enough for the control page and `unshelver events` without a file read.
constexpr std::size_t kRecentKept = 1000;
// The wake history is seeded from this much of the log's end: some 10,000 records, weeks of a
// busy backend's transitions, read once at start-up (the current file is read whole anyway).
constexpr std::size_t kHistoryBytes = std::size_t{4} * 1024 * 1024;

io::JournalSettings journal_settings(const core::Config& config) {
  io::JournalSettings settings;
  settings.path = config.event_log_path();
  settings.rotate_bytes = config.events.rotate_bytes;
  settings.keep_files = config.events.keep_files;
  settings.mirrored = config.swift_event_container.has_value();
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
      noise_(noise),
      noise_timer_(loop),
      on_change_(std::move(on_change)) {}

EventRecorder::~EventRecorder() {
  close();
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
        loop_, *session_, std::move(settings), opened->uploaded_through,
        [this](std::uint64_t uploaded_through) { journal_.set_uploaded_through(uploaded_through); },
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
  return ok_status();
}

void EventRecorder::record_transition(const core::BackendConfig& backend,
                                      const core::Transition& transition) {
  core::EventRecord record;
  record.at = transition.at;
  record.backend = backend.name;
  record.instance_name = backend.instance_name.empty() ? backend.instance_id : backend.instance_name;
  record.action = core::action_for(transition);
  record.actor = transition.actor;
  record.from = std::string(core::to_string(transition.from));
  record.to = std::string(core::to_string(transition.to));
  record.detail = transition.detail;
  this->record(std::move(record));
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
    if (mirror_) mirror_->enqueue(record);
    for (const auto& listener : listeners_) listener(record);
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

void EventRecorder::close() {
  if (closed_) return;
  // The windows still open are summed up now, so that a stop loses no count.
  flush_noise(true);
  closed_ = true;
  if (mirror_) mirror_->close();
  journal_.close();
  // Long-polls answer now with what there is, so that the server can finish its requests.
  for (Waiter& waiter : waiters_) waiter.timer->stop();
  std::list<Waiter> waiting = std::move(waiters_);
  waiters_.clear();
  for (Waiter& waiter : waiting) {
    if (waiter.then) waiter.then();
  }
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
           {"swift", swift}};
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
