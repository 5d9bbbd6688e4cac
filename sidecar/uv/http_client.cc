// HttpClient: libcurl's multi interface driven by the libuv loop.
//
// The flow follows curl's docs/examples/multi-uv.c (STYLE.md §4), with the traps of STYLE.md §3
// avoided:
//
//   send()         builds one easy handle per request and adds it to our CURLM. Adding a handle
//                  makes curl call cb_timer with 0 ms, which we clamp to 1 ms, so the transfer
//                  starts on the next loop iteration and never from inside curl.
//   cb_socket      curl tells us which events it wants on a socket. Each socket gets its own heap
//                  SocketContext (a uv_poll_t) that curl hands back to us through
//                  curl_multi_assign, never a lookup by fd number. On CURL_POLL_REMOVE the poll is
//                  stopped and closed at once, because curl may close the fd right after and hand
//                  the same number out again; the block is freed only in its close callback.
//   cb_timer       curl asks for one non-repeating timeout; each call replaces the previous one.
//   on_uv_socket / on_uv_timeout
//                  call curl_multi_socket_action, then always drain curl_multi_info_read (also when
//                  no transfer is running any more, unlike multi-uv.c), then run user callbacks.
//
// User callbacks run only after curl_multi_socket_action has returned and every finished easy
// handle has been removed, so a callback may call send(), cancel(), close() or even destroy the
// HttpClient: the delivery loop re-checks the request table and a liveness token after each one.
#include "uv/http_client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <new>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/text.h"
#include "base/url.h"
#include "uv/handle.h"

namespace unshelver::io {
namespace {

// Response headers are untrusted input (STYLE.md §2.8). Cloud APIs send a few kilobytes at most.
constexpr std::size_t kMaxResponseHeaderBytes = std::size_t{64} * 1024;
// Secrets shorter than this are not redacted from error texts: a one- or two-character header
// value ("1", "no") cannot be a credential, and replacing it everywhere would garble the text.
constexpr std::size_t kMinSecretLength = 3;
constexpr std::string_view kRedacted = "[redacted]";

// curl_global_init is not thread-safe and must run before any other libcurl call (libcurl(3)).
// A function-local static is initialised exactly once, even with concurrent first calls.
bool ensure_curl_global_init() {
  static const CURLcode result = curl_global_init(CURL_GLOBAL_ALL);
  if (result != CURLE_OK) {
    spdlog::critical("http client: curl_global_init failed: {}", curl_easy_strerror(result));
  }
  return result == CURLE_OK;
}

// RFC 9110 §5.6.2: token = 1*tchar.
bool is_token(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) != 0 || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// A header value must not smuggle a second header or request line into the request.
bool is_safe_header_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// The parts of a URL that may carry credentials: userinfo, the query (whole, and each parameter
// value on its own) and the fragment. They are redacted from error texts, which get logged.
std::vector<std::string> url_secrets(std::string_view url) {
  std::vector<std::string> secrets;
  std::optional<core::Url> parts = core::parse_url(url);
  // Without a scheme curl guesses one; the text is then read as if it had one.
  if (!parts) parts = core::parse_url("http://" + std::string(url));
  if (!parts) return secrets;
  if (parts->userinfo) {
    const std::string& userinfo = *parts->userinfo;
    secrets.push_back(userinfo);
    if (auto colon = userinfo.find(':'); colon != std::string::npos) {
      secrets.push_back(userinfo.substr(colon + 1));
    }
  }
  if (parts->query) {
    std::string_view query = *parts->query;
    secrets.emplace_back(query);
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      if (auto eq = pair.find('='); eq != std::string_view::npos) {
        secrets.emplace_back(pair.substr(eq + 1));
      }
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
  }
  if (parts->fragment) secrets.push_back(*parts->fragment);
  return secrets;
}

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    if (secret.size() < kMinSecretLength) continue;
    for (auto at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + kRedacted.size())) {
      text.replace(at, secret.size(), kRedacted);
    }
  }
  return text;
}

// Runs a user callback; no exception may unwind into libuv or libcurl frames (STYLE.md §2.4).
void invoke_user_callback(const ResponseCallback& callback, ClientResponse response, RequestId id) noexcept {
  if (!callback) return;
  try {
    callback(std::move(response));
  } catch (const std::exception& error) {
    spdlog::error("http client: request {}: the completion callback threw: {}", id, error.what());
  } catch (...) {
    spdlog::error("http client: request {}: the completion callback threw a non-standard exception", id);
  }
}

}  // namespace

