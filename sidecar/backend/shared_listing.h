// SharedListing: one listing of a cloud's VMs serves the settled observations of every backend on
// the same credentials and region (issue 20: 1,000 sleeping backends would otherwise cost 1,000
// reads a minute). Cloud-neutral and free of I/O: a provider's listing derives from it, fetches
// the listing its cloud's way (Nova's pages, Exoscale's one answer) and hands the items back.
//
// A lookup is answered from the last complete listing when that was requested no earlier than
// `not_before` (the backend's last action, whose effect an older listing may not show) and is at
// most max_age old; otherwise a listing is fetched, one at a time, and every lookup it can answer
// waits for it. A VM the listing does not show (deleted, past the bounds) or a listing that failed
// answers nullopt: the provider then reads the one VM, whose errors say exactly what is wrong.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"

namespace unshelver::core {

template <typename Item>
class SharedListing {
 public:
  using Items = std::map<std::string, Item, std::less<>>;  // by the VM's id
  using LookupId = std::uint64_t;
  using LookupCallback = std::function<void(std::optional<Item> item)>;

  using Clock = std::function<MonoTime()>;

  // `max_age`: how long a listing serves lookups; half the settled observation period, so N
  // sleeping backends cost about two listings per period instead of N reads. `now` reads the
  // monotonic clock (tests move their own).
  explicit SharedListing(
      std::chrono::milliseconds max_age, Clock now = [] { return std::chrono::steady_clock::now(); })
      : max_age_(max_age), now_(std::move(now)) {}
  // A derived class calls close() in its own destructor, while its fetch can still be cancelled.
  virtual ~SharedListing() = default;
  SharedListing(const SharedListing&) = delete;
  SharedListing& operator=(const SharedListing&) = delete;

  // Providers that may use the listing; it pays off only when two or more share it.
  void join() { ++members_; }
  void leave() { --members_; }
  bool shared() const { return members_ >= 2; }

  // The callback runs exactly once, on the loop and never inside this call, unless cancelled.
  LookupId find(std::string id, MonoTime not_before, LookupCallback on_done) {
    const LookupId lookup_id = next_id_++;
    if (closed_) return lookup_id;
    lookups_.emplace(lookup_id, Lookup{std::move(id), not_before, std::move(on_done)});
    pump();
    return lookup_id;
  }
  void cancel(LookupId id) { lookups_.erase(id); }
  // Cancels everything; no callback runs afterwards.
  void close() {
    if (closed_) return;
    closed_ = true;
    if (fetching_) cancel_fetch();
    fetching_ = false;
    lookups_.clear();
  }
  // Listings fetched completely (for tests and figures).
  std::uint64_t listings() const { return listings_; }

 protected:
  // Starts fetching a listing. The derived class then calls finish_fetch() exactly once, on a
  // later loop iteration, unless cancel_fetch() came first.
  virtual void start_fetch() = 0;
  virtual void cancel_fetch() = 0;
  // Runs `call` on a later loop iteration, never inside this call (lookups answered from what is
  // held keep the promise of find()). At most one call is outstanding at a time.
  virtual void defer_once(std::function<void()> call) = 0;

  // The end of the fetch: every item listed, or nullopt when the listing failed.
  void finish_fetch(std::optional<Items> items) {
    fetching_ = false;
    const bool complete = items.has_value();
    if (complete) {
      items_ = std::move(*items);
      requested_at_ = fetch_started_;
      ++listings_;
    }
    // The lookups this listing was for, answered now: from the new listing, or (when it failed)
    // with nullopt so that each reads its one VM and reports that read's error.
    std::vector<Lookup> done;
    std::erase_if(lookups_, [&](auto& entry) {
      if (entry.second.not_before > fetch_started_) return false;
      done.push_back(std::move(entry.second));
      return true;
    });
    answer(done, complete);
    if (!closed_) pump();
  }
  bool closed() const { return closed_; }

 private:
  struct Lookup {
    std::string id;
    MonoTime not_before;
    LookupCallback on_done;
  };

  bool usable_for(const Lookup& lookup, MonoTime now) const {
    return requested_at_ && *requested_at_ >= lookup.not_before && now - *requested_at_ <= max_age_;
  }

  // Answers what the listing held can answer, and fetches a listing when some lookup needs one.
  void pump() {
    const MonoTime now = now_();
    bool answerable = false;
    bool fetch_needed = false;
    for (const auto& [id, lookup] : lookups_) {
      if (usable_for(lookup, now)) {
        answerable = true;
      } else if (!fetching_ || fetch_started_ < lookup.not_before) {
        fetch_needed = true;
      }
    }
    if (answerable && !answer_scheduled_) {
      answer_scheduled_ = true;
      defer_once([this, alive = std::weak_ptr<int>(alive_)] {
        if (alive.expired() || closed_) return;
        answer_scheduled_ = false;
        const MonoTime at = now_();
        std::vector<Lookup> ready;
        std::erase_if(lookups_, [&](auto& entry) {
          if (!usable_for(entry.second, at)) return false;
          ready.push_back(std::move(entry.second));
          return true;
        });
        answer(ready, true);
        if (!closed_) pump();
      });
    }
    // One listing at a time; a lookup that needs a later one than the listing under way waits for
    // it to end (finish_fetch pumps again).
    if (fetch_needed && !fetching_) {
      fetching_ = true;
      fetch_started_ = now;
      start_fetch();
    }
  }

  void answer(const std::vector<Lookup>& lookups, bool from_held) {
    for (const Lookup& lookup : lookups) {
      if (closed_) return;
      std::optional<Item> item;
      if (from_held) {
        if (auto found = items_.find(lookup.id); found != items_.end()) item = found->second;
      }
      lookup.on_done(std::move(item));
    }
  }

  std::chrono::milliseconds max_age_;
  Clock now_;
  int members_ = 0;
  bool closed_ = false;
  std::map<LookupId, Lookup> lookups_;
  LookupId next_id_ = 1;
  bool answer_scheduled_ = false;
  // The last complete listing, and when it was requested.
  Items items_;
  std::optional<MonoTime> requested_at_;
  bool fetching_ = false;
  MonoTime fetch_started_{};
  std::uint64_t listings_ = 0;
  // Expires with this object: a deferred answer checks it first.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace unshelver::core
