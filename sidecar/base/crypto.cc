#include "base/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstddef>
#include <cstdlib>
#include <limits>

namespace unshelver::core {

namespace {

// OpenSSL is handed a valid pointer even for zero bytes, rather than relying on how each of its
// functions treats NULL.
const unsigned char* bytes_of(std::string_view text) {
  static const unsigned char kNothing = 0;
  return text.empty() ? &kNothing : reinterpret_cast<const unsigned char*>(text.data());
}

std::string_view as_view(const Sha256Digest& digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

constexpr std::string_view kBase64UrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The 6-bit value of a base64url character, or -1 for anything else.
int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

Sha256Digest sha256(std::string_view data) {
  Sha256Digest digest{};
  SHA256(bytes_of(data), data.size(), digest.data());
  return digest;
}

Sha256Digest hmac_sha256(std::string_view key, std::string_view message) {
  // HMAC() takes the key length as an int; a longer key is replaced by its digest first, which is
  // what RFC 2104 §2 does with any key longer than the block anyway.
  if (key.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    const Sha256Digest hashed = sha256(key);
    return hmac_sha256(as_view(hashed), message);
  }
  Sha256Digest digest{};
  unsigned int length = 0;
  // HMAC() fails only when the digest cannot be fetched or memory runs out; a MAC that silently
  // came out as zeros would let forged tokens through, so there is no way to go on.
  if (HMAC(EVP_sha256(), bytes_of(key), static_cast<int>(key.size()), bytes_of(message), message.size(),
           digest.data(), &length) == nullptr ||
      length != digest.size()) {
    std::abort();
  }
  return digest;
}

std::string to_bytes(const Sha256Digest& digest) {
  return std::string(as_view(digest));
}

std::string hex(std::string_view bytes) {
  static constexpr std::string_view kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto byte = static_cast<std::uint8_t>(c);
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0x0f]);
  }
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  // Whole groups: three bytes become four characters (RFC 4648 §4).
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = (std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16) |
                                (std::uint32_t{static_cast<std::uint8_t>(bytes[i + 1])} << 8) |
                                std::uint32_t{static_cast<std::uint8_t>(bytes[i + 2])};
    out.push_back(kBase64UrlAlphabet[(group >> 18) & 0x3f]);
    out.push_back(kBase64UrlAlphabet[(group >> 12) & 0x3f]);
    out.push_back(kBase64UrlAlphabet[(group >> 6) & 0x3f]);
    out.push_back(kBase64UrlAlphabet[group & 0x3f]);
  }
  // A final one or two bytes become two or three characters; the padding is left out.
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t group = std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16;
    out.push_back(kBase64UrlAlphabet[(group >> 18) & 0x3f]);
    out.push_back(kBase64UrlAlphabet[(group >> 12) & 0x3f]);
  } else if (rest == 2) {
    const std::uint32_t group = (std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16) |
                                (std::uint32_t{static_cast<std::uint8_t>(bytes[i + 1])} << 8);
    out.push_back(kBase64UrlAlphabet[(group >> 18) & 0x3f]);
    out.push_back(kBase64UrlAlphabet[(group >> 12) & 0x3f]);
    out.push_back(kBase64UrlAlphabet[(group >> 6) & 0x3f]);
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  // The same groups as base64url, with the two characters of the standard alphabet and padding.
  std::string out = base64url_encode(bytes);
  for (char& c : out) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // One leftover character carries only 6 bits, less than a byte: no encoding ends like that.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (char c : text) {
    const int value = base64url_value(c);
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out.push_back(static_cast<char>((bits >> bit_count) & 0xff));
    }
  }
  // The 2 or 4 bits left over after the last byte are padding bits, which the encoder sets to
  // zero (RFC 4648 §3.5); anything else is a second spelling of the same bytes.
  if ((bits & ((1u << bit_count) - 1)) != 0) return std::nullopt;
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  // The padding says how many characters the last group really has; without it, the text is
  // base64url's unpadded form, so the alphabet is swapped and base64url_decode keeps its rules.
  std::size_t padding = 0;
  while (padding < 2 && text.size() > padding && text[text.size() - 1 - padding] == '=') ++padding;
  std::string unpadded(text.substr(0, text.size() - padding));
  for (char& c : unpadded) {
    if (c == '+') {
      c = '-';
    } else if (c == '/') {
      c = '_';
    } else if (c == '-' || c == '_') {
      return std::nullopt;  // base64url's characters are not standard base64
    }
  }
  // A third '=' (or one anywhere else) reaches base64url_decode, which refuses it.
  return base64url_decode(unpadded);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(bytes_of(a), bytes_of(b), a.size()) == 0;
}

bool secret_matches(std::string_view given, std::string_view expected) {
  // Both digests are computed before anything is decided, so an empty `expected` costs the same
  // time as any other.
  const Sha256Digest given_digest = sha256(given);
  const Sha256Digest expected_digest = sha256(expected);
  const bool equal = constant_time_equal(as_view(given_digest), as_view(expected_digest));
  return equal && !expected.empty();
}

}  // namespace unshelver::core
