// IP addresses and ranges ("10.0.0.0/8", "fd00::/8", "127.0.0.1") as bytes, and whether an
// address lies in a range. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace unshelver::core {

struct AddressRange {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4
  int prefix_bits = 0;                   // 0..32 for IPv4, 0..128 for IPv6; a single address has all
};

// One address in the text forms inet_pton(3) accepts (no brackets, no zone), as a range of just
// that address. An IPv4-mapped IPv6 address ("::ffff:127.0.0.1", which a server listening on "::"
// reports for IPv4 peers) is the IPv4 address it carries.
std::optional<AddressRange> parse_address(std::string_view text);

// An address with an optional "/prefix" no longer than the family's size. Host bits below the
// prefix are allowed and ignored ("10.1.2.3/8" is 10.0.0.0/8).
std::optional<AddressRange> parse_address_range(std::string_view text);

// "" when `text` is a valid range, else the message (a config check).
std::string check_address_range(std::string_view text);

// Whether `address` (one address) lies in `range`; never across families.
bool range_contains(const AddressRange& range, const AddressRange& address);

}  // namespace unshelver::core
