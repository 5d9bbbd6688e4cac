// NovaProvider: a backend VM on an OpenStack cloud, driven through Nova (contract §2).
//
// observe() reads GET /servers/{id} and maps status and task_state onto Unshelver's view (the
// status alone lies: it stays ACTIVE while shelving and SHELVED_OFFLOADED while unshelving).
// wake() and sleep() read the server first and send only the action that moves it from where it
// is (unshelve, os-start, resume, unpause; shelve, os-stop or suspend as configured); a 409 means
// someone else is acting, so the reconciler observes again rather than retrying.
//
// A failed unshelve ("No valid host was found") leaves the server SHELVED_OFFLOADED with no task
// and no fault; only the instance action of our request records the failure (contract addendum).
// So while a wake of ours is pending and the server shows stopped and idle, the provider reads
// that instance action (by the request id Nova returned) and reports the failure with the
// cloud's words as soon as Nova has recorded it.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "backend/cloud_provider.h"
#include "config/config.h"
#include "openstack/nova.h"
#include "openstack/session.h"

namespace unshelver::providers {

class NovaProvider final : public CloudProvider {
 public:
  NovaProvider(OpenStackSession& session, const core::BackendConfig& backend);
  ~NovaProvider() override;

  std::string_view kind() const override { return "openstack"; }
  void observe(ObserveCallback on_done) override;
  void wake(ActionCallback on_done) override;
  void sleep(ActionCallback on_done) override;
  void close() override;

  // Finds the server (by id, or by exact name) and reports what is wrong, for a clear error at
  // start-up. `definitive` is true when retrying cannot help (no such server, several with the
  // name, credentials refused); false when the cloud could not be asked (network, 5xx).
  void resolve(std::function<void(Status found, bool definitive)> on_done);
  const std::string& server_id() const { return server_id_; }

 private:
  using ServerCallback = std::function<void(Result<core::nova::Server> server, bool definitive)>;
  // `then` gets the lookup's status and whether a failure is definitive (see resolve()).
  void with_server_id(std::function<void(Status, bool definitive)> then);
  void read_server(ServerCallback on_done);
  struct ActionCheck {
    std::string path;
    std::size_t version_index = 0;
    core::CloudObservation observation;
    ObserveCallback on_done;
  };
  void check_pending_action(const core::nova::Server& server, core::CloudObservation observation,
                            ObserveCallback on_done);
  void query_action(std::shared_ptr<ActionCheck> check);
  void act(bool wake, ActionCallback on_done);
  void send_action(const core::nova::ActionPlan& plan, bool wake, ActionCallback on_done);
  core::CloudObservation to_observation(const core::nova::Server& server);
  OpenStackSession::RequestId call(ApiRequest request, ApiCallback on_done);
  // The message of a failed Nova call: the fault's message, or the transport error.
  static std::string describe(const io::ClientResponse& response);
  // A 4xx other than 408 and 429 will not change on its own.
  static bool is_definitive(const io::ClientResponse& response);

  OpenStackSession& session_;
  core::BackendConfig backend_;
  std::string server_id_;
  // The wake of ours that Nova accepted and that has not shown progress or failure yet.
  struct PendingAction {
    std::string request_id;
    std::string name;
  };
  std::optional<PendingAction> pending_wake_;
  // The server as last read; used once, to choose the next action without reading it again.
  std::optional<core::nova::Server> last_server_;
  std::set<OpenStackSession::RequestId> in_flight_;
  bool closed_ = false;
};

}  // namespace unshelver::providers
