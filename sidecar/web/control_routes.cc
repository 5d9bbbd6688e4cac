// The control surface of WebApp: the login form, the /control page, its actions, the hidden
// manual-shelve path of the Python unshelver, and /metrics. See web_app.h for the routes and
// access.h for how callers are authenticated.
#include <spdlog/spdlog.h>

#include "base/text.h"
#include "base/time_format.h"
#include "web/routes.h"

namespace unshelver::web {

namespace {
using nlohmann::json;

constexpr std::string_view kLoginPurpose = "login";
constexpr std::size_t kControlEvents = 20;  // recent events on the control page

// "4 min 59 s": what the control page shows (and its script keeps current) as the time left.
std::string time_left(const json& deadline, std::chrono::system_clock::time_point now) {
  if (!deadline.is_string()) return "not while asleep";
  auto at = core::parse_rfc3339(deadline.get<std::string>());
  if (!at) return "unknown";
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*at - now).count();
  if (seconds <= 0) return "any moment now";
  std::string text;
  if (seconds >= 3600) text += std::to_string(seconds / 3600) + " h ";
  if (seconds >= 60) text += std::to_string(seconds / 60 % 60) + " min ";
  return text + std::to_string(seconds % 60) + " s";
}

io::HttpResponse json_error(int status, const std::string& message) {
  return io::HttpResponse::json(status, json{{"error", message}}.dump() + "\n");
}

io::HttpResponse no_store(io::HttpResponse response) {
  response.set_header("Cache-Control", "no-store");
  return response;
}
}  // namespace

io::HttpResponse WebApp::unauthorized(const io::HttpRequest& request, const Caller& caller) {
  if (!access_.control_enabled()) {
    return json_error(403,
                      "the control surface is off: no control token is configured (app.control_token, the "
                      "secrets file or UNSHELVER_CONTROL_TOKEN)");
  }
  if (caller.bearer_rate_limited) {
    io::HttpResponse response =
        json_error(429, "too many failed attempts from your address; try again later");
    set_retry_after(response, caller.retry_after);
    return response;
  }
  if (!caller.bad_bearer && wants_html(request) && (request.method == "GET" || request.method == "HEAD")) {
    return no_store(io::HttpResponse::redirect(303, "/control/login"));
  }
  io::HttpResponse response = json_error(
      401, caller.bad_bearer ? "wrong control token"
                             : "the control token is required: Authorization: Bearer <token>, or log "
                               "in at /control/login");
  response.set_header("WWW-Authenticate", "Bearer realm=\"unshelver\"");
  return response;
}

io::HttpResponse WebApp::login_page(const io::HttpRequest& request, int status, const std::string& error) {
  const AccessControl::Visitor visitor = access_.visitor(request);
  refresh_cache();
  json data = {{"title", cached_page_data_.value("title", "Unshelver")},
               {"form_token", access_.visitor_form_token(visitor, kLoginPurpose)},
               {"error", error},
               {"enabled", access_.control_enabled()}};
  const core::Template* page = pages_.page("login.html");
  io::HttpResponse response =
      io::HttpResponse::html(status, page != nullptr ? page->render(data) : "login.html is missing\n");
  if (!visitor.set_cookie.empty()) response.set_header("Set-Cookie", visitor.set_cookie);
  return no_store(std::move(response));
}

