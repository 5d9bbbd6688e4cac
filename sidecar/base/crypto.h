// The few cryptographic primitives Unshelver needs: SHA-256, HMAC-SHA256 and a constant-time
// comparison from OpenSSL's libcrypto (already loaded by libcurl), base64url without padding
// (RFC 4648 §5, §3.2) written here because its canonical-encoding rule is our own, and
// secret_matches on top. Pure: no I/O, no state.
//
// These functions protect session cookies, anti-forgery tokens and the admin's control token.
// They are not a general-purpose crypto library: there is no streaming API and no other hash.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace unshelver::core {

using Sha256Digest = std::array<std::uint8_t, 32>;

// The SHA-256 digest of `data` (FIPS 180-4). Any length is accepted, including zero.
Sha256Digest sha256(std::string_view data);

// HMAC-SHA256 of `message` under `key` (RFC 2104 with the 64-byte block of SHA-256). A key longer
// than the block is replaced by its digest first, as the RFC requires; a shorter one is padded
// with zeros. Every key is accepted, including the empty one.
Sha256Digest hmac_sha256(std::string_view key, std::string_view message);

// The digest as 32 raw bytes, for handing it to the other functions here.
std::string to_bytes(const Sha256Digest& digest);

// Lower-case hexadecimal, two characters per byte.
std::string hex(std::string_view bytes);

// base64url (RFC 4648 §5: '-' and '_' instead of '+' and '/'), without '=' padding, because the
// result goes into cookies and HTML form fields, where '=' would need escaping (RFC 4648 §3.2
// allows leaving it out when the length is known from the context).
std::string base64url_encode(std::string_view bytes);

// Standard base64 (RFC 4648 §4: '+' and '/', padded with '=' to a multiple of four), as HTTP
// APIs such as Exoscale's request signatures expect it.
std::string base64_encode(std::string_view bytes);

// The inverse of base64url_encode. Returns nullopt for padding ('='), any character outside the
// base64url alphabet (including white space), a length that no encoding produces (length % 4 ==
// 1), and non-canonical text whose unused trailing bits are not zero. The last rule makes the
// encoding of any byte string unique, so that a token cannot be altered into a different text
// that still decodes to the same, valid bytes.
std::optional<std::string> base64url_decode(std::string_view text);

// The inverse of base64_encode (RFC 4648 §4), as strict as base64url_decode: the length must be a
// multiple of four, '=' may only end the text (one or two of them, where the encoder puts them),
// and the unused trailing bits must be zero. Anything else, white space included, is nullopt.
// etcd's JSON gateway sends keys and values this way (proto3 JSON maps bytes to padded base64).
std::optional<std::string> base64_decode(std::string_view text);

// Whether `a` and `b` are equal. For equal lengths, the time taken depends only on the length, not
// on the contents nor on where the first difference is. Different lengths return false at once,
// so the length itself is not secret: compare fixed-length values (digests, MACs) with this.
bool constant_time_equal(std::string_view a, std::string_view b);

// Whether the secret a client sent (`given`) is `expected`. Both are hashed with SHA-256 and the
// digests compared with constant_time_equal, so the time taken reveals neither the contents nor
// the length of `expected`. An empty `expected` never matches: an unset secret must not let an
// empty answer in.
bool secret_matches(std::string_view given, std::string_view expected);

}  // namespace unshelver::core
