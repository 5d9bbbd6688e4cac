#include "caddy/render_input.h"

#include <algorithm>

#include "base/embedded_files.h"
#include "config/caddy_admin.h"
#include "uv/files.h"

namespace unshelver::app {

namespace {
// With gate_down: open, how long Caddy keeps asking a silent Unshelver before it goes to the
// backend directly: a restart takes well under a second, and clients with short read timeouts
// (httpx: 5 s by default) must not give up meanwhile.
constexpr int kGateOpenTrySeconds = 2;

// "http://127.0.0.1:2019" -> "127.0.0.1:2019", "unix//run/caddy/admin.sock" as it is: the
// `admin` global option takes an address. A value check-config refuses is passed on as it is, for
// the renderer to refuse.
std::string listen_of(const std::string& admin) {
  const Result<core::CaddyAdminEndpoint> endpoint = core::parse_caddy_admin(admin);
  return endpoint ? endpoint->listen : admin;
}
}  // namespace

core::CaddyRenderInput make_caddy_input(const core::Config& config, const std::vector<BackendRoute>& routes,
                                        const std::string& unshelver_listen) {
  const core::CaddySettings& caddy = config.caddy;
  core::CaddyRenderInput input;
  input.admin_listen = listen_of(caddy.admin);
  input.launcher_site = core::site_address(caddy.launcher_url);
  // Over the proxy socket, Unshelver believes Caddy's X-Forwarded-For (web/proxy_trust.h).
  input.unshelver = config.proxy.socket.empty() ? unshelver_listen : "unix/" + config.proxy.socket;
  input.access_log = config.activity_log_path;
  input.log_roll_size_mb = caddy.log_roll_size_mb;
  input.log_roll_keep = caddy.log_roll_keep;
  input.max_request_body_bytes = static_cast<std::int64_t>(caddy.max_request_body_mb) * 1024 * 1024;
  input.bind = caddy.bind;
  input.http_port = caddy.http_port;
  input.auto_https = caddy.auto_https;
  // Half of Unshelver's idle timeout, so that Caddy never sends on a connection Unshelver is
  // closing (a race that Caddy would have to retry).
  input.gate_keepalive_seconds = static_cast<int>(std::clamp<long long>(
      std::chrono::duration_cast<std::chrono::seconds>(config.http.idle_timeout).count() / 2, 1, 3600));
  for (std::size_t i = 0; i < config.backends.size(); ++i) {
    const core::BackendConfig& backend = config.backends[i];
    const BackendRoute route = i < routes.size() ? routes[i] : BackendRoute{};
    core::CaddyBackendView view;
    view.name = backend.name;
    view.site = core::site_address(backend.public_base_url);
    view.upstream = backend.upstream.empty() ? route.upstream : backend.upstream;
    view.upstream_tls = backend.url_scheme == "https";
    view.upstream_tls_insecure = view.upstream_tls && !backend.verify_tls;
    view.label = backend.upstream_label;
    // Never route to an address we do not know.
    view.ready = route.ready && !view.upstream.empty();
    if (backend.routing == core::RoutingMode::kGate) {
      // The gate names the upstream per request, so nothing here depends on the state: Caddy
      // reloads only when the configuration (or, failing open, the last known address) changes.
      view.gate = true;
      view.gate_uri = "/.unshelver/gate/" + backend.name;
      view.open_upstream = backend.gate_down == core::GateDown::kOpen ? view.upstream : "";
      view.upstream.clear();
      view.ready = false;
      // Failing closed, a request held when Unshelver restarts must still be retried by Caddy
      // after its whole hold (Caddy counts lb_try_duration from the first try); failing open,
      // a short outage is ridden over and then the backend is tried directly.
      view.gate_try_seconds =
          backend.gate_down == core::GateDown::kClosed
              ? static_cast<int>(std::min<long long>(backend.hold.max_duration.count() + 60, 86'400))
              : kGateOpenTrySeconds;
    }
    input.backends.push_back(std::move(view));
  }
  return input;
}

Result<core::Template> load_caddy_template(const core::CaddySettings& settings) {
  if (!settings.template_path.empty()) {
    Result<std::string> text = io::read_file(settings.template_path);
    if (!text.ok()) return Error{"caddy.template: " + text.error().message};
    return core::Template::compile(*text, settings.template_path);
  }
  const std::string_view wanted = settings.integration == core::CaddyIntegration::kFull
                                      ? "Caddyfile.template"
                                      : "unshelver-snippet.caddy.template";
  for (const web::EmbeddedTemplate& file : web::embedded_caddy_templates()) {
    if (file.name == wanted) return core::Template::compile(file.text, std::string(wanted));
  }
  return Error{"the built-in " + std::string(wanted) + " is missing from this build"};
}

}  // namespace unshelver::app
