// Loop tests of EventStreams (web/event_stream.h) on a real HttpServer: the replay after
// Last-Event-ID and the live events after it, never one twice; heartbeats; the bound on open
// streams; and a reader that never reads is cut once its unsent bytes pass the bound, instead of
// growing memory. Clients are blocking sockets on 127.0.0.1 in a second thread.
#include "web/event_stream.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "support/loop.h"
#include "uv/http_server.h"
#include "web/event_stream_format.h"

namespace unshelver::web {
namespace {

using namespace std::chrono_literals;

core::EventRecord record(std::uint64_t seq, std::size_t detail_bytes = 10) {
  core::EventRecord r;
  r.seq = seq;
  r.id = "id-" + std::to_string(seq);
  r.action = "unshelve_requested";
  r.backend = "gpu";
  r.detail = std::string(detail_bytes, 'd');
  return r;
}

// A blocking client: connects, sends a GET, and collects what arrives.
class StreamClient {
 public:
  StreamClient(int port, const std::string& extra_headers, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    timeval tv{0, 200'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return;
    const std::string request = "GET /stream HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n";
    static_cast<void>(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL));
  }
  ~StreamClient() { ::close(fd_); }
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  // Reads until `text` has arrived or the connection closed or 5 s passed.
  bool read_until(const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (received_.find(text) == std::string::npos) {
      if (closed_ || std::chrono::steady_clock::now() > deadline) return false;
      read_some();
    }
    return true;
  }
  // Reads until the server closes the connection (or 10 s pass).
  bool read_until_closed() {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!closed_ && std::chrono::steady_clock::now() < deadline) read_some();
    return closed_;
  }
  std::string received() const { return received_; }

 private:
  void read_some() {
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) received_.append(chunk, static_cast<std::size_t>(n));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed_ = true;
  }
  int fd_ = -1;
  std::string received_;
  bool closed_ = false;
};

class EventStreamTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(0, uv_loop_init(&loop_)); }

  void start(EventStreamSettings settings) {
    streams_ = std::make_unique<EventStreams>(&loop_, settings, [this](std::uint64_t after) {
      std::vector<core::EventRecord> out;
      for (std::uint64_t seq = after + 1; seq <= recorded_; ++seq) out.push_back(record(seq));
      return out;
    });
    server_ = std::make_unique<io::HttpServer>(
        &loop_, core::HttpLimits{}, [this](const io::HttpRequest& request, const io::Responder& responder) {
          if (streams_->refuse_when_full()) {
            responder.respond(io::HttpResponse::text(503, "full\n"));
            return;
          }
          std::optional<std::uint64_t> after;
          if (const std::string* last = request.header("Last-Event-ID")) {
            after = parse_last_event_id(*last);
          }
          io::HttpResponse head;
          head.headers.emplace_back("Content-Type", "text/event-stream");
          streams_->open(responder, std::move(head), after);
        });
    ASSERT_TRUE(server_->listen("127.0.0.1", 0).ok());
  }

  // Runs the loop while `client` runs on its own thread; `step` runs on the loop between turns.
  void run(
      const std::function<void(int port)>& client, const std::function<void()>& step = [] {}) {
    std::atomic<bool> done{false};
    std::thread thread([&] {
      client(server_->port());
      done = true;
    });
    EXPECT_TRUE(testing::run_loop_until(
        &loop_,
        [&] {
          step();
          return done.load();
        },
        30s));
    thread.join();
  }

  void TearDown() override {
    if (streams_) streams_->end_all();
    bool closed = false;
    if (server_) server_->shutdown([&] { closed = true; });
    testing::run_loop_until(
        &loop_, [&] { return closed || !server_; }, 5s);
    streams_.reset();
    server_.reset();
    testing::drain_and_close_loop(&loop_);
  }

  uv_loop_t loop_{};
  std::unique_ptr<EventStreams> streams_;
  std::unique_ptr<io::HttpServer> server_;
  std::uint64_t recorded_ = 5;
};

TEST_F(EventStreamTest, ReplaysAfterLastEventIdThenSendsLiveEventsOnce) {
  start({});
  std::atomic<int> phase{0};
  run(
      [&](int port) {
        StreamClient client(port, "Last-Event-ID: 3\r\n");
        EXPECT_TRUE(client.read_until("id: 5\n"));
        phase = 1;  // the loop publishes 5 again (ignored), then 6
        EXPECT_TRUE(client.read_until("id: 6\n"));
        const std::string text = client.received();
        EXPECT_EQ(text.find("id: 3\n"), std::string::npos) << "the client has seen 3";
        EXPECT_NE(text.find("id: 4\nevent: unshelve_requested\ndata: {"), std::string::npos) << text;
        EXPECT_EQ(text.find("id: 5\n"), text.rfind("id: 5\n")) << "5 came once";
        EXPECT_LT(text.find("id: 4\n"), text.find("id: 5\n"));
        EXPECT_NE(text.find("text/event-stream"), std::string::npos);
      },
      [&] {
        if (phase == 1) {
          phase = 2;
          streams_->publish(record(5));
          streams_->publish(record(6));
        }
      });
}

TEST_F(EventStreamTest, WithoutLastEventIdOnlyNewEventsAndHeartbeatsArrive) {
  start({.heartbeat = 50ms});
  std::atomic<int> phase{0};
  run(
      [&](int port) {
        StreamClient client(port, "");
        EXPECT_TRUE(client.read_until(": heartbeat\n\n"));
        phase = 1;
        EXPECT_TRUE(client.read_until("id: 6\n"));
        EXPECT_EQ(client.received().find("id: 5\n"), std::string::npos) << "no replay without Last-Event-ID";
      },
      [&] {
        if (phase == 1) {
          phase = 2;
          streams_->publish(record(6));
        }
      });
}

TEST_F(EventStreamTest, StreamsBeyondTheBoundAreRefused) {
  start({.max_clients = 1});
  run([&](int port) {
    StreamClient first(port, "");
    ASSERT_TRUE(first.read_until("\r\n\r\n"));
    StreamClient second(port, "");
    EXPECT_TRUE(second.read_until("503"));
  });
  EXPECT_EQ(streams_->stats().refused_full, 1u);
}

TEST_F(EventStreamTest, AReaderThatDoesNotReadIsCutAtTheBound) {
  start({.buffer_bytes = std::size_t{64} * 1024});
  std::atomic<bool> opened{false};
  std::atomic<bool> cut{false};
  std::uint64_t next = 6;
  run(
      [&](int port) {
        StreamClient client(port, "", 4096);
        opened = true;
        // Never reads while the loop publishes; then finds the connection closed.
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (!cut && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
        EXPECT_TRUE(client.read_until_closed());
      },
      [&] {
        if (streams_->stats().cut_slow > 0) cut = true;
        // 8 KiB events, a burst per loop turn, while the stream lives.
        if (!opened || streams_->open_streams() == 0) return;
        for (int i = 0; i < 16; ++i) streams_->publish(record(next++, std::size_t{8} * 1024));
      });
  EXPECT_EQ(streams_->stats().cut_slow, 1u);
  EXPECT_EQ(streams_->open_streams(), 0u);
}

}  // namespace
}  // namespace unshelver::web
