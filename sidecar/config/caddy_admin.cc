#include "config/caddy_admin.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "base/text.h"
#include "base/url.h"
#include "config/reader.h"

namespace unshelver::core {
namespace {

constexpr std::string_view kUnixPrefix = "unix/";

// No whitespace, quotes, braces, `#`, backslash or `|` (the mode suffix of later Caddy releases):
// the path goes into the Caddyfile's `admin` option as it is. No `:` either, which Caddy's
// address parser might take for a port separator.
bool is_socket_path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("/._-+@~,=%").find(c) != std::string_view::npos;
}

Result<CaddyAdminEndpoint> parse_unix(std::string_view text) {
  const std::string_view path = text.substr(kUnixPrefix.size());
  if (path.empty() || path.front() != '/') {
    return Error{
        "a Unix socket is written unix/ and an absolute path, e.g. unix//run/caddy/admin.sock, got " +
        config_detail::quote(text)};
  }
  if (const auto bar = path.find('|'); bar != std::string_view::npos) {
    return Error{"the socket's mode suffix (" + std::string(path.substr(bar)) +
                 ") is not understood by Caddy 2.6.2, which makes it part of the file name; give "
                 "the socket its mode through Caddy's umask instead (README \"Caddy's admin API on "
                 "a Unix socket\"), got " +
                 config_detail::quote(text)};
  }
  if (path.size() > kMaxUnixSocketPath) {
    return Error{"a Unix socket path is at most " + std::to_string(kMaxUnixSocketPath) + " bytes long, got " +
                 std::to_string(path.size())};
  }
  if (path.back() == '/' || !std::all_of(path.begin(), path.end(), is_socket_path_char)) {
    return Error{
        "a Unix socket path may hold only letters, digits and / . _ - + @ ~ , = % (and not end with /), "
        "got " +
        config_detail::quote(text)};
  }
  CaddyAdminEndpoint endpoint;
  // The host is a placeholder: the connection goes to the socket, and the Host header sent is
  // empty (see caddy_admin.h).
  endpoint.base_url = "http://localhost";
  endpoint.unix_socket = std::string(path);
  endpoint.listen = std::string(text);
  return endpoint;
}

}  // namespace

Result<CaddyAdminEndpoint> parse_caddy_admin(std::string_view text) {
  if (text.starts_with(kUnixPrefix)) return parse_unix(text);
  const std::optional<Url> url = parse_url(text);
  const bool http = url && to_lower(url->scheme) == "http";
  const Result<Authority> authority = http ? parse_authority(url->authority) : Result<Authority>(Error{""});
  if (!http || !authority.ok() || authority->host.empty()) {
    return Error{
        "expected the admin API's URL such as http://127.0.0.1:2019, or a Unix socket such as "
        "unix//run/caddy/admin.sock, got " +
        config_detail::quote(text)};
  }
  CaddyAdminEndpoint endpoint;
  std::string base(text);
  while (!base.empty() && base.back() == '/') base.pop_back();
  endpoint.base_url = std::move(base);
  endpoint.listen = url->authority;
  return endpoint;
}

std::vector<std::string> caddyfile_admin_addresses(std::string_view caddyfile) {
  std::vector<std::string> addresses;
  std::istringstream lines{std::string(caddyfile)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line.substr(0, line.find('#')));
    std::string first;
    std::string second;
    if (!(words >> first) || first != "admin") continue;
    if (!(words >> second) || second == "{") second.clear();
    if (second.size() >= 2 && second.front() == '"' && second.back() == '"') {
      second = second.substr(1, second.size() - 2);
    }
    addresses.push_back(std::move(second));
  }
  return addresses;
}

}  // namespace unshelver::core
