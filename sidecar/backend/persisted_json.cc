#include "backend/persisted_json.h"

#include "base/time_format.h"

namespace unshelver::core {

using nlohmann::json;

json persisted_to_json(const PersistedBackend& backend) {
  json out;
  out["desired"] = {{"awake", backend.desired.awake},
                    {"actor", backend.desired.actor},
                    {"reason", backend.desired.reason},
                    {"since", format_rfc3339(backend.desired.since)}};
  out["last_activity"] = backend.last_activity ? json(format_rfc3339(*backend.last_activity)) : json();
  out["state"] = std::string(to_string(backend.state));
  json holds = json::array();
  for (const AwakeHold& hold : backend.holds) {
    holds.push_back({{"reason", std::string(to_string(hold.reason))},
                     {"actor", hold.actor},
                     {"detail", hold.detail},
                     {"since", format_rfc3339(hold.since)},
                     {"until", hold.until ? json(format_rfc3339(*hold.until)) : json()}});
  }
  if (!holds.empty()) out["holds"] = std::move(holds);
  return out;
}

Result<PersistedBackend> persisted_from_json(const json& in) {
  PersistedBackend backend;
  try {
    const json& desired = in.at("desired");
    backend.desired.awake = desired.at("awake").get<bool>();
    backend.desired.actor = desired.value("actor", "reconciler");
    backend.desired.reason = desired.value("reason", "");
    if (auto since = parse_rfc3339(desired.value("since", ""))) backend.desired.since = *since;
    if (in.contains("last_activity") && in["last_activity"].is_string()) {
      backend.last_activity = parse_rfc3339(in["last_activity"].get<std::string>());
    }
    backend.state = backend_state_from_string(in.value("state", "unknown")).value_or(BackendState::kUnknown);
    // Awake holds (a pin, a window, a pre-warm); an unknown reason is skipped.
    for (const json& entry : in.value("holds", json::array())) {
      AwakeHold hold;
      const std::string reason = entry.value("reason", "");
      if (reason == "admin-pin") {
        hold.reason = HoldReason::kPin;
      } else if (reason == "window") {
        hold.reason = HoldReason::kWindow;
      } else if (reason == "pre-warm") {
        hold.reason = HoldReason::kPrewarm;
      } else {
        continue;
      }
      hold.actor = entry.value("actor", "");
      hold.detail = entry.value("detail", "");
      if (auto since = parse_rfc3339(entry.value("since", ""))) hold.since = *since;
      if (entry.contains("until") && entry["until"].is_string()) {
        hold.until = parse_rfc3339(entry["until"].get<std::string>());
        if (!hold.until) continue;  // a hold with an end that cannot be read is not made endless
      }
      backend.holds.push_back(std::move(hold));
    }
  } catch (const json::exception& error) {
    return Error{error.what()};
  }
  return backend;
}

json snapshot_to_json(const BackendSnapshot& snapshot) {
  json out = persisted_to_json(snapshot.persisted);
  out["state_since"] = format_rfc3339(snapshot.state_since);
  out["upstream"] = snapshot.upstream;
  out["cloud_status"] = snapshot.cloud_status;
  out["last_error"] = snapshot.last_error;
  out["requests_in_flight"] = snapshot.requests_in_flight;
  return out;
}

Result<BackendSnapshot> snapshot_from_json(const json& in) {
  if (!in.is_object()) return Error{"a backend snapshot must be a JSON object"};
  Result<PersistedBackend> persisted = persisted_from_json(in);
  if (!persisted) return persisted.error();
  BackendSnapshot snapshot;
  snapshot.persisted = std::move(*persisted);
  try {
    if (auto since = parse_rfc3339(in.value("state_since", ""))) snapshot.state_since = *since;
    snapshot.upstream = in.value("upstream", "");
    snapshot.cloud_status = in.value("cloud_status", "");
    snapshot.last_error = in.value("last_error", "");
    snapshot.requests_in_flight = std::max(0, in.value("requests_in_flight", 0));
  } catch (const json::exception& error) {
    return Error{error.what()};
  }
  return snapshot;
}

}  // namespace unshelver::core
