// ExoscaleProvider: a backend VM on Exoscale, driven through its API v2 (contract §5).
//
// observe() reads GET /v2/instance/{id} and maps its `state` (exoscale/exoscale.h); a settled
// observation of a backend whose zone has several is served from the zone's shared listing.
// wake() sends PUT :start with the body `{}` the API requires, sleep() PUT :stop with none; each
// answers with an Operation. An operation that failed at once refuses the action with the API's
// reason and message. A pending one is polled at GET /v2/operation/{id} with each observation (so
// at the reconciler's poll interval) until it succeeds, fails, times out at Exoscale, or outlives
// the backend's wake timeout; a failed start is reported on the observation that still shows the
// instance stopped, with the operation's words, as Nova's "No valid host" is.
//
// Transient errors (network, 5xx, 429) are retried by the client; what remains is an observe
// error, or a "busy" action so that the reconciler observes before it decides again. A 403 means
// the credentials were refused: it is said so, visibly, and never retried blindly.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "backend/cloud_provider.h"
#include "backend/first_read.h"
#include "backend/shared_listing.h"
#include "config/config.h"
#include "exoscale/exoscale.h"
#include "exoscale/exoscale_client.h"
#include "uv/timer.h"

namespace unshelver::providers {

// Bounds and reuse of a zone's shared instance listing.
struct InstanceListingSettings {
  // How long a listing serves settled observations: half the settled observation period.
  std::chrono::milliseconds max_age{30'000};
  std::size_t max_instances = core::exoscale::kMaxListedInstances;
  // The listing's answer, every instance in one (list-instances has no pages): room for 10,000
  // instances of about 1.6 KB each, an estimate of an item's size with its templates, security
  // groups and labels. A larger answer fails, and each backend reads its own instance.
  std::size_t max_response_bytes = std::size_t{16} * 1024 * 1024;
};

// ExoscaleInstanceListing: one GET /v2/instance on the zone's client is the shared listing of the
// backends with the same API key and zone (backend/shared_listing.h says when it serves a lookup).
// The list items carry every field an observation needs (id, state, public-ip: contract §5,
// list-instances), so a listed instance is observed from the listing alone.
class ExoscaleInstanceListing final : public core::SharedListing<core::exoscale::Instance> {
 public:
  // `client` is this listing's own client for the zone (the providers' clients are theirs).
  ExoscaleInstanceListing(uv_loop_t* loop, std::unique_ptr<ExoscaleClient> client,
                          InstanceListingSettings settings);
  ~ExoscaleInstanceListing() override;

 private:
  void start_fetch() override;
  void cancel_fetch() override;
  void defer_once(std::function<void()> call) override;

  std::unique_ptr<ExoscaleClient> client_;
  InstanceListingSettings settings_;
  io::Timer deferred_;
  ExoscaleClient::RequestId request_ = 0;
};

class ExoscaleProvider final : public CloudProvider {
 public:
  // `listing` (may be null) serves settled observations when several backends share the zone.
  ExoscaleProvider(std::unique_ptr<ExoscaleClient> client, const core::BackendConfig& backend,
                   ExoscaleInstanceListing* listing = nullptr);
  ~ExoscaleProvider() override;

  std::string_view kind() const override { return "exoscale"; }
  void observe(ObserveMode mode, ObserveCallback on_done) override;
  void wake(ActionCallback on_done) override;
  void sleep(ActionCallback on_done) override;
  void close() override;

  // Finds the instance (by id, or by exact name in the zone) and reports what is wrong, for a
  // clear error at start-up. `definitive` is true when retrying cannot help (no such instance,
  // several with the name); false when the API could not be asked or refused the credentials
  // (a key can be repaired while Unshelver runs, and the status page shows why meanwhile).
  void resolve(std::function<void(Status found, bool definitive)> on_done);

 private:
  using InstanceCallback = std::function<void(Result<core::exoscale::Instance> instance, bool definitive)>;
  void with_instance_id(std::function<void(Status, bool definitive)> then);
  void read_instance(InstanceCallback on_done);
  void observe_current(ObserveCallback on_done);
  // The observation of the instance as read or listed, with a pending operation of ours read.
  void report(const core::exoscale::Instance& instance, ObserveCallback on_done);
  void check_operation(core::CloudObservation observation, ObserveCallback on_done);
  void apply_failure(core::CloudObservation& observation);
  void act(bool wake, ActionCallback on_done);
  void send_action(const std::string& name, ActionCallback on_done);
  core::CloudObservation to_observation(const core::exoscale::Instance& instance) const;
  ExoscaleClient::RequestId call(std::string method, std::string path, std::string body,
                                 io::ResponseCallback on_done);
  // The message of a failed call: the API's error text with its status, or the transport error.
  static std::string describe(const io::ClientResponse& response);
  static bool is_definitive(const io::ClientResponse& response);

  std::unique_ptr<ExoscaleClient> client_;
  core::BackendConfig backend_;
  std::string instance_id_;
  // The operation of our last action, polled until it ends.
  struct PendingOperation {
    std::string id;
    std::string action;   // "start" or "stop"
    std::string failure;  // set once it failed: reported on the next observation that fits
    std::chrono::steady_clock::time_point since;
    int read_errors = 0;
  };
  std::optional<PendingOperation> operation_;
  // The instance as last read; used once, to choose the next action without reading it again.
  std::optional<core::exoscale::Instance> last_instance_;
  std::set<ExoscaleClient::RequestId> in_flight_;
  // resolve()'s read, which the first observation waits for rather than reading again.
  core::FirstRead<core::exoscale::Instance> first_read_;
  ExoscaleInstanceListing* listing_;
  ExoscaleInstanceListing::LookupId lookup_ = 0;
  // When the last action was sent: a listing requested before it may not show its effect.
  core::MonoTime last_action_at_{};
  bool closed_ = false;
};

}  // namespace unshelver::providers
