#include "exoscale/exoscale_provider.h"

#include <spdlog/spdlog.h>

#include "base/text.h"

namespace unshelver::providers {

namespace exo = core::exoscale;

namespace {
using Kind = core::CloudObservation::Kind;

int default_port(const core::BackendConfig& backend) {
  if (backend.port > 0) return backend.port;
  return backend.url_scheme == "https" ? 443 : 80;
}

// egoscale gives up polling an operation after five consecutive errors.
constexpr int kOperationReadErrorsAllowed = 5;
}  // namespace

ExoscaleInstanceListing::ExoscaleInstanceListing(uv_loop_t* loop, std::unique_ptr<ExoscaleClient> client,
                                                 InstanceListingSettings settings)
    : SharedListing(settings.max_age), client_(std::move(client)), settings_(settings), deferred_(loop) {}

ExoscaleInstanceListing::~ExoscaleInstanceListing() {
  close();
  client_->close();
}

void ExoscaleInstanceListing::defer_once(std::function<void()> call) {
  deferred_.start(std::chrono::milliseconds(0), std::move(call));
}

void ExoscaleInstanceListing::cancel_fetch() {
  if (request_ != 0) client_->cancel(request_);
  request_ = 0;
}

void ExoscaleInstanceListing::start_fetch() {
  request_ = client_->request("GET", "/instance", "", [this](const io::ClientResponse& response) {
    request_ = 0;
    if (closed()) return;
    if (!response.is_2xx()) {
      spdlog::debug(
          "exoscale: cannot list the instances: {}",
          response.transport_ok() ? "Exoscale answered " + std::to_string(response.status) : response.error);
      finish_fetch(std::nullopt);
      return;
    }
    auto listed = exo::parse_instance_list(response.body, settings_.max_instances);
    if (!listed) {
      // Every lookup falls back to reading its own instance.
      spdlog::warn("exoscale: cannot list the instances: {}", listed.error().message);
      finish_fetch(std::nullopt);
      return;
    }
    Items items;
    for (exo::Instance& instance : *listed) {
      std::string id = instance.id;
      items.insert_or_assign(std::move(id), std::move(instance));
    }
    finish_fetch(std::move(items));
  });
}

ExoscaleProvider::ExoscaleProvider(std::unique_ptr<ExoscaleClient> client, const core::BackendConfig& backend,
                                   ExoscaleInstanceListing* listing)
    : client_(std::move(client)), backend_(backend), instance_id_(backend.instance_id), listing_(listing) {
  if (listing_ != nullptr) listing_->join();
}

ExoscaleProvider::~ExoscaleProvider() {
  close();
}

void ExoscaleProvider::close() {
  if (closed_) return;
  closed_ = true;
  for (ExoscaleClient::RequestId id : in_flight_) client_->cancel(id);
  in_flight_.clear();
  first_read_.cancel();
  client_->close();
  if (listing_ != nullptr) {
    if (lookup_ != 0) listing_->cancel(lookup_);
    lookup_ = 0;
    listing_->leave();
  }
}

std::string ExoscaleProvider::describe(const io::ClientResponse& response) {
  if (!response.transport_ok()) return response.error;
  const std::string message = exo::error_message_of(response.body);
  std::string answered =
      "Exoscale answered " + std::to_string(response.status) + (message.empty() ? "" : ": " + message);
  if (response.status == 401 || response.status == 403) {
    return "Exoscale refused the API credentials (" + answered +
           "); check exoscale.api_key and exoscale.api_secret and the key's role";
  }
  return answered;
}

bool ExoscaleProvider::is_definitive(const io::ClientResponse& response) {
  return response.transport_ok() && response.status >= 400 && response.status < 500 &&
         response.status != 401 && response.status != 403 && response.status != 408 && response.status != 429;
}

ExoscaleClient::RequestId ExoscaleProvider::call(std::string method, std::string path, std::string body,
                                                 io::ResponseCallback on_done) {
  // The id is known only after request() returns, but the callback never runs inside request(),
  // so the shared slot is filled in time.
  auto slot = std::make_shared<ExoscaleClient::RequestId>(0);
  const auto id = client_->request(std::move(method), std::move(path), std::move(body),
                                   [this, slot, on_done = std::move(on_done)](io::ClientResponse response) {
                                     in_flight_.erase(*slot);
                                     if (closed_) return;
                                     on_done(std::move(response));
                                   });
  *slot = id;
  in_flight_.insert(id);
  return id;
}

void ExoscaleProvider::with_instance_id(std::function<void(Status, bool)> then) {
  if (!instance_id_.empty()) {
    then(ok_status(), false);
    return;
  }
  call("GET", "/instance", "", [this, then = std::move(then)](const io::ClientResponse& response) {
    if (!response.is_2xx()) {
      then(Error{"cannot list the instances to find \"" + backend_.instance_name +
                 "\": " + describe(response)},
           is_definitive(response));
      return;
    }
    auto id = exo::find_instance_id(response.body, backend_.instance_name);
    if (!id) {
      then(id.error(), true);
      return;
    }
    instance_id_ = *id;
    spdlog::info("[{}] Exoscale instance \"{}\" is {}", backend_.name, backend_.instance_name, instance_id_);
    then(ok_status(), false);
  });
}

void ExoscaleProvider::resolve(std::function<void(Status found, bool definitive)> on_done) {
  first_read_.begin();
  read_instance([this, on_done = std::move(on_done)](const Result<exo::Instance>& instance, bool definitive) {
    on_done(instance ? ok_status() : Status(instance.error()), definitive);
    first_read_.finish(instance, definitive);
  });
}

void ExoscaleProvider::read_instance(InstanceCallback on_done) {
  with_instance_id([this, on_done = std::move(on_done)](const Status& found, bool definitive) {
    if (!found) {
      on_done(found.error(), definitive);
      return;
    }
    call("GET", "/instance/" + core::percent_encode(instance_id_), "",
         [this, on_done](const io::ClientResponse& response) {
           if (response.transport_ok() && response.status == 404) {
             // An instance found by name may have been re-created: look it up afresh next time.
             const std::string missing = instance_id_;
             if (backend_.instance_id.empty()) instance_id_.clear();
             on_done(Error{"the instance " + missing + " no longer exists (Exoscale answered 404)"}, true);
             return;
           }
           if (!response.is_2xx()) {
             on_done(Error{"cannot read the instance: " + describe(response)}, is_definitive(response));
             return;
           }
           auto instance = exo::parse_instance(response.body);
           if (instance) last_instance_ = *instance;
           on_done(std::move(instance), false);
         });
  });
}

core::CloudObservation ExoscaleProvider::to_observation(const exo::Instance& instance) const {
  core::CloudObservation observation = exo::observe(instance);
  if (backend_.upstream.empty())
    observation.upstream = exo::upstream_address(instance, default_port(backend_));
  return observation;
}

void ExoscaleProvider::observe(ObserveMode mode, ObserveCallback on_done) {
  // A settled observation of an instance we know is served from the zone's listing; while an
  // operation of ours is pending, the instance is read with it, as is every fast poll.
  const bool listed = mode == ObserveMode::kSettled && listing_ != nullptr && listing_->shared() &&
                      !operation_ && !instance_id_.empty();
  if (!listed) {
    observe_current(std::move(on_done));
    return;
  }
  lookup_ =
      listing_->find(instance_id_, last_action_at_,
                     [this, on_done = std::move(on_done)](std::optional<exo::Instance> instance) mutable {
                       lookup_ = 0;
                       if (closed_) return;
                       if (!instance) {
                         observe_current(std::move(on_done));
                         return;
                       }
                       last_instance_ = *instance;
                       report(*instance, std::move(on_done));
                     });
}

void ExoscaleProvider::observe_current(ObserveCallback on_done) {
  auto reported = [this, on_done = std::move(on_done)](const Result<exo::Instance>& instance, bool) {
    if (closed_) return;
    if (!instance) {
      on_done(instance.error());
      return;
    }
    report(*instance, on_done);
  };
  if (first_read_.join(reported)) return;
  read_instance(std::move(reported));
}

void ExoscaleProvider::report(const exo::Instance& instance, ObserveCallback on_done) {
  core::CloudObservation observation = to_observation(instance);
  if (operation_) {
    // The instance already where the action leads: the operation has nothing more to say. (A
    // starting instance has not arrived: a start can still fail and leave it stopped.)
    const bool arrived = operation_->action == "start" ? observation.kind == Kind::kRunning
                                                       : observation.kind == Kind::kStopped;
    if (arrived) operation_.reset();
  }
  if (operation_ && operation_->failure.empty()) {
    check_operation(std::move(observation), std::move(on_done));
    return;
  }
  apply_failure(observation);
  on_done(std::move(observation));
}

// Reads the pending operation of our last action, and gives up on it once it outlives the wake
// timeout or cannot be read several times in a row (the observation then decides alone).
void ExoscaleProvider::check_operation(core::CloudObservation observation, ObserveCallback on_done) {
  const auto age = std::chrono::steady_clock::now() - operation_->since;
  if (age > backend_.unshelve_timeout) {
    spdlog::warn("[{}] the {} operation {} is still pending after {}; no longer polled", backend_.name,
                 operation_->action, operation_->id,
                 core::human_duration(std::chrono::duration_cast<std::chrono::seconds>(age)));
    operation_.reset();
    on_done(std::move(observation));
    return;
  }
  auto shared = std::make_shared<std::pair<core::CloudObservation, ObserveCallback>>(std::move(observation),
                                                                                     std::move(on_done));
  call("GET", "/operation/" + core::percent_encode(operation_->id), "",
       [this, shared](const io::ClientResponse& response) {
         if (operation_) {
           auto operation = response.is_2xx() ? exo::parse_operation(response.body)
                                              : Result<exo::Operation>(Error{describe(response)});
           if (!operation) {
             spdlog::debug("[{}] cannot read the operation: {}", backend_.name, operation.error().message);
             if (++operation_->read_errors >= kOperationReadErrorsAllowed) operation_.reset();
           } else if (operation->succeeded()) {
             spdlog::info("[{}] Exoscale reports the {} operation done", backend_.name, operation_->action);
             operation_.reset();
           } else if (!operation->pending()) {
             operation_->failure = exo::operation_failure(*operation, operation_->action);
             spdlog::warn("[{}] Exoscale reports: {}", backend_.name, operation_->failure);
           } else {
             operation_->read_errors = 0;
           }
         }
         apply_failure(shared->first);
         shared->second(std::move(shared->first));
       });
}

// A failed start shows on an instance that is stopped (again), as the reason the wake failed; a
// failed stop on one that still runs, as an error (the reconciler would otherwise wait for a stop
// that is not coming). Until the instance shows that, the failure is kept for a later observation.
void ExoscaleProvider::apply_failure(core::CloudObservation& observation) {
  if (!operation_ || operation_->failure.empty()) return;
  if (operation_->action == "start" && observation.kind == Kind::kStopped) {
    observation.detail = operation_->failure;
    operation_.reset();
  } else if (operation_->action == "stop" && observation.kind == Kind::kRunning) {
    observation.kind = Kind::kError;
    observation.detail = operation_->failure;
    operation_.reset();
  }
}

void ExoscaleProvider::wake(ActionCallback on_done) {
  act(true, std::move(on_done));
}
void ExoscaleProvider::sleep(ActionCallback on_done) {
  act(false, std::move(on_done));
}

void ExoscaleProvider::act(bool wake, ActionCallback on_done) {
  // The last read decides at once when it calls for an action, as for Nova: a stale view costs
  // nothing, since the API refuses an action that does not fit the state and the reconciler then
  // observes afresh. A view that says "nothing to do" or "busy" is read again before it is believed.
  if (last_instance_) {
    auto plan = wake ? exo::wake_plan(*last_instance_) : exo::sleep_plan(*last_instance_);
    last_instance_.reset();
    if (plan && plan->kind == exo::ActionPlan::Kind::kSend) {
      send_action(plan->name, std::move(on_done));
      return;
    }
  }
  read_instance([this, wake, on_done = std::move(on_done)](Result<exo::Instance> instance, bool) {
    if (!instance) {
      // Unknown outcome: the reconciler observes again (and keeps the error visible).
      on_done(ActionResult::busy(instance.error().message));
      return;
    }
    auto plan = wake ? exo::wake_plan(*instance) : exo::sleep_plan(*instance);
    if (!plan) {
      on_done(ActionResult::refused(plan.error().message));
      return;
    }
    switch (plan->kind) {
      case exo::ActionPlan::Kind::kAlreadyThere:
        on_done(
            ActionResult::accepted("already " + std::string(wake ? "awake" : "asleep") + " or on its way"));
        return;
      case exo::ActionPlan::Kind::kBusy: on_done(ActionResult::busy(plan->reason)); return;
      case exo::ActionPlan::Kind::kSend: send_action(plan->name, on_done); return;
    }
  });
}

void ExoscaleProvider::send_action(const std::string& name, ActionCallback on_done) {
  // start requires a JSON body (`{}` for a normal boot); stop takes none.
  std::string body = name == "start" ? "{}" : "";
  operation_.reset();
  last_instance_.reset();
  last_action_at_ = std::chrono::steady_clock::now();
  call("PUT", "/instance/" + core::percent_encode(instance_id_) + ":" + name, std::move(body),
       [this, name, on_done = std::move(on_done)](const io::ClientResponse& response) {
         if (response.is_2xx()) {
           auto operation = exo::parse_operation(response.body);
           if (!operation) {
             // Accepted, but unreadable: the instance's state tells the rest.
             spdlog::warn("[{}] Exoscale accepted {}: {}", backend_.name, name, operation.error().message);
             on_done(ActionResult::accepted());
             return;
           }
           if (const std::string failure = exo::operation_failure(*operation, name); !failure.empty()) {
             on_done(ActionResult::refused(failure));
             return;
           }
           spdlog::info("[{}] Exoscale accepted {} (operation {}, {})", backend_.name, name, operation->id,
                        operation->state);
           if (operation->pending()) {
             operation_ = PendingOperation{operation->id, name, "", std::chrono::steady_clock::now(), 0};
           }
           on_done(ActionResult::accepted());
           return;
         }
         if (response.transport_ok() && response.status == 409) {
           on_done(ActionResult::busy(name + ": " + describe(response)));
           return;
         }
         if (!response.transport_ok() || response.status >= 500 || response.status == 429) {
           // The client has retried already; whether Exoscale acted is unknown, so observe.
           on_done(ActionResult::busy(name + ": " + describe(response)));
           return;
         }
         on_done(ActionResult::refused(name + ": " + describe(response)));
       });
}

}  // namespace unshelver::providers
