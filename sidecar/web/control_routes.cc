// The control surface of WebApp: the login form, the /control page, its actions, the hidden
// manual-shelve path of the Python unshelver, and /metrics. See web_app.h for the routes and
// access.h for how callers are authenticated.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "base/text.h"
#include "base/time_format.h"
#include "web/page_model.h"
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
  return core::human_duration(std::chrono::seconds(seconds));
}

// Why the backend is awake, in words (README "Keep-warm windows and pre-warming").
std::string awake_text(const json& backend, std::chrono::system_clock::time_point now) {
  const json& reason = backend.value("awake_reason", json());
  if (!reason.is_string()) return "not awake";
  static constexpr std::pair<std::string_view, std::string_view> kTexts[] = {
      {"visitor", "a visitor woke it"},
      {"api-request", "an API request woke it"},
      {"window", "keep-warm window"},
      {"pre-warm", "pre-warmed ahead of the expected first use"},
      {"admin-pin", "pinned awake by an admin"},
      {"admin-wake", "an admin woke it"},
      {"cloud", "started outside Unshelver, or found running"},
  };
  std::string text = reason.get<std::string>();
  for (const auto& [key, words] : kTexts) {
    if (key == text) text = words;
  }
  const json& until = backend.value("held_until", json());
  if (until.is_string()) text += "; held awake until " + human_time(until, now);
  return text;
}

// The keep-warm schedule in words, or "" when the backend has none.
std::string keep_warm_text(const json& keep_warm, std::chrono::system_clock::time_point now) {
  if (!keep_warm.is_object()) return "";
  std::string text;
  auto add = [&text](const std::string& part) { text += (text.empty() ? "" : "; ") + part; };
  if (keep_warm.value("window_until", json()).is_string())
    add("window open until " + human_time(keep_warm["window_until"], now));
  if (keep_warm.value("next_window", json()).is_string())
    add("next window " + human_time(keep_warm["next_window"], now));
  if (keep_warm.value("next_prewarm", json()).is_string())
    add("next pre-warm " + human_time(keep_warm["next_prewarm"], now));
  add("woken " + core::human_duration(std::chrono::seconds(keep_warm.value("wake_lead_seconds", 0LL))) +
      " ahead");
  if (keep_warm.value("prewarm_cap_seconds", 0LL) > 0) {
    add("pre-warm this week " +
        core::human_duration(std::chrono::seconds(keep_warm.value("prewarm_seconds_this_week", 0LL))) +
        " of " + core::human_duration(std::chrono::seconds(keep_warm.value("prewarm_cap_seconds", 0LL))));
  }
  return text;
}

// What a control action did, as the `done` parameter of the redirect back to /control names it.
// The page maps the key to one of these fixed texts; anything else in the URL shows nothing, so
// a crafted link cannot put words on the admin's page.
enum class Done {
  kWakeRequested,
  kAlreadyReady,
  kAlreadyWaking,
  kShelveRequested,
  kAlreadyAsleep,
  kPinned,
  kAlreadyPinned,
  kUnpinned,
  kNotPinned
};

constexpr std::pair<Done, std::string_view> kDoneKeys[] = {
    {Done::kWakeRequested, "wake_requested"}, {Done::kAlreadyReady, "already_ready"},
    {Done::kAlreadyWaking, "already_waking"}, {Done::kShelveRequested, "shelve_requested"},
    {Done::kAlreadyAsleep, "already_asleep"}, {Done::kPinned, "pinned"},
    {Done::kAlreadyPinned, "already_pinned"}, {Done::kUnpinned, "unpinned"},
    {Done::kNotPinned, "not_pinned"},
};

std::string_view done_key(Done done) {
  for (const auto& [value, key] : kDoneKeys) {
    if (value == done) return key;
  }
  return "";
}

