// HttpServer: the implementation of http_server.h.
//
// One HttpConnection per accepted socket. It owns, in its own object, a uv_tcp_t, one uv_timer_t
// (idle, header, body and close timeouts share it, because a connection is only ever in one
// phase), an llhttp parser and the request being parsed. The server keeps each connection in a
// list of shared_ptr; the connection also keeps itself alive (`self_`) until both of its handles
// have run their close callback, because libuv may touch the handle memory until then
// (docs/src/handle.rst). Responders hold weak_ptrs, so answering after the connection is gone is
// a no-op.
//
// Life of a request:
//   read → llhttp_execute → on_message_begin (arm the header timer) → on_url / on_header_field /
//   on_header_value (accumulate; enforce the limits with HPE_USER) → on_headers_complete (fill in
//   the request, check Content-Length and Expect) → on_body → on_message_complete, which returns
//   HPE_PAUSED. llhttp_execute then returns HPE_PAUSED and llhttp_get_error_pos() tells where the
//   message ended. The request goes to the handler. If the handler answered at once, parsing
//   resumes with the rest of the same buffer (pipelining without a copy); if it answers later, the
//   unparsed rest is copied into `pending_` and parsed once the answer has been queued. Answers are
//   therefore written in request order.
//
// While a request is in flight the connection does not parse, but it keeps reading (into
// `pending_`, up to kMaxPendingBytes, after which it stops reading): that is how it notices a
// client that leaves while its handler is still working, like Go's net/http does, so that the
// connection is closed and Responder::alive() turns false. A client that half-closes its side
// after a request whose answer is still pending is treated as gone.
//
// Closing: errors, idle and forced closes call close_now() (uv_close on both handles). Answers
// that end the connection (Connection: close, HTTP/1.0, rejections, 408) go through
// close_after_writes(): parsing stops, further input is discarded, and once every queued write
// has completed the write side is shut down (FIN) and the connection waits for the client's EOF
// (bounded by kCloseTimeout). Closing straight away could make the kernel answer unread client
// bytes with a RST that destroys our answer before the client has read it (the "lingering close"
// problem that nginx's lingering_close setting addresses).
#include "uv/http_server.h"

#include <fcntl.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <list>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/text.h"
#include "uv/descriptor_limit.h"

namespace unshelver::io {

namespace {

// The backlog nginx uses on Linux; the kernel caps it at net.core.somaxconn.
constexpr int kListenBacklog = 511;
// Every connection reads into the server's one buffer: libuv calls alloc_cb and then read_cb for
// one stream at a time on the loop thread, and read_cb consumes or copies the bytes before it
// returns, so one buffer serves all connections.
constexpr std::size_t kReadBufferBytes = std::size_t{64} * 1024;
// Bytes a client may send ahead while its previous request is still being answered.
constexpr std::size_t kMaxPendingBytes = std::size_t{64} * 1024;
// A connection stops parsing while more answer bytes than this are unsent, and resumes once they
// drain: a client that pipelines requests and never reads its answers otherwise makes the server
// queue answers without bound. It is a bound on what is queued before parsing stops, so one answer
// larger than this is still sent whole.
constexpr std::size_t kMaxQueuedOutputBytes = std::size_t{256} * 1024;
// Refused connections and failed accepts are logged at most once per this interval, with a count.
constexpr std::uint64_t kRefusalLogIntervalMs = 10'000;
// A connection keeps one finished write request for reuse, unless its buffer grew beyond this.
constexpr std::size_t kMaxKeptWriteCapacity = std::size_t{64} * 1024;
// A request body buffer above this capacity is released rather than kept for the next request.
constexpr std::size_t kMaxKeptBodyCapacity = std::size_t{16} * 1024;
// How long a closing connection waits for its last answer to be written and for the client's EOF.
constexpr core::Millis kCloseTimeout{5'000};
// At shutdown, how long a connection accepted just before may take to send its first request: a
// client sends it right after connecting, so it is usually in the socket already, but unread.
// Short, because a browser's speculative connection may never send one.
constexpr core::Millis kFirstRequestWait{50};

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// reason_phrase() covers what handlers send; these are the two that only the server sends.
std::string_view status_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 417: return "Expectation Failed";
    default: return reason_phrase(status);
  }
}

// Headers the server writes itself (http_types.h: "Content-Length, Date and Connection are added
// by the server"); a handler's copies are dropped so that none is sent twice. Transfer-Encoding is
// dropped because the body is always sent with a Content-Length.
bool is_server_managed_header(std::string_view name) {
  return equals_ignore_case(name, "Content-Length") || equals_ignore_case(name, "Date") ||
         equals_ignore_case(name, "Connection") || equals_ignore_case(name, "Transfer-Encoding");
}

bool has_line_break(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

void append_number(std::string& out, std::uint64_t value) {
  char digits[24];
  auto [end, error] = std::to_chars(digits, digits + sizeof(digits), value);
  (void)error;  // 24 characters hold any uint64_t.
  out.append(digits, end);
}

// A warning that may repeat with every connection attempt is logged at most once per
// kRefusalLogIntervalMs, with the number of occurrences since the last time it was logged.
struct ThrottledWarning {
  std::uint64_t last_logged_ms = 0;
  std::uint64_t since_logged = 0;

  // Counts one occurrence at `now_ms`; true when it is to be logged (then since_logged holds the
  // count to report, and the caller calls logged()).
  bool count(std::uint64_t now_ms) {
    ++since_logged;
    return last_logged_ms == 0 || now_ms - last_logged_ms >= kRefusalLogIntervalMs;
  }
  void logged(std::uint64_t now_ms) {
    last_logged_ms = now_ms;
    since_logged = 0;
  }
};

std::uint64_t to_uv_timeout(core::Millis delay) {
  return delay.count() < 0 ? 0 : static_cast<std::uint64_t>(delay.count());
}

}  // namespace

// --- Declarations ---------------------------------------------------------------------------------

namespace {

struct ListenerBlock {
  uv_tcp_t handle;                    // First member: the close callback casts the handle back.
  HttpServer::Impl* owner = nullptr;  // Null once the server is gone.
};

// The Unix socket of listen_unix(), and its path, which is unlinked when the listener closes.
struct UnixListenerBlock {
  uv_pipe_t handle;  // First member, as above.
  HttpServer::Impl* owner = nullptr;
  std::string path;
};

struct GraceTimerBlock {
  uv_timer_t handle;  // First member, as above.
  HttpServer::Impl* owner = nullptr;
};

// One response on its way to the socket: the uv_write_t and the bytes it points at live together
// and are released in the write callback (or at the call site if uv_write fails).
struct WriteRequest {
  uv_write_t request;
  HttpConnection* connection = nullptr;
  std::string data;
  // A large answer's body, moved here from the answer and sent after `data` (the head) as a
  // second buffer of the same write: a large body is not copied once more.
  std::string body;
  // The answer's shared slices (HttpResponse::shared_body), sent after `body`: kept here until the
  // write callback, since libuv writes from the caller's memory (docs/src/stream.rst, uv_write:
  // the buffers' memory must stay valid until the callback).
  core::SharedText shared;
  // The uv_buf_t array given to uv_write, kept until the callback like the bytes (libuv writes
  // them with writev, at most IOV_MAX at a time, and resumes after partial writes itself), and
  // reused for the next answer.
  std::vector<uv_buf_t> buffers;
};

// Bodies from this size on are sent from their own buffer (WriteRequest::body).
constexpr std::size_t kSeparateBodyBytes = std::size_t{16} * 1024;
// A spare write request keeps a buffer array of at most this many entries for the next answer.
constexpr std::size_t kKeptBufferCount = 64;

}  // namespace

struct HttpServer::Impl {
  Impl(uv_loop_t* loop, core::HttpLimits limits, HttpHandler handler);
  ~Impl();

  Status listen(const std::string& host, int port);
  Result<int> duplicate_listener() const;
  Status adopt(int listening_fd, const std::string& host);
  Result<int> duplicate_unix_listener();
  Status adopt_unix(int listening_fd, const std::string& path);
  // Listens on a bound Unix socket `fd` at `path` (owned from here on, even on failure).
  Status open_unix_listener(int fd, const std::string& path, std::string_view how);
  Status listen_unix(const std::string& path, int mode);
  void shutdown(std::function<void()> on_closed);
  void on_connection(int status);
  void on_connection_closed(HttpConnection* connection);
  void on_listener_closed();
  void on_grace_timer();
  void on_grace_timer_closed();
  void maybe_finish_shutdown();
  // The IMF-fixdate of the current second (RFC 9110 §5.6.7), formatted once per second.
  std::string_view date_header();
  // Counts a new connection from `address` against the caps; false (and counted as refused) when
  // the connection must be closed at once. An admitted connection is released by release_client().
  bool admit_client(const std::string& address);
  void release_client(const std::string& address);

