#include "base/text.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

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

TEST(Text, QueryParameterFindsTheNamedValue) {
  EXPECT_EQ(query_parameter("after=12&backend=gpu", "after"), "12");
  EXPECT_EQ(query_parameter("after=12&backend=gpu", "backend"), "gpu");
  EXPECT_EQ(query_parameter("after=12&backend=gpu&limit=5&wait=2.5", "wait"), "2.5");
  // The value may hold '=' itself.
  EXPECT_EQ(query_parameter("token=a=b=c", "token"), "a=b=c");
}

TEST(Text, QueryParameterMissing) {
  EXPECT_EQ(query_parameter("", "after"), std::nullopt);
  EXPECT_EQ(query_parameter("after=12&backend=gpu", "limit"), std::nullopt);
  // Names match whole, never by prefix or suffix, and case matters.
  EXPECT_EQ(query_parameter("backends=gpu&xafter=1&after_x=2", "backend"), std::nullopt);
  EXPECT_EQ(query_parameter("backends=gpu&xafter=1&after_x=2", "after"), std::nullopt);
  EXPECT_EQ(query_parameter("After=1", "after"), std::nullopt);
  // A value is not a name.
  EXPECT_EQ(query_parameter("backend=after", "after"), std::nullopt);
  // Empty pairs and a pair without a name are skipped.
  EXPECT_EQ(query_parameter("&&=x&", "after"), std::nullopt);
  EXPECT_EQ(query_parameter("=x", ""), std::nullopt);
}

TEST(Text, QueryParameterEmptyValue) {
  EXPECT_EQ(query_parameter("backend=&after=1", "backend"), std::optional<std::string>(""));
  EXPECT_EQ(query_parameter("after=1&backend=", "backend"), std::optional<std::string>(""));
  // A name without '=' is present with an empty value.
  EXPECT_EQ(query_parameter("follow&after=1", "follow"), std::optional<std::string>(""));
  EXPECT_EQ(query_parameter("after=1&follow", "follow"), std::optional<std::string>(""));
  EXPECT_EQ(query_parameter("&&after=3&", "after"), "3");
}

TEST(Text, QueryParameterPercentDecodes) {
  EXPECT_EQ(query_parameter("backend=gpu%20box%2F1", "backend"), "gpu box/1");
  EXPECT_EQ(query_parameter("backend=gpu%2fbox", "backend"), "gpu/box");  // lower-case hex
  EXPECT_EQ(query_parameter("q=%C3%A4%26%3D", "q"), "\xC3\xA4&=");        // an encoded '&' and '='
  EXPECT_EQ(query_parameter("q=%00x", "q"), std::string("\0x", 2));
  // Names are decoded too.
  EXPECT_EQ(query_parameter("back%65nd=gpu", "backend"), "gpu");
  EXPECT_EQ(query_parameter("a%26b=1", "a&b"), "1");
  // Decoding happens once: "%2541" is "%41", not "A".
  EXPECT_EQ(query_parameter("q=%2541", "q"), "%41");
}

TEST(Text, QueryParameterPlusIsASpace) {
  EXPECT_EQ(query_parameter("q=a+b++c", "q"), "a b  c");
  EXPECT_EQ(query_parameter("q=a%2Bb", "q"), "a+b");
  EXPECT_EQ(query_parameter("my+name=1", "my name"), "1");
}

TEST(Text, QueryParameterRepeatedNameGivesTheFirst) {
  EXPECT_EQ(query_parameter("after=1&after=2", "after"), "1");
  EXPECT_EQ(query_parameter("after=&after=2", "after"), std::optional<std::string>(""));
  EXPECT_EQ(query_parameter("x=0&after=7&backend=a&after=9", "after"), "7");
}

TEST(Text, QueryParameterStrayPercentStaysAsItIs) {
  EXPECT_EQ(query_parameter("detail=100%", "detail"), "100%");
  EXPECT_EQ(query_parameter("detail=100%&x=1", "detail"), "100%");
  EXPECT_EQ(query_parameter("d=%4", "d"), "%4");
  EXPECT_EQ(query_parameter("d=%zz", "d"), "%zz");
  EXPECT_EQ(query_parameter("d=%4g", "d"), "%4g");
  EXPECT_EQ(query_parameter("d=%%41", "d"), "%A");
  EXPECT_EQ(query_parameter("d=%", "d"), "%");
  EXPECT_EQ(query_parameter("d=a%4", "d"), "a%4");
  EXPECT_EQ(query_parameter("d=%41", "d"), "A");  // the shortest complete escape at the very end
}

TEST(Text, QueryParameterReadsWhatPercentEncodeWrites) {
  const std::vector<std::string> values = {"gpu box/1", "a+b&c=d", "100%", "\xC3\xA4 \xE2\x82\xAC",
                                           std::string("\0\xFF", 2)};
  for (const std::string& value : values) {
    EXPECT_EQ(query_parameter("x=1&v=" + percent_encode(value) + "&y=2", "v"), value);
  }
}

