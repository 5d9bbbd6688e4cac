#include "web/web_app.h"

#include <spdlog/spdlog.h>

#include "core/text.h"

namespace unshelver::web {

namespace {
using nlohmann::json;

// Every page gets these (OWASP secure headers): no framing, no inline script, no sniffing.
void add_security_headers(io::HttpResponse& response) {
  response.set_header("Content-Security-Policy",
                      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                      "frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
  response.set_header("X-Frame-Options", "DENY");
  response.set_header("X-Content-Type-Options", "nosniff");
  response.set_header("Referrer-Policy", "same-origin");
}

bool starts_with(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Percent-decoding is not needed: backend names are validated to [A-Za-z0-9._-] by the config.
std::string name_after(const std::string& path, std::string_view prefix) {
  std::string name = path.substr(prefix.size());
  if (name.empty() || name.find('/') != std::string::npos) return "";
  return name;
}

constexpr std::string_view kReservedPrefix = "/.well-known/unshelver/";

// How long an API client should wait before asking again, by state.
int retry_after_seconds(const std::string& state) {
  if (state == "waking" || state == "booting") return 10;
  return 30;
}

std::string explanation(const std::string& state, const std::string& label) {
  if (state == "asleep") return label + " is asleep to save costs. Wake it to continue; waking takes a few minutes.";
  if (state == "waking") return label + " is waking up: the cloud is starting its machine.";
  if (state == "booting") return "The machine runs; " + label + "'s services are starting.";
  if (state == "ready") return label + " is ready.";
  if (state == "sleeping") return label + " is going to sleep. You can wake it again right away.";
  if (state == "error") return label + " could not be woken.";
  return "Checking " + label + "'s state.";
}

std::string_view host_header(const io::HttpRequest& request) {
  const std::string* host = request.header("Host");
  return host == nullptr ? std::string_view() : std::string_view(*host);
}

std::string_view state_label(const std::string& state) {
  if (state == "asleep") return "Asleep";
  if (state == "waking") return "Waking up";
  if (state == "booting") return "Starting services";
  if (state == "ready") return "Ready";
  if (state == "sleeping") return "Going to sleep";
  if (state == "error") return "Error";
  return "Checking";
}
}  // namespace

bool wants_html(const io::HttpRequest& request) {
  const std::string* accept = request.header("Accept");
  return accept != nullptr && accept->find("text/html") != std::string::npos;
}

WebApp::WebApp(const Pages& pages, Controller& controller) : pages_(pages), controller_(controller) {}

void WebApp::handle(const io::HttpRequest& request, io::Responder responder) {
  if (request.path == "/api/events" && controller_.backend_for_host(host_header(request)).empty()) {
    events(request, std::move(responder));
    return;
  }
  io::HttpResponse response = route(request);
  add_security_headers(response);
  responder.respond(std::move(response));
}

io::HttpResponse WebApp::route(const io::HttpRequest& request) {
  const std::string& path = request.path;
  const bool read = request.method == "GET" || request.method == "HEAD";

  if (std::string backend = controller_.backend_for_host(host_header(request));
      !backend.empty()) {
    return backend_host(request, backend);
  }

  if (path == "/healthz") {
    if (!read) return io::HttpResponse::text(405, "Method Not Allowed\n").set_header("Allow", "GET, HEAD");
    return io::HttpResponse::text(200, "ok\n").set_header("Cache-Control", "no-store");
  }
  if (path == "/" || path == "/index.html") {
    if (!read) return io::HttpResponse::text(405, "Method Not Allowed\n").set_header("Allow", "GET, HEAD");
    return launcher();
  }
  if (path == "/api/status") {
    if (!read) return io::HttpResponse::text(405, "Method Not Allowed\n").set_header("Allow", "GET, HEAD");
    return status_json();
  }
  for (std::string_view prefix : {std::string_view("/wake/"), std::string_view("/action/")}) {
    if (starts_with(path, prefix)) {
      std::string name = name_after(path, prefix);
      if (name.empty()) return not_found(request);
      if (request.method != "POST") {
        return io::HttpResponse::text(405, "Use POST to wake a backend.\n").set_header("Allow", "POST");
      }
      return wake(request, name);
    }
  }
  if (starts_with(path, "/static/") && read) return asset(name_after(path, "/static/"));
  return not_found(request);
}

// A client on this machine that did not come through a proxy: Caddy adds X-Forwarded-For to
// every request it proxies (reverse_proxy's default headers), so a visitor never passes.
static bool is_local_client(const io::HttpRequest& request) {
  const std::string& address = request.remote_address;
  const bool loopback = address == "::1" || address.rfind("127.", 0) == 0 || address.rfind("::ffff:127.", 0) == 0;
  return loopback && request.header("X-Forwarded-For") == nullptr && request.header("Forwarded") == nullptr;
}

void WebApp::events(const io::HttpRequest& request, io::Responder responder) {
  auto respond = [responder](io::HttpResponse response) {
    add_security_headers(response);
    response.set_header("Cache-Control", "no-store");
    responder.respond(std::move(response));
  };
  if (request.method != "GET" && request.method != "HEAD") {
    return respond(io::HttpResponse::text(405, "Method Not Allowed\n").set_header("Allow", "GET, HEAD"));
  }
  if (!is_local_client(request)) {
    return respond(io::HttpResponse::json(403, "{\"error\":\"events are only served to local clients\"}\n"));
  }
  // Numbers in the query: absent means the default, anything but digits in range is a 400.
  std::string bad;
  auto number = [&](std::string_view name, std::uint64_t fallback, std::uint64_t max) -> std::uint64_t {
    auto text = core::query_parameter(request.query, name);
    if (!text) return fallback;
    std::uint64_t value = 0;
    bool valid = !text->empty() && text->size() <= 19;
    for (char c : *text) valid = valid && c >= '0' && c <= '9';
    if (valid) value = std::stoull(*text);
    if (!valid || value > max) bad = std::string(name) + " must be a whole number up to " + std::to_string(max);
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
  if (wait_seconds == 0 || !paging || !controller_.events(from, backend, 1)["events"].empty()) return answer();
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

io::HttpResponse WebApp::backend_host(const io::HttpRequest& request, const std::string& name) {
  const bool read = request.method == "GET" || request.method == "HEAD";
  refresh_cache();
  json backend;
  for (const json& entry : cached_page_data_["backends"]) {
    if (entry.value("name", "") == name) backend = entry;
  }
  const std::string state = backend.value("state", "unknown");

  if (starts_with(request.path, kReservedPrefix)) {
    const std::string rest = request.path.substr(kReservedPrefix.size());
    if (rest == "status" && read) {
      io::HttpResponse response = io::HttpResponse::json(200, backend.dump() + "\n");
      response.set_header("Cache-Control", "no-store");
      return response;
    }
    if (starts_with(rest, "static/") && read) return asset(rest.substr(7));
    if (rest == "wake") {
      if (request.method != "POST") {
        return io::HttpResponse::text(405, "Use POST to wake a backend.\n").set_header("Allow", "POST");
      }
      controller_.wake(name, "public-button", "waiting page from " + request.remote_address);
      if (wants_html(request)) return io::HttpResponse::redirect(303, "/");
      return io::HttpResponse::json(202, json{{"backend", name}, {"accepted", true}}.dump() + "\n");
    }
    return not_found(request);
  }

  if (!(read && wants_html(request))) {
    // An API client, or a method whose body Caddy could not have replayed: it cannot wait on a
    // page, so it learns when to come back (RFC 9110 §10.2.3).
    const bool woken = (state == "asleep" || state == "error") && controller_.wake_on_request(name, request);
    const int retry_after = woken ? 10 : retry_after_seconds(state);
    json body = {{"error", "backend not ready"},
                 {"backend", name},
                 {"state", woken ? "waking" : state},
                 {"detail", backend.value("explanation", "")},
                 {"retry_after_seconds", retry_after},
                 {"wake", woken ? json("requested") : json(std::string(kReservedPrefix) + "wake")}};
    io::HttpResponse response = io::HttpResponse::json(503, body.dump() + "\n");
    response.set_header("Retry-After", std::to_string(retry_after));
    response.set_header("Cache-Control", "no-store");
    return response;
  }

  const core::Template* page = pages_.page("waiting.html");
  io::HttpResponse response =
      io::HttpResponse::html(200, page != nullptr ? page->render(backend) : "waiting.html is missing\n");
  response.set_header("Cache-Control", "no-store");
  return response;
}

void WebApp::refresh_cache() {
  const std::uint64_t revision = controller_.revision();
  if (revision == cached_revision_) return;
  json status = controller_.status();
  cached_status_ = status.dump(2) + "\n";

  json page = status;
  for (json& backend : page["backends"]) {
    const std::string state = backend.value("state", "unknown");
    const std::string label = backend.value("label", "");
    backend["state_label"] = std::string(state_label(state));
    backend["explanation"] = explanation(state, label);
    backend["is_ready"] = state == "ready";
    backend["can_wake"] = state == "asleep" || state == "error" || state == "sleeping";
    backend["is_busy"] = state == "waking" || state == "booting" || state == "sleeping" || state == "unknown";
    backend["is_error"] = state == "error";
    backend["auto_refresh"] = state != "asleep" && state != "error";
    backend["wake_action"] = "/wake/" + backend.value("name", "");
  }
  cached_page_data_ = page;
  const core::Template* launcher_page = pages_.page("launcher.html");
  cached_launcher_ = launcher_page != nullptr ? launcher_page->render(page) : "launcher.html is missing\n";
  cached_revision_ = revision;
}

io::HttpResponse WebApp::launcher() {
  refresh_cache();
  io::HttpResponse response = io::HttpResponse::html(200, cached_launcher_);
  response.set_header("Cache-Control", "no-store");
  return response;
}

io::HttpResponse WebApp::status_json() {
  refresh_cache();
  io::HttpResponse response = io::HttpResponse::json(200, cached_status_);
  response.set_header("Cache-Control", "no-store");
  return response;
}

io::HttpResponse WebApp::wake(const io::HttpRequest& request, const std::string& name) {
  const std::string reason = "wake button from " + request.remote_address;
  const Controller::WakeOutcome outcome = controller_.wake(name, "public-button", reason);
  if (outcome == Controller::WakeOutcome::kUnknownBackend) return not_found(request);
  if (wants_html(request)) {
    // Post/Redirect/Get: the browser returns to the launcher, which shows the progress.
    return io::HttpResponse::redirect(303, "/");
  }
  json body = {{"backend", name},
               {"accepted", true},
               {"already_awake", outcome == Controller::WakeOutcome::kAlreadyAwake},
               {"status_url", "/api/status"}};
  return io::HttpResponse::json(202, body.dump() + "\n");
}

io::HttpResponse WebApp::not_found(const io::HttpRequest& request) {
  if (wants_html(request)) {
    return io::HttpResponse::html(404, "<!doctype html><title>Not found</title><p>Not found. "
                                       "<a href=\"/\">Back to the launcher</a></p>\n");
  }
  return io::HttpResponse::json(404, "{\"error\":\"not found\"}\n");
}

}  // namespace unshelver::web
