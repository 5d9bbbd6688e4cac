// CloudProvider: how a backend's VM is observed, woken and put to sleep.
//
// Every call is asynchronous and completes exactly once, on the loop, never from inside the call
// itself (so a caller may hold locks or iterate while calling), unless close() came first.
// wake() and sleep() only *request* the change and report whether the cloud accepted it; the
// reconciler then observes until the cloud confirms. Both are idempotent: waking a running VM or
// putting a stopped one to sleep succeeds without doing anything.
#pragma once

#include <functional>
#include <string_view>

#include "core/reconciler.h"
#include "core/result.h"

namespace unshelver::providers {

using ObserveCallback = std::function<void(Result<core::CloudObservation> observation)>;
using ActionCallback = std::function<void(Status accepted)>;

class CloudProvider {
 public:
  virtual ~CloudProvider() = default;
  virtual std::string_view kind() const = 0;
  virtual void observe(ObserveCallback on_done) = 0;
  virtual void wake(ActionCallback on_done) = 0;
  virtual void sleep(ActionCallback on_done) = 0;
  // Cancels whatever is pending (no callback runs afterwards) and releases every handle.
  virtual void close() = 0;
};

}  // namespace unshelver::providers
