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

json backend_json(const web::BackendView& view) {
  const web::FailureReason failure = web::classify_failure(view.error);
  json entry = {
      {"name", view.name},
      {"label", view.label},
      {"description", view.description},
      {"provider", view.provider},
      {"state", std::string(core::to_string(view.state))},
      {"state_label", std::string(web::state_label(view.state))},  // what every page shows
      {"routing", view.routing ? json(*view.routing) : json()},
      {"since", core::format_rfc3339(view.since)},
      {"desired", view.desired_awake ? "awake" : "asleep"},
      {"desired_by", view.desired_by},
      {"desired_reason", view.desired_reason},
      {"last_activity", core::time_or_null(view.last_activity)},
      {"idle_deadline", core::time_or_null(view.idle_deadline)},
      {"idle_timeout_seconds", view.idle_timeout.count()},
      {"wake_started_at", core::time_or_null(view.wake_started_at)},
      {"url", view.url},
      {"upstream", view.upstream},
      {"cloud_status", view.cloud_status},
      {"observed_at", core::time_or_null(view.observed_at)},
      {"error", view.error},
      // What the public view shows in place of `error` (web::public_backend): the cloud's text
      // can carry a traceback and internal host names.
      {"error_reason", std::string(web::failure_code(failure))},
      {"error_summary", std::string(web::failure_summary(failure))},
      {"observe_error", view.observe_error},
      {"coordination", std::string(web::coordination_code(view.coordination))},
      {"action_in_flight",
       view.action_in_flight ? json(std::string(core::to_string(*view.action_in_flight))) : json()},
      {"requests_in_flight", view.requests_in_flight},
      // Unshelver observes this backend but never wakes or shelves it; the events record what it
      // would have done (dry_run_would_shelve, dry_run_would_wake).
      {"dry_run", view.dry_run},
      // A contract with the pages (waiting page, launcher): seconds, or null before the first
      // completed wake. Public; the history below is for admins (web::public_backend).
      {"wake_estimate_seconds", view.wake_estimate_seconds ? json(*view.wake_estimate_seconds) : json()},
      {"history", core::history_json(view.history)},
  };
  // Admins only, like the history (web::public_backend leaves it out).
  if (!view.savings.is_null()) entry["savings"] = view.savings;
  // Why the backend is awake, and the awake holds (README "Keep-warm windows and pre-warming").
  entry["awake_reason"] = view.awake_reason.empty() ? json() : json(view.awake_reason);
  entry["held_until"] = core::time_or_null(view.held_until);
  entry["pinned"] = view.pin ? json{{"by", view.pin->actor},
                                    {"at", core::format_rfc3339(view.pin->since)},
                                    {"detail", view.pin->detail}}
                             : json();
  if (view.scheduled) {
    entry["keep_warm"] = {{"window_until", core::time_or_null(view.window_until)},
                          {"next_window", core::time_or_null(view.next_window)},
                          {"next_prewarm", core::time_or_null(view.next_prewarm)},
                          {"wake_lead_seconds", view.wake_lead.count()},
                          {"prewarm_seconds_this_week", view.prewarm_used.count()},
                          {"prewarm_cap_seconds", view.prewarm_cap.count()}};
  }
  if (view.activity_lines) entry["activity_lines"] = *view.activity_lines;
  if (view.ignored_lines) entry["ignored_lines"] = *view.ignored_lines;
  if (view.gate) {
    const web::GateView& gate = *view.gate;
    entry["gate"] = {{"held", gate.held},
                     {"oldest_hold_ms", gate.oldest.count()},
                     {"held_total", gate.held_total},
                     {"released", gate.released},
                     {"failed", gate.failed},
                     {"expired", gate.expired},
                     {"gone", gate.gone},
                     {"refused", gate.refused},
                     {"longest_hold_ms", gate.longest_hold.count()},
                     {"in_flight", gate.in_flight},
                     {"in_flight_forgotten", gate.in_flight_forgotten}};
  }
  return entry;
}

}  // namespace unshelver::app
