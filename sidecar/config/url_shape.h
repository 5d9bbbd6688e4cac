// The configuration's own URL and address helpers, kept together so that they can be switched to
// base/url in one place when that exists. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace unshelver::core::config_detail {

// Letters, digits, '-', '_' and '.': a host name or an IPv4 address, nothing more.
bool is_hostname(std::string_view text);

// "host:port" or "[v6]:port". Returns false when the shape or the port is wrong.
bool is_host_port(std::string_view text, bool allow_port_zero);

struct UrlParts {
  std::string scheme;  // lower case
  std::string host;    // lower case, without brackets, port or user info
};

// Splits the scheme and host out of an absolute URL; nullopt when it is not one.
std::optional<UrlParts> split_url(std::string_view url);

}  // namespace unshelver::core::config_detail
