// GET /api/events/stream: the admin's live feed of events (web/event_stream.h), gated exactly like
// GET /api/events (the control token as a bearer token, or the control session cookie).
#include <nlohmann/json.hpp>

#include "web/event_stream.h"
#include "web/event_stream_format.h"
#include "web/routes.h"

namespace unshelver::web {

void WebApp::event_stream(const io::HttpRequest& request, const Caller& caller,
                          const io::Responder& responder) {
  auto respond = [this, responder](io::HttpResponse response) {
    add_security_headers(response);
    response.set_header("Cache-Control", "no-store");
    ++requests_[{"events_stream", response.status}];
    responder.respond(std::move(response));
  };
  if (request.method != "GET") {
    return respond(io::HttpResponse::text(405, "Method Not Allowed\n").set_header("Allow", "GET"));
  }
  if (!caller.admin()) return respond(unauthorized(request, caller));
  EventStreams* streams = controller_.event_streams();
  if (streams == nullptr) return respond(io::HttpResponse::json(404, "{\"error\":\"no event stream\"}\n"));
  std::optional<std::uint64_t> after;
  if (const std::string* last = request.header("Last-Event-ID"); last != nullptr && !last->empty()) {
    after = parse_last_event_id(*last);
    if (!after) {
      return respond(io::HttpResponse::json(
          400, "{\"error\":\"Last-Event-ID must be the seq of an event (a whole number)\"}\n"));
    }
  }
  if (streams->refuse_when_full()) {
    io::HttpResponse busy = io::HttpResponse::json(
        503, nlohmann::json{{"error", "too many event streams are open (events.stream_max_clients: " +
                                          std::to_string(streams->settings().max_clients) + ")"}}
                     .dump() +
                 "\n");
    busy.set_header("Retry-After", "10");
    return respond(std::move(busy));
  }
  io::HttpResponse head;
  head.status = 200;
  head.headers.emplace_back("Content-Type", "text/event-stream; charset=utf-8");
  head.headers.emplace_back("Cache-Control", "no-store");
  // nginx and some other proxies buffer answers unless told not to.
  head.headers.emplace_back("X-Accel-Buffering", "no");
  add_security_headers(head);
  ++requests_[{"events_stream", 200}];
  streams->open(responder, std::move(head), after);
}

}  // namespace unshelver::web
