// The files of templates/, compiled into the binary by cmake/embed_templates.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace unshelver::web {

struct EmbeddedTemplate {
  std::string_view name;  // file name, e.g. "launcher.html"
  std::string_view text;
};

const std::vector<EmbeddedTemplate>& embedded_templates();

}  // namespace unshelver::web
