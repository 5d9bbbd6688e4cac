// Rendering Caddy's routing: validation of every value, and the template's data.
//
// Validation works by allow-lists (which characters a host, a path or a label may contain), not
// by hunting for dangerous ones, so that anything the Caddyfile lexer treats specially
// (whitespace, quotes, backquotes, braces that open blocks or placeholders, `#` comments,
// backslash escapes) can never reach the output.
#include "caddy/renderer.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "base/text.h"
#include "base/url.h"
#include "config/caddy_admin.h"

namespace unshelver::core {
namespace {

using nlohmann::json;

// X-Served-By values that the templates give Unshelver's own answers. A backend label equal to
// one of them would make fallback answers count as the backend's activity.
constexpr std::string_view kReservedLabels[] = {"launcher", "launcher-fallback", "fallback-static"};

constexpr int kMaxRollSizeMb = 100'000;
constexpr int kMaxRollKeep = 100'000;
constexpr std::int64_t kMaxRequestBodyBytes = std::int64_t{4096} * 1024 * 1024;

bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// The value in double quotes, JSON-escaped, so that control characters are visible in messages.
std::string quote(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

bool all_of(std::string_view text, bool (*allowed)(char)) {
  return std::all_of(text.begin(), text.end(), allowed);
}

// A DNS name or IPv4 address: dot-separated labels of letters, digits, - and _. With
// allow_wildcard the first label may be "*" (Caddy's wildcard site addresses).
bool is_dns_name(std::string_view host, bool allow_wildcard) {
  if (host.empty() || host.size() > 253) return false;
  bool first = true;
  while (true) {
    const std::size_t dot = host.find('.');
    const std::string_view label = host.substr(0, dot);
    const bool wildcard = first && allow_wildcard && label == "*" && dot != std::string_view::npos;
    if (!wildcard) {
      if (label.empty() || label.size() > 63) return false;
      if (!all_of(label, [](char c) { return is_alnum(c) || c == '-' || c == '_'; })) return false;
    }
    if (dot == std::string_view::npos) return true;
    host.remove_prefix(dot + 1);
    first = false;
  }
}

// An IPv6 address without brackets. Only the character set and shape are checked; Caddy reports
// an address that is still wrong.
// At least two colons, and dots only in an IPv4 tail ("::ffff:10.0.0.1"), so that "10.0.0.1:80"
// is not taken for one.
bool is_ipv6(std::string_view text) {
  if (text.size() < 2 || text.size() > 45 || std::count(text.begin(), text.end(), ':') < 2) return false;
  const std::size_t first_dot = text.find('.');
  if (first_dot != std::string_view::npos && first_dot < text.rfind(':')) return false;
  return all_of(
      text, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.'; });
}

bool is_bracketed_ipv6(std::string_view text) {
  return text.size() > 2 && text.front() == '[' && text.back() == ']' &&
         is_ipv6(text.substr(1, text.size() - 2));
}

// "host", "host:port", "[v6]" or "[v6]:port" (base/url.h) with a host Caddy accepts; the port
// must be 1 to 65535 and is required unless port_optional.
bool is_authority(std::string_view text, bool port_optional, bool allow_wildcard) {
  const Result<Authority> authority = parse_authority(text);
  if (!authority.ok()) return false;
  if (authority->bracketed ? !is_ipv6(authority->host) : !is_dns_name(authority->host, allow_wildcard)) {
    return false;
  }
  if (authority->port) return *authority->port >= 1;
  return port_optional;
}

// Stricter than core::is_host_port: the host must be a DNS name, an IPv4 or a bracketed IPv6.
bool is_dialable_host_port(std::string_view text) {
  return is_authority(text, false, false);
}

// "http://" or "https://" (lower case) and an authority; no userinfo, path, query or fragment.
bool is_site_address(std::string_view text) {
  const std::optional<Url> url = parse_url(text);
  if (!url || (url->scheme != "http" && url->scheme != "https")) return false;
  if (url->userinfo || !url->path.empty() || url->query || url->fragment) return false;
  return is_authority(url->authority, true, true);
}

// The `admin` global option: host:port, or a Unix socket whose path parse_caddy_admin accepts
// (only characters that are safe in a Caddyfile).
bool is_admin_listen(std::string_view text) {
  if (text.starts_with("unix/")) return parse_caddy_admin(text).ok();
  return is_dialable_host_port(text);
}

bool is_bind_address(std::string_view text) {
  return is_dns_name(text, false) || is_ipv6(text) || is_bracketed_ipv6(text);
}

bool is_path_char(char c) {
  return is_alnum(c) || std::string_view("/._-+@~,=%:").find(c) != std::string_view::npos;
}

bool is_log_path(std::string_view text) {
  return text.size() > 1 && text.front() == '/' && text.back() != '/' && all_of(text, is_path_char);
}

bool is_name(std::string_view text) {
  return !text.empty() && all_of(text, [](char c) { return is_alnum(c) || c == '-' || c == '_'; });
}

bool is_label_char(char c) {
  return is_alnum(c) || std::string_view("._-:+=@/~").find(c) != std::string_view::npos;
}

bool is_reserved_label(std::string_view label) {
  const std::string lowered = to_lower(label);
  return std::find(std::begin(kReservedLabels), std::end(kReservedLabels), lowered) !=
         std::end(kReservedLabels);
}

bool renders_backend(const CaddyBackendView& backend) {
  return !backend.gate && backend.ready && !backend.upstream.empty();
}

std::string_view mode_of(const CaddyBackendView& backend) {
  if (backend.gate) return "gate";
  return renders_backend(backend) ? "backend" : "unshelver";
}

// The gate's URI is ours ("/.unshelver/gate/" + a validated name): letters, digits, . _ - and /.
bool is_gate_uri(std::string_view uri) {
  return uri.starts_with("/.unshelver/gate/") && uri.size() > 17 && all_of(uri, [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-' ||
                  c == '/';
         });
}

// Caddy's dial address for a Unix socket, "unix//run/unshelver/http.sock" (http.proxy_socket):
// an absolute path of letters, digits and / . _ -, so that nothing in it means more to Caddy.
bool is_unix_dial_address(std::string_view text) {
  constexpr std::string_view kPrefix = "unix//";
  return text.starts_with(kPrefix) && text.size() > kPrefix.size() &&
         all_of(text.substr(kPrefix.size() - 1), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-' ||
                  c == '/';
         });
}

// Collects every problem, so that one message lists them all.
class Problems {
 public:
  void add(const std::string& field, std::string_view value, std::string_view expectation) {
    if (!text_.empty()) text_ += "; ";
    text_ += field + ": " + std::string(expectation) + ", got " + quote(value);
  }
  void add_plain(const std::string& field, std::string_view text) {
    if (!text_.empty()) text_ += "; ";
    text_ += field + ": " + std::string(text);
  }
  Status status() const {
    if (text_.empty()) return ok_status();
    return Error{"invalid Caddy render input: " + text_};
  }

 private:
  std::string text_;
};

constexpr std::string_view kSiteExpectation =
    "expected a site address such as https://chat.example.org or http://chat.localhost:8080 "
    "(scheme and host, optional port, no path)";
constexpr std::string_view kHostPortExpectation = "expected host:port or [IPv6]:port";

}  // namespace

std::string site_address(std::string_view url) {
  const std::optional<Url> parts = parse_url(url);
  if (!parts) return std::string(url);
  return to_lower(parts->scheme) + "://" + to_lower(parts->authority);
}

Status validate_render_input(const CaddyRenderInput& input) {
  Problems problems;
  if (!input.admin_listen.empty() && !is_admin_listen(input.admin_listen)) {
    problems.add("admin_listen", input.admin_listen,
                 "expected host:port, [IPv6]:port or a Unix socket such as unix//run/caddy/admin.sock");
  }
  if (!is_site_address(input.launcher_site))
    problems.add("launcher_site", input.launcher_site, kSiteExpectation);
  if (!is_dialable_host_port(input.unshelver) && !is_unix_dial_address(input.unshelver))
    problems.add("unshelver", input.unshelver, "expected host:port, [IPv6]:port or unix//PATH");
  if (!input.access_log.empty() && !is_log_path(input.access_log)) {
    problems.add("access_log", input.access_log,
                 "expected an absolute file path of letters, digits and / . _ - + @ ~ , = % :");
  }
  if (input.log_roll_size_mb < 1 || input.log_roll_size_mb > kMaxRollSizeMb) {
    problems.add_plain("log_roll_size_mb", "must be 1 to " + std::to_string(kMaxRollSizeMb) + ", got " +
                                               std::to_string(input.log_roll_size_mb));
  }
  if (input.log_roll_keep < 0 || input.log_roll_keep > kMaxRollKeep) {
    problems.add_plain("log_roll_keep", "must be 0 to " + std::to_string(kMaxRollKeep) + ", got " +
                                            std::to_string(input.log_roll_keep));
  }
  if (input.max_request_body_bytes < 1 || input.max_request_body_bytes > kMaxRequestBodyBytes) {
    problems.add_plain("max_request_body_bytes", "must be 1 to " + std::to_string(kMaxRequestBodyBytes) +
                                                     ", got " + std::to_string(input.max_request_body_bytes));
  }
  if (!input.bind.empty() && !is_bind_address(input.bind)) {
    problems.add("bind", input.bind, "expected a host name, IPv4 or IPv6 address");
  }
  if (input.http_port < 0 || input.http_port > 65535) {
    problems.add_plain("http_port", "must be 0 (not set) to 65535, got " + std::to_string(input.http_port));
  }
  if (input.gate_keepalive_seconds < 1 || input.gate_keepalive_seconds > 3600) {
    problems.add_plain("gate_keepalive_seconds",
                       "must be 1 to 3600, got " + std::to_string(input.gate_keepalive_seconds));
  }

  std::set<std::string> names;
  std::set<std::string> sites{to_lower(input.launcher_site)};
  for (std::size_t i = 0; i < input.backends.size(); ++i) {
    const CaddyBackendView& backend = input.backends[i];
    const std::string field = "backends[" + std::to_string(i) + "]" +
                              (is_name(backend.name) ? " (" + backend.name + ")" : std::string());
    if (!is_name(backend.name)) {
      problems.add(field + ".name", backend.name, "expected a name of letters, digits, - and _");
    } else if (!names.insert(backend.name).second) {
      problems.add_plain(field + ".name", "is used by another backend");
    }
    if (!is_site_address(backend.site)) {
      problems.add(field + ".site", backend.site, kSiteExpectation);
    } else if (!sites.insert(to_lower(backend.site)).second) {
      problems.add(field + ".site", backend.site,
                   "must differ from the launcher's and every other backend's site");
    }
    if (!backend.upstream.empty() && !is_dialable_host_port(backend.upstream)) {
      problems.add(field + ".upstream", backend.upstream, kHostPortExpectation);
    }
    if (backend.label.empty() || !all_of(backend.label, is_label_char)) {
      problems.add(field + ".label", backend.label,
                   "expected a non-empty label of letters, digits and . _ - : + = @ / ~ "
                   "(no spaces, quotes, braces or #)");
    } else if (is_reserved_label(backend.label)) {
      problems.add(field + ".label", backend.label,
                   "must not be launcher, launcher-fallback or fallback-static (Unshelver's own answers "
                   "carry those)");
    }
    if (!backend.gate && backend.ready && backend.upstream.empty()) {
      problems.add_plain(field + ".upstream", "is required while the backend is ready");
    }
    if (backend.gate) {
      if (!is_gate_uri(backend.gate_uri))
        problems.add(field + ".gate_uri", backend.gate_uri, "expected /.unshelver/gate/NAME");
      if (backend.gate_try_seconds < 1 || backend.gate_try_seconds > 86'400)
        problems.add(field + ".gate_try_seconds", std::to_string(backend.gate_try_seconds),
                     "expected 1 to 86400");
      if (!backend.open_upstream.empty() && !is_dialable_host_port(backend.open_upstream))
        problems.add(field + ".open_upstream", backend.open_upstream, kHostPortExpectation);
    }
  }
  return problems.status();
}

nlohmann::json render_context(const CaddyRenderInput& input) {
  json backends = json::array();
  for (const CaddyBackendView& backend : input.backends) {
    backends.push_back({
        {"name", backend.name},
        {"site", backend.site},
        {"upstream", backend.upstream},
        {"upstream_tls", backend.upstream_tls},
        {"upstream_tls_insecure", backend.upstream_tls && backend.upstream_tls_insecure},
        {"label", backend.label},
        {"ready", renders_backend(backend)},
        {"gate", backend.gate},
        {"gate_uri", backend.gate_uri},
        {"gate_try_seconds", backend.gate_try_seconds},
        {"open_upstream", backend.open_upstream},
    });
  }
  const bool auto_https_off = !input.auto_https;
  return {
      {"admin_listen", input.admin_listen},
      {"launcher_site", input.launcher_site},
      {"unshelver", input.unshelver},
      {"access_log", input.access_log},
      {"log_roll_size_mb", input.log_roll_size_mb},
      {"log_roll_keep", input.log_roll_keep},
      {"max_request_body_bytes", input.max_request_body_bytes},
      {"bind", input.bind},
      {"http_port", input.http_port},
      {"auto_https_off", auto_https_off},
      {"gate_keepalive_seconds", input.gate_keepalive_seconds},
      {"has_global_options", !input.admin_listen.empty() || auto_https_off || input.http_port != 0},
      {"modes", describe_modes(input)},
      {"backends", std::move(backends)},
  };
}

Result<std::string> render_caddy(const Template& caddy_template, const CaddyRenderInput& input) {
  if (Status valid = validate_render_input(input); !valid) return valid.error();
  return caddy_template.render(render_context(input));
}

std::string describe_modes(const CaddyRenderInput& input) {
  std::string out;
  for (const CaddyBackendView& backend : input.backends) {
    if (!out.empty()) out += ' ';
    out += backend.name + "=" + std::string(mode_of(backend));
  }
  return out;
}

}  // namespace unshelver::core
