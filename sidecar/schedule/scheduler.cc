#include "schedule/scheduler.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "uv/files.h"

namespace unshelver::app {

namespace {
core::SysSeconds seconds_of(core::TimePoint at) {
  return std::chrono::floor<std::chrono::seconds>(at);
}
}  // namespace

bool is_use_record(const core::EventRecord& record) {
  return record.action == "unshelve_requested" &&
         (record.actor == "public-button" || record.actor == "wake-on-request");
}

KeepWarmScheduler::KeepWarmScheduler(uv_loop_t* loop, std::vector<Entry> entries, std::string budget_path,
                                     Estimate estimate, std::chrono::milliseconds interval)
    : entries_(std::move(entries)),
      budget_path_(std::move(budget_path)),
      estimate_(std::move(estimate)),
      interval_(interval),
      timer_(loop) {}

void KeepWarmScheduler::start(const std::vector<core::EventRecord>& history) {
  if (auto text = io::read_file_if_exists(budget_path_); text && *text) {
    const nlohmann::json document = nlohmann::json::parse(**text, nullptr, false);
    for (Entry& entry : entries_) {
      const std::string& name = entry.driver->config().name;
      if (document.is_object() && document.contains(name)) entry.schedule.budget().restore(document[name]);
    }
  }
  for (const core::EventRecord& record : history) on_event(record);
  run();
}

void KeepWarmScheduler::run() {
  // Until every backend has been observed once, steps come often: the first observation decides
  // what a restarted backend wants (BackendReconciler::on_observed), so a wake asked for before
  // it would be taken back.
  const bool all_observed = step();
  timer_.start(all_observed ? interval_ : std::chrono::milliseconds(250), [this] { run(); });
}

void KeepWarmScheduler::on_event(const core::EventRecord& record) {
  if (!is_use_record(record)) return;
  for (Entry& entry : entries_) {
    if (entry.driver->config().name == record.backend) entry.schedule.add_use(seconds_of(record.at));
  }
}

bool KeepWarmScheduler::step() {
  const core::ClockReading clock =
      entries_.empty() ? core::ClockReading{} : entries_.front().driver->read_clock();
  const core::SysSeconds now = seconds_of(clock.wall);
  bool charged = false;
  bool all_observed = true;
  for (Entry& entry : entries_) {
    BackendDriver& driver = *entry.driver;
    const core::BackendReconciler& reconciler = driver.reconciler();
    const std::string& name = driver.config().name;
    if (reconciler.state() == core::BackendState::kUnknown) {
      all_observed = false;
      continue;
    }
    // Activity after the backend became ready is a use (becoming ready is recorded as activity
    // too, and is not one).
    if (auto activity = reconciler.last_activity_wall(clock);
        activity && reconciler.state() == core::BackendState::kReady &&
        *activity > clock.wall_of(reconciler.state_since()) &&
        (!last_use_seen_.contains(name) || *activity > last_use_seen_[name])) {
      last_use_seen_[name] = *activity;
      entry.schedule.add_use(seconds_of(*activity));
    }
    core::KeepWarmStep step = entry.schedule.step(now, reconciler, estimate_(name));
    if (step.wake) driver.request(true, step.actor, step.reason);
    for (core::HoldReason reason : step.release) driver.release_hold(reason);
    for (core::AwakeHold& hold : step.place) driver.hold_awake(std::move(hold));
    if (step.prewarm_charged.count() > 0) {
      spdlog::info("[{}] pre-warm held {} s (charged to the week's cap)", name, step.prewarm_charged.count());
      charged = true;
    }
  }
  if (charged) save_budget();
  return all_observed;
}

void KeepWarmScheduler::save_budget() {
  nlohmann::json document = nlohmann::json::object();
  for (Entry& entry : entries_) document[entry.driver->config().name] = entry.schedule.budget().to_json();
  // A few hundred bytes, once per pre-warm: written at once rather than through the thread pool.
  if (Status written = io::write_file_atomically(budget_path_, document.dump(2) + "\n", 0600); !written) {
    spdlog::error("cannot save the pre-warm budget: {}", written.error().message);
  }
}

std::optional<core::ScheduleView> KeepWarmScheduler::view(const std::string& backend) const {
  for (const Entry& entry : entries_) {
    if (entry.driver->config().name != backend) continue;
    if (!entry.schedule.active()) return std::nullopt;
    const core::ClockReading clock = entry.driver->read_clock();
    return entry.schedule.view(seconds_of(clock.wall), estimate_(backend));
  }
  return std::nullopt;
}

}  // namespace unshelver::app