io::HttpResponse WebApp::login(const io::HttpRequest& request) {
  if (!access_.control_enabled())
    return login_page(request, 403, "The control page is off: no control token is configured.");
  // Login CSRF: a form on another site must not log the visitor in with the attacker's token.
  if (!access_.visitor_form_token_valid(request, kLoginPurpose)) {
    return login_page(request, 403, "The login form expired. Please try again.");
  }
  const std::string token = AccessControl::form_field(request, "token").value_or("");
  const AccessControl::Login result =
      access_.login(request, token, std::chrono::system_clock::now(), std::chrono::steady_clock::now());
  const std::string client = access_.client_address(request);
  switch (result.result) {
    case AccessControl::LoginResult::kOk: {
      controller_.record_event("login", "control", "session started from " + client);
      io::HttpResponse response = io::HttpResponse::redirect(303, "/control");
      response.set_header("Set-Cookie", result.set_cookie);
      return no_store(std::move(response));
    }
    case AccessControl::LoginResult::kRateLimited: {
      spdlog::warn("control: a wrong token from {} refused: too many failed attempts", client);
      const auto seconds = std::chrono::ceil<std::chrono::seconds>(result.retry_after).count();
      io::HttpResponse response = login_page(
          request, 429, "Too many failed attempts. Try again in " + std::to_string(seconds) + " s.");
      set_retry_after(response, result.retry_after);
      return response;
    }
    case AccessControl::LoginResult::kWrongToken:
      // The event names the client, never what it typed.
      controller_.record_event("login_failed", "control",
                               "wrong control token on the login form from " + client);
      return login_page(request, 401, "That is not the control token.");
    case AccessControl::LoginResult::kDisabled: break;
  }
  return login_page(request, 403, "The control page is off.");
}

io::HttpResponse WebApp::logout(const io::HttpRequest& request, const Caller& caller) {
  if (caller.via == AccessControl::Via::kSession && !access_.session_form_token_valid(caller, request)) {
    return json_error(403, "the form token is missing or wrong");
  }
  const std::string clear = access_.logout(caller, request, std::chrono::system_clock::now());
  if (caller.via == AccessControl::Via::kSession) {
    controller_.record_event("logout", "control", "session ended from " + access_.client_address(request));
  }
  io::HttpResponse response = io::HttpResponse::redirect(303, "/control/login");
  response.set_header("Set-Cookie", clear);
  return no_store(std::move(response));
}

io::HttpResponse WebApp::control_page(const io::HttpRequest& request, const Caller& caller) {
  if (!caller.admin()) return unauthorized(request, caller);
  refresh_cache();
  const auto now = std::chrono::system_clock::now();
  json data = cached_page_data_;
  for (json& backend : data["backends"]) {
    backend["time_left"] = time_left(backend.value("idle_deadline", json()), now);
    backend["idle_deadline_attr"] =
        backend.value("idle_deadline", json()).is_string() ? backend["idle_deadline"] : json("");
    const std::string name = backend.value("name", "");
    backend["wake_action"] = "/control/wake/" + name;
    backend["shelve_action"] = "/control/shelve/" + name;
    if (!backend.value("routing", json()).is_string() || backend["routing"].get<std::string>().empty()) {
      backend["routing"] = "not managed";
    }
    for (const char* key : {"cloud_status", "upstream", "error", "desired_by"}) {
      if (!backend.value(key, json()).is_string()) backend[key] = "";
    }
  }
  json recent = controller_.events(std::nullopt, "", kControlEvents)["events"];
  json rows = json::array();
  for (auto it = recent.rbegin(); it != recent.rend(); ++it) rows.push_back(*it);  // newest first
  const json& caddy = data.value("caddy", json::object());
  const json& swift = data.value("events", json::object()).value("swift", json());
  data["events_rows"] = std::move(rows);
  data["routing_mode"] =
      caddy.value("manage", false)
          ? "Unshelver manages Caddy (" + caddy.value("integration", std::string("full")) + ")"
          : "not managed by Unshelver";
  data["outbox"] = swift.is_object()
                       ? std::to_string(swift.value("outbox", 0)) + " event(s) waiting for Swift"
                       : "no Swift mirror configured";
  data["form_token"] = access_.session_form_token(caller);
  data["manual_shelve_path"] = manual_shelve_path_;
  data["via_bearer"] = caller.via == AccessControl::Via::kBearer;
  const core::Template* page = pages_.page("control.html");
  return no_store(
      io::HttpResponse::html(200, page != nullptr ? page->render(data) : "control.html is missing\n"));
}

