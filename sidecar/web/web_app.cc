#include "web/web_app.h"

#include <spdlog/spdlog.h>

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
  io::HttpResponse response = route(request);
  add_security_headers(response);
  responder.respond(std::move(response));
}

io::HttpResponse WebApp::route(const io::HttpRequest& request) {
  const std::string& path = request.path;
  const bool read = request.method == "GET" || request.method == "HEAD";

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
  if (starts_with(path, "/static/") && read) {
    if (const Asset* asset = pages_.asset(name_after(path, "/static/"))) {
      io::HttpResponse response;
      response.body = asset->body;
      response.headers.emplace_back("Content-Type", asset->content_type);
      response.headers.emplace_back("Cache-Control", "public, max-age=300");
      return response;
    }
  }
  return not_found(request);
}

void WebApp::refresh_cache() {
  const std::uint64_t revision = controller_.revision();
  if (revision == cached_revision_) return;
  json status = controller_.status();
  cached_status_ = status.dump(2) + "\n";

  json page = status;
  for (json& backend : page["backends"]) {
    const std::string state = backend.value("state", "unknown");
    backend["state_label"] = std::string(state_label(state));
    backend["is_ready"] = state == "ready";
    backend["can_wake"] = state == "asleep" || state == "error" || state == "sleeping";
    backend["is_busy"] = state == "waking" || state == "booting" || state == "sleeping" || state == "unknown";
    backend["is_error"] = state == "error";
    backend["wake_action"] = "/wake/" + backend.value("name", "");
  }
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
