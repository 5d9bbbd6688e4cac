#include "ha/etcd_client.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "base/url.h"

namespace unshelver::io {

namespace {

namespace etcd = core::etcd;

// An endpoint as errors and health show it: without a user:password@ part, should one be
// configured into the URL (base/url.h finds it).
std::string display_endpoint(const std::string& endpoint) {
  const std::optional<core::Url> url = core::parse_url(endpoint);
  if (!url || !url->userinfo) return endpoint;
  return url->scheme + "://" + url->authority + url->path;
}

// What an answer that is not a 2xx says: etcd's message when it sent one, else the status.
std::string failure_text(const ClientResponse& response) {
  if (!response.transport_ok()) return response.error;
  const std::string message = etcd::error_message(response.body);
  return "HTTP " + std::to_string(response.status) + (message.empty() ? "" : ": " + message);
}

std::string joined(const std::vector<std::string>& parts) {
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : "; ") + part;
  return text;
}

}  // namespace

EtcdClient::EtcdClient(HttpClient& http, EtcdSettings settings)
    : http_(http), settings_(std::move(settings)) {
  for (std::string& endpoint : settings_.endpoints) {
    while (endpoint.ends_with('/')) endpoint.pop_back();
  }
  if (!settings_.endpoints.empty()) health_.endpoint = display_endpoint(settings_.endpoints.front());
}

EtcdClient::~EtcdClient() {
  *alive_ = false;
  close();
}

void EtcdClient::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, call] : calls_) {
    if (call.transfer != 0) http_.cancel(call.transfer);
  }
  calls_.clear();
  waiting_for_token_.clear();
  token_.clear();
}

const EtcdHealth& EtcdClient::health() const {
  return health_;
}

namespace {

// Turns the body of a 2xx answer into the call's result with one of etcd_wire's readers, and
// records the outcome in the health.
template <typename T>
std::function<void(Result<std::string>)> parsed_by(Result<T> (*parse)(std::string_view), EtcdHealth& health,
                                                   std::function<void(Result<T>)> done) {
  return [parse, &health, done = std::move(done)](Result<std::string> body) {
    Result<T> result = body ? parse(*body) : Result<T>(body.error());
    if (result) {
      health.last_error.clear();
      health.last_success = std::chrono::system_clock::now();
    } else {
      ++health.failures;
      health.last_error = result.error().message;
    }
    if (done) done(std::move(result));
  };
}

Result<Ok> accept_any(std::string_view /*body*/) {
  return Ok{};
}

}  // namespace

void EtcdClient::grant(std::int64_t ttl_seconds, std::function<void(Result<etcd::Lease>)> done) {
  start("/v3/lease/grant", etcd::grant_body(ttl_seconds),
        parsed_by(&etcd::parse_grant, health_, std::move(done)));
}

void EtcdClient::keepalive(std::int64_t lease,
                           std::function<void(Result<std::optional<std::int64_t>>)> done) {
  start("/v3/lease/keepalive", etcd::keepalive_body(lease),
        parsed_by(&etcd::parse_keepalive, health_, std::move(done)));
}

void EtcdClient::revoke(std::int64_t lease, std::function<void(Status)> done) {
  // The answer holds only a header; a lease etcd does not know is a 404 with etcd's message.
  start("/v3/lease/revoke", etcd::revoke_body(lease), parsed_by(&accept_any, health_, std::move(done)));
}

void EtcdClient::txn(const etcd::Txn& txn, std::function<void(Result<etcd::TxnResult>)> done) {
  start("/v3/kv/txn", etcd::txn_body(txn), parsed_by(&etcd::parse_txn, health_, std::move(done)));
}

void EtcdClient::range(const etcd::Range& range, std::function<void(Result<etcd::RangeResult>)> done) {
  start("/v3/kv/range", etcd::range_body(range), parsed_by(&etcd::parse_range, health_, std::move(done)));
}

void EtcdClient::start(std::string path, std::string body, Finish finish) {
  if (closed_) return;
  ++health_.calls;
  const CallId id = next_id_++;
  Call& call = calls_[id];
  call.path = std::move(path);
  call.body = std::move(body);
  call.finish = std::move(finish);
  dispatch(id);
}

void EtcdClient::dispatch(CallId id) {
  Call& call = calls_.at(id);
  if (!settings_.username.empty() && !call.authenticate && token_.empty()) {
    waiting_for_token_.push_back(id);
    if (!authenticating_) authenticate();
    return;
  }
  send(id);
}

