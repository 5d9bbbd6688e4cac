// The files of templates/ and caddy/*.template, compiled into the binary by
// cmake/embed_templates.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace unshelver::web {

struct EmbeddedTemplate {
  std::string_view name;  // file name, e.g. "launcher.html"
  std::string_view text;
};

// templates/*: the pages, their script and style.
const std::vector<EmbeddedTemplate>& embedded_templates();
// caddy/*.template: the built-in Caddyfile and snippet templates.
const std::vector<EmbeddedTemplate>& embedded_caddy_templates();

}  // namespace unshelver::web