io::HttpResponse WebApp::control_action(const io::HttpRequest& request, const Caller& caller, bool wake,
                                        const std::string& name, const std::string& actor) {
  if (!caller.admin()) return unauthorized(request, caller);
  if (!access_.session_form_token_valid(caller, request)) {
    return json_error(403, "the form token is missing or wrong: use the buttons of /control");
  }
  const std::string reason = std::string(wake ? "wake" : "shelve") + " from " +
                             (caller.via == AccessControl::Via::kBearer ? "a script" : "the control page") +
                             " at " + access_.client_address(request);
  const Controller::RequestOutcome outcome =
      wake ? controller_.wake(name, actor, reason) : controller_.shelve(name, actor, reason);
  if (outcome == Controller::RequestOutcome::kUnknownBackend) return not_found(request);
  if (wake)
    ++wake_requests_[{"control",
                      outcome == Controller::RequestOutcome::kAccepted ? "accepted" : "already_awake"}];
  if (caller.via == AccessControl::Via::kSession && wants_html(request)) {
    return no_store(io::HttpResponse::redirect(303, "/control"));
  }
  const BackendView* backend = backend_view(name);
  json body = {{"backend", name},
               {"action", wake ? "wake" : "shelve"},
               {"accepted", outcome == Controller::RequestOutcome::kAccepted},
               {"already", outcome == Controller::RequestOutcome::kNothingToDo},
               {"state", std::string(core::to_string(backend != nullptr ? backend->state
                                                                        : core::BackendState::kUnknown))}};
  return no_store(io::HttpResponse::json(202, body.dump() + "\n"));
}

io::HttpResponse WebApp::manual_shelve(const io::HttpRequest& request, const Caller& caller) {
  if (!caller.admin()) return unauthorized(request, caller);
  // The Python unshelver had one button, so its path needed no name. With several backends the
  // request names one (form field or query parameter `backend`; not a secret).
  std::string name = AccessControl::form_field(request, "backend")
                         .value_or(core::query_parameter(request.query, "backend").value_or(""));
  if (name.empty()) {
    const std::vector<BackendView> backends = controller_.backends();
    if (backends.size() != 1) {
      return json_error(400, "several backends are configured: name one with backend=NAME");
    }
    name = backends[0].name;
  }
  return control_action(request, caller, false, name, "manual-shelve");
}

io::HttpResponse WebApp::metrics(const io::HttpRequest& request, const Caller& caller) {
  if (!caller.admin() && !AccessControl::is_local(request)) {
    if (caller.bad_bearer || access_.control_enabled()) return unauthorized(request, caller);
    return json_error(403, "metrics are served to local clients, or with the control token");
  }
  core::MetricsPage page;
  controller_.metrics(page);
  add_http_metrics(page);
  add_gate_metrics(page);
  io::HttpResponse response;
  response.body = page.text();
  response.headers.emplace_back("Content-Type", std::string(core::kPrometheusContentType));
  return no_store(std::move(response));
}

void WebApp::add_http_metrics(core::MetricsPage& page) const {
  for (const auto& [key, count] : requests_) {
    page.counter("unshelver_http_requests_total", "HTTP requests answered by Unshelver, by route and status.",
                 {{"route", std::string(key.first)}, {"status", std::to_string(key.second)}},
                 static_cast<double>(count));
  }
  for (const auto& [key, count] : wake_requests_) {
    page.counter("unshelver_wake_requests_total",
                 "Wake requests by where they came from (launcher, waiting_page, control) and what became of "
                 "them (accepted, already_awake, forged, bot, rate_limited, cooldown, unknown_backend).",
                 {{"route", key.first}, {"result", key.second}}, static_cast<double>(count));
  }
  const AccessControl::Stats& stats = access_.stats();
  page.counter("unshelver_logins_total", "Successful logins on the control page.", {},
               static_cast<double>(stats.logins));
  page.counter("unshelver_login_failures_total",
               "Wrong control tokens, on the login form or as bearer tokens.", {},
               static_cast<double>(stats.login_failures));
  page.counter("unshelver_login_rate_limited_total",
               "Wrong login and bearer tokens refused (429) because their client failed too often.", {},
               static_cast<double>(stats.login_rate_limited));
}

}  // namespace unshelver::web