struct HttpClient::Impl {
  // One per socket that curl asks us to watch; close_and_free() frees it from libuv's close
  // callback (uv_handle.h), which finds it through handle.data.
  struct SocketContext {
    uv_poll_t handle;
    curl_socket_t fd = CURL_SOCKET_BAD;
    int events = 0;  // what we last asked libuv for, to re-arm after a poll error
    Impl* owner = nullptr;
  };

  struct TimerBlock {
    uv_timer_t handle;
    Impl* owner = nullptr;
  };

  enum class Overflow { kNone, kBody, kHeaders };

  struct Transfer {
    RequestId id = 0;
    CURL* easy = nullptr;
    bool added = false;  // whether `easy` is in the multi handle
    curl_slist* header_list = nullptr;
    ResponseCallback on_done;
    ClientResponse response;
    std::size_t max_response_bytes = 0;
    std::size_t header_bytes = 0;
    Overflow overflow = Overflow::kNone;
    std::vector<std::string> secrets;  // redacted from the error text
    std::string unix_socket;           // named in the error text: curl names only the URL's host
    // CURLOPT_ERRORBUFFER: "at least CURL_ERROR_SIZE bytes big", valid while the handle lives.
    std::array<char, CURL_ERROR_SIZE> error_buffer{};
  };

  explicit Impl(uv_loop_t* loop);
  ~Impl();

  RequestId send(ClientRequest request, ResponseCallback on_done);
  void cancel(RequestId id);
  void close();
  std::size_t in_flight() const { return transfers_.size(); }

  // curl → us. These run inside libcurl: they must not call back into the multi handle (except
  // curl_multi_assign, which the socket callback contract allows) and never run user code.
  static int cb_socket(CURL* easy, curl_socket_t fd, int action, void* userp, void* socketp) noexcept;
  static int cb_timer(CURLM* multi, long timeout_ms, void* userp) noexcept;
  static std::size_t cb_write(char* data, std::size_t size, std::size_t count, void* userp) noexcept;
  static std::size_t cb_header(char* data, std::size_t size, std::size_t count, void* userp) noexcept;

  // libuv → us.
  static void on_uv_socket(uv_poll_t* poll, int status, int events) noexcept;
  static void on_uv_timeout(uv_timer_t* timer) noexcept;
  static void on_uv_deferred(uv_timer_t* timer) noexcept;

  int handle_socket(curl_socket_t fd, int action, SocketContext* context);
  void handle_timer(long timeout_ms);
  // Drives curl, then completes whatever finished. Must be the last thing its caller does with
  // `this`: a user callback may have destroyed the client.
  void socket_action(curl_socket_t fd, int flags);
  void collect_finished(std::vector<RequestId>& finished);
  void fail_running(const std::string& error, std::vector<RequestId>& finished);
  void deliver(const std::vector<RequestId>& ids);
  void defer_failure(std::unique_ptr<Transfer> transfer, std::string error);
  std::string configure(Transfer& transfer, ClientRequest& request);
  void release_easy(Transfer& transfer);
  void close_socket_context(SocketContext* context);
  std::string describe_failure(CURLcode code, const Transfer& transfer) const;

