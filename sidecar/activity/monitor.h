// ActivityMonitor: what keeps the backends awake, wired together.
//
// Caddy's access log is followed (LogFollower) and each line classified (ActivityClassifier):
// a line of a backend's host that no ignore rule matches is activity, and resets that backend's
// idle clock. Requests in flight through Caddy are sampled (ConnectionMonitor) for every backend
// with in-flight detection on whose VM may serve (booting, ready, or error while running), and a
// long request holds the idle clock (InflightTracker). The last activity is persisted at most
// every few seconds (and at shutdown), which bounds what a crash can lose to that window. Nothing
// here runs on a timer while nothing is awake and nothing is left to persist.
//
// The classifier also carries the ignore rules for live requests (wake on request) and the hosts
// of the backends, so it exists even when no access log is followed.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "activity/classifier.h"
#include "activity/connection_monitor.h"
#include "activity/inflight_tracker.h"
#include "activity/log_follower.h"
#include "activity/started_requests.h"
#include "backend/driver.h"
#include "base/prometheus.h"
#include "base/result.h"
#include "config/config.h"
#include "uv/timer.h"

namespace unshelver::activity {

class ActivityMonitor {
 public:
  // `drivers` are the backends in configuration order; they outlive the monitor. `on_change` runs
  // after anything that the status shows changed; `persist` saves the backends' state.
  ActivityMonitor(uv_loop_t* loop, const core::Config& config,
                  const std::vector<app::BackendDriver*>& drivers, std::function<void()> on_change,
                  std::function<void()> persist);
  ~ActivityMonitor();
  ActivityMonitor(const ActivityMonitor&) = delete;
  ActivityMonitor& operator=(const ActivityMonitor&) = delete;

  // Starts following the access log and sampling connections. An access log that cannot be
  // followed is a start-up error; connections that cannot be sampled are only logged.
  Status start();
  // The `index`th backend's upstream, or whether it is sampled, may have changed (the cloud's first
  // report, a wake to a new address, a change of state). Costs that backend's work only: a fleet
  // whose backends change one at a time is not compared whole at each change.
  void refresh_upstream(std::size_t index);
  // The same for every backend (at start).
  void refresh_upstreams();
  // Stops following and sampling; the periodic persisting stops too.
  void close();

  // Whether activity arrived since the backends' state was last persisted; saved() clears it.
  bool dirty() const { return dirty_; }
  void saved() { dirty_ = false; }

  // The ignore rule a live request matches, or "" (see ActivityClassifier::ignore_reason).
  std::string ignore_reason(std::string_view method, std::string_view target,
                            std::string_view user_agent) const;
  // The backend whose host `host` names (with or without a port, any case), or "".
  std::string backend_for_host(std::string_view host) const;
  // The gate let a request to the `index`th backend through: it is in flight until its access-log
  // line comes, and activity from now on unless an ignore rule matched it.
  void request_started(std::size_t index, bool counts_as_activity);
  // Requests the gate let through that have not ended, and those forgotten without an end.
  int gate_in_flight(std::size_t index);
  std::uint64_t gate_forgotten(std::size_t index) const;
  // Access-log lines attributed to the `index`th backend.
  std::uint64_t activity_lines(std::size_t index) const;
  std::uint64_t ignored_lines(std::size_t index) const;

  // Sets the status document's "activity"; adds the log's metrics.
  void write_status(nlohmann::json& document) const;
  void write_metrics(core::MetricsPage& page) const;

 private:
  struct Watched {
    app::BackendDriver* driver;
    core::InflightTracker inflight;
    std::string upstream;           // what the connection monitor watches for it, "" for nothing
    core::StartedRequests started;  // from the gate, ended by the access log
    core::InflightStatus sampled;   // the connection monitor's last word
  };
  // Tells the driver how many requests are in flight: the larger of the gate's open requests and
  // the sampler's long ones.
  void report_in_flight(Watched& watched, core::MonoTime now);
  // Brings the `index`th backend's entry in watched_by_upstream_ to what it should sample now.
  // Returns whether its upstream changed, and sets `set_changed` when an upstream began or ceased
  // to be sampled by anyone.
  bool move_upstream(std::size_t index, bool& set_changed);
  // Tells the connection monitor the sampled upstreams, then forgets what it said about those of
  // `stopped` (indices whose upstream changed).
  void apply_upstreams(bool set_changed, const std::vector<std::size_t>& stopped);
  void on_log_line(std::string_view line);
  void on_connection_sample(const std::string& upstream, const std::vector<core::ConnectionSample>& sample);
  // The flush persists the last activity (when dirty) and forgets the gate's starts whose end never
  // came; it runs once kFlushInterval after something gave it work, and again while work remains.
  void arm_flush();
  void flush();
  static constexpr std::chrono::seconds kFlushInterval{5};

  uv_loop_t* loop_;
  const core::Config& config_;
  std::vector<Watched> watched_;  // in configuration order, as the classifier's targets
  std::function<void()> on_change_;
  std::function<void()> persist_;
  core::ActivityClassifier classifier_;
  std::map<std::string, std::string> backend_by_host_;  // lower-case host -> backend name
  std::unique_ptr<io::LogFollower> follower_;
  std::unique_ptr<io::ConnectionMonitor> monitor_;
  // The sampled upstreams, each with the backends (indices in watched_) that it serves.
  std::unordered_map<std::string, std::vector<std::size_t>> watched_by_upstream_;
  std::unique_ptr<io::Timer> flush_timer_;
  bool dirty_ = false;
};

}  // namespace unshelver::activity
