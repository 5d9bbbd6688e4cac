#include "events/record.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/json_values.h"
#include "base/time_format.h"

namespace unshelver::core {

namespace {
using nlohmann::json;
}  // namespace

std::string action_for(const Transition& transition) {
  using S = BackendState;
  using E = BackendEvent;
  // What the first observation found is a fact about the cloud, not something that happened.
  if (transition.from == S::kUnknown && transition.event != E::kWakeRequested &&
      transition.event != E::kSleepRequested && transition.event != E::kFailed) {
    return "observed_" + std::string(to_string(transition.to));
  }
  switch (transition.event) {
    case E::kWakeRequested: return "unshelve_requested";
    case E::kSleepRequested: return "shelve_requested";
    case E::kCloudStarting: return "cloud_starting";
    case E::kCloudRunning: return "cloud_running";
    case E::kHealthPassed: return "unshelve_complete";
    case E::kHealthLost: return "health_lost";
    case E::kCloudStopping: return "cloud_stopping";
    case E::kCloudStopped: return transition.from == S::kSleeping ? "shelve_complete" : "cloud_stopped";
    case E::kFailed:
      // The Python unshelver's unshelve_incomplete: the VM runs, but its service never answered.
      return transition.from == S::kBooting ? "unshelve_incomplete" : "workflow_failed";
  }
  return "transition";
}

std::string make_event_id(TimePoint at, std::uint64_t seq, std::uint32_t random) {
  // From "2026-11-22T10:15:00.123456Z" to the compact "20261122T101500.123456Z".
  std::string compact;
  for (char c : format_rfc3339(at)) {
    if (c != '-' && c != ':') compact.push_back(c);
  }
  char suffix[48];
  const int written =
      std::snprintf(suffix, sizeof suffix, "-%06llu-%08x", static_cast<unsigned long long>(seq), random);
  // At most 1 + 20 + 1 + 8 characters: the buffer always holds them.
  if (written < 0 || static_cast<std::size_t>(written) >= sizeof suffix) return compact;
  return compact + suffix;
}

std::string swift_object_name(std::string_view prefix, const EventRecord& record) {
  const std::string ts = format_rfc3339(record.at);  // YYYY-MM-DDT...
  std::string name(prefix);
  while (!name.empty() && name.back() == '/') name.pop_back();
  if (!name.empty()) name += '/';
  name += ts.substr(0, 4) + '/' + ts.substr(5, 2) + '/' + ts.substr(8, 2) + '/' + record.id + ".json";
  return name;
}

std::string to_json_line(const EventRecord& record) {
  const std::string ts = format_rfc3339(record.at);
  // nlohmann's ordered_json keeps this order on disk, so that people reading the file find the
  // time and the action first.
  nlohmann::ordered_json line = {
      {"seq", record.seq},       {"id", record.id},           {"ts", ts},
      {"timestamp", ts},         {"backend", record.backend}, {"instance_name", record.instance_name},
      {"action", record.action}, {"actor", record.actor},     {"from", record.from},
      {"to", record.to},         {"detail", record.detail},
  };
  if (record.count > 0) line["count"] = record.count;
  if (!record.dropped.empty()) line["dropped"] = record.dropped;
  // Invalid UTF-8 (from a cloud's message, say) is replaced rather than thrown on: the event
  // must be recorded whatever its text holds.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<EventRecord> parse_event_line(std::string_view line) {
  json object = json::parse(line, nullptr, false);
  if (object.is_discarded() || !object.is_object()) return Error{"not a JSON object"};
  EventRecord record;
  std::string ts = json_string(object, "ts");
  if (ts.empty()) ts = json_string(object, "timestamp");
  auto at = parse_rfc3339(ts);
  if (!at) return Error{"no valid ts or timestamp"};
  record.at = *at;
  record.action = json_string(object, "action");
  if (record.action.empty()) return Error{"no action"};
  if (auto seq = object.find("seq"); seq != object.end()) {
    if (!seq->is_number_unsigned()) return Error{"seq is not a positive integer"};
    record.seq = seq->get<std::uint64_t>();
  }
  record.id = json_string(object, "id");
  if (record.seq != 0 && record.id.empty()) return Error{"no id"};
  record.backend = json_string(object, "backend");
  record.instance_name = json_string(object, "instance_name");
  record.actor = json_string(object, "actor");
  record.from = json_string(object, "from");
  record.to = json_string(object, "to");
  record.detail = json_string(object, "detail");
  // Counts are information for people: a malformed one is ignored rather than making the line
  // unreadable.
  if (auto count = object.find("count"); count != object.end() && count->is_number_unsigned()) {
    record.count = count->get<std::uint64_t>();
  }
  if (auto dropped = object.find("dropped"); dropped != object.end() && dropped->is_object()) {
    for (const auto& [action, number] : dropped->items()) {
      if (number.is_number_unsigned()) record.dropped[action] = number.get<std::uint64_t>();
    }
  }
  return record;
}

std::size_t intact_length(std::string_view content) {
  const std::size_t last_newline = content.rfind('\n');
  if (last_newline == std::string_view::npos) return 0;
  // Bytes after the last newline are the damage; the lines before were written whole earlier.
  if (last_newline + 1 < content.size()) return last_newline + 1;
  const std::size_t line_start = last_newline == 0 ? 0 : content.rfind('\n', last_newline - 1);
  const std::size_t begin = line_start == std::string_view::npos || last_newline == 0 ? 0 : line_start + 1;
  const std::string_view last_line = content.substr(begin, last_newline - begin);
  if (last_line.empty() || parse_event_line(last_line)) return last_newline + 1;
  return begin;
}

}  // namespace unshelver::core
