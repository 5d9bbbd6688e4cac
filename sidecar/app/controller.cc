// App as the web layer's web::Controller: the backends' views and the status document, wake and
// shelve requests, and the event log's queries, answered from the backends and the subsystems.
#include <spdlog/spdlog.h>

#include "app/app.h"
#include "app/status.h"
#include "bill/savings.h"

namespace unshelver::app {

using nlohmann::json;

std::vector<web::BackendView> App::backends() const {
  return views(true);
}

std::vector<web::BackendView> App::page_views() const {
  return views(false);
}

std::optional<web::BackendView> App::page_view(std::string_view name) const {
  const std::optional<std::size_t> index = index_named(name);
  if (!index) return std::nullopt;
  return view_of(*index, false, std::chrono::system_clock::now());
}

std::vector<web::IndexedView> App::changed_page_views(std::vector<std::uint64_t>& seen) const {
  attribute_changes();
  seen.resize(backends_.size(), 0);
  std::vector<web::IndexedView> changed;
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    if (seen[i] == backends_[i].revision) continue;
    seen[i] = backends_[i].revision;
    changed.push_back(web::IndexedView{i, view_of(i, false, now)});
  }
  return changed;
}

std::optional<std::size_t> App::index_named(std::string_view name) const {
  const auto found = index_by_name_.find(std::string(name));
  if (found == index_by_name_.end()) return std::nullopt;
  return found->second;
}

void App::backend_changed(std::size_t index) {
  ++revision_;
  backends_[index].revision = revision_;
}

void App::subsystem_changed(Unattributed which) {
  ++revision_;
  unattributed_ |= which;
}

void App::attribute_changes() const {
  const unsigned which = std::exchange(unattributed_, 0U);
  if (which == 0) return;
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    SubsystemInputs inputs = backends_[i].inputs;
    read_inputs(i, which, inputs);
    if (inputs == backends_[i].inputs) continue;
    backends_[i].inputs = std::move(inputs);
    // Every subsystem change moved revision_ when it was reported, so this is newer than any
    // reading made before it.
    backends_[i].revision = revision_;
  }
}

void App::read_inputs(std::size_t index, unsigned which, SubsystemInputs& inputs) const {
  // With ha, the leader's activity and requests in flight reach a follower's reconciler too.
  if ((which & (kActivityChanged | kHaChanged)) != 0) {
    const core::BackendReconciler& reconciler = backends_[index].driver->reconciler();
    inputs.last_activity = reconciler.last_activity();
    inputs.requests_in_flight = reconciler.requests_in_flight();
    if (activity_) {
      inputs.activity_lines = activity_->activity_lines(index);
      inputs.ignored_lines = activity_->ignored_lines(index);
    }
  }
  if ((which & kRoutingChanged) != 0 && router_) {
    const auto& modes = router_->status().modes;
    const auto mode = modes.find(backends_[index].config().name);
    inputs.routing = mode == modes.end() ? "" : mode->second;
  }
  // The gate's requests in flight are the activity monitor's.
  if ((which & (kGateChanged | kActivityChanged)) != 0) inputs.gate = gate_view(index);
  if ((which & kHaChanged) != 0) inputs.coordination = coordination_of(index);
}

std::optional<web::GateView> App::gate_view(std::size_t i) const {
  if (!holds_ || backends_[i].config().routing != core::RoutingMode::kGate) return std::nullopt;
  const std::string& name = backends_[i].config().name;
  const web::HoldQueue::Stats& stats = holds_->stats(name);
  web::GateView gate;
  gate.held = holds_->held(name);
  gate.oldest = holds_->oldest(name);
  gate.held_total = stats.held_total;
  gate.released = stats.released;
  gate.failed = stats.failed;
  gate.expired = stats.expired;
  gate.gone = stats.gone;
  gate.refused = stats.refused;
  gate.longest_hold = std::max(stats.longest_hold, gate.oldest);
  if (activity_) {
    gate.in_flight = activity_->gate_in_flight(i);
    gate.in_flight_forgotten = activity_->gate_forgotten(i);
  }
  return gate;
}

