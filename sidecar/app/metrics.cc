// App::metrics: the daemon's counters as Prometheus metrics (GET /metrics; the web layer adds the
// HTTP and login counters). Everything is read from the pieces' own statistics, so no metric can
// drift from what /api/status shows.
//
// At 1,000 backends the page is 2 MB, nearly all of it per backend, so each backend's part is
// kept between scrapes (backend_metrics) as a shared immutable page, and written again only when
// it may have changed: when its view changed for the pages (web::same_for_pages: state, desired
// state, last activity, idle deadline, requests in flight, the gate's figures, ...) or a
// transition was observed into its wake and shelve counters and durations (Backend::transitions).
// That is everything the part holds, so a scrape never shows a figure older than what it could
// observe. Reading every backend's view blocks the loop for milliseconds at 1,000 backends, so a
// scrape reads only the views of the backends whose revision moved (which every change of their
// views and every transition moves: Controller::changed_page_views), and again those whose last
// reading showed requests in flight or held at a gate: the last activity and the age of the
// oldest hold move with them without a revision (web::moves_without_revision). What moves without
// either is written at every scrape: the daemon-wide counters (cloud, Caddy, events, HTTP) and the
// awake and asleep seconds, which grow with the clock. The pages are merged by groups of
// consecutive backends, a group again when one of its pages changed, and the web layer sends the
// groups as slices of their own text (core::MetricsPage::join_shared), so a scrape copies no page.
#include <spdlog/spdlog.h>

#include "app/app.h"
#include "app/status.h"
#include "base/time_format.h"
#include "web/page_cache.h"

