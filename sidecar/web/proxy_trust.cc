#include "web/proxy_trust.h"

namespace unshelver::core {

ProxyTrust::ProxyTrust(const std::optional<std::vector<std::string>>& trusted_proxies, bool proxy_socket) {
  std::vector<std::string> defaults;
  if (!trusted_proxies && !proxy_socket) defaults = {"127.0.0.0/8", "::1"};
  for (const std::string& text : trusted_proxies ? *trusted_proxies : defaults) {
    // The config refused invalid entries already; one that slipped through trusts nobody.
    if (auto range = parse_address_range(text)) ranges_.push_back(*range);
  }
}

bool ProxyTrust::trusts(std::string_view peer_address) const {
  const std::optional<AddressRange> peer = parse_address(peer_address);
  if (!peer) return false;
  for (const AddressRange& range : ranges_) {
    if (range_contains(range, *peer)) return true;
  }
  return false;
}

}  // namespace unshelver::core
