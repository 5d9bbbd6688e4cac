#include "base/crypto.h"

#include <bit>
#include <cstddef>

namespace unshelver::core {

namespace {

// SHA-256 processes 512-bit blocks (FIPS 180-4 §5.1.1) and keeps a state of eight 32-bit words.
constexpr std::size_t kBlockBytes = 64;

// The round constants: the first 32 bits of the fractional parts of the cube roots of the first
// 64 primes (FIPS 180-4 §4.2.2).
constexpr std::array<std::uint32_t, 64> kRoundConstants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// The initial hash value: the first 32 bits of the fractional parts of the square roots of the
// first 8 primes (FIPS 180-4 §5.3.3).
constexpr std::array<std::uint32_t, 8> kInitialHash = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

// An incremental SHA-256, so that HMAC can hash "key block || message" without concatenating them.
class Sha256 {
 public:
  void update(std::string_view data) {
    total_bytes_ += data.size();
    for (char c : data) {
      block_[filled_++] = static_cast<std::uint8_t>(c);
      if (filled_ == kBlockBytes) {
        compress();
        filled_ = 0;
      }
    }
  }

  // Padding (FIPS 180-4 §5.1.1): a single 1 bit, zeros up to 448 bits modulo 512, then the
  // message length in bits as a 64-bit big-endian number.
  Sha256Digest finish() {
    const std::uint64_t total_bits = total_bytes_ * 8;
    block_[filled_++] = 0x80;
    if (filled_ > kBlockBytes - 8) {
      while (filled_ < kBlockBytes) block_[filled_++] = 0;
      compress();
      filled_ = 0;
    }
    while (filled_ < kBlockBytes - 8) block_[filled_++] = 0;
    for (int i = 7; i >= 0; --i) block_[filled_++] = static_cast<std::uint8_t>(total_bits >> (8 * i));
    compress();

    Sha256Digest digest{};
    for (std::size_t i = 0; i < state_.size(); ++i) {
      for (std::size_t j = 0; j < 4; ++j) {
        digest[4 * i + j] = static_cast<std::uint8_t>(state_[i] >> (24 - 8 * j));
      }
    }
    return digest;
  }

 private:
  // The hash computation of FIPS 180-4 §6.2.2 for the block in block_, with the functions of
  // §4.1.2 written inline.
  void compress() {
    std::array<std::uint32_t, 64> schedule{};
    for (std::size_t t = 0; t < 16; ++t) {
      schedule[t] = (std::uint32_t{block_[4 * t]} << 24) | (std::uint32_t{block_[4 * t + 1]} << 16) |
                    (std::uint32_t{block_[4 * t + 2]} << 8) | std::uint32_t{block_[4 * t + 3]};
    }
    for (std::size_t t = 16; t < 64; ++t) {
      const std::uint32_t w15 = schedule[t - 15];
      const std::uint32_t w2 = schedule[t - 2];
      const std::uint32_t sigma0 = std::rotr(w15, 7) ^ std::rotr(w15, 18) ^ (w15 >> 3);
      const std::uint32_t sigma1 = std::rotr(w2, 17) ^ std::rotr(w2, 19) ^ (w2 >> 10);
      schedule[t] = sigma1 + schedule[t - 7] + sigma0 + schedule[t - 16];
    }

    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
    std::uint32_t e = state_[4], f = state_[5], g = state_[6], h = state_[7];
    for (std::size_t t = 0; t < 64; ++t) {
      const std::uint32_t big_sigma1 = std::rotr(e, 6) ^ std::rotr(e, 11) ^ std::rotr(e, 25);
      const std::uint32_t choose = (e & f) ^ (~e & g);
      const std::uint32_t t1 = h + big_sigma1 + choose + kRoundConstants[t] + schedule[t];
      const std::uint32_t big_sigma0 = std::rotr(a, 2) ^ std::rotr(a, 13) ^ std::rotr(a, 22);
      const std::uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
      const std::uint32_t t2 = big_sigma0 + majority;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
    state_[4] += e;
    state_[5] += f;
    state_[6] += g;
    state_[7] += h;
  }

  std::array<std::uint32_t, 8> state_ = kInitialHash;
  std::array<std::uint8_t, kBlockBytes> block_{};
  std::size_t filled_ = 0;
  std::uint64_t total_bytes_ = 0;
};

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
  Sha256 hash;
  hash.update(data);
  return hash.finish();
}

Sha256Digest hmac_sha256(std::string_view key, std::string_view message) {
  // RFC 2104 §2: K is hashed when longer than the block, then padded with zeros to the block.
  std::array<std::uint8_t, kBlockBytes> key_block{};
  if (key.size() > kBlockBytes) {
    const Sha256Digest hashed = sha256(key);
    for (std::size_t i = 0; i < hashed.size(); ++i) key_block[i] = hashed[i];
  } else {
    for (std::size_t i = 0; i < key.size(); ++i) key_block[i] = static_cast<std::uint8_t>(key[i]);
  }

  // H(K XOR opad, H(K XOR ipad, text)), with ipad = 0x36 and opad = 0x5c repeated.
  std::string inner_pad(kBlockBytes, '\0');
  std::string outer_pad(kBlockBytes, '\0');
  for (std::size_t i = 0; i < kBlockBytes; ++i) {
    inner_pad[i] = static_cast<char>(key_block[i] ^ 0x36);
    outer_pad[i] = static_cast<char>(key_block[i] ^ 0x5c);
  }
  Sha256 inner;
  inner.update(inner_pad);
  inner.update(message);
  const Sha256Digest inner_digest = inner.finish();

  Sha256 outer;
  outer.update(outer_pad);
  outer.update(as_view(inner_digest));
  return outer.finish();
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

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // Every byte is visited and the differences are only accumulated, never branched on. The
  // accumulator is volatile so that the compiler cannot turn the loop into an early exit.
  volatile std::uint8_t difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = difference | static_cast<std::uint8_t>(a[i] ^ b[i]);
  }
  return difference == 0;
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
