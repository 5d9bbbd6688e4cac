// Loop tests for HttpClient: a real libuv loop and real libcurl against a small blocking HTTP/1.1
// server that runs in its own threads on 127.0.0.1 (port 0). The server does not use our own
// HttpServer, so these tests depend only on the client.
//
// Every test ends in TearDown with the client closed, the loop run until it has nothing left and
// uv_loop_close() == 0 (libuv's MAKE_VALGRIND_HAPPY check).
#include "uv/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "support/loop.h"
#include "uv/timer.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

long long query_number(std::string_view target, std::string_view key, long long fallback) {
  std::string needle = std::string(key) + "=";
  auto at = target.find(needle);
  if (at == std::string_view::npos) return fallback;
  return std::stoll(std::string(target.substr(at + needle.size())));
}

// A blocking HTTP/1.1 server, one thread per connection, with keep-alive. The path picks the
// behaviour:
//   /ok                 200, body "hello", a padded X-Test header
//   /delay?ms=N         200 after N ms, body = the request target
//   /hang               reads the request, never answers (until the client goes away)
//   /close              closes the connection without answering
//   /huge?bytes=N       200 with N bytes and a Content-Length
//   /huge-chunked?bytes=N  the same, chunked (the size is not announced)
//   /echo               200, body = "<method> <target>\n" + "<name>: <value>\n"... + "\n" + body
//   /continue           an unsolicited "100 Continue" with a header, then 200
class TestServer {
 public:
  // On 127.0.0.1 and a free port, or on a Unix socket at `unix_path`.
  explicit TestServer(const std::string& unix_path = "") {
    if (!unix_path.empty()) {
      listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un address{};
      address.sun_family = AF_UNIX;
      if (listen_fd_ < 0 || unix_path.size() >= sizeof(address.sun_path))
        throw std::runtime_error("socket failed");
      unix_path.copy(address.sun_path, unix_path.size());
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
          ::listen(listen_fd_, 128) != 0) {
        throw std::runtime_error("bind/listen failed");
      }
      unix_path_ = unix_path;
      acceptor_ = std::thread([this] { accept_loop(); });
      return;
    }
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listen_fd_, 128) != 0) {
      throw std::runtime_error("bind/listen failed");
    }
    socklen_t length = sizeof(address);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~TestServer() {
    stopping_ = true;
    // shutdown() on a listening socket wakes a blocked accept() on Linux; for a Unix socket, a
    // connection does it for sure (the accept loop closes it and stops).
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (!unix_path_.empty()) {
      int waker = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un address{};
      address.sun_family = AF_UNIX;
      unix_path_.copy(address.sun_path, unix_path_.size());
      // Best effort: if it fails, the shutdown() above has woken the accept loop already.
      (void)::connect(waker, reinterpret_cast<sockaddr*>(&address), sizeof(address));
      ::close(waker);
    }
    acceptor_.join();
    ::close(listen_fd_);
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mutex_);
      workers = std::move(workers_);
    }
    for (auto& worker : workers) worker.join();
  }

  std::string url(std::string_view target) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(target);
  }
  int accepted() const { return accepted_.load(); }

 private:
  void accept_loop() {
    while (!stopping_) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      accepted_++;
      std::lock_guard lock(mutex_);
      if (stopping_) {
        ::close(fd);
        return;
      }
      open_fds_.insert(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  static void send_all(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent <= 0) return;
      data.remove_prefix(static_cast<std::size_t>(sent));
    }
  }

  static void respond(int fd, int status, std::string_view extra_headers, std::string_view body) {
    std::string head = "HTTP/1.1 " + std::to_string(status) +
                       " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                       std::string(extra_headers) + "\r\n";
    // One write: with two, Nagle holds the body back until the client's delayed ACK (~40 ms).
    send_all(fd, head + std::string(body));
  }

  void serve(int fd) {
    handle_connection(fd);
    std::lock_guard lock(mutex_);
    open_fds_.erase(fd);
    ::close(fd);
  }

  void handle_connection(int fd) {
    std::string buffer;
    char chunk[16384];
    auto fill = [&]() {
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
      return true;
    };
    for (;;) {
      std::size_t head_end;
      while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
        if (!fill()) return;
      }
      std::string_view head(buffer.data(), head_end);
      auto line_end = head.find("\r\n");
      std::string_view request_line = head.substr(0, line_end);
      auto space1 = request_line.find(' ');
      auto space2 = request_line.find(' ', space1 + 1);
      std::string method(request_line.substr(0, space1));
      std::string target(request_line.substr(space1 + 1, space2 - space1 - 1));
      std::vector<std::pair<std::string, std::string>> headers;
      std::size_t content_length = 0;
      std::size_t position = line_end == std::string_view::npos ? head.size() : line_end + 2;
      while (position < head.size()) {
        auto next = head.find("\r\n", position);
        if (next == std::string_view::npos) next = head.size();
        std::string_view line = head.substr(position, next - position);
        auto colon = line.find(':');
        std::string name(line.substr(0, colon));
        std::string value(colon == std::string_view::npos ? "" : line.substr(colon + 1));
        value.erase(0, value.find_first_not_of(' '));
        if (lower(name) == "content-length") content_length = std::stoul(value);
        headers.emplace_back(std::move(name), std::move(value));
        position = next + 2;
      }
      std::size_t body_begin = head_end + 4;
      while (buffer.size() < body_begin + content_length) {
        if (!fill()) return;
      }
      std::string body = buffer.substr(body_begin, content_length);
      buffer.erase(0, body_begin + content_length);

      std::string path = target.substr(0, target.find('?'));
      if (path == "/ok") {
        respond(fd, 200, "X-Test:   padded value  \r\nContent-Type: text/plain\r\n", "hello");
      } else if (path == "/delay") {
        std::this_thread::sleep_for(std::chrono::milliseconds(query_number(target, "ms", 0)));
        respond(fd, 200, "", target);
      } else if (path == "/hang") {
        while (fill()) {
        }
        return;
      } else if (path == "/close") {
        return;
      } else if (path == "/huge") {
        auto bytes = static_cast<std::size_t>(query_number(target, "bytes", 0));
        respond(fd, 200, "", std::string(bytes, 'x'));
      } else if (path == "/huge-chunked") {
        auto bytes = static_cast<std::size_t>(query_number(target, "bytes", 0));
        send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        while (bytes > 0) {
          std::size_t piece = std::min<std::size_t>(bytes, 4096);
          char size_line[32];
          std::snprintf(size_line, sizeof(size_line), "%zx\r\n", piece);
          send_all(fd, size_line);
          send_all(fd, std::string(piece, 'x') + "\r\n");
          bytes -= piece;
        }
        send_all(fd, "0\r\n\r\n");
      } else if (path == "/echo") {
        std::string echo = method + " " + target + "\n";
        for (const auto& [name, value] : headers) echo += name + ": " + value + "\n";
        echo += "\n" + body;
        respond(fd, 200, "", echo);
      } else if (path == "/continue") {
        send_all(fd, "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n");
        respond(fd, 200, "X-Final: yes\r\n", "done");
      } else {
        respond(fd, 404, "", "not found");
      }
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::string unix_path_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::unordered_set<int> open_fds_;
  std::vector<std::thread> workers_;
};

