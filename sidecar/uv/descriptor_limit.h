// The process's descriptor limit (RLIMIT_NOFILE): raised to the hard limit at start, and read to
// size the HTTP server's connection cap so that descriptors stay in reserve for everything else.
#pragma once

#include <cstddef>

namespace unshelver::io {

// Descriptors the HTTP server leaves for the rest of the daemon when its connection cap is derived
// from the limit: the state file and its temporary, the event log, libcurl's connections to the
// cloud and to Caddy's admin API, the loop's own descriptors, the connection monitor's socket.
inline constexpr std::size_t kReservedDescriptors = 128;

// Raises the soft RLIMIT_NOFILE to the hard one (systemd's default soft limit of 1024 is for
// select(); this process uses epoll) and logs the result. Failure only logs: the daemon then runs
// with the limit it has, and the connection cap follows it.
void raise_descriptor_limit();

// The soft RLIMIT_NOFILE now; 1024 when it cannot be read, SIZE_MAX when it is unlimited.
std::size_t descriptor_soft_limit();

// The total connection cap for a configured value: `configured` unless it is 0, else the soft
// limit minus kReservedDescriptors (at least 16, so that a tiny limit still serves the CLI).
std::size_t connection_cap(std::size_t configured);

}  // namespace unshelver::io
