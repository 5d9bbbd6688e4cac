#include "cli/log_format.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace unshelver::app {
namespace {

TEST(LogFormat, AMessageWithControlCharactersStaysOneEscapedLine) {
  std::ostringstream written;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(written);
  sink->set_formatter(make_log_formatter());
  spdlog::logger logger("gpu", sink);
  // A cloud fault message that would forge a second line and recolour the terminal.
  logger.warn("wake failed: {}", "boom\n2026-01-01T00:00:00.000000Z info  [gpu] forged\x1b[31m");
  const std::string line = written.str();
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;  // only the line's own end
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  EXPECT_NE(line.find("[gpu] wake failed: boom\\n2026-01-01T00:00:00.000000Z info  [gpu] forged\\x1b[31m"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("Z warning [gpu] wake failed: "), std::string::npos) << line;
}

// 2026-12-07T09:28:14.123Z
constexpr std::int64_t kTime = 1'796'635'694'123;

TEST(JsonLogLine, HasTimeLevelBackendEventAndMessage) {
  const auto line =
      nlohmann::json::parse(json_log_line(kTime, "warning", "unshelver", "[gpu] wake: the cloud said no"));
  EXPECT_EQ("2026-12-07T09:28:14.123Z", line["time"]);
  EXPECT_EQ("warning", line["level"]);
  EXPECT_EQ("gpu", line["backend"]);
  EXPECT_EQ("wake", line["event"]);
  EXPECT_EQ("wake: the cloud said no", line["message"]);
  EXPECT_FALSE(line.contains("logger"));
}

TEST(JsonLogLine, TakesTheBackendFromItsLoggerAndNamesCaddys) {
  const auto backend = nlohmann::json::parse(json_log_line(kTime, "info", "gpu", "observed: running"));
  EXPECT_EQ("gpu", backend["backend"]);
  EXPECT_EQ("observed", backend["event"]);
  const auto caddy = nlohmann::json::parse(json_log_line(kTime, "info", "caddy", "loaded the routing"));
  EXPECT_FALSE(caddy.contains("backend"));
  EXPECT_FALSE(caddy.contains("event"));
  EXPECT_EQ("caddy", caddy["logger"]);
  const auto main = nlohmann::json::parse(json_log_line(kTime, "info", "unshelver", "listening on http://x"));
  EXPECT_FALSE(main.contains("backend"));
  EXPECT_FALSE(main.contains("event"));  // "listening on http" is no one-word topic
}

TEST(JsonLogLine, EscapesControlCharactersAndReplacesInvalidUtf8) {
  // A newline, a quote, a backslash, a terminal escape, another control character, two invalid
  // UTF-8 sequences (a lone 0xff; 0xc3 followed by no continuation byte) and a NUL.
  const std::string message =
      std::string("a\nb\"c\\d\x1b[31m\x01") + "e\xff\xc3(" + std::string(1, '\0') + "f";
  const std::string text = json_log_line(kTime, "error", "unshelver", message);
  EXPECT_EQ(std::string::npos, text.find('\n'));
  EXPECT_EQ(std::string::npos, text.find('\x1b'));
  EXPECT_EQ(std::string::npos, text.find('\0'));
  EXPECT_NE(std::string::npos, text.find("\\u001b[31m\\u0001e")) << text;
  const auto line = nlohmann::json::parse(text);
  const std::string replacement = "\xef\xbf\xbd";  // U+FFFD
  EXPECT_EQ(std::string("a\nb\"c\\d\x1b[31m\x01") + "e" + replacement + replacement + "(" +
                std::string(1, '\0') + "f",
            line["message"].get<std::string>());
}

TEST(JsonLogLine, AFormatterWritesOneObjectALine) {
  std::ostringstream written;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(written);
  sink->set_formatter(make_log_formatter(core::LogFormat::kJson));
  spdlog::logger logger("gpu", sink);
  logger.info("first\nline");
  logger.error("second");
  std::istringstream lines(written.str());
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    const auto object = nlohmann::json::parse(line);
    EXPECT_EQ("gpu", object["backend"]);
    ++count;
  }
  EXPECT_EQ(2, count);
}

TEST(JsonLogLine, ParsesTheFormatsName) {
  EXPECT_EQ(core::LogFormat::kText, parse_log_format("text"));
  EXPECT_EQ(core::LogFormat::kJson, parse_log_format("json"));
  EXPECT_EQ(std::nullopt, parse_log_format("JSON"));
}

}  // namespace
}  // namespace unshelver::app