// A TCP port on which nothing listens: the socket stays bound (so no one else takes the port) but
// never calls listen(), and Linux answers a SYN to it with a RST, i.e. "connection refused".
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  int port() const { return port_; }
  std::string url(std::string_view target) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(target);
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

ClientRequest make_request(std::string url, std::string method = "GET") {
  ClientRequest request;
  request.method = std::move(method);
  request.url = std::move(url);
  return request;
}

// The body of an /echo answer: its first line, its headers (names lower-cased) and its body.
struct Echo {
  std::string request_line;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  bool has_header(std::string_view name) const {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& header) { return header.first == name; });
  }
  std::string header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return "<absent>";
  }
};

Echo parse_echo(const std::string& text) {
  Echo echo;
  auto first = text.find('\n');
  echo.request_line = text.substr(0, first);
  std::size_t position = first + 1;
  while (position < text.size() && text[position] != '\n') {
    auto next = text.find('\n', position);
    std::string line = text.substr(position, next - position);
    auto colon = line.find(": ");
    echo.headers.emplace_back(lower(line.substr(0, colon)),
                              colon == std::string::npos ? "" : line.substr(colon + 2));
    position = next + 1;
  }
  echo.body = position < text.size() ? text.substr(position + 1) : "";
  return echo;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // libcurl honours http_proxy from the environment, also for 127.0.0.1; these tests talk to
    // their own server directly whatever the machine's setup.
    ::setenv("no_proxy", "127.0.0.1", 1);
    ASSERT_EQ(0, uv_loop_init(&loop_));
    client_ = std::make_unique<HttpClient>(&loop_);
  }

  void TearDown() override {
    if (client_) client_->close();
    client_.reset();
    // The client must leave nothing behind.
    testing::drain_and_close_loop(&loop_);
  }

  // Runs the loop until `done()` holds or `limit` has passed; returns whether `done()` held. A
  // repeating timer guarantees wake-ups even if the client stopped asking for any.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return testing::run_loop_until(&loop_, done, limit);
  }

  void run_for(std::chrono::milliseconds duration) {
    run_until([] { return false; }, duration);
  }

  // Sends and waits for the one response.
  ClientResponse fetch(ClientRequest request, std::chrono::milliseconds limit = 10s) {
    ClientResponse result;
    bool done = false;
    client_->send(std::move(request), [&](ClientResponse response) {
      result = std::move(response);
      done = true;
    });
    EXPECT_TRUE(run_until([&] { return done; }, limit)) << "no response in time";
    return result;
  }

  uv_loop_t loop_{};
  std::unique_ptr<HttpClient> client_;
  TestServer server_;
};