TEST(CookieValue, FindsTheNamedCookieAmongOthers) {
  EXPECT_EQ(cookie_value("a=1; unshelver_session=v1.x.y; b=2", "unshelver_session"), "v1.x.y");
  EXPECT_EQ(cookie_value("unshelver_session=first;unshelver_session=second", "unshelver_session"), "first");
  EXPECT_EQ(cookie_value("  a = 1 ;b=\"quoted\"", "b"), "quoted");
  EXPECT_EQ(cookie_value("a=1", "a"), "1");
  EXPECT_EQ(cookie_value("empty=", "empty"), "");
}

TEST(CookieValue, AbsentOrMalformedIsNullopt) {
  EXPECT_EQ(cookie_value("", "a"), std::nullopt);
  EXPECT_EQ(cookie_value("ab=1", "a"), std::nullopt);
  EXPECT_EQ(cookie_value("xa=1; a", "a"), std::nullopt);
  EXPECT_EQ(cookie_value(";;;", "a"), std::nullopt);
  EXPECT_EQ(cookie_value("unshelver_sessionX=1", "unshelver_session"), std::nullopt);
}

TEST(ReplaceAll, ReplacesEveryOccurrenceWithoutRescanningTheReplacement) {
  EXPECT_EQ(replace_all("a-TOKEN-b-TOKEN", "TOKEN", "x"), "a-x-b-x");
  EXPECT_EQ(replace_all("aaa", "a", "aa"), "aaaaaa");
  EXPECT_EQ(replace_all("abc", "", "x"), "abc");
  EXPECT_EQ(replace_all("", "a", "b"), "");
  EXPECT_EQ(replace_all("secret secret", "secret", "[token]"), "[token] [token]");
}

TEST(Text, ErrnoTextNamesTheError) {
  EXPECT_EQ(errno_text(ENOENT), "No such file or directory");
  EXPECT_EQ(errno_text(EACCES), "Permission denied");
  errno = EEXIST;
  EXPECT_EQ(errno_text(), "File exists");
}

TEST(Text, EscapeControlCharactersKeepsPlainTextAndUtf8) {
  EXPECT_EQ(escape_control_characters("wake failed: HTTP 500 (C:\\path) \"quoted\""),
            "wake failed: HTTP 500 (C:\\path) \"quoted\"");
  EXPECT_EQ(escape_control_characters("Grüße, 東京 \xF0\x9F\x98\x80"), "Grüße, 東京 \xF0\x9F\x98\x80");
  EXPECT_EQ(escape_control_characters(""), "");
}

TEST(Text, EscapeControlCharactersLeavesNoLineBreakOrEscapeSequence) {
  // A fault message that would forge a log line and recolour the terminal.
  const std::string forged = "boom\n2026-01-01T00:00:00Z info  [gpu] forged\r\x1b[31mred\x1b[0m\tx\x7f\x01";
  const std::string escaped = escape_control_characters(forged);
  EXPECT_EQ(escaped, "boom\\n2026-01-01T00:00:00Z info  [gpu] forged\\r\\x1b[31mred\\x1b[0m\\tx\\x7f\\x01");
  for (const char c : escaped) {
    const auto byte = static_cast<unsigned char>(c);
    EXPECT_TRUE(byte >= 0x20 && byte != 0x7f) << static_cast<int>(byte);
  }
  EXPECT_EQ(escape_control_characters(std::string("a\0b", 3)), "a\\x00b");
}

TEST(Text, EscapeControlCharactersShowsC1ControlsSeparatorsAndInvalidBytes) {
  EXPECT_EQ(escape_control_characters("\xC2\x9B"
                                      "31m"),
            "\\u009b31m");  // CSI as UTF-8
  EXPECT_EQ(escape_control_characters("a\xC2\x85"
                                      "b"),
            "a\\u0085b");  // NEL
  EXPECT_EQ(escape_control_characters("a\xE2\x80\xA8"
                                      "b\xE2\x80\xA9"),
            "a\\u2028b\\u2029");
  EXPECT_EQ(escape_control_characters("\x9B"
                                      "31m"),
            "\\x9b31m");                                                    // a raw 8-bit CSI
  EXPECT_EQ(escape_control_characters("\xFF\xC3"), "\\xff\\xc3");           // invalid and truncated
  EXPECT_EQ(escape_control_characters("\xC0\xAF"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(escape_control_characters("\xED\xA0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(escape_control_characters("\xC2\xA0"), "\xC2\xA0");             // NBSP is text
}

TEST(Text, HumanDurationShowsTheTwoLargestUnits) {
  using std::chrono::seconds;
  EXPECT_EQ(human_duration(seconds(0)), "0 s");
  EXPECT_EQ(human_duration(seconds(-5)), "0 s");
  EXPECT_EQ(human_duration(seconds(45)), "45 s");
  EXPECT_EQ(human_duration(seconds(200)), "3 min 20 s");
  EXPECT_EQ(human_duration(seconds(7200)), "2 h");  // not "2 h 0 min"
  EXPECT_EQ(human_duration(seconds(7500)), "2 h 5 min");
  EXPECT_EQ(human_duration(seconds(3 * 86400 + 4 * 3600 + 59)), "3 d 4 h");
}

}  // namespace
}  // namespace unshelver::core
