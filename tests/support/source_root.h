// Where the repository is, for tests that read checked-in files (examples, templates, scripts).
// The build passes the path (tests/CMakeLists.txt), so tests need neither __FILE__, whose spelling
// depends on the compiler and on ccache, nor their own depth in the tree.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace unshelver::test {

inline std::filesystem::path source_root() {
  return std::filesystem::path(UNSHELVER_SOURCE_DIR);
}

// A checked-in file's whole text (empty when it cannot be read: the test's comparison then fails).
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace unshelver::test
