// Loop tests for ConnectionMonitor against the real kernel on 127.0.0.1.
//
// The monitor leaves out sockets owned by its own process by design, so the client side of each
// connection lives in a child process (fork() before any sampling; the child only makes system
// calls and _exit()s). The listeners and the accepted server-side sockets stay in this process:
// their destination is the client's ephemeral port, so they are not connections "to the
// upstream" anyway. One test also makes a client connection from this process and checks that it
// is left out.
//
// Every test ends in TearDown with the monitor destroyed, the loop run until it has nothing left
// and uv_loop_close() == 0 (libuv's MAKE_VALGRIND_HAPPY check).
#include "activity/connection_monitor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/loop.h"
#include "uv/timer.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;

// A listening socket on a loopback address (port 0), owned by this process.
class Listener {
 public:
  Listener(int family, const char* address) {
    fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (family == AF_INET) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
      v4->sin_family = AF_INET;
      inet_pton(AF_INET, address, &v4->sin_addr);
      length = sizeof(*v4);
    } else {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
      v6->sin6_family = AF_INET6;
      inet_pton(AF_INET6, address, &v6->sin6_addr);
      length = sizeof(*v6);
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&storage), length) != 0 || ::listen(fd_, 1024) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length);
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&storage)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  }
  ~Listener() {
    for (int fd : accepted_) ::close(fd);
    if (fd_ >= 0) ::close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  bool ok() const { return fd_ >= 0; }
  std::uint16_t port() const { return port_; }

  // Accepts the next connection (already established by the kernel), or returns -1 after 5 s.
  int accept_one() {
    pollfd readable{fd_, POLLIN, 0};
    if (::poll(&readable, 1, 5000) != 1) return -1;
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) accepted_.push_back(fd);
    return fd;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> accepted_;
};

// A TCP client in a child process. It makes `count` connections, answers 'c' (or 'e') on the
// status pipe, then obeys one-byte commands on the control pipe: 's' sends one byte to the server
// on its first connection and answers 'k'; 'q' or the end of the pipe makes it exit (closing its
// connections).
class ChildClient {
 public:
  ChildClient(int family, const char* address, std::uint16_t port, int count = 1) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (family == AF_INET) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
      v4->sin_family = AF_INET;
      v4->sin_port = htons(port);
      inet_pton(AF_INET, address, &v4->sin_addr);
      length = sizeof(*v4);
    } else {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(port);
      inet_pton(AF_INET6, address, &v6->sin6_addr);
      length = sizeof(*v6);
    }
    int control[2];
    int status[2];
    if (::pipe2(control, O_CLOEXEC) != 0) return;
    if (::pipe2(status, O_CLOEXEC) != 0) {
      ::close(control[0]);
      ::close(control[1]);
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) run_child(control[0], status[1], storage, length, count);
    ::close(control[0]);
    ::close(status[1]);
    control_ = control[1];
    status_ = status[0];
    connected_ = pid_ > 0 && read_reply() == 'c';
  }
  ~ChildClient() { quit(); }
  ChildClient(const ChildClient&) = delete;
  ChildClient& operator=(const ChildClient&) = delete;

  bool connected() const { return connected_; }

  bool send_byte() {
    char command = 's';
    if (::write(control_, &command, 1) != 1) return false;
    return read_reply() == 'k';
  }

  // Ends the child, which closes its connection, and waits for it.
  void quit() {
    if (control_ >= 0) ::close(control_);
    if (status_ >= 0) ::close(status_);
    control_ = status_ = -1;
    if (pid_ > 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

 private:
  [[noreturn]] static void run_child(int control, int status, const sockaddr_storage& address,
                                     socklen_t length, int count) {
    // Drop every inherited descriptor (the parent's listeners, accepted sockets, netlink socket)
    // so that the child owns only its own connection.
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != control && fd != status) ::close(fd);
    }
    int first = -1;
    char reply = 'c';
    for (int i = 0; i < count && reply == 'c'; ++i) {
      int fd = ::socket(address.ss_family, SOCK_STREAM, 0);
      if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) reply = 'e';
      if (first < 0) first = fd;
    }
    if (::write(status, &reply, 1) != 1) ::_exit(1);
    char command = 0;
    while (::read(control, &command, 1) == 1 && command != 'q') {
      if (command == 's') {
        char byte = 'x';
        reply = ::write(first, &byte, 1) == 1 ? 'k' : 'e';
        if (::write(status, &reply, 1) != 1) break;
      }
    }
    ::_exit(0);
  }

  char read_reply() {
    pollfd readable{status_, POLLIN, 0};
    if (::poll(&readable, 1, 5000) != 1) return 0;
    char reply = 0;
    return ::read(status_, &reply, 1) == 1 ? reply : 0;
  }

  pid_t pid_ = -1;
  int control_ = -1;
  int status_ = -1;
  bool connected_ = false;
};

