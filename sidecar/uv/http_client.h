// HttpClient: asynchronous HTTP requests on libcurl's multi interface, driven by the libuv loop.
//
// The integration follows curl's docs/examples/multi-uv.c (see STYLE.md §4) with its known traps
// avoided: one uv_poll_t per socket that curl asks about, closed at once on CURL_POLL_REMOVE; one
// uv_timer_t for curl's timeout (clamped to at least 1 ms); curl_multi_info_read drained after
// every socket action, also when no transfer is running any more. DNS resolution uses libcurl's
// threaded resolver (Debian's libcurl is built with AsynchDNS), so nothing blocks the loop.
//
// Every request has a timeout. A completion callback runs exactly once, on the loop, unless the
// request was cancelled first; after close() none runs.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "uv/http_types.h"

namespace unshelver::io {

struct ClientRequest {
  std::string method = "GET";
  std::string url;
  HeaderList headers;
  std::string body;
  std::chrono::milliseconds timeout{10'000};  // the whole transfer
  std::chrono::milliseconds connect_timeout{5'000};
  bool verify_tls = true;
  std::string ca_file;  // empty: the system's CA bundle
  // A client certificate and its key (PEM files), for servers that ask for one (etcd with
  // --client-cert-auth). Used only when non-empty.
  std::string cert_file;
  std::string key_file;
  std::size_t max_response_bytes = std::size_t{4} * 1024 * 1024;  // larger answers fail with an error
  // Non-empty: connect through this Unix socket (CURLOPT_UNIX_SOCKET_PATH) instead of to the URL's
  // host and port. The URL still gives the scheme, the target and the default Host header (a
  // header in `headers` replaces it; an empty value sends an empty Host). Proxies do not apply.
  std::string unix_socket;
};

struct ClientResponse {
  // Empty when a response arrived (of any status). Otherwise what went wrong at the transport
  // level ("Connection refused", "Timeout was reached", ...). Never contains the URL's query or
  // any header value, so it is safe to log.
  std::string error;
  long status = 0;
  HeaderList headers;  // names lower-cased
  std::string body;
  std::chrono::milliseconds elapsed{0};

  bool transport_ok() const { return error.empty(); }
  bool is_2xx() const { return transport_ok() && status >= 200 && status < 300; }
  // No answer at all, 429, or a 5xx other than 501 (which another try will not change): what an
  // API client tries again after a back-off (the OpenStack session, the Exoscale client).
  bool worth_retrying() const { return !transport_ok() || status == 429 || (status >= 500 && status != 501); }
  const std::string* header(std::string_view name) const { return find_header(headers, name); }
};

using RequestId = std::uint64_t;
using ResponseCallback = std::function<void(ClientResponse response)>;

class HttpClient {
 public:
  explicit HttpClient(uv_loop_t* loop);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  RequestId send(ClientRequest request, ResponseCallback on_done);
  // The callback of a cancelled request never runs. Unknown or finished ids are ignored.
  void cancel(RequestId id);
  // Cancels everything and releases curl and its handles; the loop must run on until the close
  // callbacks have fired (uv_run returns when nothing is left).
  void close();
  std::size_t in_flight() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace unshelver::io
