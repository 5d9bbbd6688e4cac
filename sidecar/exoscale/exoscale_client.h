// ExoscaleClient: signed, retried requests to Exoscale's API v2 in one zone, on the loop.
//
// Each attempt is signed afresh (EXO2-HMAC-SHA256, exoscale/exoscale.h) with an expiry ten
// minutes after the wall clock of that moment, so a retry never carries a stale signature.
// Network errors, 5xx (but 501) and 429 are retried with the sidecar's exponential back-off and
// jitter, honouring Retry-After, up to `attempts` tries: the same policy as OpenStack's session.
// The API key and secret go only into the Authorization header; no error text holds either.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "base/backoff.h"
#include "uv/http_client.h"
#include "uv/timer.h"

namespace unshelver::providers {

struct ExoscaleCredentials {
  std::string api_key;
  std::string api_secret;
};

struct ExoscaleClientSettings {
  std::string api_url;                        // the zone's base URL, ending in /v2
  std::chrono::milliseconds timeout{30'000};  // each single HTTP request
  int attempts = 3;                           // tries per request, the first included
  core::BackoffPolicy backoff;
  // Larger answers fail with an error (a zone's instance list may need more than one instance's).
  std::size_t max_response_bytes = std::size_t{4} * 1024 * 1024;
  // The wall clock the signatures' expiry is computed from; tests move it.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

class ExoscaleClient {
 public:
  ExoscaleClient(uv_loop_t* loop, io::HttpClient& client, ExoscaleCredentials credentials,
                 ExoscaleClientSettings settings);
  ~ExoscaleClient();
  ExoscaleClient(const ExoscaleClient&) = delete;
  ExoscaleClient& operator=(const ExoscaleClient&) = delete;

  using RequestId = std::uint64_t;
  // `path` follows the base URL ("/instance/ID:start"). A PUT with a body is sent as JSON. The
  // callback runs exactly once, on the loop and never inside this call, unless cancelled; it gets
  // the API's answer (any status) or the transport error of the last try.
  RequestId request(std::string method, std::string path, std::string body, io::ResponseCallback on_done);
  void cancel(RequestId id);
  // Cancels everything; no callback runs afterwards.
  void close();

  const std::string& api_url() const { return settings_.api_url; }

 private:
  struct Call {
    std::string method;
    std::string path;
    std::string body;
    io::ResponseCallback on_done;
    int attempt = 0;
    io::RequestId transfer = 0;
    std::unique_ptr<io::Timer> retry_timer;
  };
  void send(RequestId id);
  void on_response(RequestId id, io::ClientResponse response);

  uv_loop_t* loop_;
  io::HttpClient& client_;
  ExoscaleCredentials credentials_;
  ExoscaleClientSettings settings_;
  std::string signed_prefix_;  // the base URL's path ("/v2"), which the signature covers
  std::mt19937_64 random_;
  std::map<RequestId, Call> calls_;
  RequestId next_id_ = 1;
  bool closed_ = false;
};

}  // namespace unshelver::providers