  static void on_uv_connection(uv_stream_t* stream, int status) noexcept;
  static void on_uv_listener_closed(uv_handle_t* handle) noexcept;
  static void on_uv_unix_connection(uv_stream_t* stream, int status) noexcept;
  static void on_uv_unix_listener_closed(uv_handle_t* handle) noexcept;
  static void close_unix_listener(UnixListenerBlock* block);
  static void on_uv_grace_timer(uv_timer_t* handle) noexcept;
  static void on_uv_grace_timer_closed(uv_handle_t* handle) noexcept;

  uv_loop_t* loop;
  core::HttpLimits limits;
  HttpHandler handler;
  HttpServerStats stats;
  std::string host;
  int port = 0;
  // The effective total cap (HttpLimits::max_connections, or derived from the descriptor limit).
  std::size_t max_connections;
  std::unordered_map<std::string, std::size_t> connections_per_client;
  // Connections counted against the total cap (admitted and not yet closed).
  std::size_t admitted_connections = 0;
  ThrottledWarning refusal_warning;  // On uv_now's clock.
  ThrottledWarning accept_error_warning;

  ListenerBlock* listener = nullptr;           // Null before listen() and after its close callback.
  UnixListenerBlock* unix_listener = nullptr;  // The same for listen_unix().
  GraceTimerBlock* grace_timer = nullptr;
  std::list<std::shared_ptr<HttpConnection>> connections;
  std::unique_ptr<char[]> read_buffer;

  bool shutting_down = false;
  std::function<void()> on_closed;

  std::time_t date_second = -1;
  char date[40] = {};
  std::size_t date_length = 0;
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  explicit HttpConnection(HttpServer::Impl* server) : server_(server) {}
  ~HttpConnection() = default;
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Accepts the pending connection on `listener` and starts reading. On failure the connection
  // closes itself and returns false; its close callback still unregisters it from the server.
  bool start(uv_stream_t* listener);
  // Queues the answer to request `request_id` (0: whichever request is in flight). It only reads
  // `response`: an rvalue reference, so that Responder hands its own over without another move.
  void respond(std::uint64_t request_id, HttpResponse&& response);
  // A streamed answer (Responder::stream): the head now, the body in pieces, the end by closing.
  bool start_stream(std::uint64_t request_id, HttpResponse&& head);
  bool stream_write(std::string&& data);
  void end_stream();
  bool streaming() const { return streaming_ && !closed_ && !draining_; }
  std::size_t unsent_bytes() { return closed_ ? 0 : uv_stream_get_write_queue_size(stream()); }
  void set_on_gone(std::uint64_t request_id, std::function<void()> callback);
  void drop(std::uint64_t request_id);
  // Server shutdown: close now unless a request is in flight or an answer is being written.
  void begin_shutdown();
  // Closes both handles; the object is released by the last close callback.
  void close_now();
  // The server is being destroyed: never call back into it.
  void detach() { server_ = nullptr; }

  std::list<std::shared_ptr<HttpConnection>>::iterator position;

  // llhttp callbacks (llhttp README: data callbacks may fire several times for one field).
  int on_message_begin();
  int on_url(const char* at, std::size_t length);
  int on_header_field(const char* at, std::size_t length);
  int on_header_field_complete();
  int on_header_value(const char* at, std::size_t length);
  int on_header_value_complete();
  int on_headers_complete();
  int on_body(const char* at, std::size_t length);
  int on_message_complete();
  // An exception escaped one of the above: stop the parser and answer 500.
  int on_callback_exception();

  // libuv callbacks.
  static void on_uv_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buffer) noexcept;
  static void on_uv_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer) noexcept;
  static void on_uv_write(uv_write_t* request, int status) noexcept;
  static void on_uv_shutdown(uv_shutdown_t* request, int status) noexcept;
  static void on_uv_timer(uv_timer_t* handle) noexcept;
  static void on_uv_close(uv_handle_t* handle) noexcept;

 private:
  // What the connection waits for; it decides what the one timer means when it fires.
  enum class Phase {
    kIdle,      // Between requests: the idle timeout runs.
    kHeaders,   // From a request's first byte to the end of its headers: the header timeout runs.
    kBody,      // Reading a body: the body timeout runs, armed once when the headers end.
    kInFlight,  // The handler has the request: no timer.
    kDraining,  // The last answer is queued and the connection will close: kCloseTimeout runs.
  };

  uv_stream_t* stream() {
    return on_pipe_ ? reinterpret_cast<uv_stream_t*>(&pipe_) : reinterpret_cast<uv_stream_t*>(&tcp_);
  }
  void on_read(ssize_t nread, const uv_buf_t* buffer);
  void on_read_end(ssize_t status);
  void on_write_done(WriteRequest* request, int status);
  void on_timer();
  void parse(const char* data, std::size_t length);
  void dispatch();
  void resume_after_answer();
  void reject(llhttp_errno_t error);
  int fail(int status, const char* reason);
  // `stream_head`: the head of a streamed answer, without Content-Length.
  // Takes a large body out of `response` (WriteRequest::body).
  void send_response(HttpResponse& response, bool close, bool stream_head = false);
  void send_continue();
  bool write(WriteRequest* request);
  WriteRequest* take_write_request();
  void recycle(WriteRequest* request);
  void close_after_writes();
  void finish_draining();
  void start_reading();
  void stop_reading();
  void arm_timer(core::Millis delay);
  void enter_idle();
  // True when more answer bytes than kMaxQueuedOutputBytes are unsent; then parsing stops.
  bool output_over_bound();
  // Turns an absolute-form target ("http://host/path", RFC 9112 §3.2.2) into origin form and
  // makes its authority the Host header. Returns 0, or the status to reject the request with.
  int take_absolute_form();
  // True when `at`, in the bytes being parsed, is preceded by a line break and optional
  // whitespace: a header value that starts there is an obs-fold continuation line.
  bool follows_line_break(const char* at) const;

  HttpServer::Impl* server_;
  std::shared_ptr<HttpConnection> self_;  // Set while the handles are open.

  uv_tcp_t tcp_{};
  uv_pipe_t pipe_{};  // Instead of tcp_ for a connection on the Unix socket (on_pipe_).
  bool on_pipe_ = false;
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_request_{};
  llhttp_t parser_{};

  Phase phase_ = Phase::kIdle;
  bool closed_ = false;              // close_now() ran: nothing more happens on this connection.
  bool draining_ = false;            // close_after_writes() ran.
  bool shutdown_requested_ = false;  // uv_shutdown was called (or skipped after the peer's EOF).
  bool reading_ = false;
  bool peer_eof_ = false;       // The client sent EOF or the read failed.
  bool in_parse_ = false;       // parse() is on the stack: it resumes after a direct answer.
  bool parser_paused_ = false;  // llhttp_execute returned HPE_PAUSED and was not resumed yet.
  bool in_flight_ = false;
  bool streaming_ = false;  // A streamed answer's body is being written (start_stream).
  // Set by a handler that holds the request in flight; run by close_now() (see Responder::on_gone).
  std::function<void()> on_gone_;
  bool close_when_answered_ = false;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool http10_ = false;
  bool in_field_ = false;     // Between a header field's first byte and its ':'.
  bool in_trailers_ = false;  // Header callbacks after on_headers_complete are trailers.
  // Parsing stopped because too many answer bytes were unsent; on_write_done resumes it.
  bool output_blocked_ = false;
  bool admitted_ = false;  // Counted by admit_client(): release_client() runs when it closes.
  int host_headers_ = 0;
  int chunked_codings_ = 0;                    // "chunked" in Transfer-Encoding, over all its lines.
  bool field_ends_with_space_ = false;         // The last byte of the field name read so far is a space.
  const char* parse_begin_ = nullptr;          // The first byte of the bytes being parsed.
  bool previous_ended_at_line_start_ = false;  // See parse().
  int reject_status_ = 0;                      // Set by a callback that stops the parser with HPE_USER.
  int pending_closes_ = 0;
  int writes_pending_ = 0;
  std::uint64_t request_id_ = 0;
  std::size_t header_bytes_ = 0;
  std::size_t header_count_ = 0;

  HttpRequest request_;
  std::string remote_address_;
  std::string pending_;       // Received while a request was in flight, not parsed yet.
  std::string parse_buffer_;  // pending_'s bytes while they are being parsed.
  std::unique_ptr<WriteRequest> spare_write_;
};

// --- llhttp settings ------------------------------------------------------------------------------

