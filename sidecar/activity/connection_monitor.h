// ConnectionMonitor: samples the kernel's TCP socket table for connections to given upstreams.
//
// Caddy writes an access-log line only when a request completes, so a 30-minute LLM stream is
// invisible in the log until it ends. Caddy and Unshelver run on the same host, so the kernel
// knows every connection Caddy holds to a backend's upstream, and for each one how long ago data
// was last sent and received (tcp_info's lastsnd/lastrcv). The monitor asks the kernel through
// NETLINK_SOCK_DIAG (inet_diag, as `ss -ti` does; no privileges needed) every `interval`, and
// reports, per upstream, the established connections with those timings. Connections owned by
// this process (the health prober's) are left out by socket inode. The decision of what counts
// as a request in flight is pure logic in core/inflight_tracker.h.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "activity/inflight_tracker.h"
#include "base/result.h"

namespace unshelver::io {

class ConnectionMonitor {
 public:
  // Called after each sample with the connections to `upstream` ("10.0.0.5:8080").
  using SampleCallback =
      std::function<void(const std::string& upstream, const std::vector<core::ConnectionSample>& sample)>;

  ConnectionMonitor(uv_loop_t* loop, std::chrono::milliseconds interval, SampleCallback on_sample);
  ~ConnectionMonitor();
  ConnectionMonitor(const ConnectionMonitor&) = delete;
  ConnectionMonitor& operator=(const ConnectionMonitor&) = delete;

  // The upstreams to watch (IPv4 or IPv6 literal with port); replaces the previous set. Cheap, and
  // nothing when the set is the same: it is parsed, and the kernel filter built, once before the
  // next sample. The timer runs only while the set is not empty.
  void set_upstreams(const std::vector<std::string>& upstreams);
  Status start();
  void close();
  // Whether the sampling timer is armed (started, not closed, some upstream to watch).
  bool sampling() const;
  // Sockets the kernel's filter let through, over all samples so far (before this process's own
  // are left out and before they are matched to upstreams again in user space).
  std::uint64_t kernel_sockets() const;
  // One synchronous sample, for tests.
  Result<std::vector<core::ConnectionSample>> sample_now(const std::string& upstream);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace unshelver::io
