// App: the one place where the pieces are wired together on one libuv loop.
//
// Start-up: open the state store, compile the pages, create each backend's provider and driver,
// the event recorder, the web routes, listen, the signals, the activity monitor, Caddy's routing,
// then start the drivers. Run: the loop. Shutdown (SIGINT/SIGTERM): stop every driver (timers,
// probes, pending cloud calls) and subsystem, release the HTTP client, let the server finish
// requests in flight, close the signal handles; when the loop has run dry, destroy what remains
// and close the loop (io::Loop: drained, and uv_loop_close must return 0).
//
// Reload (SIGHUP): the configuration is read again and validated exactly as at start-up (the
// `reread` function from main.cc). An invalid one is refused: logged, counted, recorded as an event,
// and the running configuration stays. A valid one stops this App as SIGTERM does (state saved,
// held gate requests dropped for Caddy to retry), except that the listening socket is duplicated
// first; run() then returns and take_reload() hands the next App, built in the same process by
// main.cc, the new configuration and that socket (Handover). Connections that arrive meanwhile
// wait in the socket's backlog: none is refused. What cannot change this way (`listen`) keeps its
// running value until a restart (config/reload_plan.h). Signals arriving between the two Apps are
// kept and handled by the next one (signal_handover.h).
//
// App is also the web layer's Controller (controller.cc): each backend's BackendView (status.cc)
// and the status document and metrics (metrics.cc) that each subsystem writes its part of.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "activity/monitor.h"
#include "app/backend.h"
#include "app/recorded_fence.h"
#include "backend/driver.h"
#include "backend/sim_provider.h"
#include "backend/state_store.h"
#include "caddy/router.h"
#include "config/config.h"
#include "events/mail_notifier.h"
#include "events/recorder.h"
#include "exoscale/exoscale_provider.h"
#include "ha/coordinator.h"
#include "openstack/nova_provider.h"
#include "openstack/session.h"
#include "schedule/scheduler.h"
#include "uv/http_client.h"
#include "uv/http_server.h"
#include "uv/loop.h"
#include "uv/signal.h"
#include "uv/systemd_notify.h"
#include "web/event_stream.h"
#include "web/hold_queue.h"
#include "web/pages.h"
#include "web/routes.h"

namespace unshelver::app {

// The configuration as start-up reads and validates it (main.cc): the file, its secrets, the
// environment and the command line's overrides, and the file checks of check-config.
using ConfigSource = std::function<Result<core::Config>()>;

// What one App passes to the next across a reload.
struct Handover {
  int listening_fd = -1;          // the listening socket, duplicated; -1: listen anew
  int proxy_socket_fd = -1;       // http.proxy_socket's listening socket, duplicated; -1: none
  std::string proxy_socket_path;  // its file, which the App that adopts it removes when it stops
  std::string listen_host;        // as the old server reported it
  std::string session_key;        // the generated signing key when app.secret_key is not set
  std::chrono::system_clock::time_point started_at;
  std::uint64_t revision = 0;
  std::uint64_t reloads_applied = 0;
  std::uint64_t reloads_refused = 0;
  std::string summary;        // what the reload changed (ReloadPlan::summary), for the event
  bool reload_again = false;  // another SIGHUP came during the handover: the file may be newer
};

// Closes the sockets of a handover that no App adopted, and removes the proxy socket's file, which
// the App that duplicated it no longer removes.
void release(Handover& handover);

struct Reload {
  core::Config config;
  Handover handover;
};

class App final : public web::Controller {
 public:
  explicit App(core::Config config, ConfigSource reread = {}, std::optional<Handover> handover = {});
  ~App() override;

  // Runs until a signal asks to stop. Returns the process exit code: 0 after a clean shutdown,
  // 1 for a run-time failure, 2 for a start-up problem with the configuration or environment.
  int run();
  // After run(): the next App's configuration and hand-over when a SIGHUP asked for a reload.
  std::optional<Reload> take_reload();

