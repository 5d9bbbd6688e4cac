// WebApp: the routes of Unshelver's own HTTP server.
//
//   GET  /               launcher page: every backend, its state, a wake button (a plain form)
//   GET  /api/status     JSON: per backend its state, since, last activity, idle deadline, url;
//                        the full document (cloud, routing, events, OpenStack) for admins and
//                        local clients
//   GET  /healthz        the sidecar's own liveness
//   GET  /static/NAME    the pages' scripts and styles
//   POST /wake/NAME      wake a backend (and the Python unshelver's POST /action/ID): needs the
//                        page's anti-forgery token; rate limited per client, with a global
//                        cool-down between wakes that start a sleeping backend; bots refused
//   GET  /control        the admin page (control token: session cookie or bearer)
//   GET|POST /control/login, POST /control/logout
//   POST /control/wake/NAME, /control/shelve/NAME (and the Python unshelver's
//                        POST /admin-unshelve/ID and POST {manual_shelve_path})
//   GET  /api/events     the recorded events (?after=SEQ&backend=NAME&limit=N&wait=SECONDS, the
//                        last one a long poll); admins only
//   GET  /api/events/stream
//                        the same as Server-Sent Events, live, resuming after Last-Event-ID;
//                        admins only (web/event_stream.h)
//   GET  /metrics        Prometheus text format; local clients and admins
//   GET  /.unshelver/gate/NAME
//                        the gate: Caddy's forward_auth sub-request for every request to a gated
//                        backend's host (gate_routes.cc)
//
// With the switch routing, requests whose Host is a backend's host reached Unshelver through
// Caddy's fallback while that backend is not ready. Browsers get the waiting page (it offers the wake button
// and moves on by itself once the backend is ready); API clients get 503 with Retry-After and a JSON body,
// and wake the backend when it is configured with wake_on_request. The waiting page's own requests use the
// reserved prefix /.well-known/unshelver/ so that they never collide with the backend's paths.
//
// The web layer builds no state of its own: it asks the Controller. The launcher and the public
// status document are cached per backend (web/page_cache.h): a request renders nothing, and a
// state change re-renders the backend that changed, once, when a page is next asked for.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/prometheus.h"
#include "uv/http_server.h"
#include "web/access.h"
#include "web/controller.h"
#include "web/hold_queue.h"
#include "web/page_cache.h"
#include "web/pages.h"

namespace unshelver::web {

class WebApp {
 public:
  WebApp(const Pages& pages, Controller& controller, AccessControl& access, std::string manual_shelve_path);
  void handle(const io::HttpRequest& request, const io::Responder& responder);
  // Turns on the gate (gate_routes.cc) for the backends with `routing: gate`; `holds` and
  // `backends` outlive this WebApp.
  void enable_gate(HoldQueue& holds, const std::vector<core::BackendConfig>& backends);
  // Releases (or fails) the requests held for the backend `name` once it became ready (or failed).
  // Call after every change of that backend.
  void backend_changed(const std::string& name);
  // The answer to a hold of `name` that expired (for the HoldQueue).
  io::HttpResponse gate_expired(const std::string& name);
  // Wakes the backends whose held requests met the wake cool-down, once it allows (the
  // HoldQueue's tick).
  void retry_deferred_wakes();
  // The answer to every route but /api/events (whose long poll answers later), as handle()
  // sends it; no socket needed.
  io::HttpResponse answer(const io::HttpRequest& request);

 private:
  using Caller = AccessControl::Caller;

  // Who asks: nobody for a backend's own traffic (`backend` set), else the session or bearer.
  Caller identify(const io::HttpRequest& request, const std::string& backend);
  io::HttpResponse answer(const io::HttpRequest& request, const std::string& backend);

  io::HttpResponse route(const io::HttpRequest& request, const Caller& caller);
  io::HttpResponse launcher(const io::HttpRequest& request);
  io::HttpResponse status_json(const io::HttpRequest& request, const Caller& caller);
  io::HttpResponse public_wake(const io::HttpRequest& request, const std::string& name, bool waiting_page);
  io::HttpResponse not_found(const io::HttpRequest& request);
  // The page a browser gets for a refused wake: what happened and, for a wait (the cool-down or the
  // rate limit), a countdown after which it tries again by itself (or, without JavaScript, goes
  // back to `back`, where the button is).
  io::HttpResponse refusal_page(const io::HttpRequest& request, const std::string& name, int status,
                                const std::string& message, const std::string& back,
                                std::chrono::milliseconds retry_after);
  io::HttpResponse backend_host(const io::HttpRequest& request, const std::string& name,
                                const Caller& caller);
  io::HttpResponse asset(const std::string& name);
  io::HttpResponse waiting_page(const io::HttpRequest& request, const std::string& name);

