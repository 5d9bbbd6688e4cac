#include "exoscale/exoscale_client.h"

#include <spdlog/spdlog.h>

#include "base/url.h"
#include "exoscale/exoscale.h"

namespace unshelver::providers {

namespace {
std::string status_text(const io::ClientResponse& response) {
  if (!response.transport_ok()) return response.error;
  std::string message = core::exoscale::error_message_of(response.body);
  return "HTTP " + std::to_string(response.status) + (message.empty() ? "" : ": " + message);
}
}  // namespace

ExoscaleClient::ExoscaleClient(uv_loop_t* loop, io::HttpClient& client, ExoscaleCredentials credentials,
                               ExoscaleClientSettings settings)
    : loop_(loop),
      client_(client),
      credentials_(std::move(credentials)),
      settings_(std::move(settings)),
      random_(std::random_device{}()) {
  while (settings_.api_url.ends_with('/')) settings_.api_url.pop_back();
  if (auto url = core::parse_url(settings_.api_url)) signed_prefix_ = url->path;
}

ExoscaleClient::~ExoscaleClient() {
  close();
}

void ExoscaleClient::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, call] : calls_) {
    if (call.transfer != 0) client_.cancel(call.transfer);
  }
  calls_.clear();
}

ExoscaleClient::RequestId ExoscaleClient::request(std::string method, std::string path, std::string body,
                                                  io::ResponseCallback on_done) {
  const RequestId id = next_id_++;
  Call& call = calls_[id];
  call.method = std::move(method);
  call.path = std::move(path);
  call.body = std::move(body);
  call.on_done = std::move(on_done);
  // HttpClient never calls back inside send(), so the promise of no callback inside request() holds.
  send(id);
  return id;
}

void ExoscaleClient::cancel(RequestId id) {
  auto found = calls_.find(id);
  if (found == calls_.end()) return;
  if (found->second.transfer != 0) client_.cancel(found->second.transfer);
  calls_.erase(found);
}

void ExoscaleClient::send(RequestId id) {
  auto found = calls_.find(id);
  if (found == calls_.end()) return;
  Call& call = found->second;
  io::ClientRequest request;
  request.method = call.method;
  request.url = settings_.api_url + call.path;
  request.timeout = settings_.timeout;
  request.connect_timeout = std::min(settings_.timeout, std::chrono::milliseconds(10'000));
  request.body = call.body;
  request.max_response_bytes = settings_.max_response_bytes;
  const std::int64_t expires = core::exoscale::expiry_for(settings_.now());
  request.headers.emplace_back(
      "Authorization",
      core::exoscale::authorization(credentials_.api_key, credentials_.api_secret, call.method,
                                    signed_prefix_ + call.path, {}, call.body, expires));
  request.headers.emplace_back("Accept", "application/json");
  request.headers.emplace_back("User-Agent", "unshelver");
  if (!call.body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  ++call.attempt;
  call.transfer = client_.send(std::move(request), [this, id](io::ClientResponse response) {
    auto again = calls_.find(id);
    if (again == calls_.end()) return;
    again->second.transfer = 0;
    on_response(id, std::move(response));
  });
}

void ExoscaleClient::on_response(RequestId id, io::ClientResponse response) {
  Call& call = calls_.at(id);
  if (response.worth_retrying() && call.attempt < settings_.attempts) {
    std::optional<std::chrono::milliseconds> retry_after;
    if (const std::string* header = response.header("retry-after"))
      retry_after = core::parse_retry_after(*header);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const auto delay = core::backoff_delay(settings_.backoff, call.attempt, unit(random_), retry_after);
    spdlog::warn("exoscale: {} {} failed ({}); retry {} of {} in {} ms", call.method, call.path,
                 status_text(response), call.attempt, settings_.attempts - 1, delay.count());
    if (!call.retry_timer) call.retry_timer = std::make_unique<io::Timer>(loop_);
    call.retry_timer->start(delay, [this, id] { send(id); });
    return;
  }
  io::ResponseCallback on_done = std::move(call.on_done);
  calls_.erase(id);
  if (on_done && !closed_) on_done(std::move(response));
}

}  // namespace unshelver::providers
