// The descriptor limit: the implementation of descriptor_limit.h.
#include "uv/descriptor_limit.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace unshelver::io {

namespace {

constexpr std::size_t kMinimumConnectionCap = 16;
constexpr std::size_t kFallbackLimit = 1024;

}  // namespace

void raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    spdlog::warn("cannot read the descriptor limit: {}",
                 std::strerror(errno));  // NOLINT(concurrency-mt-unsafe)
    return;
  }
  if (limit.rlim_cur >= limit.rlim_max) {
    spdlog::info("descriptor limit: {}", static_cast<std::uint64_t>(limit.rlim_cur));
    return;
  }
  const rlim_t before = limit.rlim_cur;
  // Linux refuses RLIM_INFINITY for RLIMIT_NOFILE (the cap is fs.nr_open); the soft limit then
  // stays where it is, which is still a working limit.
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    spdlog::warn("cannot raise the descriptor limit from {} to {}: {}", static_cast<std::uint64_t>(before),
                 static_cast<std::uint64_t>(limit.rlim_max),
                 std::strerror(errno));  // NOLINT(concurrency-mt-unsafe)
    return;
  }
  spdlog::info("descriptor limit raised from {} to {}", static_cast<std::uint64_t>(before),
               static_cast<std::uint64_t>(limit.rlim_cur));
}

std::size_t descriptor_soft_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return kFallbackLimit;
  if (limit.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  return static_cast<std::size_t>(limit.rlim_cur);
}

std::size_t connection_cap(std::size_t configured) {
  if (configured != 0) return configured;
  const std::size_t limit = descriptor_soft_limit();
  if (limit <= kReservedDescriptors + kMinimumConnectionCap) return kMinimumConnectionCap;
  return limit - kReservedDescriptors;
}

}  // namespace unshelver::io
