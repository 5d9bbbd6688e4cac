// SystemdNotifier: the service manager's notification protocol, without libsystemd.
//
// sd_notify(3), "NOTIFY_SOCKET": a service started with Type=notify finds the address of an
// AF_UNIX datagram socket in $NOTIFY_SOCKET ("/run/systemd/notify", or "@name" for an abstract
// socket, whose '@' stands for the leading NUL byte) and sends it newline-separated assignments
// such as "READY=1", "STATUS=...", "RELOADING=1", "STOPPING=1" and "WATCHDOG=1", one datagram per
// message. Without the variable (not started by systemd, or Type=simple) every call does nothing.
//
// Watchdog, sd_watchdog_enabled(3): $WATCHDOG_USEC holds the interval within which systemd must
// hear "WATCHDOG=1", and $WATCHDOG_PID, when set, the process meant (a child that inherited the
// variables must not feed its parent's watchdog). The documentation advises sending at half the
// interval; a repeating loop timer does so, so that a loop that no longer turns stops feeding it
// and systemd restarts the service (WatchdogSec= with Restart=on-failure).
//
// Never blocking: the socket is non-blocking and each message is one sendto(2) with MSG_DONTWAIT;
// a message the manager cannot take is dropped, and the first failure is logged (once).
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "uv/timer.h"

namespace unshelver::io {

// The socket address that $NOTIFY_SOCKET names, as bytes for sockaddr_un.sun_path and its length
// (an abstract address's first byte is NUL and its length is exact, without a terminating NUL).
struct NotifyAddress {
  std::string path;  // sun_path's bytes
  bool abstract = false;
};

// Pure: an error for an empty, relative, over-long (sun_path holds 108 bytes) or non-Unix address
// (systemd 254 also offers "vsock:", which a controller VM's service manager does not use).
Result<NotifyAddress> parse_notify_address(std::string_view text);

// Pure: the interval at which to send WATCHDOG=1 (half of $WATCHDOG_USEC), or nullopt when the
// watchdog is off for this process: WATCHDOG_USEC unset, not a positive number of microseconds,
// or WATCHDOG_PID set to another process (sd_watchdog_enabled(3)).
std::optional<std::chrono::milliseconds> watchdog_ping_interval(const char* watchdog_usec,
                                                                const char* watchdog_pid,
                                                                std::int64_t own_pid);

// Pure: the message that starts a reload, "RELOADING=1\nMONOTONIC_USEC=<now>" (sd_notify(3): the
// timestamp lets systemd 253's Type=notify-reload tell this reload from an earlier one).
std::string reloading_message(std::chrono::microseconds monotonic_now);

// Pure: a STATUS= line's text, one line (systemctl status shows it), at most 200 bytes.
std::string status_message(std::string_view status);

class SystemdNotifier {
 public:
  // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID; does nothing without them. A socket
  // that cannot be opened or an address that does not parse is logged, and the notifier stays off.
  explicit SystemdNotifier(uv_loop_t* loop);
  // For tests: the address and watchdog interval given instead of read from the environment.
  SystemdNotifier(uv_loop_t* loop, std::optional<NotifyAddress> address,
                  std::optional<std::chrono::milliseconds> watchdog_interval);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return fd_ >= 0; }

  // Sends WATCHDOG=1 now and then every half interval from an unreferenced timer: it keeps
  // feeding systemd while the loop runs anything (a graceful stop, a reload's handover) but does
  // not keep the loop alive by itself.
  void start_watchdog();
  // READY=1: at start, once the service does what it is for; after a reload, once reloaded.
  void ready(std::string_view status);
  bool ready_sent() const { return ready_sent_; }
  // Sends READY=1 after `most` unless ready() came first: the status then says why it is late.
  // A bound on the wait, so that a cloud unreachable at boot does not make systemd kill, at
  // TimeoutStartSec=, a controller that already serves its pages. Unreferenced, like the watchdog.
  void ready_at_the_latest(std::chrono::milliseconds most, std::function<std::string()> late_status);
  // RELOADING=1 with MONOTONIC_USEC=; READY=1 must follow once the reload is done (or refused).
  void reloading();
  void stopping(std::string_view status);
  void status(std::string_view status);

  // Sends one message: the protocol's newline-separated assignments.
  void send(std::string_view message);

 private:
  std::optional<NotifyAddress> address_;
  std::optional<std::chrono::milliseconds> watchdog_interval_;
  std::unique_ptr<Timer> watchdog_;
  std::unique_ptr<Timer> ready_deadline_;
  int fd_ = -1;
  bool failure_logged_ = false;
  bool ready_sent_ = false;
};

}  // namespace unshelver::io
