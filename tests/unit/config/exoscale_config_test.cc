// The `exoscale:` section and provider: exoscale buttons: defaults, the zone, and where the API key
// and secret may come from (config.yaml, the secrets file's [exoscale], EXOSCALE_API_KEY /
// EXOSCALE_API_SECRET), with file:line messages that never show a secret.
#include <gtest/gtest.h>

#include "config/parser.h"
#include "support/config_text.h"

namespace unshelver::core {
namespace {

using test::all_issues;
using test::parse_config_text;

const std::string kKey = "EXO0123456789abcdef01234567";
const std::string kSecret = "exo-unit-secret-value-42";

std::string button(std::string extra = "") {
  return "buttons:\n  - id: llm\n    provider: exoscale\n    instance_name: llm-gpu\n" + extra;
}

TEST(ExoscaleConfig, CredentialsFromTheYamlAndTheDefaults) {
  auto parsed =
      parse_config_text("exoscale:\n  api_key: " + kKey + "\n  api_secret: " + kSecret + "\n" + button());
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const BackendConfig& backend = parsed.config.backends.at(0);
  EXPECT_EQ(backend.provider, ProviderKind::kExoscale);
  EXPECT_EQ(backend.exoscale.zone, "ch-gva-2");
  EXPECT_EQ(parsed.config.exoscale.api_key, kKey);
  EXPECT_EQ(parsed.config.exoscale.api_secret, kSecret);
  EXPECT_EQ(parsed.config.exoscale.api_url, "https://api-{zone}.exoscale.com/v2");
  EXPECT_EQ(parsed.config.exoscale.api_timeout, std::chrono::milliseconds(30'000));
}

TEST(ExoscaleConfig, ZonePerButtonOrFromTheSection) {
  auto parsed = parse_config_text("exoscale:\n  zone: at-vie-1\n  api_timeout_seconds: 5\n" +
                                      button("  - id: other\n    provider: exoscale\n    instance_id: abc\n"
                                             "    zone: de-fra-1\n"),
                                  {{"EXOSCALE_API_KEY", kKey}, {"EXOSCALE_API_SECRET", kSecret}});
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.backends.at(0).exoscale.zone, "at-vie-1");
  EXPECT_EQ(parsed.config.backends.at(1).exoscale.zone, "de-fra-1");
  EXPECT_EQ(parsed.config.exoscale.api_secret, kSecret);
  EXPECT_EQ(parsed.config.exoscale.api_timeout, std::chrono::milliseconds(5'000));
}

TEST(ExoscaleConfig, SecretsFileWinsOverTheEnvironment) {
  auto parsed = parse_config_text(
      button(), {{"EXOSCALE_API_KEY", "EXOfromenvironment"}, {"EXOSCALE_API_SECRET", "env"}},
      "[exoscale]\napi_key = " + kKey + "\napi_secret = " + kSecret + "\n");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.exoscale.api_key, kKey);
  EXPECT_EQ(parsed.config.exoscale.api_secret, kSecret);
}

TEST(ExoscaleConfig, MissingCredentialsAreReportedAtTheButton) {
  auto parsed = parse_config_text("app:\n  title: x\n" + button());
  ASSERT_EQ(parsed.issues.size(), 2U) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].to_string().substr(0, 14), "config.yaml:4:");
  EXPECT_NE(
      all_issues(parsed).find("exoscale.api_key: missing required key `api_key`: buttons[0] uses provider "
                              "\"exoscale\"; set it in the secrets file ([exoscale] api_key)"),
      std::string::npos)
      << all_issues(parsed);
  EXPECT_NE(all_issues(parsed).find("EXOSCALE_API_SECRET"), std::string::npos);
}

TEST(ExoscaleConfig, BadZoneUrlKeyAndMissingInstanceAreReportedWithoutTheSecret) {
  auto parsed = parse_config_text("exoscale:\n  api_key: not-a-key\n  api_secret: " + kSecret +
                                  "\n  api_url: ftp://x\n  zone: Geneva\n"
                                  "buttons:\n  - id: llm\n    provider: exoscale\n    zone: ch_gva_2\n");
  const std::string issues = all_issues(parsed);
  EXPECT_NE(issues.find("config.yaml:2:"), std::string::npos) << issues;
  EXPECT_NE(issues.find("is not an Exoscale API key"), std::string::npos) << issues;
  EXPECT_NE(issues.find("config.yaml:4:12: exoscale.api_url:"), std::string::npos) << issues;
  EXPECT_NE(issues.find("config.yaml:5:9: exoscale.zone: must be an Exoscale zone name"), std::string::npos)
      << issues;
  EXPECT_NE(issues.find("buttons[0].zone: must be an Exoscale zone name"), std::string::npos) << issues;
  EXPECT_NE(issues.find("missing required key `instance_name` (or `instance_id`) for provider \"exoscale\""),
            std::string::npos)
      << issues;
  EXPECT_EQ(issues.find(kSecret), std::string::npos);
  EXPECT_EQ(issues.find("not-a-key"), std::string::npos);
}

TEST(ExoscaleConfig, NoCredentialsNeededWithoutAnExoscaleButton) {
  auto parsed = parse_config_text("buttons:\n  - id: demo\n    provider: sim\n");
  EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
}

}  // namespace
}  // namespace unshelver::core
