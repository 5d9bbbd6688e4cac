// HoldQueue: the gate's held requests, per backend, with their bounds.
//
// A held request is a forward_auth sub-request from Caddy that Unshelver has not answered yet; the
// client's own request waits in Caddy meanwhile, body untouched. Each backend's lane holds at most
// `max_requests`, each for at most `max_duration`; an expired hold is answered by the caller's
// `expired` function. A client that leaves (Caddy closes the sub-request's connection when its
// client disconnects) is forgotten at once through Responder::on_gone, so nothing is left behind.
//
// Release and fail answer every request of a lane at once, oldest first. The queue owns one timer,
// running only while something is held.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "uv/http_server.h"
#include "uv/timer.h"

namespace unshelver::web {

class HoldQueue {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    std::chrono::milliseconds max_duration{540'000};
    int max_requests = 256;
  };
  struct Stats {
    std::uint64_t held_total = 0;               // ever held
    std::uint64_t released = 0;                 // let through once the backend was ready
    std::uint64_t failed = 0;                   // answered with the backend's error
    std::uint64_t expired = 0;                  // answered at max_duration
    std::uint64_t gone = 0;                     // the client left while held
    std::uint64_t refused = 0;                  // not held: the lane was full
    std::chrono::milliseconds longest_hold{0};  // of the holds that ended
  };
  // The answer to a hold that expired, by backend name.
  using ExpiredAnswer = std::function<io::HttpResponse(const std::string& backend)>;

  // `on_change` runs after anything that stats() or held() show changed; `on_tick` every sweep
  // (kSweepInterval) while something is held.
  HoldQueue(uv_loop_t* loop, ExpiredAnswer expired, std::function<void()> on_change,
            std::function<void()> on_tick);
  ~HoldQueue();
  HoldQueue(const HoldQueue&) = delete;
  HoldQueue& operator=(const HoldQueue&) = delete;

  void set_limits(const std::string& backend, Limits limits);
  // Holds the request; false (and nothing held, counted as refused) when the lane is full.
  bool hold(const std::string& backend, const io::Responder& responder);
  // Counts a request that was refused because the lane was full when the gate decided.
  void refused(const std::string& backend);
  // Answers every request held for `backend` with `answer()`, oldest first.
  void release(const std::string& backend, const std::function<io::HttpResponse()>& answer);
  void fail(const std::string& backend, const std::function<io::HttpResponse()>& answer);
  // Closes every held connection without an answer (so that Caddy asks the next Unshelver) and
  // stops the timer. Nothing is held afterwards; hold() still works.
  void close();

  int held(const std::string& backend) const;
  bool any_held() const;
  // The oldest hold now under way, 0 when none.
  std::chrono::milliseconds oldest(const std::string& backend) const;
  const Stats& stats(const std::string& backend) const;

 private:
  struct Held {
    io::Responder responder;
    Clock::time_point since;
  };
  struct Lane {
    Limits limits;
    std::map<std::uint64_t, Held> held;  // by id, which grows with time: oldest first
    Stats stats;
  };
  enum class End { kReleased, kFailed, kExpired, kGone };
  void end(Lane& lane, const Held& held, End how, Clock::time_point now);
  void answer_all(const std::string& backend, const std::function<io::HttpResponse()>& answer, End how);
  void sweep();
  void sync_timer();
  void changed();

  ExpiredAnswer expired_;
  std::function<void()> on_change_;
  std::function<void()> on_tick_;
  std::map<std::string, Lane> lanes_;
  std::uint64_t next_id_ = 0;
  io::Timer timer_;
  bool timer_running_ = false;
};

}  // namespace unshelver::web