std::string endpoint(const char* address, std::uint16_t port) {
  return std::string(address) + ":" + std::to_string(port);
}

std::uint64_t socket_inode(int fd) {
  struct stat info {};
  return ::fstat(fd, &info) == 0 ? info.st_ino : 0;
}

// A client connection owned by this process to 127.0.0.1:`port` (like the health prober's); -1 on
// failure.
int connect_from_this_process(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class ConnectionMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Tests need the kernel interface itself; probe it independently of the code under test.
    int probe = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (probe < 0) GTEST_SKIP() << "NETLINK_SOCK_DIAG unavailable here: " << std::strerror(errno);
    ::close(probe);
    ASSERT_EQ(0, uv_loop_init(&loop_));
    loop_ready_ = true;
    monitor_ = std::make_unique<ConnectionMonitor>(
        &loop_, 50ms, [this](const std::string& upstream, const std::vector<core::ConnectionSample>& sample) {
          samples_[upstream].push_back(sample);
          if (on_sample_) on_sample_(upstream, sample);
        });
  }

  void TearDown() override {
    if (!loop_ready_) return;
    monitor_.reset();
    testing::drain_and_close_loop(&loop_);
  }

  std::vector<core::ConnectionSample> sample(const std::string& upstream) {
    auto result = monitor_->sample_now(upstream);
    EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
    return result.ok() ? *result : std::vector<core::ConnectionSample>{};
  }

  uv_loop_t loop_{};
  bool loop_ready_ = false;
  std::unique_ptr<ConnectionMonitor> monitor_;
  std::map<std::string, std::vector<std::vector<core::ConnectionSample>>> samples_;
  ConnectionMonitor::SampleCallback on_sample_;
};

TEST_F(ConnectionMonitorTest, ReportsAnEstablishedConnectionFromAnotherProcess) {
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  ChildClient client(AF_INET, "127.0.0.1", listener.port());
  ASSERT_TRUE(client.connected());
  ASSERT_GE(listener.accept_one(), 0);

  auto connections = sample(endpoint("127.0.0.1", listener.port()));
  ASSERT_EQ(connections.size(), 1u);
  EXPECT_NE(connections[0].inode, 0u);
  // Freshly connected, nothing exchanged: both timings date from the handshake.
  EXPECT_LT(connections[0].since_recv_ms, 5000u);
}

TEST_F(ConnectionMonitorTest, TimingsFollowTheTraffic) {
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  ChildClient client(AF_INET, "127.0.0.1", listener.port());
  ASSERT_TRUE(client.connected());
  int server = listener.accept_one();
  ASSERT_GE(server, 0);
  const std::string upstream = endpoint("127.0.0.1", listener.port());

  // Idle: the time since the last received data grows.
  auto before = sample(upstream);
  std::this_thread::sleep_for(400ms);
  auto after = sample(upstream);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(before[0].inode, after[0].inode);
  EXPECT_GE(after[0].since_recv_ms, before[0].since_recv_ms + 300);

  // The client (Caddy's side) sends a request: data sent more recently than received, which is
  // what "waiting for a response" looks like.
  ASSERT_TRUE(client.send_byte());
  auto waiting = sample(upstream);
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_LT(waiting[0].since_send_ms, waiting[0].since_recv_ms);
  EXPECT_LT(waiting[0].since_send_ms, 1000u);

  // The server answers: the time since received data starts again from zero.
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(::write(server, "y", 1), 1);
  std::this_thread::sleep_for(20ms);
  auto answered = sample(upstream);
  ASSERT_EQ(answered.size(), 1u);
  // The answer came at least 100 ms after the request; thresholds are loose for loaded machines.
  EXPECT_LT(answered[0].since_recv_ms, answered[0].since_send_ms);
  EXPECT_LT(answered[0].since_recv_ms, 300u);
}