  uv_loop_t* loop_;
  CURLM* multi_ = nullptr;
  TimerBlock* timeout_ = nullptr;               // curl's single timeout (CURLMOPT_TIMERFUNCTION)
  TimerBlock* deferred_ = nullptr;              // completes requests that failed before reaching curl
  std::unordered_set<SocketContext*> sockets_;  // live polls, by address, never by fd
  std::unordered_map<RequestId, std::unique_ptr<Transfer>> transfers_;
  std::vector<RequestId> deferred_ids_;
  RequestId next_id_ = 1;
  bool closed_ = false;
  bool in_multi_cleanup_ = false;
  // Expires when the Impl is destroyed, so that the delivery loop notices a user callback that
  // destroyed the client.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

HttpClient::Impl::Impl(uv_loop_t* loop) : loop_(loop) {
  const bool curl_ready = ensure_curl_global_init();

  timeout_ = new TimerBlock{};
  timeout_->owner = this;
  deferred_ = new TimerBlock{};
  deferred_->owner = this;
  for (TimerBlock* block : {timeout_, deferred_}) {
    // uv_timer_init only initialises fields on Unix; the result is checked so that a broken loop
    // is noticed rather than ignored.
    if (int rc = uv_timer_init(loop_, &block->handle); rc != 0) {
      spdlog::critical("http client: uv_timer_init failed: {}", uv_strerror(rc));
    }
    block->handle.data = block;
  }

  if (curl_ready) multi_ = curl_multi_init();
  if (multi_ == nullptr) {
    spdlog::critical("http client: curl_multi_init failed; every request will fail");
    return;
  }
  // The noexcept trampolines convert implicitly to curl's plain function pointer types; the
  // explicit conversion matters because curl_multi_setopt is variadic.
  curl_socket_callback socket_function = &Impl::cb_socket;
  curl_multi_timer_callback timer_function = &Impl::cb_timer;
  CURLMcode rc = curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, socket_function);
  if (rc == CURLM_OK) rc = curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  if (rc == CURLM_OK) rc = curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, timer_function);
  if (rc == CURLM_OK) rc = curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  if (rc != CURLM_OK) {
    spdlog::critical("http client: curl_multi_setopt failed: {}", curl_multi_strerror(rc));
    curl_multi_cleanup(multi_);
    multi_ = nullptr;
  }
}

HttpClient::Impl::~Impl() {
  close();
}

RequestId HttpClient::Impl::send(ClientRequest request, ResponseCallback on_done) {
  if (closed_) {
    spdlog::warn("http client: send() after close(); the request is dropped");
    return 0;
  }
  auto transfer = std::make_unique<Transfer>();
  transfer->id = next_id_++;
  transfer->on_done = std::move(on_done);
  transfer->max_response_bytes = request.max_response_bytes;
  const RequestId id = transfer->id;

  if (multi_ == nullptr) {
    defer_failure(std::move(transfer), "libcurl is not available");
    return id;
  }
  if (std::string error = configure(*transfer, request); !error.empty()) {
    defer_failure(std::move(transfer), std::move(error));
    return id;
  }
  Transfer& added = *transfer;
  transfers_.emplace(id, std::move(transfer));
  // curl_multi_add_handle calls cb_timer (0 ms → our 1 ms timer), which starts the transfer on
  // the next loop iteration; it never performs I/O or completes the transfer synchronously.
  if (CURLMcode rc = curl_multi_add_handle(multi_, added.easy); rc != CURLM_OK) {
    auto node = transfers_.extract(id);
    defer_failure(std::move(node.mapped()),
                  std::string("could not start the request: ") + curl_multi_strerror(rc));
    return id;
  }
  added.added = true;
  return id;
}