web::Coordination App::coordination_of(std::size_t i) const {
  if (!ha_ || ha_->leads(i)) return web::Coordination::kActing;
  if (!ha_->etcd_reachable()) return web::Coordination::kStoreUnreachable;
  if (ha_->leader_of(i).empty()) return web::Coordination::kHandingOver;
  return web::Coordination::kActing;
}

std::vector<web::BackendView> App::views(bool with_history) const {
  std::vector<web::BackendView> views;
  views.reserve(backends_.size());
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < backends_.size(); ++i) views.push_back(view_of(i, with_history, now));
  return views;
}

web::BackendView App::view_of(std::size_t i, bool with_history,
                              std::chrono::system_clock::time_point now) const {
  web::BackendView view = backend_view(*backends_[i].driver, router_.get());
  if (events_ && with_history) {
    view.history = events_->history().history(view.name, now);
    view.wake_estimate_seconds = view.history.estimate_seconds;
    view.savings = core::savings_json(events_->ledger(), view.name, backends_[i].config().price, now);
  } else if (events_) {
    view.wake_estimate_seconds = events_->history().estimate_seconds(view.name);
  }
  if (keep_warm_) {
    if (const std::optional<core::ScheduleView> schedule = keep_warm_->view(view.name)) {
      auto wall = [](core::SysSeconds at) { return core::TimePoint(at.time_since_epoch()); };
      view.scheduled = true;
      if (schedule->window_open) view.window_until = wall(schedule->window_open->end);
      if (schedule->next_window) view.next_window = wall(schedule->next_window->start);
      if (schedule->next_prewarm) view.next_prewarm = wall(schedule->next_prewarm->wake_at);
      view.wake_lead = schedule->lead;
      view.prewarm_used = schedule->prewarm_used_this_week;
      view.prewarm_cap = schedule->prewarm_cap;
    }
  }
  view.coordination = coordination_of(i);
  if (activity_) {
    view.activity_lines = activity_->activity_lines(i);
    view.ignored_lines = activity_->ignored_lines(i);
  }
  view.gate = gate_view(i);
  return view;
}

nlohmann::json App::status() const {
  json backends = json::array();
  for (const web::BackendView& view : this->backends()) backends.push_back(backend_json(view));
  json result{{"revision", revision_},
              {"title", config_.app.title},
              {"backends", std::move(backends)},
              {"caddy", json{{"manage", false}}}};
  if (router_) router_->write_status(result);
  if (activity_) activity_->write_status(result);
  if (events_) events_->write_status(result);
  if (streams_ && result.contains("events")) streams_->write_status(result["events"]);
  if (notifier_) notifier_->write_status(result);
  if (openstack_) openstack_->write_status(result);
  if (ha_) {
    ha_->write_status(result);
    // Each backend's own entry says who leads it, beside its state.
    for (json& backend : result["backends"]) {
      const json& entry = result["ha"]["backends"][backend["name"].get<std::string>()];
      backend["ha"] = entry;
    }
  }
  return result;
}

std::string App::backend_for_host(std::string_view host) const {
  return activity_ ? activity_->backend_for_host(host) : "";
}

void App::request_started(const std::string& name, bool counts_as_activity) {
  const std::optional<std::size_t> index = index_named(name);
  if (!index) return;
  if (activity_) activity_->request_started(*index, counts_as_activity);
  // The last activity moves even when no request is counted in flight (without the access log).
  backend_changed(*index);
}

