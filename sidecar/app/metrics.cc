// App::metrics: the daemon's counters as Prometheus metrics (GET /metrics; the web layer adds the
// HTTP and login counters). Everything is read from the pieces' own statistics at scrape time,
// so no metric can drift from what /api/status shows.
#include <spdlog/spdlog.h>

#include "app/app.h"
#include "app/status.h"
#include "base/time_format.h"

namespace unshelver::app {

namespace {
double seconds_since_epoch(std::chrono::system_clock::time_point at) {
  return std::chrono::duration<double>(at.time_since_epoch()).count();
}

double number(const nlohmann::json& value) {
  return value.is_number() ? value.get<double>() : 0;
}
}  // namespace

void App::metrics(core::MetricsPage& page) const {
  page.gauge("unshelver_start_time_seconds",
             "When this unshelver process started, in seconds since the epoch.", {},
             seconds_since_epoch(started_at_));

  const std::vector<web::BackendView> views = backends();
  for (std::size_t i = 0; i < views.size(); ++i) {
    const web::BackendView& view = views[i];
    const std::string& name = view.name;
    // The effective state, as /api/status shows it.
    for (core::BackendState state : core::kAllStates) {
      page.gauge("unshelver_backend_state", "1 for the state the backend is in, 0 for the others.",
                 {{"backend", name}, {"state", std::string(core::to_string(state))}},
                 view.state == state ? 1 : 0);
    }
    page.gauge("unshelver_backend_desired_awake",
               "1 while the backend is wanted awake, 0 while wanted asleep.", {{"backend", name}},
               view.desired_awake ? 1 : 0);
    if (view.last_activity) {
      page.gauge(
          "unshelver_backend_last_activity_timestamp_seconds",
          "The backend's last activity seen in Caddy's access log or as a request in flight, in seconds "
          "since the epoch.",
          {{"backend", name}}, seconds_since_epoch(*view.last_activity));
    }
    if (view.idle_deadline) {
      page.gauge("unshelver_backend_idle_deadline_timestamp_seconds",
                 "When the backend will be put to sleep if it stays idle, in seconds since the epoch.",
                 {{"backend", name}}, seconds_since_epoch(*view.idle_deadline));
    }
    page.gauge("unshelver_backend_requests_in_flight", "Requests to the backend open in Caddy right now.",
               {{"backend", name}}, view.requests_in_flight);
    const core::OperationStats& operations = backends_[i].operations;
    for (const auto& [key, count] : operations.outcomes()) {
      const auto& [kind, actor, outcome] = key;
      const bool wake = kind == core::OperationStats::Kind::kWake;
      page.counter(wake ? "unshelver_wakes_total" : "unshelver_shelves_total",
                   wake ? "Finished wakes, by who asked and how they ended (ready, failed, cancelled)."
                        : "Finished shelves, by who asked and how they ended (asleep, failed, cancelled).",
                   {{"backend", name}, {"actor", actor}, {"outcome", outcome}}, static_cast<double>(count));
    }
    page.histogram("unshelver_wake_duration_seconds", "From a wake request until the backend was ready.",
                   {{"backend", name}}, operations.wake_durations());
  }

  if (activity_) activity_->write_metrics(page);

  if (openstack_) {
    const providers::SessionStats& stats = openstack_->stats();
    for (const auto& [service, statuses] : stats.by_service_status) {
      for (const auto& [status, count] : statuses) {
        page.counter(
            "unshelver_cloud_api_requests_total",
            "OpenStack API requests, by service and HTTP status (no_answer: timeout or connection error).",
            {{"service", service}, {"status", response_status_label(status)}}, static_cast<double>(count));
      }
    }
    for (auto [outcome, count] :
         {std::pair{"ok", stats.authentications}, std::pair{"failed", stats.authentication_failures}}) {
      page.counter("unshelver_cloud_authentications_total", "Keystone token requests, by outcome.",
                   {{"outcome", outcome}}, static_cast<double>(count));
    }
  }

  if (router_) {
    const CaddyRouterStatus& status = router_->status();
    for (auto [outcome, count] :
         {std::pair{"ok", status.loads_ok}, std::pair{"failed", status.loads_failed}}) {
      page.counter("unshelver_caddy_loads_total", "Configurations loaded into Caddy's admin API, by outcome.",
                   {{"outcome", outcome}}, static_cast<double>(count));
    }
    page.counter("unshelver_caddy_drift_repairs_total",
                 "Times Caddy ran another configuration than Unshelver's and was set right.", {},
                 static_cast<double>(status.drift_repairs));
  }

  if (events_) {
    const nlohmann::json events = events_->status();
    page.counter("unshelver_events_recorded_total", "Events written and fsync'd to the local event log.", {},
                 number(events.value("recorded", nlohmann::json())));
    page.gauge("unshelver_events_unwritten",
               "Events waiting in memory because the event log cannot be written.", {},
               number(events.value("unwritten", nlohmann::json())));
    page.counter("unshelver_event_write_errors_total", "Failed writes to the local event log.", {},
                 number(events.value("write_errors", nlohmann::json())));
    const nlohmann::json& swift = events["swift"];
    if (swift.is_object()) {
      page.gauge("unshelver_swift_outbox_events", "Recorded events not yet confirmed by Swift.", {},
                 number(swift.value("outbox", nlohmann::json())));
      for (auto [outcome, key] :
           {std::pair{"created", "uploaded"}, std::pair{"already_present", "already_present"}}) {
        page.counter("unshelver_swift_uploads_total", "Events uploaded to Swift, by outcome.",
                     {{"outcome", outcome}}, number(swift.value(key, nlohmann::json())));
      }
      page.counter("unshelver_swift_upload_errors_total", "Failed uploads of events to Swift.", {},
                   number(swift.value("upload_errors", nlohmann::json())));
    }
  }
}

}  // namespace unshelver::app
