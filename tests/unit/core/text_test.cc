#include "core/text.h"

#include <gtest/gtest.h>

namespace unshelver::core {
namespace {

TEST(Text, ToLowerChangesAsciiLettersOnly) {
  EXPECT_EQ(to_lower("Chat.Example.ORG:8080"), "chat.example.org:8080");
  EXPECT_EQ(to_lower("\xC3\x84"), "\xC3\x84");
}

TEST(Text, TrimTakesTheBlanksItIsGiven) {
  EXPECT_EQ(trim(" \t value \r\n"), "value");
  EXPECT_EQ(trim(" \t \n"), "");
  EXPECT_EQ(trim(" x\n", " \t"), "x\n");
}

TEST(Text, HostWithoutPort) {
  EXPECT_EQ(host_without_port("chat.localhost:18080"), "chat.localhost");
  EXPECT_EQ(host_without_port("chat.localhost"), "chat.localhost");
  EXPECT_EQ(host_without_port("[::1]:8080"), "::1");
  EXPECT_EQ(host_without_port("::1"), "::1");
  EXPECT_EQ(host_without_port(""), "");
}

}  // namespace
}  // namespace unshelver::core