namespace {

// Thin noexcept trampolines (STYLE.md §2.4): no exception may unwind through llhttp's frames.
template <int (HttpConnection::*Method)()>
int parser_callback(llhttp_t* parser) noexcept {
  auto* connection = static_cast<HttpConnection*>(parser->data);
  try {
    return (connection->*Method)();
  } catch (...) {
    return connection->on_callback_exception();
  }
}

template <int (HttpConnection::*Method)(const char*, std::size_t)>
int parser_data_callback(llhttp_t* parser, const char* at, std::size_t length) noexcept {
  auto* connection = static_cast<HttpConnection*>(parser->data);
  try {
    return (connection->*Method)(at, length);
  } catch (...) {
    return connection->on_callback_exception();
  }
}

// llhttp_init keeps a pointer to the settings, which must outlive every parser (llhttp.h).
const llhttp_settings_t* parser_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t value;
    llhttp_settings_init(&value);
    value.on_message_begin = parser_callback<&HttpConnection::on_message_begin>;
    value.on_url = parser_data_callback<&HttpConnection::on_url>;
    value.on_header_field = parser_data_callback<&HttpConnection::on_header_field>;
    value.on_header_field_complete = parser_callback<&HttpConnection::on_header_field_complete>;
    value.on_header_value = parser_data_callback<&HttpConnection::on_header_value>;
    value.on_header_value_complete = parser_callback<&HttpConnection::on_header_value_complete>;
    value.on_headers_complete = parser_callback<&HttpConnection::on_headers_complete>;
    value.on_body = parser_data_callback<&HttpConnection::on_body>;
    value.on_message_complete = parser_callback<&HttpConnection::on_message_complete>;
    return value;
  }();
  return &settings;
}

}  // namespace

// --- Responder ------------------------------------------------------------------------------------

ResponseStream Responder::stream(HttpResponse head) const {
  auto connection = connection_.lock();
  if (!connection || !connection->start_stream(request_id_, std::move(head))) return ResponseStream();
  return ResponseStream(connection_);
}

bool ResponseStream::write(std::string data) const {
  auto connection = connection_.lock();
  return connection && connection->stream_write(std::move(data));
}

std::size_t ResponseStream::unsent_bytes() const {
  auto connection = connection_.lock();
  return connection ? connection->unsent_bytes() : 0;
}

void ResponseStream::end() const {
  if (auto connection = connection_.lock()) connection->end_stream();
}

void ResponseStream::cut() const {
  if (auto connection = connection_.lock()) connection->close_now();
}

bool ResponseStream::alive() const {
  auto connection = connection_.lock();
  return connection && connection->streaming();
}

void Responder::respond(HttpResponse response) const {
  if (auto connection = connection_.lock()) {
    connection->respond(request_id_, std::move(response));
  }
}

void Responder::on_gone(std::function<void()> callback) const {
  if (auto connection = connection_.lock()) connection->set_on_gone(request_id_, std::move(callback));
}

void Responder::drop() const {
  if (auto connection = connection_.lock()) connection->drop(request_id_);
}

// --- HttpConnection: setup and teardown -----------------------------------------------------------

bool HttpConnection::start(uv_stream_t* listener) {
  self_ = shared_from_this();
  llhttp_init(&parser_, HTTP_REQUEST, parser_settings());
  parser_.data = this;

  // Both inits only fill in fields on Unix; a failure would mean a broken loop.
  on_pipe_ = listener->type == UV_NAMED_PIPE;
  int rc = uv_timer_init(server_->loop, &timer_);
  if (rc == 0) rc = on_pipe_ ? uv_pipe_init(server_->loop, &pipe_, 0) : uv_tcp_init(server_->loop, &tcp_);
  if (rc != 0) {
    spdlog::critical("http: cannot initialise connection handles: {}", uv_strerror(rc));
    std::abort();
  }
  timer_.data = this;
  stream()->data = this;

  rc = uv_accept(listener, stream());
  if (rc != 0) {
    spdlog::warn("http: accept failed: {}", uv_strerror(rc));
    close_now();
    return false;
  }
  // The proxy socket's peer is whoever may open it (its mode and group): the proxy.
  if (on_pipe_) remote_address_ = "unix";
  // Answers are written whole with one uv_write; Nagle would only delay the last segment.
  if (!on_pipe_) uv_tcp_nodelay(&tcp_, 1);

  sockaddr_storage peer{};
  int peer_length = sizeof(peer);
  if (!on_pipe_ && uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&peer), &peer_length) == 0) {
    char name[64] = {};
    if (peer.ss_family == AF_INET6) {
      uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&peer), name, sizeof(name));
    } else {
      uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&peer), name, sizeof(name));
    }
    remote_address_ = name;
  }
  if (!server_->admit_client(remote_address_)) {
    close_now();
    return false;
  }
  admitted_ = true;

  enter_idle();
  start_reading();
  return !closed_;
}

void HttpConnection::close_now() {
  if (closed_) return;
  closed_ = true;
  const bool unanswered = in_flight_ || streaming_;
  in_flight_ = false;
  streaming_ = false;
  reading_ = false;
  // Moved out first: the callback may answer or drop other requests, but never this one again.
  if (std::function<void()> gone = std::move(on_gone_); unanswered && gone) gone();
  on_gone_ = nullptr;
  // uv_close stops reading and the timer, and cancels queued writes and the shutdown request:
  // their callbacks run with UV_ECANCELED before the close callbacks (docs/src/handle.rst).
  pending_closes_ = 2;
  uv_close(reinterpret_cast<uv_handle_t*>(stream()), on_uv_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_uv_close);
}

void HttpConnection::on_uv_close(uv_handle_t* handle) noexcept {
  auto* connection = static_cast<HttpConnection*>(handle->data);
  if (--connection->pending_closes_ > 0) return;
  // Both handles are closed, so libuv no longer touches this object. `keep` is the last owner
  // besides the server's list; it releases the connection when this function returns, after the
  // last use of `connection`.
  std::shared_ptr<HttpConnection> keep = std::move(connection->self_);
  if (connection->server_ != nullptr) {
    if (connection->admitted_) connection->server_->release_client(connection->remote_address_);
    connection->server_->on_connection_closed(connection);
  }
}

void HttpConnection::begin_shutdown() {
  if (closed_) return;
  close_when_answered_ = true;
  if (streaming_) {
    end_stream();  // What was queued still goes out; then the connection closes.
    return;
  }
  if (in_flight_ || draining_) return;  // The answer, once written, closes the connection.
  if (phase_ == Phase::kIdle && writes_pending_ > 0) {
    close_after_writes();  // An answer is still on its way: let it arrive.
    return;
  }
  // A request being received, or the first request of a connection just accepted, is on its way:
  // its client cannot know that the server stops (a configuration reload stops one), and a close
  // now would fail it. It is answered, then closed; its timers and the grace period bound the
  // wait. A keep-alive connection between requests is closed at once, as clients expect.
  if (phase_ == Phase::kHeaders || phase_ == Phase::kBody) return;
  if (phase_ == Phase::kIdle && request_id_ == 0) {
    arm_timer(kFirstRequestWait);
    return;
  }
  close_now();
}

// --- HttpConnection: reading ----------------------------------------------------------------------

void HttpConnection::start_reading() {
  if (reading_ || closed_ || peer_eof_) return;
  int rc = uv_read_start(stream(), on_uv_alloc, on_uv_read);
  if (rc != 0) {
    spdlog::debug("http {}: uv_read_start failed: {}", remote_address_, uv_strerror(rc));
    close_now();
    return;
  }
  reading_ = true;
}

void HttpConnection::stop_reading() {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void HttpConnection::on_uv_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buffer) noexcept {
  auto* connection = static_cast<HttpConnection*>(handle->data);
  if (connection->server_ == nullptr) {
    *buffer = uv_buf_init(nullptr, 0);  // read_cb then gets UV_ENOBUFS and closes.
    return;
  }
  *buffer = uv_buf_init(connection->server_->read_buffer.get(), kReadBufferBytes);
}

void HttpConnection::on_uv_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer) noexcept {
  auto* connection = static_cast<HttpConnection*>(stream->data);
  try {
    connection->on_read(nread, buffer);
  } catch (const std::exception& error) {
    spdlog::error("http {}: {}", connection->remote_address_, error.what());
    connection->close_now();
  } catch (...) {
    spdlog::error("http {}: unknown exception while reading", connection->remote_address_);
    connection->close_now();
  }
}

void HttpConnection::on_read(ssize_t nread, const uv_buf_t* buffer) {
  if (closed_) return;
  if (nread == 0) return;  // EAGAIN (docs/src/stream.rst): nothing to do.
  if (nread < 0) {
    on_read_end(nread);
    return;
  }
  const auto length = static_cast<std::size_t>(nread);
  // The connection is closing, or streams an answer that ends it: the client's bytes are discarded.
  if (draining_ || streaming_) return;
  if (in_flight_ || output_blocked_) {
    // Not parsed until the answer is queued (so that answers stay in request order) or until the
    // queued answers have drained.
    pending_.append(buffer->base, length);
    if (pending_.size() > kMaxPendingBytes) stop_reading();
    return;
  }
  parse(buffer->base, length);
}

