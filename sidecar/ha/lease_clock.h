// LeaseClock: when a controller may act on the strength of its etcd lease.
//
// etcd lets a lease lapse TTL seconds after the last keep-alive it *received*; another controller
// can then take over the backends it led. We only know when we *sent* the keep-alive, which is
// earlier, so counting the TTL from the send is conservative: our deadline always falls before
// etcd's. A safety margin (a fifth of the TTL, at least 2 s) covers the time between deciding to
// act and the cloud receiving the request. Past the deadline the controller stops acting by itself
// (it self-fences), before the lease can pass to another (ha-etcd.md §3.4, "renew deadline").
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>

#include "base/clock.h"

namespace unshelver::core {

class LeaseClock {
 public:
  explicit LeaseClock(std::chrono::seconds ttl) : ttl_(ttl) {}

  // A grant or keep-alive that was sent at `sent_at` came back with `remaining` seconds to live.
  void renewed(MonoTime sent_at, std::chrono::seconds remaining) {
    const MonoTime deadline = sent_at + remaining - safety();
    if (!deadline_ || deadline > *deadline_) deadline_ = deadline;
  }
  // etcd no longer knows the lease (it lapsed, or was revoked): nothing held until a new grant.
  void lost() { deadline_.reset(); }

  bool held(MonoTime now) const { return deadline_ && now < *deadline_; }
  // The moment acting stops unless a renewal arrives first; nullopt while no lease is held.
  std::optional<MonoTime> deadline() const { return deadline_; }
  // Keep-alives go out three times per TTL, so that two can fail before the deadline.
  std::chrono::milliseconds renewal_interval() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(ttl_) / 3;
  }
  std::chrono::milliseconds safety() const {
    return std::max<std::chrono::milliseconds>(
        std::chrono::seconds(2), std::chrono::duration_cast<std::chrono::milliseconds>(ttl_) / 5);
  }

 private:
  std::chrono::seconds ttl_;
  std::optional<MonoTime> deadline_;
};

}  // namespace unshelver::core
