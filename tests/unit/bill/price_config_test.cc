// Tests of the prices' configuration (buttons[].price, config/schema.cc and config/checks.cc):
// read into BackendConfig::price, absent without the section, and each mistake reported where it
// was written.
#include <gtest/gtest.h>

#include <string>

#include "config/parser.h"
#include "support/config_text.h"

namespace unshelver::core {
namespace {

ParsedConfig parse(const std::string& price) {
  return test::parse_config_text("buttons:\n  - id: gpu\n    provider: sim\n" + price);
}

TEST(PriceConfig, ThePricesAreRead) {
  const ParsedConfig parsed =
      parse("    price:\n      running_per_hour: 2.80\n      asleep_per_hour: 0.05\n      currency: EUR\n");
  ASSERT_TRUE(parsed.ok()) << test::all_issues(parsed);
  ASSERT_TRUE(parsed.config.backends[0].price.has_value());
  EXPECT_DOUBLE_EQ(parsed.config.backends[0].price->running_per_hour, 2.80);
  EXPECT_DOUBLE_EQ(parsed.config.backends[0].price->asleep_per_hour, 0.05);
  EXPECT_EQ(parsed.config.backends[0].price->currency, "EUR");
  // Shelved may cost nothing.
  const ParsedConfig free_sleep = parse("    price:\n      running_per_hour: 1\n      currency: USD\n");
  ASSERT_TRUE(free_sleep.ok()) << test::all_issues(free_sleep);
  EXPECT_DOUBLE_EQ(free_sleep.config.backends[0].price->asleep_per_hour, 0);
}

TEST(PriceConfig, WithoutTheSectionThereIsNoPrice) {
  const ParsedConfig parsed = parse("");
  ASSERT_TRUE(parsed.ok()) << test::all_issues(parsed);
  EXPECT_FALSE(parsed.config.backends[0].price.has_value());
}

TEST(PriceConfig, MistakesAreReportedWhereTheyWereWritten) {
  const ParsedConfig parsed = parse(
      "    price:\n"                 // line 4
      "      running_per_hour: 2\n"  // line 5
      "      asleep_per_hour: 3\n"   // line 6
      "      currency: euro\n");     // line 7
  EXPECT_FALSE(parsed.ok());
  const std::string issues = test::all_issues(parsed);
  EXPECT_NE(issues.find(":7:17: buttons[0].price.currency: must be an ISO 4217 currency code"),
            std::string::npos)
      << issues;
  EXPECT_NE(issues.find(":6:24: buttons[0].price.asleep_per_hour: must not be more than running_per_hour"),
            std::string::npos)
      << issues;

  const ParsedConfig missing = parse("    price:\n      asleep_per_hour: 0.1\n");
  const std::string missing_issues = test::all_issues(missing);
  EXPECT_NE(missing_issues.find("buttons[0].price.running_per_hour: missing required key"), std::string::npos)
      << missing_issues;
  EXPECT_NE(missing_issues.find("buttons[0].price.currency: missing required key"), std::string::npos)
      << missing_issues;

  const ParsedConfig negative = parse("    price:\n      running_per_hour: -1\n      currency: EUR\n");
  EXPECT_FALSE(negative.ok());
  EXPECT_NE(test::all_issues(negative).find(":5:25: buttons[0].price.running_per_hour"), std::string::npos)
      << test::all_issues(negative);
}

}  // namespace
}  // namespace unshelver::core
