// FirstRead: at start-up a provider reads its VM once, not twice (issue 20).
//
// resolve() reads the VM to check the configuration (a missing or ambiguous VM stops the daemon),
// and the reconciler's first observation is issued in the same loop turn: without this, each
// backend read its VM twice at once (Exoscale with instance names: two full listings per backend,
// 200 at once for 100 backends). An observation that arrives while the resolving read runs waits
// for that read's answer instead of making its own; the answer is as fresh as its own would be,
// since both were asked at the same moment. Cloud-neutral and free of I/O.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "base/result.h"

namespace unshelver::core {

template <typename Item>
class FirstRead {
 public:
  using Callback = std::function<void(const Result<Item>& item, bool definitive)>;

  // The resolving read has been sent.
  void begin() { running_ = true; }
  // While the resolving read runs, `on_done` waits for its answer and true is returned; false
  // otherwise (the caller reads the VM itself).
  bool join(Callback on_done) {
    if (!running_) return false;
    waiting_.push_back(std::move(on_done));
    return true;
  }
  // The resolving read's answer, passed on to every observation that waited for it.
  void finish(const Result<Item>& item, bool definitive) {
    running_ = false;
    std::vector<Callback> waiting = std::exchange(waiting_, {});
    for (const Callback& on_done : waiting) on_done(item, definitive);
  }
  // Nobody waits any more (the provider closed); no callback runs afterwards.
  void cancel() {
    running_ = false;
    waiting_.clear();
  }
  bool running() const { return running_; }

 private:
  bool running_ = false;
  std::vector<Callback> waiting_;
};

}  // namespace unshelver::core
