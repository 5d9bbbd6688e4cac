// http_request_fuzz: the HTTP server's request path (uv/http_server.h) on arbitrary bytes from a
// client. The server parses only what arrives on a connection and has no loop-less entry point,
// so this target runs one HttpServer on a libuv loop in this process, on 127.0.0.1, and feeds each
// input through a fresh loopback connection: connect, send the bytes, half-close, then run the
// loop until the server has closed the connection (each input is bounded: a few milliseconds,
// at most kDeadline). It must never crash, throw or trip a sanitizer, and:
// - every request that reaches the handler keeps to the configured limits (target, header count
//   and bytes, body) and is split consistently (target == path ["?" query]);
// - whatever the server sends back is HTTP/1.1 responses (or nothing);
// - after the client's end of input the server closes the connection: no input leaves it open.
//
//   scripts/fuzz [SECONDS]    builds this with clang and runs it on corpus/http_request/
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "uv/http_server.h"

namespace {

using namespace std::chrono_literals;
using unshelver::io::HttpRequest;
using unshelver::io::HttpResponse;
using unshelver::io::HttpServer;
using unshelver::io::Responder;

constexpr auto kDeadline = 5s;

void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "http_request_fuzz: %s\n", what);
  std::abort();
}

// Small limits, so that short inputs reach every one of them.
unshelver::core::HttpLimits fuzz_limits() {
  unshelver::core::HttpLimits limits;
  limits.max_url_bytes = 256;
  limits.max_header_bytes = 1024;
  limits.max_header_count = 16;
  limits.max_body_bytes = 1024;
  limits.header_timeout = 2s;
  limits.idle_timeout = 2s;
  limits.shutdown_grace = 100ms;
  return limits;
}

void check_request(const HttpRequest& request, const unshelver::core::HttpLimits& limits) {
  require(!request.method.empty(), "a request without a method");
  require(request.target.size() <= limits.max_url_bytes, "a target beyond max_url_bytes");
  require(request.headers.size() <= limits.max_header_count, "more headers than max_header_count");
  std::size_t header_bytes = 0;
  for (const auto& [name, value] : request.headers) header_bytes += name.size() + value.size();
  require(header_bytes <= limits.max_header_bytes, "header bytes beyond max_header_bytes");
  require(request.body.size() <= limits.max_body_bytes, "a body beyond max_body_bytes");
  const std::string rebuilt =
      request.target.find('?') == std::string::npos ? request.path : request.path + "?" + request.query;
  require(rebuilt == request.target, "target is not path [? query]");
}

// One server on one loop for the whole run; never destroyed (libFuzzer ends with exit()).
struct Harness {
  Harness() {
    require(uv_loop_init(&loop) == 0, "uv_loop_init");
    spdlog::set_level(spdlog::level::off);
    limits = fuzz_limits();
    server =
        std::make_unique<HttpServer>(&loop, limits, [this](const HttpRequest& request, Responder responder) {
          check_request(request, limits);
          responder.respond(HttpResponse::text(200, request.method + " " + request.path + "\n"));
        });
    require(server->listen("127.0.0.1", 0).ok(), "listen on 127.0.0.1");
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(server->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }

  uv_loop_t loop{};
  unshelver::core::HttpLimits limits;
  std::unique_ptr<HttpServer> server;
  sockaddr_in address{};
};

Harness& harness() {
  static Harness* instance = new Harness;
  return *instance;
}

// Reads what is there without blocking; false once the server has closed (or reset) the connection.
bool read_available(int fd, std::string& received) {
  char buffer[16 * 1024];
  while (true) {
    const ssize_t got = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got > 0) {
      received.append(buffer, static_cast<std::size_t>(got));
      continue;
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (got < 0 && errno == EINTR) continue;
    return false;  // 0: closed; ECONNRESET and the like: closed too
  }
}

// One turn: the server's loop without blocking, then a short wait for bytes from it.
void turn(Harness& h, int fd) {
  uv_run(&h.loop, UV_RUN_NOWAIT);
  pollfd wanted{fd, POLLIN, 0};
  ::poll(&wanted, 1, 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Harness& h = harness();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  require(fd >= 0, "socket");
  // On loopback the kernel completes the handshake from the listen backlog: no accept needed.
  require(::connect(fd, reinterpret_cast<const sockaddr*>(&h.address), sizeof(h.address)) == 0, "connect");
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;

  std::string received;
  bool open = true;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty() && open) {
    const ssize_t sent = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      rest.remove_prefix(static_cast<std::size_t>(sent));
    } else if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      break;  // the server closed the connection (after a 4xx) before all bytes were sent
    }
    turn(h, fd);
    open = read_available(fd, received);
    require(std::chrono::steady_clock::now() < deadline, "the server stopped reading the request");
  }
  ::shutdown(fd, SHUT_WR);
  while (open) {
    turn(h, fd);
    open = read_available(fd, received);
    require(std::chrono::steady_clock::now() < deadline,
            "the server neither answered nor closed the connection after the client's end of input");
  }
  ::close(fd);
  // Let the server finish closing its side before the next input.
  for (int i = 0; i < 3; ++i) uv_run(&h.loop, UV_RUN_NOWAIT);

  require(received.empty() || received.starts_with("HTTP/1.1 "), "the answer is not an HTTP/1.1 response");
  return 0;
}
