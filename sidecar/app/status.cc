#include "app/status.h"

namespace unshelver::app {

using nlohmann::json;

web::BackendView backend_view(const BackendDriver& driver, const CaddyRouter* router) {
  const core::BackendReconciler& reconciler = driver.reconciler();
  const core::BackendConfig& config = driver.config();
  const auto& observation = reconciler.last_observation();
  // The reconciler keeps monotonic times; they are shown on the wall clock as it reads now.
  const core::ClockReading clock = driver.read_clock();
  auto wall_of = [&clock](std::optional<core::MonoTime> at) -> std::optional<core::TimePoint> {
    if (!at) return std::nullopt;
    return clock.wall_of(*at);
  };
  web::BackendView view;
  view.name = config.name;
  view.label = config.label.empty() ? config.name : config.label;
  view.description = config.description;
  view.provider = std::string(driver.provider_kind());
  if (router != nullptr) {
    const auto& modes = router->status().modes;
    auto mode = modes.find(config.name);
    view.routing = mode == modes.end() ? "" : mode->second;
  }
  view.state = web::effective_state(reconciler.state(), view.routing);
  view.since = clock.wall_of(reconciler.state_since());
  view.desired_awake = reconciler.desired().awake;
  view.desired_by = reconciler.desired().actor;
  view.desired_reason = reconciler.desired().reason;
  if (view.desired_awake &&
      (view.state == core::BackendState::kAsleep || view.state == core::BackendState::kUnknown ||
       view.state == core::BackendState::kWaking || view.state == core::BackendState::kBooting)) {
    view.wake_started_at = reconciler.desired().since;
  }
  view.last_activity = reconciler.last_activity_wall(clock);
  view.idle_deadline = reconciler.idle_deadline_wall(clock);
  view.idle_timeout = config.idle_timeout;
  view.url = driver.visitor_url();
  view.upstream = config.upstream.empty() ? reconciler.upstream() : config.upstream;
  view.cloud_status = observation ? observation->status : "";
  view.observed_at = wall_of(reconciler.last_observed_at());
  view.error = reconciler.last_error();
  view.observe_error = reconciler.observe_error();
  view.action_in_flight = reconciler.in_flight();
  view.requests_in_flight = reconciler.requests_in_flight();
  view.wake_on_request = config.wake_on_request;
  view.awake_reason = core::awake_reason(reconciler, clock);
  if (auto hold = reconciler.active_hold(clock); hold && !view.awake_reason.empty())
    view.held_until = hold->until;
  for (const core::AwakeHold& hold : reconciler.holds()) {
    if (hold.reason == core::HoldReason::kPin) view.pin = hold;
  }
  view.dry_run = config.dry_run;
  return view;
}

}  // namespace unshelver::app
