// Pages: the page templates and static assets, compiled once at start-up.
//
// They come from the binary (templates/ is embedded at build time) unless `templates_dir` names a
// directory, whose files then replace the embedded ones of the same name. A template that does
// not compile stops the start with its name and line.
#pragma once

#include <map>
#include <string>

#include "base/result.h"
#include "base/template.h"

namespace unshelver::web {

struct Asset {
  std::string content_type;
  std::string body;
};

class Pages {
 public:
  static Result<Pages> load(const std::string& templates_dir);

  const core::Template* page(const std::string& name) const;
  const Asset* asset(const std::string& name) const;

 private:
  std::map<std::string, core::Template> pages_;  // *.html
  std::map<std::string, Asset> assets_;          // *.js, *.css, *.svg
};

}  // namespace unshelver::web
