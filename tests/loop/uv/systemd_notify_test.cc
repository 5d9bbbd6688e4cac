// Loop tests for io::SystemdNotifier and the pure parts of the protocol (sd_notify(3)): the
// address of $NOTIFY_SOCKET, the watchdog's interval, the messages, and datagrams that a socket
// standing in for systemd's really receives, from calls and from the watchdog's timer.
#include "uv/systemd_notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "support/loop.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;

TEST(NotifyAddress, AcceptsAPathAndAnAbstractName) {
  auto path = parse_notify_address("/run/systemd/notify");
  ASSERT_TRUE(path);
  EXPECT_FALSE(path->abstract);
  EXPECT_EQ("/run/systemd/notify", path->path);
  auto abstract = parse_notify_address("@/org/freedesktop/systemd1/notify/42");
  ASSERT_TRUE(abstract);
  EXPECT_TRUE(abstract->abstract);
  EXPECT_EQ(std::string(1, '\0') + "/org/freedesktop/systemd1/notify/42", abstract->path);
}

TEST(NotifyAddress, RefusesWhatIsNoUnixSocketAddress) {
  EXPECT_FALSE(parse_notify_address(""));
  EXPECT_FALSE(parse_notify_address("@"));
  EXPECT_FALSE(parse_notify_address("relative/notify"));
  EXPECT_FALSE(parse_notify_address("vsock:2:1234"));
  EXPECT_FALSE(parse_notify_address("/" + std::string(sizeof(sockaddr_un::sun_path), 'x')));
  EXPECT_TRUE(parse_notify_address("/" + std::string(sizeof(sockaddr_un::sun_path) - 2, 'x')));
}

TEST(WatchdogInterval, IsHalfOfWatchdogUsecForThisProcess) {
  EXPECT_EQ(std::optional(15'000ms), watchdog_ping_interval("30000000", nullptr, 42));
  EXPECT_EQ(std::optional(15'000ms), watchdog_ping_interval("30000000", "42", 42));
  EXPECT_EQ(std::optional(1ms), watchdog_ping_interval("1", nullptr, 42));
}

TEST(WatchdogInterval, IsOffWithoutAValidIntervalOrForAnotherProcess) {
  EXPECT_EQ(std::nullopt, watchdog_ping_interval(nullptr, nullptr, 42));
  EXPECT_EQ(std::nullopt, watchdog_ping_interval("", nullptr, 42));
  EXPECT_EQ(std::nullopt, watchdog_ping_interval("0", nullptr, 42));
  EXPECT_EQ(std::nullopt, watchdog_ping_interval("-5", nullptr, 42));
  EXPECT_EQ(std::nullopt, watchdog_ping_interval("30s", nullptr, 42));
  EXPECT_EQ(std::nullopt, watchdog_ping_interval("30000000", "41", 42));
  EXPECT_EQ(std::nullopt, watchdog_ping_interval("30000000", "pid", 42));
}

TEST(NotifyMessages, AreTheProtocolsAssignments) {
  EXPECT_EQ("RELOADING=1\nMONOTONIC_USEC=123456789", reloading_message(123'456'789us));
  EXPECT_EQ("STATUS=3 backend(s) observed", status_message("3 backend(s) observed"));
  // A newline would start another assignment: "READY=1" must not be forged through a status.
  EXPECT_EQ("STATUS=bad  READY=1", status_message("bad\r\nREADY=1"));
  EXPECT_EQ(std::string("STATUS=") + std::string(200, 'x'), status_message(std::string(500, 'x')));
}

// A datagram socket where systemd's would be, bound to a path under the test's temporary folder.
class SystemdNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(0, uv_loop_init(&loop_));
    path_ = ::testing::TempDir() + "notify-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    ASSERT_LT(path_.size(), sizeof address.sun_path);
    std::copy(path_.begin(), path_.end(), static_cast<char*>(address.sun_path));
    ASSERT_EQ(0, ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address));  // NOLINT
  }
  void TearDown() override {
    testing::drain_and_close_loop(&loop_);
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Every datagram received so far.
  std::vector<std::string> received() {
    std::vector<std::string> messages;
    char buffer[4096];
    for (;;) {
      const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got < 0) break;
      messages.emplace_back(buffer, static_cast<std::size_t>(got));
    }
    return messages;
  }
  NotifyAddress address() const { return NotifyAddress{path_, false}; }

  uv_loop_t loop_{};
  std::string path_;
  int fd_ = -1;
};

TEST_F(SystemdNotifierTest, SendsReadyReloadingAndStopping) {
  SystemdNotifier notifier(&loop_, address(), std::nullopt);
  ASSERT_TRUE(notifier.enabled());
  notifier.ready("2 backend(s) observed");
  EXPECT_TRUE(notifier.ready_sent());
  notifier.reloading();
  EXPECT_FALSE(notifier.ready_sent());
  notifier.stopping("SIGTERM");
  const std::vector<std::string> messages = received();
  ASSERT_EQ(3U, messages.size());
  EXPECT_EQ("READY=1\nSTATUS=2 backend(s) observed", messages[0]);
  EXPECT_EQ(0U, messages[1].rfind("RELOADING=1\nMONOTONIC_USEC=", 0)) << messages[1];
  EXPECT_EQ("STOPPING=1\nSTATUS=SIGTERM", messages[2]);
}

TEST_F(SystemdNotifierTest, FeedsTheWatchdogFromTheLoopWithoutKeepingItAlive) {
  SystemdNotifier notifier(&loop_, address(), 10ms);
  notifier.start_watchdog();
  // Unreferenced: with nothing else to do, the loop returns at once.
  EXPECT_EQ(0, uv_run(&loop_, UV_RUN_DEFAULT));
  std::size_t pings = 0;
  EXPECT_TRUE(testing::run_loop_until(
      &loop_,
      [&] {
        for (const std::string& message : received()) {
          EXPECT_EQ("WATCHDOG=1", message);
          ++pings;
        }
        return pings >= 3;
      },
      10s));
}

TEST_F(SystemdNotifierTest, SendsReadyAtTheLatestUnlessReadyCameFirst) {
  SystemdNotifier notifier(&loop_, address(), std::nullopt);
  notifier.ready_at_the_latest(10ms, [] { return std::string("late"); });
  std::vector<std::string> messages;
  EXPECT_TRUE(testing::run_loop_until(
      &loop_,
      [&] {
        for (std::string& message : received()) messages.push_back(std::move(message));
        return !messages.empty();
      },
      10s));
  ASSERT_EQ(1U, messages.size());
  EXPECT_EQ("READY=1\nSTATUS=late", messages[0]);
  notifier.ready_at_the_latest(10ms, [] { return std::string("again"); });  // already ready: nothing
  EXPECT_FALSE(testing::run_loop_until(
      &loop_, [&] { return !received().empty(); }, 100ms));
}

TEST_F(SystemdNotifierTest, WithoutASocketEveryCallDoesNothing) {
  SystemdNotifier notifier(&loop_, std::nullopt, 10ms);
  EXPECT_FALSE(notifier.enabled());
  notifier.start_watchdog();
  notifier.ready("x");
  EXPECT_FALSE(testing::run_loop_until(
      &loop_, [&] { return !received().empty(); }, 50ms));
}

TEST_F(SystemdNotifierTest, AGoneManagerIsNoErrorForTheCaller) {
  SystemdNotifier notifier(&loop_, NotifyAddress{path_ + ".gone", false}, std::nullopt);
  notifier.ready("x");  // ENOENT: logged once, and nothing else
  notifier.ready("y");
  EXPECT_TRUE(received().empty());
}

}  // namespace
}  // namespace unshelver::io