web::Controller::RequestOutcome App::pass_wish(std::size_t index, core::ha::Wish wish) {
  // The leader's view, as this controller mirrors it, answers as the leader would.
  const core::BackendReconciler& view = backends_[index].driver->reconciler();
  switch (wish.kind) {
    case core::ha::Wish::Kind::kWake:
    case core::ha::Wish::Kind::kShelve:
      if (!view.request_changes(wish.kind == core::ha::Wish::Kind::kWake))
        return RequestOutcome::kNothingToDo;
      break;
    case core::ha::Wish::Kind::kPin:
      if (view.pinned() && !view.request_changes(true)) return RequestOutcome::kNothingToDo;
      break;
    case core::ha::Wish::Kind::kUnpin:
      if (!view.pinned()) return RequestOutcome::kNothingToDo;
      break;
  }
  wish.at = std::chrono::system_clock::now();
  ha_->wish(index, wish);
  return RequestOutcome::kAccepted;
}

web::Controller::RequestOutcome App::request_desired(const std::string& name, bool awake,
                                                     const std::string& actor, const std::string& reason) {
  const std::optional<std::size_t> index = index_named(name);
  if (!index) return RequestOutcome::kUnknownBackend;
  Backend& backend = backends_[*index];
  if (ha_ && !backend.driver->acting()) {
    // Another controller leads (or none does yet): it carries the wish out (ha/coordinator.h).
    return pass_wish(
        *index, core::ha::Wish{
                    awake ? core::ha::Wish::Kind::kWake : core::ha::Wish::Kind::kShelve, actor, reason, {}});
  }
  const bool changed = backend.driver->request(awake, actor, reason);
  return changed ? RequestOutcome::kAccepted : RequestOutcome::kNothingToDo;
}

web::Controller::RequestOutcome App::wake(const std::string& name, const std::string& actor,
                                          const std::string& reason) {
  return request_desired(name, true, actor, reason);
}

web::Controller::RequestOutcome App::shelve(const std::string& name, const std::string& actor,
                                            const std::string& reason) {
  return request_desired(name, false, actor, reason);
}

web::Controller::RequestOutcome App::pin(const std::string& name, bool pinned, const std::string& actor,
                                         const std::string& reason) {
  const std::optional<std::size_t> index = index_named(name);
  if (!index) return RequestOutcome::kUnknownBackend;
  Backend& backend = backends_[*index];
  if (ha_ && !backend.driver->acting()) {
    return pass_wish(
        *index, core::ha::Wish{
                    pinned ? core::ha::Wish::Kind::kPin : core::ha::Wish::Kind::kUnpin, actor, reason, {}});
  }
  if (!backend.driver->set_pinned(pinned, actor, reason)) return RequestOutcome::kNothingToDo;
  // A pin changes no state, so it is the backend's notice (with its name in `backend`, like
  // shelve_failed), not a daemon-wide event.
  if (events_) {
    events_->record_notice(backend.config(), core::Notice{pinned ? "pinned_awake" : "unpinned", actor, reason,
                                                          std::chrono::system_clock::now()});
  }
  return RequestOutcome::kAccepted;
}

void App::record_event(const std::string& action, const std::string& actor, const std::string& detail) {
  if (!events_) return;
  core::EventRecord record;
  record.at = std::chrono::system_clock::now();
  record.action = action;
  record.actor = actor;
  record.detail = detail;
  // The one place where the web layer's events are classed: failed logins are noise (issue 15 §3).
  events_->record(std::move(record), core::web_event_class(action));
}

std::string App::ignore_reason(const io::HttpRequest& request) const {
  if (!activity_) return "";
  const std::string* agent = request.header("User-Agent");
  return activity_->ignore_reason(request.method, request.target, agent ? *agent : "");
}

nlohmann::json App::events(std::optional<std::uint64_t> after, const std::string& backend,
                           std::size_t limit) const {
  json list = json::array();
  for (const core::EventRecord& record : events_->recent(after, backend, limit)) {
    list.push_back(json::parse(core::to_json_line(record)));
  }
  return json{{"events", std::move(list)}, {"last_seq", events_->last_recorded_seq()}};
}

void App::wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout,
                          std::function<void()> then) {
  events_->wait(after, timeout, std::move(then));
}

}  // namespace unshelver::app
