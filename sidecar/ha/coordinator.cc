#include "ha/coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "backend/persisted_json.h"
#include "base/json_values.h"
#include "base/time_format.h"

namespace unshelver::ha {

namespace {
using namespace std::chrono_literals;
using core::etcd::Compare;
using core::etcd::CompareResult;
using core::etcd::CompareTarget;
using core::etcd::KeyValue;
using core::etcd::Put;
using core::etcd::Range;
using core::etcd::Txn;
using nlohmann::json;

// After a failed grant or keep-alive, the next try comes this soon (well within the safety margin
// of core::LeaseClock, so that a short outage costs no leadership).
constexpr auto kLeaseRetry = 1000ms;

// A put without conditions, as a transaction (the gateway's /v3/kv/put would do as well; one
// call shape keeps the client small).
Txn plain_put(std::string key, std::string value, std::int64_t lease) {
  Txn txn;
  txn.success.emplace_back(Put{std::move(key), std::move(value), lease});
  return txn;
}

std::string snapshot_text(const core::BackendSnapshot& snapshot) {
  return core::snapshot_to_json(snapshot).dump();
}
}  // namespace

// What one poll found for one backend.
struct Coordinator::BackendKeys {
  const KeyValue* leader = nullptr;
  const KeyValue* state = nullptr;
  std::vector<const KeyValue*> wishes;
  std::vector<std::pair<std::string, const KeyValue*>> activity;  // instance -> report
};

Coordinator::Coordinator(uv_loop_t* loop, io::HttpClient& http, const core::HaSettings& settings,
                         std::string instance, const std::vector<app::BackendDriver*>& drivers,
                         std::map<std::string, core::PersistedBackend> local_state, WishHandler on_wish,
                         LeadershipHandler on_leadership, std::function<void()> on_change)
    : settings_(settings),
      instance_(std::move(instance)),
      keys_(settings.prefix),
      etcd_(http,
            io::EtcdSettings{settings.etcd, settings.request_timeout, settings.ca_file, settings.cert_file,
                             settings.key_file, settings.username, settings.password}),
      lease_clock_(settings.lease_ttl),
      local_state_(std::move(local_state)),
      on_wish_(std::move(on_wish)),
      on_leadership_(std::move(on_leadership)),
      on_change_(std::move(on_change)),
      lease_timer_(loop),
      poll_timer_(loop),
      defer_timer_(loop) {
  for (app::BackendDriver* driver : drivers) {
    Seat seat;
    seat.driver = driver;
    seat.name = driver->config().name;
    index_by_name_.emplace(seat.name, seats_.size());
    seats_.push_back(std::move(seat));
  }
}

Coordinator::~Coordinator() {
  etcd_.close();
}

core::MonoTime Coordinator::now() const {
  return std::chrono::steady_clock::now();
}

std::optional<std::size_t> Coordinator::index_of(const std::string& backend) const {
  // Asked before every decision of every driver: a map, not a walk over the seats.
  const auto found = index_by_name_.find(backend);
  if (found == index_by_name_.end()) return std::nullopt;
  return found->second;
}

void Coordinator::start() {
  spdlog::info("ha: controller {} sharing {} backend(s) through etcd ({} member(s), lease {} s)", instance_,
               seats_.size(), settings_.etcd.size(), settings_.lease_ttl.count());
  renew_lease();
  poll_timer_.start_repeating(settings_.poll_interval, [this] {
    check_lease();
    poll();
  });
}

void Coordinator::close(std::function<void()> done) {
  if (closing_) {
    if (done) done();
    return;
  }
  closing_ = true;
  lease_timer_.stop();
  poll_timer_.stop();
  step_down_all("this controller is stopping");
  if (lease_id_ == 0) {
    etcd_.close();
    if (done) done();
    return;
  }
  // Giving the lease up deletes every key on it: the other controllers bid for our backends at
  // their next poll instead of after the TTL.
  etcd_.revoke(std::exchange(lease_id_, 0), [this, done = std::move(done)](const Status& revoked) {
    if (!revoked)
      spdlog::warn("ha: cannot give up the lease ({}); it lapses by itself", revoked.error().message);
    etcd_.close();
    if (done) done();
  });
}

// --- the lease ------------------------------------------------------------------------------------

void Coordinator::schedule_lease(std::chrono::milliseconds delay) {
  if (closing_) return;
  lease_timer_.start(delay, [this] { renew_lease(); });
}

void Coordinator::renew_lease() {
  if (closing_ || granting_ || renewing_) return;
  const core::MonoTime sent = now();
  if (lease_id_ == 0) {
    granting_ = true;
    etcd_.grant(settings_.lease_ttl.count(), [this, sent](Result<core::etcd::Lease> granted) {
      granting_ = false;
      if (!granted) {
        lease_error_ = granted.error().message;
        spdlog::warn("ha: cannot obtain a lease from etcd: {}", lease_error_);
        schedule_lease(kLeaseRetry);
        return;
      }
      lease_error_.clear();
      lease_id_ = granted->id;
      lease_clock_.renewed(sent, std::chrono::seconds(granted->ttl_seconds));
      spdlog::info("ha: lease {:x} granted for {} s", lease_id_, granted->ttl_seconds);
      const json started{{"started", core::format_rfc3339(std::chrono::system_clock::now())}};
      etcd_.txn(plain_put(keys_.instance(instance_), started.dump(), lease_id_),
                [](const Result<core::etcd::TxnResult>& put) {
                  if (!put) spdlog::warn("ha: cannot announce this controller: {}", put.error().message);
                });
      schedule_lease(lease_clock_.renewal_interval());
      poll();
    });
    return;
  }
  renewing_ = true;
  etcd_.keepalive(lease_id_, [this, sent](Result<std::optional<std::int64_t>> answer) {
    renewing_ = false;
    if (!answer) {
      lease_error_ = answer.error().message;
      spdlog::warn("ha: cannot renew the lease: {}", lease_error_);
      check_lease();
      schedule_lease(kLeaseRetry);
      return;
    }
    if (!*answer) {
      // etcd let the lease lapse (we were cut off, or stopped, for longer than the TTL): every
      // key on it is gone, and others may lead our backends already.
      lease_error_ = "the lease lapsed";
      spdlog::warn("ha: lease {:x} lapsed; bidding again with a new one", lease_id_);
      lease_id_ = 0;
      lease_clock_.lost();
      step_down_all("the lease lapsed");
      for (Seat& seat : seats_) seat.reported.reset();
      renew_lease();
      return;
    }
    lease_error_.clear();
    lease_clock_.renewed(sent, std::chrono::seconds(**answer));
    schedule_lease(lease_clock_.renewal_interval());
  });
}

void Coordinator::check_lease() {
  if (lease_clock_.held(now())) return;
  bool any = false;
  for (const Seat& seat : seats_) any = any || seat.leading;
  if (any) step_down_all("the lease could not be renewed in time");
}

// --- polling ----------------------------------------------------------------------------------------

void Coordinator::poll() {
  if (closing_ || polling_) return;
  polling_ = true;
  etcd_.range(Range{keys_.prefix, true}, [this](Result<core::etcd::RangeResult> range) {
    polling_ = false;
    if (!range) {
      // Followers keep showing the last snapshot; leaders keep acting until their lease says
      // otherwise (check_lease). on_change refreshes the pages that show etcd's health.
      if (on_change_) on_change_();
      return;
    }
    on_poll(*range);
  });
}

void Coordinator::on_poll(const core::etcd::RangeResult& range) {
  if (closing_) return;
  std::map<std::string, BackendKeys> found;
  instances_.clear();
  for (const KeyValue& kv : range.kvs) {
    const core::ha::KeyLayout::Parsed key = keys_.parse(kv.key);
    switch (key.kind) {
      case core::ha::KeyLayout::Kind::kInstance: instances_.push_back(key.instance); break;
      case core::ha::KeyLayout::Kind::kLeader: found[key.backend].leader = &kv; break;
      case core::ha::KeyLayout::Kind::kState: found[key.backend].state = &kv; break;
      case core::ha::KeyLayout::Kind::kWish: found[key.backend].wishes.push_back(&kv); break;
      case core::ha::KeyLayout::Kind::kActivity:
        found[key.backend].activity.emplace_back(key.instance, &kv);
        break;
      case core::ha::KeyLayout::Kind::kOther: break;
    }
  }
  const BackendKeys none;
  for (std::size_t i = 0; i < seats_.size(); ++i) {
    const auto entry = found.find(seats_[i].name);
    const BackendKeys& keys = entry == found.end() ? none : entry->second;
    Seat& seat = seats_[i];
    if (seat.leading) {
      const bool still_ours = keys.leader != nullptr && keys.leader->create_revision == seat.token &&
                              keys.leader->value == instance_;
      if (!still_ours) {
        step_down(i, keys.leader ? "the lead passed to " + keys.leader->value : "the leader key is gone");
      }
    }
    if (seat.leading) {
      apply_wishes(i, keys);
      apply_remote_activity(i, keys);
    } else {
      follow_or_bid(i, keys);
      report_activity(i);
    }
  }
  if (on_change_) on_change_();
}

void Coordinator::follow_or_bid(std::size_t index, const BackendKeys& keys) {
  Seat& seat = seats_[index];
  seat.leader = keys.leader ? keys.leader->value : "";
  const bool lease_held = lease_id_ != 0 && lease_clock_.held(now());
  if (keys.leader != nullptr && keys.leader->lease == lease_id_ && lease_held) {
    // Our own key on our live lease: we stepped down while etcd was out of reach, and nobody
    // could have taken over since. The lead resumes with the same token.
    lead_backend(index, keys.leader->create_revision, keys.state, "resumed with its lease");
    return;
  }
  if (keys.state != nullptr && (keys.state->mod_revision != seat.state_revision || !seat.started)) {
    Result<core::ha::SharedState> shared = core::ha::state_from_json(keys.state->value);
    if (shared) {
      seat.state_revision = keys.state->mod_revision;
      seat.started = true;
      seat.driver->follow(shared->snapshot);
    } else {
      spdlog::warn("ha: [{}] {}", seat.name, shared.error().message);
    }
  }
  if (keys.leader == nullptr && lease_held) campaign(index);
}

void Coordinator::campaign(std::size_t index) {
  Seat& seat = seats_[index];
  if (seat.campaigning || closing_) return;
  seat.campaigning = true;
  // The bid succeeds only while nobody holds the key (create_revision 0: it does not exist); the
  // winner reads the state in the same transaction, so nothing can come between (ha-etcd.md §3.2).
  Txn txn;
  txn.compare.push_back(
      Compare{keys_.leader(seat.name), CompareTarget::kCreate, CompareResult::kEqual, 0, ""});
  txn.success.emplace_back(Put{keys_.leader(seat.name), instance_, lease_id_});
  txn.success.emplace_back(Range{keys_.state(seat.name), false});
  txn.failure.emplace_back(Range{keys_.leader(seat.name), false});
  etcd_.txn(txn, [this, index](Result<core::etcd::TxnResult> result) {
    Seat& seat = seats_[index];
    seat.campaigning = false;
    if (closing_ || !result) return;
    if (!result->succeeded) {
      if (result->responses.size() == 1 && !result->responses[0].kvs.empty()) {
        seat.leader = result->responses[0].kvs[0].value;
      }
      return;
    }
    const KeyValue* state = nullptr;
    if (result->responses.size() == 2 && !result->responses[1].kvs.empty())
      state = &result->responses[1].kvs[0];
    // The put is the transaction's only write, so its revision is the key's create_revision.
    lead_backend(index, result->revision, state, "won the bid");
    // Wishes that waited for a leader (a wake asked for while the last one died) are read now,
    // not one poll interval later.
    poll();
  });
}

void Coordinator::lead_backend(std::size_t index, std::int64_t token, const KeyValue* state,
                               const std::string& how) {
  Seat& seat = seats_[index];
  std::optional<core::PersistedBackend> persisted;
  seat.state_revision = 0;
  if (state != nullptr) {
    Result<core::ha::SharedState> shared = core::ha::state_from_json(state->value);
    if (!shared) {
      // Leading on a state nobody can read would act blind; leave the backend to the cloud's truth
      // (the reconciler observes first) and say so.
      spdlog::error("ha: [{}] {}; continuing from what the cloud shows", seat.name, shared.error().message);
    } else {
      persisted = shared->snapshot.persisted;
    }
    seat.state_revision = state->mod_revision;
  } else if (auto local = local_state_.find(seat.name); local != local_state_.end()) {
    // The first controller of a deployment that ran alone before: its state file is the truth.
    persisted = local->second;
  }
  seat.leading = true;
  seat.started = true;
  seat.token = token;
  seat.leader = instance_;
  seat.last_snapshot.clear();
  seat.remote_seen.clear();
  ++leadership_changes_;
  spdlog::info("ha: [{}] leading from now on ({}; fencing token {})", seat.name, how, token);
  seat.driver->lead(persisted);
  if (on_leadership_) on_leadership_(index, true, how);
}

void Coordinator::step_down(std::size_t index, const std::string& why) {
  Seat& seat = seats_[index];
  if (!seat.leading) return;
  seat.leading = false;
  seat.token = 0;
  ++leadership_changes_;
  spdlog::warn("ha: [{}] no longer leading: {}", seat.name, why);
  seat.driver->follow(seat.driver->reconciler().snapshot());
  for (auto* list : {&seat.waiting, &seat.in_write}) {
    for (auto& callback : std::exchange(*list, {})) {
      defer([callback = std::move(callback), why] { callback(Error{"no longer leading: " + why}); });
    }
  }
  if (on_leadership_) on_leadership_(index, false, why);
}

void Coordinator::step_down_all(const std::string& why) {
  for (std::size_t i = 0; i < seats_.size(); ++i) step_down(i, why);
}

// --- what followers send, what leaders carry out ------------------------------------------------------

void Coordinator::wish(std::size_t index, const core::ha::Wish& wish) {
  const Seat& seat = seats_[index];
  const std::string key = keys_.wish(seat.name, instance_, core::ha::wish_slot(wish.kind));
  ++wishes_sent_;
  // No lease: a wish outlives the controller that took it, until the leader carries it out.
  etcd_.txn(plain_put(key, core::ha::wish_to_json(wish), 0),
            [this, name = seat.name](const Result<core::etcd::TxnResult>& put) {
              if (put) return;
              ++wishes_failed_;
              spdlog::error("ha: [{}] cannot pass a wish to the leader: {}", name, put.error().message);
            });
}

void Coordinator::apply_wishes(std::size_t index, const BackendKeys& keys) {
  Seat& seat = seats_[index];
  std::vector<std::pair<std::string, std::int64_t>> carried_out;
  for (const KeyValue* kv : keys.wishes) {
    const auto done = seat.wishes_done.find(kv->key);
    if (done != seat.wishes_done.end() && done->second == kv->mod_revision) continue;  // being deleted
    Result<core::ha::Wish> wish = core::ha::wish_from_json(kv->value);
    if (!wish) {
      spdlog::warn("ha: [{}] {}; dropped", seat.name, wish.error().message);
    } else {
      ++wishes_applied_;
      if (on_wish_) on_wish_(index, *wish);
    }
    seat.wishes_done[kv->key] = kv->mod_revision;
    carried_out.emplace_back(kv->key, kv->mod_revision);
  }
  if (carried_out.empty()) return;
  // Deleted only once the state that carries them out is recorded: a leader that dies in between
  // leaves them for the next one (which then finds the desired state set already).
  write(index, [this, index, carried_out = std::move(carried_out)](const Status& recorded) {
    Seat& seat = seats_[index];
    for (const auto& [key, revision] : carried_out) {
      if (!recorded) {
        seat.wishes_done.erase(key);  // carried out again by whoever leads next
        continue;
      }
      Txn txn;
      // Only the wish that was carried out: a newer one under the same key stays.
      txn.compare.push_back(Compare{key, CompareTarget::kMod, CompareResult::kEqual, revision, ""});
      txn.success.emplace_back(core::etcd::DeleteRange{key, false});
      etcd_.txn(txn, [this, index, key = key](const Result<core::etcd::TxnResult>& deleted) {
        if (deleted) seats_[index].wishes_done.erase(key);
      });
    }
  });
}

void Coordinator::apply_remote_activity(std::size_t index, const BackendKeys& keys) {
  Seat& seat = seats_[index];
  int in_flight = 0;
  const core::ClockReading clock = seat.driver->read_clock();
  std::map<std::string, core::ha::ActivityReport> seen;
  for (const auto& [instance, kv] : keys.activity) {
    if (instance == instance_) continue;
    Result<core::ha::ActivityReport> report = core::ha::activity_from_json(kv->value);
    if (!report) continue;
    in_flight += report->in_flight;
    const auto before = seat.remote_seen.find(instance);
    const bool newer =
        before == seat.remote_seen.end() || before->second.last_activity != report->last_activity;
    if (newer && report->last_activity) {
      seat.driver->record_remote_activity(clock.mono_of(std::min(*report->last_activity, clock.wall)));
    }
    seen[instance] = *report;
  }
  seat.remote_seen = std::move(seen);
  seat.driver->set_remote_requests_in_flight(in_flight);
}

void Coordinator::report_activity(std::size_t index) {
  Seat& seat = seats_[index];
  if (seat.reporting || lease_id_ == 0) return;
  core::ha::ActivityReport report;
  const core::ClockReading clock = seat.driver->read_clock();
  if (const auto last = seat.driver->local_activity()) report.last_activity = clock.wall_of(*last);
  report.in_flight = seat.driver->local_requests_in_flight();
  if (seat.reported == report || (!seat.reported && !report.last_activity && report.in_flight == 0)) return;
  seat.reporting = true;
  // On our lease: the requests we count in flight end with us.
  etcd_.txn(plain_put(keys_.activity(seat.name, instance_), core::ha::activity_to_json(report), lease_id_),
            [this, index, report](const Result<core::etcd::TxnResult>& put) {
              Seat& seat = seats_[index];
              seat.reporting = false;
              if (put) seat.reported = report;
            });
}

// --- fenced writes ----------------------------------------------------------------------------------------

bool Coordinator::may_decide(const std::string& backend) {
  const std::optional<std::size_t> index = index_of(backend);
  if (!index || !seats_[*index].leading) return false;
  if (lease_clock_.held(now())) return true;
  // A controller stopped past its lease (SIGSTOP, a paused VM) runs its due timers in any order
  // when it resumes, so the driver's tick may come before the lease check: it decides nothing,
  // and steps down on the loop (not inside the driver's call).
  defer([this] { check_lease(); });
  return false;
}

void Coordinator::confirm(const std::string& backend, std::function<void(Status)> done) {
  // The same transaction as before an action: it checks the token and the state's revision, and
  // the answer comes with the lease checked again.
  authorize(backend, std::move(done));
}

void Coordinator::authorize(const std::string& backend, std::function<void(Status)> done) {
  const std::optional<std::size_t> index = index_of(backend);
  if (!index || !seats_[*index].leading) {
    defer([done = std::move(done)] { done(Error{"this controller does not lead the backend"}); });
    return;
  }
  if (!lease_clock_.held(now())) {
    check_lease();
    defer([done = std::move(done)] { done(Error{"the lease could not be renewed in time"}); });
    return;
  }
  write(*index, [this, done = std::move(done)](const Status& recorded) {
    // The transaction proved the lead when etcd applied it; the lease must also still hold now,
    // when the action is about to leave.
    if (recorded && !lease_clock_.held(now())) {
      done(Error{"the lease ran out while the action was recorded"});
      return;
    }
    done(recorded);
  });
}

void Coordinator::publish(std::size_t index) {
  if (seats_[index].leading) write(index, {});
}

void Coordinator::publish_leading() {
  for (std::size_t i = 0; i < seats_.size(); ++i) {
    const Seat& seat = seats_[i];
    if (!seat.leading || seat.writing) continue;
    if (snapshot_text(seat.driver->reconciler().snapshot()) != seat.last_snapshot) write(i, {});
  }
}

void Coordinator::write(std::size_t index, std::function<void(Status)> then) {
  Seat& seat = seats_[index];
  if (then) seat.waiting.push_back(std::move(then));
  if (seat.writing) {
    seat.write_again = true;
    return;
  }
  if (!seat.leading) {
    for (auto& callback : std::exchange(seat.waiting, {})) {
      defer(
          [callback = std::move(callback)] { callback(Error{"this controller does not lead the backend"}); });
    }
    return;
  }
  const core::BackendReconciler& reconciler = seat.driver->reconciler();
  // Until the new leader has observed the cloud its state is unknown: recording that would erase
  // what the previous leader left. The first observation is a change, which publishes again.
  if (reconciler.state() == core::BackendState::kUnknown) return;
  core::ha::SharedState shared{reconciler.snapshot(), instance_, std::chrono::system_clock::now()};
  std::string snapshot = snapshot_text(shared.snapshot);
  Txn txn;
  // The fence: our key, with our token, and the state as we last wrote or read it.
  txn.compare.push_back(
      Compare{keys_.leader(seat.name), CompareTarget::kCreate, CompareResult::kEqual, seat.token, ""});
  txn.compare.push_back(
      Compare{keys_.leader(seat.name), CompareTarget::kValue, CompareResult::kEqual, 0, instance_});
  txn.compare.push_back(
      Compare{keys_.state(seat.name), CompareTarget::kMod, CompareResult::kEqual, seat.state_revision, ""});
  txn.success.emplace_back(Put{keys_.state(seat.name), core::ha::state_to_json(shared), 0});
  seat.writing = true;
  seat.write_again = false;
  seat.in_write = std::exchange(seat.waiting, {});
  const std::int64_t token = seat.token;
  etcd_.txn(txn, [this, index, token, snapshot = std::move(snapshot)](Result<core::etcd::TxnResult> result) {
    Seat& seat = seats_[index];
    seat.writing = false;
    std::vector<std::function<void(Status)>> callbacks = std::exchange(seat.in_write, {});
    Status outcome = ok_status();
    if (!result) {
      outcome = result.error();
    } else if (!result->succeeded) {
      ++fenced_writes_refused_;
      outcome = Error{"etcd refused the fenced write: another controller leads, or wrote the state"};
      if (seat.leading && seat.token == token) step_down(index, "the fenced write was refused");
    } else if (seat.token == token) {
      seat.state_revision = result->revision;
      seat.last_snapshot = snapshot;
    }
    for (auto& callback : callbacks) callback(outcome);
    if (seat.leading && (seat.write_again || !seat.waiting.empty())) write(index, {});
  });
}

void Coordinator::defer(std::function<void()> call) {
  deferred_.push_back(std::move(call));
  if (defer_timer_.active()) return;
  defer_timer_.start(0ms, [this] {
    for (auto& pending : std::exchange(deferred_, {})) pending();
  });
}

// --- status
// -------------------------------------------------------------------------------------------------

void Coordinator::write_status(json& status) const {
  const io::EtcdHealth& health = etcd_.health();
  json backends = json::object();
  for (const Seat& seat : seats_) {
    json entry{{"leader", core::text_or_null(seat.leader)}, {"leading", seat.leading}};
    if (seat.leading) entry["fencing_token"] = seat.token;
    // For the control page, in words.
    entry["text"] = seat.leading          ? instance_ + " (this controller)"
                    : seat.leader.empty() ? std::string("no controller leads it now")
                                          : seat.leader;
    backends[seat.name] = std::move(entry);
  }
  const bool held = lease_clock_.held(now());
  std::string summary = "this is " + instance_ + " of " +
                        std::to_string(std::max<std::size_t>(instances_.size(), 1)) + " controller(s); ";
  summary += health.reachable ? "etcd answers (" + health.endpoint + ")"
                              : "etcd does not answer: nothing is woken or shelved until it does";
  if (health.reachable && !held) summary += "; no lease yet";
  json lease{{"ttl_seconds", settings_.lease_ttl.count()}, {"held", held}};
  if (lease_id_ != 0) lease["id"] = fmt::format("{:x}", lease_id_);
  if (const auto deadline = lease_clock_.deadline(); deadline && lease_clock_.held(now())) {
    lease["acting_for_seconds"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now()).count() / 1000.0;
  }
  if (!lease_error_.empty()) lease["error"] = lease_error_;
  json etcd{{"endpoint", health.endpoint},
            {"reachable", health.reachable},
            {"error", core::text_or_null(health.last_error)},
            {"calls", health.calls},
            {"failures", health.failures}};
  if (health.last_success) etcd["last_success"] = core::format_rfc3339(*health.last_success);
  status["ha"] = json{
      {"instance", instance_},
      {"summary", summary},
      {"controllers", instances_},
      {"etcd", std::move(etcd)},
      {"lease", std::move(lease)},
      {"backends", std::move(backends)},
      {"leadership_changes", leadership_changes_},
      {"fenced_writes_refused", fenced_writes_refused_},
      {"wishes", json{{"sent", wishes_sent_}, {"failed", wishes_failed_}, {"applied", wishes_applied_}}}};
}

void Coordinator::write_metrics(core::MetricsPage& page) const {
  const io::EtcdHealth& health = etcd_.health();
  page.gauge("unshelver_ha_etcd_reachable", "1 while the last request to etcd was answered.", {},
             health.reachable ? 1 : 0);
  page.counter("unshelver_ha_etcd_requests_total", "Requests to etcd, and those that failed.",
               {{"result", "all"}}, static_cast<double>(health.calls));
  page.counter("unshelver_ha_etcd_requests_total", "Requests to etcd, and those that failed.",
               {{"result", "failed"}}, static_cast<double>(health.failures));
  page.gauge("unshelver_ha_lease_held", "1 while this controller's lease lets it act.", {},
             lease_clock_.held(now()) ? 1 : 0);
  page.counter("unshelver_ha_leadership_changes_total", "Backends this controller began or stopped leading.",
               {}, static_cast<double>(leadership_changes_));
  page.counter("unshelver_ha_fenced_writes_refused_total",
               "Fenced writes etcd refused: this controller had lost the lead.", {},
               static_cast<double>(fenced_writes_refused_));
  for (const Seat& seat : seats_) {
    page.gauge("unshelver_ha_leading", "1 for the backends this controller leads.", {{"backend", seat.name}},
               seat.leading ? 1 : 0);
  }
}

}  // namespace unshelver::ha
