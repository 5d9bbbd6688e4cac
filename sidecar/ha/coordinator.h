// Coordinator: this controller's part in sharing the backends with other controllers through etcd
// (README "High availability"; the keys are in ha/shared_record.h).
//
// One lease per controller, kept alive three times per TTL. Each backend has a leader key on a
// lease; the controller whose key it is leads the backend, and the key's create_revision is its
// fencing token. Only a leader's driver acts: every wake or sleep first passes authorize(), a
// transaction that checks the token and the state key's revision and records the backend's
// snapshot (which already shows the action). A leader that cannot renew its lease stops acting by
// itself before etcd can let the lease lapse (core::LeaseClock), and every action it might still
// try fails the transaction once another controller holds the key.
//
// Every poll interval one range read of the whole prefix tells each controller who leads what, the
// leaders' snapshots (which followers mirror: their pages, gate and Caddy routes follow them), the
// wishes made at followers (which the leader carries out, then deletes), and what each
// controller's Caddy saw (which the leader adds to its idle clock). A backend without a leader is
// bid for at once; the winner continues from the snapshot the previous leader recorded, observing
// the cloud before it acts.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backend/driver.h"
#include "base/prometheus.h"
#include "config/config.h"
#include "ha/etcd_client.h"
#include "ha/lease_clock.h"
#include "ha/shared_record.h"
#include "uv/timer.h"

namespace unshelver::ha {

class Coordinator final : public app::ActionFence {
 public:
  // A wish that reached this controller as the leader: carried out exactly as if it had been asked
  // here (the App's own paths, which also record the events).
  using WishHandler = std::function<void(std::size_t index, const core::ha::Wish& wish)>;
  // Leadership of backend `index` began (true) or ended (false), and why.
  using LeadershipHandler = std::function<void(std::size_t index, bool leading, const std::string& why)>;

  Coordinator(uv_loop_t* loop, io::HttpClient& http, const core::HaSettings& settings, std::string instance,
              const std::vector<app::BackendDriver*>& drivers,
              std::map<std::string, core::PersistedBackend> local_state, WishHandler on_wish,
              LeadershipHandler on_leadership, std::function<void()> on_change);
  ~Coordinator() override;
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  void start();
  // Stops acting and polling, and gives up the lease so that the other controllers take over at
  // once rather than after the TTL. `done` runs when etcd has answered or the request timed out.
  void close(std::function<void()> done);

  // app::ActionFence
  void authorize(const std::string& backend, std::function<void(Status)> done) override;
  bool may_decide(const std::string& backend) override;
  // A fenced write of the backend's snapshot as it stands: etcd answering it proves the lead now.
  void confirm(const std::string& backend, std::function<void(Status)> done) override;

  // The leader records backend `index`'s snapshot (coalesced; nothing while it is not leading or
  // its state is not yet known).
  void publish(std::size_t index);
  // Every backend led here whose snapshot changed since it was last recorded.
  void publish_leading();
  // A wish made here for a backend that another controller leads.
  void wish(std::size_t index, const core::ha::Wish& wish);

  bool leads(std::size_t index) const { return seats_[index].leading; }
  // The controller that leads backend `index`, "" while none does (or etcd cannot be read).
  const std::string& leader_of(std::size_t index) const { return seats_[index].leader; }
  const std::string& instance() const { return instance_; }
  bool etcd_reachable() const { return etcd_.health().reachable; }

  void write_status(nlohmann::json& status) const;
  void write_metrics(core::MetricsPage& page) const;

 private:
  struct Seat {
    app::BackendDriver* driver = nullptr;
    std::string name;
    bool leading = false;
    bool started = false;             // the driver has led or followed at least once
    std::int64_t token = 0;           // the leader key's create_revision while leading
    std::int64_t state_revision = 0;  // the state key's mod_revision, as last written or read
    std::string leader;
    std::string last_snapshot;  // the snapshot JSON last recorded (publish_leading skips an unchanged one)
    bool writing = false;
    bool write_again = false;
    std::vector<std::function<void(Status)>> waiting;   // for the next write
    std::vector<std::function<void(Status)>> in_write;  // answered by the write under way
    bool campaigning = false;
    std::optional<core::ha::ActivityReport> reported;  // our own activity as last recorded
    bool reporting = false;
    std::map<std::string, std::int64_t> wishes_done;              // wish key -> mod_revision carried out
    std::map<std::string, core::ha::ActivityReport> remote_seen;  // instance -> report applied
  };
  struct BackendKeys;  // what one poll found for one backend

  void renew_lease();
  void schedule_lease(std::chrono::milliseconds delay);
  void poll();
  void on_poll(const core::etcd::RangeResult& range);
  void follow_or_bid(std::size_t index, const BackendKeys& keys);
  void lead_backend(std::size_t index, std::int64_t token, const core::etcd::KeyValue* state,
                    const std::string& how);
  void apply_wishes(std::size_t index, const BackendKeys& keys);
  void apply_remote_activity(std::size_t index, const BackendKeys& keys);
  void report_activity(std::size_t index);
  void campaign(std::size_t index);
  void write(std::size_t index, std::function<void(Status)> then);
  void step_down(std::size_t index, const std::string& why);
  void step_down_all(const std::string& why);
  // Self-fencing: every backend led here stops acting once the lease may have lapsed.
  void check_lease();
  void defer(std::function<void()> call);
  core::MonoTime now() const;
  std::optional<std::size_t> index_of(const std::string& backend) const;

  core::HaSettings settings_;
  std::string instance_;
  core::ha::KeyLayout keys_;
  io::EtcdClient etcd_;
  core::LeaseClock lease_clock_;
  std::int64_t lease_id_ = 0;
  bool granting_ = false;
  bool renewing_ = false;
  bool polling_ = false;
  bool closing_ = false;
  std::vector<Seat> seats_;
  std::map<std::string, std::size_t, std::less<>> index_by_name_;
  std::map<std::string, core::PersistedBackend> local_state_;
  std::vector<std::string> instances_;  // the controllers whose instance key lives, from the last poll
  WishHandler on_wish_;
  LeadershipHandler on_leadership_;
  std::function<void()> on_change_;
  io::Timer lease_timer_;
  io::Timer poll_timer_;
  io::Timer defer_timer_;
  std::vector<std::function<void()>> deferred_;
  std::uint64_t leadership_changes_ = 0;
  std::uint64_t fenced_writes_refused_ = 0;
  std::uint64_t wishes_sent_ = 0;
  std::uint64_t wishes_failed_ = 0;
  std::uint64_t wishes_applied_ = 0;
  std::string lease_error_;
};

}  // namespace unshelver::ha
