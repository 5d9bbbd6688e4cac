// Backend: everything the daemon keeps for one configured backend, in one place.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "backend/driver.h"
#include "backend/operation_stats.h"
#include "web/controller.h"

namespace unshelver::app {

// What a backend's view reads from the subsystems whose change callbacks do not say which backend
// changed: the activity monitor (the reconciler's last activity and requests in flight, the
// access-log counts, the gate's requests in flight), Caddy's router (the route as loaded), the
// gate's queue and ha (who leads). After such a change, App::attribute_changes compares it for
// every backend, a few loads each, so that only the backends whose inputs moved get a new revision.
struct SubsystemInputs {
  std::optional<core::MonoTime> last_activity;
  int requests_in_flight = 0;
  std::optional<std::uint64_t> activity_lines;
  std::optional<std::uint64_t> ignored_lines;
  std::optional<std::string> routing;
  std::optional<web::GateView> gate;
  web::Coordination coordination = web::Coordination::kActing;

  bool operator==(const SubsystemInputs&) const = default;
};

struct Backend {
  std::unique_ptr<BackendDriver> driver;
  core::OperationStats operations;                // wakes and shelves, for /metrics
  std::uint64_t transitions = 0;                  // observed into `operations` so far
  std::optional<core::InflightTracker> inflight;  // requests in flight through Caddy (from start-up)
  std::string monitored_upstream;                 // what the connection monitor watches, "" for nothing
  // The application's revision (App::revision) when something the backend's view shows last
  // changed, or may have: what readers that keep views between changes compare
  // (web::Controller::changed_page_views). Moved by App::attribute_changes, which the const
  // readers call first, hence mutable, like `inputs`, its last look at the subsystems.
  mutable std::uint64_t revision = 1;
  mutable SubsystemInputs inputs;

  const core::BackendConfig& config() const { return driver->config(); }
};

}  // namespace unshelver::app