void HttpConnection::on_read_end(ssize_t status) {
  peer_eof_ = true;
  stop_reading();
  if (status != UV_EOF) {
    spdlog::debug("http {}: read failed: {}", remote_address_, uv_strerror(static_cast<int>(status)));
    close_now();
    return;
  }
  if (draining_) {
    // A pending write completes (and then closes) or fails; nothing else is left to do.
    if (writes_pending_ == 0) close_now();
    return;
  }
  if (in_flight_ || phase_ != Phase::kIdle || writes_pending_ == 0) {
    // The client left while its handler worked, or in the middle of a request, or between
    // requests. Closing makes any Responder for this connection a no-op.
    close_now();
    return;
  }
  close_after_writes();  // Answers are still on their way out: finish them, then close.
}

// --- HttpConnection: parsing ----------------------------------------------------------------------

bool HttpConnection::follows_line_break(const char* at) const {
  const char* before = at;
  while (before > parse_begin_ && (before[-1] == ' ' || before[-1] == '\t')) --before;
  if (before > parse_begin_) return before[-1] == '\n';
  return previous_ended_at_line_start_;
}

void HttpConnection::parse(const char* data, std::size_t length) {
  in_parse_ = true;
  parse_begin_ = data;
  // Whether these bytes end with a line break and optional whitespace, for follows_line_break()
  // on the next bytes; computed first because the loop below moves `data`.
  bool ends_at_line_start = previous_ended_at_line_start_;
  for (std::size_t i = length; i > 0; --i) {
    const char byte = data[i - 1];
    if (byte == ' ' || byte == '\t') continue;
    ends_at_line_start = byte == '\n';
    break;
  }
  while (true) {
    llhttp_errno_t error = llhttp_execute(&parser_, data, length);
    if (error == HPE_OK) break;
    if (error != HPE_PAUSED) {
      reject(error);
      break;
    }
    // on_message_complete returned HPE_PAUSED: llhttp_get_error_pos() is the first byte after the
    // message (llhttp.h: "the pointer to the last parsed byte before the returned error").
    parser_paused_ = true;
    const char* stop = llhttp_get_error_pos(&parser_);
    const auto used = static_cast<std::size_t>(stop - data);
    data = stop;
    length -= used;
    dispatch();
    // The answer closes the connection (or streams until it does): the rest is discarded.
    if (closed_ || draining_ || streaming_) break;
    if (in_flight_) {
      // The handler answers later; keep the rest until then (the read buffer is reused).
      pending_.append(data, length);
      break;
    }
    if (length > 0 && output_over_bound()) {
      // The client sends requests faster than it reads the answers: keep the rest until the
      // queued answers drain (on_write_done resumes), and stop reading once that rest is large.
      output_blocked_ = true;
      ++server_->stats.read_pauses_for_output;
      pending_.append(data, length);
      if (pending_.size() > kMaxPendingBytes) stop_reading();
      break;
    }
    llhttp_resume(&parser_);
    parser_paused_ = false;
    if (length == 0) break;
  }
  previous_ended_at_line_start_ = ends_at_line_start;
  in_parse_ = false;
}

void HttpConnection::dispatch() {
  in_flight_ = true;
  phase_ = Phase::kInFlight;
  const std::uint64_t id = ++request_id_;
  ++server_->stats.requests;
  // The handler sees request_ only during the call: it is reused for the next request, so a
  // handler that answers later copies what it needs.
  try {
    server_->handler(request_, Responder(weak_from_this(), id));
  } catch (const std::exception& error) {
    spdlog::error("http {}: handler for {} {} threw: {}", remote_address_, request_.method, request_.path,
                  error.what());
    respond(id, HttpResponse::text(500, "Internal Server Error\n"));
  } catch (...) {
    spdlog::error("http {}: handler for {} {} threw a non-standard exception", remote_address_,
                  request_.method, request_.path);
    respond(id, HttpResponse::text(500, "Internal Server Error\n"));
  }
}

int HttpConnection::fail(int status, const char* reason) {
  reject_status_ = status;
  llhttp_set_error_reason(&parser_, reason);
  return HPE_USER;
}

int HttpConnection::on_callback_exception() {
  return fail(500, "exception in a parser callback");
}

int HttpConnection::on_message_begin() {
  request_.method.clear();
  request_.target.clear();
  request_.path.clear();
  request_.query.clear();
  request_.headers.clear();
  if (request_.body.capacity() > kMaxKeptBodyCapacity) {
    std::string().swap(request_.body);
  } else {
    request_.body.clear();
  }
  reject_status_ = 0;
  header_bytes_ = 0;
  header_count_ = 0;
  in_field_ = false;
  in_trailers_ = false;
  head_request_ = false;
  host_headers_ = 0;
  chunked_codings_ = 0;
  phase_ = Phase::kHeaders;
  arm_timer(server_->limits.header_timeout);
  return 0;
}

int HttpConnection::on_url(const char* at, std::size_t length) {
  if (request_.target.size() + length > server_->limits.max_url_bytes) {
    return fail(414, "request target too long");
  }
  request_.target.append(at, length);
  return 0;
}

int HttpConnection::on_header_field(const char* at, std::size_t length) {
  header_bytes_ += length;
  if (header_bytes_ > server_->limits.max_header_bytes) return fail(431, "header section too large");
  if (!in_field_) {
    in_field_ = true;
    if (++header_count_ > server_->limits.max_header_count) return fail(431, "too many header fields");
    if (!in_trailers_) request_.headers.emplace_back();
  }
  // Trailers count against the limits but are not kept: the handler has seen the headers.
  if (!in_trailers_) request_.headers.back().first.append(at, length);
  if (length > 0) field_ends_with_space_ = at[length - 1] == ' ';
  return 0;
}

int HttpConnection::on_header_field_complete() {
  in_field_ = false;
  // llhttp 8 takes "Host : a" as a field named "Host " (it refuses a tab there, not a space).
  // RFC 9112 §5.1: whitespace before the colon must be answered with 400, since a proxy in
  // front may have read the field as "Host".
  if (field_ends_with_space_) return fail(400, "whitespace before a header field's colon");
  return 0;
}

int HttpConnection::on_header_value(const char* at, std::size_t length) {
  // llhttp accepts obs-fold (a line that starts with whitespace continues the value before it) and
  // hands the continuation over as more value bytes, without the line break. RFC 9112 §5.2 lets a
  // server reject it, and a proxy in front may have read those bytes as another field.
  if (follows_line_break(at)) return fail(400, "obsolete line folding");
  header_bytes_ += length;
  if (header_bytes_ > server_->limits.max_header_bytes) return fail(431, "header section too large");
  if (!in_trailers_ && !request_.headers.empty()) request_.headers.back().second.append(at, length);
  return 0;
}

// Checks that llhttp leaves to the server (RFC 9112 §3.2, §5.2, §6.1), once a field line is whole.
int HttpConnection::on_header_value_complete() {
  if (in_trailers_ || request_.headers.empty()) return 0;
  const auto& [name, value] = request_.headers.back();
  if (equals_ignore_case(name, "Host")) {
    // Two Host lines would let the proxy and this server pick different hosts.
    if (++host_headers_ > 1) return fail(400, "more than one Host header");
  } else if (equals_ignore_case(name, "Transfer-Encoding")) {
    // Only chunked is supported (and it may be applied once); the body length of any other coding
    // is unknown to this server, which RFC 9112 §6.1 answers with 501.
    std::string_view codings(value);
    while (!codings.empty()) {
      const std::size_t comma = codings.find(',');
      std::string_view coding = codings.substr(0, comma);
      codings = comma == std::string_view::npos ? std::string_view() : codings.substr(comma + 1);
      const std::size_t first = coding.find_first_not_of(" \t");
      if (first == std::string_view::npos) continue;
      coding = coding.substr(first, coding.find_last_not_of(" \t") + 1 - first);
      if (!equals_ignore_case(coding, "chunked")) return fail(501, "unsupported transfer coding");
      if (++chunked_codings_ > 1) return fail(400, "chunked applied more than once");
    }
  }
  return 0;
}

int HttpConnection::take_absolute_form() {
  std::string& target = request_.target;
  std::size_t scheme_end = 0;
  if (target.size() >= 7 && strncasecmp(target.data(), "http://", 7) == 0) {
    scheme_end = 7;
  } else if (target.size() >= 8 && strncasecmp(target.data(), "https://", 8) == 0) {
    scheme_end = 8;
  } else {
    return 0;  // Origin form, or '*' and authority forms, which the handlers answer themselves.
  }
  const std::size_t authority_end = target.find_first_of("/?#", scheme_end);
  std::string authority = target.substr(scheme_end, authority_end - scheme_end);
  // RFC 9110 §4.2.4: userinfo is deprecated in http(s) URIs; an empty host is invalid (§4.2.1).
  if (authority.empty() || authority.find('@') != std::string::npos) return 400;
  std::string origin_form = authority_end == std::string::npos ? std::string() : target.substr(authority_end);
  if (origin_form.empty() || origin_form.front() != '/') origin_form.insert(0, "/");
  target = std::move(origin_form);
  // RFC 9112 §3.2.2: the server ignores the Host header and uses the target's authority instead.
  auto host = std::find_if(request_.headers.begin(), request_.headers.end(),
                           [](const auto& header) { return equals_ignore_case(header.first, "Host"); });
  if (host != request_.headers.end()) {
    host->second = std::move(authority);
  } else {
    request_.headers.emplace_back("Host", std::move(authority));
  }
  return 0;
}