TEST_F(HttpClientTest, GetReturnsStatusHeadersAndBody) {
  ClientResponse response;
  bool done = false;
  client_->send(make_request(server_.url("/ok")), [&](ClientResponse r) {
    response = std::move(r);
    done = true;
  });
  EXPECT_EQ(1u, client_->in_flight());
  EXPECT_FALSE(done) << "the callback must not run inside send()";
  ASSERT_TRUE(run_until([&] { return done; }));

  EXPECT_TRUE(response.transport_ok()) << response.error;
  EXPECT_TRUE(response.is_2xx());
  EXPECT_EQ(200, response.status);
  EXPECT_EQ("hello", response.body);
  // Names are lower-cased and values trimmed.
  ASSERT_NE(nullptr, response.header("X-Test"));
  EXPECT_EQ("padded value", *response.header("x-test"));
  bool found_lower_case = false;
  for (const auto& [name, value] : response.headers) {
    if (name == "x-test") found_lower_case = true;
    EXPECT_EQ(lower(name), name);
  }
  EXPECT_TRUE(found_lower_case);
  ASSERT_NE(nullptr, response.header("content-type"));
  EXPECT_EQ("text/plain", *response.header("content-type"));
  EXPECT_LT(response.elapsed, 5000ms);
  EXPECT_EQ(0u, client_->in_flight());
}

TEST_F(HttpClientTest, NonSuccessStatusIsAResponseNotAnError) {
  ClientResponse response = fetch(make_request(server_.url("/missing")));
  EXPECT_TRUE(response.transport_ok()) << response.error;
  EXPECT_FALSE(response.is_2xx());
  EXPECT_EQ(404, response.status);
  EXPECT_EQ("not found", response.body);
}

TEST_F(HttpClientTest, PostBodyAndHeadersAreEchoedWithoutExpectStall) {
  // Above 1 MiB libcurl 7.88 adds "Expect: 100-continue" to a POST and waits up to 1 s for an
  // interim answer that this server never sends.
  ClientRequest request = make_request(server_.url("/echo?x=1"), "POST");
  request.body = std::string(1536 * 1024, 'b') + "end";
  request.headers = {{"X-Custom", "42"}, {"Content-Type", "application/json"}, {"X-Empty", ""}};
  const auto started = Clock::now();
  ClientResponse response = fetch(request);
  const auto wall = Clock::now() - started;

  ASSERT_TRUE(response.transport_ok()) << response.error;
  EXPECT_EQ(200, response.status);
  Echo echo = parse_echo(response.body);
  EXPECT_EQ("POST /echo?x=1", echo.request_line);
  EXPECT_EQ("42", echo.header("x-custom"));
  EXPECT_EQ("application/json", echo.header("content-type"));
  EXPECT_TRUE(echo.has_header("x-empty"));
  EXPECT_EQ("", echo.header("x-empty"));
  EXPECT_EQ(std::to_string(request.body.size()), echo.header("content-length"));
  EXPECT_FALSE(echo.has_header("expect"));
  EXPECT_TRUE(echo.body == request.body) << "body of " << echo.body.size() << " bytes differs";
  EXPECT_LT(wall, 900ms) << "a 100-continue stall?";
}