std::string HttpClient::Impl::configure(Transfer& transfer, ClientRequest& request) {
  if (!is_token(request.method)) return "invalid request method";
  if (request.timeout.count() <= 0) return "the request timeout must be positive";
  for (const auto& [name, value] : request.headers) {
    // The name is checked before it is quoted, so the message cannot carry a CR/LF or a secret.
    if (!is_token(name)) return "invalid request header name";
    if (!is_safe_header_value(value)) return "invalid value for request header " + name;
  }

  transfer.secrets = url_secrets(request.url);
  for (const auto& [name, value] : request.headers) transfer.secrets.push_back(value);

  transfer.easy = curl_easy_init();
  if (transfer.easy == nullptr) return "could not create a libcurl handle";
  CURL* easy = transfer.easy;

  // Each option is checked; the first failure names the option, never its value.
  const char* failed_option = nullptr;
  CURLcode failure = CURLE_OK;
  auto set = [&](const char* label, CURLoption option, auto value) {
    if (failed_option != nullptr) return;
    if (CURLcode rc = curl_easy_setopt(easy, option, value); rc != CURLE_OK) {
      failed_option = label;
      failure = rc;
    }
  };

  curl_write_callback write_function = &Impl::cb_write;
  curl_write_callback header_function = &Impl::cb_header;
  const long timeout_ms = static_cast<long>(request.timeout.count());
  // curl treats a connect timeout of 0 as "the 300 s default"; fall back to the whole timeout.
  const long connect_timeout_ms =
      request.connect_timeout.count() > 0 ? static_cast<long>(request.connect_timeout.count()) : timeout_ms;

  set("CURLOPT_URL", CURLOPT_URL, request.url.c_str());
  set("CURLOPT_PROTOCOLS_STR", CURLOPT_PROTOCOLS_STR, "http,https");
  set("CURLOPT_FOLLOWLOCATION", CURLOPT_FOLLOWLOCATION, 0L);
  // No signals: they would hit whatever thread is running and are unsafe in a daemon (libcurl
  // "Signals" section); the threaded resolver does not need SIGALRM for timeouts.
  set("CURLOPT_NOSIGNAL", CURLOPT_NOSIGNAL, 1L);
  set("CURLOPT_TIMEOUT_MS", CURLOPT_TIMEOUT_MS, timeout_ms);
  set("CURLOPT_CONNECTTIMEOUT_MS", CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
  // Without this, removing a handle whose name lookup is still running joins the resolver thread
  // (asyn-thread.c, Curl_resolver_kill) and blocks the loop for as long as getaddrinfo takes. With
  // it, the thread is detached and frees its own state when getaddrinfo returns.
  set("CURLOPT_QUICK_EXIT", CURLOPT_QUICK_EXIT, 1L);
  set("CURLOPT_ERRORBUFFER", CURLOPT_ERRORBUFFER, transfer.error_buffer.data());
  set("CURLOPT_PRIVATE", CURLOPT_PRIVATE, static_cast<void*>(&transfer));
  set("CURLOPT_WRITEFUNCTION", CURLOPT_WRITEFUNCTION, write_function);
  set("CURLOPT_WRITEDATA", CURLOPT_WRITEDATA, static_cast<void*>(&transfer));
  set("CURLOPT_HEADERFUNCTION", CURLOPT_HEADERFUNCTION, header_function);
  set("CURLOPT_HEADERDATA", CURLOPT_HEADERDATA, static_cast<void*>(&transfer));
  // Fails early (CURLE_FILESIZE_EXCEEDED) when Content-Length already announces too much; the
  // write callback enforces the same limit for chunked or unannounced bodies.
  set("CURLOPT_MAXFILESIZE_LARGE", CURLOPT_MAXFILESIZE_LARGE,
      static_cast<curl_off_t>(request.max_response_bytes));
  if (!request.verify_tls) {
    set("CURLOPT_SSL_VERIFYPEER", CURLOPT_SSL_VERIFYPEER, 0L);
    set("CURLOPT_SSL_VERIFYHOST", CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!request.ca_file.empty()) set("CURLOPT_CAINFO", CURLOPT_CAINFO, request.ca_file.c_str());
  if (!request.cert_file.empty()) set("CURLOPT_SSLCERT", CURLOPT_SSLCERT, request.cert_file.c_str());
  if (!request.key_file.empty()) set("CURLOPT_SSLKEY", CURLOPT_SSLKEY, request.key_file.c_str());
  // curl copies the path; connections through a socket are reused only for the same socket.
  if (!request.unix_socket.empty()) {
    set("CURLOPT_UNIX_SOCKET_PATH", CURLOPT_UNIX_SOCKET_PATH, request.unix_socket.c_str());
    transfer.unix_socket = request.unix_socket;
  }

  const std::string& method = request.method;
  const bool sends_body = !request.body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (method == "HEAD") {
    set("CURLOPT_NOBODY", CURLOPT_NOBODY, 1L);
  } else if (method == "GET" && !sends_body) {
    set("CURLOPT_HTTPGET", CURLOPT_HTTPGET, 1L);
  } else {
    if (sends_body) {
      // The size must be set before COPYPOSTFIELDS, which copies exactly that many bytes; the
      // copy lets the request's string go away right here.
      set("CURLOPT_POSTFIELDSIZE_LARGE", CURLOPT_POSTFIELDSIZE_LARGE,
          static_cast<curl_off_t>(request.body.size()));
      set("CURLOPT_COPYPOSTFIELDS", CURLOPT_COPYPOSTFIELDS, request.body.data());
    }
    // POSTFIELDS makes the request a POST; other methods replace only the method name.
    if (method != "POST") set("CURLOPT_CUSTOMREQUEST", CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  // Request headers: "Name;" sends an empty header (a bare "Name:" would delete it, per
  // CURLOPT_HTTPHEADER). "Expect:" and "Content-Type:" delete curl's own additions: a body would
  // otherwise wait up to 1 s for "100 Continue", and be labelled x-www-form-urlencoded.
  bool has_expect = false;
  bool has_content_type = false;
  std::vector<std::string> lines;
  lines.reserve(request.headers.size() + 2);
  for (const auto& [name, value] : request.headers) {
    has_expect = has_expect || core::to_lower(name) == "expect";
    has_content_type = has_content_type || core::to_lower(name) == "content-type";
    std::string line = name;
    line += value.empty() ? ";" : ": ";
    line += value;
    lines.push_back(std::move(line));
  }
  if (sends_body && !has_expect) lines.emplace_back("Expect:");
  if (sends_body && !has_content_type) lines.emplace_back("Content-Type:");
  for (const std::string& line : lines) {
    curl_slist* extended = curl_slist_append(transfer.header_list, line.c_str());
    if (extended == nullptr) return "out of memory while building request headers";
    transfer.header_list = extended;
  }
  if (transfer.header_list != nullptr) {
    set("CURLOPT_HTTPHEADER", CURLOPT_HTTPHEADER, transfer.header_list);
  }

  if (failed_option != nullptr) {
    return std::string("libcurl rejected ") + failed_option + ": " + curl_easy_strerror(failure);
  }
  return {};
}

void HttpClient::Impl::cancel(RequestId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  std::unique_ptr<Transfer> transfer = std::move(it->second);
  transfers_.erase(it);
  // Safe here: cancel() runs from user code, which never runs inside a libcurl callback (user
  // callbacks are invoked after curl_multi_socket_action has returned).
  release_easy(*transfer);
}

void HttpClient::Impl::close() {
  if (closed_) return;
  closed_ = true;

  // 1. Remove every easy handle; their callbacks are dropped unrun. Removal may call cb_socket
  //    (CURL_POLL_REMOVE) and cb_timer, which are served normally.
  auto transfers = std::move(transfers_);
  transfers_.clear();
  deferred_ids_.clear();
  for (auto& [id, transfer] : transfers) release_easy(*transfer);
  transfers.clear();

  // 2. curl_multi_cleanup closes the cached connections, and CURLMOPT_SOCKETFUNCTION "can be
  //    called at any time… likely during a call to curl_multi_cleanup" with CURL_POLL_REMOVE.
  //    Our handles stay open until it returns so those calls are safe.
  if (multi_ != nullptr) {
    in_multi_cleanup_ = true;
    if (CURLMcode rc = curl_multi_cleanup(multi_); rc != CURLM_OK) {
      spdlog::error("http client: curl_multi_cleanup failed: {}", curl_multi_strerror(rc));
    }
    in_multi_cleanup_ = false;
    multi_ = nullptr;
  }

  // 3. Safety net: any poll that curl never asked us to remove would keep the loop alive and
  //    make uv_loop_close fail with UV_EBUSY.
  auto leftover = std::move(sockets_);
  sockets_.clear();
  for (SocketContext* context : leftover) {
    uv_poll_stop(&context->handle);
    close_and_free(context);
  }

  // 4. The timers. Closing an active timer stops it; its callback never runs again.
  close_and_free(timeout_);
  timeout_ = nullptr;
  close_and_free(deferred_);
  deferred_ = nullptr;
}

void HttpClient::Impl::release_easy(Transfer& transfer) {
  if (transfer.easy != nullptr) {
    if (transfer.added && multi_ != nullptr) {
      if (CURLMcode rc = curl_multi_remove_handle(multi_, transfer.easy); rc != CURLM_OK) {
        spdlog::error("http client: request {}: curl_multi_remove_handle failed: {}", transfer.id,
                      curl_multi_strerror(rc));
      }
    }
    transfer.added = false;
    curl_easy_cleanup(transfer.easy);
    transfer.easy = nullptr;
  }
  // The header list must outlive the easy handle that points at it (CURLOPT_HTTPHEADER).
  curl_slist_free_all(transfer.header_list);
  transfer.header_list = nullptr;
}

void HttpClient::Impl::defer_failure(std::unique_ptr<Transfer> transfer, std::string error) {
  // The callback must not run inside send(): callers do not expect re-entrancy there, and the
  // header promises that callbacks run on the loop. A 0 ms timer runs it on the next iteration.
  release_easy(*transfer);
  transfer->response = ClientResponse{};
  transfer->response.error = std::move(error);
  const RequestId id = transfer->id;
  transfers_.emplace(id, std::move(transfer));
  deferred_ids_.push_back(id);
  if (deferred_ != nullptr) uv_timer_start(&deferred_->handle, &Impl::on_uv_deferred, 0, 0);
}

int HttpClient::Impl::cb_socket(CURL* /*easy*/, curl_socket_t fd, int action, void* userp,
                                void* socketp) noexcept {
  try {
    return static_cast<Impl*>(userp)->handle_socket(fd, action, static_cast<SocketContext*>(socketp));
  } catch (...) {
    // Only allocation can throw here; -1 makes curl abort the transfers instead of hanging them.
    spdlog::error("http client: exception in the socket callback");
    return -1;
  }
}

int HttpClient::Impl::handle_socket(curl_socket_t fd, int action, SocketContext* context) {
  switch (action) {
    case CURL_POLL_IN:
    case CURL_POLL_OUT:
    case CURL_POLL_INOUT: {
      if (context == nullptr) {
        // During shutdown no new socket is watched; curl is about to forget about it anyway.
        if (closed_) return 0;
        context = new (std::nothrow) SocketContext{};
        if (context == nullptr) return -1;
        context->fd = fd;
        context->owner = this;
        // uv_poll_init_socket fails with UV_EEXIST if another poll still watches this fd, which
        // is why REMOVE closes polls at once (docs/src/poll.rst: one poll per fd).
        if (int rc = uv_poll_init_socket(loop_, &context->handle, fd); rc != 0) {
          spdlog::error("http client: uv_poll_init_socket({}) failed: {}", fd, uv_strerror(rc));
          // The handle was never registered with the loop, so it can be freed directly.
          delete context;
          // -1 makes curl abort its transfers (CURLM_ABORTED_BY_CALLBACK); socket_action then
          // fails them with an error instead of letting them hang.
          return -1;
        }
        context->handle.data = context;
        sockets_.insert(context);
        curl_multi_assign(multi_, fd, context);
      }
      int events = 0;
      if (action != CURL_POLL_IN) events |= UV_WRITABLE;
      if (action != CURL_POLL_OUT) events |= UV_READABLE;
      context->events = events;
      if (int rc = uv_poll_start(&context->handle, events, &Impl::on_uv_socket); rc != 0) {
        spdlog::error("http client: uv_poll_start({}) failed: {}", fd, uv_strerror(rc));
        return -1;
      }
      return 0;
    }
    case CURL_POLL_REMOVE:
      // REMOVE does not mean the fd is closed, but curl may close it and reuse the number right
      // away, so the poll goes at once. The block is freed in its close callback.
      if (context != nullptr) close_socket_context(context);
      // curl drops the association itself; clearing it is harmless and documents intent. It is
      // skipped inside curl_multi_cleanup, where the multi handle is already half torn down.
      if (!in_multi_cleanup_ && multi_ != nullptr) curl_multi_assign(multi_, fd, nullptr);
      return 0;
    default: return 0;
  }
}

void HttpClient::Impl::close_socket_context(SocketContext* context) {
  sockets_.erase(context);
  uv_poll_stop(&context->handle);
  close_and_free(context);
}

int HttpClient::Impl::cb_timer(CURLM* /*multi*/, long timeout_ms, void* userp) noexcept {
  // handle_timer only calls libuv, which does not throw.
  static_cast<Impl*>(userp)->handle_timer(timeout_ms);
  return 0;
}

void HttpClient::Impl::handle_timer(long timeout_ms) {
  if (timeout_ == nullptr) return;
  if (timeout_ms < 0 || closed_) {
    uv_timer_stop(&timeout_->handle);
    return;
  }
  // CURLMOPT_TIMERFUNCTION: we must not call curl_multi_socket_action from inside this callback,
  // so "call it now" (0 ms) becomes "on the next loop iteration" (1 ms).
  const auto delay = static_cast<std::uint64_t>(std::max(timeout_ms, 1L));
  uv_timer_start(&timeout_->handle, &Impl::on_uv_timeout, delay, 0);
}

void HttpClient::Impl::on_uv_socket(uv_poll_t* poll, int status, int events) noexcept {
  auto* context = static_cast<SocketContext*>(poll->data);
  int flags = 0;
  if (status < 0) {
    // libuv reports POLLERR as UV_EBADF and stops the poll (src/unix/poll.c); curl must learn
    // about it or the transfer hangs until its timeout (CCF PR #7308).
    flags = CURL_CSELECT_ERR;
  } else {
    if ((events & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
    if ((events & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
  }
  // The context block stays valid until its close callback, which runs after this function even
  // if curl removes the socket (or a user callback closes the client) during the action.
  try {
    context->owner->socket_action(context->fd, flags);
  } catch (const std::exception& error) {
    spdlog::error("http client: exception while serving a socket: {}", error.what());
  }
  // After an error libuv has stopped the poll, and curl calls cb_socket only when its wishes
  // change. If the socket is still wanted, watch it again with the same events.
  auto* handle = reinterpret_cast<uv_handle_t*>(poll);
  if (status < 0 && !uv_is_closing(handle) && !uv_is_active(handle)) {
    if (int rc = uv_poll_start(poll, context->events, &Impl::on_uv_socket); rc != 0) {
      // Only the transfer's own timeout can end it now.
      spdlog::error("http client: re-arming the poll on fd {} failed: {}", context->fd, uv_strerror(rc));
    }
  }
}

void HttpClient::Impl::on_uv_timeout(uv_timer_t* timer) noexcept {
  auto* block = static_cast<TimerBlock*>(timer->data);
  try {
    block->owner->socket_action(CURL_SOCKET_TIMEOUT, 0);
  } catch (const std::exception& error) {
    spdlog::error("http client: exception while serving a timeout: {}", error.what());
  }
}

void HttpClient::Impl::on_uv_deferred(uv_timer_t* timer) noexcept {
  Impl* self = static_cast<TimerBlock*>(timer->data)->owner;
  std::vector<RequestId> ids = std::move(self->deferred_ids_);
  self->deferred_ids_.clear();
  // deliver() contains user callbacks' exceptions itself and allocates nothing.
  self->deliver(ids);
}

void HttpClient::Impl::socket_action(curl_socket_t fd, int flags) {
  if (closed_ || multi_ == nullptr) return;
  int running = 0;
  CURLMcode rc = curl_multi_socket_action(multi_, fd, flags, &running);
  // Always drain, even when `running` is 0: the last transfer to time out reports DONE with no
  // transfer left running (STYLE.md §3, the multi-uv.c trap).
  std::vector<RequestId> finished;
  collect_finished(finished);
  if (rc != CURLM_OK && rc != CURLM_BAD_SOCKET) {
    // After such an error the multi handle is unusable until handles are re-added, so nothing
    // still in it would ever finish: fail those transfers now rather than let them hang.
    // CURLM_BAD_SOCKET only means curl had already forgotten that socket.
    spdlog::error("http client: curl_multi_socket_action failed: {}", curl_multi_strerror(rc));
    fail_running(std::string("libcurl failed: ") + curl_multi_strerror(rc), finished);
  }
  deliver(finished);
}

void HttpClient::Impl::collect_finished(std::vector<RequestId>& finished) {
  int pending = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &pending)) {
    if (message->msg != CURLMSG_DONE) continue;
    // "Do not use message data after calling curl_multi_remove_handle()" (curl_multi_info_read):
    // copy everything first.
    CURL* easy = message->easy_handle;
    const CURLcode result = message->data.result;
    char* private_data = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &private_data);
    auto* transfer = reinterpret_cast<Transfer*>(private_data);
    if (transfer == nullptr) {
      // Every handle we add carries its Transfer; this cannot happen, but leaking is worse.
      spdlog::critical("http client: finished transfer without its request");
      curl_multi_remove_handle(multi_, easy);
      curl_easy_cleanup(easy);
      continue;
    }

    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t total_us = 0;
    curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us);
    ClientResponse& response = transfer->response;
    response.elapsed = std::chrono::milliseconds(total_us / 1000);
    if (result == CURLE_OK && transfer->overflow == Overflow::kNone) {
      response.status = status;
    } else {
      // A transport failure carries no partial response: status 0, no headers, no body.
      response.error = describe_failure(result, *transfer);
      response.status = 0;
      response.headers.clear();
      response.body.clear();
    }
    release_easy(*transfer);
    finished.push_back(transfer->id);
  }
}

void HttpClient::Impl::fail_running(const std::string& error, std::vector<RequestId>& finished) {
  for (auto& [id, transfer] : transfers_) {
    if (transfer->easy == nullptr || !transfer->added) continue;
    release_easy(*transfer);
    transfer->response = ClientResponse{};
    transfer->response.error = error;
    finished.push_back(id);
  }
}

void HttpClient::Impl::deliver(const std::vector<RequestId>& ids) {
  // `ids` is owned by this frame, so it survives a callback that destroys the client.
  std::weak_ptr<bool> alive = alive_;
  for (RequestId id : ids) {
    // A previous callback may have closed the client or cancelled this request.
    if (closed_) return;
    auto it = transfers_.find(id);
    if (it == transfers_.end()) continue;
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    transfers_.erase(it);
    invoke_user_callback(transfer->on_done, std::move(transfer->response), id);
    if (alive.expired()) return;
  }
}

std::string HttpClient::Impl::describe_failure(CURLcode code, const Transfer& transfer) const {
  if (transfer.overflow == Overflow::kBody || code == CURLE_FILESIZE_EXCEEDED) {
    return "response larger than " + std::to_string(transfer.max_response_bytes) + " bytes";
  }
  if (transfer.overflow == Overflow::kHeaders) {
    return "response headers larger than " + std::to_string(kMaxResponseHeaderBytes) + " bytes";
  }
  std::string text = curl_easy_strerror(code);
  std::string_view detail = core::trim(std::string_view(transfer.error_buffer.data()));
  // curl often ends its detail with the generic text ("Failed to connect to … after 1 ms:
  // Couldn't connect to server"); say it once.
  if (detail.size() > text.size() + 2 && detail.substr(detail.size() - text.size()) == text &&
      detail.substr(detail.size() - text.size() - 2, 2) == ": ") {
    detail.remove_suffix(text.size() + 2);
  }
  if (!detail.empty() && detail != text) {
    text += ": ";
    text += detail;
  }
  // curl says "Failed to connect to localhost port 80" for a socket it could not connect to.
  if (!transfer.unix_socket.empty()) text += " (through the Unix socket " + transfer.unix_socket + ")";
  // curl's messages name hosts and ports, not queries or headers, but that is not a documented
  // promise; callers log this text, so anything that could be a credential goes.
  return redact(std::move(text), transfer.secrets);
}

std::size_t HttpClient::Impl::cb_write(char* data, std::size_t size, std::size_t count,
                                       void* userp) noexcept {
  auto* transfer = static_cast<Transfer*>(userp);
  const std::size_t length = size * count;
  if (transfer->response.body.size() + length > transfer->max_response_bytes) {
    // Returning less than `length` aborts the transfer with CURLE_WRITE_ERROR
    // (CURLOPT_WRITEFUNCTION); the flag turns that into our own message.
    transfer->overflow = Overflow::kBody;
    return 0;
  }
  try {
    transfer->response.body.append(data, length);
  } catch (...) {
    return 0;
  }
  return length;
}

std::size_t HttpClient::Impl::cb_header(char* data, std::size_t size, std::size_t count,
                                        void* userp) noexcept {
  auto* transfer = static_cast<Transfer*>(userp);
  const std::size_t length = size * count;
  transfer->header_bytes += length;
  if (transfer->header_bytes > kMaxResponseHeaderBytes) {
    transfer->overflow = Overflow::kHeaders;
    return 0;
  }
  try {
    // CURLOPT_HEADERFUNCTION delivers one complete line per call, status line and the final empty
    // line included, for every response: interim 1xx ones first, then the final one.
    std::string_view line(data, length);
    HeaderList& headers = transfer->response.headers;
    if (line.substr(0, 5) == "HTTP/") {
      // A new status line: whatever came before belonged to an interim response.
      headers.clear();
      return length;
    }
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      // An obsolete line folding (RFC 9112 §5.2) continues the previous value.
      std::string_view continuation = core::trim(line);
      if (!headers.empty() && !continuation.empty()) {
        headers.back().second.append(" ").append(continuation);
      }
      return length;
    }
    line = core::trim(line);
    auto colon = line.find(':');
    if (line.empty() || colon == std::string_view::npos || colon == 0) return length;
    headers.emplace_back(core::to_lower(core::trim(line.substr(0, colon))),
                         std::string(core::trim(line.substr(colon + 1))));
  } catch (...) {
    return 0;
  }
  return length;
}

HttpClient::HttpClient(uv_loop_t* loop) : impl_(std::make_unique<Impl>(loop)) {}

HttpClient::~HttpClient() = default;

RequestId HttpClient::send(ClientRequest request, ResponseCallback on_done) {
  return impl_->send(std::move(request), std::move(on_done));
}

void HttpClient::cancel(RequestId id) {
  impl_->cancel(id);
}

void HttpClient::close() {
  impl_->close();
}

std::size_t HttpClient::in_flight() const {
  return impl_->in_flight();
}

}  // namespace unshelver::io
