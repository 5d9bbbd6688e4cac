#include "web/event_stream_format.h"

namespace unshelver::web {

std::string sse_event(const core::EventRecord& record) {
  // An action is one of ours, but a line break in it would end the field early: never sent.
  std::string action = record.action;
  for (char& c : action) {
    if (c == '\n' || c == '\r') c = '_';
  }
  std::string out = "id: " + std::to_string(record.seq) + "\nevent: " + action + "\ndata: ";
  out += core::to_json_line(record);
  out += "\n\n";
  return out;
}

std::string sse_heartbeat() {
  return ": heartbeat\n\n";
}

std::optional<std::uint64_t> parse_last_event_id(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

}  // namespace unshelver::web
