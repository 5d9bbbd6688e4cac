#include "openstack/session.h"

#include <spdlog/spdlog.h>

namespace unshelver::providers {

namespace openstack = core::openstack;

namespace {
std::string status_text(const io::ClientResponse& response) {
  if (!response.transport_ok()) return response.error;
  std::string message = openstack::error_message_of(response.body);
  return "HTTP " + std::to_string(response.status) + (message.empty() ? "" : ": " + message);
}
}  // namespace

OpenStackSession::OpenStackSession(uv_loop_t* loop, io::HttpClient& client,
                                   openstack::Credentials credentials, SessionSettings settings)
    : loop_(loop),
      client_(client),
      credentials_(std::move(credentials)),
      settings_(settings),
      random_(std::random_device{}()),
      deferred_(std::make_unique<io::Timer>(loop)) {
  settings_.attempts = std::max(1, settings_.attempts);
}

OpenStackSession::~OpenStackSession() {
  close();
}

io::ClientRequest OpenStackSession::base_request() const {
  io::ClientRequest request;
  request.timeout = settings_.timeout;
  request.connect_timeout =
      std::min<std::chrono::milliseconds>(settings_.timeout, std::chrono::milliseconds(10'000));
  request.verify_tls = credentials_.verify;
  request.ca_file = credentials_.cacert;
  return request;
}

OpenStackSession::RequestId OpenStackSession::request(ApiRequest request, ApiCallback on_done) {
  const RequestId id = next_id_++;
  if (closed_) return id;
  Operation& operation = operations_[id];
  operation.request = std::move(request);
  operation.on_done = std::move(on_done);
  // With a valid token and a known endpoint the request goes out at once (HttpClient never calls
  // back inside send()); a wake reaches the cloud a loop iteration sooner.
  if (!openstack::token_needs_renewal(token_, std::chrono::system_clock::now()) &&
      url_for(operation.request)) {
    send(id);
    return id;
  }
  // Otherwise start on a later loop iteration, so that even an immediate failure (no such
  // service in the catalog) never calls back inside this call.
  defer([this, id] { start(id); });
  return id;
}

void OpenStackSession::defer(std::function<void()> call) {
  if (closed_) return;
  deferred_calls_.push_back(std::move(call));
  if (!deferred_->active()) {
    deferred_->start(std::chrono::milliseconds(0), [this] {
      auto calls = std::move(deferred_calls_);
      deferred_calls_.clear();
      for (auto& call : calls) {
        if (closed_) return;
        call();
      }
    });
  }
}

void OpenStackSession::cancel(RequestId id) {
  auto found = operations_.find(id);
  if (found == operations_.end()) return;
  if (found->second.transfer != 0) client_.cancel(found->second.transfer);
  std::erase(waiting_for_token_, id);
  operations_.erase(found);  // its retry timer closes itself
}

void OpenStackSession::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, operation] : operations_) {
    if (operation.transfer != 0) client_.cancel(operation.transfer);
  }
  operations_.clear();
  waiting_for_token_.clear();
  deferred_calls_.clear();
  if (auth_transfer_ != 0) client_.cancel(auth_transfer_);
  auth_transfer_ = 0;
  auth_retry_timer_.reset();
  deferred_.reset();
}

std::string OpenStackSession::endpoint(const std::string& service_type) const {
  if (token_.id.empty()) return "";
  auto url = openstack::select_endpoint(token_.catalog, service_type, credentials_.interface,
                                        credentials_.region_name);
  return url ? *url : "";
}

Result<std::string> OpenStackSession::url_for(const ApiRequest& request) const {
  if (request.path.starts_with("http://") || request.path.starts_with("https://")) return request.path;
  auto base = openstack::select_endpoint(token_.catalog, request.service_type, credentials_.interface,
                                         credentials_.region_name);
  if (!base) return base.error();
  return *base + request.path;
}

void OpenStackSession::start(RequestId id) {
  if (!operations_.contains(id)) return;
  const auto now = std::chrono::system_clock::now();
  if (openstack::token_needs_renewal(token_, now)) {
    waiting_for_token_.push_back(id);
    if (!authenticating_) authenticate();
    return;
  }
  send(id);
}

