#include "base/url.h"

#include <algorithm>
#include <cctype>

namespace unshelver::core {
namespace {

bool is_scheme(std::string_view text) {
  if (text.empty() || std::isalpha(static_cast<unsigned char>(text.front())) == 0) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
  });
}

std::optional<int> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  int value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > 65535) return std::nullopt;
  return value;
}

}  // namespace

std::optional<Url> parse_url(std::string_view text) {
  const std::size_t separator = text.find("://");
  if (separator == std::string_view::npos || !is_scheme(text.substr(0, separator))) return std::nullopt;
  Url url;
  url.scheme = std::string(text.substr(0, separator));
  std::string_view rest = text.substr(separator + 3);

  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
    url.fragment = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
  }
  if (const std::size_t question = rest.find('?'); question != std::string_view::npos) {
    url.query = std::string(rest.substr(question + 1));
    rest = rest.substr(0, question);
  }
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) url.path = std::string(rest.substr(slash));
  // The last '@': a password may contain an unescaped '@', a host never does.
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    url.userinfo = std::string(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  url.authority = std::string(authority);
  return url;
}

Result<Authority> parse_authority(std::string_view text) {
  Authority out;
  std::string_view port;
  bool has_port = false;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return Error{"missing ']'"};
    if (close == 1) return Error{"empty IPv6 address"};
    out.host = std::string(text.substr(1, close - 1));
    out.bracketed = true;
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return Error{"unexpected text after ']'"};
      port = text.substr(close + 2);
      has_port = true;
    }
  } else {
    const std::size_t colon = text.find(':');
    out.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      has_port = true;
      if (port.find(':') != std::string_view::npos) {
        return Error{"IPv6 addresses need brackets, as in [::1]:5001"};
      }
    }
  }
  if (has_port) {
    out.port = parse_port(port);
    if (!out.port) return Error{"invalid port"};
  }
  return out;
}

bool is_host_port(std::string_view text, int min_port) {
  const Result<Authority> authority = parse_authority(text);
  return authority.ok() && !authority->host.empty() && authority->port && *authority->port >= min_port;
}

}  // namespace unshelver::core