TEST_F(ConnectionMonitorTest, ConnectionsToOtherPortsAreNotReported) {
  Listener first(AF_INET, "127.0.0.1");
  Listener second(AF_INET, "127.0.0.1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  ChildClient to_first(AF_INET, "127.0.0.1", first.port());
  ChildClient to_second(AF_INET, "127.0.0.1", second.port());
  ChildClient to_second_again(AF_INET, "127.0.0.1", second.port());
  ASSERT_TRUE(to_first.connected());
  ASSERT_TRUE(to_second.connected());
  ASSERT_TRUE(to_second_again.connected());

  auto at_first = sample(endpoint("127.0.0.1", first.port()));
  auto at_second = sample(endpoint("127.0.0.1", second.port()));
  EXPECT_EQ(at_first.size(), 1u);
  EXPECT_EQ(at_second.size(), 2u);
  for (const auto& connection : at_first) {
    for (const auto& other : at_second) EXPECT_NE(connection.inode, other.inode);
  }
  // Same port, another address: nothing.
  EXPECT_TRUE(sample(endpoint("127.0.0.2", first.port())).empty());
}

TEST_F(ConnectionMonitorTest, SocketsOfThisProcessAreExcluded) {
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  ChildClient child(AF_INET, "127.0.0.1", listener.port());
  ASSERT_TRUE(child.connected());

  // A client connection owned by this process, to the same upstream (like the health prober's).
  const int own = connect_from_this_process(listener.port());
  ASSERT_GE(own, 0);
  const std::uint64_t own_inode = socket_inode(own);
  ASSERT_NE(own_inode, 0u);

  auto connections = sample(endpoint("127.0.0.1", listener.port()));
  EXPECT_EQ(connections.size(), 1u);
  for (const auto& connection : connections) EXPECT_NE(connection.inode, own_inode);
  ::close(own);
}

// Issue 15 §2: with every descriptor taken, the monitor could not open /proc/self/fd and then
// counted this process's own connection (the health probe) as Caddy's request in flight. Its own
// sockets must stay excluded, or the sample must fail (unknown); never be reported.
TEST_F(ConnectionMonitorTest, OwnSocketsStayExcludedWhenDescriptorsRunOut) {
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  const int own = connect_from_this_process(listener.port());
  ASSERT_GE(own, 0);
  const std::uint64_t own_inode = socket_inode(own);
  const std::string upstream = endpoint("127.0.0.1", listener.port());
  EXPECT_TRUE(sample(upstream).empty());  // The monitor is set up while descriptors are plentiful.

  // Take every descriptor: a low soft limit, filled with duplicates.
  rlimit saved{};
  ASSERT_EQ(0, ::getrlimit(RLIMIT_NOFILE, &saved));
  const int probe = ::dup(0);
  ASSERT_GE(probe, 0);
  ::close(probe);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(probe) + 16;
  ASSERT_EQ(0, ::setrlimit(RLIMIT_NOFILE, &low));
  std::vector<int> filler;
  for (int fd; (fd = ::dup(0)) >= 0;) filler.push_back(fd);
  const int exhausted = errno;

  auto result = monitor_->sample_now(upstream);

  for (int fd : filler) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &saved);
  ::close(own);
  EXPECT_EQ(EMFILE, exhausted);
  if (result.ok()) {
    for (const auto& connection : *result) EXPECT_NE(connection.inode, own_inode);
  }
}

