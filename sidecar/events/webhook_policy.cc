#include "events/webhook_policy.h"

#include <algorithm>

#include "base/crypto.h"
#include "base/url.h"

namespace unshelver::core {

std::string webhook_signature(std::string_view secret, std::int64_t unix_seconds, std::string_view body) {
  std::string message = std::to_string(unix_seconds);
  message += '.';
  message += body;
  return "sha256=" + hex(to_bytes(hmac_sha256(secret, message)));
}

std::vector<std::pair<std::string, std::string>> webhook_headers(const EventRecord& record,
                                                                 std::string_view body,
                                                                 std::string_view secret,
                                                                 std::int64_t unix_seconds) {
  return {
      {"Content-Type", "application/json"},
      {"User-Agent", "Unshelver-Webhook"},
      {std::string(kWebhookEventHeader), record.action},
      {std::string(kWebhookDeliveryHeader), record.id},
      {std::string(kWebhookTimestampHeader), std::to_string(unix_seconds)},
      {std::string(kWebhookSignatureHeader), webhook_signature(secret, unix_seconds, body)},
  };
}

std::string webhook_cursor_name(std::string_view url) {
  return "webhook-" + hex(to_bytes(sha256(url))).substr(0, 16);
}

bool webhook_wants(const std::vector<std::string>& events, std::string_view action) {
  return events.empty() || std::find(events.begin(), events.end(), action) != events.end();
}

DeliveryOutcome classify_delivery(bool transport_ok, long status) {
  if (!transport_ok) return DeliveryOutcome::kFailed;
  if (status >= 200 && status < 300) return DeliveryOutcome::kDelivered;
  if (status >= 500 || status == 408 || status == 429) return DeliveryOutcome::kFailed;
  return DeliveryOutcome::kRejected;
}

std::string webhook_display_url(std::string_view url) {
  const std::optional<Url> parsed = parse_url(url);
  if (!parsed) return "(not a URL)";
  return parsed->scheme + "://" + parsed->authority + parsed->path;
}

}  // namespace unshelver::core
