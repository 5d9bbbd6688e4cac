// InflightTracker: from samples of the connections that Caddy holds to a backend, decides how
// many long requests are in flight and when the backend was last busy. Pure, with the monotonic
// clock passed in.
//
// A connection is *busy* while it waits for a response (data was sent more recently than data
// was received) or while response data keeps arriving (received within `recent`). An idle
// keep-alive connection in Caddy's pool is neither. A connection busy without a break for at
// least `min_busy` is a long request in flight: it holds the idle clock, because its access-log
// line will only come when it ends. Short requests are left to the access log, where the ignore
// rules apply (an uptime monitor's quick probe never holds anything here).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace unshelver::core {

struct ConnectionSample {
  std::uint64_t inode = 0;          // identifies the socket across samples
  std::uint32_t since_send_ms = 0;  // tcp_info lastsnd: ms since data was last sent
  std::uint32_t since_recv_ms = 0;  // tcp_info lastrcv: ms since data was last received
};

struct InflightStatus {
  int long_requests = 0;  // connections busy for at least min_busy
  // The latest moment a long request is known to have been busy, for the idle clock: now for one
  // waiting for its response, the last received byte for one receiving it.
  std::optional<std::chrono::steady_clock::time_point> last_busy_at;
};

class InflightTracker {
 public:
  InflightTracker(std::chrono::milliseconds min_busy, std::chrono::milliseconds recent);
  InflightStatus update(const std::vector<ConnectionSample>& sample,
                        std::chrono::steady_clock::time_point now);

 private:
  std::chrono::milliseconds min_busy_;
  std::chrono::milliseconds recent_;
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> busy_since_;
  // Connections that were long requests at their last sample, with the latest moment each was
  // known to be busy: used for last_busy_at when they end.
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> long_last_busy_;
  std::optional<std::chrono::steady_clock::time_point> last_busy_at_;
};

}  // namespace unshelver::core
