// StartedRequests: the requests the gate let through to one backend that have not ended yet.
// Pure, with the (monotonic) clock passed in.
//
// The gate sees each request start (Caddy asks it before proxying); Caddy's access log sees each
// one end (the line is written when the response completes). Only the count matters, so an end
// closes the oldest open start. A start whose end never comes (a line lost with a rotation, a
// request that failed before reaching the backend) would hold the backend awake forever, so a
// start is forgotten after `lifetime` (the backend's idle timeout, and at least 15 minutes: long
// enough for any stream, short enough that a lost end costs little), and at most `capacity` are
// kept.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>

namespace unshelver::core {

class StartedRequests {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  StartedRequests(std::chrono::milliseconds lifetime, std::size_t capacity);
  void started(TimePoint at);
  // One request ended (an access-log line for the backend); nothing when none is open.
  void ended();
  // The requests open at `now`, after forgetting those older than the lifetime.
  int open(TimePoint now);
  // Starts forgotten without an end (lifetime or capacity).
  std::uint64_t forgotten() const { return forgotten_; }

 private:
  std::chrono::milliseconds lifetime_;
  std::size_t capacity_;
  std::deque<TimePoint> open_;  // oldest first
  std::uint64_t forgotten_ = 0;
};

}  // namespace unshelver::core
