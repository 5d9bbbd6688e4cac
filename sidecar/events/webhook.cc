#include "events/webhook.h"

#include <spdlog/spdlog.h>

#include "events/webhook_policy.h"

namespace unshelver::providers {

namespace {
using namespace std::chrono_literals;

std::string describe_answer(const io::ClientResponse& response) {
  if (!response.transport_ok()) return response.error;
  return "answered " + std::to_string(response.status);
}
}  // namespace

WebhookSender::WebhookSender(uv_loop_t* loop, io::HttpClient& client, core::WebhookConfig config,
                             std::uint64_t delivered_through, ProgressCallback on_progress,
                             std::function<void()> on_change)
    : client_(client),
      config_(std::move(config)),
      cursor_name_(core::webhook_cursor_name(config_.url)),
      display_url_(core::webhook_display_url(config_.url)),
      on_progress_(std::move(on_progress)),
      on_change_(std::move(on_change)),
      delivered_through_(delivered_through),
      last_enqueued_(delivered_through),
      backoff_{1'000ms, config_.retry_max, 0.5},
      pause_timer_(loop),
      random_(std::random_device{}()) {}

WebhookSender::~WebhookSender() {
  close();
}

void WebhookSender::close() {
  if (closed_) return;
  closed_ = true;
  pause_timer_.stop();
  if (in_flight_ != 0) client_.cancel(in_flight_);
  in_flight_ = 0;
}

void WebhookSender::finish(std::chrono::milliseconds grace, std::function<void()> done) {
  if (closed_ || in_flight_ == 0) {
    close();
    if (done) done();
    return;
  }
  finishing_ = true;
  finished_ = std::move(done);
  pause_timer_.start(grace, [this] { end_finish(); });
}

void WebhookSender::end_finish() {
  auto done = std::move(finished_);
  finished_ = nullptr;
  close();
  if (done) done();
}

void WebhookSender::enqueue(const core::EventRecord& record) {
  if (closed_ || record.seq <= last_enqueued_) return;
  last_enqueued_ = record.seq;
  outbox_.push_back(record);
  pump();
}

void WebhookSender::pump() {
  if (closed_ || finishing_ || in_flight_ != 0 || pause_timer_.active()) return;
  // Events this receiver does not want are passed over, and its cursor with them.
  bool skipped = false;
  while (!outbox_.empty() && !core::webhook_wants(config_.events, outbox_.front().action)) {
    ++stats_.skipped;
    delivered_through_ = outbox_.front().seq;
    outbox_.pop_front();
    skipped = true;
  }
  if (skipped && on_progress_) on_progress_(delivered_through_);
  if (!outbox_.empty()) send();
}

void WebhookSender::send() {
  const core::EventRecord& record = outbox_.front();
  io::ClientRequest request;
  request.method = "POST";
  request.url = config_.url;
  request.body = core::to_json_line(record);
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  request.headers = core::webhook_headers(record, request.body, config_.secret, now.count());
  request.timeout = config_.timeout;
  request.connect_timeout = std::min(config_.timeout, std::chrono::milliseconds(5'000));
  // A receiver's answer is read only for its status; a large one is no reason to fail.
  request.max_response_bytes = std::size_t{64} * 1024;
  in_flight_ = client_.send(std::move(request), [this](const io::ClientResponse& response) {
    in_flight_ = 0;
    on_answer(response);
    if (finishing_) end_finish();
  });
}

void WebhookSender::on_answer(const io::ClientResponse& response) {
  if (closed_ || outbox_.empty()) return;
  const std::uint64_t seq = outbox_.front().seq;
  const core::DeliveryOutcome outcome = core::classify_delivery(response.transport_ok(), response.status);
  if (outcome == core::DeliveryOutcome::kDelivered) {
    ++stats_.delivered;
    stats_.last_delivery_at = std::chrono::system_clock::now();
    if (consecutive_failures_ > 0) {
      spdlog::info("webhook {}: delivers again ({} event(s) waiting)", config_.name, outbox_.size() - 1);
    }
    consecutive_failures_ = 0;
    stats_.failing = false;
    outbox_.pop_front();
    advance(seq);
    if (on_change_) on_change_();
    pump();
    return;
  }
  ++(outcome == core::DeliveryOutcome::kRejected ? stats_.rejected_attempts : stats_.failed_attempts);
  ++consecutive_failures_;
  stats_.failing = true;
  stats_.last_error_at = std::chrono::system_clock::now();
  const std::string message =
      "event " + std::to_string(seq) + " to " + display_url_ + ": " + describe_answer(response);
  // Loud on the first failure and whenever the reason changes; quieter while it lasts.
  const std::string reason = describe_answer(response);
  if (stats_.last_error.find(reason) == std::string::npos || consecutive_failures_ % 20 == 1) {
    spdlog::error("webhook {}: {}{}; {} event(s) wait in its outbox, trying again with back-off",
                  config_.name, message, outcome == core::DeliveryOutcome::kRejected ? " (rejected)" : "",
                  outbox_.size());
  }
  stats_.last_error = message;
  std::optional<std::chrono::milliseconds> retry_after;
  if (response.transport_ok()) {
    if (const std::string* value = response.header("retry-after"))
      retry_after = core::parse_retry_after(*value);
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto delay = core::backoff_delay(backoff_, consecutive_failures_, unit(random_), retry_after);
  pause_timer_.start(delay, [this] { pump(); });
  if (on_change_) on_change_();
}

void WebhookSender::advance(std::uint64_t seq) {
  delivered_through_ = seq;
  if (on_progress_) on_progress_(delivered_through_);
}

}  // namespace unshelver::providers
