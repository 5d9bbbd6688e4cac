// InflightTracker: turns samples of tcp_info timings into "long requests in flight".
//
// Flow of one update(): every connection in the sample is classified as busy or not from the two
// timings the kernel keeps per socket (linux/tcp.h, struct tcp_info: tcpi_last_data_sent and
// tcpi_last_data_recv, milliseconds since data last left and last arrived). A busy connection
// keeps the moment its busy stretch began; one seen idle, or missing from the sample, loses it.
// A connection busy for at least min_busy is a long request. When the last long request ends,
// last_busy_at keeps the latest moment that request was known to be busy, so that the idle clock
// starts from the end of the stream and not from the moment we happened to notice it.
#include "activity/inflight_tracker.h"

#include <algorithm>
#include <set>

namespace unshelver::core {

namespace {

using TimePoint = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

TimePoint later(std::optional<TimePoint> a, TimePoint b) {
  return a ? std::max(*a, b) : b;
}

}  // namespace

InflightTracker::InflightTracker(std::chrono::milliseconds min_busy, std::chrono::milliseconds recent)
    : min_busy_(min_busy), recent_(recent) {}

InflightStatus InflightTracker::update(const std::vector<ConnectionSample>& sample, TimePoint now) {
  std::map<std::uint64_t, TimePoint> busy_since;
  std::map<std::uint64_t, TimePoint> long_last_busy;
  std::set<std::uint64_t> seen;
  std::optional<TimePoint> ended_at;
  int long_requests = 0;

  for (const ConnectionSample& connection : sample) {
    // A socket appears once per dump; a duplicate would only count the same request twice.
    if (!seen.insert(connection.inode).second) continue;
    const Millis since_send{connection.since_send_ms};
    const Millis since_recv{connection.since_recv_ms};
    // Data left after the last data arrived: a request (or the rest of its body) was sent and its
    // response has not started. Nothing has arrived since the send, so the connection has been
    // waiting at least since then.
    const bool waiting = since_send < since_recv;
    // Response data arrived recently: a response is (or was just) streaming.
    const bool receiving = since_recv <= recent_;

    if (waiting || receiving) {
      TimePoint start;
      if (auto previous = busy_since_.find(connection.inode); previous != busy_since_.end()) {
        start = previous->second;
      } else {
        // First time seen busy. A waiting connection is known to have waited since its last send,
        // which lets a request that was already waiting before we looked (or before a restart of
        // this process) count at once. A receiving one carries no such proof: start now.
        start = waiting ? now - since_send : now;
      }
      busy_since[connection.inode] = start;
      if (now - start >= min_busy_) {
        ++long_requests;
        // A waiting connection is busy at this very moment. A receiving one is known busy only up
        // to its last received byte; the response may have ended just after it.
        long_last_busy[connection.inode] = waiting ? now : now - since_recv;
      }
      continue;
    }

    // Not busy. If it was a long request, it has ended and the connection went back to Caddy's
    // idle pool: the last data it received is the end of the response, which is at least as late
    // as what the previous sample proved.
    if (auto previous = long_last_busy_.find(connection.inode); previous != long_last_busy_.end()) {
      ended_at = later(ended_at, std::max(previous->second, now - since_recv));
    }
  }

  // A long request whose connection is gone was closed at some moment since the last sample; the
  // previous sample is the last proof of it being busy.
  for (const auto& [inode, last_busy] : long_last_busy_) {
    if (!seen.contains(inode)) ended_at = later(ended_at, last_busy);
  }

  busy_since_ = std::move(busy_since);
  long_last_busy_ = std::move(long_last_busy);
  if (long_requests > 0) {
    // The latest moment a long request is known to have been busy: now for one still waiting,
    // its last received byte for one receiving. Reporting `now` for a receiving connection would
    // stretch the idle clock by up to `recent` after a stream has in fact ended.
    std::optional<TimePoint> latest;
    for (const auto& [inode, last_busy] : long_last_busy_) latest = later(latest, last_busy);
    last_busy_at_ = latest;
  } else if (ended_at) {
    last_busy_at_ = *ended_at;
  }
  return InflightStatus{long_requests, last_busy_at_};
}

}  // namespace unshelver::core