  // web::Controller (controller.cc)
  std::uint64_t revision() const override { return revision_; }
  std::vector<web::BackendView> backends() const override;
  std::vector<web::BackendView> page_views() const override;
  std::optional<web::BackendView> page_view(std::string_view name) const override;
  std::vector<web::IndexedView> changed_page_views(std::vector<std::uint64_t>& seen) const override;
  nlohmann::json status() const override;
  std::string title() const override { return config_.app.title; }
  RequestOutcome wake(const std::string& name, const std::string& actor, const std::string& reason) override;
  RequestOutcome shelve(const std::string& name, const std::string& actor,
                        const std::string& reason) override;
  RequestOutcome pin(const std::string& name, bool pinned, const std::string& actor,
                     const std::string& reason) override;
  void record_event(const std::string& action, const std::string& actor, const std::string& detail) override;
  std::string ignore_reason(const io::HttpRequest& request) const override;
  void metrics(core::MetricsPage& page) const override;  // metrics.cc
  std::vector<std::shared_ptr<const core::MetricsPage>> backend_metrics() const override;
  std::string backend_for_host(std::string_view host) const override;
  void request_started(const std::string& name, bool counts_as_activity) override;
  nlohmann::json events(std::optional<std::uint64_t> after, const std::string& backend,
                        std::size_t limit) const override;
  web::EventStreams* event_streams() override { return streams_.get(); }
  void wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout,
                       std::function<void()> then) override;

 private:
  int start();
  // Every backend's view; with_history: its history and savings as well (controller.cc).
  std::vector<web::BackendView> views(bool with_history) const;
  // The `index`th backend's view, its times on the wall clock of `now`.
  web::BackendView view_of(std::size_t index, bool with_history,
                           std::chrono::system_clock::time_point now) const;
  void begin_shutdown(const char* why);
  void on_signal(int number);
  // SIGHUP: validates the configuration again; refuses it, or begins the handover to a new App.
  void reload_config();
  // Listens on config_.listen, or on the socket handed over by a reload.
  int start_listening();
  // Also listens on http.proxy_socket, when set (for Caddy; see README "Who the client is").
  int listen_on_proxy_socket();
  void on_backend_change(Backend& backend, const std::vector<core::Transition>& transitions,
                         const std::vector<core::Notice>& notices, BackendDriver::Change change);
  int start_events();
  void start_web();
  // Sets a backend's desired state (wake, shelve): kUnknownBackend for a name not configured.
  RequestOutcome request_desired(const std::string& name, bool awake, const std::string& actor,
                                 const std::string& reason);
  void persist();
  // Hands the state store the snapshot of every backend's persisted state (persist() marks it dirty).
  void start_persisting();
  int finish();
  int start_activity();
  int start_routing();
  // The mail notifier, when notification_email is set (events/mail_notifier.h).
  void start_notifications();
  std::unique_ptr<providers::CloudProvider> make_provider(const core::BackendConfig& backend);
  int start_openstack();
  // Keep-warm windows and pre-warming, for the backends that have them (schedule/scheduler.h).
  int start_keep_warm();
  void update_routing();
  std::string listen_address() const;
  // With ha: the coordinator, which leads or follows each backend instead of starting it here.
  void start_ha();
  // systemd (uv/systemd_notify.h, config/unshelver.service): the watchdog, and READY=1 once the
  // server listens and every backend has been observed once, the condition update_routing() also
  // waits for. Called at the end of start() and after each backend change.
  void notify_systemd_when_observed();
  // A wish that another controller's leader carries out: kNothingToDo when the leader's view
  // already has it.
  RequestOutcome pass_wish(std::size_t index, core::ha::Wish wish);
  std::size_t index_of(const Backend& backend) const {
    return static_cast<std::size_t>(&backend - backends_.data());
  }
  // The index of the backend named `name`, nullopt for a name that is not configured.
  std::optional<std::size_t> index_named(std::string_view name) const;

  // Revisions. Every change moves the application's revision (revision_: long polls, the control
  // page, the full status document); one that a backend's view may show moves that backend's
  // (Backend::revision) as well, so that the pages and the metrics read that backend's view alone.
  // The subsystems whose callbacks do not say which backend changed.
  enum Unattributed : unsigned {
    kActivityChanged = 1U << 0U,
    kRoutingChanged = 1U << 1U,
    kGateChanged = 1U << 2U,
    kHaChanged = 1U << 3U,
  };
  // Something backend `index`'s view shows changed (its driver, its event history).
  void backend_changed(std::size_t index);
  // One of the subsystems above reported a change: the backends it concerns are found by
  // attribute_changes() before the next reading, so that a burst of changes (an access-log line
  // each) costs nothing more than moving the revision.
  void subsystem_changed(Unattributed which);
  // Moves the revision of every backend whose SubsystemInputs changed since the last look, after a
  // subsystem_changed(); nothing otherwise.
  void attribute_changes() const;
  // Reads into `inputs` what backend `index`'s view reads now from the subsystems of `which`.
  void read_inputs(std::size_t index, unsigned which, SubsystemInputs& inputs) const;
  // The gate's figures for a gated backend (nullopt for another), and who may act on it (ha).
  std::optional<web::GateView> gate_view(std::size_t index) const;
  web::Coordination coordination_of(std::size_t index) const;