int HttpConnection::on_headers_complete() {
  in_trailers_ = true;
  // RFC 9112 §3.2: an HTTP/1.1 request without a Host header is answered with 400, whatever the
  // form of its target.
  if (parser_.http_major == 1 && parser_.http_minor >= 1 && host_headers_ == 0) {
    return fail(400, "no Host header");
  }
  if (int status = take_absolute_form(); status != 0) return fail(status, "invalid absolute-form target");
  const auto method = static_cast<llhttp_method_t>(parser_.method);
  request_.method = llhttp_method_name(method);
  request_.http_major = parser_.http_major;
  request_.http_minor = parser_.http_minor;
  const std::size_t question = request_.target.find('?');
  if (question == std::string::npos) {
    request_.path = request_.target;
  } else {
    request_.path.assign(request_.target, 0, question);
    request_.query.assign(request_.target, question + 1);
  }
  request_.remote_address = remote_address_;
  request_.via_proxy_socket = on_pipe_;
  head_request_ = method == HTTP_HEAD;
  http10_ = parser_.http_major == 1 && parser_.http_minor == 0;
  // llhttp sets `upgrade` for CONNECT and for Upgrade requests before this callback; the bytes
  // after such a request belong to another protocol, so the connection ends with the answer.
  keep_alive_ = llhttp_should_keep_alive(&parser_) != 0 && parser_.upgrade == 0;

  const bool has_length = (parser_.flags & F_CONTENT_LENGTH) != 0;
  const bool chunked = (parser_.flags & F_CHUNKED) != 0;
  if (has_length && parser_.content_length > server_->limits.max_body_bytes) {
    return fail(413, "request body too large");
  }
  const bool has_body = chunked || (has_length && parser_.content_length > 0);

  // RFC 9110 §10.1.1: answer 100-continue before reading the body; a server that does not support
  // another expectation may answer 417; an HTTP/1.0 request's expectation must be ignored.
  if (const std::string* expect = request_.header("Expect"); expect != nullptr && !http10_) {
    if (!equals_ignore_case(*expect, "100-continue")) return fail(417, "unsupported expectation");
    if (has_body) send_continue();
  }
  if (has_body) {
    // Nothing is reserved for the declared length: the buffer grows with the bytes that arrive.
    // Reserving it let a client that declares a large body and then sends it a byte at a time
    // hold that much memory per connection without sending it (the soak's slow bodies held
    // 36 MB that way), and even a small reservation is memory that becomes resident over time
    // as the allocator hands the same pages to others.
    phase_ = Phase::kBody;
    // An absolute deadline: a client that trickles its body a byte at a time does not extend it.
    arm_timer(server_->limits.body_timeout);
  }
  return 0;
}

int HttpConnection::on_body(const char* at, std::size_t length) {
  if (request_.body.size() + length > server_->limits.max_body_bytes) {
    return fail(413, "request body too large");
  }
  request_.body.append(at, length);
  return 0;
}

int HttpConnection::on_message_complete() {
  phase_ = Phase::kInFlight;
  uv_timer_stop(&timer_);
  // Pause from the callback rather than calling llhttp_pause (llhttp.h: "do not call this from
  // user callbacks! User callbacks must return HPE_PAUSED if pausing is required").
  return HPE_PAUSED;
}

void HttpConnection::reject(llhttp_errno_t error) {
  const int status = reject_status_ != 0 ? reject_status_ : 400;
  switch (status) {
    case 413:
    case 414:
    case 431: ++server_->stats.rejected_too_large; break;
    case 400:
    case 417:
    case 501: ++server_->stats.rejected_bad_request; break;
    default: break;
  }
  spdlog::debug("http {}: rejecting request with {}: {} ({})", remote_address_, status,
                llhttp_get_error_reason(&parser_), llhttp_errno_name(error));
  std::string body(status_reason(status));
  body.push_back('\n');
  HttpResponse response = HttpResponse::text(status, std::move(body));
  send_response(response, true);
  close_after_writes();
}

// --- HttpConnection: answering --------------------------------------------------------------------

void HttpConnection::set_on_gone(std::uint64_t request_id, std::function<void()> callback) {
  if (closed_ || !in_flight_ || (request_id != 0 && request_id != request_id_)) return;
  on_gone_ = std::move(callback);
}

void HttpConnection::drop(std::uint64_t request_id) {
  if (closed_ || !in_flight_ || (request_id != 0 && request_id != request_id_)) return;
  on_gone_ = nullptr;
  close_now();
}

void HttpConnection::respond(std::uint64_t request_id, HttpResponse&& response) {
  if (closed_ || !in_flight_ || (request_id != 0 && request_id != request_id_)) {
    // The client left, the server closed the connection, or the request was answered already.
    return;
  }
  in_flight_ = false;
  on_gone_ = nullptr;
  bool close = !keep_alive_ || close_when_answered_ || peer_eof_ || server_ == nullptr;
  if (const std::string* connection = find_header(response.headers, "Connection");
      connection != nullptr && equals_ignore_case(*connection, "close")) {
    close = true;
  }
  send_response(response, close);
  if (closed_) return;  // The write failed and closed the connection.
  if (close) {
    close_after_writes();
    return;
  }
  enter_idle();
  // Inside parse() (the handler answered directly), the parse loop resumes by itself.
  if (!in_parse_) resume_after_answer();
}

bool HttpConnection::start_stream(std::uint64_t request_id, HttpResponse&& head) {
  if (closed_ || !in_flight_ || (request_id != 0 && request_id != request_id_)) return false;
  in_flight_ = false;
  streaming_ = true;
  // Whatever the client sends now is discarded, and no timeout applies: the stream lasts as long
  // as the writer wants, and a client that leaves is seen by its EOF.
  arm_timer(core::Millis(0));
  send_response(head, true, true);
  if (closed_) return false;  // The write failed and closed the connection.
  start_reading();
  return !closed_;
}

bool HttpConnection::stream_write(std::string&& data) {
  if (!streaming() || data.empty()) return streaming();
  WriteRequest* request = take_write_request();
  request->data = std::move(data);
  return write(request);
}

void HttpConnection::end_stream() {
  if (!streaming()) return;
  close_after_writes();
}

void HttpConnection::resume_after_answer() {
  if (parser_paused_) {
    llhttp_resume(&parser_);
    parser_paused_ = false;
  }
  if (!pending_.empty()) {
    // parse() may keep a new remainder in pending_, so the bytes move to another buffer first.
    parse_buffer_.swap(pending_);
    pending_.clear();
    parse(parse_buffer_.data(), parse_buffer_.size());
    parse_buffer_.clear();
  }
  if (closed_ || draining_ || in_flight_ || output_blocked_) return;
  start_reading();  // Reading stops when a client sends too much ahead.
}

void HttpConnection::enter_idle() {
  phase_ = Phase::kIdle;
  arm_timer(server_ != nullptr ? server_->limits.idle_timeout : kCloseTimeout);
}

void HttpConnection::send_response(HttpResponse& response, bool close, bool stream_head) {
  WriteRequest* request = take_write_request();
  std::string& out = request->data;
  out.clear();

  int status = response.status;
  if (status < 100 || status > 999) status = 500;
  // RFC 9110 §8.6 and §15: no Content-Length and no content in 1xx and 204 answers; 304 has no
  // content, and its Content-Length would have to be that of the 200 answer, which we don't know.
  const bool bodiless_status = status < 200 || status == 204 || status == 304;
  const bool send_body = !bodiless_status && !head_request_;

  const bool separate_body = send_body && response.body.size() >= kSeparateBodyBytes;
  const bool send_shared = send_body && !response.shared_body.empty();
  std::size_t size = 160 + (send_body && !separate_body ? response.body.size() : 0);
  for (const auto& [name, value] : response.headers) size += name.size() + value.size() + 4;
  out.reserve(size);

  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::uint64_t>(status));
  out.push_back(' ');
  out.append(status_reason(status));
  out.append("\r\n");
  for (const auto& [name, value] : response.headers) {
    if (is_server_managed_header(name)) continue;
    if (has_line_break(name) || has_line_break(value)) {
      // A line break would let a value smuggle in headers or a second response.
      spdlog::warn("http: dropping response header '{}' with a line break", name);
      continue;
    }
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
  }
  if (!bodiless_status && !stream_head) {
    // HEAD gets the length of the body it would have had (RFC 9110 §9.3.2).
    out.append("Content-Length: ");
    append_number(out, response.content_length());
    out.append("\r\n");
  }
  if (server_ != nullptr) {
    out.append("Date: ");
    out.append(server_->date_header());
    out.append("\r\n");
  }
  if (close) {
    out.append("Connection: close\r\n");
  } else if (http10_) {
    out.append("Connection: keep-alive\r\n");  // HTTP/1.0 closes unless told otherwise.
  }
  out.append("\r\n");
  if (separate_body) {
    request->body = std::move(response.body);
  } else if (send_body) {
    out.append(response.body);
  }
  if (send_shared) request->shared = std::move(response.shared_body);
  write(request);
}

