// ExoscaleProvider: a backend VM on Exoscale, driven through its API v2 (contract §5).
//
// observe() reads GET /v2/instance/{id} and maps its `state` (exoscale/exoscale.h). wake() sends
// PUT :start with the body `{}` the API requires, sleep() PUT :stop with none; each answers with
// an Operation. An operation that failed at once refuses the action with the API's reason and
// message. A pending one is polled at GET /v2/operation/{id} with each observation (so at the
// reconciler's poll interval) until it succeeds, fails, times out at Exoscale, or outlives the
// backend's wake timeout; a failed start is reported on the observation that still shows the
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
#include "config/config.h"
#include "exoscale/exoscale.h"
#include "exoscale/exoscale_client.h"

namespace unshelver::providers {

class ExoscaleProvider final : public CloudProvider {
 public:
  ExoscaleProvider(std::unique_ptr<ExoscaleClient> client, const core::BackendConfig& backend);
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
  bool closed_ = false;
};

}  // namespace unshelver::providers
