// The notification protocol of systemd: the implementation of systemd_notify.h.
#include "uv/systemd_notify.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <ctime>

#include "base/text.h"

namespace unshelver::io {

namespace {

constexpr std::size_t kMostStatusBytes = 200;

// "A positive decimal number", as sd_watchdog_enabled(3) parses WATCHDOG_USEC and WATCHDOG_PID.
std::optional<std::int64_t> positive_number(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  const std::string_view view(text);
  std::int64_t number = 0;
  const auto [end, error] = std::from_chars(view.data(), view.data() + view.size(), number);
  if (error != std::errc() || end != view.data() + view.size() || number <= 0) return std::nullopt;
  return number;
}

std::chrono::microseconds monotonic_now() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return std::chrono::seconds(now.tv_sec) +
         std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::nanoseconds(now.tv_nsec));
}

}  // namespace

Result<NotifyAddress> parse_notify_address(std::string_view text) {
  if (text.empty()) return Error{"NOTIFY_SOCKET is empty"};
  NotifyAddress address;
  if (text.front() == '@') {
    address.abstract = true;
    address.path = std::string(1, '\0') + std::string(text.substr(1));
  } else if (text.front() == '/') {
    address.path = std::string(text);
  } else {
    return Error{"NOTIFY_SOCKET '" + core::escape_control_characters(text) +
                 "' is neither an absolute path nor an abstract socket ('@name')"};
  }
  // A path needs room for its terminating NUL; an abstract name does not have one.
  const std::size_t room = sizeof(sockaddr_un::sun_path) - (address.abstract ? 0 : 1);
  if (address.path.size() > room || address.path.size() < 2) {
    return Error{"NOTIFY_SOCKET '" + core::escape_control_characters(text) +
                 "' does not fit a Unix socket address"};
  }
  return address;
}

std::optional<std::chrono::milliseconds> watchdog_ping_interval(const char* watchdog_usec,
                                                                const char* watchdog_pid,
                                                                std::int64_t own_pid) {
  const std::optional<std::int64_t> usec = positive_number(watchdog_usec);
  if (!usec) return std::nullopt;
  if (watchdog_pid != nullptr && *watchdog_pid != '\0') {
    const std::optional<std::int64_t> pid = positive_number(watchdog_pid);
    if (!pid || *pid != own_pid) return std::nullopt;
  }
  // Half the interval, as sd_watchdog_enabled(3) advises, and at least a millisecond.
  const auto half =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds(*usec / 2));
  return std::max(half, std::chrono::milliseconds(1));
}

std::string reloading_message(std::chrono::microseconds monotonic_now) {
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_now.count());
}

std::string status_message(std::string_view status) {
  std::string line = "STATUS=";
  for (const char c : status.substr(0, kMostStatusBytes)) {
    // One assignment per line: a newline in the text would start another one.
    line.push_back(c == '\n' || c == '\r' ? ' ' : c);
  }
  return line;
}

SystemdNotifier::SystemdNotifier(uv_loop_t* loop)
    : SystemdNotifier(loop, std::nullopt,
                      // NOLINTNEXTLINE(concurrency-mt-unsafe): read at start-up, on the loop's thread
                      watchdog_ping_interval(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"),
                                             static_cast<std::int64_t>(::getpid()))) {
  const char* socket = std::getenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe): as above
  if (socket == nullptr) {
    watchdog_interval_.reset();
    return;
  }
  Result<NotifyAddress> address = parse_notify_address(socket);
  if (!address) {
    spdlog::warn("systemd notifications are off: {}", address.error().message);
    watchdog_interval_.reset();
    return;
  }
  address_ = std::move(*address);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) spdlog::warn("systemd notifications are off: socket: {}", core::errno_text());
}

SystemdNotifier::SystemdNotifier(uv_loop_t* loop, std::optional<NotifyAddress> address,
                                 std::optional<std::chrono::milliseconds> watchdog_interval)
    : address_(std::move(address)),
      watchdog_interval_(watchdog_interval),
      watchdog_(std::make_unique<Timer>(loop)),
      ready_deadline_(std::make_unique<Timer>(loop)) {
  if (!address_) return;
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) spdlog::warn("systemd notifications are off: socket: {}", core::errno_text());
}

SystemdNotifier::~SystemdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

void SystemdNotifier::start_watchdog() {
  if (!enabled() || !watchdog_interval_) return;
  send("WATCHDOG=1");
  watchdog_->start_repeating(*watchdog_interval_, [this] { send("WATCHDOG=1"); });
  watchdog_->unref();
}

void SystemdNotifier::ready(std::string_view status) {
  ready_deadline_->stop();
  ready_sent_ = true;
  send("READY=1\n" + status_message(status));
}

void SystemdNotifier::ready_at_the_latest(std::chrono::milliseconds most,
                                          std::function<std::string()> late_status) {
  if (!enabled() || ready_sent_) return;
  ready_deadline_->start(most, [this, late_status = std::move(late_status)] {
    if (!ready_sent_) ready(late_status());
  });
  ready_deadline_->unref();
}

void SystemdNotifier::reloading() {
  ready_sent_ = false;
  send(reloading_message(monotonic_now()));
}

void SystemdNotifier::stopping(std::string_view status) {
  // The watchdog keeps being fed while the stop drains requests: a stuck stop is still stuck.
  send("STOPPING=1\n" + status_message(status));
}

void SystemdNotifier::status(std::string_view status) {
  send(status_message(status));
}

void SystemdNotifier::send(std::string_view message) {
  if (!enabled()) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::copy(address_->path.begin(), address_->path.end(), static_cast<char*>(address.sun_path));
  // An abstract address is exactly as long as its name; a path's length includes its NUL (unix(7)).
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_->path.size() +
                                             (address_->abstract ? 0 : 1));
  const ssize_t sent = ::sendto(fd_, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), length);  // NOLINT: sockaddr API
  if (sent < 0 && !failure_logged_) {
    failure_logged_ = true;
    spdlog::warn(
        "cannot notify systemd through {}: {} (further failures are not logged)",
        core::escape_control_characters(address_->abstract ? "@" + address_->path.substr(1) : address_->path),
        core::errno_text());
  }
}

}  // namespace unshelver::io
