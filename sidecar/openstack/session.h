// OpenStackSession: authenticated, retried requests to OpenStack services, on the loop.
//
// It does what keystoneauth's Session does for the Python tools (contract §1):
// - one token, obtained from Keystone when first needed and renewed 120 s before it expires; while
//   a token is being obtained, further requests wait for it (one authentication in flight);
// - the service's URL from the token's catalog, by type, interface and region;
// - on a 401 from a service, the token is dropped, a new one obtained, and the request retried
//   once;
// - network errors, 5xx and 429 are retried with exponential back-off and jitter (honouring
//   Retry-After), up to `attempts` tries. A retried POST may reach the service twice when only the
//   answer was lost; Unshelver's callers treat the resulting 409 as "observe again".
// Every request has a timeout. No secret (password, application credential secret, token)
// appears in any error text.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/backoff.h"
#include "base/prometheus.h"
#include "openstack/keystone.h"
#include "uv/http_client.h"
#include "uv/timer.h"

namespace unshelver::providers {

struct SessionSettings {
  std::chrono::milliseconds timeout{30'000};  // each single HTTP request
  int attempts = 3;                           // tries per request, the first included
  core::BackoffPolicy backoff;
};

struct ApiRequest {
  std::string service_type;  // catalog type: "compute", "dns", "object-store"
  std::string method = "GET";
  std::string path;        // appended to the service's endpoint URL; or a full http(s) URL
  io::HeaderList headers;  // X-Auth-Token is added by the session
  std::string body;
  std::string content_type = "application/json";  // sent with a body
};

// The service's answer (any status), or a transport/authentication failure in `error`.
using ApiCallback = std::function<void(io::ClientResponse response)>;

// Counters, for /api/status and the metrics.
struct SessionStats {
  std::uint64_t authentications = 0;
  std::uint64_t authentication_failures = 0;
  std::uint64_t requests = 0;  // HTTP requests sent to services (retries included)
  std::uint64_t retries = 0;
  std::uint64_t reauthentications = 0;                                     // after a service's 401
  std::map<std::string, std::map<long, std::uint64_t>> by_service_status;  // status 0: no answer
};

// How a response status is labelled in the status document and the metrics: the HTTP status, or
// "no_answer" for 0 (a timeout or a connection error, as SessionStats counts them).
std::string response_status_label(long status);

class OpenStackSession {
 public:
  OpenStackSession(uv_loop_t* loop, io::HttpClient& client, core::openstack::Credentials credentials,
                   SessionSettings settings);
  ~OpenStackSession();
  OpenStackSession(const OpenStackSession&) = delete;
  OpenStackSession& operator=(const OpenStackSession&) = delete;

  using RequestId = std::uint64_t;
  // The callback runs exactly once, on the loop and never inside this call, unless cancelled.
  // (Callers rely on that: they learn the id only when this returns.)
  RequestId request(ApiRequest request, ApiCallback on_done);
  void cancel(RequestId id);
  // Runs `call` on a later loop iteration, never inside this call (for callers that answer from
  // what they hold and must keep the same promise as request()); dropped by close().
  void defer(std::function<void()> call);
  // Cancels everything; no callback runs afterwards.
  void close();

  // The endpoint of a service from the current token's catalog ("" before the first token).
  std::string endpoint(const std::string& service_type) const;
  const SessionStats& stats() const { return stats_; }
  // The last authentication failure ("" once a token was obtained again).
  const std::string& auth_error() const { return auth_error_; }
  const core::openstack::Credentials& credentials() const { return credentials_; }
  // Sets the status document's "openstack"; adds the API's metrics.
  void write_status(nlohmann::json& document) const;
  void write_metrics(core::MetricsPage& page) const;

 private:
  struct Operation {
    ApiRequest request;
    ApiCallback on_done;
    int attempt = 0;
    bool reauthenticated = false;
    io::RequestId transfer = 0;
    std::unique_ptr<io::Timer> retry_timer;
  };

  // The request's full URL: its path on the service's endpoint from the catalog.
  Result<std::string> url_for(const ApiRequest& request) const;
  void start(RequestId id);
  void send(RequestId id);
  void on_response(RequestId id, io::ClientResponse response);
  bool schedule_retry(RequestId id, const io::ClientResponse& response);
  void finish(RequestId id, io::ClientResponse response);
  void fail(RequestId id, std::string error);

  void authenticate();
  void on_auth_response(const io::ClientResponse& response);
  void release_waiters();
  io::ClientRequest base_request() const;

  uv_loop_t* loop_;
  io::HttpClient& client_;
  core::openstack::Credentials credentials_;
  SessionSettings settings_;
  std::mt19937_64 random_;

  std::map<RequestId, Operation> operations_;
  RequestId next_id_ = 1;
  bool closed_ = false;

  core::openstack::Token token_;
  bool authenticating_ = false;
  int auth_attempt_ = 0;
  io::RequestId auth_transfer_ = 0;
  std::unique_ptr<io::Timer> auth_retry_timer_;
  std::vector<RequestId> waiting_for_token_;
  std::string auth_error_;
  SessionStats stats_;
  std::unique_ptr<io::Timer> deferred_;  // runs callbacks on a later iteration
  std::vector<std::function<void()>> deferred_calls_;
};

}  // namespace unshelver::providers
