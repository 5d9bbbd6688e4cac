#include "base/url.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

TEST(ParseUrl, SplitsEveryPart) {
  const auto url = parse_url("https://user:p@ss@Chat.Example.org:8443/a/b?x=1&y=2#top");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->userinfo, "user:p@ss");
  EXPECT_EQ(url->authority, "Chat.Example.org:8443");
  EXPECT_EQ(url->path, "/a/b");
  EXPECT_EQ(url->query, "x=1&y=2");
  EXPECT_EQ(url->fragment, "top");
}

TEST(ParseUrl, OptionalPartsAreAbsentOrEmpty) {
  const auto bare = parse_url("http://127.0.0.1:2019");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->authority, "127.0.0.1:2019");
  EXPECT_FALSE(bare->userinfo);
  EXPECT_EQ(bare->path, "");
  EXPECT_FALSE(bare->query);
  EXPECT_FALSE(bare->fragment);

  const auto empty_query = parse_url("http://h?#");
  ASSERT_TRUE(empty_query);
  EXPECT_EQ(empty_query->authority, "h");
  EXPECT_EQ(empty_query->query, "");
  EXPECT_EQ(empty_query->fragment, "");

  const auto no_host = parse_url("file:///etc/hosts");
  ASSERT_TRUE(no_host);
  EXPECT_EQ(no_host->authority, "");
  EXPECT_EQ(no_host->path, "/etc/hosts");
}

TEST(ParseUrl, QueryAndFragmentEndTheAuthority) {
  const auto url = parse_url("http://host?next=http://other/#frag/with/slash");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->authority, "host");
  EXPECT_EQ(url->path, "");
  EXPECT_EQ(url->query, "next=http://other/");
  EXPECT_EQ(url->fragment, "frag/with/slash");

  const auto at_in_path = parse_url("http://host/a@b");
  ASSERT_TRUE(at_in_path);
  EXPECT_FALSE(at_in_path->userinfo);
  EXPECT_EQ(at_in_path->authority, "host");
}

TEST(ParseUrl, KeepsIpv6BracketsAndLeavesThePortUnchecked) {
  const auto v6 = parse_url("http://[fe80::1]:8080/x");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->authority, "[fe80::1]:8080");
  const auto bad_port = parse_url("http://u:secret@host:port/?token=abc");
  ASSERT_TRUE(bad_port);
  EXPECT_EQ(bad_port->userinfo, "u:secret");
  EXPECT_EQ(bad_port->authority, "host:port");
  EXPECT_FALSE(parse_authority(bad_port->authority).ok());
}

TEST(ParseUrl, NeedsASchemeAndSeparator) {
  for (const char* bad :
       {"", "host:80", "//host/", "://host", "1http://host", "ht tp://host", "a/b://c", "http:/host"}) {
    EXPECT_FALSE(parse_url(bad)) << bad;
  }
  const auto odd = parse_url("HTTP+x.y-z://H");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->scheme, "HTTP+x.y-z");
}

TEST(ParseAuthority, ReadsHostAndOptionalPort) {
  const auto plain = parse_authority("example.org");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->host, "example.org");
  EXPECT_FALSE(plain->bracketed);
  EXPECT_FALSE(plain->port);

  const auto with_port = parse_authority("127.0.0.1:5001");
  ASSERT_TRUE(with_port.ok());
  EXPECT_EQ(with_port->host, "127.0.0.1");
  EXPECT_EQ(with_port->port, 5001);

  const auto v6 = parse_authority("[::1]:8080");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->bracketed);
  EXPECT_EQ(v6->port, 8080);

  const auto v6_bare = parse_authority("[::ffff:10.0.0.1]");
  ASSERT_TRUE(v6_bare.ok());
  EXPECT_EQ(v6_bare->host, "::ffff:10.0.0.1");
  EXPECT_FALSE(v6_bare->port);

  const auto no_host = parse_authority(":0");
  ASSERT_TRUE(no_host.ok());
  EXPECT_EQ(no_host->host, "");
  EXPECT_EQ(no_host->port, 0);

  const auto limits = parse_authority("h:65535");
  ASSERT_TRUE(limits.ok());
  EXPECT_EQ(limits->port, 65535);
  EXPECT_EQ(parse_authority("h:00080")->port, 80);
}

TEST(ParseAuthority, RejectsBadShapesAndPorts) {
  for (const char* bad : {"h:", "h:65536", "h:-1", "h:+1", "h:80x", "h: 80", "h:123456", "::1", "::1:80",
                          "a:b:c", "[::1", "[::1:80", "[]:80", "[]", "[::1]80", "[::1]:", "[::1]x:80"}) {
    EXPECT_FALSE(parse_authority(bad).ok()) << bad;
  }
  EXPECT_EQ(parse_authority("::1:80").error().message, "IPv6 addresses need brackets, as in [::1]:5001");
  EXPECT_EQ(parse_authority("[::1").error().message, "missing ']'");
}

TEST(IsHostPort, NeedsHostAndPort) {
  EXPECT_TRUE(is_host_port("127.0.0.1:8080", 1));
  EXPECT_TRUE(is_host_port("[::1]:8080", 1));
  EXPECT_TRUE(is_host_port("localhost:0", 0));
  EXPECT_FALSE(is_host_port("localhost:0", 1));
  EXPECT_FALSE(is_host_port("localhost", 0));
  EXPECT_FALSE(is_host_port(":8080", 0));
  EXPECT_FALSE(is_host_port("[::1]", 0));
  EXPECT_FALSE(is_host_port("", 0));
}

}  // namespace
}  // namespace unshelver::core
