#include "activity/monitor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/text.h"

namespace unshelver::activity {

namespace {
using nlohmann::json;

std::vector<core::ActivityTarget> targets_of(const std::vector<app::BackendDriver*>& drivers) {
  std::vector<core::ActivityTarget> targets;
  for (const app::BackendDriver* driver : drivers) {
    const core::BackendConfig& backend = driver->config();
    targets.push_back(core::ActivityTarget{backend.name, backend.host, backend.upstream_label});
  }
  return targets;
}

// A long request must be recognised well before the idle timeout could shelve the backend.
core::InflightTracker tracker_for(const core::BackendConfig& backend) {
  const core::InflightSettings& inflight = backend.inflight;
  auto min_busy = std::min<std::chrono::milliseconds>(
      inflight.min_busy, std::chrono::duration_cast<std::chrono::milliseconds>(backend.idle_timeout) / 2);
  return core::InflightTracker(min_busy, std::max<std::chrono::milliseconds>(
                                             inflight.sample_interval * 2, std::chrono::milliseconds(2000)));
}
}  // namespace

ActivityMonitor::ActivityMonitor(uv_loop_t* loop, const core::Config& config,
                                 const std::vector<app::BackendDriver*>& drivers,
                                 std::function<void()> on_change, std::function<void()> persist)
    : loop_(loop),
      config_(config),
      on_change_(std::move(on_change)),
      persist_(std::move(persist)),
      classifier_(targets_of(drivers), config.activity.ignore) {
  for (app::BackendDriver* driver : drivers) {
    // The gate's starts (started_requests.h): a start whose end never came is forgotten after the
    // idle timeout, but never sooner than kShortestStartLifetime, so that a stream longer than a
    // short idle timeout keeps its backend awake on the gate's word alone (the socket sampler
    // can miss it on a starved machine; test_gate saw a stream cut by the shelve under ASan).
    constexpr std::size_t kMostStartsKept = 65'536;
    constexpr std::chrono::seconds kShortestStartLifetime{15 * 60};
    const auto start_lifetime =
        std::max<std::chrono::milliseconds>(driver->config().idle_timeout, kShortestStartLifetime);
    watched_.push_back(Watched{driver,
                               tracker_for(driver->config()),
                               "",
                               core::StartedRequests(start_lifetime, kMostStartsKept),
                               {}});
    const core::BackendConfig& backend = driver->config();
    if (!backend.host.empty())
      backend_by_host_[core::to_lower(core::host_without_port(backend.host))] = backend.name;
  }
}

ActivityMonitor::~ActivityMonitor() = default;

Status ActivityMonitor::start() {
  // Requests in flight: one monitor for every backend with in-flight detection on.
  std::chrono::milliseconds sample_interval{0};
  for (const Watched& watched : watched_) {
    const core::InflightSettings& inflight = watched.driver->config().inflight;
    if (inflight.enabled && (sample_interval.count() == 0 || inflight.sample_interval < sample_interval)) {
      sample_interval = inflight.sample_interval;
    }
  }
  if (sample_interval.count() > 0) {
    monitor_ = std::make_unique<io::ConnectionMonitor>(
        loop_, sample_interval,
        [this](const std::string& upstream, const std::vector<core::ConnectionSample>& sample) {
          on_connection_sample(upstream, sample);
        });
    if (Status started = monitor_->start(); !started) {
      spdlog::error("requests in flight cannot be seen ({}); long requests will not hold the idle clock",
                    started.error().message);
      monitor_.reset();
    }
  }

  flush_timer_ = std::make_unique<io::Timer>(loop_);
  refresh_upstreams();

  if (config_.activity_log_path.empty()) {
    spdlog::warn(
        "activity_log_path is not set: no access-log activity is seen, backends sleep one idle "
        "timeout after they become ready");
    return ok_status();
  }
  for (const Watched& watched : watched_) {
    if (watched.driver->config().host.empty()) {
      spdlog::warn(
          "[{}] has no host (set host or public_base_url): its access-log lines cannot be recognised",
          watched.driver->config().name);
    }
  }
  io::LogFollowerOptions options;
  options.max_line_bytes = config_.activity.max_line_bytes;
  options.stat_interval = config_.activity.stat_interval;
  options.checkpoint_path = config_.activity.checkpoint_path.empty()
                                ? config_.state_dir + "/activity-checkpoint.json"
                                : config_.activity.checkpoint_path;
  follower_ = std::make_unique<io::LogFollower>(loop_, config_.activity_log_path, options,
                                                [this](std::string_view line) { on_log_line(line); });
  if (Status started = follower_->start(); !started) {
    return Error{"activity_log_path " + config_.activity_log_path + ": " + started.error().message};
  }
  spdlog::info("following {} for activity", config_.activity_log_path);
  return ok_status();
}

void ActivityMonitor::close() {
  if (follower_) follower_->close();
  if (monitor_) monitor_->close();
  flush_timer_.reset();  // arm_flush() does nothing from now on.
}

void ActivityMonitor::arm_flush() {
  // One-shot, armed by what gives it work: an idle process has no timer here at all.
  if (!flush_timer_ || flush_timer_->active()) return;
  flush_timer_->start(kFlushInterval, [this] { flush(); });
}

void ActivityMonitor::flush() {
  // Starts whose end never came are forgotten here too, even when nothing else happens.
  bool in_flight = false;
  for (Watched& watched : watched_) {
    if (watched.driver->reconciler().requests_in_flight() > 0) {
      report_in_flight(watched, watched.driver->read_clock().mono);
      in_flight = in_flight || watched.driver->reconciler().requests_in_flight() > 0;
    }
  }
  if (dirty_) persist_();
  if (in_flight || dirty_) arm_flush();
}

void ActivityMonitor::on_log_line(std::string_view line) {
  const core::LineResult result = classifier_.classify(line);
  if (result.outcome != core::LineOutcome::kActivity) {
    if (result.outcome == core::LineOutcome::kMalformedJson ||
        result.outcome == core::LineOutcome::kMissingField ||
        result.outcome == core::LineOutcome::kWrongType) {
      spdlog::debug("access log: skipped a line ({}: {})", core::to_string(result.outcome), result.reason);
    }
    return;
  }
  Watched& watched = watched_.at(static_cast<std::size_t>(result.backend));
  const auto end = core::TimePoint(std::chrono::duration_cast<core::TimePoint::duration>(
      std::chrono::duration<double>(result.end_seconds)));
  // The line's time is Caddy's wall clock: only its age counts, converted once here, so a line
  // stamped in the future (the clock was set back) is activity now and not hours from now.
  const core::ClockReading now = watched.driver->read_clock();
  watched.driver->record_activity(now.mono_of(end));
  // Ignored lines end nothing: the gate starts nothing for the requests that the same rules ignore.
  watched.started.ended();
  report_in_flight(watched, now.mono);
  dirty_ = true;
  arm_flush();
  on_change_();
}

// A backend's connections are sampled only while its VM may serve (booting, ready, or in error
// while the cloud reports it running: the states in which its health is probed, and in which the
// idle rule can shelve it). A sleeping fleet is then not sampled at all. Its upstream becomes known
// with the cloud's first report and may change after a wake (a new address); the connection
// monitor is told only when the set of sampled upstreams changed.
bool ActivityMonitor::move_upstream(std::size_t index, bool& set_changed) {
  Watched& watched = watched_[index];
  const bool sample =
      watched.driver->config().inflight.enabled && watched.driver->reconciler().wants_health_probe();
  std::string upstream = sample ? watched.driver->upstream() : "";
  if (upstream == watched.upstream) return false;
  if (!watched.upstream.empty()) {
    auto entry = watched_by_upstream_.find(watched.upstream);
    if (entry != watched_by_upstream_.end()) {
      std::erase(entry->second, index);
      if (entry->second.empty()) {
        watched_by_upstream_.erase(entry);
        set_changed = true;
      }
    }
  }
  if (!upstream.empty()) {
    auto [entry, added] = watched_by_upstream_.try_emplace(upstream);
    entry->second.push_back(index);
    set_changed = set_changed || added;
  }
  watched.upstream = std::move(upstream);
  return true;
}

void ActivityMonitor::apply_upstreams(bool set_changed, const std::vector<std::size_t>& stopped) {
  if (set_changed) {
    std::vector<std::string> upstreams;
    upstreams.reserve(watched_by_upstream_.size());
    for (const auto& [upstream, indices] : watched_by_upstream_) upstreams.push_back(upstream);
    // In a stable order, so that the same set is recognised as unchanged (set_upstreams).
    std::sort(upstreams.begin(), upstreams.end());
    monitor_->set_upstreams(upstreams);
  }
  // What the sampler said about an upstream no longer watched is stale: its long requests end now
  // (the gate's open requests still count). Last, because reporting may change a backend, which
  // calls refresh_upstream again.
  for (std::size_t index : stopped) {
    Watched& watched = watched_[index];
    watched.inflight = tracker_for(watched.driver->config());
    watched.sampled = {};
    report_in_flight(watched, watched.driver->read_clock().mono);
  }
}

void ActivityMonitor::refresh_upstream(std::size_t index) {
  if (!monitor_ || index >= watched_.size()) return;
  const bool was_sampled = !watched_[index].upstream.empty();
  bool set_changed = false;
  if (!move_upstream(index, set_changed)) return;
  apply_upstreams(set_changed, was_sampled ? std::vector<std::size_t>{index} : std::vector<std::size_t>{});
}

void ActivityMonitor::refresh_upstreams() {
  if (!monitor_) return;
  bool set_changed = false;
  std::vector<std::size_t> stopped;
  for (std::size_t i = 0; i < watched_.size(); ++i) {
    const bool was_sampled = !watched_[i].upstream.empty();
    if (move_upstream(i, set_changed) && was_sampled) stopped.push_back(i);
  }
  apply_upstreams(set_changed, stopped);
}

void ActivityMonitor::on_connection_sample(const std::string& upstream,
                                           const std::vector<core::ConnectionSample>& sample) {
  auto found = watched_by_upstream_.find(upstream);
  if (found == watched_by_upstream_.end()) return;
  // Copied: reporting may change a backend, which refreshes the map.
  const std::vector<std::size_t> indices = found->second;
  for (std::size_t index : indices) {
    Watched& watched = watched_[index];
    if (watched.upstream != upstream) continue;  // Changed by an earlier report of this loop.
    const core::MonoTime now = watched.driver->read_clock().mono;
    watched.sampled = watched.inflight.update(sample, now);
    report_in_flight(watched, now);
  }
}

void ActivityMonitor::report_in_flight(Watched& watched, core::MonoTime now) {
  const int gated = watched.started.open(now);
  const int count = std::max(gated, watched.sampled.long_requests);
  // While the gate knows of a request in flight, the backend is busy now.
  const std::optional<core::MonoTime> last_busy_at =
      gated > 0 ? std::optional(now) : watched.sampled.last_busy_at;
  const int before = watched.driver->reconciler().requests_in_flight();
  watched.driver->set_requests_in_flight(count, last_busy_at);
  if (count != before) {
    spdlog::debug("[{}] {} request(s) in flight", watched.driver->config().name, count);
    on_change_();
  }
  if (count > 0) {
    dirty_ = true;
    arm_flush();
  }
}

void ActivityMonitor::request_started(std::size_t index, bool counts_as_activity) {
  Watched& watched = watched_.at(index);
  const core::MonoTime now = watched.driver->read_clock().mono;
  if (counts_as_activity) watched.driver->record_activity(now);
  // Without the access log no end would ever come: the start is activity only.
  if (!follower_ || !counts_as_activity) return;
  watched.started.started(now);
  report_in_flight(watched, now);
}

int ActivityMonitor::gate_in_flight(std::size_t index) {
  Watched& watched = watched_.at(index);
  return watched.started.open(watched.driver->read_clock().mono);
}

std::uint64_t ActivityMonitor::gate_forgotten(std::size_t index) const {
  return watched_.at(index).started.forgotten();
}

std::string ActivityMonitor::ignore_reason(std::string_view method, std::string_view target,
                                           std::string_view user_agent) const {
  return std::string(classifier_.ignore_reason(method, target, user_agent));
}

std::string ActivityMonitor::backend_for_host(std::string_view host) const {
  auto found = backend_by_host_.find(core::to_lower(core::host_without_port(host)));
  return found == backend_by_host_.end() ? "" : found->second;
}

std::uint64_t ActivityMonitor::activity_lines(std::size_t index) const {
  return classifier_.counters().activity_by_backend.at(index);
}

std::uint64_t ActivityMonitor::ignored_lines(std::size_t index) const {
  return classifier_.counters().ignored_by_backend.at(index);
}

void ActivityMonitor::write_status(json& document) const {
  json out = {{"log_path", config_.activity_log_path}};
  if (follower_) {
    const io::LogFollowerStats& stats = follower_->stats();
    out["lines"] = stats.lines;
    out["bytes"] = stats.bytes;
    out["overlong_lines"] = stats.overlong_lines;
    out["rotations"] = stats.rotations;
    out["truncations"] = stats.truncations;
    out["missed_while_down"] = stats.missed_while_down;
    out["read_errors"] = stats.read_errors;
  }
  out["by_outcome"] = classifier_.counters().by_outcome;
  out["inflight_detection"] = monitor_ != nullptr;
  // Whether the socket table is being sampled now, and for how many upstreams: none while every
  // backend sleeps.
  out["inflight_sampling"] = monitor_ != nullptr && monitor_->sampling();
  out["inflight_upstreams"] = watched_by_upstream_.size();
  document["activity"] = std::move(out);
}

void ActivityMonitor::write_metrics(core::MetricsPage& page) const {
  for (const auto& [outcome, count] : classifier_.counters().by_outcome) {
    page.counter("unshelver_log_lines_total", "Caddy access log lines, by how they were classified.",
                 {{"classification", outcome}}, static_cast<double>(count));
  }
  if (follower_) {
    const io::LogFollowerStats& stats = follower_->stats();
    page.counter("unshelver_log_rotations_total", "Rotations of Caddy's access log that were followed.", {},
                 static_cast<double>(stats.rotations));
    page.counter("unshelver_log_overlong_lines_total", "Access log lines skipped for being too long.", {},
                 static_cast<double>(stats.overlong_lines));
    page.counter("unshelver_log_read_errors_total", "Errors reading Caddy's access log.", {},
                 static_cast<double>(stats.read_errors));
  }
}

}  // namespace unshelver::activity
