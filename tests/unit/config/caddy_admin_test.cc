// caddy.admin: the TCP and Unix-socket forms, what check-config says about bad values (with the
// file, line and column), and how the `admin` option of a Caddyfile is read (issue 15 §6).
#include "config/caddy_admin.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/parser.h"

namespace unshelver::core {
namespace {

ParsedConfig parse_admin(const std::string& admin) {
  ConfigInputs in;
  in.yaml_text = "buttons:\n  - id: a\n    provider: sim\ncaddy:\n  admin: " + admin + "\n";
  in.yaml_path = "config.yaml";
  return parse_config(in);
}

std::string issues_of(const ParsedConfig& parsed) {
  std::string out;
  for (const ConfigIssue& issue : parsed.issues) out += issue.to_string() + "\n";
  return out;
}

TEST(CaddyAdmin, HttpUrlIsTcp) {
  const auto endpoint = parse_caddy_admin("http://127.0.0.1:2019/");
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  EXPECT_EQ("http://127.0.0.1:2019", endpoint->base_url);
  EXPECT_EQ("127.0.0.1:2019", endpoint->listen);
  EXPECT_FALSE(endpoint->is_unix_socket());
}

TEST(CaddyAdmin, UnixSocketInCaddysSpelling) {
  const auto endpoint = parse_caddy_admin("unix//run/caddy/admin.sock");
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  EXPECT_TRUE(endpoint->is_unix_socket());
  EXPECT_EQ("/run/caddy/admin.sock", endpoint->unix_socket);
  EXPECT_EQ("unix//run/caddy/admin.sock", endpoint->listen);
  EXPECT_EQ("http://localhost", endpoint->base_url);
}

TEST(CaddyAdmin, BadValuesAreRefusedWithAReason) {
  const struct {
    std::string text;
    std::string reason;
  } cases[] = {
      {"unix/run/caddy/admin.sock", "absolute path"},
      {"unix/", "absolute path"},
      {"unix//run/caddy/admin.sock|0660", "Caddy 2.6.2"},
      {"unix//run/caddy/", "letters, digits"},
      {"unix//run/caddy/admin sock", "letters, digits"},
      {"unix//run/caddy/admin.sock\n}\nevil {", "letters, digits"},
      {"unix//run/{env.X}.sock", "letters, digits"},
      {"unix//run/#admin.sock", "letters, digits"},
      {"unix//run/a:b.sock", "letters, digits"},
      {"unix//" + std::string(200, 'a'), "at most 107 bytes"},
      {"https://127.0.0.1:2019", "unix//run/caddy/admin.sock"},
      {"127.0.0.1:2019", "http://127.0.0.1:2019"},
      {"http://", "http://127.0.0.1:2019"},
      {"unix:/run/caddy/admin.sock", "http://127.0.0.1:2019"},
  };
  for (const auto& bad : cases) {
    const auto endpoint = parse_caddy_admin(bad.text);
    ASSERT_FALSE(endpoint.ok()) << bad.text;
    EXPECT_NE(std::string::npos, endpoint.error().message.find(bad.reason)) << endpoint.error().message;
  }
  // 107 bytes is the longest path a sockaddr_un holds.
  EXPECT_TRUE(parse_caddy_admin("unix//" + std::string(106, 'a')).ok());
  EXPECT_FALSE(parse_caddy_admin("unix//" + std::string(107, 'a')).ok());
}

TEST(CaddyAdmin, CheckConfigAcceptsASocketAndNamesTheLineOfGarbage) {
  EXPECT_EQ("", issues_of(parse_admin("unix//run/caddy/admin.sock")));
  EXPECT_EQ("", issues_of(parse_admin("\"http://127.0.0.1:2019\"")));
  const ParsedConfig parsed = parse_admin("\"unix//run/caddy/admin.sock|0660\"");
  ASSERT_EQ(1u, parsed.issues.size()) << issues_of(parsed);
  EXPECT_EQ(0u, parsed.issues[0].to_string().find(
                    "config.yaml:5:10: caddy.admin: the socket's mode suffix (|0660)"))
      << parsed.issues[0].to_string();
  const ParsedConfig garbage = parse_admin("\"admin please\"");
  ASSERT_EQ(1u, garbage.issues.size()) << issues_of(garbage);
  EXPECT_EQ(0u,
            garbage.issues[0].to_string().find("config.yaml:5:10: caddy.admin: expected the admin API's URL"))
      << garbage.issues[0].to_string();
}

TEST(CaddyAdmin, CaddyfileAdminAddresses) {
  EXPECT_EQ(std::vector<std::string>{}, caddyfile_admin_addresses("{\n\tauto_https off\n}\n"));
  EXPECT_EQ(std::vector<std::string>{"unix//run/caddy/admin.sock"},
            caddyfile_admin_addresses("{\n\tadmin unix//run/caddy/admin.sock # shared with unshelver\n}\n"));
  EXPECT_EQ(
      std::vector<std::string>{"unix//run/caddy/admin.sock"},
      caddyfile_admin_addresses("{\n  admin \"unix//run/caddy/admin.sock\" {\n    origins x\n  }\n}\n"));
  EXPECT_EQ(std::vector<std::string>{"off"}, caddyfile_admin_addresses("{\n\tadmin   off\n}\n"));
  EXPECT_EQ((std::vector<std::string>{"", ""}), caddyfile_admin_addresses("{\n\tadmin {\n\t}\n\tadmin\n}\n"));
  // A comment or another directive that mentions admin is not the option.
  EXPECT_EQ(std::vector<std::string>{},
            caddyfile_admin_addresses("# admin off\nsite {\n\trespond admin\n\t@admin path /admin\n}\n"));
}

}  // namespace
}  // namespace unshelver::core
