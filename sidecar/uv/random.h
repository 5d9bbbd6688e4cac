// Random bytes from the kernel, for session nonces, visitor cookies and generated secrets.
//
// getrandom(2) draws from the same pool as /dev/urandom without needing a file descriptor, and
// blocks only until that pool has been seeded once after boot. It can return fewer bytes than
// asked for (for requests above 256 bytes, or when interrupted by a signal), so random_bytes()
// loops until it has them all. It never returns fewer: if the kernel refuses (a kernel older
// than 3.17, or a seccomp filter), it writes a message to stderr and aborts, because a
// predictable token is worse than a crash.
#pragma once

#include <cstddef>
#include <string>

namespace unshelver::io {

// `count` bytes from getrandom(2).
std::string random_bytes(std::size_t count);

// base64url (without padding) of `bytes` random bytes: 43 characters for the default 32, enough
// for a secret of 256 bits that fits into cookies, URLs and YAML without quoting.
std::string random_token(std::size_t bytes = 32);

}  // namespace unshelver::io
