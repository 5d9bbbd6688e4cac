// EventStreams: the open GET /api/events/stream answers (README "Event stream").
//
// Each stream first replays the recorded events after the client's Last-Event-ID (from the
// recorder's recent ones: the last 1000), then gets every event as it is written, in seq order,
// never one twice. Every `heartbeat` a comment line goes to every stream, so that proxies and
// load balancers keep quiet streams open.
//
// Bounds: at most `max_clients` streams (the caller answers 503 past it, see full()), and at most
// `buffer_bytes` unsent bytes per stream: a reader that falls further behind is disconnected
// rather than buffered without end (it reconnects with Last-Event-ID and misses nothing that is
// still among the recent events). The server's shutdown ends every stream after its queued bytes.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/prometheus.h"
#include "events/record.h"
#include "uv/http_server.h"
#include "uv/timer.h"

namespace unshelver::web {

struct EventStreamSettings {
  int max_clients = 16;
  std::size_t buffer_bytes = std::size_t{1} << 20;
  std::chrono::milliseconds heartbeat{15'000};
};

struct EventStreamStats {
  std::uint64_t opened = 0;
  std::uint64_t refused_full = 0;  // answered 503: max_clients were open
  std::uint64_t cut_slow = 0;      // disconnected: more than buffer_bytes unsent
};

class EventStreams {
 public:
  // `replay(after)`: the recorded events with seq > after, oldest first.
  using ReplaySource = std::function<std::vector<core::EventRecord>(std::uint64_t after)>;

  EventStreams(uv_loop_t* loop, EventStreamSettings settings, ReplaySource replay);
  ~EventStreams();
  EventStreams(const EventStreams&) = delete;
  EventStreams& operator=(const EventStreams&) = delete;

  // Whether a new stream would exceed max_clients (or the streams were ended); counts the refusal.
  bool refuse_when_full();
  // Answers the request with `head` (200, text/event-stream and the caller's headers) and keeps
  // it open; `after`: the client's Last-Event-ID, or nullopt to start with the next event.
  void open(const io::Responder& responder, io::HttpResponse head, std::optional<std::uint64_t> after);
  // A recorded event, for every open stream.
  void publish(const core::EventRecord& record);
  // Ends every stream (their queued bytes still go out) and refuses no further (shutdown).
  void end_all();

  std::size_t open_streams() const { return streams_.size(); }
  // Sets "streams" in the status document's "events"; adds the streams' metrics.
  void write_status(nlohmann::json& events) const;
  void write_metrics(core::MetricsPage& page) const;
  const EventStreamStats& stats() const { return stats_; }
  const EventStreamSettings& settings() const { return settings_; }

 private:
  struct Stream {
    io::ResponseStream out;
    std::uint64_t last_sent = 0;
  };
  // Writes `text` to the stream; cuts it (and forgets it) when too much is unsent. False when
  // the stream is gone.
  bool send(std::uint64_t id, Stream& stream, std::string text);
  void heartbeat();

  EventStreamSettings settings_;
  ReplaySource replay_;
  std::map<std::uint64_t, Stream> streams_;
  std::uint64_t next_id_ = 1;
  bool ended_ = false;
  io::Timer heartbeat_timer_;
  EventStreamStats stats_;
  // The connections' on_gone callbacks may run after this object is gone (a stream ends when the
  // server's shutdown closes it): they hold this weakly and then do nothing.
  std::shared_ptr<int> lifetime_ = std::make_shared<int>(0);
};

}  // namespace unshelver::web