TEST_F(ConnectionMonitorTest, ClosedConnectionDisappears) {
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  ChildClient client(AF_INET, "127.0.0.1", listener.port());
  ASSERT_TRUE(client.connected());
  ASSERT_GE(listener.accept_one(), 0);
  const std::string upstream = endpoint("127.0.0.1", listener.port());
  ASSERT_EQ(sample(upstream).size(), 1u);
  // The client's socket goes to FIN_WAIT, no longer established.
  client.quit();
  EXPECT_TRUE(sample(upstream).empty());
}

TEST_F(ConnectionMonitorTest, Ipv4MappedIpv6ConnectionCountsForTheIpv4Upstream) {
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (probe < 0) GTEST_SKIP() << "no IPv6 sockets here";
  ::close(probe);
  // An AF_INET6 socket connected to ::ffff:127.0.0.1 (listed in the kernel's AF_INET6 table).
  ChildClient client(AF_INET6, "::ffff:127.0.0.1", listener.port());
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(sample(endpoint("127.0.0.1", listener.port())).size(), 1u);
  EXPECT_EQ(sample("[::ffff:127.0.0.1]:" + std::to_string(listener.port())).size(), 1u);
}

TEST_F(ConnectionMonitorTest, Ipv6Upstream) {
  Listener listener(AF_INET6, "::1");
  if (!listener.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  ChildClient client(AF_INET6, "::1", listener.port());
  ASSERT_TRUE(client.connected());
  const std::string port = std::to_string(listener.port());
  auto connections = sample("[::1]:" + port);
  ASSERT_EQ(connections.size(), 1u);
  EXPECT_LT(connections[0].since_recv_ms, 5000u);
  EXPECT_TRUE(sample("127.0.0.1:" + port).empty());
}

TEST_F(ConnectionMonitorTest, BadUpstreamsAreErrors) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000", "localhost:80",
                          "::1:80", "[::1]80", "[nonsense]:80", "1.2.3.4:80x"}) {
    EXPECT_FALSE(monitor_->sample_now(bad).ok()) << "'" << bad << "'";
  }
  EXPECT_TRUE(monitor_->sample_now("[::1]:80").ok());
}