void HttpConnection::send_continue() {
  WriteRequest* request = take_write_request();
  request->data.assign("HTTP/1.1 100 Continue\r\n\r\n");
  write(request);
}

WriteRequest* HttpConnection::take_write_request() {
  WriteRequest* request = spare_write_ != nullptr ? spare_write_.release() : new WriteRequest{};
  request->connection = this;
  request->request.data = request;
  return request;
}

void HttpConnection::recycle(WriteRequest* request) {
  std::string().swap(request->body);
  request->shared.clear();  // The cache's pieces are released as soon as they are written.
  if (request->buffers.capacity() > kKeptBufferCount) std::vector<uv_buf_t>().swap(request->buffers);
  if (!closed_ && spare_write_ == nullptr && request->data.capacity() <= kMaxKeptWriteCapacity) {
    spare_write_.reset(request);
  } else {
    delete request;
  }
}

bool HttpConnection::write(WriteRequest* request) {
  std::vector<uv_buf_t>& buffers = request->buffers;
  buffers.clear();
  auto add = [&buffers](std::string_view bytes) {
    // uv_buf_t's length is an unsigned int on Unix; nothing we write comes near 4 GiB.
    if (!bytes.empty())
      buffers.push_back(
          uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned int>(bytes.size())));
  };
  buffers.reserve(2 + request->shared.slices().size());
  add(request->data);
  add(request->body);
  for (std::string_view slice : request->shared.slices()) add(slice);
  // uv_write does not write from the bytes (it only reads them), so the const_cast above is safe.
  int rc = uv_write(&request->request, stream(), buffers.data(), static_cast<unsigned int>(buffers.size()),
                    on_uv_write);
  if (rc != 0) {
    // docs/src/errors.rst: "When a function which takes a callback returns an error, the callback
    // will never be called", so the request is released here.
    spdlog::debug("http {}: uv_write failed: {}", remote_address_, uv_strerror(rc));
    recycle(request);
    close_now();
    return false;
  }
  ++writes_pending_;
  if (server_ != nullptr) {
    const std::uint64_t queued = uv_stream_get_write_queue_size(stream());
    server_->stats.max_output_queue_bytes = std::max(server_->stats.max_output_queue_bytes, queued);
  }
  return true;
}

bool HttpConnection::output_over_bound() {
  return uv_stream_get_write_queue_size(stream()) > kMaxQueuedOutputBytes;
}

void HttpConnection::on_uv_write(uv_write_t* request, int status) noexcept {
  auto* write = static_cast<WriteRequest*>(request->data);
  write->connection->on_write_done(write, status);
}

void HttpConnection::on_write_done(WriteRequest* request, int status) {
  --writes_pending_;
  recycle(request);
  if (closed_) return;  // UV_ECANCELED from uv_close, or a late completion: nothing to do.
  if (status < 0) {
    spdlog::debug("http {}: write failed: {}", remote_address_, uv_strerror(status));
    close_now();
    return;
  }
  if (draining_ && writes_pending_ == 0) finish_draining();
  if (output_blocked_ && !draining_ && !output_over_bound()) {
    output_blocked_ = false;
    if (!in_flight_) resume_after_answer();
  }
}

// --- HttpConnection: closing and timers -----------------------------------------------------------

void HttpConnection::close_after_writes() {
  if (closed_ || draining_) return;
  draining_ = true;
  phase_ = Phase::kDraining;
  arm_timer(kCloseTimeout);
  start_reading();  // To see the client's EOF; what it sends now is discarded.
  if (closed_) return;
  if (writes_pending_ == 0) finish_draining();
}

void HttpConnection::finish_draining() {
  if (shutdown_requested_) return;
  shutdown_requested_ = true;
  if (peer_eof_) {
    close_now();  // Both directions are done.
    return;
  }
  // Send FIN after the queued writes (docs/src/stream.rst: uv_shutdown "waits for pending write
  // requests to complete"), then wait for the client's EOF in on_read_end or for the timer.
  shutdown_request_.data = this;
  int rc = uv_shutdown(&shutdown_request_, stream(), on_uv_shutdown);
  if (rc != 0) {
    close_now();
    return;
  }
  arm_timer(kCloseTimeout);
}

void HttpConnection::on_uv_shutdown(uv_shutdown_t* request, int status) noexcept {
  auto* connection = static_cast<HttpConnection*>(request->data);
  if (connection->closed_) return;
  if (status < 0) connection->close_now();
}

void HttpConnection::arm_timer(core::Millis delay) {
  if (closed_) return;
  // A zero or negative limit disables that timeout.
  if (delay.count() <= 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uv_timer_start(&timer_, on_uv_timer, to_uv_timeout(delay), 0);
}

void HttpConnection::on_uv_timer(uv_timer_t* handle) noexcept {
  auto* connection = static_cast<HttpConnection*>(handle->data);
  try {
    connection->on_timer();
  } catch (...) {
    connection->close_now();
  }
}

void HttpConnection::on_timer() {
  if (closed_) return;
  switch (phase_) {
    case Phase::kIdle:
      if (server_ != nullptr) ++server_->stats.idle_timeouts;
      spdlog::debug("http {}: idle timeout", remote_address_);
      close_now();
      break;
    case Phase::kHeaders:
    case Phase::kBody:
      // A client that is too slow with its headers (slowloris), or whose body stalls.
      if (server_ != nullptr) {
        if (phase_ == Phase::kHeaders) {
          ++server_->stats.header_timeouts;
        } else {
          ++server_->stats.body_timeouts;
        }
      }
      spdlog::debug("http {}: request timeout", remote_address_);
      head_request_ = false;
      if (writes_pending_ == 0) {
        HttpResponse timeout = HttpResponse::text(408, "Request Timeout\n");
        send_response(timeout, true);
      }
      close_after_writes();
      break;
    case Phase::kInFlight: break;
    case Phase::kDraining: close_now(); break;
  }
}

// --- HttpServer::Impl -----------------------------------------------------------------------------

HttpServer::Impl::Impl(uv_loop_t* loop_in, core::HttpLimits limits_in, HttpHandler handler_in)
    : loop(loop_in),
      limits(limits_in),
      handler(std::move(handler_in)),
      max_connections(connection_cap(limits.max_connections)),
      read_buffer(new char[kReadBufferBytes]) {}

HttpServer::Impl::~Impl() {
  // After a completed shutdown nothing is left and the loop is not touched (it may be closed).
  // Otherwise the handles are closed here and freed by their close callbacks on a later run of
  // the loop; the blocks and connections no longer point back at this object.
  if (listener != nullptr) {
    listener->owner = nullptr;
    auto* handle = reinterpret_cast<uv_handle_t*>(&listener->handle);
    if (!uv_is_closing(handle)) uv_close(handle, on_uv_listener_closed);
    listener = nullptr;
  }
  if (unix_listener != nullptr) {
    unix_listener->owner = nullptr;
    close_unix_listener(unix_listener);
    unix_listener = nullptr;
  }
  for (auto& connection : connections) {
    connection->detach();
    connection->close_now();
  }
  connections.clear();
  if (grace_timer != nullptr) {
    grace_timer->owner = nullptr;
    auto* handle = reinterpret_cast<uv_handle_t*>(&grace_timer->handle);
    if (!uv_is_closing(handle)) uv_close(handle, on_uv_grace_timer_closed);
    grace_timer = nullptr;
  }
}

Status HttpServer::Impl::listen(const std::string& host_in, int port_in) {
  if (listener != nullptr) return Error{"the HTTP server is already listening"};
  if (shutting_down) return Error{"the HTTP server is shut down"};
  if (port_in < 0 || port_in > 65535) return Error{"invalid port " + std::to_string(port_in)};

  std::string address = host_in;
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  if (address.empty() || address == "localhost") address = "127.0.0.1";
  sockaddr_storage storage{};
  if (uv_ip4_addr(address.c_str(), port_in, reinterpret_cast<sockaddr_in*>(&storage)) != 0 &&
      uv_ip6_addr(address.c_str(), port_in, reinterpret_cast<sockaddr_in6*>(&storage)) != 0) {
    return Error{"not an IP address: '" + host_in + "'"};
  }

  auto* block = new ListenerBlock{};
  block->handle.data = block;
  int rc = uv_tcp_init(loop, &block->handle);
  if (rc != 0) {
    delete block;  // Not a handle yet, so there is nothing to close.
    return Error{std::string("uv_tcp_init: ") + uv_strerror(rc)};
  }
  rc = uv_tcp_bind(&block->handle, reinterpret_cast<const sockaddr*>(&storage), 0);
  // libuv may report a bind error such as EADDRINUSE only from uv_listen.
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&block->handle), kListenBacklog, on_uv_connection);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&block->handle), on_uv_listener_closed);
    return Error{"cannot listen on " + host_in + ":" + std::to_string(port_in) + ": " + uv_strerror(rc)};
  }
  block->owner = this;
  listener = block;
  host = host_in;
  // Derived here rather than in the constructor: the daemon raises the descriptor limit first.
  max_connections = connection_cap(limits.max_connections);

  sockaddr_storage bound{};
  int bound_length = sizeof(bound);
  port = port_in;
  if (uv_tcp_getsockname(&block->handle, reinterpret_cast<sockaddr*>(&bound), &bound_length) == 0) {
    if (bound.ss_family == AF_INET6) {
      port = ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
    } else {
      port = ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    }
  }
  spdlog::info("http: listening on {}:{} (at most {} connections, {} per client)", host, port,
               max_connections, limits.max_connections_per_client);
  return ok_status();
}

