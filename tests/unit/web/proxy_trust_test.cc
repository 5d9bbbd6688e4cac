#include "web/proxy_trust.h"

#include <gtest/gtest.h>

#include "base/address_range.h"

namespace unshelver::core {
namespace {

TEST(AddressRange, ParsesAddressesAndPrefixes) {
  auto single = parse_address_range("192.0.2.7");
  ASSERT_TRUE(single);
  EXPECT_FALSE(single->v6);
  EXPECT_EQ(single->prefix_bits, 32);
  auto v4 = parse_address_range("10.0.0.0/8");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->prefix_bits, 8);
  auto v6 = parse_address_range("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->v6);
  EXPECT_EQ(v6->prefix_bits, 8);
  EXPECT_TRUE(parse_address_range("::1"));
  EXPECT_TRUE(parse_address_range("0.0.0.0/0"));
}

TEST(AddressRange, RefusesWhatIsNotARange) {
  for (const char* text :
       {"", "localhost", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1", "10.0.0.0/8/8",
        "1.2.3", "01.2.3.4", "[::1]", "::ffff:127.0.0.1/8", "10.0.0.0/ 8"}) {
    EXPECT_FALSE(parse_address_range(text)) << text;
    EXPECT_NE(check_address_range(text), "") << text;
  }
  EXPECT_EQ(check_address_range("10.0.0.0/8"), "");
}

TEST(AddressRange, ContainsComparesThePrefixBitsOnly) {
  const AddressRange range = *parse_address_range("10.1.2.3/12");
  EXPECT_TRUE(range_contains(range, *parse_address("10.15.255.255")));
  EXPECT_FALSE(range_contains(range, *parse_address("10.16.0.0")));
  EXPECT_FALSE(range_contains(*parse_address_range("::/0"), *parse_address("10.0.0.1")))
      << "never across families";
  EXPECT_TRUE(range_contains(*parse_address_range("fd00::/8"), *parse_address("fdab::1")));
  // A server listening on "::" reports IPv4 peers as IPv4-mapped addresses.
  EXPECT_TRUE(range_contains(*parse_address_range("127.0.0.0/8"), *parse_address("::ffff:127.0.0.1")));
}

TEST(ProxyTrust, WithoutConfigurationLoopbackIsTrustedAsBefore) {
  const ProxyTrust trust(std::nullopt, false);
  EXPECT_TRUE(trust.trusts("127.0.0.1"));
  EXPECT_TRUE(trust.trusts("127.5.0.1"));
  EXPECT_TRUE(trust.trusts("::1"));
  EXPECT_TRUE(trust.trusts("::ffff:127.0.0.1"));
  EXPECT_FALSE(trust.trusts("192.0.2.7"));
  EXPECT_FALSE(trust.trusts("unix"));
  EXPECT_FALSE(trust.trusts(""));
}

TEST(ProxyTrust, WithAProxySocketNoTcpPeerIsTrustedByDefault) {
  const ProxyTrust trust(std::nullopt, true);
  EXPECT_FALSE(trust.trusts("127.0.0.1"));
  EXPECT_FALSE(trust.trusts("::1"));
}

TEST(ProxyTrust, AConfiguredListReplacesTheDefault) {
  const ProxyTrust only_lan(std::vector<std::string>{"10.0.0.0/8", "fd00::/8"}, false);
  EXPECT_TRUE(only_lan.trusts("10.20.30.40"));
  EXPECT_TRUE(only_lan.trusts("fd12::5"));
  EXPECT_FALSE(only_lan.trusts("127.0.0.1"));
  const ProxyTrust nobody(std::vector<std::string>{}, false);
  EXPECT_FALSE(nobody.trusts("127.0.0.1"));
  const ProxyTrust socket_and_loopback(std::vector<std::string>{"127.0.0.1"}, true);
  EXPECT_TRUE(socket_and_loopback.trusts("127.0.0.1"));
}

}  // namespace
}  // namespace unshelver::core