TEST_F(HttpClientTest, MethodsAreSentAsRequested) {
  for (std::string method : {"PUT", "PATCH", "DELETE"}) {
    ClientRequest request = make_request(server_.url("/echo"), method);
    request.body = "{\"m\":\"" + method + "\"}";
    request.headers = {{"Content-Type", "application/json"}};
    Echo echo = parse_echo(fetch(request).body);
    EXPECT_EQ(method + " /echo", echo.request_line);
    EXPECT_EQ(request.body, echo.body);
    EXPECT_FALSE(echo.has_header("expect"));
  }
  // Without a body: DELETE sends none, POST announces an empty one, and neither gets curl's
  // default form content type.
  Echo plain_delete = parse_echo(fetch(make_request(server_.url("/echo"), "DELETE")).body);
  EXPECT_EQ("DELETE /echo", plain_delete.request_line);
  EXPECT_FALSE(plain_delete.has_header("content-length"));
  Echo empty_post = parse_echo(fetch(make_request(server_.url("/echo"), "POST")).body);
  EXPECT_EQ("POST /echo", empty_post.request_line);
  EXPECT_EQ("0", empty_post.header("content-length"));
  EXPECT_FALSE(empty_post.has_header("content-type"));
  Echo get = parse_echo(fetch(make_request(server_.url("/echo"))).body);
  EXPECT_EQ("GET /echo", get.request_line);

  ClientResponse head = fetch(make_request(server_.url("/ok"), "HEAD"));
  EXPECT_TRUE(head.transport_ok()) << head.error;
  EXPECT_EQ(200, head.status);
  EXPECT_EQ("", head.body);
}

TEST_F(HttpClientTest, TwentyConcurrentRequestsAllComplete) {
  constexpr int kCount = 20;
  std::vector<ClientResponse> responses(kCount);
  int done = 0;
  const auto started = Clock::now();
  for (int i = 0; i < kCount; ++i) {
    client_->send(make_request(server_.url("/delay?ms=300&n=" + std::to_string(i))),
                  [&, i](ClientResponse response) {
                    responses[i] = std::move(response);
                    ++done;
                  });
  }
  EXPECT_EQ(static_cast<std::size_t>(kCount), client_->in_flight());
  ASSERT_TRUE(run_until([&] { return done == kCount; }));
  const auto wall = Clock::now() - started;
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(200, responses[i].status) << responses[i].error;
    EXPECT_EQ("/delay?ms=300&n=" + std::to_string(i), responses[i].body);
  }
  // Sequential transfers would need 20 × 300 ms.
  EXPECT_LT(wall, 3000ms);
  EXPECT_EQ(0u, client_->in_flight());
}

TEST_F(HttpClientTest, TimeoutAgainstHangingServer) {
  ClientRequest request = make_request(server_.url("/hang"));
  request.timeout = 300ms;
  const auto started = Clock::now();
  ClientResponse response = fetch(request);
  const auto wall = Clock::now() - started;
  EXPECT_FALSE(response.transport_ok());
  EXPECT_EQ(0, response.status);
  EXPECT_NE(std::string::npos, lower(response.error).find("timeout")) << response.error;
  EXPECT_GE(response.elapsed, 280ms);
  EXPECT_LT(response.elapsed, 1000ms);
  EXPECT_GE(wall, 280ms);
  EXPECT_LT(wall, 1500ms);
}

TEST_F(HttpClientTest, ConnectionRefusedFailsQuickly) {
  RefusingPort refusing;
  ClientRequest request = make_request(refusing.url("/"));
  request.timeout = 5000ms;
  const auto started = Clock::now();
  ClientResponse response = fetch(request);
  EXPECT_LT(Clock::now() - started, 1000ms);
  EXPECT_FALSE(response.transport_ok());
  EXPECT_EQ(0, response.status);
  EXPECT_NE(std::string::npos, lower(response.error).find("connect")) << response.error;
  EXPECT_LT(response.elapsed, 1000ms);
}

TEST_F(HttpClientTest, ServerClosingWithoutAnswerIsAnError) {
  ClientResponse response = fetch(make_request(server_.url("/close")));
  EXPECT_FALSE(response.transport_ok());
  EXPECT_EQ(0, response.status);
  EXPECT_TRUE(response.headers.empty());
  EXPECT_NE(std::string::npos, lower(response.error).find("nothing")) << response.error;
}

