// The one URL and host:port parser of the sidecar (RFC 3986 §3, the generic syntax).
//
// Two steps, because callers need different amounts of checking:
// - parse_url() splits "scheme://[userinfo@]authority[/path][?query][#fragment]" into its parts
//   and checks only the scheme's spelling. It never looks inside the authority, so that code which
//   must find credentials in any URL it is given (the HTTP client's redaction) still can when the
//   port is garbage.
// - parse_authority() reads "host", "host:port", "[v6]" or "[v6]:port" and checks the shape and
//   the port. Whether a host or a port is required, and which hosts are acceptable, is the
//   caller's rule (a listen address may omit the host; a Caddy site may omit the port).
// Nothing is lower-cased: callers that compare schemes or hosts use to_lower (base/text.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace unshelver::core {

struct Url {
  std::string scheme;                   // as written, without "://"; never empty
  std::optional<std::string> userinfo;  // before the last '@' of the authority, without it
  std::string authority;                // host[:port] as written (brackets kept), without userinfo
  std::string path;                     // "" or starting with '/'
  std::optional<std::string> query;     // after '?', without it; present even when empty
  std::optional<std::string> fragment;  // after '#', without it; present even when empty
};

// nullopt unless the text starts with a scheme (a letter, then letters, digits, '+', '-' or '.')
// followed by "://". The authority may be empty.
std::optional<Url> parse_url(std::string_view text);

struct Authority {
  std::string host;         // without brackets; empty when the text starts with ':' or is empty
  bool bracketed = false;   // the host was written as "[...]" (an IPv6 literal)
  std::optional<int> port;  // absent when there is no ':port'; 0 is possible
};

// Fails on an unclosed or empty bracket, text after ']' that is not ":port", a colon in an
// unbracketed host (an IPv6 address needs brackets), or a port that is not 1 to 5 digits with a
// value up to 65535 (so ":" alone, "-1" and "80x" fail). The host's characters are not checked,
// not even inside brackets.
Result<Authority> parse_authority(std::string_view text);

// "host:port" or "[v6]:port" with a non-empty host and a port of at least `min_port` (0 or 1): the
// shape of an address to connect to or to listen on.
bool is_host_port(std::string_view text, int min_port);

}  // namespace unshelver::core
