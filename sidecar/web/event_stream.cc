#include "web/event_stream.h"

#include <spdlog/spdlog.h>

#include "web/event_stream_format.h"

namespace unshelver::web {

EventStreams::EventStreams(uv_loop_t* loop, EventStreamSettings settings, ReplaySource replay)
    : settings_(settings), replay_(std::move(replay)), heartbeat_timer_(loop) {}

EventStreams::~EventStreams() {
  end_all();
}

bool EventStreams::refuse_when_full() {
  if (!ended_ && static_cast<int>(streams_.size()) < settings_.max_clients) return false;
  ++stats_.refused_full;
  return true;
}

void EventStreams::open(const io::Responder& responder, io::HttpResponse head,
                        std::optional<std::uint64_t> after) {
  const std::uint64_t id = next_id_++;
  // Set before the answer starts, so that a client gone at any later moment is forgotten.
  responder.on_gone([this, id, lifetime = std::weak_ptr<int>(lifetime_)] {
    if (!lifetime.expired()) streams_.erase(id);
  });
  io::ResponseStream out = responder.stream(std::move(head));
  if (!out.alive()) return;
  ++stats_.opened;
  // Without Last-Event-ID, every event published from now on is new to this client.
  Stream& stream = streams_.emplace(id, Stream{out, after.value_or(0)}).first->second;
  // The replay goes out as one write: the events a reconnecting client missed.
  if (after) {
    std::string text;
    for (const core::EventRecord& record : replay_(*after)) {
      text += sse_event(record);
      stream.last_sent = record.seq;
    }
    if (!text.empty() && !send(id, stream, std::move(text))) return;
  }
  if (!heartbeat_timer_.active()) {
    heartbeat_timer_.start_repeating(settings_.heartbeat, [this] { heartbeat(); });
  }
}

bool EventStreams::send(std::uint64_t id, Stream& stream, std::string text) {
  if (!stream.out.write(std::move(text))) {
    streams_.erase(id);
    return false;
  }
  if (stream.out.unsent_bytes() > settings_.buffer_bytes) {
    ++stats_.cut_slow;
    spdlog::warn(
        "events: an event stream fell {} byte(s) behind (bound {}); disconnected, it may resume with "
        "Last-Event-ID",
        stream.out.unsent_bytes(), settings_.buffer_bytes);
    const io::ResponseStream out = stream.out;
    streams_.erase(id);
    out.cut();  // runs on_gone, which finds nothing left to erase
    return false;
  }
  return true;
}

void EventStreams::publish(const core::EventRecord& record) {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, stream] : streams_) ids.push_back(id);
  const std::string text = sse_event(record);
  for (std::uint64_t id : ids) {
    const auto found = streams_.find(id);
    if (found == streams_.end() || record.seq <= found->second.last_sent) continue;
    found->second.last_sent = record.seq;
    send(id, found->second, text);
  }
}

void EventStreams::heartbeat() {
  if (streams_.empty()) {
    heartbeat_timer_.stop();
    return;
  }
  std::vector<std::uint64_t> ids;
  for (const auto& [id, stream] : streams_) ids.push_back(id);
  for (std::uint64_t id : ids) {
    if (const auto found = streams_.find(id); found != streams_.end())
      send(id, found->second, sse_heartbeat());
  }
}

void EventStreams::write_status(nlohmann::json& events) const {
  events["streams"] = nlohmann::json{{"open", streams_.size()},
                                     {"max_clients", settings_.max_clients},
                                     {"opened", stats_.opened},
                                     {"refused_full", stats_.refused_full},
                                     {"cut_slow", stats_.cut_slow}};
}

void EventStreams::write_metrics(core::MetricsPage& page) const {
  page.gauge("unshelver_event_streams_open", "Open GET /api/events/stream answers.", {},
             static_cast<double>(streams_.size()));
  page.counter("unshelver_event_streams_refused_total",
               "Event streams answered 503 because events.stream_max_clients were open.", {},
               static_cast<double>(stats_.refused_full));
  page.counter(
      "unshelver_event_streams_cut_total",
      "Event streams disconnected because their reader fell more than events.stream_buffer_bytes behind.", {},
      static_cast<double>(stats_.cut_slow));
}

void EventStreams::end_all() {
  ended_ = true;
  heartbeat_timer_.stop();
  std::map<std::uint64_t, Stream> ending = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : ending) stream.out.end();
}

}  // namespace unshelver::web