TEST_F(HttpClientTest, MaxResponseBytesIsEnforced) {
  for (std::string path : {"/huge", "/huge-chunked"}) {
    ClientRequest at_limit = make_request(server_.url(path + "?bytes=1000"));
    at_limit.max_response_bytes = 1000;
    ClientResponse fits = fetch(at_limit);
    EXPECT_TRUE(fits.transport_ok()) << path << ": " << fits.error;
    EXPECT_EQ(1000u, fits.body.size()) << path;

    ClientRequest too_big = make_request(server_.url(path + "?bytes=300000"));
    too_big.max_response_bytes = 1000;
    ClientResponse response = fetch(too_big);
    EXPECT_EQ("response larger than 1000 bytes", response.error) << path;
    EXPECT_EQ(0, response.status) << path;
    EXPECT_TRUE(response.body.empty()) << path;
  }
}

TEST_F(HttpClientTest, InterimResponseHeadersAreDropped) {
  ClientResponse response = fetch(make_request(server_.url("/continue")));
  ASSERT_TRUE(response.transport_ok()) << response.error;
  EXPECT_EQ(200, response.status);
  EXPECT_EQ("done", response.body);
  EXPECT_NE(nullptr, response.header("x-final"));
  EXPECT_EQ(nullptr, response.header("x-interim"));
}

TEST_F(HttpClientTest, CancelledRequestNeverCallsBack) {
  int calls = 0;
  RequestId before_start =
      client_->send(make_request(server_.url("/delay?ms=100")), [&](ClientResponse) { ++calls; });
  RequestId connected = client_->send(make_request(server_.url("/hang")), [&](ClientResponse) { ++calls; });
  EXPECT_EQ(2u, client_->in_flight());
  client_->cancel(before_start);
  EXPECT_EQ(1u, client_->in_flight());
  run_for(150ms);  // the hanging request is now connected and waiting
  EXPECT_EQ(1, server_.accepted());
  client_->cancel(connected);
  client_->cancel(connected);  // unknown ids are ignored
  client_->cancel(12345);
  EXPECT_EQ(0u, client_->in_flight());
  run_for(300ms);
  EXPECT_EQ(0, calls);

  // The client still works afterwards.
  EXPECT_EQ(200, fetch(make_request(server_.url("/ok"))).status);
}

TEST_F(HttpClientTest, CancelFromAnotherCallbackSuppressesIt) {
  int slow_calls = 0;
  bool fast_done = false;
  RequestId slow =
      client_->send(make_request(server_.url("/delay?ms=300")), [&](ClientResponse) { ++slow_calls; });
  client_->send(make_request(server_.url("/ok")), [&](ClientResponse) {
    client_->cancel(slow);
    fast_done = true;
  });
  ASSERT_TRUE(run_until([&] { return fast_done; }));
  run_for(500ms);
  EXPECT_EQ(0, slow_calls);
  EXPECT_EQ(0u, client_->in_flight());
}

TEST_F(HttpClientTest, CancelWithinOneCompletionBatch) {
  // Requests that fail before reaching curl complete together on the next loop iteration, so the
  // first callback cancels a request that has finished but whose callback has not run yet.
  int second_calls = 0;
  bool first_done = false;
  ClientRequest bad = make_request(server_.url("/ok"), "BAD METHOD");
  RequestId second = 0;
  client_->send(bad, [&](ClientResponse response) {
    EXPECT_EQ("invalid request method", response.error);
    client_->cancel(second);
    first_done = true;
  });
  second = client_->send(bad, [&](ClientResponse) { ++second_calls; });
  ASSERT_TRUE(run_until([&] { return first_done; }));
  run_for(50ms);
  EXPECT_EQ(0, second_calls);
}

TEST_F(HttpClientTest, CloseWithRequestsInFlightRunsNoCallbacks) {
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    client_->send(make_request(server_.url("/hang")), [&](ClientResponse) { ++calls; });
    client_->send(make_request(server_.url("/delay?ms=150")), [&](ClientResponse) { ++calls; });
  }
  run_for(50ms);
  EXPECT_EQ(0, calls);
  // A failure that has not been delivered yet (it would be, on the next loop iteration).
  ClientRequest bad = make_request(server_.url("/ok"), "BAD METHOD");
  client_->send(bad, [&](ClientResponse) { ++calls; });
  client_->close();
  EXPECT_EQ(0u, client_->in_flight());
  EXPECT_EQ(0u, client_->send(make_request(server_.url("/ok")), [&](ClientResponse) { ++calls; }));
  client_->close();  // idempotent
  // uv_run returns by itself: nothing of the client is left to keep the loop alive.
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(0, calls);
  EXPECT_EQ(0, uv_loop_alive(&loop_));
}

