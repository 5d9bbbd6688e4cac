// The command line's documentation as data, rendered twice: `unshelver --help` and the unshelver(8)
// manual page (`unshelver --man`, installed by scripts/package), as nghttpx writes both from one
// table. An option added to one is in the other.
#pragma once

#include <string>
#include <string_view>

namespace unshelver::app {

// The text of `unshelver --help`.
std::string render_usage();

// The roff source of unshelver(8) (man(7) macros), for `version` ("0.4.0") and `date` ("2026-12-07").
std::string render_man_page(std::string_view version, std::string_view date);

}  // namespace unshelver::app
