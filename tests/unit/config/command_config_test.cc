// The `command` section of a button (provider: command): its keys, and the file:line errors of
// what cannot work.
#include <gtest/gtest.h>

#include "config/parser.h"
#include "support/config_text.h"

namespace unshelver::core {
namespace {

using test::all_issues;
using test::parse_config_text;

constexpr const char* kHead = R"(buttons:
  - id: gpu
    label: GPU
    public_base_url: https://chat.example.org
    provider: command
)";

TEST(CommandConfig, ReadsEveryKey) {
  const auto parsed = parse_config_text(std::string(kHead) + R"(    command:
      wake: ["aws", "ec2", "start-instances", "--instance-ids", "i-0abc"]
      sleep: [aws, ec2, stop-instances, --instance-ids, i-0abc]
      observe:
        - sh
        - -ec
        - |
          printf '{"state": "%s"}\n' running
      timeout_seconds: 2.5
      environment: ["AWS_REGION=eu-central-1", "EMPTY="]
      pass_environment: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]
      working_directory: /var/lib/unshelver
      output_limit_bytes: 4096
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const BackendConfig& backend = parsed.config.backends.at(0);
  EXPECT_EQ(backend.provider, ProviderKind::kCommand);
  EXPECT_EQ(backend.command.wake,
            (std::vector<std::string>{"aws", "ec2", "start-instances", "--instance-ids", "i-0abc"}));
  EXPECT_EQ(backend.command.sleep.size(), 5u);
  EXPECT_EQ(backend.command.observe,
            (std::vector<std::string>{"sh", "-ec", "printf '{\"state\": \"%s\"}\\n' running\n"}));
  EXPECT_EQ(backend.command.timeout, Millis(2500));
  EXPECT_EQ(backend.command.environment, (std::vector<std::string>{"AWS_REGION=eu-central-1", "EMPTY="}));
  EXPECT_EQ(backend.command.pass_environment,
            (std::vector<std::string>{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}));
  EXPECT_EQ(backend.command.working_directory, "/var/lib/unshelver");
  EXPECT_EQ(backend.command.output_limit, 4096u);
}

TEST(CommandConfig, AMissingSectionNamesEachCommandAtTheButton) {
  const auto parsed = parse_config_text(kHead);
  const std::string issues = all_issues(parsed);
  EXPECT_NE(issues.find("config.yaml:5:15: buttons[0].command.wake: missing required key `command.wake`"),
            std::string::npos)
      << issues;
  EXPECT_NE(issues.find("buttons[0].command.sleep: missing"), std::string::npos) << issues;
  EXPECT_NE(issues.find("buttons[0].command.observe: missing"), std::string::npos) << issues;
  EXPECT_EQ(issues.find("internal error"), std::string::npos) << issues;
}

TEST(CommandConfig, EmptyCommandsAndBadEntriesAreErrorsWithTheirLine) {
  const auto parsed = parse_config_text(std::string(kHead) + R"(    command:
      wake: []
      sleep: ["", "x"]
      observe: [observe]
      environment: ["NO_EQUALS", "=value", "BAD-NAME=1"]
      pass_environment: ["AWS SECRET"]
      working_directory: relative/dir
      output_limit_bytes: 10
)");
  const std::string issues = all_issues(parsed);
  EXPECT_NE(issues.find("config.yaml:7:13: buttons[0].command.wake: missing required key `command.wake`"),
            std::string::npos)
      << issues;
  EXPECT_NE(
      issues.find(
          "config.yaml:8:14: buttons[0].command.sleep: the program (the first element) must not be empty"),
      std::string::npos)
      << issues;
  EXPECT_EQ(issues.find("command.observe"), std::string::npos) << issues;
  EXPECT_NE(issues.find("expected NAME=value"), std::string::npos) << issues;
  EXPECT_NE(issues.find("pass_environment"), std::string::npos) << issues;
  EXPECT_NE(issues.find("working_directory"), std::string::npos) << issues;
  EXPECT_NE(issues.find("output_limit_bytes"), std::string::npos) << issues;
}

TEST(CommandConfig, OtherProvidersIgnoreTheSection) {
  const auto parsed = parse_config_text(R"(buttons:
  - id: gpu
    label: GPU
    public_base_url: https://chat.example.org
    provider: sim
)");
  EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
}

}  // namespace
}  // namespace unshelver::core
