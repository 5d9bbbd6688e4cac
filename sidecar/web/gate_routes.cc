// The gate: Caddy's forward_auth sub-request for every request to a gated backend's host
// (GET /.unshelver/gate/NAME, with X-Forwarded-Method and X-Forwarded-Uri; research:
// holding-requests §2.3). A 2xx answer lets the client's request through to the backend, at the
// address in X-Unshelver-Upstream; any other answer reaches the client as it is. web/gate_policy
// decides, web/hold_queue holds, and this file turns both into answers.
#include <spdlog/spdlog.h>

#include "base/crypto.h"
#include "base/text.h"
#include "web/gate_policy.h"
#include "web/page_model.h"
#include "web/routes.h"

namespace unshelver::web {

namespace {
using nlohmann::json;

// The client's request as Caddy received it, from the sub-request's X-Forwarded-* headers.
io::HttpRequest forwarded_request(const io::HttpRequest& gate) {
  io::HttpRequest request;
  const std::string* method = gate.header("X-Forwarded-Method");
  const std::string* uri = gate.header("X-Forwarded-Uri");
  request.method = method != nullptr && !method->empty() ? *method : "GET";
  request.target = uri != nullptr && !uri->empty() ? *uri : "/";
  const std::size_t question = request.target.find('?');
  request.path = request.target.substr(0, question);
  request.query = question == std::string::npos ? "" : request.target.substr(question + 1);
  request.http_major = gate.http_major;
  request.http_minor = gate.http_minor;
  request.headers = gate.headers;
  request.remote_address = gate.remote_address;
  request.via_proxy_socket = gate.via_proxy_socket;
  return request;
}

// RFC 6750 §2.1: "Authorization: Bearer <token>", the scheme case-insensitive.
std::string_view bearer_token(const io::HttpRequest& request) {
  const std::string* authorization = request.header("Authorization");
  if (authorization == nullptr) return {};
  constexpr std::string_view kScheme = "bearer ";
  std::string_view value = core::trim(*authorization);
  if (value.size() <= kScheme.size() || core::to_lower(value.substr(0, kScheme.size())) != kScheme) return {};
  return core::trim(value.substr(kScheme.size()));
}

// Every digest is compared, in constant time each, so the answer's timing does not tell which
// key (or how much of one) matched.
bool key_valid(const io::HttpRequest& request, const std::vector<std::string>& digests) {
  const std::string_view token = bearer_token(request);
  if (token.empty()) return false;
  const std::string given = core::hex(core::to_bytes(core::sha256(token)));
  bool matched = false;
  for (const std::string& digest : digests) matched = core::constant_time_equal(given, digest) || matched;
  return matched;
}

io::HttpResponse json_answer(int status, const json& body, std::chrono::seconds retry_after) {
  io::HttpResponse response = io::HttpResponse::json(status, body.dump() + "\n");
  if (retry_after.count() > 0) response.set_header("Retry-After", std::to_string(retry_after.count()));
  response.set_header("Cache-Control", "no-store");
  return response;
}
}  // namespace

void WebApp::enable_gate(HoldQueue& holds, const std::vector<core::BackendConfig>& backends) {
  holds_ = &holds;
  for (const core::BackendConfig& backend : backends) {
    if (backend.routing != core::RoutingMode::kGate) continue;
    gated_[backend.name] = &backend;
    holds.set_limits(
        backend.name,
        HoldQueue::Limits{std::chrono::duration_cast<std::chrono::milliseconds>(backend.hold.max_duration),
                          backend.hold.max_requests});
  }
}

io::HttpResponse WebApp::gate_pass(const BackendView& view, bool counts_as_activity) {
  if (view.upstream.empty()) {
    // Ready without an address cannot happen (the health probe needs one); say so rather than
    // let Caddy dial nothing.
    return json_answer(503, {{"error", "no address is known for the backend"}, {"backend", view.name}},
                       std::chrono::seconds(10));
  }
  controller_.request_started(view.name, counts_as_activity);
  io::HttpResponse response;
  response.status = 204;
  response.set_header("X-Unshelver-Upstream", view.upstream);
  return response;
}

io::HttpResponse WebApp::gate_refusal(const BackendView& view, int status, const std::string& error,
                                      std::chrono::seconds retry_after, bool should_retry) {
  json body = {{"error", error},
               {"backend", view.name},
               {"state", std::string(core::to_string(view.state))},
               {"retry_after_seconds", retry_after.count()}};
  // The gate answers the backend's public clients: the cloud's own error text is for admins.
  if (view.state == core::BackendState::kError && !view.error.empty())
    body["detail"] = std::string(failure_summary(classify_failure(view.error)));
  io::HttpResponse response = json_answer(status, body, retry_after);
  // The OpenAI SDKs honour x-should-retry (research: holding-requests §2.5).
  if (should_retry) response.set_header("x-should-retry", "true");
  return response;
}

void WebApp::gate(const io::HttpRequest& gate_request, const std::string& name,
                  const io::Responder& responder) {
  route_label_ = "gate";
  auto settings = gated_.find(name);
  std::optional<BackendView> view = backend_view(name);
  // Only Caddy's sub-request for the backend's own host is a gate request: the launcher's host
  // (or any other) cannot ask for a backend's address.
  if (holds_ == nullptr || settings == gated_.end() || !view ||
      controller_.backend_for_host(host_header(gate_request)) != name) {
    responder.respond(not_found(gate_request));
    return;
  }
  const core::BackendConfig& backend = *settings->second;
  const io::HttpRequest request = forwarded_request(gate_request);
  const std::string ignored = controller_.ignore_reason(request);
  GateFacts facts;
  facts.state = view->state;
  facts.desired_awake = view->desired_awake;
  facts.wake_on_request = backend.wake_on_request;
  facts.wants_html = (request.method == "GET" || request.method == "HEAD") && wants_html(request);
  facts.ignored = !ignored.empty();
  facts.key_required = !backend.api_key_digests.empty();
  facts.key_valid = facts.key_required && key_valid(request, backend.api_key_digests);
  facts.held = holds_->held(name);
  facts.max_held = backend.hold.max_requests;
  GateDecision decision = decide_gate(facts);

  const auto retry = std::chrono::seconds(retry_after_seconds(view->state));
  const auto hold_retry = backend.hold.retry_after;
  io::HttpResponse answer;
  switch (decision.verdict) {
    case GateVerdict::kPass: answer = gate_pass(*view, facts.ignored ? false : true); break;
    case GateVerdict::kUnauthorized:
      answer = gate_refusal(*view, 401, "a valid API key is needed (Authorization: Bearer)",
                            std::chrono::seconds(0), false);
      answer.set_header("WWW-Authenticate", "Bearer realm=\"" + name + "\"");
      break;
    case GateVerdict::kIgnored:
      answer = gate_refusal(*view, 503, "backend not ready (this client does not wake it: " + ignored + ")",
                            retry, false);
      break;
    case GateVerdict::kError:
      answer = gate_refusal(*view, 503, "backend failed to wake", retry, false);
      break;
    case GateVerdict::kAsleep:
      answer = gate_refusal(*view, 503, "backend asleep; wake it from the launcher", retry, false);
      break;
    case GateVerdict::kFull:
      holds_->refused(name);
      answer = gate_refusal(*view, 503, "too many requests are waiting for the backend", hold_retry, true);
      break;
    case GateVerdict::kWaitingPage: {
      answer = waiting_page(request, name);
      answer.status = 503;
      answer.set_header("Retry-After", std::to_string(retry.count()));
      break;
    }
    case GateVerdict::kHold: {
      // A wake already deferred (below) speaks for every request held after it.
      if (decision.wake && !deferred_wakes_.contains(name)) {
        // The wake policy of the button (check_wake), with one difference: a request that meets
        // the global cool-down is held rather than refused, and wakes the backend as soon as
        // the cool-down allows (retry_deferred_wakes).
        const auto steady_now = std::chrono::steady_clock::now();
        if (auto wait = access_.take_wake_allowance(request, steady_now); wait.count() > 0) {
          ++wake_requests_[{"gate", "rate_limited"}];
          answer = gate_refusal(*view, 503, "too many wake requests from your address; try again shortly",
                                std::chrono::ceil<std::chrono::seconds>(wait), true);
          decision.verdict = GateVerdict::kAsleep;
          break;
        }
        const std::string reason =
            request.method + " " + request.path + " from " + access_.client_address(request);
        if (can_wake(view->state) && access_.start_cooldown(steady_now).count() > 0) {
          ++wake_requests_[{"gate", "deferred"}];
          deferred_wakes_.emplace(name, reason);
        } else {
          const Controller::RequestOutcome outcome = controller_.wake(name, "wake-on-request", reason);
          ++wake_requests_[{"gate",
                            outcome == Controller::RequestOutcome::kAccepted ? "accepted" : "already_awake"}];
          // The wake may have turned a draining backend back at once.
          view = backend_view(name);
          if (view && held_fate(view->state, view->desired_awake) == HeldFate::kRelease) {
            answer = gate_pass(*view, true);
            break;
          }
        }
      }
      if (holds_->hold(name, responder)) {
        ++gate_requests_[{name, std::string(to_string(decision.verdict))}];
        return;
      }
      answer = gate_refusal(*view, 503, "too many requests are waiting for the backend", hold_retry, true);
      decision.verdict = GateVerdict::kFull;
      break;
    }
  }
  ++gate_requests_[{name, std::string(to_string(decision.verdict))}];
  responder.respond(std::move(answer));
}

void WebApp::backend_changed(const std::string& name) {
  if (holds_ == nullptr || !gated_.contains(name) || holds_->held(name) == 0) return;
  const std::optional<BackendView> view = backend_view(name);
  if (!view) return;
  switch (held_fate(view->state, view->desired_awake)) {
    case HeldFate::kKeep: break;
    // The view is this call's own copy: releasing cannot change it under the answers.
    case HeldFate::kRelease: holds_->release(name, [this, &view] { return gate_pass(*view, true); }); break;
    case HeldFate::kFail:
      holds_->fail(name, [this, &view] {
        return gate_refusal(*view, 503, "backend failed to wake",
                            std::chrono::seconds(retry_after_seconds(view->state)), false);
      });
      break;
  }
}

void WebApp::retry_deferred_wakes() {
  for (auto it = deferred_wakes_.begin(); it != deferred_wakes_.end();) {
    const std::optional<BackendView> view = backend_view(it->first);
    // Nobody waits any more, or someone else woke it meanwhile: nothing to do.
    if (holds_ == nullptr || !view || holds_->held(it->first) == 0 || view->desired_awake) {
      it = deferred_wakes_.erase(it);
      continue;
    }
    if (can_wake(view->state) && access_.start_cooldown(std::chrono::steady_clock::now()).count() > 0) {
      ++it;
      continue;
    }
    const std::string name = it->first;
    const std::string reason = it->second;
    it = deferred_wakes_.erase(it);
    const Controller::RequestOutcome outcome = controller_.wake(name, "wake-on-request", reason);
    ++wake_requests_[{"gate",
                      outcome == Controller::RequestOutcome::kAccepted ? "accepted" : "already_awake"}];
  }
}

io::HttpResponse WebApp::gate_expired(const std::string& name) {
  const std::optional<BackendView> view = backend_view(name);
  auto settings = gated_.find(name);
  const std::chrono::seconds retry =
      settings != gated_.end() ? settings->second->hold.retry_after : std::chrono::seconds(30);
  if (!view) return json_answer(503, {{"error", "backend not ready in time"}}, retry);
  return gate_refusal(*view, 503, "backend not ready in time; try again", retry, true);
}

void WebApp::add_gate_metrics(core::MetricsPage& page) const {
  for (const auto& [key, count] : gate_requests_) {
    page.counter(
        "unshelver_gate_requests_total",
        "Requests that asked the gate, by backend and verdict (passed, held, waiting_page, unauthorized, "
        "ignored, error, asleep, full, and held ones that could not wake it).",
        {{"backend", key.first}, {"verdict", key.second}}, static_cast<double>(count));
  }
}

}  // namespace unshelver::web
