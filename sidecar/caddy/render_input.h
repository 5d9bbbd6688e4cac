// From the configuration and the backends' current states to what the Caddy renderer needs.
// Shared by the daemon (CaddyRouter updates) and `unshelver render-caddy`.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "base/template.h"
#include "caddy/renderer.h"
#include "config/config.h"

namespace unshelver::app {

struct BackendRoute {
  std::string upstream;  // host:port, "" while unknown
  bool ready = false;
};

// `routes` is parallel to config.backends. `unshelver_listen` is where Unshelver really listens
// (after port 0 was resolved).
core::CaddyRenderInput make_caddy_input(const core::Config& config, const std::vector<BackendRoute>& routes,
                                        const std::string& unshelver_listen);

// The Caddyfile template: caddy.template when set, else the built-in one for the integration.
Result<core::Template> load_caddy_template(const core::CaddySettings& settings);

}  // namespace unshelver::app
