// What the controllers share in etcd, as keys and JSON values (README "High availability").
//
//   <prefix>instances/<instance>                 {"started": ...}, on the instance's lease: who is up
//   <prefix>backends/<backend>/leader            "<instance>", on the leader's lease; its
//                                                create_revision is the fencing token
//   <prefix>backends/<backend>/state             the leader's BackendSnapshot, written only by a
//                                                transaction that checks the token (no lease: it
//                                                outlives every leader)
//   <prefix>backends/<backend>/wish/<instance>/desired   a wake or shelve asked for at a follower
//   <prefix>backends/<backend>/wish/<instance>/pin       a pin or unpin asked for at a follower
//   <prefix>backends/<backend>/activity/<instance>       the last use and the requests in flight
//                                                that instance's Caddy saw, on its lease
//
// Backend names are identifiers and instance names contain no '/', so every key parses back
// unambiguously. Nothing here does I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "backend/reconciler.h"
#include "base/result.h"

namespace unshelver::core::ha {

struct KeyLayout {
  std::string prefix;  // ends in '/' (added when missing)

  explicit KeyLayout(std::string prefix_value);
  std::string instance(std::string_view instance_name) const;
  std::string instances() const;  // the range of instance keys
  std::string leader(std::string_view backend) const;
  std::string state(std::string_view backend) const;
  std::string wish(std::string_view backend, std::string_view instance_name, std::string_view slot) const;
  std::string activity(std::string_view backend, std::string_view instance_name) const;

  enum class Kind { kInstance, kLeader, kState, kWish, kActivity, kOther };
  struct Parsed {
    Kind kind = Kind::kOther;
    std::string backend;
    std::string instance;
    std::string slot;  // for kWish: "desired" or "pin"
  };
  Parsed parse(std::string_view key) const;
};

// A wish made at a controller that does not lead the backend, for its leader to carry out.
struct Wish {
  enum class Kind { kWake, kShelve, kPin, kUnpin };
  Kind kind = Kind::kWake;
  std::string actor;
  std::string reason;
  TimePoint at{};
};
std::string_view wish_slot(Wish::Kind kind);  // "desired" or "pin"
std::string wish_to_json(const Wish& wish);
Result<Wish> wish_from_json(std::string_view text);

// What one controller's Caddy saw of a backend: its last use and the requests still in flight.
struct ActivityReport {
  std::optional<TimePoint> last_activity;
  int in_flight = 0;
  bool operator==(const ActivityReport&) const = default;
};
std::string activity_to_json(const ActivityReport& report);
Result<ActivityReport> activity_from_json(std::string_view text);

// The state key's value: the snapshot, who wrote it and when.
struct SharedState {
  BackendSnapshot snapshot;
  std::string leader;
  TimePoint written{};
};
std::string state_to_json(const SharedState& state);
Result<SharedState> state_from_json(std::string_view text);

}  // namespace unshelver::core::ha
