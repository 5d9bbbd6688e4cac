// What the `caddy.admin` key means: where Caddy's admin API is, and how Unshelver reaches it.
//
// Two forms (issue 15 §6):
// - "http://127.0.0.1:2019": TCP on loopback. Caddy's admin API has no authentication, so every
//   local user can load a config of their own there (`POST /load`).
// - "unix//run/caddy/admin.sock": a Unix socket, in Caddy's own spelling of a network address
//   ("unix/" followed by the absolute path). Only users who may write the socket file (and search
//   its directory) can connect: the production setup (README "Caddy's admin API on a Unix socket").
//
// Caddy 2.6.2 (Debian 12) creates the socket with mode 0777 & ~umask; it does not understand the
// `|MODE` suffix of later releases and would make it part of the file name (`admin.sock|0660`),
// so the suffix is refused here. Over a socket, Caddy's admin API allows only an empty Host header
// (RFC 7230 §5.4 for a target without a host name); anything else gets 403 "host not allowed".
// Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace unshelver::core {

struct CaddyAdminEndpoint {
  // The URL prefix that "/load", "/adapt" and "/config/" are appended to. For a socket it only
  // gives the scheme: the connection goes to unix_socket.
  std::string base_url;
  // The socket's absolute path; empty for TCP.
  std::string unix_socket;
  // The value of Caddy's `admin` global option for this endpoint: "127.0.0.1:2019" or
  // "unix//run/caddy/admin.sock". A config loaded through the endpoint must carry it, or Caddy
  // moves its admin API to that config's address (localhost:2019 when it has none).
  std::string listen;

  bool is_unix_socket() const { return !unix_socket.empty(); }
};

// The longest socket path Linux takes (sockaddr_un.sun_path holds 108 bytes with the NUL).
inline constexpr std::size_t kMaxUnixSocketPath = 107;

// The endpoint for a `caddy.admin` value, or a message that says what is wrong with it. A socket
// path is absolute, at most kMaxUnixSocketPath bytes, of letters, digits and / . _ - + @ ~ , = %
// (so it is safe in a Caddyfile as it is).
Result<CaddyAdminEndpoint> parse_caddy_admin(std::string_view text);

// The address of every `admin` global option line in a Caddyfile, in order: "off" for
// `admin off`, "" for an `admin` without one (a bare `admin` or `admin {`, which mean Caddy's
// default localhost:2019). A line counts when its first word is `admin`; comments and surrounding
// double quotes are dropped.
std::vector<std::string> caddyfile_admin_addresses(std::string_view caddyfile);

}  // namespace unshelver::core
