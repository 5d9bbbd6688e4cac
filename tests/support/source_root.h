// Where the repository is, for tests that read checked-in files (examples, templates, scripts).
// The build passes the path (tests/CMakeLists.txt), so tests need neither __FILE__, whose spelling
// depends on the compiler and on ccache, nor their own depth in the tree.
#pragma once

#include <filesystem>

namespace unshelver::test {

inline std::filesystem::path source_root() {
  return std::filesystem::path(UNSHELVER_SOURCE_DIR);
}

}  // namespace unshelver::test