void EtcdClient::authenticate() {
  authenticating_ = true;
  const CallId id = next_id_++;
  Call& call = calls_[id];
  call.path = "/v3/auth/authenticate";
  call.body = etcd::authenticate_body(settings_.username, settings_.password);
  call.authenticate = true;
  call.finish = [this](Result<std::string> body) {
    on_token(body ? etcd::parse_authenticate(*body) : Result<std::string>(body.error()));
  };
  send(id);
}

void EtcdClient::on_token(Result<std::string> token) {
  authenticating_ = false;
  std::vector<CallId> waiting = std::move(waiting_for_token_);
  waiting_for_token_.clear();
  if (token) {
    token_ = std::move(*token);
    // HttpClient never calls back inside send(), so nothing here runs a user's callback.
    for (CallId id : waiting) {
      if (calls_.contains(id)) send(id);
    }
    return;
  }
  // The waiting calls fail with the reason; their callbacks may close the client meanwhile.
  const std::shared_ptr<bool> alive = alive_;
  for (CallId id : waiting) {
    if (!*alive || closed_) return;
    if (calls_.contains(id)) complete(id, token.error());
  }
}

void EtcdClient::send(CallId id) {
  Call& call = calls_.at(id);
  const std::size_t count = settings_.endpoints.size();
  // The first try goes to the endpoint that answered last; each further one to the next endpoint.
  call.endpoint_index =
      call.endpoints_tried == 0 || count == 0 ? current_ : (call.endpoint_index + 1) % count;
  ++call.endpoints_tried;
  ClientRequest request;
  request.method = "POST";
  // No endpoint: an empty URL, which HttpClient fails on the loop, so the call still completes there.
  request.url = count == 0 ? std::string() : settings_.endpoints[call.endpoint_index] + call.path;
  request.body = call.body;
  request.headers.emplace_back("Content-Type", "application/json");
  if (!call.authenticate && !token_.empty()) {
    // etcd's gateway reads the token from the Authorization header as is, without a scheme.
    request.headers.emplace_back("Authorization", token_);
    call.token_sent = token_;
  }
  request.timeout = settings_.request_timeout;
  request.connect_timeout = settings_.request_timeout;
  request.ca_file = settings_.ca_file;
  request.cert_file = settings_.cert_file;
  request.key_file = settings_.key_file;
  request.max_response_bytes = etcd::kMaxAnswerBytes;
  if (count != 0) health_.endpoint = display_endpoint(settings_.endpoints[call.endpoint_index]);
  call.transfer = http_.send(std::move(request), [this, id](ClientResponse response) {
    auto found = calls_.find(id);
    if (found == calls_.end()) return;
    found->second.transfer = 0;
    on_answer(id, std::move(response));
  });
}

void EtcdClient::on_answer(CallId id, ClientResponse response) {
  Call& call = calls_.at(id);
  const std::size_t count = settings_.endpoints.size();
  if (count == 0) {
    health_.reachable = false;
    complete(id, Error{"etcd: no endpoint is configured"});
    return;
  }
  const std::string endpoint = display_endpoint(settings_.endpoints[call.endpoint_index]);
  if (!response.transport_ok() || response.status >= 500) {
    // No answer, or a member that cannot serve (no leader, stopping): another member may.
    health_.reachable = false;
    call.failures.push_back(endpoint + ": " + failure_text(response));
    if (current_ == call.endpoint_index) current_ = (current_ + 1) % count;
    if (call.endpoints_tried < count) {
      spdlog::warn("etcd: {} {} failed ({}); trying {}", endpoint, call.path, failure_text(response),
                   display_endpoint(settings_.endpoints[(call.endpoint_index + 1) % count]));
      send(id);
      return;
    }
    complete(id, Error{"etcd " + call.path + ": no endpoint answered (" + joined(call.failures) + ")"});
    return;
  }
  health_.reachable = true;
  current_ = call.endpoint_index;
  if (response.is_2xx()) {
    complete(id, std::move(response.body));
    return;
  }
  // A 4xx is final, except a token etcd no longer accepts: authenticate again, then retry once.
  if (!call.authenticate && !settings_.username.empty() && !call.token_retried &&
      etcd::token_rejected(response.body)) {
    spdlog::info("etcd: {} refused the auth token ({}); authenticating again", endpoint,
                 failure_text(response));
    call.token_retried = true;
    call.endpoints_tried = 0;
    call.failures.clear();
    if (token_ == call.token_sent) token_.clear();
    dispatch(id);
    return;
  }
  complete(id, Error{"etcd " + call.path + ": " + endpoint + ": " + failure_text(response)});
}

void EtcdClient::complete(CallId id, Result<std::string> outcome) {
  auto found = calls_.find(id);
  if (found == calls_.end()) return;
  Finish finish = std::move(found->second.finish);
  calls_.erase(found);
  if (!closed_ && finish) finish(std::move(outcome));
}

}  // namespace unshelver::io
