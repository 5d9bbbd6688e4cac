// WebApp: the routes of Unshelver's own HTTP server.
//
//   GET  /               launcher page: every backend, its state, a wake button (a plain form)
//   GET  /api/status     JSON: per backend its state, since, desired, last activity, idle deadline
//   GET  /healthz        the sidecar's own liveness
//   GET  /static/NAME    the pages' scripts and styles
//   POST /wake/NAME      wake a backend (and the Python unshelver's POST /action/ID)
//   GET  /api/events     the recorded events (?after=SEQ&backend=NAME&limit=N&wait=SECONDS, the
//                        last one a long poll); only for local clients until the control token
//                        guards it
//
// Requests whose Host is a backend's host reached Unshelver through Caddy's fallback while that
// backend is not ready. Browsers get the waiting page (it offers the wake button and moves on by
// itself once the backend is ready); API clients get 503 with Retry-After and a JSON body, and
// wake the backend when it is configured with wake_on_request. The waiting page's own requests
// use the reserved prefix /.well-known/unshelver/ so that they never collide with the backend's
// paths.
//
// The web layer builds no state of its own: it asks the Controller. Rendered pages and the
// status document are cached per revision of the application's state, so a busy launcher costs
// one render per state change, not one per request.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "io/http_server.h"
#include "web/pages.h"

namespace unshelver::web {

class Controller {
 public:
  enum class WakeOutcome { kAccepted, kAlreadyAwake, kUnknownBackend };

  virtual ~Controller() = default;
  // Changes whenever anything in status() changes.
  virtual std::uint64_t revision() const = 0;
  // The /api/status document: {"revision", "title", "backends": [...]}.
  virtual nlohmann::json status() const = 0;
  virtual WakeOutcome wake(const std::string& name, const std::string& actor, const std::string& reason) = 0;
  // The backend whose host a request's Host header names (with or without a port, any case),
  // or "" for any other host.
  virtual std::string backend_for_host(std::string_view host) const = 0;
  // An API client's request reached a sleeping backend's host. Wakes the backend when it is
  // configured with wake_on_request and the request matches no ignore rule; true when it did.
  virtual bool wake_on_request(const std::string& name, const io::HttpRequest& request) = 0;
  // {"events": [...], "last_seq": N}, oldest first: without `after` the newest `limit` events,
  // with it the first `limit` events after that seq. Only events already written and fsync'd.
  virtual nlohmann::json events(std::optional<std::uint64_t> after, const std::string& backend,
                                std::size_t limit) const = 0;
  // Calls `then` (never inside this call) once an event with seq > after is recorded, or after
  // `timeout`.
  virtual void wait_for_events(std::uint64_t after, std::chrono::milliseconds timeout,
                               std::function<void()> then) = 0;
};

class WebApp {
 public:
  WebApp(const Pages& pages, Controller& controller);
  void handle(const io::HttpRequest& request, io::Responder responder);

 private:
  io::HttpResponse route(const io::HttpRequest& request);
  io::HttpResponse launcher();
  io::HttpResponse status_json();
  io::HttpResponse wake(const io::HttpRequest& request, const std::string& name);
  io::HttpResponse not_found(const io::HttpRequest& request);
  io::HttpResponse backend_host(const io::HttpRequest& request, const std::string& name);
  io::HttpResponse asset(const std::string& name);
  void events(const io::HttpRequest& request, io::Responder responder);
  void refresh_cache();

  const Pages& pages_;
  Controller& controller_;
  std::uint64_t cached_revision_ = UINT64_MAX;
  std::string cached_status_;
  std::string cached_launcher_;
  nlohmann::json cached_page_data_;  // the status document with what the pages show
};

// True when the client prefers HTML (a browser), judged from its Accept header.
bool wants_html(const io::HttpRequest& request);

}  // namespace unshelver::web
