// Unit tests for the mail notifications' pure part: which records need a person, the outage
// threshold, the throttle against flapping, and the message itself (headers that cloud text cannot
// break, no secret in any part).
#include "events/notification.h"

#include <gtest/gtest.h>

#include "base/time_format.h"
#include "config/checks.h"

namespace unshelver::core {
namespace {

using namespace std::chrono_literals;

TimePoint at(std::string_view text) {
  return parse_rfc3339(text).value();
}

EventRecord record(std::string action, std::string from, std::string detail) {
  EventRecord r;
  r.seq = 12;
  r.id = "20261206T231005.000000Z-000012-3fa9c2d1";
  r.at = at("2026-12-06T23:10:05Z");
  r.backend = "gpu";
  r.instance_name = "gpu-chat-instance";
  r.action = std::move(action);
  r.actor = "reconciler";
  r.from = std::move(from);
  r.to = "error";
  r.detail = std::move(detail);
  return r;
}

TEST(AlertForRecord, NamesEachFailureThatNeedsAPerson) {
  auto wake = alert_for_record(record("workflow_failed", "waking", "wake failed: Nova answered 500"));
  ASSERT_TRUE(wake);
  EXPECT_EQ(AlertKind::kWakeFailed, wake->kind);
  EXPECT_EQ("gpu", wake->backend);
  EXPECT_EQ("gpu-chat-instance", wake->instance);
  EXPECT_EQ("wake failed: Nova answered 500", wake->reason);
  EXPECT_EQ(at("2026-12-06T23:10:05Z"), wake->at);

  auto no_host = alert_for_record(
      record("workflow_failed", "waking",
             "the cloud reports ERROR: No valid host was found. There are not enough hosts"));
  ASSERT_TRUE(no_host);
  EXPECT_EQ(AlertKind::kNoValidHost, no_host->kind);

  auto unhealthy = alert_for_record(record("unshelve_incomplete", "booting", "health check did not pass"));
  ASSERT_TRUE(unhealthy);
  EXPECT_EQ(AlertKind::kServiceUnhealthy, unhealthy->kind);

  // The awake helper's record (issue 17), and a failed sleep as the reconciler records it today.
  auto shelve = alert_for_record(record("shelve_failed", "ready", "sleep failed: Nova answered 409"));
  ASSERT_TRUE(shelve);
  EXPECT_EQ(AlertKind::kShelveFailed, shelve->kind);
  auto sleeping = alert_for_record(record("workflow_failed", "sleeping", "sleep failed: 409"));
  ASSERT_TRUE(sleeping);
  EXPECT_EQ(AlertKind::kShelveFailed, sleeping->kind);
}

TEST(AlertForRecord, IgnoresEverydayEvents) {
  for (const char* action : {"unshelve_requested", "unshelve_complete", "shelve_requested", "shelve_complete",
                             "cloud_running", "login_failed", "caddy_load_failed", "config_reloaded"}) {
    EXPECT_FALSE(alert_for_record(record(action, "asleep", ""))) << action;
  }
}

TEST(OutageWatch, AlertsOnceWhenTheThresholdIsCrossedAndOnceOnRecovery) {
  OutageWatch swift("Swift", 15min);
  const TimePoint start = at("2026-12-06T10:00:00Z");
  EXPECT_FALSE(swift.observe(true, "Swift answered 503", start));
  EXPECT_FALSE(swift.observe(true, "Swift answered 503", start + 14min));
  auto crossed = swift.observe(true, "connection refused", start + 15min);
  ASSERT_TRUE(crossed);
  EXPECT_EQ(AlertKind::kOutage, crossed->kind);
  EXPECT_EQ("Swift", crossed->subsystem);
  EXPECT_EQ("connection refused", crossed->reason);
  EXPECT_EQ(start, crossed->at);
  EXPECT_FALSE(swift.observe(true, "connection refused", start + 60min));
  auto recovered = swift.observe(false, "", start + 61min);
  ASSERT_TRUE(recovered);
  EXPECT_EQ(AlertKind::kRecovered, recovered->kind);
  EXPECT_EQ(start, recovered->at);
  EXPECT_EQ(start + 61min, recovered->recovered_at);
  EXPECT_FALSE(swift.observe(false, "", start + 62min));
}

TEST(OutageWatch, ABriefFailureIsNoOutage) {
  OutageWatch caddy("Caddy", 15min);
  const TimePoint start = at("2026-12-06T10:00:00Z");
  for (int minute = 0; minute < 120; minute += 10) {
    // Fails for 10 minutes, then one success: the clock starts again each time.
    EXPECT_FALSE(caddy.observe(true, "refused", start + std::chrono::minutes(minute)));
    EXPECT_FALSE(caddy.observe(true, "refused", start + std::chrono::minutes(minute + 9)));
    EXPECT_FALSE(caddy.observe(false, "", start + std::chrono::minutes(minute + 9) + 30s));
  }
}

TEST(MailThrottle, HoldsBackRepeatsAndCountsThem) {
  MailThrottle throttle(1h);
  const TimePoint start = at("2026-12-06T10:00:00Z");
  Alert alert = *alert_for_record(record("workflow_failed", "waking", "boom"));
  EXPECT_TRUE(throttle.admit(alert, start).send);
  EXPECT_FALSE(throttle.admit(alert, start + 5min).send);
  EXPECT_FALSE(throttle.admit(alert, start + 10min).send);
  // Another backend, or another kind, is not held back by this one.
  Alert other = alert;
  other.backend = "cpu";
  EXPECT_TRUE(throttle.admit(other, start + 11min).send);
  auto later = throttle.admit(alert, start + 61min);
  EXPECT_TRUE(later.send);
  EXPECT_EQ(2U, later.held_back_before);
  EXPECT_EQ(start + 5min, later.held_back_since);
  EXPECT_EQ(2U, throttle.held_back());
}

TEST(MailThrottle, AFlappingServiceSendsAtMostTwoMessagesPerQuietPeriod) {
  MailThrottle throttle(1h);
  OutageWatch caddy("Caddy", 1min);
  const TimePoint start = at("2026-12-06T10:00:00Z");
  int sent = 0;
  for (int cycle = 0; cycle < 20; ++cycle) {
    // Every 3 minutes: fails for 2 minutes (past the threshold), then works for a moment.
    const TimePoint t = start + std::chrono::minutes(cycle * 3);
    EXPECT_FALSE(caddy.observe(true, "refused", t));
    for (auto alert : {caddy.observe(true, "refused", t + 2min), caddy.observe(false, "", t + 2min + 30s)}) {
      ASSERT_TRUE(alert);
      if (throttle.admit(*alert, t + 2min).send) ++sent;
    }
  }
  // 20 outages and 20 recoveries within an hour: the first outage and its recovery are mailed.
  EXPECT_EQ(2, sent);
}

TEST(Compose, SaysTheBackendReasonTimeAndWhatToDo) {
  Alert alert = *alert_for_record(record("workflow_failed", "waking", "No valid host was found."));
  MailContext context;
  context.now = at("2026-12-06T23:13:25Z");
  context.control_url = "https://launcher.example.org/control";
  const MailMessage message = compose(alert, context);
  EXPECT_NE(std::string::npos, message.subject.find("gpu"));
  EXPECT_NE(std::string::npos, message.subject.find("No valid host"));
  EXPECT_NE(std::string::npos, message.body.find("Backend:  gpu (server gpu-chat-instance)"));
  EXPECT_NE(std::string::npos, message.body.find("Reason:   No valid host was found."));
  EXPECT_NE(std::string::npos, message.body.find("2026-12-06T23:10:05Z"));
  EXPECT_NE(std::string::npos, message.body.find("Sunday 06 December 2026, 23:10:05 UTC (3 min 20 s ago)"));
  EXPECT_NE(std::string::npos, message.body.find("What to do: Wake it again later"));
  EXPECT_NE(std::string::npos, message.body.find("https://launcher.example.org/control"));
}

TEST(Compose, AFailureWhileRunningIsNoFailedWake) {
  Alert running = *alert_for_record(record("workflow_failed", "ready", "the cloud reports ERROR"));
  EXPECT_EQ("[Unshelver] gpu: failed while running", compose(running, MailContext{}).subject);
  Alert waking = *alert_for_record(record("workflow_failed", "asleep", "wake failed: Nova answered 500"));
  EXPECT_EQ("[Unshelver] gpu: wake failed", compose(waking, MailContext{}).subject);
}

TEST(Compose, NamesNoValidHostOnlyWhenTheCloudSaidSo) {
  Alert quota = *alert_for_record(record("workflow_failed", "waking", "Quota exceeded for instances"));
  EXPECT_EQ(AlertKind::kNoValidHost, quota.kind);
  const MailMessage message = compose(quota, MailContext{});
  EXPECT_EQ("[Unshelver] gpu: wake failed, the cloud has no room (quota or capacity)", message.subject);
}

TEST(Compose, MentionsWhatTheThrottleHeldBack) {
  Alert alert = *alert_for_record(record("shelve_failed", "ready", "refused"));
  MailContext context;
  context.now = at("2026-12-06T23:13:25Z");
  context.held_back_before = 3;
  context.held_back_since = at("2026-12-06T22:00:00Z");
  context.quiet = 1h;
  const MailMessage message = compose(alert, context);
  EXPECT_NE(std::string::npos, message.subject.find("keeps running"));
  EXPECT_NE(std::string::npos, message.body.find("3 similar alert(s) since 2026-12-06T22:00:00Z"));
}

TEST(ScrubSecrets, RemovesConfiguredSecretsAndUrlCredentials) {
  const std::vector<std::string> secrets = {"s3cr3t-token-value", "pw", "hunter2-password"};
  const std::string scrubbed = scrub_secrets(
      "token s3cr3t-token-value; see https://admin:hunter2-password@keystone.example.org:5000/v3?"
      "sig=abc123#frag and http://plain.example.org/path, pw stays",
      secrets);
  EXPECT_EQ(std::string::npos, scrubbed.find("s3cr3t-token-value"));
  EXPECT_EQ(std::string::npos, scrubbed.find("hunter2"));
  EXPECT_EQ(std::string::npos, scrubbed.find("admin:"));
  EXPECT_EQ(std::string::npos, scrubbed.find("abc123"));
  EXPECT_EQ(std::string::npos, scrubbed.find("frag"));
  EXPECT_NE(std::string::npos,
            scrubbed.find("https://[redacted]@keystone.example.org:5000/v3?[redacted]#[redacted]"));
  EXPECT_NE(std::string::npos, scrubbed.find("http://plain.example.org/path,"));
  // Too short to search for without redacting ordinary words.
  EXPECT_NE(std::string::npos, scrubbed.find("pw stays"));
}

TEST(EncodeHeaderValue, NoCloudTextCanStartAHeader) {
  const std::string value = encode_header_value("Subject", "gpu: failed\r\nBcc: victim@example.org\nX: y");
  EXPECT_EQ(std::string::npos, value.find('\r'));
  // Folding puts "\n " between encoded words, never a newline followed by a header name.
  for (std::size_t i = value.find('\n'); i != std::string::npos; i = value.find('\n', i + 1)) {
    ASSERT_LT(i + 1, value.size());
    EXPECT_EQ(' ', value[i + 1]);
  }
  EXPECT_EQ("gpu: failed  Bcc: victim@example.org X: y",
            encode_header_value("Subject", "gpu: failed\r\nBcc: victim@example.org\nX: y"));
}

TEST(EncodeHeaderValue, EncodesUtf8AndLongValuesAsFoldedWords) {
  const std::string value = encode_header_value("Subject", "Grüße: Dienst läuft nicht");
  EXPECT_EQ("=?UTF-8?Q?Gr=C3=BC=C3=9Fe=3A_Dienst_l=C3=A4uft_nicht?=", value);
  const std::string long_value = encode_header_value("Subject", std::string(300, 'x') + "é");
  std::size_t line_start = 0;
  while (line_start < long_value.size()) {
    std::size_t end = long_value.find('\n', line_start);
    if (end == std::string::npos) end = long_value.size();
    EXPECT_LE(end - line_start, 78U);
    line_start = end + 1;
  }
  EXPECT_EQ("plain text", encode_header_value("Subject", "plain text"));
  // Text that looks like an encoded word is encoded itself, so that no reader decodes it.
  EXPECT_NE("=?UTF-8?B?QmNjOg==?=", encode_header_value("Subject", "=?UTF-8?B?QmNjOg==?="));
}

TEST(RenderMessage, IsAnRfc5322MessageWithoutSecretsOrInjectedHeaders) {
  Alert alert = *alert_for_record(
      record("workflow_failed", "waking",
             "wake failed: Nova said\r\nBcc: victim@example.org\r\n\r\nfake body with s3cr3t-token-value and "
             "https://user:hunter2-password@cloud.example.org/x?token=abc"));
  alert.backend = "gpu\r\nBcc: victim@example.org";
  MailContext context;
  context.now = at("2026-12-06T23:13:25Z");
  const MailMessage message = compose(alert, context);
  MailEnvelope envelope{
      "unshelver@launcher.example.org", {"admin@example.org", "ops@example.org"}, "0a1b2c3d"};
  const std::string text =
      render_message(message, envelope, context.now, {"s3cr3t-token-value", "hunter2-password"});

  const std::size_t blank = text.find("\n\n");
  ASSERT_NE(std::string::npos, blank);
  const std::string headers = text.substr(0, blank + 1);
  EXPECT_EQ(0U, headers.find("From: Unshelver <unshelver@launcher.example.org>\n"));
  EXPECT_NE(std::string::npos, headers.find("To: admin@example.org,\n ops@example.org\n"));
  EXPECT_NE(std::string::npos, headers.find("Date: Sun, 06 Dec 2026 23:13:25 +0000\n"));
  EXPECT_NE(std::string::npos,
            headers.find("Message-ID: <20261206T231325Z.0a1b2c3d@launcher.example.org>\n"));
  EXPECT_NE(std::string::npos, headers.find("Content-Type: text/plain; charset=utf-8\n"));
  // Every header line starts with a known name or is a continuation.
  std::size_t line_start = 0;
  while (line_start < headers.size()) {
    const std::size_t end = headers.find('\n', line_start);
    const std::string line = headers.substr(line_start, end - line_start);
    const bool known =
        line.starts_with(' ') || line.starts_with("From: ") || line.starts_with("To: ") ||
        line.starts_with("Subject: ") || line.starts_with("Date: ") || line.starts_with("Message-ID: ") ||
        line.starts_with("MIME-Version: ") || line.starts_with("Content-Type: ") ||
        line.starts_with("Content-Transfer-Encoding: ") || line.starts_with("Auto-Submitted: ");
    EXPECT_TRUE(known) << line;
    EXPECT_FALSE(line.starts_with("Bcc")) << line;
    line_start = end + 1;
  }
  EXPECT_EQ(std::string::npos, text.find('\r'));
  EXPECT_EQ(std::string::npos, text.find("s3cr3t-token-value"));
  EXPECT_EQ(std::string::npos, text.find("hunter2"));
  EXPECT_EQ(std::string::npos, text.find("token=abc"));
  // The injected lines are quoted in the body, escaped, not obeyed.
  EXPECT_NE(std::string::npos, text.find("Nova said\\r\\nBcc: victim@example.org"));
}

TEST(RenderMessage, BreaksLongBodyLines) {
  MailMessage message{"[Unshelver] x", std::string(5000, 'a') + "\nshort\n"};
  const std::string text =
      render_message(message, {"a@b.example", {"c@d.example"}, "00"}, at("2026-12-06T23:13:25Z"), {});
  std::size_t line_start = 0;
  while (line_start < text.size()) {
    std::size_t end = text.find('\n', line_start);
    if (end == std::string::npos) end = text.size();
    EXPECT_LE(end - line_start, 998U);
    line_start = end + 1;
  }
}

TEST(PlainMailAddress, RefusesWhatCouldBreakAHeader) {
  EXPECT_TRUE(config_detail::is_plain_mail_address("admin@example.org"));
  EXPECT_TRUE(config_detail::is_plain_mail_address("first.last+tag@sub.example.org"));
  EXPECT_FALSE(config_detail::is_plain_mail_address("nobody"));
  EXPECT_FALSE(config_detail::is_plain_mail_address("a@b.org\nBcc: c@d.org"));
  EXPECT_FALSE(config_detail::is_plain_mail_address("a@b.org, c@d.org"));
  EXPECT_FALSE(config_detail::is_plain_mail_address("Admin <a@b.org>"));
  EXPECT_FALSE(config_detail::is_plain_mail_address("@b.org"));
  EXPECT_FALSE(config_detail::is_plain_mail_address("a@"));
}

}  // namespace
}  // namespace unshelver::core
