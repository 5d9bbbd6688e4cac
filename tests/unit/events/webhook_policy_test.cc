// Tests of the webhooks' pure part (events/webhook_policy.h): the signature against a value that
// Python's hmac module computed, the headers, the cursor names, the event filter, what an answer
// means, and that a shown URL keeps no credential.
#include "events/webhook_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace unshelver::core {
namespace {

const std::string* header(const std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

TEST(WebhookPolicyTest, SignatureIsTheHmacOfTimestampDotBody) {
  // python3 -c 'import hmac,hashlib; print(hmac.new(b"0123456789abcdef-secret",
  //             b"1700000000.{\"seq\":1}", hashlib.sha256).hexdigest())'
  EXPECT_EQ(webhook_signature("0123456789abcdef-secret", 1700000000, R"({"seq":1})"),
            "sha256=0baa640c08aa8a5dc5248bb71fdee048ac77a96b85d5909ed2d018adb809fe42");
  EXPECT_NE(webhook_signature("0123456789abcdef-secret", 1700000001, R"({"seq":1})"),
            webhook_signature("0123456789abcdef-secret", 1700000000, R"({"seq":1})"))
      << "the timestamp is signed too";
}

TEST(WebhookPolicyTest, HeadersCarryTheEventTheDeliveryAndTheSignature) {
  EventRecord record;
  record.id = "20261122T101500.123456Z-000012-3fa9c2d1";
  record.action = "workflow_failed";
  const auto headers = webhook_headers(record, "{}", "0123456789abcdef-secret", 42);
  ASSERT_NE(header(headers, "Content-Type"), nullptr);
  EXPECT_EQ(*header(headers, "Content-Type"), "application/json");
  EXPECT_EQ(*header(headers, kWebhookEventHeader), "workflow_failed");
  EXPECT_EQ(*header(headers, kWebhookDeliveryHeader), record.id);
  EXPECT_EQ(*header(headers, kWebhookTimestampHeader), "42");
  EXPECT_EQ(*header(headers, kWebhookSignatureHeader),
            webhook_signature("0123456789abcdef-secret", 42, "{}"));
  for (const auto& [name, value] : headers) {
    EXPECT_EQ(value.find("0123456789abcdef"), std::string::npos)
        << "the secret itself is never sent: " << name;
  }
}

TEST(WebhookPolicyTest, CursorNameIsAStableHashOfTheUrl) {
  EXPECT_EQ(webhook_cursor_name("https://hooks.example.org/a"), "webhook-e4d47dbfcbf302fe");
  EXPECT_NE(webhook_cursor_name("https://hooks.example.org/b"),
            webhook_cursor_name("https://hooks.example.org/a"));
}

TEST(WebhookPolicyTest, EmptyEventListWantsEverything) {
  EXPECT_TRUE(webhook_wants({}, "shelve_complete"));
  EXPECT_TRUE(webhook_wants({"workflow_failed", "shelve_failed"}, "shelve_failed"));
  EXPECT_FALSE(webhook_wants({"workflow_failed"}, "shelve_complete"));
}

TEST(WebhookPolicyTest, AnswersAreDeliveredFailedOrRejected) {
  EXPECT_EQ(classify_delivery(true, 200), DeliveryOutcome::kDelivered);
  EXPECT_EQ(classify_delivery(true, 204), DeliveryOutcome::kDelivered);
  EXPECT_EQ(classify_delivery(false, 0), DeliveryOutcome::kFailed);
  EXPECT_EQ(classify_delivery(true, 500), DeliveryOutcome::kFailed);
  EXPECT_EQ(classify_delivery(true, 503), DeliveryOutcome::kFailed);
  EXPECT_EQ(classify_delivery(true, 408), DeliveryOutcome::kFailed);
  EXPECT_EQ(classify_delivery(true, 429), DeliveryOutcome::kFailed);
  EXPECT_EQ(classify_delivery(true, 400), DeliveryOutcome::kRejected);
  EXPECT_EQ(classify_delivery(true, 401), DeliveryOutcome::kRejected);
  EXPECT_EQ(classify_delivery(true, 404), DeliveryOutcome::kRejected);
  EXPECT_EQ(classify_delivery(true, 302), DeliveryOutcome::kRejected);
}

TEST(WebhookPolicyTest, DisplayUrlDropsCredentials) {
  EXPECT_EQ(webhook_display_url("https://user:pw@hooks.example.org:8443/in?token=abc#x"),
            "https://hooks.example.org:8443/in");
  EXPECT_EQ(webhook_display_url("http://127.0.0.1:9/"), "http://127.0.0.1:9/");
}

}  // namespace
}  // namespace unshelver::core