  // The one policy for every wake a visitor or a program asks for: the button, the waiting page,
  // a request at the gate or at the switch's fallback. Per client, a token bucket; across all
  // clients, a cool-down before a sleeping backend is started. (Bots are refused before this,
  // and the button also needs its form token.)
  struct WakeCheck {
    bool allowed = true;
    int status = 200;     // for a refusal: 429
    std::string result;   // for /metrics: "rate_limited", "cooldown"
    std::string message;  // for a refusal, for the client
    std::chrono::milliseconds wait{0};
  };
  WakeCheck check_wake(const io::HttpRequest& request, core::BackendState state);

  // The gate (gate_routes.cc).
  void gate(const io::HttpRequest& gate_request, const std::string& name, const io::Responder& responder);
  io::HttpResponse gate_pass(const BackendView& view, bool counts_as_activity);
  io::HttpResponse gate_refusal(const BackendView& view, int status, const std::string& error,
                                std::chrono::seconds retry_after, bool should_retry);
  void add_gate_metrics(core::MetricsPage& page) const;
  void events(const io::HttpRequest& request, const Caller& caller, const io::Responder& responder);
  // GET /api/events/stream (event_stream_routes.cc).
  void event_stream(const io::HttpRequest& request, const Caller& caller, const io::Responder& responder);
  // Brings the page cache to the controller's revision (the views of the backends whose revision
  // moved, and the pieces of those that changed).
  void refresh_cache();
  // The control page's data, written again when the revision moved.
  const nlohmann::json& control_data();
  // The backend's view, read now for that backend alone (nullopt for a name that is not
  // configured); web::page_entry_of writes its page data from it.
  std::optional<BackendView> backend_view(const std::string& name);

  // The control surface (control_routes.cc).
  io::HttpResponse control_page(const io::HttpRequest& request, const Caller& caller);
  io::HttpResponse login_page(const io::HttpRequest& request, int status, const std::string& error);
  io::HttpResponse login(const io::HttpRequest& request);
  io::HttpResponse logout(const io::HttpRequest& request, const Caller& caller);
  io::HttpResponse control_action(const io::HttpRequest& request, const Caller& caller, bool wake,
                                  const std::string& name, const std::string& actor);
  // Pins a backend awake (and wakes it) or lifts the pin (README "Keep-warm windows").
  io::HttpResponse control_pin(const io::HttpRequest& request, const Caller& caller, bool pinned,
                               const std::string& name);
  io::HttpResponse manual_shelve(const io::HttpRequest& request, const Caller& caller);
  io::HttpResponse metrics(const io::HttpRequest& request, const Caller& caller);
  // The answer to a request for an admin route without a valid session or token: a redirect to
  // the login form for browsers, 401 (or 429, or 403 when no token is configured) for scripts.
  io::HttpResponse unauthorized(const io::HttpRequest& request, const Caller& caller);
  void add_http_metrics(core::MetricsPage& page) const;

  const Pages& pages_;
  Controller& controller_;
  AccessControl& access_;
  std::string manual_shelve_path_;
  // The public status document, the launcher (with kFormTokenMarker where each visitor's token
  // goes) and each backend's view and page entry, per backend (web/page_cache.h).
  std::optional<PageCache> page_cache_;
  // The control page's data: the full status document with what the pages show, for admins.
  std::uint64_t control_revision_ = UINT64_MAX;
  nlohmann::json control_data_;

  // Requests by route label and status, and public wake requests by outcome, for /metrics.
  std::string_view route_label_ = "not_found";
  std::map<std::pair<std::string_view, int>, std::uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> wake_requests_;  // (route, result)

  // The gate: the backends it guards, their held requests, and its answers by (backend, verdict).
  HoldQueue* holds_ = nullptr;
  std::map<std::string, const core::BackendConfig*> gated_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> gate_requests_;
  std::map<std::string, std::string> deferred_wakes_;  // backend -> the reason of its first request
};

// Whether a `next` target may be redirected to: a path on this host, nothing that leaves it.
bool is_local_path(std::string_view target);

// The Host header, or "" without one.
std::string_view host_header(const io::HttpRequest& request);

// What the public may see of the status document: no cloud messages, addresses, upstreams or
// who asked for what (those can hold client addresses); the state, its times and the url.
nlohmann::json public_status(const nlohmann::json& status);
// The same for one backend's entry: public_backend (web/page_cache.h).
// Adds the page fields (web/page_model.h) to each backend of a status document; `views` in the
// document's order.
void add_all_page_fields(const std::vector<BackendView>& views, nlohmann::json& status);

// Sets Retry-After to `wait`, in whole seconds.
void set_retry_after(io::HttpResponse& response, std::chrono::milliseconds wait);

// True when the client prefers HTML (a browser), judged from its Accept header.
bool wants_html(const io::HttpRequest& request);

// The security headers every answer of Unshelver's own gets (CSP, no framing, no sniffing).
void add_security_headers(io::HttpResponse& response);

}  // namespace unshelver::web
