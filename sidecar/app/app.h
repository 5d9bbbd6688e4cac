// App: the one place where the pieces are wired together on one libuv loop.
//
// Start-up: open the state store, compile the pages, create each backend's provider and driver,
// the event recorder, the web routes, listen, the signals, the activity monitor, Caddy's routing,
// then start the drivers. Run: the loop. Shutdown (SIGINT/SIGTERM): stop every driver (timers,
// probes, pending cloud calls) and subsystem, release the HTTP client, let the server finish
// requests in flight, close the signal handles; when the loop has run dry, destroy what remains
// and close the loop (io::Loop: drained, and uv_loop_close must return 0).
//
// App is also the web layer's Controller (controller.cc): each backend's BackendView (status.cc)
// and the status document and metrics (metrics.cc) that each subsystem writes its part of.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "activity/monitor.h"
#include "app/backend.h"
#include "backend/driver.h"
#include "backend/state_store.h"
#include "caddy/router.h"
#include "config/config.h"
#include "events/recorder.h"
#include "openstack/session.h"
#include "uv/http_client.h"
#include "uv/http_server.h"
#include "uv/loop.h"
#include "uv/signal.h"
#include "web/hold_queue.h"
#include "web/pages.h"
#include "web/routes.h"

namespace unshelver::app {

class App final : public web::Controller {
 public:
  explicit App(core::Config config);
  ~App() override;

  // Runs until a signal asks to stop. Returns the process exit code: 0 after a clean shutdown,
  // 1 for a run-time failure, 2 for a start-up problem with the configuration or environment.
  int run();

  // web::Controller (controller.cc)
  std::uint64_t revision() const override { return revision_; }
  std::vector<web::BackendView> backends() const override;
  nlohmann::json status() const override;
  RequestOutcome wake(const std::string& name, const std::string& actor, const std::string& reason) override;
  RequestOutcome shelve(const std::string& name, const std::string& actor,
                        const std::string& reason) override;
  void record_event(const std::string& action, const std::string& actor, const std::string& detail) override;
  std::string ignore_reason(const io::HttpRequest& request) const override;
  void metrics(core::MetricsPage& page) const override;  // metrics.cc
  std::string backend_for_host(std::string_view host) const override;
  void request_started(const std::string& name, bool counts_as_activity) override;
  nlohmann::json events(std::optional<std::uint64_t> after, const std::string& backend,
                        std::size_t limit) const override;
  void wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout,
                       std::function<void()> then) override;

 private:
  int start();
  void begin_shutdown(const char* why);
  void on_backend_change(Backend& backend, const std::vector<core::Transition>& transitions, bool persist);
  int start_events();
  void start_web();
  // Sets a backend's desired state (wake, shelve): kUnknownBackend for a name not configured.
  RequestOutcome request_desired(const std::string& name, bool awake, const std::string& actor,
                                 const std::string& reason);
  void persist();
  int finish();
  int start_activity();
  int start_routing();
  int start_openstack();
  void update_routing();
  std::string listen_address() const;

  core::Config config_;
  io::Loop loop_;
  std::optional<io::StateStore> store_;
  std::optional<web::Pages> pages_;
  std::unique_ptr<io::HttpClient> client_;
  std::unique_ptr<providers::OpenStackSession> openstack_;  // shared by every OpenStack backend
  std::unique_ptr<EventRecorder> events_;                   // after openstack_: its mirror uses the session
  std::vector<Backend> backends_;  // one per configured backend, in configuration order
  std::unique_ptr<web::AccessControl> access_;
  std::unique_ptr<web::WebApp> web_;
  std::unique_ptr<web::HoldQueue> holds_;  // the gate's held requests (routing: gate)
  std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();

  std::unique_ptr<activity::ActivityMonitor> activity_;
  std::unique_ptr<CaddyRouter> router_;  // when caddy.manage is on
  std::unique_ptr<io::HttpServer> server_;
  std::vector<std::unique_ptr<io::Signal>> signals_;
  std::uint64_t revision_ = 1;
  bool shutting_down_ = false;
  int exit_code_ = 0;
};

}  // namespace unshelver::app
