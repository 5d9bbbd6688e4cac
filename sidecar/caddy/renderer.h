// Renders Caddy's routing for the current state of every backend. Pure: template text and state
// in, Caddyfile text out.
//
// Modes per backend (caddy-facts §3a, §3b, holding-requests §2.3, verified on Debian's Caddy 2.6.2):
// - gate: every request to the backend host passes forward_auth to Unshelver, which answers at
//   once while the backend is ready (with the upstream in X-Unshelver-Upstream, which the proxy
//   dials), holds API requests while it wakes and shows browsers the waiting page. The route never
//   changes with the state, so Caddy reloads only when the configuration changes.
// Switch modes:
// - ready: the backend host proxies to the backend's upstream with `header_down X-Served-By
//   <label>` (the access log's activity signal), falling back to Unshelver for refused dials and
//   dial timeouts (`handle_errors`) and for upstream 502/503/504 (`handle_response`). GET and HEAD
//   fall back to Unshelver's waiting page; other methods get a static 503 with Retry-After,
//   because Caddy cannot replay a request body to the fallback.
// - not ready: the backend host goes to Unshelver (waiting page, 503 for API clients).
// The launcher host always goes to Unshelver. Every site logs JSON to the access log.
//
// The template is a core::Template (Mustache subset) rendered with render_context(); every value
// that goes into the Caddyfile is validated first, so no configuration value can inject Caddyfile
// syntax (braces, quotes, newlines, spaces).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/template.h"

namespace unshelver::core {

struct CaddyBackendView {
  std::string name;
  std::string site;           // site address: "https://chat.example.org" or "http://chat.localhost:8080"
  std::string upstream;       // "10.0.0.5:8080"; empty while unknown (then never ready)
  bool upstream_tls = false;  // proxy with https (url_scheme: https)
  bool upstream_tls_insecure = false;  // verify_tls: false
  std::string label;                   // X-Served-By value
  bool ready = false;
  // routing: gate. Every request asks Unshelver at gate_uri first (forward_auth), which names
  // the upstream per request; Caddy's config does not depend on the state (nor on `ready` and
  // `upstream` above). Caddy retries the gate for gate_try_seconds while Unshelver is away; with
  // gate_down: open it then proxies to open_upstream, the last known address ("" for closed).
  bool gate = false;
  std::string gate_uri;  // "/.unshelver/gate/<name>"
  int gate_try_seconds = 0;
  std::string open_upstream;
};

struct CaddyRenderInput {
  std::string admin_listen;   // the `admin` global option: "127.0.0.1:2019" or "unix//run/caddy/admin.sock"
  std::string launcher_site;  // site address of the launcher host
  std::string unshelver;      // host:port where Unshelver listens, or unix//PATH (its proxy socket)
  std::string access_log;     // absolute path; empty: no `log` directive
  int log_roll_size_mb = 100;
  int log_roll_keep = 10;
  // The largest request body Caddy buffers for a backend (buffer_requests): larger declared
  // bodies are answered 413, and a chunked body that grows past it is cut off.
  std::int64_t max_request_body_bytes = std::int64_t{32} * 1024 * 1024;
  std::string bind;   // empty: no `bind`
  int http_port = 0;  // 0: no `http_port` option
  bool auto_https = true;
  int gate_keepalive_seconds = 30;  // Caddy's idle connections to the gate: below Unshelver's idle timeout
  std::vector<CaddyBackendView> backends;
};

// The site address of a URL: scheme and authority, lowercased, without user info, path, query or
// fragment ("HTTPS://Chat.example.org/app/" -> "https://chat.example.org"). A path in a site
// address would make Caddy match only that path. Text that is not a URL (base/url.h) is returned
// unchanged (and then rejected by validate_render_input).
std::string site_address(std::string_view url);

// Checks every value that ends up in the Caddyfile:
// - site addresses (launcher_site, backends[].site): http:// or https://, a host name, IPv4
//   address or [IPv6] address, an optional port, and nothing else (no path, not even "/");
// - unshelver and upstream: host:port or [v6]:port (unshelver also unix//PATH, PATH of letters,
//   digits and / . _ -); admin_listen the same, a Unix socket (unix//path, config/caddy_admin.h),
//   or empty (no `admin`);
// - bind: empty, a host name, an IPv4 or an IPv6 address;
// - access_log: empty or an absolute path of letters, digits and / . _ - + @ ~ , = % :
// - name: letters, digits, - and _, unique; label: letters, digits and . _ - : + = @ / ~, not one
//   of the labels Caddy itself uses for Unshelver's answers (launcher, launcher-fallback,
//   fallback-static); site: unique, and not the launcher's;
// - ready needs an upstream; numbers within their ranges.
// Whitespace, quotes, braces (Caddy placeholders), `#`, backslashes and control characters are
// therefore rejected everywhere. The message names the field and quotes the value.
Status validate_render_input(const CaddyRenderInput& input);
// The template's data: see caddy/Caddyfile.template for the names.
nlohmann::json render_context(const CaddyRenderInput& input);
// validate + render. For the snippet integration the same function renders the snippet template.
Result<std::string> render_caddy(const Template& caddy_template, const CaddyRenderInput& input);

// One line per backend, for logs and /api/status: "gpu=backend chat=unshelver".
std::string describe_modes(const CaddyRenderInput& input);

}  // namespace unshelver::core
