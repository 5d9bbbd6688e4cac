#include "ha/shared_record.h"

#include <nlohmann/json.hpp>

#include "backend/persisted_json.h"
#include "base/json_values.h"
#include "base/time_format.h"

namespace unshelver::core::ha {

using nlohmann::json;

namespace {
constexpr std::string_view kBackends = "backends/";
constexpr std::string_view kInstances = "instances/";

// A JSON object from etcd's value, or an error that names what was expected (never the value:
// it came from the network).
Result<json> parse_object(std::string_view text, std::string_view what) {
  json document = json::parse(text, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    return Error{std::string(what) + " in etcd is not a JSON object"};
  }
  return document;
}

std::optional<TimePoint> time_field(const json& document, std::string_view name) {
  return parse_rfc3339(json_string(document, name));
}
}  // namespace

KeyLayout::KeyLayout(std::string prefix_value) : prefix(std::move(prefix_value)) {
  if (prefix.empty() || prefix.back() != '/') prefix += '/';
}

std::string KeyLayout::instance(std::string_view instance_name) const {
  return instances() + std::string(instance_name);
}

std::string KeyLayout::instances() const {
  return prefix + std::string(kInstances);
}

std::string KeyLayout::leader(std::string_view backend) const {
  return prefix + std::string(kBackends) + std::string(backend) + "/leader";
}

std::string KeyLayout::state(std::string_view backend) const {
  return prefix + std::string(kBackends) + std::string(backend) + "/state";
}

std::string KeyLayout::wish(std::string_view backend, std::string_view instance_name,
                            std::string_view slot) const {
  return prefix + std::string(kBackends) + std::string(backend) + "/wish/" + std::string(instance_name) +
         "/" + std::string(slot);
}

std::string KeyLayout::activity(std::string_view backend, std::string_view instance_name) const {
  return prefix + std::string(kBackends) + std::string(backend) + "/activity/" + std::string(instance_name);
}

KeyLayout::Parsed KeyLayout::parse(std::string_view key) const {
  Parsed parsed;
  if (!key.starts_with(prefix)) return parsed;
  key.remove_prefix(prefix.size());
  if (key.starts_with(kInstances)) {
    key.remove_prefix(kInstances.size());
    if (key.empty() || key.find('/') != std::string_view::npos) return parsed;
    parsed.kind = Kind::kInstance;
    parsed.instance = std::string(key);
    return parsed;
  }
  if (!key.starts_with(kBackends)) return parsed;
  key.remove_prefix(kBackends.size());
  const std::size_t slash = key.find('/');
  if (slash == 0 || slash == std::string_view::npos) return parsed;
  const std::string_view backend = key.substr(0, slash);
  const std::string_view rest = key.substr(slash + 1);
  if (rest == "leader" || rest == "state") {
    parsed.kind = rest == "leader" ? Kind::kLeader : Kind::kState;
    parsed.backend = std::string(backend);
    return parsed;
  }
  if (rest.starts_with("activity/")) {
    const std::string_view instance_name = rest.substr(std::string_view("activity/").size());
    if (instance_name.empty() || instance_name.find('/') != std::string_view::npos) return parsed;
    parsed.kind = Kind::kActivity;
    parsed.backend = std::string(backend);
    parsed.instance = std::string(instance_name);
    return parsed;
  }
  if (rest.starts_with("wish/")) {
    const std::string_view tail = rest.substr(std::string_view("wish/").size());
    const std::size_t cut = tail.find('/');
    if (cut == 0 || cut == std::string_view::npos) return parsed;
    const std::string_view slot = tail.substr(cut + 1);
    if (slot != "desired" && slot != "pin") return parsed;
    parsed.kind = Kind::kWish;
    parsed.backend = std::string(backend);
    parsed.instance = std::string(tail.substr(0, cut));
    parsed.slot = std::string(slot);
  }
  return parsed;
}

std::string_view wish_slot(Wish::Kind kind) {
  return kind == Wish::Kind::kPin || kind == Wish::Kind::kUnpin ? "pin" : "desired";
}

namespace {
constexpr std::pair<Wish::Kind, std::string_view> kWishNames[] = {{Wish::Kind::kWake, "wake"},
                                                                  {Wish::Kind::kShelve, "shelve"},
                                                                  {Wish::Kind::kPin, "pin"},
                                                                  {Wish::Kind::kUnpin, "unpin"}};
}  // namespace

std::string wish_to_json(const Wish& wish) {
  std::string kind;
  for (const auto& [value, name] : kWishNames) {
    if (value == wish.kind) kind = name;
  }
  return json{{"kind", kind}, {"actor", wish.actor}, {"reason", wish.reason}, {"at", format_rfc3339(wish.at)}}
      .dump();
}

Result<Wish> wish_from_json(std::string_view text) {
  Result<json> document = parse_object(text, "a wish");
  if (!document) return document.error();
  Wish wish;
  const std::string kind = json_string(*document, "kind");
  bool known = false;
  for (const auto& [value, name] : kWishNames) {
    if (kind == name) {
      wish.kind = value;
      known = true;
    }
  }
  if (!known) return Error{"a wish in etcd has no known kind (wake, shelve, pin, unpin)"};
  wish.actor = json_string(*document, "actor");
  wish.reason = json_string(*document, "reason");
  wish.at = time_field(*document, "at").value_or(TimePoint{});
  return wish;
}

std::string activity_to_json(const ActivityReport& report) {
  return json{{"last_activity", time_or_null(report.last_activity)}, {"in_flight", report.in_flight}}.dump();
}

Result<ActivityReport> activity_from_json(std::string_view text) {
  Result<json> document = parse_object(text, "an activity report");
  if (!document) return document.error();
  ActivityReport report;
  report.last_activity = time_field(*document, "last_activity");
  report.in_flight = static_cast<int>(
      std::clamp<std::int64_t>(json_field<std::int64_t>(*document, "in_flight", 0), 0, 1'000'000));
  return report;
}

std::string state_to_json(const SharedState& state) {
  json document = snapshot_to_json(state.snapshot);
  document["leader"] = state.leader;
  document["written"] = format_rfc3339(state.written);
  return document.dump();
}

Result<SharedState> state_from_json(std::string_view text) {
  Result<json> document = parse_object(text, "a backend's state");
  if (!document) return document.error();
  Result<BackendSnapshot> snapshot = snapshot_from_json(*document);
  if (!snapshot) return Error{"a backend's state in etcd cannot be read: " + snapshot.error().message};
  SharedState state;
  state.snapshot = std::move(*snapshot);
  state.leader = json_string(*document, "leader");
  state.written = time_field(*document, "written").value_or(TimePoint{});
  return state;
}

}  // namespace unshelver::core::ha
