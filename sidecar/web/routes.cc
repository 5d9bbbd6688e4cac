#include "web/routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/text.h"
#include "web/page_model.h"

namespace unshelver::web {

// Every page gets these (OWASP secure headers): no framing, no inline script, no sniffing.
void add_security_headers(io::HttpResponse& response) {
  response.set_header("Content-Security-Policy",
                      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                      "frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
  response.set_header("X-Frame-Options", "DENY");
  response.set_header("X-Content-Type-Options", "nosniff");
  response.set_header("Referrer-Policy", "same-origin");
}

namespace {
using nlohmann::json;

// Percent-decoding is not needed: backend names are validated to [A-Za-z0-9._-] by the config.
std::string name_after(const std::string& path, std::string_view prefix) {
  std::string name = path.substr(prefix.size());
  if (name.empty() || name.find('/') != std::string::npos) return "";
  return name;
}

constexpr std::string_view kReservedPrefix = "/.well-known/unshelver/";
// The launcher is rendered once per state change with this in place of the form token; each
// response gets its visitor's own token instead. It holds no character that HTML-escaping changes.
constexpr std::string_view kFormTokenMarker = "UNSHELVER-FORM-TOKEN-7f3a9c";
constexpr std::string_view kWakePurpose = "wake";

// Caddy's forward_auth asks here about every request to a gated backend's host (the gate's `uri`
// in caddy/Caddyfile.template). Outside the reserved prefix, which Caddy routes straight to
// Unshelver on the backend's host: the gate must only be reached through the gate.
constexpr std::string_view kGatePrefix = "/.unshelver/gate/";

}  // namespace

std::string_view host_header(const io::HttpRequest& request) {
  const std::string* host = request.header("Host");
  return host == nullptr ? std::string_view() : std::string_view(*host);
}

void set_retry_after(io::HttpResponse& response, std::chrono::milliseconds wait) {
  // RFC 9110 §10.2.3: whole seconds; rounded up, so that a client that obeys is not refused again.
  response.set_header("Retry-After", std::to_string(std::chrono::ceil<std::chrono::seconds>(wait).count()));
}

bool wants_html(const io::HttpRequest& request) {
  const std::string* accept = request.header("Accept");
  return accept != nullptr && accept->find("text/html") != std::string::npos;
}

WebApp::WebApp(const Pages& pages, Controller& controller, AccessControl& access,
               std::string manual_shelve_path)
    : pages_(pages),
      controller_(controller),
      access_(access),
      manual_shelve_path_(std::move(manual_shelve_path)) {}

void WebApp::handle(const io::HttpRequest& request, const io::Responder& responder) {
  if (request.path.starts_with(kGatePrefix) && (request.method == "GET" || request.method == "HEAD")) {
    gate(request, name_after(request.path, kGatePrefix), responder);
    return;
  }
  const std::string backend = controller_.backend_for_host(host_header(request));
  if (request.path == "/api/events" && backend.empty()) {
    route_label_ = "events";
    events(request, identify(request, backend), responder);
    return;
  }
  if (request.path == "/api/events/stream" && backend.empty()) {
    route_label_ = "events_stream";
    event_stream(request, identify(request, backend), responder);
    return;
  }
  responder.respond(answer(request, backend));
}

io::HttpResponse WebApp::answer(const io::HttpRequest& request) {
  return answer(request, controller_.backend_for_host(host_header(request)));
}

WebApp::Caller WebApp::identify(const io::HttpRequest& request, const std::string& backend) {
  // A request for a sleeping backend's host is the backend's own traffic: its Authorization
  // header belongs to the backend's API (an LLM API key, say) and is none of Unshelver's business.
  Caller caller = !backend.empty() ? Caller{}
                                   : access_.identify(request, std::chrono::system_clock::now(),
                                                      std::chrono::steady_clock::now());
  if (caller.bad_bearer && !caller.bearer_rate_limited) {
    controller_.record_event("login_failed", "control",
                             "wrong bearer token from " + access_.client_address(request) + " for " +
                                 request.method + " " + request.path);
  }
  return caller;
}

io::HttpResponse WebApp::answer(const io::HttpRequest& request, const std::string& backend) {
  const Caller caller = identify(request, backend);
  route_label_ = "not_found";
  io::HttpResponse response;
  if (!backend.empty()) {
    response = backend_host(request, backend, caller);
  } else if (caller.bad_bearer) {
    // A wrong bearer token is refused wherever it is sent, so that a script learns at once that
    // its token is wrong instead of getting the public view.
    route_label_ = "unauthorized";
    response = unauthorized(request, caller);
  } else {
    response = route(request, caller);
  }
  add_security_headers(response);
  ++requests_[{route_label_, response.status}];
  return response;
}

io::HttpResponse WebApp::route(const io::HttpRequest& request, const Caller& caller) {
  const std::string& path = request.path;
  const bool read = request.method == "GET" || request.method == "HEAD";
  auto method_not_allowed = [](const char* allow) {
    return io::HttpResponse::text(405, "Method Not Allowed\n").set_header("Allow", allow);
  };

  // The Python unshelver took the token from the query string, where Caddy's access log and
  // browser histories keep it. Refuse it loudly rather than ignore it, so the script gets fixed.
  if (core::query_parameter(request.query, "token") ||
      core::query_parameter(request.query, "control_token")) {
    route_label_ = "token_in_url";
    return io::HttpResponse::json(400,
                                  "{\"error\":\"the control token is never accepted in a URL (it would be "
                                  "logged); send it as Authorization: Bearer, or log in at /control\"}\n");
  }

  if (path == "/healthz") {
    route_label_ = "healthz";
    if (!read) return method_not_allowed("GET, HEAD");
    return io::HttpResponse::text(200, "ok\n").set_header("Cache-Control", "no-store");
  }
  if (path == "/" || path == "/index.html") {
    route_label_ = "launcher";
    if (!read) return method_not_allowed("GET, HEAD");
    return launcher(request);
  }
  if (path == "/api/status") {
    route_label_ = "status";
    if (!read) return method_not_allowed("GET, HEAD");
    return status_json(request, caller);
  }
  if (path == "/metrics") {
    route_label_ = "metrics";
    if (!read) return method_not_allowed("GET, HEAD");
    return metrics(request, caller);
  }
  for (std::string_view prefix : {std::string_view("/wake/"), std::string_view("/action/")}) {
    if (path.starts_with(prefix)) {
      route_label_ = "wake";
      std::string name = name_after(path, prefix);
      if (name.empty()) return not_found(request);
      if (request.method != "POST") {
        return io::HttpResponse::text(405, "Use POST to wake a backend.\n").set_header("Allow", "POST");
      }
      // An admin's script may use the public route with its token.
      if (caller.admin()) return control_action(request, caller, true, name, "control");
      return public_wake(request, name, false);
    }
  }
  if (path == "/control" || path == "/control/") {
    route_label_ = "control";
    if (!read) return method_not_allowed("GET, HEAD");
    return control_page(request, caller);
  }
  if (path == "/control/login") {
    route_label_ = "login";
    if (read) return login_page(request, 200, "");
    if (request.method != "POST") return method_not_allowed("GET, HEAD, POST");
    return login(request);
  }
  if (path == "/control/logout") {
    route_label_ = "logout";
    if (request.method != "POST") return method_not_allowed("POST");
    return logout(request, caller);
  }
  for (auto [prefix, wake] : {std::pair{std::string_view("/control/wake/"), true},
                              std::pair{std::string_view("/control/shelve/"), false},
                              std::pair{std::string_view("/admin-unshelve/"), true}}) {
    if (path.starts_with(prefix)) {
      route_label_ = "control_action";
      std::string name = name_after(path, prefix);
      if (name.empty()) return not_found(request);
      if (request.method != "POST") return method_not_allowed("POST");
      return control_action(request, caller, wake, name, "control");
    }
  }
  for (auto [prefix, pinned] : {std::pair{std::string_view("/control/pin/"), true},
                                std::pair{std::string_view("/control/unpin/"), false}}) {
    if (path.starts_with(prefix)) {
      route_label_ = "control_action";
      std::string name = name_after(path, prefix);
      if (name.empty()) return not_found(request);
      if (request.method != "POST") return method_not_allowed("POST");
      return control_pin(request, caller, pinned, name);
    }
  }
  if (path == manual_shelve_path_) {
    route_label_ = "manual_shelve";
    if (request.method != "POST") return method_not_allowed("POST");
    return manual_shelve(request, caller);
  }
  if (path.starts_with("/static/") && read) {
    route_label_ = "static";
    return asset(name_after(path, "/static/"));
  }
  return not_found(request);
}

void WebApp::events(const io::HttpRequest& request, const Caller& caller, const io::Responder& responder) {
  auto respond = [this, responder](io::HttpResponse response) {
    add_security_headers(response);
    response.set_header("Cache-Control", "no-store");
    ++requests_[{"events", response.status}];
    responder.respond(std::move(response));
  };
  if (request.method != "GET" && request.method != "HEAD") {
    return respond(io::HttpResponse::text(405, "Method Not Allowed\n").set_header("Allow", "GET, HEAD"));
  }
  if (!caller.admin()) return respond(unauthorized(request, caller));
  // Numbers in the query: absent means the default, anything but digits in range is a 400.
  std::string bad;
  auto number = [&](std::string_view name, std::uint64_t fallback, std::uint64_t max) -> std::uint64_t {
    auto text = core::query_parameter(request.query, name);
    if (!text) return fallback;
    std::uint64_t value = 0;
    bool valid = !text->empty() && text->size() <= 19;
    for (char c : *text) valid = valid && c >= '0' && c <= '9';
    if (valid) value = std::stoull(*text);
    if (!valid || value > max)
      bad = std::string(name) + " must be a whole number up to " + std::to_string(max);
    return value;
  };
  const bool paging = core::query_parameter(request.query, "after").has_value();
  const std::uint64_t after = number("after", 0, UINT64_MAX / 2);
  const std::uint64_t limit = number("limit", 100, 1000);
  const std::uint64_t wait_seconds = number("wait", 0, 60);
  const std::string backend = core::query_parameter(request.query, "backend").value_or("");
  if (!bad.empty()) return respond(io::HttpResponse::json(400, json{{"error", bad}}.dump() + "\n"));

  const std::optional<std::uint64_t> from = paging ? std::optional(after) : std::nullopt;
  auto answer = [this, from, backend, limit, respond] {
    respond(io::HttpResponse::json(200, controller_.events(from, backend, limit).dump() + "\n"));
  };
  // Waiting makes sense only for events after a known seq.
  if (wait_seconds == 0 || !paging || !controller_.events(from, backend, 1)["events"].empty())
    return answer();
  // A long poll: the answer comes with the next event, or empty after `wait`. An event of another
  // backend ends the wait too; the client asks again with the same `after`.
  controller_.wait_for_events(after, std::chrono::seconds(wait_seconds), [responder, answer] {
    if (responder.alive()) answer();
  });
}

io::HttpResponse WebApp::asset(const std::string& name) {
  const Asset* found = pages_.asset(name);
  if (found == nullptr) return io::HttpResponse::json(404, "{\"error\":\"not found\"}\n");
  io::HttpResponse response;
  response.body = found->body;
  response.headers.emplace_back("Content-Type", found->content_type);
  response.headers.emplace_back("Cache-Control", "public, max-age=300");
  return response;
}

std::optional<BackendView> WebApp::backend_view(const std::string& name) {
  // One backend's view, read for it alone: a request about one backend (a wake, the gate, its
  // waiting page) costs that backend's work, not the fleet's (the pages' cache compares them all).
  return controller_.page_view(name);
}

io::HttpResponse WebApp::backend_host(const io::HttpRequest& request, const std::string& name,
                                      const Caller& caller) {
  const bool read = request.method == "GET" || request.method == "HEAD";
  const std::optional<BackendView> view = backend_view(name);
  const json backend = view ? page_entry_of(*view) : json::object();
  const core::BackendState state = view ? view->state : core::BackendState::kUnknown;

  if (request.path.starts_with(kReservedPrefix)) {
    const std::string rest = request.path.substr(kReservedPrefix.size());
    if (rest == "status" && read) {
      route_label_ = "waiting_status";
      io::HttpResponse response = io::HttpResponse::json(200, public_backend(backend).dump() + "\n");
      response.set_header("Cache-Control", "no-store");
      return response;
    }
    if (rest.starts_with("static/") && read) {
      route_label_ = "static";
      return asset(rest.substr(7));
    }
    if (rest == "wake") {
      route_label_ = "wake";
      if (request.method != "POST") {
        return io::HttpResponse::text(405, "Use POST to wake a backend.\n").set_header("Allow", "POST");
      }
      if (caller.admin()) return control_action(request, caller, true, name, "control");
      return public_wake(request, name, true);
    }
    return not_found(request);
  }

  if (!(read && wants_html(request))) {
    route_label_ = "backend_api";
    // An API client, or a method whose body Caddy could not have replayed: it cannot wait on a
    // page, so it learns when to come back (RFC 9110 §10.2.3).
    bool woken = false;
    if (view && view->wake_on_request && can_wake(state) && controller_.ignore_reason(request).empty()) {
      if (const WakeCheck check = check_wake(request, state); !check.allowed) {
        ++wake_requests_[{"backend_api", check.result}];
      } else {
        woken = controller_.wake(
                    name, "wake-on-request",
                    request.method + " " + request.path + " from " + access_.client_address(request)) ==
                Controller::RequestOutcome::kAccepted;
        ++wake_requests_[{"backend_api", woken ? "accepted" : "already_awake"}];
      }
    }
    const core::BackendState shown = woken ? core::BackendState::kWaking : state;
    const int retry_after = retry_after_seconds(shown);
    json body = {{"error", "backend not ready"},
                 {"backend", name},
                 {"state", std::string(core::to_string(shown))},
                 {"detail", backend.value("explanation", "")},
                 {"retry_after_seconds", retry_after},
                 {"wake", woken ? json("requested") : json(std::string(kReservedPrefix) + "wake")}};
    io::HttpResponse response = io::HttpResponse::json(503, body.dump() + "\n");
    response.set_header("Retry-After", std::to_string(retry_after));
    response.set_header("Cache-Control", "no-store");
    return response;
  }

  return waiting_page(request, name);
}

io::HttpResponse WebApp::waiting_page(const io::HttpRequest& request, const std::string& name) {
  route_label_ = "waiting_page";
  const std::optional<BackendView> view = backend_view(name);
  json backend = view ? page_entry_of(*view) : json::object();
  const AccessControl::Visitor visitor = access_.visitor(request);
  backend["form_token"] = access_.visitor_form_token(visitor, kWakePurpose);
  // Where the visitor wanted to go: the wake form brings them back there, not to the host's root.
  // (The wake route checks it again: the form's field is the visitor's to change.)
  backend["next"] = is_local_path(request.target) ? request.target : "/";
  // Without JavaScript the page shows the progress as of its own rendering (the meta refresh
  // renders it anew); the script keeps the same text current.
  if (view && view->wake_started_at) {
    const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() -
                                                                          *view->wake_started_at);
    backend["elapsed_text"] = duration_in_words(elapsed);
    const json estimate = backend.value("wake_estimate_seconds", json());
    if (estimate.is_number())
      backend["estimate_text"] = time_left(elapsed, std::chrono::seconds(estimate.get<long long>()));
  }
  const core::Template* page = pages_.page("waiting.html");
  io::HttpResponse response =
      io::HttpResponse::html(200, page != nullptr ? page->render(backend) : "waiting.html is missing\n");
  response.set_header("Cache-Control", "no-store");
  if (!visitor.set_cookie.empty()) response.set_header("Set-Cookie", visitor.set_cookie);
  return response;
}

void add_all_page_fields(const std::vector<BackendView>& views, nlohmann::json& status) {
  json& entries = status["backends"];
  // The status document lists the backends in the same order as backends().
  for (std::size_t i = 0; i < entries.size() && i < views.size(); ++i) add_page_fields(views[i], entries[i]);
}

nlohmann::json public_status(const nlohmann::json& status) {
  json backends = json::array();
  for (const json& backend : status.value("backends", json::array()))
    backends.push_back(public_backend(backend));
  json result = {{"backends", std::move(backends)}};
  for (const char* key : {"revision", "title"}) {
    if (status.contains(key)) result[key] = status[key];
  }
  return result;
}

void WebApp::refresh_cache() {
  if (!page_cache_)
    page_cache_.emplace(pages_.page("launcher.html"), controller_.title(), std::string(kFormTokenMarker));
  page_cache_->update_from(controller_, std::chrono::system_clock::now());
}

const nlohmann::json& WebApp::control_data() {
  const std::uint64_t revision = controller_.revision();
  if (revision == control_revision_) return control_data_;
  // The whole document, history and savings included: written only when an admin asks.
  const std::vector<BackendView> views = controller_.backends();
  control_data_ = controller_.status();
  add_all_page_fields(views, control_data_);
  json& entries = control_data_["backends"];
  for (std::size_t i = 0; i < entries.size() && i < views.size(); ++i)
    entries[i]["wake_action"] = "/wake/" + views[i].name;
  control_revision_ = revision;
  return control_data_;
}

io::HttpResponse WebApp::launcher(const io::HttpRequest& request) {
  refresh_cache();
  // One render per state change; each visitor's own form token is put in per request.
  const AccessControl::Visitor visitor = access_.visitor(request);
  io::HttpResponse response = io::HttpResponse::html(200, "");
  response.shared_body = page_cache_->launcher(access_.visitor_form_token(visitor, kWakePurpose));
  response.set_header("Cache-Control", "no-store");
  if (!visitor.set_cookie.empty()) response.set_header("Set-Cookie", visitor.set_cookie);
  return response;
}

io::HttpResponse WebApp::status_json(const io::HttpRequest& request, const Caller& caller) {
  const bool full = caller.admin() || AccessControl::is_local(request);
  // The full document is written afresh: its counters (access-log lines, cloud requests, events)
  // move without a revision, which marks only what the pages show, and must agree with /metrics.
  // The public one holds nothing but what a revision marks, so it comes from the cache.
  io::HttpResponse response = io::HttpResponse::json(200, "");
  if (full) {
    // The pages read the same fields (state_label, steps, ...) from both documents.
    json status = controller_.status();
    add_all_page_fields(controller_.backends(), status);
    response.body = status.dump(2) + "\n";
  } else {
    refresh_cache();
    response.shared_body = page_cache_->public_status();
  }
  response.set_header("Cache-Control", "no-store");
  // The answer depends on who asks.
  response.set_header("Vary", "Authorization, Cookie");
  return response;
}

io::HttpResponse WebApp::public_wake(const io::HttpRequest& request, const std::string& name,
                                     bool waiting_page) {
  const std::string route = waiting_page ? "waiting_page" : "launcher";
  // Where the browser goes back to: the launcher, or on a backend's host the address the visitor
  // had asked for (its waiting page), when it stays on this host.
  std::string back = "/";
  if (waiting_page) {
    if (auto next = AccessControl::form_field(request, "next"); next && is_local_path(*next)) back = *next;
  }
  auto refuse = [&](int status, const std::string& result, const std::string& message,
                    std::chrono::milliseconds retry_after = std::chrono::milliseconds(0)) {
    ++wake_requests_[{route, result}];
    io::HttpResponse response =
        wants_html(request)
            ? refusal_page(request, name, status, message, back, retry_after)
            : io::HttpResponse::json(
                  status, json{{"backend", name}, {"accepted", false}, {"error", message}}.dump() + "\n");
    if (retry_after.count() > 0) set_retry_after(response, retry_after);
    return response;
  };

  const std::optional<BackendView> backend = backend_view(name);
  if (!backend) {
    ++wake_requests_[{route, "unknown_backend"}];
    return not_found(request);
  }
  // Bots and uptime monitors (the activity ignore rules) never wake anything.
  if (std::string rule = controller_.ignore_reason(request); !rule.empty()) {
    return refuse(403, "bot", "This client is not allowed to wake machines (ignored by " + rule + ").");
  }
  if (!access_.visitor_form_token_valid(request, kWakePurpose)) {
    return refuse(403, "forged",
                  "This wake request did not come from Unshelver's own page (its form token is missing or "
                  "stale). Reload the page and press the button again.");
  }
  if (const WakeCheck check = check_wake(request, backend->state); !check.allowed) {
    return refuse(check.status, check.result, check.message, check.wait);
  }
  const std::string reason =
      (waiting_page ? "waiting page from " : "wake button from ") + access_.client_address(request);
  const Controller::RequestOutcome outcome = controller_.wake(name, "public-button", reason);
  ++wake_requests_[{route, outcome == Controller::RequestOutcome::kAccepted ? "accepted" : "already_awake"}];
  // Post/Redirect/Get: the browser returns to the page, which shows the progress.
  if (wants_html(request)) return io::HttpResponse::redirect(303, back);
  json body = {{"backend", name},
               {"accepted", true},
               {"already_awake", outcome == Controller::RequestOutcome::kNothingToDo},
               {"status_url", waiting_page ? std::string(kReservedPrefix) + "status" : "/api/status"}};
  return io::HttpResponse::json(202, body.dump() + "\n");
}

io::HttpResponse WebApp::refusal_page(const io::HttpRequest& request, const std::string& name, int status,
                                      const std::string& message, const std::string& back,
                                      std::chrono::milliseconds retry_after) {
  const std::optional<BackendView> view = backend_view(name);
  const AccessControl::Visitor visitor = access_.visitor(request);
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(retry_after).count();
  // On a backend's host the page's own files are under the reserved prefix, the only path there
  // that reaches Unshelver whatever the backend's state.
  const bool backend_host = request.path.starts_with(kReservedPrefix);
  const json data = {{"label", view ? view->label : name},
                     {"message", message},
                     {"retry", seconds > 0},
                     {"retry_after_seconds", seconds},
                     {"back", back},
                     {"action", request.path},
                     {"next", back},
                     {"form_token", access_.visitor_form_token(visitor, kWakePurpose)},
                     {"static", backend_host ? std::string(kReservedPrefix) + "static/" : "/static/"}};
  const core::Template* page = pages_.page("wake_refused.html");
  io::HttpResponse response = io::HttpResponse::html(
      status, page != nullptr ? page->render(data) : core::html_escape(message) + "\n");
  response.set_header("Cache-Control", "no-store");
  if (!visitor.set_cookie.empty()) response.set_header("Set-Cookie", visitor.set_cookie);
  return response;
}

// A path on this host and nothing else: "/x?y", never "//host" or "/\\host" (which browsers
// take for another host), nor a scheme, nor control characters; at most 2 KiB.
bool is_local_path(std::string_view target) {
  if (target.empty() || target.size() > 2048 || target.front() != '/') return false;
  if (target.size() > 1 && (target[1] == '/' || target[1] == '\\')) return false;
  return std::none_of(target.begin(), target.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\'; });
}

WebApp::WakeCheck WebApp::check_wake(const io::HttpRequest& request, core::BackendState state) {
  const auto steady_now = std::chrono::steady_clock::now();
  if (auto wait = access_.take_wake_allowance(request, steady_now); wait.count() > 0) {
    spdlog::warn("wake from {} refused: rate limited", access_.client_address(request));
    return {false, 429, "rate_limited", "Too many wake requests from your address; try again shortly.", wait};
  }
  // A wake that starts a sleeping backend (what the launcher offers as `can_wake`) is what costs.
  if (can_wake(state)) {
    if (auto wait = access_.start_cooldown(steady_now); wait.count() > 0) {
      return {false, 429, "cooldown", "A machine was woken moments ago; try again shortly.", wait};
    }
  }
  return {};
}

io::HttpResponse WebApp::not_found(const io::HttpRequest& request) {
  if (wants_html(request)) {
    return io::HttpResponse::html(404,
                                  "<!doctype html><title>Not found</title><p>Not found. "
                                  "<a href=\"/\">Back to the launcher</a></p>\n");
  }
  return io::HttpResponse::json(404, "{\"error\":\"not found\"}\n");
}

}  // namespace unshelver::web