TEST_F(HttpClientTest, DestructorWithRequestsInFlightRunsNoCallbacks) {
  int calls = 0;
  client_->send(make_request(server_.url("/hang")), [&](ClientResponse) { ++calls; });
  client_->send(make_request(server_.url("/delay?ms=100")), [&](ClientResponse) { ++calls; });
  run_for(20ms);
  client_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(0, calls);
}

TEST_F(HttpClientTest, CloseFromInsideACallback) {
  int hang_calls = 0;
  bool closed = false;
  client_->send(make_request(server_.url("/hang")), [&](ClientResponse) { ++hang_calls; });
  client_->send(make_request(server_.url("/ok")), [&](ClientResponse response) {
    EXPECT_EQ(200, response.status);
    client_->close();
    closed = true;
  });
  ASSERT_TRUE(run_until([&] { return closed; }));
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(0, hang_calls);
}

TEST_F(HttpClientTest, DestroyFromInsideACallback) {
  int other_calls = 0;
  bool destroyed = false;
  // Both fail before reaching curl, so they complete in the same batch: destroying the client in
  // the first callback must stop the delivery loop before the second.
  ClientRequest bad = make_request(server_.url("/ok"), "BAD METHOD");
  client_->send(bad, [&](ClientResponse) {
    client_.reset();
    destroyed = true;
  });
  client_->send(bad, [&](ClientResponse) { ++other_calls; });
  ASSERT_TRUE(run_until([&] { return destroyed; }));
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(0, other_calls);
}

TEST_F(HttpClientTest, ReentrantSendFromCallback) {
  std::vector<long> statuses;
  std::function<void(ClientResponse)> on_done = [&](ClientResponse response) {
    statuses.push_back(response.status);
    if (statuses.size() < 3) client_->send(make_request(server_.url("/ok")), on_done);
  };
  client_->send(make_request(server_.url("/ok")), on_done);
  ASSERT_TRUE(run_until([&] { return statuses.size() == 3; }));
  EXPECT_EQ((std::vector<long>{200, 200, 200}), statuses);
  EXPECT_EQ(0u, client_->in_flight());
}

TEST_F(HttpClientTest, ThrowingCallbackIsContained) {
  // Each callback records that it ran before it throws: without that the test would also pass if
  // the client never called them.
  bool answered_ran = false;
  bool refused_ran = false;
  client_->send(make_request(server_.url("/ok")), [&](ClientResponse response) {
    answered_ran = true;
    EXPECT_EQ(200, response.status);
    throw std::runtime_error("boom");
  });
  RefusingPort refusing;
  client_->send(make_request(refusing.url("/")), [&](ClientResponse response) {
    refused_ran = true;
    EXPECT_FALSE(response.transport_ok());
    throw 42;
  });
  ASSERT_TRUE(run_until([&] { return answered_ran && refused_ran; }))
      << "answered ran: " << answered_ran << ", refused ran: " << refused_ran;
  EXPECT_EQ(0u, client_->in_flight());
  EXPECT_EQ(200, fetch(make_request(server_.url("/ok"))).status);
}

