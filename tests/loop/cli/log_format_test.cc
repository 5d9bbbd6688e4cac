#include "cli/log_format.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

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

}  // namespace
}  // namespace unshelver::app
