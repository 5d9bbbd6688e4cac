// Controller: what the web layer asks of the application, and BackendView, the typed view of one
// backend that the status document, the metrics, the pages and the CLI all read.
//
// BackendView carries the backend's *effective* state: the reconciler's, except that a backend
// is `ready` only once Caddy routes visitors to it (DESIGN.md). That rule lives in
// effective_state() below and nowhere else, so /api/status, /metrics and the pages agree about
// the same backend at the same moment. Nothing above this header compares state strings. (A gated
// backend's route never changes with its state: the gate itself lets visitors through once the
// backend is ready.)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/reconciler.h"
#include "backend/state_machine.h"
#include "base/prometheus.h"
#include "events/wake_history.h"

namespace unshelver::io {
struct HttpRequest;
}

namespace unshelver::web {

class EventStreams;

// The gate's figures for one gated backend (web/hold_queue.h, activity/started_requests.h).
struct GateView {
  int held = 0;                         // held now
  std::chrono::milliseconds oldest{0};  // the oldest hold under way
  std::uint64_t held_total = 0;
  std::uint64_t released = 0;
  std::uint64_t failed = 0;  // answered with the backend's error
  std::uint64_t expired = 0;
  std::uint64_t gone = 0;                     // the client left while held
  std::uint64_t refused = 0;                  // the queue was full
  std::chrono::milliseconds longest_hold{0};  // of the holds that ended
  int in_flight = 0;                          // let through and not ended (per the access log)
  std::uint64_t in_flight_forgotten = 0;      // starts whose end never came

  bool operator==(const GateView&) const = default;
};

// With several controllers (ha/): whether one can act on a backend now, and if not, why.
enum class Coordination {
  kActing,            // this controller leads it, or another does and etcd answers (or no ha)
  kStoreUnreachable,  // etcd does not answer: nothing is woken or shelved until it does
  kHandingOver,       // etcd answers but no controller leads the backend yet
};

struct BackendView {
  std::string name;
  std::string label;  // what the pages show: the configured label, or the name
  std::string description;
  std::string provider;
  core::BackendState state = core::BackendState::kUnknown;  // effective: see effective_state()
  core::TimePoint since{};                                  // when the reconciler entered its state
  // Caddy's route to the backend as loaded ("backend", "unshelver", or "" before the first
  // load); nullopt when Unshelver does not manage Caddy.
  std::optional<std::string> routing;
  bool desired_awake = false;
  std::string desired_by;
  std::string desired_reason;
  // When the wake under way was asked for (the waiting page's elapsed time); nullopt unless a
  // wake is wanted and the backend is not ready yet.
  std::optional<core::TimePoint> wake_started_at;
  std::optional<core::TimePoint> last_activity;
  std::optional<core::TimePoint> idle_deadline;
  std::chrono::seconds idle_timeout{0};
  std::string url;
  std::string upstream;
  std::string cloud_status;  // the cloud's last reported status, "" before the first report
  std::optional<core::TimePoint> observed_at;
  std::string error;
  std::string observe_error;
  // With ha: why no controller can act on the backend right now. The pages say it in place of
  // their usual hint (web/page_model.h).
  Coordination coordination = Coordination::kActing;
  std::optional<core::Command> action_in_flight;
  int requests_in_flight = 0;
  bool wake_on_request = false;  // the backend's configuration: requests may wake it
  bool dry_run = false;          // the backend's configuration: never woken or shelved (dry_run)
  std::optional<GateView> gate;  // set for a gated backend
  // Access-log lines attributed to the backend, when the classifier runs.
  std::optional<std::uint64_t> activity_lines;
  std::optional<std::uint64_t> ignored_lines;
  // From the event log (events/wake_history.h): the median of the last wakes' durations, nullopt
  // before the first completed wake; and the last 7 days' periods and wakes.
  std::optional<double> wake_estimate_seconds;
  core::BackendHistory history;
  // The savings report's figures (bill/savings.h savings_json): this month, last month and the
  // last 30 days; null without the event log.
  nlohmann::json savings;
  // Why it is awake (core::awake_reason: visitor, api-request, window, pre-warm, admin-pin,
  // admin-wake, cloud; "" while not awake), and until when a hold keeps it (nullopt: not held,
  // or pinned with no end).
  std::string awake_reason;
  std::optional<core::TimePoint> held_until;
  std::optional<core::AwakeHold> pin;  // who pinned it awake, and when
  // Keep-warm windows and pre-warming (schedule/keep_warm.h), when configured.
  bool scheduled = false;
  std::optional<core::TimePoint> window_until;  // the open window's end
  std::optional<core::TimePoint> next_window;   // the next window's start
  std::optional<core::TimePoint> next_prewarm;  // the planned pre-warm wake
  std::chrono::seconds wake_lead{0};
  std::chrono::seconds prewarm_used{0};
  std::chrono::seconds prewarm_cap{0};
};

// The one rule between the reconciler's state and what visitors see: `ready` means visitors
// reach the backend, so while Unshelver manages Caddy (`routing` set) and Caddy has not loaded
// the route to the backend, a ready backend is still `booting`.
inline core::BackendState effective_state(core::BackendState reconciled,
                                          const std::optional<std::string>& routing) {
  if (reconciled == core::BackendState::kReady && routing && *routing != "backend" && *routing != "gate")
    return core::BackendState::kBooting;
  return reconciled;
}

// Whether a view holds something that moves without any revision: while requests are in flight
// the reconciler moves the last activity (and the idle deadline with it) at each in-flight sample,
// and while requests are held at the gate the oldest hold's age grows with the clock. A reader
// that keeps views between revisions reads such a backend's view again at each reading.
inline bool moves_without_revision(const BackendView& view) {
  return view.requests_in_flight > 0 || (view.gate && view.gate->held > 0);
}

// One backend's view with its place in the configuration (Controller::changed_page_views).
struct IndexedView {
  std::size_t index = 0;
  BackendView view;
};

class Controller {
 public:
  // What became of a wake or shelve request.
  enum class RequestOutcome { kAccepted, kNothingToDo, kUnknownBackend };

