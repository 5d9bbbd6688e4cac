// HttpServer: an HTTP/1.1 server on one libuv loop, parsing with llhttp.
//
// Flow: accept → read → llhttp_execute → on message complete the parser pauses (HPE_PAUSED), the
// request goes to the handler, and reading stops until the handler has answered. Answers are thus
// written in request order, which makes pipelining safe, and a slow handler (one that answers
// later through its Responder) holds back only its own connection.
//
// Limits on untrusted input: URL bytes (414), header bytes and count (431), body bytes (413),
// malformed requests (400), unsupported transfer codings (501); each is answered and the connection
// closed. A header timeout bounds the time from a request's first byte to its complete headers
// (slowloris), a body timeout the time from there to the body's last byte (an absolute deadline,
// not restarted by each byte), and an idle timeout closes keep-alive connections that send nothing.
// A connection whose unsent answers exceed kMaxQueuedOutputBytes stops parsing until they drain,
// so a client that pipelines requests and never reads cannot make the server buffer answers
// without bound. Connections beyond the total cap or the per-client cap are closed at once;
// the total cap defaults to the descriptor limit minus a reserve (uv/descriptor_limit.h).
//
// shutdown() stops accepting, closes idle connections, lets requests in flight finish (up to the
// grace period), then closes every handle and calls its callback; afterwards the loop holds none
// of this server's handles.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "uv/http_types.h"

namespace unshelver::io {

class HttpConnection;

// The body of a streamed answer (Responder::stream), written piece by piece. Cheap to copy;
// every call does nothing once the connection has gone.
class ResponseStream {
 public:
  ResponseStream() = default;
  explicit ResponseStream(std::weak_ptr<HttpConnection> connection) : connection_(std::move(connection)) {}
  // Queues `data` for the client; false when the connection has gone or is closing (end()), and
  // then nothing is queued. Writes are never refused for being many: the writer keeps to its own
  // bound with unsent_bytes(), the output backpressure of a streamed answer.
  bool write(std::string data) const;
  // Bytes queued and not yet taken by the kernel (0 once gone).
  std::size_t unsent_bytes() const;
  // The body is complete: the connection closes once the queued bytes are out.
  void end() const;
  // Closes the connection at once, dropping what is unsent (a reader too slow to keep).
  void cut() const;
  bool alive() const;

 private:
  std::weak_ptr<HttpConnection> connection_;
};

// Answers one request. Cheap to copy; the handler may keep it and answer later. Answering after
// the connection has gone (client left, server shut down) does nothing. Answering twice is a bug.
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::weak_ptr<HttpConnection> connection) : connection_(std::move(connection)) {}
  // The server numbers the requests of a connection, so that a Responder kept past its answer
  // cannot answer a later request on the same connection (0 answers whichever is in flight).
  Responder(std::weak_ptr<HttpConnection> connection, std::uint64_t request_id)
      : connection_(std::move(connection)), request_id_(request_id) {}
  void respond(HttpResponse response) const;
  // False once the client has gone; a handler holding a request may then drop it.
  bool alive() const { return !connection_.expired(); }
  // Runs `callback` once, on the loop, when the connection closes before this request was
  // answered (the client left, or the server shut down), so that a handler holding the request
  // forgets it at once. Answering the request cancels it. Does nothing for a connection that has
  // gone already or a request that was answered; a second call replaces the first callback.
  void on_gone(std::function<void()> callback) const;
  // Closes the connection without an answer, if this request is still unanswered: a proxy in
  // front (Caddy's forward_auth with lb_try_duration) then retries it elsewhere or later, which
  // an answer would prevent. For held requests when Unshelver stops.
  void drop() const;
  // Answers with `head`'s status and headers and a body that follows through the returned stream
  // (`head`'s own body, if any, is its first piece). The body ends when the connection closes
  // (RFC 9112 §6.3: no Content-Length, `Connection: close`), so the connection serves no further
  // request. While it streams, no timeout applies, the client's further bytes are discarded, and
  // the on_gone callback (set before) runs when the connection closes for any reason: the client
  // left, the stream was cut, or the server shut down (which ends the stream after its queued
  // bytes). A request already answered gets a stream that is not alive.
  ResponseStream stream(HttpResponse head) const;

 private:
  std::weak_ptr<HttpConnection> connection_;
  std::uint64_t request_id_ = 0;
};

using HttpHandler = std::function<void(const HttpRequest& request, Responder responder)>;

struct HttpServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t requests = 0;
  std::uint64_t rejected_bad_request = 0;  // 400, 417, 501
  std::uint64_t rejected_too_large = 0;    // 413, 414, 431
  std::uint64_t header_timeouts = 0;
  std::uint64_t body_timeouts = 0;
  std::uint64_t idle_timeouts = 0;
  std::uint64_t open_connections = 0;
  // Connections closed at once because the total or the per-client cap was reached.
  std::uint64_t connections_refused = 0;
  // Accepts that failed in libuv (EMFILE, ENFILE, ...). libuv closes the connections it could not
  // hand over itself; a burst that its reserve-descriptor trick drains entirely is not reported.
  std::uint64_t accept_errors = 0;
  // Times a connection stopped parsing because too many of its answers were still unsent, and the
  // most unsent answer bytes any connection had queued.
  std::uint64_t read_pauses_for_output = 0;
  std::uint64_t max_output_queue_bytes = 0;
};

class HttpServer {
 public:
  HttpServer(uv_loop_t* loop, core::HttpLimits limits, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on host:port (IPv4 or IPv6 literal; port 0 picks a free port).
  Status listen(const std::string& host, int port);
  // Handing the listening socket to the next server in the same process (a configuration reload):
  // duplicate_listener() returns a duplicate of the listening socket (close-on-exec), which keeps
  // the socket and the connections queued in its backlog alive after this server closes its own;
  // adopt() makes a new server listen on such a descriptor (and owns it from then on, even on
  // failure). `host` is what host() reports.
  Result<int> duplicate_listener() const;
  Status adopt(int listening_fd, const std::string& host);
  // The same for the Unix socket of listen_unix(). The duplicate also takes over the socket's file:
  // this server no longer removes it when it closes; the server that adopts it does, in turn.
  Result<int> duplicate_unix_listener();
  Status adopt_unix(int listening_fd, const std::string& path);
  // Also listens on a Unix socket at `path`, for the proxy in front (HttpRequest::via_proxy_socket),
  // with permission bits `mode` (exactly, not through the umask) and the group of its directory.
  // A socket left at `path` by an earlier run is replaced; any other file there is an error. The
  // path is unlinked when the server shuts down.
  Status listen_unix(const std::string& path, int mode);
  // The port actually bound (useful after listen(..., 0)).
  int port() const;
  const std::string& host() const;

  void shutdown(std::function<void()> on_closed);
  const HttpServerStats& stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace unshelver::io
