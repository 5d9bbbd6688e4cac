// Which peers may tell us who the client is. Pure.
//
// Behind Caddy, every request arrives from Caddy, and the visitor's address is the last
// X-Forwarded-For entry (the one Caddy appended); X-Forwarded-Proto says whether the visitor used
// https. Those headers are believed only from a peer that is the proxy: a connection on
// Unshelver's proxy socket (http.proxy_socket, which only Caddy's group can open), or a TCP peer
// whose address is in http.trusted_proxies. From anybody else they are ignored, so that a local
// process cannot pick a fresh rate-limit bucket per forged address or write a forged address
// into the audit trail.
//
// When http.trusted_proxies is not configured, loopback (127.0.0.0/8, ::1) is trusted as before,
// unless a proxy socket is configured: then only the socket is trusted, because Caddy talks to
// Unshelver over it and a TCP connection from this machine is just a local process.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/address_range.h"

namespace unshelver::core {

class ProxyTrust {
 public:
  // `trusted_proxies`: the configured list (already checked), or nullopt when the key is absent.
  // `proxy_socket`: whether Unshelver also listens on a proxy socket.
  ProxyTrust(const std::optional<std::vector<std::string>>& trusted_proxies, bool proxy_socket);

  // Whether a TCP peer at `peer_address` (as the server reports it: "127.0.0.1", "::1",
  // "::ffff:127.0.0.1") is a trusted proxy.
  bool trusts(std::string_view peer_address) const;

 private:
  std::vector<AddressRange> ranges_;
};

}  // namespace unshelver::core