void OpenStackSession::send(RequestId id) {
  auto found = operations_.find(id);
  if (found == operations_.end()) return;
  Operation& operation = found->second;
  auto url = url_for(operation.request);
  if (!url) {
    fail(id, url.error().message);
    return;
  }
  io::ClientRequest request = base_request();
  request.method = operation.request.method;
  request.url = std::move(*url);
  request.headers = operation.request.headers;
  request.headers.emplace_back("X-Auth-Token", token_.id);
  request.headers.emplace_back("Accept", "application/json");
  request.headers.emplace_back("User-Agent", "unshelver");
  if (!operation.request.body.empty() || operation.request.method == "POST" ||
      operation.request.method == "PUT") {
    request.headers.emplace_back("Content-Type", operation.request.content_type);
  }
  request.body = operation.request.body;
  ++operation.attempt;
  ++stats_.requests;
  const std::string token_used = token_.id;
  operation.transfer = client_.send(std::move(request), [this, id, token_used](io::ClientResponse response) {
    auto again = operations_.find(id);
    if (again == operations_.end()) return;
    again->second.transfer = 0;
    // A 401 answered to an older token says nothing about the current one.
    if (response.transport_ok() && response.status == 401 && token_used == token_.id) token_.id.clear();
    on_response(id, std::move(response));
  });
}

void OpenStackSession::on_response(RequestId id, io::ClientResponse response) {
  Operation& operation = operations_.at(id);
  ++stats_.by_service_status[operation.request.service_type][response.transport_ok() ? response.status : 0];
  if (response.transport_ok() && response.status == 401 && !operation.reauthenticated) {
    // keystoneauth's allow_reauth: a service refused the token (expired or revoked); get a new
    // one and try once more.
    operation.reauthenticated = true;
    ++stats_.reauthentications;
    spdlog::info("openstack: {} answered 401; authenticating again and retrying once",
                 operation.request.service_type);
    start(id);
    return;
  }
  if (response.worth_retrying() && schedule_retry(id, response)) return;
  finish(id, std::move(response));
}

bool OpenStackSession::schedule_retry(RequestId id, const io::ClientResponse& response) {
  Operation& operation = operations_.at(id);
  if (operation.attempt >= settings_.attempts) return false;
  std::optional<std::chrono::milliseconds> retry_after;
  if (const std::string* header = response.header("retry-after"))
    retry_after = core::parse_retry_after(*header);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto delay = core::backoff_delay(settings_.backoff, operation.attempt, unit(random_), retry_after);
  ++stats_.retries;
  spdlog::warn("openstack: {} {} failed ({}); retry {} of {} in {} ms", operation.request.method,
               operation.request.service_type, status_text(response), operation.attempt,
               settings_.attempts - 1, delay.count());
  if (!operation.retry_timer) operation.retry_timer = std::make_unique<io::Timer>(loop_);
  operation.retry_timer->start(delay, [this, id] { start(id); });
  return true;
}

void OpenStackSession::finish(RequestId id, io::ClientResponse response) {
  auto found = operations_.find(id);
  if (found == operations_.end()) return;
  ApiCallback on_done = std::move(found->second.on_done);
  operations_.erase(found);
  if (on_done) on_done(std::move(response));
}

void OpenStackSession::fail(RequestId id, std::string error) {
  io::ClientResponse response;
  response.error = std::move(error);
  finish(id, std::move(response));
}

void OpenStackSession::authenticate() {
  authenticating_ = true;
  ++auth_attempt_;
  io::ClientRequest request = base_request();
  request.method = "POST";
  request.url = openstack::token_url(credentials_.auth_url);
  request.headers = {
      {"Content-Type", "application/json"}, {"Accept", "application/json"}, {"User-Agent", "unshelver"}};
  request.body = openstack::auth_request_body(credentials_);
  auth_transfer_ = client_.send(std::move(request), [this](const io::ClientResponse& response) {
    auth_transfer_ = 0;
    on_auth_response(response);
  });
}

