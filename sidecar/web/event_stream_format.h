// Server-Sent Events for GET /api/events/stream (WHATWG HTML §9.2, "Server-sent events"): how a
// record becomes an event, a heartbeat, and what a Last-Event-ID means. Pure; the streams
// themselves are web/event_stream.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "events/record.h"

namespace unshelver::web {

// "id: <seq>\nevent: <action>\ndata: <the record's JSON line>\n\n". The JSON line holds no line
// break (JSON escapes them), so one data line carries it whole.
std::string sse_event(const core::EventRecord& record);

// A comment line that keeps proxies from closing a quiet stream; clients ignore it.
std::string sse_heartbeat();

// The seq a client last saw: digits only (at most 19), else nullopt (the caller answers 400).
// An absent or empty header means "from now on" and is handled by the caller.
std::optional<std::uint64_t> parse_last_event_id(std::string_view text);

}  // namespace unshelver::web
