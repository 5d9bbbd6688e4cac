#include "base/address_range.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace unshelver::core {

namespace {
// The prefix of IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2).
constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}  // namespace

std::optional<AddressRange> parse_address(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would end the address early.
  if (text.empty() || text.find('\0') != std::string_view::npos) return std::nullopt;
  const std::string terminated(text);
  AddressRange range;
  range.v6 = text.find(':') != std::string_view::npos;
  if (inet_pton(range.v6 ? AF_INET6 : AF_INET, terminated.c_str(), range.bytes.data()) != 1)
    return std::nullopt;
  range.prefix_bits = range.v6 ? 128 : 32;
  if (range.v6 && std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), range.bytes.begin())) {
    std::array<std::uint8_t, 16> v4{};
    std::copy(range.bytes.begin() + 12, range.bytes.end(), v4.begin());
    range = AddressRange{false, v4, 32};
  }
  return range;
}

std::optional<AddressRange> parse_address_range(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  std::optional<AddressRange> range = parse_address(address);
  if (!range || slash == std::string_view::npos) return range;
  // A prefix after a mapped address would count bits of the IPv6 form: refuse the ambiguity.
  if ((address.find(':') != std::string_view::npos) != range->v6) return std::nullopt;
  const std::string_view digits = text.substr(slash + 1);
  if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  int bits = -1;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (bits < 0 || bits > range->prefix_bits) return std::nullopt;
  range->prefix_bits = bits;
  return range;
}

std::string check_address_range(std::string_view text) {
  if (parse_address_range(text)) return "";
  return "expected an IP address or a range such as 10.0.0.0/8 or fd00::/8, got \"" + std::string(text) +
         "\"";
}

bool range_contains(const AddressRange& range, const AddressRange& address) {
  if (range.v6 != address.v6) return false;
  const int full_bytes = range.prefix_bits / 8;
  if (!std::equal(range.bytes.begin(), range.bytes.begin() + full_bytes, address.bytes.begin())) return false;
  const int rest = range.prefix_bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (range.bytes[full_bytes] & mask) == (address.bytes[full_bytes] & mask);
}

}  // namespace unshelver::core
