// WebhookSender: delivers every recorded event to one receiver of `webhooks` by HTTP POST, in seq
// order, one request at a time, and never loses one (README "Webhooks").
//
// - The outbox is the records the journal has written and this receiver has not answered 2xx
//   (nor skipped: actions outside its `events`). It survives restarts as the receiver's named
//   cursor in the journal (io::EventJournal, "webhook-<hash of the URL>"), which this class
//   advances after each 2xx; so a restart re-sends nothing the receiver accepted, unless the
//   process died between that answer and the cursor's save (milliseconds): a receiver that must
//   never see a repeat drops a known Unshelver-Delivery.
// - The body is the record's JSON line; the signature and headers are events/webhook_policy.h's.
// - One attempt at a time, oldest first: an event is sent only after every earlier one was
//   accepted, so a receiver sees them in order. A failed attempt (no answer, a timeout, 5xx, 408,
//   429) and a rejected one (another status) pause this receiver with exponential back-off and
//   equal jitter (base/backoff.h), or for the answer's Retry-After; the same event is tried again,
//   forever. Other receivers and the Swift mirror are not held up.
// - The URL's user information and query never reach a log line or the status (only
//   webhook_display_url), the secret nothing but the HMAC.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "base/backoff.h"
#include "config/config.h"
#include "events/record.h"
#include "uv/http_client.h"
#include "uv/timer.h"

namespace unshelver::providers {

struct WebhookStats {
  std::uint64_t delivered = 0;          // events answered 2xx
  std::uint64_t skipped = 0;            // events outside the receiver's `events`
  std::uint64_t failed_attempts = 0;    // no answer, timeout, 5xx, 408, 429
  std::uint64_t rejected_attempts = 0;  // any other status
  std::string last_error;               // kept after recovery; see failing
  std::optional<core::TimePoint> last_error_at;
  std::optional<core::TimePoint> last_delivery_at;
  bool failing = false;  // the last attempt failed or was rejected
};

class WebhookSender {
 public:
  using ProgressCallback = std::function<void(std::uint64_t delivered_through)>;

  // `delivered_through`: the receiver's cursor, as the journal opened it. `on_change` runs after
  // every answer that changed what stats() or pending() show.
  WebhookSender(uv_loop_t* loop, io::HttpClient& client, core::WebhookConfig config,
                std::uint64_t delivered_through, ProgressCallback on_progress,
                std::function<void()> on_change);
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // A record that is written locally; records arrive in seq order. Older ones are ignored.
  void enqueue(const core::EventRecord& record);
  // Cancels the attempt in flight; its event stays in the outbox for the next start.
  void close();
  // A stop (SIGTERM): sends nothing more, but lets the attempt in flight be answered, for at most
  // `grace`, so that an event the receiver already took moves the cursor instead of being sent
  // again after the restart; then close() and `done` (at once when nothing is in flight).
  void finish(std::chrono::milliseconds grace, std::function<void()> done);

  const std::string& cursor_name() const { return cursor_name_; }
  const std::string& display_url() const { return display_url_; }
  const core::WebhookConfig& config() const { return config_; }
  std::size_t pending() const { return outbox_.size(); }
  std::uint64_t delivered_through() const { return delivered_through_; }
  const WebhookStats& stats() const { return stats_; }

 private:
  void pump();
  void send();
  void on_answer(const io::ClientResponse& response);
  void advance(std::uint64_t seq);
  void end_finish();

  io::HttpClient& client_;
  core::WebhookConfig config_;
  std::string cursor_name_;
  std::string display_url_;
  ProgressCallback on_progress_;
  std::function<void()> on_change_;
  std::deque<core::EventRecord> outbox_;  // oldest first
  std::uint64_t delivered_through_;
  std::uint64_t last_enqueued_;
  io::RequestId in_flight_ = 0;
  int consecutive_failures_ = 0;
  core::BackoffPolicy backoff_;
  io::Timer pause_timer_;
  std::mt19937 random_;
  bool closed_ = false;
  bool finishing_ = false;
  std::function<void()> finished_;
  WebhookStats stats_;
};

}  // namespace unshelver::providers
