#include "web/hold_queue.h"

#include <algorithm>
#include <vector>

namespace unshelver::web {

namespace {
// Expiry is checked this often while something is held: fine enough for holds of seconds, rare
// enough to cost nothing.
constexpr std::chrono::milliseconds kSweepInterval{100};
const HoldQueue::Stats kNoStats{};
}  // namespace

HoldQueue::HoldQueue(uv_loop_t* loop, ExpiredAnswer expired, std::function<void()> on_change,
                     std::function<void()> on_tick)
    : expired_(std::move(expired)),
      on_change_(std::move(on_change)),
      on_tick_(std::move(on_tick)),
      timer_(loop) {}

void HoldQueue::changed() {
  if (on_change_) on_change_();
}

HoldQueue::~HoldQueue() {
  close();
}

void HoldQueue::set_limits(const std::string& backend, Limits limits) {
  lanes_[backend].limits = limits;
}

bool HoldQueue::hold(const std::string& backend, const io::Responder& responder) {
  Lane& lane = lanes_[backend];
  if (static_cast<int>(lane.held.size()) >= lane.limits.max_requests) {
    refused(backend);
    return false;
  }
  const std::uint64_t id = ++next_id_;
  lane.held.emplace(id, Held{responder, Clock::now()});
  ++lane.stats.held_total;
  // The lane is found again by name: lanes are never erased, but the map may have grown.
  responder.on_gone([this, backend, id] {
    Lane& owner = lanes_[backend];
    auto found = owner.held.find(id);
    if (found == owner.held.end()) return;
    const Held gone = found->second;
    owner.held.erase(found);
    end(owner, gone, End::kGone, Clock::now());
    sync_timer();
    changed();
  });
  sync_timer();
  changed();
  return true;
}

void HoldQueue::refused(const std::string& backend) {
  ++lanes_[backend].stats.refused;
  changed();
}

void HoldQueue::end(Lane& lane, const Held& held, End how, Clock::time_point now) {
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - held.since);
  lane.stats.longest_hold = std::max(lane.stats.longest_hold, waited);
  switch (how) {
    case End::kReleased: ++lane.stats.released; break;
    case End::kFailed: ++lane.stats.failed; break;
    case End::kExpired: ++lane.stats.expired; break;
    case End::kGone: ++lane.stats.gone; break;
  }
}

void HoldQueue::answer_all(const std::string& backend, const std::function<io::HttpResponse()>& answer,
                           End how) {
  auto lane = lanes_.find(backend);
  if (lane == lanes_.end() || lane->second.held.empty()) return;
  // Taken out first: answering may close a connection, whose on_gone must then find nothing.
  std::map<std::uint64_t, Held> answered;
  answered.swap(lane->second.held);
  const Clock::time_point now = Clock::now();
  for (auto& [id, held] : answered) {
    end(lane->second, held, how, now);
    held.responder.respond(answer());
  }
  sync_timer();
  changed();
}

void HoldQueue::release(const std::string& backend, const std::function<io::HttpResponse()>& answer) {
  answer_all(backend, answer, End::kReleased);
}

void HoldQueue::fail(const std::string& backend, const std::function<io::HttpResponse()>& answer) {
  answer_all(backend, answer, End::kFailed);
}

void HoldQueue::close() {
  std::vector<io::Responder> dropped;
  for (auto& [name, lane] : lanes_) {
    for (auto& [id, held] : lane.held) dropped.push_back(held.responder);
    lane.held.clear();
  }
  for (const io::Responder& responder : dropped) responder.drop();
  sync_timer();
  if (!dropped.empty()) changed();
}

void HoldQueue::sweep() {
  const Clock::time_point now = Clock::now();
  bool any_expired = false;
  for (auto& [name, lane] : lanes_) {
    // Every hold of a lane has the same limit, so the expired ones are the oldest.
    while (!lane.held.empty() && now - lane.held.begin()->second.since >= lane.limits.max_duration) {
      const Held held = lane.held.begin()->second;
      lane.held.erase(lane.held.begin());
      end(lane, held, End::kExpired, now);
      held.responder.respond(expired_(name));
      any_expired = true;
    }
  }
  sync_timer();
  if (any_expired) changed();
  if (on_tick_) on_tick_();
}

void HoldQueue::sync_timer() {
  const bool any = any_held();
  if (any && !timer_running_) {
    timer_running_ = true;
    timer_.start_repeating(kSweepInterval, [this] { sweep(); });
  } else if (!any && timer_running_) {
    timer_running_ = false;
    timer_.stop();
  }
}

bool HoldQueue::any_held() const {
  return std::any_of(lanes_.begin(), lanes_.end(),
                     [](const auto& lane) { return !lane.second.held.empty(); });
}

int HoldQueue::held(const std::string& backend) const {
  auto lane = lanes_.find(backend);
  return lane == lanes_.end() ? 0 : static_cast<int>(lane->second.held.size());
}

std::chrono::milliseconds HoldQueue::oldest(const std::string& backend) const {
  auto lane = lanes_.find(backend);
  if (lane == lanes_.end() || lane->second.held.empty()) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                               lane->second.held.begin()->second.since);
}

const HoldQueue::Stats& HoldQueue::stats(const std::string& backend) const {
  auto lane = lanes_.find(backend);
  return lane == lanes_.end() ? kNoStats : lane->second.stats;
}

}  // namespace unshelver::web
