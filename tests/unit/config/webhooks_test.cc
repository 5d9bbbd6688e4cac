// Tests of the `webhooks` list (config/webhooks.h): the keys read into WebhookConfig, the secret's
// precedence (YAML, then the secrets file's [webhooks] section, then UNSHELVER_WEBHOOK_SECRET_*),
// and the errors: no secret, a short one, a duplicate name or URL, a secret for no webhook, and
// never the secret's value in a message.
#include "config/webhooks.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config/parser.h"
#include "support/config_text.h"

namespace unshelver::core {
namespace {

constexpr const char* kOneButton = "buttons:\n  - id: gpu\n    provider: sim\n";
constexpr const char* kYamlSecret = "yaml-secret-0123456789";

ParsedConfig parse_with_webhooks(const std::string& webhooks, std::map<std::string, std::string> env = {},
                                 std::string secrets = "") {
  return test::parse_config_text(std::string(kOneButton) + webhooks, std::move(env), std::move(secrets));
}

using test::all_issues;

TEST(WebhookConfig, KeysAreReadWithTheirDefaults) {
  const ParsedConfig parsed = parse_with_webhooks(std::string(R"(webhooks:
  - name: dashboard
    url: "https://hooks.example.org/in?k=1"
    events: [workflow_failed, shelve_failed]
    secret: ")") + kYamlSecret + R"("
    timeout_seconds: 2.5
  - name: all-of-them
    url: "http://127.0.0.1:9/"
    secret: ")" + kYamlSecret + "\"\n");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  ASSERT_EQ(parsed.config.webhooks.size(), 2u);
  const WebhookConfig& first = parsed.config.webhooks[0];
  EXPECT_EQ(first.name, "dashboard");
  EXPECT_EQ(first.url, "https://hooks.example.org/in?k=1");
  EXPECT_EQ(first.events, (std::vector<std::string>{"workflow_failed", "shelve_failed"}));
  EXPECT_EQ(first.secret, kYamlSecret);
  EXPECT_EQ(first.timeout, std::chrono::milliseconds(2'500));
  EXPECT_EQ(first.retry_max, std::chrono::milliseconds(300'000));
  EXPECT_TRUE(parsed.config.webhooks[1].events.empty()) << "no list: every event";
  EXPECT_EQ(parsed.config.webhooks[1].timeout, std::chrono::milliseconds(10'000));
}

TEST(WebhookConfig, TheSecretsFileWinsOverTheYamlAndTheEnvironmentOverBoth) {
  const std::string yaml = std::string(
                               "webhooks:\n  - name: dash-board\n    url: \"http://127.0.0.1:9/\"\n"
                               "    secret: \"") +
                           kYamlSecret + "\"\n";
  const std::string file = "[webhooks]\ndash-board = file-secret-0123456789\n";
  EXPECT_EQ(parse_with_webhooks(yaml).config.webhooks.at(0).secret, kYamlSecret);
  EXPECT_EQ(parse_with_webhooks(yaml, {}, file).config.webhooks.at(0).secret, "file-secret-0123456789");
  EXPECT_EQ(config_detail::webhook_secret_variable("dash-board"), "UNSHELVER_WEBHOOK_SECRET_DASH_BOARD");
  const ParsedConfig from_env =
      parse_with_webhooks(yaml, {{"UNSHELVER_WEBHOOK_SECRET_DASH_BOARD", "env-secret-0123456789"}}, file);
  ASSERT_TRUE(from_env.ok()) << all_issues(from_env);
  EXPECT_EQ(from_env.config.webhooks.at(0).secret, "env-secret-0123456789");
  // Without any YAML secret, the file alone is enough.
  const ParsedConfig file_only =
      parse_with_webhooks("webhooks:\n  - name: dash-board\n    url: \"http://127.0.0.1:9/\"\n", {}, file);
  ASSERT_TRUE(file_only.ok()) << all_issues(file_only);
}

TEST(WebhookConfig, MistakesAreReportedWithoutTheSecret) {
  const ParsedConfig missing =
      parse_with_webhooks("webhooks:\n  - name: a\n    url: \"http://127.0.0.1:9/\"\n");
  EXPECT_NE(all_issues(missing).find("UNSHELVER_WEBHOOK_SECRET_A"), std::string::npos) << all_issues(missing);

  const ParsedConfig short_secret = parse_with_webhooks(
      "webhooks:\n  - name: a\n    url: \"http://127.0.0.1:9/\"\n    secret: \"tiny-secret\"\n");
  EXPECT_NE(all_issues(short_secret).find("too short"), std::string::npos) << all_issues(short_secret);
  EXPECT_EQ(all_issues(short_secret).find("tiny-secret"), std::string::npos) << "the value is never shown";

  const std::string item =
      std::string("    url: \"http://127.0.0.1:9/\"\n    secret: \"") + kYamlSecret + "\"\n";
  const ParsedConfig same_name =
      parse_with_webhooks("webhooks:\n  - name: a\n" + item + "  - name: a\n" +
                          "    url: \"http://127.0.0.1:8/\"\n    secret: \"" + kYamlSecret + "\"\n");
  EXPECT_NE(all_issues(same_name).find("duplicate webhook name"), std::string::npos) << all_issues(same_name);
  const ParsedConfig same_url =
      parse_with_webhooks("webhooks:\n  - name: a\n" + item + "  - name: b\n" + item);
  EXPECT_NE(all_issues(same_url).find("the same URL as webhooks[0]"), std::string::npos)
      << all_issues(same_url);

  const ParsedConfig bad_url = parse_with_webhooks(
      "webhooks:\n  - name: a\n    url: \"ftp://x/\"\n    secret: \"" + std::string(kYamlSecret) + "\"\n");
  EXPECT_FALSE(bad_url.ok());

  const ParsedConfig stray = parse_with_webhooks("", {}, "[webhooks]\nnobody = file-secret-0123456789\n");
  EXPECT_NE(all_issues(stray).find("no webhook is named \"nobody\""), std::string::npos) << all_issues(stray);
  EXPECT_EQ(all_issues(stray).find("file-secret"), std::string::npos);
}

}  // namespace
}  // namespace unshelver::core
