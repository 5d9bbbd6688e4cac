// CaddyRouter: keeps Caddy's routing in line with the backends' states, through the admin API.
//
// update() is called after every state change with the render input built from the current
// states. The router renders (core/caddy_renderer), and only when the text differs from what was
// last loaded successfully (Caddy closes idle keep-alive connections on every reload;
// caddy-facts §5d) it writes the file atomically (so a Caddy restart comes up in the current
// mode) and sends `POST /load` with `Content-Type: text/caddyfile` (§5a). One load at a time; a
// newer update while one is in flight is loaded right after it.
//
// Failures keep the old config live in Caddy (§5e): a 400 carries Caddy's error message, which is
// logged, reported through on_event, kept for /api/status, and retried with exponential back-off
// (up to retry_max). An unreachable admin API is treated the same, with a message that explains
// `admin off` (§5f). A render error (a broken template) is reported the same way and nothing is
// sent to Caddy.
//
// Drift repair: every drift_check_interval (and after each successful load) the router compares
// Caddy's running config (`GET /config/`) with the adapted form of its own text (`POST /adapt`,
// cached per text); when they differ, someone loaded something else, and the router loads its
// own text again (with `Cache-Control: must-revalidate`, which forces the reload).
//
// caddy.admin may be a Unix socket (config/caddy_admin.h): requests then go through it, with the
// empty Host header Caddy requires there. A text whose `admin` option would move the admin API
// elsewhere (`admin off`; with a socket, any other address or none) is never sent: it is reported
// like a rejected load.
//
// Snippet integration: the rendered text is written to the snippet file, and what is POSTed is
// the user's Caddyfile (read from disk each time), which imports the snippet by absolute path.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "backend/reconciler.h"
#include "base/prometheus.h"
#include "base/template.h"
#include "caddy/renderer.h"
#include "config/config.h"
#include "uv/http_client.h"
#include "uv/timer.h"

namespace unshelver::app {

struct CaddyRouterStatus {
  std::string admin;                         // the admin API's URL
  std::string integration;                   // "full" | "snippet"
  std::string loaded_modes;                  // describe_modes() of what Caddy runs, "" before the first load
  std::optional<core::TimePoint> loaded_at;  // when that was loaded
  std::string pending_modes;                 // what the router wants loaded, if different
  std::string last_error;                    // "" when the last attempt succeeded
  std::optional<core::TimePoint> last_error_at;
  std::optional<core::TimePoint> next_retry_at;
  std::uint64_t loads_ok = 0;
  std::uint64_t loads_failed = 0;
  std::uint64_t drift_repairs = 0;
  // Per backend name: "backend" (proxied to the VM) or "unshelver" (fallback), as loaded.
  std::map<std::string, std::string> modes;
};

class CaddyRouter {
 public:
  // kind: "caddy_loaded", "caddy_load_failed", "caddy_drift_repaired"; detail: human text.
  using EventCallback = std::function<void(const std::string& kind, const std::string& detail)>;

  CaddyRouter(uv_loop_t* loop, io::HttpClient& client, const core::CaddySettings& settings,
              core::Template caddy_template, EventCallback on_event);
  ~CaddyRouter();
  CaddyRouter(const CaddyRouter&) = delete;
  CaddyRouter& operator=(const CaddyRouter&) = delete;

  // Renders and, when changed, writes and loads. Cheap when nothing changed.
  void update(const core::CaddyRenderInput& input);
  // What update() is given, read when it is due; nullopt while there is nothing to load yet.
  using InputSource = std::function<std::optional<core::CaddyRenderInput>()>;
  // update() with what `source` gives, once, at the start of the next loop turn (a zero timer):
  // however many backends change in one turn (1,000 first observations at start-up), the routes
  // are built and rendered once. A later call replaces the source of one still due.
  void update_soon(InputSource source);
  // Loads (and drift repairs) wait while `busy()` is true, except the first load: meant for
  // requests held at the gate, which a reload would make fail once released (Caddy 2.6.2 cancels
  // the old config's handlers). Call poke() when `busy()` may have turned false. `first_load_too`:
  // Caddy already routes to this gate before the first load (Unshelver reloaded its configuration
  // in the same process), so the first load waits as well.
  void hold_loads_while(std::function<bool()> busy, bool first_load_too = false);
  void poke();
  // Starts the drift timer. The first update() should come only after every backend has been
  // observed, so that the first load reflects the truth (observe before acting).
  void start();
  void close();

  const CaddyRouterStatus& status() const;
  // Sets the status document's "caddy"; adds the loads' metrics.
  void write_status(nlohmann::json& document) const;
  void write_metrics(core::MetricsPage& page) const;
  // The text that would be loaded for `input` (for `unshelver render-caddy`).
  Result<std::string> render(const core::CaddyRenderInput& input) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace unshelver::app
