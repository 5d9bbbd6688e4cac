// Webhooks, the pure part: what a delivery carries (the body, the headers, the signature), what an
// answer means for the outbox, which receiver wants which event, and how a receiver is named
// where its URL may not be shown. The sending is events/webhook.h.
//
// The signature (README "Webhooks"): every delivery carries
//   Unshelver-Timestamp: <unix seconds when this attempt was made>
//   Unshelver-Signature: sha256=<hex HMAC-SHA256 under the receiver's secret of "<timestamp>.<body>">
// like Stripe's and GitHub's, so that a receiver can check that the body is ours and unaltered,
// and refuse old timestamps (a replayed request). Each attempt is signed anew with its own time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "events/record.h"

namespace unshelver::core {

inline constexpr std::string_view kWebhookTimestampHeader = "Unshelver-Timestamp";
inline constexpr std::string_view kWebhookSignatureHeader = "Unshelver-Signature";
inline constexpr std::string_view kWebhookEventHeader = "Unshelver-Event";
// The record's id: the same in every attempt of one event, so that a receiver can drop a repeat
// (possible only when Unshelver crashed between the receiver's 2xx and saving its cursor).
inline constexpr std::string_view kWebhookDeliveryHeader = "Unshelver-Delivery";

// "sha256=" and the hex HMAC-SHA256 of "<unix_seconds>.<body>" under `secret`.
std::string webhook_signature(std::string_view secret, std::int64_t unix_seconds, std::string_view body);

// The headers of one attempt: Content-Type, User-Agent, and the four above.
std::vector<std::pair<std::string, std::string>> webhook_headers(const EventRecord& record,
                                                                 std::string_view body,
                                                                 std::string_view secret,
                                                                 std::int64_t unix_seconds);

// The name of the receiver's outbox cursor: "webhook-" and the first 16 hex digits of the URL's
// SHA-256. Stable across restarts and renames; a new URL is a new receiver.
std::string webhook_cursor_name(std::string_view url);

// Whether a receiver with this `events` list (empty: all) gets `action`.
bool webhook_wants(const std::vector<std::string>& events, std::string_view action);

// What an attempt's answer means. Nothing is ever dropped: every outcome but kDelivered is tried
// again with back-off. kRejected (a 4xx other than 408 and 429, or a redirect, which is not
// followed) is counted apart, because it usually needs a person (a wrong secret or URL) rather
// than patience; retrying still delivers once the receiver is fixed.
enum class DeliveryOutcome {
  kDelivered,  // 2xx
  kFailed,     // no answer (refused, reset, timed out), 5xx, 408, 429
  kRejected,   // any other status
};
DeliveryOutcome classify_delivery(bool transport_ok, long status);

// The URL without what may hold a credential: "https://hooks.example.org/unshelver", without
// user information, query or fragment. For status pages and logs.
std::string webhook_display_url(std::string_view url);

}  // namespace unshelver::core