  virtual ~Controller() = default;
  // Changes whenever anything in status() or backends() changes.
  virtual std::uint64_t revision() const = 0;
  // Every configured backend, in configuration order.
  virtual std::vector<BackendView> backends() const = 0;
  // The same without what only admins see and what moves with the clock (`history` beyond its
  // estimate, `savings`): what the public pages show, cheap enough to read on every change.
  virtual std::vector<BackendView> page_views() const { return backends(); }
  // The page views of the backends whose view may have changed since the caller last read them,
  // ascending by index: what a reader that keeps each backend's part between changes (the page
  // cache, the metrics) reads, so that a change of one backend costs one view and not the fleet's.
  // `seen` is the caller's own: per backend (configuration order), the backend's revision at its
  // last reading. It is resized to the fleet (a new entry is 0) and brought up to date. A backend
  // is read when its entry differs from its revision; a caller sets an entry to 0 to read that
  // backend again next time (a view that moves without a revision: moves_without_revision).
  // Backend revisions are never 0. This default reads every backend each time.
  virtual std::vector<IndexedView> changed_page_views(std::vector<std::uint64_t>& seen) const {
    std::vector<BackendView> views = page_views();
    std::vector<IndexedView> changed;
    changed.reserve(views.size());
    for (std::size_t i = 0; i < views.size(); ++i) changed.push_back(IndexedView{i, std::move(views[i])});
    seen.assign(changed.size(), revision() == 0 ? 1 : revision());
    return changed;
  }
  // One backend's page view (nullopt for a name that is not configured): what a request about that
  // backend alone reads, so that it costs that backend's work and not the fleet's.
  virtual std::optional<BackendView> page_view(std::string_view name) const {
    for (BackendView& view : page_views()) {
      if (view.name == name) return std::move(view);
    }
    return std::nullopt;
  }
  // The /api/status document: {"revision", "title", "backends": [...], and the subsystems'}.
  virtual nlohmann::json status() const = 0;
  // The document's title (app.title).
  virtual std::string title() const { return status().value("title", "Unshelver"); }
  // kAccepted when the backend was asked to wake (sleep), kNothingToDo when it already was,
  // kUnknownBackend for a name that is not configured.
  virtual RequestOutcome wake(const std::string& name, const std::string& actor,
                              const std::string& reason) = 0;
  virtual RequestOutcome shelve(const std::string& name, const std::string& actor,
                                const std::string& reason) = 0;
  // Pins a backend awake (and wakes it), or lifts the pin: the idle rule does not shelve a pinned
  // backend. kNothingToDo when it already was (not) pinned.
  virtual RequestOutcome pin(const std::string& name, bool pinned, const std::string& actor,
                             const std::string& reason) {
    (void)name, (void)pinned, (void)actor, (void)reason;
    return RequestOutcome::kUnknownBackend;
  }
  // An event of the web layer (login, login_failed, logout) for the audit trail.
  virtual void record_event(const std::string& action, const std::string& actor,
                            const std::string& detail) = 0;
  // The ignore rule a request matches (a bot, an uptime monitor), or "" when none does.
  virtual std::string ignore_reason(const io::HttpRequest& request) const = 0;
  // The daemon's own metrics (cloud, Caddy, log lines, events) for /metrics.
  virtual void metrics(core::MetricsPage& page) const = 0;
  // The backends' metrics, one page per backend (and what is written at every scrape), joined
  // after metrics() (core::MetricsPage::join_shared). Shared and immutable: a scrape's answer
  // keeps the pages it is made of until it is written.
  virtual std::vector<std::shared_ptr<const core::MetricsPage>> backend_metrics() const { return {}; }
  // The backend whose host a request's Host header names (with or without a port, any case),
  // or "" for any other host.
  virtual std::string backend_for_host(std::string_view host) const = 0;
  // The gate let a request through to the backend: it is in flight until the access log says it
  // ended, and (unless an ignore rule matched it) it is activity from now on.
  virtual void request_started(const std::string& name, bool counts_as_activity) = 0;
  // {"events": [...], "last_seq": N}, oldest first: without `after` the newest `limit` events,
  // with it the first `limit` events after that seq. Only events already written and fsync'd.
  virtual nlohmann::json events(std::optional<std::uint64_t> after, const std::string& backend,
                                std::size_t limit) const = 0;
  // Calls `then` (never inside this call) once an event with seq > after is recorded, or after
  // `timeout`.
  virtual void wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout,
                               std::function<void()> then) = 0;
  // The open GET /api/events/stream answers (web/event_stream.h), or nullptr without them.
  virtual EventStreams* event_streams() { return nullptr; }
};

}  // namespace unshelver::web