TEST_F(ConnectionMonitorTest, TimerSamplesEveryUpstreamUntilClosed) {
  Listener first(AF_INET, "127.0.0.1");
  Listener second(AF_INET, "127.0.0.1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  ChildClient client(AF_INET, "127.0.0.1", first.port());
  ASSERT_TRUE(client.connected());
  const std::string first_upstream = endpoint("127.0.0.1", first.port());
  const std::string second_upstream = endpoint("127.0.0.1", second.port());
  monitor_->set_upstreams({first_upstream, second_upstream, "not an upstream"});

  Timer deadline(&loop_);
  bool timed_out = false;
  deadline.start(5s, [&] {
    timed_out = true;
    monitor_->close();
  });
  on_sample_ = [&](const std::string& upstream, const std::vector<core::ConnectionSample>&) {
    if (upstream == second_upstream && samples_[second_upstream].size() == 3) {
      monitor_->close();
      deadline.stop();
    }
  };
  auto started = monitor_->start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  uv_run(&loop_, UV_RUN_DEFAULT);

  EXPECT_FALSE(timed_out);
  EXPECT_EQ(samples_.count("not an upstream"), 0u);
  ASSERT_EQ(samples_[first_upstream].size(), 3u);
  ASSERT_EQ(samples_[second_upstream].size(), 3u);
  for (const auto& connections : samples_[first_upstream]) EXPECT_EQ(connections.size(), 1u);
  for (const auto& connections : samples_[second_upstream]) EXPECT_TRUE(connections.empty());
}

TEST_F(ConnectionMonitorTest, EveryUpstreamOfASetPassesTheKernelFilter) {
  // The kernel filter is an OR of one condition per upstream (see build_filter): a socket to the
  // first, a middle or the last one, of either family, must get through it.
  Listener first(AF_INET, "127.0.0.1");
  Listener middle(AF_INET, "127.0.0.1");
  Listener unused(AF_INET, "127.0.0.1");
  Listener last(AF_INET6, "::1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(middle.ok());
  ASSERT_TRUE(unused.ok());
  if (!last.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  ChildClient to_first(AF_INET, "127.0.0.1", first.port());
  ChildClient to_middle(AF_INET, "127.0.0.1", middle.port(), 2);
  ChildClient to_last(AF_INET6, "::1", last.port(), 3);
  ASSERT_TRUE(to_first.connected());
  ASSERT_TRUE(to_middle.connected());
  ASSERT_TRUE(to_last.connected());
  const std::map<std::string, std::size_t> expected{
      {endpoint("127.0.0.1", first.port()), 1},
      {endpoint("127.0.0.1", middle.port()), 2},
      {endpoint("127.0.0.1", unused.port()), 0},
      {"[::1]:" + std::to_string(last.port()), 3},
  };
  std::vector<std::string> upstreams;
  for (const auto& [upstream, count] : expected) upstreams.push_back(upstream);
  std::reverse(upstreams.begin(), upstreams.end());  // The IPv6 one first, then the others.
  upstreams.push_back(upstreams.front());            // And a duplicate.
  monitor_->set_upstreams(upstreams);

  Timer deadline(&loop_);
  deadline.start(5s, [&] { monitor_->close(); });
  std::size_t calls = 0;
  on_sample_ = [&](const std::string&, const std::vector<core::ConnectionSample>&) {
    if (++calls < upstreams.size()) return;
    monitor_->close();  // One full round.
    deadline.stop();
  };
  ASSERT_TRUE(monitor_->start().ok());
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_EQ(calls, upstreams.size());
  for (const auto& [upstream, count] : expected) {
    ASSERT_FALSE(samples_[upstream].empty()) << upstream;
    EXPECT_EQ(samples_[upstream][0].size(), count) << upstream;
    EXPECT_EQ(sample(upstream).size(), count) << upstream;  // The single-upstream filter too.
  }
  EXPECT_EQ(samples_[upstreams.front()].size(), 2u);  // The duplicate is reported twice.
}

TEST_F(ConnectionMonitorTest, TheKernelFilterPassesOnlyTheWatchedUpstreamsSockets) {
  // The kernel, not user space, drops the other sockets: it hands over exactly the watched
  // upstream's client sockets, not those to another port, nor the server side of any connection.
  Listener watched(AF_INET, "127.0.0.1");
  Listener other(AF_INET, "127.0.0.1");
  ASSERT_TRUE(watched.ok());
  ASSERT_TRUE(other.ok());
  ChildClient to_watched(AF_INET, "127.0.0.1", watched.port(), 2);
  ChildClient to_other(AF_INET, "127.0.0.1", other.port(), 5);
  ASSERT_TRUE(to_watched.connected());
  ASSERT_TRUE(to_other.connected());
  for (int i = 0; i < 2; ++i) ASSERT_GE(watched.accept_one(), 0);
  std::uint64_t before = monitor_->kernel_sockets();
  EXPECT_EQ(sample(endpoint("127.0.0.1", watched.port())).size(), 2u);
  EXPECT_EQ(monitor_->kernel_sockets() - before, 2u);

  Listener v6(AF_INET6, "::1");
  if (!v6.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  ChildClient to_v6(AF_INET6, "::1", v6.port(), 3);
  ASSERT_TRUE(to_v6.connected());
  const std::string v6_upstream = "[::1]:" + std::to_string(v6.port());
  before = monitor_->kernel_sockets();
  EXPECT_EQ(sample(v6_upstream).size(), 3u);
  EXPECT_EQ(monitor_->kernel_sockets() - before, 3u);
  // Both at once, through the sampling timer (one dump of both families where the kernel allows
  // it): one filter of two conditions, which also passes an IPv6 socket to the IPv4-mapped form
  // of the IPv4 upstream.
  ChildClient to_watched_mapped(AF_INET6, "::ffff:127.0.0.1", watched.port());
  ASSERT_TRUE(to_watched_mapped.connected());
  monitor_->set_upstreams({v6_upstream, endpoint("127.0.0.1", watched.port())});
  Timer deadline(&loop_);
  deadline.start(5s, [&] { monitor_->close(); });
  on_sample_ = [&](const std::string& upstream, const std::vector<core::ConnectionSample>&) {
    if (upstream != v6_upstream) {
      monitor_->close();
      deadline.stop();
    }
  };
  before = monitor_->kernel_sockets();
  ASSERT_TRUE(monitor_->start().ok());
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(monitor_->kernel_sockets() - before, 6u);
  ASSERT_EQ(samples_[v6_upstream].size(), 1u);
  EXPECT_EQ(samples_[v6_upstream][0].size(), 3u);
  const std::string v4_upstream = endpoint("127.0.0.1", watched.port());
  ASSERT_EQ(samples_[v4_upstream].size(), 1u);
  EXPECT_EQ(samples_[v4_upstream][0].size(), 3u);
}

TEST_F(ConnectionMonitorTest, NothingIsSampledWhileNoUpstreamIsWatched) {
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  const std::string upstream = endpoint("127.0.0.1", listener.port());
  ASSERT_TRUE(monitor_->start().ok());
  EXPECT_FALSE(monitor_->sampling());
  // No timer is armed: the loop has nothing to wait for and returns at once.
  EXPECT_EQ(uv_run(&loop_, UV_RUN_DEFAULT), 0);
  EXPECT_TRUE(samples_.empty());

  monitor_->set_upstreams({upstream});
  EXPECT_TRUE(monitor_->sampling());
  Timer deadline(&loop_);
  bool timed_out = false;
  deadline.start(5s, [&] {
    timed_out = true;
    monitor_->close();
  });
  on_sample_ = [&](const std::string&, const std::vector<core::ConnectionSample>&) {
    monitor_->set_upstreams({});  // The timer stops, so the loop ends by itself.
    deadline.stop();
  };
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_FALSE(timed_out);
  EXPECT_FALSE(monitor_->sampling());
  EXPECT_EQ(samples_[upstream].size(), 1u);

  // Watched again, then closed: a later set does not re-arm the timer.
  monitor_->set_upstreams({upstream});
  EXPECT_TRUE(monitor_->sampling());
  monitor_->close();
  EXPECT_FALSE(monitor_->sampling());
  monitor_->set_upstreams({upstream, upstream});
  EXPECT_FALSE(monitor_->sampling());
  EXPECT_EQ(uv_run(&loop_, UV_RUN_DEFAULT), 0);
  EXPECT_EQ(samples_[upstream].size(), 1u);
}

TEST_F(ConnectionMonitorTest, ManyConnectionsSpanSeveralNetlinkDatagrams) {
  // About a hundred sockets with their tcp_info fill one netlink datagram, so 400 need several
  // receives, each of which makes the kernel queue the next part of the dump.
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  ChildClient client(AF_INET, "127.0.0.1", listener.port(), 400);
  ASSERT_TRUE(client.connected());
  auto connections = sample(endpoint("127.0.0.1", listener.port()));
  EXPECT_EQ(connections.size(), 400u);
  std::vector<std::uint64_t> inodes;
  for (const auto& connection : connections) inodes.push_back(connection.inode);
  std::sort(inodes.begin(), inodes.end());
  EXPECT_EQ(std::unique(inodes.begin(), inodes.end()), inodes.end());
}

TEST_F(ConnectionMonitorTest, MonitorMayBeDestroyedFromItsCallback) {
  Listener listener(AF_INET, "127.0.0.1");
  ASSERT_TRUE(listener.ok());
  const std::string upstream = endpoint("127.0.0.1", listener.port());
  monitor_->set_upstreams({upstream, upstream});

  Timer deadline(&loop_);
  bool timed_out = false;
  deadline.start(5s, [&] {
    timed_out = true;
    monitor_.reset();
  });
  int calls = 0;
  on_sample_ = [&](const std::string&, const std::vector<core::ConnectionSample>&) {
    ++calls;
    monitor_.reset();  // The second upstream must then not be reported.
    deadline.stop();
  };
  auto started = monitor_->start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace unshelver::io
