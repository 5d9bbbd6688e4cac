// RecordedFence: with several controllers, a cloud action leaves only once it is fenced in etcd
// (ha::Coordinator) *and* the events that decided it are on disk here.
//
// The order matters for the audit trail. Fenced first: a controller that dies before etcd applied
// the write has acted nowhere, and its successor decides afresh. Then the events: a controller
// that dies after the cloud received the action has its event on disk already, so no action is
// ever missing from the trail. (What remains: a controller that dies in the few milliseconds
// after its event reached the disk and before etcd applied the write has an event for an action
// its successor then takes and records again.) The wait for the disk is short and bounded: a
// journal that cannot write (a full disk) must not keep a VM from waking, and the event is still
// written once the disk allows.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "backend/driver.h"
#include "events/recorder.h"

namespace unshelver::app {

class RecordedFence final : public ActionFence {
 public:
  RecordedFence(ActionFence& fence, EventRecorder& events) : fence_(fence), events_(events) {}

  bool may_decide(const std::string& backend) override { return fence_.may_decide(backend); }
  void confirm(const std::string& backend, std::function<void(Status)> done) override {
    fence_.confirm(backend, std::move(done));
  }

  void authorize(const std::string& backend, std::function<void(Status)> done) override {
    fence_.authorize(backend, [this, done = std::move(done)](const Status& fenced) mutable {
      if (!fenced) {
        done(fenced);
        return;
      }
      events_.when_written(kEventWriteWait, [done = std::move(done)] { done(ok_status()); });
    });
  }

 private:
  // Well within the lease's safety margin (core::LeaseClock: at least 2 s), which the coordinator
  // checked when etcd answered.
  static constexpr std::chrono::milliseconds kEventWriteWait{500};
  ActionFence& fence_;
  EventRecorder& events_;
};

}  // namespace unshelver::app
