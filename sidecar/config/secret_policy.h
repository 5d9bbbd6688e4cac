// Production hardening of secrets (app.secret_key, the control token): a cheap check that a value
// is long and random enough, so that a copied example or a short password is refused at start-up
// rather than discovered by an attacker. Pure.
//
// The rules, in the order they are checked (the first that applies is reported):
//   1. empty                                   "is not set"
//   2. an example or placeholder value         "is the example value"
//   3. shorter than `min_length` bytes         "is N characters long; at least M are required"
//   4. fewer than 8 distinct characters        "is not random (too few distinct characters)"
//   5. one unit repeated at least twice        "is not random (a repeated pattern)"
//   6. length x log2(alphabet) < 128 bits      "is too weak (about N bits; 128 are required)"
// where the alphabet is the sum of the character classes present: lower-case letters 26,
// upper-case letters 26, digits 10, anything else 33 (the printable ASCII punctuation and space).
// Rule 6 is an upper bound on the strength of a value drawn at random from that alphabet; it
// cannot see that a value is a dictionary phrase, which the other rules catch only in part. A
// 32-character hex string (`openssl rand -hex 16`) and a 43-character base64url string (32 random
// bytes) pass.
//
// Lengths count bytes, which are characters for the ASCII that secrets are made of.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace unshelver::core {

// The minimum strength required by rule 6, in bits.
inline constexpr double kMinSecretBits = 128;

// Why `value` is not acceptable as a production secret, or "" when it is. The reason is meant to
// follow the setting's name ("app.secret_key is not set") and never includes the value itself,
// so that it can be logged.
std::string secret_weakness(std::string_view value, std::size_t min_length);

// Rule 2 alone: whether `value` is an example or placeholder value. For secrets whose strength is
// not ours to judge (the OpenStack password), but which must not be copied from the examples.
bool is_placeholder_secret(std::string_view value);

// Why a secrets file whose permission bits are `mode` (st_mode & 07777) is too open, or "" when
// neither its group nor others may read or write it: "is readable by its group and others (mode
// 0644)". With app.env production such a file is refused, otherwise it is warned about (the
// owner alone, mode 0600, as config/unshelver.service says).
std::string secrets_file_exposure(unsigned mode);

}  // namespace unshelver::core
