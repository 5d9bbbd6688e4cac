// MailNotifier: mails `notification_email` about every failure that needs a person, through the
// system's sendmail as the Python unshelver did (issue 17). What needs a person and what the
// message says is decided in events/notification.h; this class feeds it and sends.
//
// - Recorded events arrive from the recorder (after they are on disk); the health of Swift and
//   Caddy is polled from their own status every few seconds and fed to one OutageWatch each.
// - Sending: one `sendmail -t -oi` at a time (io::ChildProcess: no shell, the message on stdin,
//   an environment of PATH, HOME, USER, LOGNAME and LANG only, so no secret of the daemon's
//   environment reaches it), with a timeout. A failed send is tried again with exponential
//   back-off, `attempts` times in all; then it is logged, counted and dropped.
// - Bounds: at most `max_queued` messages wait (more are dropped and counted: an inbox flood is
//   worse than a lost duplicate, and the event log keeps every event); the throttle holds back
//   repeats of one backend and kind within `quiet` (see MailThrottle).
// - Status: /api/status "notifications" and the unshelver_notifications_* metrics.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/backoff.h"
#include "base/prometheus.h"
#include "config/config.h"
#include "events/notification.h"
#include "events/record.h"
#include "uv/process.h"
#include "uv/timer.h"

namespace unshelver::app {

struct NotifierSettings {
  std::vector<std::string> to;
  std::string from;
  std::string sendmail;  // the program's path, resolved at start-up
  std::chrono::seconds outage_threshold{15 * 60};
  std::chrono::seconds quiet{60 * 60};
  std::size_t max_queued = 20;
  std::chrono::milliseconds send_timeout{30'000};
  int attempts = 4;
  core::BackoffPolicy backoff{std::chrono::milliseconds(5'000), std::chrono::milliseconds(300'000)};
  std::chrono::milliseconds health_interval{5'000};  // how often Swift and Caddy are looked at
  std::string control_url;                           // shown in the messages, when known
  std::vector<std::string> secrets;                  // never in a message (scrubbed before rendering)
  std::vector<std::string> environment;              // sendmail's whole environment ("NAME=value")
};

// The settings from the configuration: notification_email (none: no notifier), the
// `notifications` section, sendmail's path (as the Python unshelver: "sendmail" on PATH, else
// /usr/sbin/sendmail) and environment (PATH, HOME, USER, LOGNAME and LANG from `environment`, and
// nothing else: the daemon's may hold secrets such as UNSHELVER_CONTROL_TOKEN or OS_PASSWORD),
// the From address (unshelver@<host name> unless set) and the configured secrets.
NotifierSettings notifier_settings(const core::Config& config,
                                   const std::map<std::string, std::string>& environment);

struct NotifierStats {
  std::uint64_t sent = 0;
  std::uint64_t failed_attempts = 0;  // sendmail runs that failed (each retried or given up)
  std::uint64_t given_up = 0;         // messages dropped after their last attempt
  std::uint64_t queue_full = 0;       // messages dropped because max_queued were waiting
  std::string last_error;
  std::optional<core::TimePoint> last_error_at;
  std::optional<core::TimePoint> last_sent_at;
};

struct ServiceHealth {
  bool watched = false;  // false: not configured (no Swift mirror, Caddy not managed)
  bool failing = false;
  std::string error;
};

class MailNotifier {
 public:
  using HealthProbe = std::function<ServiceHealth()>;

  MailNotifier(uv_loop_t* loop, NotifierSettings settings, std::function<void()> on_change);
  ~MailNotifier();
  MailNotifier(const MailNotifier&) = delete;
  MailNotifier& operator=(const MailNotifier&) = delete;

  // Polls `probe` every health_interval for the outage rule; `subsystem` names it in messages.
  void watch(std::string subsystem, HealthProbe probe);
  void start();
  // A recorded event (after it is written); most need nobody and are ignored.
  void on_record(const core::EventRecord& record);
  // Stops timers; a send in flight is killed and what waits is dropped (the log says how many), so
  // that a hung sendmail never delays a shutdown or a reload.
  void close();

  const NotifierStats& stats() const { return stats_; }
  std::size_t queued() const { return queue_.size(); }
  void write_status(nlohmann::json& document) const;
  void write_metrics(core::MetricsPage& page) const;

 private:
  struct Pending {
    std::string key;  // the alert's throttle key, for logs
    std::string message;
    int attempts = 0;
  };
  struct Watched {
    std::string subsystem;
    HealthProbe probe;
    core::OutageWatch watch;
  };
  void alert(const core::Alert& alert);
  void poll_health();
  void pump();
  void on_sent(const io::ProcessResult& result);

  NotifierSettings settings_;
  std::function<void()> on_change_;
  core::MailThrottle throttle_;
  std::vector<Watched> watched_;
  std::deque<Pending> queue_;
  std::unique_ptr<io::ChildProcess> child_;  // reset by close(), which kills a send in flight
  io::Timer retry_timer_;
  io::Timer health_timer_;
  std::mt19937 random_;
  NotifierStats stats_;
  bool sending_ = false;
  bool closed_ = false;
};

}  // namespace unshelver::app
