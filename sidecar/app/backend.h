// Backend: everything the daemon keeps for one configured backend, in one place.
#pragma once

#include <cstdint>
#include <memory>

#include "backend/driver.h"
#include "backend/operation_stats.h"

namespace unshelver::app {

struct Backend {
  std::unique_ptr<BackendDriver> driver;
  core::OperationStats operations;                // wakes and shelves, for /metrics
  std::uint64_t transitions = 0;                  // observed into `operations` so far
  std::optional<core::InflightTracker> inflight;  // requests in flight through Caddy (from start-up)
  std::string monitored_upstream;                 // what the connection monitor watches, "" for nothing

  const core::BackendConfig& config() const { return driver->config(); }
};

}  // namespace unshelver::app
