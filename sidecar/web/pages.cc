#include "web/pages.h"

#include <filesystem>

#include "base/embedded_files.h"
#include "uv/files.h"

namespace unshelver::web {

namespace {

std::string content_type_of(const std::string& name) {
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  return "";
}
}  // namespace

Result<Pages> Pages::load(const std::string& templates_dir) {
  std::map<std::string, std::string> sources;
  for (const EmbeddedTemplate& file : embedded_templates())
    sources[std::string(file.name)] = std::string(file.text);
  if (!templates_dir.empty()) {
    std::error_code error;
    std::filesystem::directory_iterator entries(templates_dir, error);
    if (error) return Error{"templates_dir " + templates_dir + ": " + error.message()};
    for (const auto& entry : entries) {
      if (!entry.is_regular_file()) continue;
      Result<std::string> text = io::read_file(entry.path().string());
      if (!text.ok()) return text.error();
      sources[entry.path().filename().string()] = std::move(*text);
    }
  }

  Pages pages;
  for (auto& [name, text] : sources) {
    if (name.ends_with(".html")) {
      auto compiled = core::Template::compile(text, name);
      if (!compiled) return compiled.error();
      pages.pages_.emplace(name, std::move(compiled.value()));
    } else if (std::string type = content_type_of(name); !type.empty()) {
      pages.assets_[name] = Asset{type, std::move(text)};
    }
  }
  return pages;
}

const core::Template* Pages::page(const std::string& name) const {
  auto found = pages_.find(name);
  return found == pages_.end() ? nullptr : &found->second;
}

const Asset* Pages::asset(const std::string& name) const {
  auto found = assets_.find(name);
  return found == assets_.end() ? nullptr : &found->second;
}

}  // namespace unshelver::web