void OpenStackSession::on_auth_response(const io::ClientResponse& response) {
  ++stats_.by_service_status["identity"][response.transport_ok() ? response.status : 0];
  if (response.transport_ok() && response.status == 201) {
    const std::string* subject = response.header("x-subject-token");
    auto token = openstack::parse_token_response(subject ? *subject : "", response.body);
    if (token) {
      token_ = std::move(*token);
      ++stats_.authentications;
      auth_error_.clear();
      authenticating_ = false;
      auth_attempt_ = 0;
      release_waiters();
      return;
    }
    auth_error_ = "Keystone: " + token.error().message;
  } else if (response.worth_retrying() && auth_attempt_ < settings_.attempts) {
    std::optional<std::chrono::milliseconds> retry_after;
    if (const std::string* header = response.header("retry-after"))
      retry_after = core::parse_retry_after(*header);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const auto delay = core::backoff_delay(settings_.backoff, auth_attempt_, unit(random_), retry_after);
    spdlog::warn("openstack: authentication failed ({}); retry in {} ms", status_text(response),
                 delay.count());
    if (!auth_retry_timer_) auth_retry_timer_ = std::make_unique<io::Timer>(loop_);
    auth_retry_timer_->start(delay, [this] { authenticate(); });
    return;
  } else if (response.transport_ok() && response.status == 401) {
    auth_error_ =
        "Keystone refused the credentials from " + credentials_.source + " (" + status_text(response) + ")";
  } else {
    auth_error_ = "Keystone authentication failed at " + openstack::token_url(credentials_.auth_url) + ": " +
                  status_text(response);
  }
  ++stats_.authentication_failures;
  authenticating_ = false;
  auth_attempt_ = 0;
  spdlog::error("openstack: {}", auth_error_);
  // Keystone's status travels with the error, so callers can tell refused credentials (4xx,
  // definitive) from an unreachable Keystone.
  const long keystone_status = response.transport_ok() ? response.status : 0;
  auto waiting = std::move(waiting_for_token_);
  waiting_for_token_.clear();
  for (RequestId id : waiting) {
    if (closed_) return;
    io::ClientResponse failure;
    failure.error = auth_error_;
    failure.status = keystone_status;
    finish(id, std::move(failure));
  }
}

void OpenStackSession::release_waiters() {
  auto waiting = std::move(waiting_for_token_);
  waiting_for_token_.clear();
  for (RequestId id : waiting) {
    if (closed_) return;
    send(id);
  }
}

std::string response_status_label(long status) {
  return status == 0 ? "no_answer" : std::to_string(status);
}

void OpenStackSession::write_status(nlohmann::json& document) const {
  nlohmann::json by_service = nlohmann::json::object();
  for (const auto& [service, statuses] : stats_.by_service_status) {
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [status, count] : statuses) counts[response_status_label(status)] = count;
    by_service[service] = std::move(counts);
  }
  document["openstack"] = nlohmann::json{{"auth_url", credentials_.auth_url},
                                         {"region", credentials_.region_name},
                                         {"auth_error", auth_error_},
                                         {"authentications", stats_.authentications},
                                         {"authentication_failures", stats_.authentication_failures},
                                         {"reauthentications", stats_.reauthentications},
                                         {"requests", stats_.requests},
                                         {"retries", stats_.retries},
                                         {"responses", std::move(by_service)}};
}

void OpenStackSession::write_metrics(core::MetricsPage& page) const {
  for (const auto& [service, statuses] : stats_.by_service_status) {
    for (const auto& [status, count] : statuses) {
      page.counter(
          "unshelver_cloud_api_requests_total",
          "OpenStack API requests, by service and HTTP status (no_answer: timeout or connection error).",
          {{"service", service}, {"status", response_status_label(status)}}, static_cast<double>(count));
    }
  }
  for (auto [outcome, count] :
       {std::pair{"ok", stats_.authentications}, std::pair{"failed", stats_.authentication_failures}}) {
    page.counter("unshelver_cloud_authentications_total", "Keystone token requests, by outcome.",
                 {{"outcome", outcome}}, static_cast<double>(count));
  }
}

}  // namespace unshelver::providers