TEST_F(HttpClientTest, ErrorTextNeverContainsQueryOrHeaderValues) {
  RefusingPort refusing;
  ClientRequest refused = make_request(refusing.url("/api?token=secret-query-value"));
  refused.headers = {{"Authorization", "Bearer secret-header-value"}};
  ClientResponse refused_response = fetch(refused);
  ASSERT_FALSE(refused_response.transport_ok());
  EXPECT_EQ(std::string::npos, refused_response.error.find("secret")) << refused_response.error;
  EXPECT_EQ(std::string::npos, refused_response.error.find("token")) << refused_response.error;

  ClientRequest hanging = make_request(server_.url("/hang?token=secret-query-value#frag-secret"));
  hanging.timeout = 200ms;
  hanging.headers = {{"X-Api-Key", "secret-key-value"}};
  ClientResponse hanging_response = fetch(hanging);
  ASSERT_FALSE(hanging_response.transport_ok());
  EXPECT_EQ(std::string::npos, hanging_response.error.find("secret")) << hanging_response.error;

  // libcurl's detail text names the host and the port. When a query value or a header value
  // happens to be the same text, it is redacted too, while the rest of the message stays useful.
  ClientRequest echoing = make_request(refusing.url("/?next=127.0.0.1"));
  echoing.headers = {{"X-Port", std::to_string(refusing.port())}};
  ClientResponse echoing_response = fetch(echoing);
  ASSERT_FALSE(echoing_response.transport_ok());
  EXPECT_EQ(std::string::npos, echoing_response.error.find("127.0.0.1")) << echoing_response.error;
  EXPECT_EQ(std::string::npos, echoing_response.error.find(std::to_string(refusing.port())))
      << echoing_response.error;
  EXPECT_NE(std::string::npos, lower(echoing_response.error).find("connect")) << echoing_response.error;
}

TEST_F(HttpClientTest, InvalidHeaderFailsAsynchronouslyWithoutLeakingIt) {
  ClientRequest request = make_request(server_.url("/ok"));
  request.headers = {{"X-Token", "secret\r\nX-Injected: 1"}};
  bool done = false;
  ClientResponse result;
  client_->send(request, [&](ClientResponse response) {
    result = std::move(response);
    done = true;
  });
  EXPECT_FALSE(done) << "the callback must not run inside send()";
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ("invalid value for request header X-Token", result.error);
  EXPECT_EQ(0, server_.accepted());
}

TEST_F(HttpClientTest, KeepAliveReusesOneConnection) {
  int done = 0;
  client_->send(make_request(server_.url("/ok")), [&](ClientResponse first) {
    EXPECT_EQ(200, first.status);
    // Sent from inside the callback: the first connection is already back in the cache.
    client_->send(make_request(server_.url("/ok")), [&](ClientResponse second) {
      EXPECT_EQ(200, second.status);
      ++done;
    });
    ++done;
  });
  ASSERT_TRUE(run_until([&] { return done == 2; }));
  // And once more from a later loop iteration.
  EXPECT_EQ(200, fetch(make_request(server_.url("/ok"))).status);
  EXPECT_EQ(1, server_.accepted());
}

// issue 15 §6: Caddy's admin API on a Unix socket. The request goes through the socket, never to
// the URL's host and port, and an empty Host header is sent as such (Caddy allows only that there).
TEST_F(HttpClientTest, UnixSocketCarriesTheRequestWithTheHeadersAsGiven) {
  char pattern[] = "/tmp/http-client-XXXXXX";
  ASSERT_NE(nullptr, ::mkdtemp(pattern));
  const std::string dir = pattern;
  const std::string path = dir + "/admin.sock";
  {
    TestServer socket_server(path);
    ClientRequest request = make_request(server_.url("/echo"), "POST");
    request.unix_socket = path;
    request.headers = {{"Host", ""}, {"Content-Type", "text/caddyfile"}};
    request.body = "{\n}\n";
    ClientResponse response = fetch(request);
    ASSERT_TRUE(response.transport_ok()) << response.error;
    EXPECT_EQ(200, response.status);
    Echo echo = parse_echo(response.body);
    EXPECT_EQ("POST /echo", echo.request_line);
    EXPECT_EQ("", echo.header("host"));
    EXPECT_EQ("text/caddyfile", echo.header("content-type"));
    EXPECT_EQ("{\n}\n", echo.body);
    EXPECT_EQ(1, socket_server.accepted());
    EXPECT_EQ(0, server_.accepted());  // The URL's host and port were not used.

    // Without a Host header of its own, the URL's host goes into it.
    request = make_request("http://localhost/echo");
    request.unix_socket = path;
    echo = parse_echo(fetch(request).body);
    EXPECT_EQ("localhost", echo.header("host"));
  }
  // Nobody listens any more: a transport error that names the socket.
  ClientRequest request = make_request("http://localhost/echo");
  request.unix_socket = path;
  ClientResponse response = fetch(request);
  EXPECT_FALSE(response.transport_ok());
  EXPECT_NE(std::string::npos, response.error.find("through the Unix socket " + path)) << response.error;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace unshelver::io
