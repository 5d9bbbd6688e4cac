// CloudProvider: how a backend's VM is observed, woken and put to sleep.
//
// Every call is asynchronous and completes exactly once, on the loop, never from inside the call
// itself (so a caller may hold locks or iterate while calling), unless close() came first.
// wake() and sleep() only *request* the change and report whether the cloud accepted it, is busy
// with another task, or refused; the reconciler then observes until the cloud confirms. Both are idempotent:
// waking a running VM or putting a stopped one to sleep succeeds without doing anything.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "backend/reconciler.h"
#include "base/result.h"

namespace unshelver::providers {

using ObserveCallback = std::function<void(Result<core::CloudObservation> observation)>;

// What an observation is for (BackendReconciler::observation_settled() decides). kSettled: nothing
// is expected to change (a backend asleep, ready or in error), so a view of the VM up to a bounded
// age, shared by the backends on one cloud session, will do; it is never older than this
// provider's last wake or sleep request. kCurrent: a change is expected or being checked (a wake or
// sleep under way, the first look at start-up), so the provider reads the VM itself. Providers
// without a shared view treat both alike.
enum class ObserveMode { kCurrent, kSettled };

// How a wake or sleep request was answered (see core::ActionOutcome).
struct ActionResult {
  core::ActionOutcome outcome = core::ActionOutcome::kAccepted;
  std::string message;  // for kBusy and kRefused: the cloud's own words (never a secret)

  static ActionResult accepted(std::string note = {}) {
    return {core::ActionOutcome::kAccepted, std::move(note)};
  }
  static ActionResult busy(std::string why) { return {core::ActionOutcome::kBusy, std::move(why)}; }
  static ActionResult refused(std::string why) { return {core::ActionOutcome::kRefused, std::move(why)}; }
};
using ActionCallback = std::function<void(ActionResult result)>;

class CloudProvider {
 public:
  virtual ~CloudProvider() = default;
  virtual std::string_view kind() const = 0;
  virtual void observe(ObserveMode mode, ObserveCallback on_done) = 0;
  virtual void wake(ActionCallback on_done) = 0;
  virtual void sleep(ActionCallback on_done) = 0;
  // Cancels whatever is pending (no callback runs afterwards) and releases every handle.
  virtual void close() = 0;
};

}  // namespace unshelver::providers