namespace {

// A close-on-exec duplicate of a listening handle's socket, which keeps the socket and the
// connections queued in its backlog alive after the handle closes (a configuration reload).
Result<int> duplicate_socket(const uv_handle_t* handle, std::string_view what) {
  uv_os_fd_t fd = -1;
  if (int rc = uv_fileno(handle, &fd); rc != 0) return Error{std::string("uv_fileno: ") + uv_strerror(rc)};
  const int duplicate = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (duplicate < 0)
    return Error{"cannot duplicate the listening " + std::string(what) + ": " + core::errno_text()};
  return duplicate;
}

}  // namespace

Result<int> HttpServer::Impl::duplicate_listener() const {
  if (listener == nullptr) return Error{"the HTTP server is not listening"};
  return duplicate_socket(reinterpret_cast<const uv_handle_t*>(&listener->handle), "socket");
}

Status HttpServer::Impl::adopt(int listening_fd, const std::string& host_in) {
  if (listener != nullptr || shutting_down) {
    ::close(listening_fd);
    return Error{"the HTTP server is already listening or shut down"};
  }
  auto* block = new ListenerBlock{};
  block->handle.data = block;
  if (int rc = uv_tcp_init(loop, &block->handle); rc != 0) {
    delete block;  // Not a handle yet, so there is nothing to close.
    ::close(listening_fd);
    return Error{std::string("uv_tcp_init: ") + uv_strerror(rc)};
  }
  // From here on the handle owns the descriptor: closing the handle closes it.
  int rc = uv_tcp_open(&block->handle, listening_fd);
  if (rc != 0) ::close(listening_fd);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&block->handle), kListenBacklog, on_uv_connection);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&block->handle), on_uv_listener_closed);
    return Error{std::string("cannot listen on the handed-over socket: ") + uv_strerror(rc)};
  }
  block->owner = this;
  listener = block;
  host = host_in;
  sockaddr_storage bound{};
  int bound_length = sizeof(bound);
  if (uv_tcp_getsockname(&block->handle, reinterpret_cast<sockaddr*>(&bound), &bound_length) == 0) {
    port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port)
                                       : ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  }
  spdlog::info("http: listening on {}:{} (socket handed over)", host, port);
  return ok_status();
}

void HttpServer::Impl::on_uv_connection(uv_stream_t* stream, int status) noexcept {
  auto* block = static_cast<ListenerBlock*>(stream->data);
  if (block->owner == nullptr) return;
  try {
    block->owner->on_connection(status);
  } catch (const std::exception& error) {
    spdlog::error("http: cannot accept a connection: {}", error.what());
  } catch (...) {
    spdlog::error("http: cannot accept a connection");
  }
}

void HttpServer::Impl::on_connection(int status) {
  if (status < 0) {
    // Typically EMFILE or ENFILE. libuv has then closed the waiting connection itself (it keeps a
    // spare descriptor for that, src/unix/stream.c uv__emfile_trick), so the loop does not spin on
    // it; logging every attempt would flood the log while a client keeps connecting.
    ++stats.accept_errors;
    const std::uint64_t now = uv_now(loop);
    if (accept_error_warning.count(now)) {
      spdlog::warn("http: cannot accept connections: {} ({} failed accepts since the last warning; {} open)",
                   uv_strerror(status), accept_error_warning.since_logged, stats.open_connections);
      accept_error_warning.logged(now);
    }
    return;
  }
  if (shutting_down || listener == nullptr) return;
  auto connection = std::make_shared<HttpConnection>(this);
  connections.push_back(connection);
  connection->position = std::prev(connections.end());
  ++stats.open_connections;
  if (connection->start(reinterpret_cast<uv_stream_t*>(&listener->handle))) {
    ++stats.connections_accepted;
  }
}

bool HttpServer::Impl::admit_client(const std::string& address) {
  std::size_t& from_client = connections_per_client[address];
  const bool over_total = admitted_connections >= max_connections;
  const bool over_client =
      limits.max_connections_per_client != 0 && from_client >= limits.max_connections_per_client;
  if (over_total || over_client) {
    if (from_client == 0) connections_per_client.erase(address);
    ++stats.connections_refused;
    const std::uint64_t now = uv_now(loop);
    if (refusal_warning.count(now)) {
      spdlog::warn(
          "http: closing new connections over the {} cap ({} refused since the last warning; last from {})",
          over_total ? "total connection" : "per-client connection", refusal_warning.since_logged, address);
      refusal_warning.logged(now);
    }
    return false;
  }
  ++from_client;
  ++admitted_connections;
  return true;
}

void HttpServer::Impl::release_client(const std::string& address) {
  --admitted_connections;
  auto it = connections_per_client.find(address);
  if (it == connections_per_client.end()) return;
  if (--it->second == 0) connections_per_client.erase(it);
}

void HttpServer::Impl::on_connection_closed(HttpConnection* connection) {
  --stats.open_connections;
  connections.erase(connection->position);  // May release the connection: `connection` is dead.
  maybe_finish_shutdown();
}

void HttpServer::Impl::on_uv_listener_closed(uv_handle_t* handle) noexcept {
  auto* block = reinterpret_cast<ListenerBlock*>(handle);
  HttpServer::Impl* owner = block->owner;
  delete block;
  if (owner != nullptr) owner->on_listener_closed();
}

void HttpServer::Impl::on_listener_closed() {
  listener = nullptr;
  maybe_finish_shutdown();
}

Status HttpServer::Impl::listen_unix(const std::string& path, int mode) {
  if (unix_listener != nullptr) return Error{"the HTTP server is already listening on a Unix socket"};
  if (shutting_down) return Error{"the HTTP server is shut down"};
  if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error{"cannot listen on " + path + ": a Unix socket path must have 1 to " +
                 std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes"};
  }
  // A socket left by an earlier run that did not stop cleanly is removed; anything else at that
  // path is not ours to delete.
  struct stat existing {};
  if (lstat(path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode))
      return Error{"cannot listen on " + path + ": it exists and is not a socket"};
    if (unlink(path.c_str()) != 0)
      return Error{"cannot remove the old socket " + path + ": " + core::errno_text()};
  }
  // The socket is made and bound here rather than by uv_pipe_bind: libuv removes the file of a
  // pipe it bound when that handle closes (src/unix/pipe.c, uv__pipe_close), which would take the
  // socket away from the server a reload hands it to. close_unix_listener() removes it instead.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{"cannot listen on " + path + ": " + core::errno_text()};
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  path.copy(address.sun_path, path.size());
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    Error error{"cannot listen on " + path + ": " + core::errno_text()};
    ::close(fd);
    return error;
  }
  // The mode and group are set before listening, so that nobody connects through the umask's
  // bits. The socket takes the group of its directory, the group that Caddy and Unshelver share.
  struct stat directory {};
  const std::string parent = path.substr(0, path.rfind('/') == 0 ? 1 : path.rfind('/'));
  if (chmod(path.c_str(), static_cast<mode_t>(mode)) != 0 ||
      (stat(parent.c_str(), &directory) == 0 && directory.st_gid != getegid() &&
       chown(path.c_str(), static_cast<uid_t>(-1), directory.st_gid) != 0)) {
    Error error{"cannot listen on " + path + ": " + core::errno_text()};
    ::unlink(path.c_str());
    ::close(fd);
    return error;
  }
  return open_unix_listener(fd, path, "");
}

