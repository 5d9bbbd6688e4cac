// The `ha:` section: off without etcd members, the defaults, the keys that go together, and where
// the etcd password may come from (config.yaml, the secrets file's [ha], UNSHELVER_ETCD_PASSWORD),
// with file:line messages that never show it.
#include <gtest/gtest.h>

#include "config/parser.h"
#include "support/config_text.h"

namespace unshelver::core {
namespace {

using test::all_issues;
using test::parse_config_text;

const std::string kButton = "buttons:\n  - id: gpu\n    provider: sim\n";
const std::string kPassword = "etcd-unit-password-42";

TEST(HaConfig, OffWithoutMembers) {
  auto parsed = parse_config_text(kButton);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_FALSE(parsed.config.ha.enabled());
  // The other keys wait unused, like a commented-out member list.
  parsed = parse_config_text("ha:\n  instance: c1\n" + kButton);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_FALSE(parsed.config.ha.enabled());
}

TEST(HaConfig, MembersAndDefaults) {
  auto parsed = parse_config_text(
      "ha:\n  etcd: [\"http://10.0.0.11:2379\", \"https://etcd.example.org:2379\"]\n  instance: ctl-1.zrh\n" +
      kButton);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const HaSettings& ha = parsed.config.ha;
  EXPECT_TRUE(ha.enabled());
  EXPECT_EQ(ha.etcd.size(), 2U);
  EXPECT_EQ(ha.instance, "ctl-1.zrh");
  EXPECT_EQ(ha.prefix, "unshelver/");
  EXPECT_EQ(ha.lease_ttl, std::chrono::seconds(10));
  EXPECT_EQ(ha.poll_interval, std::chrono::milliseconds(1000));
  EXPECT_EQ(ha.request_timeout, std::chrono::milliseconds(2000));
}

TEST(HaConfig, BadMembersNamesAndLeasesAreReportedWhereTheyAre) {
  auto parsed = parse_config_text(
      "ha:\n  etcd: [\"10.0.0.11:2379\"]\n  instance: \"ctl/1\"\n  lease_ttl_seconds: 2\n" + kButton);
  const std::string issues = all_issues(parsed);
  EXPECT_NE(issues.find("config.yaml:2:"), std::string::npos) << issues;
  EXPECT_NE(issues.find("ha.etcd"), std::string::npos) << issues;
  EXPECT_NE(issues.find("ha.instance: must be 1 to 63 letters"), std::string::npos) << issues;
  EXPECT_NE(issues.find("ha.lease_ttl_seconds"), std::string::npos) << issues;
}

TEST(HaConfig, ACertificateNeedsItsKeyAndAUserItsPassword) {
  auto parsed = parse_config_text(
      "ha:\n  etcd: [\"https://10.0.0.11:2379\"]\n  cert_file: /etc/c.pem\n  username: unshelver\n" +
      kButton);
  const std::string issues = all_issues(parsed);
  EXPECT_NE(issues.find("a client certificate needs both ha.cert_file and ha.key_file"), std::string::npos)
      << issues;
  EXPECT_NE(issues.find("ha.password: is required with ha.username"), std::string::npos) << issues;
  EXPECT_NE(issues.find("UNSHELVER_ETCD_PASSWORD"), std::string::npos) << issues;
}

TEST(HaConfig, PasswordFromTheSecretsFileOrTheEnvironmentNeverShown) {
  const std::string yaml = "ha:\n  etcd: [\"http://10.0.0.11:2379\"]\n  username: unshelver\n" + kButton;
  auto parsed = parse_config_text(yaml, {}, "[ha]\npassword = " + kPassword + "\n");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.ha.password, kPassword);
  parsed = parse_config_text(yaml, {{"UNSHELVER_ETCD_PASSWORD", kPassword}});
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.ha.password, kPassword);
  // A password without a user is a mistake worth saying, without the password.
  parsed = parse_config_text("ha:\n  etcd: [\"http://10.0.0.11:2379\"]\n" + kButton,
                             {{"UNSHELVER_ETCD_PASSWORD", kPassword}});
  const std::string issues = all_issues(parsed);
  EXPECT_NE(issues.find("is set but ha.username is not"), std::string::npos) << issues;
  EXPECT_EQ(issues.find(kPassword), std::string::npos) << issues;
}

}  // namespace
}  // namespace unshelver::core