namespace unshelver::app {

namespace {
double seconds_since_epoch(std::chrono::system_clock::time_point at) {
  return std::chrono::duration<double>(at.time_since_epoch()).count();
}

// The built-in server's connection counters (issue 15 §1, §2): what its limits refused.
void write_http_server_metrics(const io::HttpServerStats& http, core::MetricsPage& page) {
  page.gauge("unshelver_http_open_connections", "Connections open to Unshelver's HTTP server.", {},
             static_cast<double>(http.open_connections));
  page.counter("unshelver_http_connections_refused_total",
               "Connections closed at once because the total or per-client connection cap was reached.", {},
               static_cast<double>(http.connections_refused));
  page.counter("unshelver_http_accept_errors_total",
               "Connections the HTTP server could not accept (EMFILE, ENFILE, ...).", {},
               static_cast<double>(http.accept_errors));
  page.counter("unshelver_http_read_pauses_for_output_total",
               "Times a connection stopped reading because too many of its answers were unsent.", {},
               static_cast<double>(http.read_pauses_for_output));
  for (const auto& [kind, count] :
       {std::pair{"header", http.header_timeouts}, std::pair{"body", http.body_timeouts},
        std::pair{"idle", http.idle_timeouts}}) {
    page.counter("unshelver_http_timeouts_total", "Connections closed by a timeout, by kind.",
                 {{"kind", kind}}, static_cast<double>(count));
  }
}

// One backend's part that changes only with its view or its transitions (see the top).
void write_backend_metrics(const web::BackendView& view, const Backend& backend, core::MetricsPage& page) {
  const std::string& name = view.name;
  // The effective state, as /api/status shows it.
  for (core::BackendState state : core::kAllStates) {
    page.gauge("unshelver_backend_state", "1 for the state the backend is in, 0 for the others.",
               {{"backend", name}, {"state", std::string(core::to_string(state))}},
               view.state == state ? 1 : 0);
  }
  page.gauge("unshelver_backend_desired_awake", "1 while the backend is wanted awake, 0 while wanted asleep.",
             {{"backend", name}}, view.desired_awake ? 1 : 0);
  if (view.last_activity) {
    page.gauge("unshelver_backend_last_activity_timestamp_seconds",
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
  if (view.gate) {
    const web::GateView& gate = *view.gate;
    const core::Labels labels = {{"backend", name}};
    page.gauge("unshelver_gate_held", "Requests held at the gate right now, waiting for the backend.", labels,
               gate.held);
    page.gauge("unshelver_gate_oldest_hold_seconds", "How long the oldest request held now has waited.",
               labels, std::chrono::duration<double>(gate.oldest).count());
    page.gauge("unshelver_gate_longest_hold_seconds", "The longest any request was held at the gate.", labels,
               std::chrono::duration<double>(gate.longest_hold).count());
    for (const auto& [outcome, count] : {std::pair{"released", gate.released},
                                         std::pair{"failed", gate.failed}, std::pair{"expired", gate.expired},
                                         std::pair{"gone", gate.gone}, std::pair{"refused", gate.refused}}) {
      page.counter("unshelver_gate_holds_total",
                   "Requests held at the gate, by how the hold ended (refused: the queue was full).",
                   {{"backend", name}, {"outcome", outcome}}, static_cast<double>(count));
    }
    page.gauge("unshelver_gate_requests_in_flight",
               "Requests the gate let through whose access-log line has not come yet.", labels,
               gate.in_flight);
    page.counter("unshelver_gate_in_flight_forgotten_total",
                 "Requests let through whose end never came and that were presumed gone.", labels,
                 static_cast<double>(gate.in_flight_forgotten));
  }
  const core::OperationStats& operations = backend.operations;
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

}  // namespace

void App::metrics(core::MetricsPage& page) const {
  page.gauge("unshelver_start_time_seconds",
             "When this unshelver process started, in seconds since the epoch.", {},
             seconds_since_epoch(started_at_));
  page.counter(
      "unshelver_config_reloads_total",
      "Configuration reloads asked for with SIGHUP: applied, or refused because the new file is invalid.",
      {{"result", "applied"}}, static_cast<double>(reloads_applied_));
  page.counter(
      "unshelver_config_reloads_total",
      "Configuration reloads asked for with SIGHUP: applied, or refused because the new file is invalid.",
      {{"result", "refused"}}, static_cast<double>(reloads_refused_));

  if (activity_) activity_->write_metrics(page);

  if (openstack_) openstack_->write_metrics(page);
  if (router_) router_->write_metrics(page);
  if (events_) events_->write_metrics(page);
  if (streams_) streams_->write_metrics(page);
  if (notifier_) notifier_->write_metrics(page);
  if (ha_) ha_->write_metrics(page);
  if (server_) write_http_server_metrics(server_->stats(), page);
}

std::vector<std::shared_ptr<const core::MetricsPage>> App::backend_metrics() const {
  // About the square root of 1,000: a change merges 32 pages again, a scrape sends 32 slices a
  // family.
  constexpr std::size_t kMergedGroup = 32;
  const std::size_t groups = (backends_.size() + kMergedGroup - 1) / kMergedGroup;
  std::vector<bool> group_written(groups, false);
  if (metrics_cache_.size() != backends_.size() || metrics_merged_.size() != groups) {
    metrics_cache_.assign(backends_.size(), CachedMetrics{});
    metrics_merged_.assign(groups, nullptr);
    metrics_seen_.clear();
    group_written.assign(groups, true);
  }
  for (web::IndexedView& changed : changed_page_views(metrics_seen_)) {
    const std::size_t i = changed.index;
    const web::BackendView& view = changed.view;
    if (web::moves_without_revision(view)) metrics_seen_[i] = 0;
    CachedMetrics& cached = metrics_cache_[i];
    if (cached.page && cached.transitions == backends_[i].transitions &&
        web::same_for_pages(cached.view, view))
      continue;
    core::MetricsPage page;
    write_backend_metrics(view, backends_[i], page);
    // The backends' pages share their families' names and help texts (MetricsPage::freeze): a
    // neighbour's page is written the same way.
    const std::size_t neighbour = i > 0 ? i - 1 : i + 1;
    page.freeze(neighbour < metrics_cache_.size() ? metrics_cache_[neighbour].page.get() : nullptr);
    cached.page = std::make_shared<const core::MetricsPage>(std::move(page));
    cached.view = std::move(changed.view);
    cached.transitions = backends_[i].transitions;
    group_written[i / kMergedGroup] = true;
  }
  std::vector<std::shared_ptr<const core::MetricsPage>> pages;
  pages.reserve(groups + 1);
  std::vector<const core::MetricsPage*> group_pages;
  for (std::size_t group = 0; group < groups; ++group) {
    if (group_written[group]) {
      group_pages.clear();
      const std::size_t end = std::min(backends_.size(), (group + 1) * kMergedGroup);
      for (std::size_t i = group * kMergedGroup; i < end; ++i)
        group_pages.push_back(metrics_cache_[i].page.get());
      metrics_merged_[group] =
          std::make_shared<const core::MetricsPage>(core::MetricsPage::merge(group_pages));
    }
    pages.push_back(metrics_merged_[group]);
  }
  // The savings report's seconds (bill/ledger.h), from the event log the daemon read at start
  // and every record since: Prometheus users multiply by their own prices. They grow with the
  // clock, so they are written at every scrape, into a page of this scrape's own.
  auto live = std::make_shared<core::MetricsPage>();
  if (events_) {
    const auto now = std::chrono::system_clock::now();
    std::vector<std::pair<std::string_view, double>> awake;
    std::vector<std::pair<std::string_view, double>> asleep;
    awake.reserve(backends_.size());
    asleep.reserve(backends_.size());
    for (const Backend& backend : backends_) {
      const std::string& name = backend.config().name;
      const core::Usage total = events_->ledger().total(name, now);
      awake.emplace_back(name, total.awake);
      asleep.emplace_back(name, total.asleep);
    }
    live->counters("unshelver_backend_awake_seconds_total",
                   "Seconds the backend's machine ran or was being started or stopped, per the event log.",
                   "backend", awake);
    live->counters("unshelver_backend_asleep_seconds_total",
                   "Seconds the backend's machine was shelved, per the event log.", "backend", asleep);
  }
  pages.push_back(std::move(live));
  return pages;
}

}  // namespace unshelver::app