// The message for `key` about the backend `label` (idle timeout `idle_seconds`), or "" for a key
// that is not one of ours.
std::string done_message(std::string_view key, const std::string& label, long long idle_seconds) {
  std::optional<Done> done;
  for (const auto& [value, known] : kDoneKeys) {
    if (known == key) done = value;
  }
  if (!done) return "";
  switch (*done) {
    case Done::kWakeRequested:
      return "Wake requested: " + label + " is starting. That takes a few minutes; this page follows it.";
    case Done::kAlreadyReady:
      // The reconciler ignores a wake for a backend that is already wanted awake
      // (BackendReconciler::request): the idle clock runs on from the last use.
      return label + " was already awake. Nothing was done: Wake does not extend the idle time; " + label +
             " goes to sleep " + core::human_duration(std::chrono::seconds(idle_seconds)) +
             " after its last use.";
    case Done::kAlreadyWaking: return label + " is already waking up. Nothing more was done.";
    case Done::kShelveRequested:
      return "Shelve requested: " + label + " is going to sleep; whoever was using it has been cut off.";
    case Done::kAlreadyAsleep: return label + " was already asleep or going to sleep. Nothing was done.";
    case Done::kPinned:
      return label +
             " is pinned awake: it wakes if asleep and is not shelved for idleness until the pin is lifted.";
    case Done::kAlreadyPinned: return label + " was already pinned awake. Nothing was done.";
    case Done::kUnpinned:
      return "The pin is lifted: " + label + " goes to sleep " +
             core::human_duration(std::chrono::seconds(idle_seconds)) + " after its last use.";
    case Done::kNotPinned: return label + " was not pinned. Nothing was done.";
  }
  return "";
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
  json data = {{"title", controller_.title()},
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
  const auto now = std::chrono::system_clock::now();
  json data = control_data();
  // The query names what the last action did (`done` and `backend`), or the backend whose shelve
  // waits for its confirmation (`confirm`): see control_action.
  const std::string done = core::query_parameter(request.query, "done").value_or("");
  const std::string done_backend = core::query_parameter(request.query, "backend").value_or("");
  const std::string confirming = core::query_parameter(request.query, "confirm").value_or("");
  std::string flash;
  for (json& backend : data["backends"]) {
    const std::string name = backend.value("name", "");
    if (!done.empty() && name == done_backend) {
      flash = done_message(done, backend.value("label", name), backend.value("idle_timeout_seconds", 0LL));
    }
    backend["confirming"] = !confirming.empty() && name == confirming;
    backend["time_left"] = time_left(backend.value("idle_deadline", json()), now);
    add_time_texts(backend, now);
    backend["idle_deadline_attr"] =
        backend.value("idle_deadline", json()).is_string() ? backend["idle_deadline"] : json("");
    backend["awake_text"] = awake_text(backend, now);
    const json& pinned = backend.value("pinned", json());
    backend["pinned_text"] = pinned.is_object() ? pinned.value("detail", std::string()) + ", " +
                                                      human_time(pinned.value("at", json()), now)
                                                : std::string();
    backend["is_pinned"] = pinned.is_object();
    // A pinned backend has no idle deadline because of the pin, not because it sleeps.
    if (pinned.is_object() && backend.value("awake_reason", json()).is_string()) {
      backend["time_left"] = "not while pinned awake";
    }
    backend["pin_action"] = "/control/pin/" + name;
    backend["unpin_action"] = "/control/unpin/" + name;
    backend["keep_warm_text"] = keep_warm_text(backend.value("keep_warm", json()), now);
    backend["wake_action"] = "/control/wake/" + name;
    backend["shelve_action"] = "/control/shelve/" + name;
    if (!backend.value("routing", json()).is_string() || backend["routing"].get<std::string>().empty()) {
      backend["routing"] = "not managed";
    }
    backend["leader"] =
        backend.value("ha", json::object()).value("text", std::string("this instance (no etcd)"));
    for (const char* key : {"cloud_status", "upstream", "error", "desired_by"}) {
      if (!backend.value(key, json()).is_string()) backend[key] = "";
    }
  }
  json recent = controller_.events(std::nullopt, "", kControlEvents)["events"];
  json rows = json::array();
  for (auto it = recent.rbegin(); it != recent.rend(); ++it) {  // newest first
    json row = *it;
    row["ts_text"] = human_time(row.value("ts", json()), now);
    rows.push_back(std::move(row));
  }
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
  data["controllers"] =
      data.value("ha", json::object()).value("summary", std::string("one instance (no etcd)"));
  data["flash"] = flash;
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
  // Shelving cuts off whoever is using the backend, so a shelve from the page needs a second,
  // explicit step: the form's first submit (or a script-less browser's only one) lacks
  // confirm=yes and leads to the confirmation. A script with the bearer token asks on purpose.
  const bool from_page = caller.via == AccessControl::Via::kSession;
  if (!wake && from_page && AccessControl::form_field(request, "confirm").value_or("") != "yes") {
    if (!backend_view(name)) return not_found(request);
    if (wants_html(request)) {
      return no_store(io::HttpResponse::redirect(
          303, "/control?confirm=" + core::percent_encode(name) + "#backend-" + core::percent_encode(name)));
    }
    return json_error(
        409, "shelving cuts off whoever uses the backend: confirm it with the form field confirm=yes");
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
  const std::optional<BackendView> backend = backend_view(name);
  if (from_page && wants_html(request)) {
    Done done = Done::kWakeRequested;
    if (outcome == Controller::RequestOutcome::kAccepted) {
      done = wake ? Done::kWakeRequested : Done::kShelveRequested;
    } else if (wake) {
      const bool ready = backend && backend->state == core::BackendState::kReady;
      done = ready ? Done::kAlreadyReady : Done::kAlreadyWaking;
    } else {
      done = Done::kAlreadyAsleep;
    }
    // Post/Redirect/Get: the page says what was done (a fixed text named by `done`).
    return no_store(io::HttpResponse::redirect(303, "/control?done=" + std::string(done_key(done)) +
                                                        "&backend=" + core::percent_encode(name) +
                                                        "#backend-" + core::percent_encode(name)));
  }
  json body = {
      {"backend", name},
      {"action", wake ? "wake" : "shelve"},
      {"accepted", outcome == Controller::RequestOutcome::kAccepted},
      {"already", outcome == Controller::RequestOutcome::kNothingToDo},
      {"state", std::string(core::to_string(backend ? backend->state : core::BackendState::kUnknown))}};
  return no_store(io::HttpResponse::json(202, body.dump() + "\n"));
}

io::HttpResponse WebApp::control_pin(const io::HttpRequest& request, const Caller& caller, bool pinned,
                                     const std::string& name) {
  if (!caller.admin()) return unauthorized(request, caller);
  if (!access_.session_form_token_valid(caller, request)) {
    return json_error(403, "the form token is missing or wrong: use the buttons of /control");
  }
  const bool from_page = caller.via == AccessControl::Via::kSession;
  // Who pinned, as the control page shows it: the admin has no name of their own, only the way
  // they came and their address.
  const std::string reason = std::string(pinned ? "pinned awake" : "pin lifted") + " from " +
                             (from_page ? "the control page" : "a script") + " at " +
                             access_.client_address(request);
  const Controller::RequestOutcome outcome = controller_.pin(name, pinned, "control", reason);
  if (outcome == Controller::RequestOutcome::kUnknownBackend) return not_found(request);
  const bool accepted = outcome == Controller::RequestOutcome::kAccepted;
  if (from_page && wants_html(request)) {
    const Done done = pinned ? (accepted ? Done::kPinned : Done::kAlreadyPinned)
                             : (accepted ? Done::kUnpinned : Done::kNotPinned);
    return no_store(io::HttpResponse::redirect(303, "/control?done=" + std::string(done_key(done)) +
                                                        "&backend=" + core::percent_encode(name) +
                                                        "#backend-" + core::percent_encode(name)));
  }
  json body = {{"backend", name},
               {"action", pinned ? "pin" : "unpin"},
               {"accepted", accepted},
               {"already", outcome == Controller::RequestOutcome::kNothingToDo}};
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
  // The daemon-wide part is written at every scrape (a few kilobytes); the backends' parts are
  // kept pages, sent as slices of their own text (no joined copy of the 2 MB page per scrape).
  auto page = std::make_shared<core::MetricsPage>();
  controller_.metrics(*page);
  add_http_metrics(*page);
  add_gate_metrics(*page);
  std::vector<std::shared_ptr<const core::MetricsPage>> pages{std::move(page)};
  for (std::shared_ptr<const core::MetricsPage>& backend : controller_.backend_metrics())
    pages.push_back(std::move(backend));
  io::HttpResponse response;
  response.shared_body = core::MetricsPage::join_shared(pages);
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
