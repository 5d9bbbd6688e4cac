// Mail notifications: which events need a person, what the message says, and how often one may
// be sent (issue 17, "never running unnoticed"). Pure: the notifier (events/notifier.h) feeds it
// the recorded events and the health of Swift and Caddy, and pipes what it renders to sendmail.
//
// - alert_for_record: a wake that failed (workflow_failed; No valid host named as such),
//   unshelve_incomplete (the machine runs but its service never answered), and a shelve that
//   failed (shelve_failed, or workflow_failed out of `sleeping`): the machine runs, and bills,
//   with no way back to sleep.
// - OutageWatch: Swift (the event mirror) or Caddy (the router's loads) failing without a break
//   for at least the threshold gives one alert when it crosses it, and one when it recovers.
// - MailThrottle: a flapping backend cannot flood an inbox. Per backend and kind (per subsystem
//   for outages) at most one message per quiet period; the ones held back are counted and the
//   next message that goes out says how many. A recovery is mailed only when its outage was.
// - compose + render_message: an RFC 5322 message with the backend, the reason, the time (UTC
//   and how long ago) and what to do. Header values are made of our words and the backend's
//   name, with control characters removed and anything but printable ASCII encoded (RFC 2047),
//   so that no cloud text can add a header; every text is scrubbed of the configured secrets
//   and of credentials in URLs first.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "events/record.h"

namespace unshelver::core {

enum class AlertKind {
  kWakeFailed,        // workflow_failed while waking (or while running: from ready)
  kNoValidHost,       // the same, with the cloud out of room (No valid host, quota)
  kServiceUnhealthy,  // unshelve_incomplete: the machine runs, its service never answered
  kShelveFailed,      // shelve_failed, or workflow_failed out of sleeping: running, no way to sleep
  kOutage,            // Swift or Caddy failing for longer than the threshold
  kRecovered,         // ... and working again
};

std::string_view alert_code(AlertKind kind);  // "wake_failed", "no_valid_host", ...

struct Alert {
  AlertKind kind = AlertKind::kWakeFailed;
  std::string backend;                    // "" for outages of the daemon's services
  std::string instance;                   // the cloud's server name, when known
  std::string subsystem;                  // "Swift" or "Caddy" for outages
  std::string reason;                     // the cloud's or the service's words (scrubbed before rendering)
  TimePoint at;                           // when it happened; for outages, when the failing began
  std::optional<TimePoint> recovered_at;  // kRecovered only
  std::string event;                      // "#12 workflow_failed (id ...)" for record alerts
  std::string from;                       // the state the record left ("ready": it failed while running)

  // What the throttle counts by: the kind and backend, or the subsystem for outages.
  std::string throttle_key() const;
};

// The alert a recorded event calls for, if any.
std::optional<Alert> alert_for_record(const EventRecord& record);

// One service's health over time (see the header comment).
class OutageWatch {
 public:
  OutageWatch(std::string subsystem, std::chrono::seconds threshold)
      : subsystem_(std::move(subsystem)), threshold_(threshold) {}

  // The service's state as seen at `now`: failing (with its last error) or working.
  std::optional<Alert> observe(bool failing, std::string_view error, TimePoint now);
  bool alerted() const { return alerted_; }
  std::optional<TimePoint> failing_since() const { return failing_since_; }

 private:
  std::string subsystem_;
  std::chrono::seconds threshold_;
  std::optional<TimePoint> failing_since_;
  std::string last_error_;
  bool alerted_ = false;
};

class MailThrottle {
 public:
  explicit MailThrottle(std::chrono::seconds quiet) : quiet_(quiet) {}

  struct Decision {
    bool send = false;
    std::uint64_t held_back_before = 0;  // similar alerts not mailed since the last one that was
    std::optional<TimePoint> held_back_since;
  };
  Decision admit(const Alert& alert, TimePoint now);
  std::uint64_t held_back() const { return held_back_total_; }

 private:
  struct KeyState {
    std::optional<TimePoint> last_sent;
    std::uint64_t held_back = 0;
    std::optional<TimePoint> held_back_since;
    bool outage_sent = false;  // the open outage's alert went out (its recovery goes too)
  };
  std::chrono::seconds quiet_;
  std::map<std::string, KeyState> keys_;
  std::uint64_t held_back_total_ = 0;
};

struct MailMessage {
  std::string subject;
  std::string body;
};

struct MailContext {
  TimePoint now;
  std::string control_url;  // where /control is, or "" when unknown
  std::uint64_t held_back_before = 0;
  std::optional<TimePoint> held_back_since;
  std::chrono::seconds quiet{0};
};

// The words of the message (not yet scrubbed or encoded).
MailMessage compose(const Alert& alert, const MailContext& context);

// `text` with every secret of at least 4 bytes replaced by "[redacted]", and in URLs
// (scheme://...) the user information and the query replaced too.
std::string scrub_secrets(std::string text, const std::vector<std::string>& secrets);

struct MailEnvelope {
  std::string from;
  std::vector<std::string> to;
  std::string message_id_seed;  // random hex, for a unique Message-ID
};

// The whole message as sendmail -t reads it: headers, a blank line, the body; lines end in "\n"
// (sendmail's local convention) and are at most 998 bytes.
std::string render_message(const MailMessage& message, const MailEnvelope& envelope, TimePoint now,
                           const std::vector<std::string>& secrets);

// A header value safe to write: control characters become spaces, and a value that is not all
// printable ASCII becomes RFC 2047 encoded-words (UTF-8, Q), folded onto continuation lines.
std::string encode_header_value(std::string_view header_name, std::string_view value);

// "Sun, 06 Dec 2026 23:10:05 +0000" (RFC 5322 §3.3).
std::string rfc5322_date(TimePoint at);

}  // namespace unshelver::core
