// EtcdClient: etcd's v3 API over its JSON gateway, on the loop (HttpClient, libcurl), no gRPC.
//
// Each call is a POST of a body from ha/etcd_wire.h to `<endpoint>/v3/...`. The endpoint that
// answered last is tried first; a transport error or a 5xx (etcd has no leader, the member is
// stopping) moves to the next endpoint within the same call, each endpoint at most once. A 4xx
// is etcd's final word and fails the call with etcd's own message.
//
// With a username, the client first gets a token (POST /v3/auth/authenticate; calls made
// meanwhile wait for it) and sends it as `Authorization: <token>`. When etcd says the token is
// no longer good (expired simple tokens, a changed auth store), it authenticates again and
// retries the call once. The password and the token appear in no log line, error or health.
//
// Every call completes exactly once, on the loop and never inside the call, unless close()
// came first. Do not destroy the client inside one of its callbacks; close() is fine there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "ha/etcd_wire.h"
#include "uv/http_client.h"

namespace unshelver::io {

struct EtcdSettings {
  std::vector<std::string> endpoints;               // "http://127.0.0.1:2379", "https://..."
  std::chrono::milliseconds request_timeout{2000};  // each HTTP request, per endpoint
  std::string ca_file, cert_file, key_file;         // TLS to etcd (client cert optional)
  std::string username, password;                   // etcd auth (optional; password is a secret)
};

struct EtcdHealth {
  std::string endpoint;                   // the endpoint last used
  bool reachable = false;                 // the last call got an answer
  std::string last_error;                 // "" after a success; never contains a secret
  std::uint64_t calls = 0, failures = 0;  // calls made through the public API, and those that failed
  std::optional<std::chrono::system_clock::time_point> last_success;
};

class EtcdClient {
 public:
  EtcdClient(HttpClient& http, EtcdSettings settings);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  void grant(std::int64_t ttl_seconds, std::function<void(Result<core::etcd::Lease>)> done);
  // The remaining TTL, or nullopt when etcd no longer knows the lease (it expired or was revoked).
  void keepalive(std::int64_t lease, std::function<void(Result<std::optional<std::int64_t>>)> done);
  void revoke(std::int64_t lease, std::function<void(Status)> done);
  void txn(const core::etcd::Txn& txn, std::function<void(Result<core::etcd::TxnResult>)> done);
  void range(const core::etcd::Range& range, std::function<void(Result<core::etcd::RangeResult>)> done);
  void close();  // cancels everything; no callback runs afterwards
  const EtcdHealth& health() const;

 private:
  using CallId = std::uint64_t;
  // What a call hands on: the body of a 2xx answer, or what went wrong.
  using Finish = std::function<void(Result<std::string>)>;
  struct Call {
    std::string path;  // "/v3/kv/txn"
    std::string body;
    Finish finish;
    bool authenticate = false;   // the call that fetches the token: sent without one
    bool token_retried = false;  // authenticated again once already
    std::size_t endpoints_tried = 0;
    std::size_t endpoint_index = 0;     // the endpoint of the current (or last) try
    std::vector<std::string> failures;  // "endpoint: what happened", one per endpoint tried
    RequestId transfer = 0;
    std::string token_sent;
  };

  void start(std::string path, std::string body, Finish finish);
  void dispatch(CallId id);
  void send(CallId id);
  void on_answer(CallId id, ClientResponse response);
  void authenticate();
  void on_token(Result<std::string> token);
  void complete(CallId id, Result<std::string> outcome);

  HttpClient& http_;
  EtcdSettings settings_;
  EtcdHealth health_;
  std::map<CallId, Call> calls_;
  CallId next_id_ = 1;
  std::size_t current_ = 0;  // the endpoint tried first
  std::string token_;        // a secret: never logged
  bool authenticating_ = false;
  std::vector<CallId> waiting_for_token_;
  bool closed_ = false;
  // Cleared by the destructor, so that a loop over callbacks notices a close() or the end of
  // the client that one of them caused.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace unshelver::io
