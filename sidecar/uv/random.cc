#include "uv/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "base/crypto.h"
#include "base/text.h"

namespace unshelver::io {

// The kernel's CSPRNG through getrandom(2), not OpenSSL's RAND_bytes: getrandom is already the
// OS generator that RAND_bytes seeds itself from, it blocks only until the pool is initialised
// once at boot, and it has no user-space state that a fork could duplicate.
std::string random_bytes(std::size_t count) {
  std::string bytes(count, '\0');
  std::size_t filled = 0;
  while (filled < count) {
    const ssize_t got = getrandom(bytes.data() + filled, count - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      // Without flags, getrandom(2) fails only when it does not exist or is forbidden; there is
      // no safe way to go on without randomness (see the header).
      std::fprintf(stderr, "unshelver: getrandom failed: %s; refusing to continue without randomness\n",
                   core::errno_text().c_str());
      std::abort();
    }
    filled += static_cast<std::size_t>(got);
  }
  return bytes;
}

std::string random_token(std::size_t bytes) {
  return core::base64url_encode(random_bytes(bytes));
}

}  // namespace unshelver::io
