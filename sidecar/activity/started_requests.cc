#include "activity/started_requests.h"

namespace unshelver::core {

StartedRequests::StartedRequests(std::chrono::milliseconds lifetime, std::size_t capacity)
    : lifetime_(lifetime), capacity_(capacity == 0 ? 1 : capacity) {}

void StartedRequests::started(TimePoint at) {
  if (open_.size() >= capacity_) {
    open_.pop_front();
    ++forgotten_;
  }
  open_.push_back(at);
}

void StartedRequests::ended() {
  if (!open_.empty()) open_.pop_front();
}

int StartedRequests::open(TimePoint now) {
  while (!open_.empty() && now - open_.front() >= lifetime_) {
    open_.pop_front();
    ++forgotten_;
  }
  return static_cast<int>(open_.size());
}

}  // namespace unshelver::core
