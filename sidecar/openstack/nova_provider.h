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

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "backend/cloud_provider.h"
#include "backend/first_read.h"
#include "backend/shared_listing.h"
#include "base/clock.h"
#include "config/config.h"
#include "openstack/nova.h"
#include "openstack/session.h"

namespace unshelver::providers {

// Bounds and reuse of the shared server listing.
struct ServerListingSettings {
  // How long a listing serves settled observations: half the settled observation period, so N
  // sleeping backends cost about two listings per period instead of N reads.
  std::chrono::milliseconds max_age{30'000};
  std::size_t page_size = 200;  // `limit` per page (Nova caps it at its max_limit, 1000 by default)
  int max_pages = 50;
  std::size_t max_servers = 10'000;  // over all pages
};

// NovaServerListing: one GET /servers/detail (every page, within the bounds) is the shared
// listing of the session's servers (backend/shared_listing.h says when a listing serves a lookup).
class NovaServerListing final : public core::SharedListing<core::nova::Server> {
 public:
  NovaServerListing(OpenStackSession& session, ServerListingSettings settings);
  ~NovaServerListing() override;

 private:
  void start_fetch() override;
  void cancel_fetch() override;
  void defer_once(std::function<void()> call) override { session_.defer(std::move(call)); }
  void fetch_page(const std::string& query);

  OpenStackSession& session_;
  ServerListingSettings settings_;
  // The listing being fetched.
  Items fetched_;
  int pages_ = 0;
  OpenStackSession::RequestId page_request_ = 0;
};

class NovaProvider final : public CloudProvider {
 public:
  // `listing` (may be null) serves settled observations when the session has several backends.
  NovaProvider(OpenStackSession& session, const core::BackendConfig& backend,
               NovaServerListing* listing = nullptr);
  ~NovaProvider() override;

  std::string_view kind() const override { return "openstack"; }
  void observe(ObserveMode mode, ObserveCallback on_done) override;
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
  // The observation of the server as read or listed, with a pending wake's instance action read.
  void report(const core::nova::Server& server, ObserveCallback on_done);
  void observe_current(ObserveCallback on_done);
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
  // resolve()'s read, which the first observation waits for rather than reading again.
  core::FirstRead<core::nova::Server> first_read_;
  NovaServerListing* listing_;
  NovaServerListing::LookupId lookup_ = 0;
  // When the last wake or sleep was sent: a listing requested before it may not show its effect.
  core::MonoTime last_action_at_{};
  bool closed_ = false;
};

}  // namespace unshelver::providers