Result<int> HttpServer::Impl::duplicate_unix_listener() {
  if (unix_listener == nullptr) return Error{"the HTTP server is not listening on a Unix socket"};
  Result<int> duplicate =
      duplicate_socket(reinterpret_cast<const uv_handle_t*>(&unix_listener->handle), "Unix socket");
  if (!duplicate) return duplicate;
  // The socket file now belongs to whoever adopts the duplicate: removing it when this listener
  // closes would leave the successor listening on a socket nobody can reach.
  unix_listener->path.clear();
  return duplicate;
}

Status HttpServer::Impl::adopt_unix(int listening_fd, const std::string& path) {
  if (unix_listener != nullptr || shutting_down) {
    ::close(listening_fd);
    return Error{"the HTTP server is already listening on a Unix socket or shut down"};
  }
  return open_unix_listener(listening_fd, path, " (socket handed over)");
}

Status HttpServer::Impl::open_unix_listener(int fd, const std::string& path, std::string_view how) {
  auto* block = new UnixListenerBlock{};
  block->handle.data = block;
  if (int rc = uv_pipe_init(loop, &block->handle, 0); rc != 0) {
    delete block;  // Not a handle yet, so there is nothing to close.
    ::unlink(path.c_str());
    ::close(fd);
    return Error{std::string("uv_pipe_init: ") + uv_strerror(rc)};
  }
  // From here on the handle owns the descriptor, and closing the listener removes the file.
  block->path = path;
  int rc = uv_pipe_open(&block->handle, fd);
  if (rc != 0) ::close(fd);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&block->handle), kListenBacklog, on_uv_unix_connection);
  if (rc != 0) {
    close_unix_listener(block);
    return Error{"cannot listen on " + path + ": " + uv_strerror(rc)};
  }
  block->owner = this;
  unix_listener = block;
  spdlog::info("http: listening on unix:{}{}", path, how);
  return ok_status();
}

void HttpServer::Impl::close_unix_listener(UnixListenerBlock* block) {
  auto* handle = reinterpret_cast<uv_handle_t*>(&block->handle);
  if (uv_is_closing(handle)) return;
  // Unlinked at once, so that a new daemon can bind the path while this one finishes.
  if (!block->path.empty() && unlink(block->path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("http: cannot remove {}: {}", block->path, core::errno_text());
  }
  block->path.clear();
  uv_close(handle, on_uv_unix_listener_closed);
}

void HttpServer::Impl::on_uv_unix_connection(uv_stream_t* stream, int status) noexcept {
  auto* block = static_cast<UnixListenerBlock*>(stream->data);
  if (block->owner == nullptr) return;
  try {
    Impl& server = *block->owner;
    if (status < 0) {
      // Counted and logged at most once per interval, like a failed accept on the TCP listener.
      server.on_connection(status);
      return;
    }
    if (server.shutting_down) return;
    auto connection = std::make_shared<HttpConnection>(&server);
    server.connections.push_back(connection);
    connection->position = std::prev(server.connections.end());
    ++server.stats.open_connections;
    if (connection->start(stream)) ++server.stats.connections_accepted;
  } catch (const std::exception& error) {
    spdlog::error("http: cannot accept a connection: {}", error.what());
  } catch (...) {
    spdlog::error("http: cannot accept a connection");
  }
}

void HttpServer::Impl::on_uv_unix_listener_closed(uv_handle_t* handle) noexcept {
  auto* block = reinterpret_cast<UnixListenerBlock*>(handle);
  HttpServer::Impl* owner = block->owner;
  delete block;
  if (owner == nullptr) return;
  owner->unix_listener = nullptr;
  owner->maybe_finish_shutdown();
}

void HttpServer::Impl::shutdown(std::function<void()> on_closed_in) {
  if (shutting_down) {
    spdlog::warn("http: shutdown() called twice; the second callback is ignored");
    return;
  }
  shutting_down = true;
  on_closed = std::move(on_closed_in);
  spdlog::info("http: shutting down ({} open connections)", connections.size());

  // Closing the listener closes its socket at once, so no new connection is accepted.
  if (listener != nullptr) {
    auto* handle = reinterpret_cast<uv_handle_t*>(&listener->handle);
    if (!uv_is_closing(handle)) uv_close(handle, on_uv_listener_closed);
  }
  if (unix_listener != nullptr) close_unix_listener(unix_listener);

  // The grace timer exists for the whole shutdown, even without connections, so that on_closed
  // always runs from a close callback, never from inside shutdown().
  grace_timer = new GraceTimerBlock{};
  grace_timer->owner = this;
  grace_timer->handle.data = grace_timer;
  uv_timer_init(loop, &grace_timer->handle);
  uv_timer_start(&grace_timer->handle, on_uv_grace_timer, to_uv_timeout(limits.shutdown_grace), 0);

  // uv_close never runs a close callback synchronously, so the list does not change here.
  for (auto& connection : connections) connection->begin_shutdown();
  maybe_finish_shutdown();
}

void HttpServer::Impl::on_uv_grace_timer(uv_timer_t* handle) noexcept {
  auto* block = static_cast<GraceTimerBlock*>(handle->data);
  if (block->owner != nullptr) block->owner->on_grace_timer();
}

void HttpServer::Impl::on_grace_timer() {
  if (!connections.empty()) {
    spdlog::warn("http: shutdown grace period over; closing {} connections", connections.size());
  }
  for (auto& connection : connections) connection->close_now();
}

void HttpServer::Impl::maybe_finish_shutdown() {
  if (!shutting_down || listener != nullptr || unix_listener != nullptr || !connections.empty() ||
      grace_timer == nullptr) {
    return;
  }
  auto* handle = reinterpret_cast<uv_handle_t*>(&grace_timer->handle);
  if (uv_is_closing(handle)) return;
  uv_timer_stop(&grace_timer->handle);
  uv_close(handle, on_uv_grace_timer_closed);
}

void HttpServer::Impl::on_uv_grace_timer_closed(uv_handle_t* handle) noexcept {
  auto* block = reinterpret_cast<GraceTimerBlock*>(handle);
  HttpServer::Impl* owner = block->owner;
  delete block;
  if (owner != nullptr) owner->on_grace_timer_closed();
}

void HttpServer::Impl::on_grace_timer_closed() {
  grace_timer = nullptr;
  spdlog::info("http: shut down");
  // The callback may destroy the server, so nothing touches `this` after it.
  std::function<void()> callback = std::move(on_closed);
  on_closed = nullptr;
  if (!callback) return;
  try {
    callback();
  } catch (const std::exception& error) {
    spdlog::error("http: shutdown callback threw: {}", error.what());
  } catch (...) {
    spdlog::error("http: shutdown callback threw a non-standard exception");
  }
}

std::string_view HttpServer::Impl::date_header() {
  const std::time_t now = std::time(nullptr);
  if (now != date_second) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm utc{};
    gmtime_r(&now, &utc);
    // Formatted by hand: strftime's %a and %b follow the locale, IMF-fixdate does not.
    int written = std::snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                                kDays[utc.tm_wday % 7], utc.tm_mday, kMonths[utc.tm_mon % 12],
                                utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
    date_length = written > 0 ? std::min(static_cast<std::size_t>(written), sizeof(date) - 1) : 0;
    date_second = now;
  }
  return {date, date_length};
}

// --- HttpServer -----------------------------------------------------------------------------------

HttpServer::HttpServer(uv_loop_t* loop, core::HttpLimits limits, HttpHandler handler)
    : impl_(std::make_unique<Impl>(loop, limits, std::move(handler))) {}

HttpServer::~HttpServer() = default;

Status HttpServer::listen(const std::string& host, int port) {
  return impl_->listen(host, port);
}

Result<int> HttpServer::duplicate_listener() const {
  return impl_->duplicate_listener();
}

Status HttpServer::adopt(int listening_fd, const std::string& host) {
  return impl_->adopt(listening_fd, host);
}

Result<int> HttpServer::duplicate_unix_listener() {
  return impl_->duplicate_unix_listener();
}

Status HttpServer::adopt_unix(int listening_fd, const std::string& path) {
  return impl_->adopt_unix(listening_fd, path);
}

Status HttpServer::listen_unix(const std::string& path, int mode) {
  return impl_->listen_unix(path, mode);
}

int HttpServer::port() const {
  return impl_->port;
}

const std::string& HttpServer::host() const {
  return impl_->host;
}

void HttpServer::shutdown(std::function<void()> on_closed) {
  impl_->shutdown(std::move(on_closed));
}

const HttpServerStats& HttpServer::stats() const {
  return impl_->stats;
}

}  // namespace unshelver::io