  core::Config config_;
  io::Loop loop_;
  std::optional<io::StateStore> store_;
  std::optional<web::Pages> pages_;
  std::unique_ptr<io::HttpClient> client_;
  std::unique_ptr<providers::OpenStackSession> openstack_;      // shared by every OpenStack backend
  std::unique_ptr<providers::NovaServerListing> nova_listing_;  // on openstack_, for settled observations
  // By API URL (one zone, the same credentials): for the Exoscale backends' settled observations.
  std::map<std::string, std::unique_ptr<providers::ExoscaleInstanceListing>> exoscale_listings_;
  std::shared_ptr<io::TickTimers> ticks_;       // the drivers' tick timers, on one libuv timer
  std::shared_ptr<providers::SimApi> sim_api_;  // the simulated VMs' one API (its latency timer)
  std::unique_ptr<EventRecorder> events_;       // after openstack_: its mirror uses the session
  std::unique_ptr<web::EventStreams> streams_;  // fed by events_
  std::vector<Backend> backends_;               // one per configured backend, in configuration order
  std::unique_ptr<web::AccessControl> access_;
  std::unique_ptr<web::WebApp> web_;
  std::unique_ptr<web::HoldQueue> holds_;  // the gate's held requests (routing: gate)
  std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();

  std::unique_ptr<activity::ActivityMonitor> activity_;
  std::unique_ptr<CaddyRouter> router_;           // when caddy.manage is on
  std::unique_ptr<KeepWarmScheduler> keep_warm_;  // when a backend has windows or pre-warming
  std::unique_ptr<MailNotifier> notifier_;        // when notification_email is set
  std::unique_ptr<ha::Coordinator> ha_;           // when ha.etcd is set
  std::unique_ptr<RecordedFence> fence_;          // ha_, then the events on disk: every driver's fence
  std::unique_ptr<io::HttpServer> server_;
  std::vector<std::unique_ptr<io::Signal>> signals_;
  std::unique_ptr<io::SystemdNotifier> systemd_;  // after start() has succeeded
  std::size_t first_unobserved_ = 0;              // backends before it have left kUnknown
  ConfigSource reread_;
  std::optional<Handover> handed_over_;  // from the previous App, when this one follows a reload
  std::optional<Reload> reload_;         // for the next App, once a reload has begun
  std::string session_key_;              // the generated signing key, kept across reloads
  std::uint64_t reloads_applied_ = 0;
  std::uint64_t reloads_refused_ = 0;
  std::uint64_t revision_ = 1;
  std::unordered_map<std::string, std::size_t> index_by_name_;
  mutable unsigned unattributed_ = 0;  // Unattributed bits since the last attribute_changes()
  // Each backend's part of /metrics, kept between scrapes while its view and transitions stay
  // (metrics.cc), and each backend's revision when its view was last read for it.
  struct CachedMetrics {
    web::BackendView view;
    std::uint64_t transitions = 0;
    std::shared_ptr<const core::MetricsPage> page;
  };
  mutable std::vector<CachedMetrics> metrics_cache_;
  // The backends' pages merged by groups of consecutive backends (core::MetricsPage::merge), a
  // group again only when one of its pages was written again: a scrape sends each family as one
  // slice per group instead of one per backend, and a change copies its group's text (a few tens
  // of kilobytes) rather than the whole page's (1.4 MB at 1,000 backends).
  mutable std::vector<std::shared_ptr<const core::MetricsPage>> metrics_merged_;
  mutable std::vector<std::uint64_t> metrics_seen_;
  bool shutting_down_ = false;
  int exit_code_ = 0;
};

}  // namespace unshelver::app
