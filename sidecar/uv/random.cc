#include "uv/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/crypto.h"

namespace unshelver::io {

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
                   std::strerror(errno));
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
