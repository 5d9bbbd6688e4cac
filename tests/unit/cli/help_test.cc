// The help text and the manual page come from one table (cli/help.h): every option and command
// that --help names is in the page, and the page is roff that needs no escaping it lacks.
#include "cli/help.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace unshelver::app {
namespace {

std::set<std::string> options_in(const std::string& text) {
  std::set<std::string> options;
  const std::regex option("--[a-z][a-z-]*");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), option); it != std::sregex_iterator(); ++it) {
    options.insert(it->str());
  }
  return options;
}

// The page's text as man shows it, for the escapes the renderer writes ("\-" and "\e").
std::string unescaped(std::string roff) {
  for (std::size_t at = 0; (at = roff.find("\\-", at)) != std::string::npos;) roff.replace(at, 2, "-");
  for (std::size_t at = 0; (at = roff.find("\\e", at)) != std::string::npos; ++at) roff.replace(at, 2, "\\");
  return roff;
}

TEST(Help, EveryOptionOfTheHelpIsInTheManualPage) {
  const std::string usage = render_usage();
  const std::string page = unescaped(render_man_page("0.1.0", "2026-12-07"));
  const std::set<std::string> options = options_in(usage);
  for (const char* expected :
       {"--config", "--log-level", "--log-format", "--listen", "--man", "--token-file"}) {
    EXPECT_TRUE(options.count(expected)) << expected << " is missing from --help";
  }
  for (const std::string& option : options) EXPECT_NE(std::string::npos, page.find(option)) << option;
  EXPECT_EQ(options, options_in(page));  // and the page names none that --help does not
}

TEST(Help, TheManualPageIsRoffWithoutBareHyphensOrBackslashes) {
  const std::string page = render_man_page("0.1.0", "2026-12-07");
  EXPECT_EQ(0U, page.rfind(".TH UNSHELVER 8 \"2026-12-07\" \"unshelver 0.1.0\"", 0)) << page.substr(0, 80);
  std::size_t line_start = 0;
  while (line_start < page.size()) {
    const std::size_t end = page.find('\n', line_start);
    const std::string line = page.substr(line_start, end - line_start);
    line_start = end == std::string::npos ? page.size() : end + 1;
    // A request line is a macro; in text, only the renderer's escapes may follow a backslash.
    if (!line.empty() && line[0] == '.') continue;
    for (std::size_t at = 0; at < line.size(); ++at) {
      if (line[at] == '-') ADD_FAILURE() << "bare hyphen in: " << line;
      if (line[at] == '\\') {
        ASSERT_LT(at + 1, line.size()) << line;
        EXPECT_NE(std::string::npos, std::string("-e&").find(line[at + 1])) << line;
        ++at;
      }
    }
  }
}

TEST(Help, TheUsageKeepsItsShape) {
  const std::string usage = render_usage();
  EXPECT_EQ(0U, usage.rfind("unshelver: keeps an expensive cloud VM asleep", 0));
  for (const char* command : {"unshelver status", "unshelver wake NAME", "unshelver shelve NAME",
                              "unshelver events", "unshelver report", "unshelver dns ensure FQDN IP"}) {
    EXPECT_NE(std::string::npos, usage.find(command)) << command;
  }
  std::size_t line_start = 0;
  while (line_start < usage.size()) {
    const std::size_t end = usage.find('\n', line_start);
    const std::string line = usage.substr(line_start, end - line_start);
    line_start = end + 1;
    // Only a synopsis longer than the page may pass 100 columns.
    if (line.find("  unshelver ") != 0) {
      EXPECT_LE(line.size(), 100U) << line;
    }
  }
}

}  // namespace
}  // namespace unshelver::app
