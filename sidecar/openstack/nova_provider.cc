#include "openstack/nova_provider.h"

#include <spdlog/spdlog.h>

#include "base/text.h"
#include "openstack/keystone.h"

namespace unshelver::providers {

namespace nova = core::nova;

namespace {
constexpr std::string_view kCompute = "compute";

int default_port(const core::BackendConfig& backend) {
  if (backend.port > 0) return backend.port;
  return backend.url_scheme == "https" ? 443 : 80;
}

io::HeaderList microversion(std::string_view version) {
  return {{"OpenStack-API-Version", "compute " + std::string(version)},
          {"X-OpenStack-Nova-API-Version", std::string(version)}};
}
}  // namespace

NovaServerListing::NovaServerListing(OpenStackSession& session, ServerListingSettings settings)
    : SharedListing(settings.max_age), session_(session), settings_(settings) {}

NovaServerListing::~NovaServerListing() {
  close();
}

void NovaServerListing::start_fetch() {
  fetched_.clear();
  pages_ = 0;
  fetch_page("limit=" + std::to_string(settings_.page_size));
}

void NovaServerListing::cancel_fetch() {
  if (page_request_ != 0) session_.cancel(page_request_);
  page_request_ = 0;
  fetched_.clear();
}

void NovaServerListing::fetch_page(const std::string& query) {
  ApiRequest request;
  request.service_type = std::string(kCompute);
  request.path = "/servers/detail?" + query;
  ++pages_;
  page_request_ = session_.request(std::move(request), [this](const io::ClientResponse& response) {
    page_request_ = 0;
    if (closed()) return;
    if (!response.is_2xx()) {
      spdlog::debug("cannot list the servers: {}", response.transport_ok()
                                                       ? "Nova answered " + std::to_string(response.status)
                                                       : response.error);
      finish_fetch(std::nullopt);
      return;
    }
    auto page = nova::parse_server_page(response.body, settings_.max_servers);
    if (!page) {
      spdlog::warn("cannot list the servers: {}", page.error().message);
      finish_fetch(std::nullopt);
      return;
    }
    for (nova::Server& server : page->servers) {
      if (fetched_.size() >= settings_.max_servers) break;
      std::string id = server.id;
      fetched_.insert_or_assign(std::move(id), std::move(server));
    }
    const bool bounded = fetched_.size() >= settings_.max_servers || pages_ >= settings_.max_pages;
    if (!page->next_query.empty() && !bounded) {
      fetch_page(page->next_query);
      return;
    }
    if (!page->next_query.empty()) {
      // The servers past the bound are read one by one (a lookup the listing cannot answer).
      spdlog::debug("server listing stopped at {} servers on {} pages", fetched_.size(), pages_);
    }
    finish_fetch(std::exchange(fetched_, Items{}));
  });
}

NovaProvider::NovaProvider(OpenStackSession& session, const core::BackendConfig& backend,
                           NovaServerListing* listing)
    : session_(session), backend_(backend), server_id_(backend.instance_id), listing_(listing) {
  if (listing_ != nullptr) listing_->join();
}

NovaProvider::~NovaProvider() {
  close();
}

void NovaProvider::close() {
  if (closed_) return;
  closed_ = true;
  for (OpenStackSession::RequestId id : in_flight_) session_.cancel(id);
  in_flight_.clear();
  first_read_.cancel();
  if (listing_ != nullptr) {
    if (lookup_ != 0) listing_->cancel(lookup_);
    lookup_ = 0;
    listing_->leave();
  }
}

std::string NovaProvider::describe(const io::ClientResponse& response) {
  if (!response.transport_ok()) return response.error;
  std::string message = core::openstack::error_message_of(response.body);
  return "Nova answered " + std::to_string(response.status) + (message.empty() ? "" : ": " + message);
}

OpenStackSession::RequestId NovaProvider::call(ApiRequest request, ApiCallback on_done) {
  request.service_type = std::string(kCompute);
  // The id is known only after request() returns, but the callback never runs inside request(),
  // so the shared slot is filled in time.
  auto slot = std::make_shared<OpenStackSession::RequestId>(0);
  const auto id = session_.request(std::move(request),
                                   [this, slot, on_done = std::move(on_done)](io::ClientResponse response) {
                                     in_flight_.erase(*slot);
                                     if (closed_) return;
                                     on_done(std::move(response));
                                   });
  *slot = id;
  in_flight_.insert(id);
  return id;
}

bool NovaProvider::is_definitive(const io::ClientResponse& response) {
  return response.status >= 400 && response.status < 500 && response.status != 408 && response.status != 429;
}

void NovaProvider::with_server_id(std::function<void(Status, bool)> then) {
  if (!server_id_.empty()) {
    then(ok_status(), false);
    return;
  }
  ApiRequest request;
  request.path = "/servers?name=" + core::percent_encode(backend_.instance_name);
  call(std::move(request), [this, then = std::move(then)](const io::ClientResponse& response) {
    if (!response.is_2xx()) {
      then(Error{"cannot look up server \"" + backend_.instance_name + "\": " + describe(response)},
           is_definitive(response));
      return;
    }
    auto id = nova::exact_server_id(response.body, backend_.instance_name);
    if (!id) {
      then(id.error(), true);
      return;
    }
    server_id_ = *id;
    spdlog::info("[{}] Nova server \"{}\" is {}", backend_.name, backend_.instance_name, server_id_);
    then(ok_status(), false);
  });
}

void NovaProvider::resolve(std::function<void(Status found, bool definitive)> on_done) {
  first_read_.begin();
  read_server([this, on_done = std::move(on_done)](const Result<nova::Server>& server, bool definitive) {
    on_done(server ? ok_status() : Status(server.error()), definitive);
    first_read_.finish(server, definitive);
  });
}

void NovaProvider::read_server(ServerCallback on_done) {
  with_server_id([this, on_done = std::move(on_done)](const Status& found, bool definitive) {
    if (!found) {
      on_done(found.error(), definitive);
      return;
    }
    ApiRequest request;
    request.path = "/servers/" + core::percent_encode(server_id_);
    call(std::move(request), [this, on_done](const io::ClientResponse& response) {
      if (response.transport_ok() && response.status == 404) {
        // A server found by name may have been deleted and re-created: look it up afresh next
        // time. One named by id is simply gone.
        const std::string missing = server_id_;
        if (backend_.instance_id.empty()) server_id_.clear();
        on_done(Error{"the server " + missing + " no longer exists (Nova answered 404)"}, true);
        return;
      }
      if (!response.is_2xx()) {
        on_done(Error{"cannot read the server: " + describe(response)}, is_definitive(response));
        return;
      }
      auto server = nova::parse_server(response.body);
      if (server) last_server_ = *server;
      on_done(std::move(server), false);
    });
  });
}

core::CloudObservation NovaProvider::to_observation(const nova::Server& server) {
  core::CloudObservation observation = nova::observe(server, backend_.sleep_action);
  if (backend_.upstream.empty()) {
    observation.upstream =
        nova::upstream_address(server, backend_.preferred_networks, default_port(backend_));
  }
  return observation;
}

void NovaProvider::observe(ObserveMode mode, ObserveCallback on_done) {
  // A settled observation of a server we know is served from the session's listing; a pending
  // wake is checked on the server itself (its instance action), as is every fast poll.
  const bool listed = mode == ObserveMode::kSettled && listing_ != nullptr && listing_->shared() &&
                      !pending_wake_ && !server_id_.empty();
  if (!listed) {
    observe_current(std::move(on_done));
    return;
  }
  lookup_ = listing_->find(server_id_, last_action_at_,
                           [this, on_done = std::move(on_done)](std::optional<nova::Server> server) mutable {
                             lookup_ = 0;
                             if (closed_) return;
                             if (!server) {
                               observe_current(std::move(on_done));
                               return;
                             }
                             last_server_ = *server;
                             report(*server, std::move(on_done));
                           });
}

void NovaProvider::observe_current(ObserveCallback on_done) {
  auto reported = [this, on_done = std::move(on_done)](const Result<nova::Server>& server, bool) {
    if (closed_) return;
    if (!server) {
      on_done(server.error());
      return;
    }
    report(*server, on_done);
  };
  if (first_read_.join(reported)) return;
  read_server(std::move(reported));
}

void NovaProvider::report(const nova::Server& server, ObserveCallback on_done) {
  core::CloudObservation observation = to_observation(server);
  using Kind = core::CloudObservation::Kind;
  if (observation.kind == Kind::kRunning || observation.kind == Kind::kError) pending_wake_.reset();
  if (pending_wake_ && observation.kind == Kind::kStopped && server.task_state.empty()) {
    check_pending_action(server, std::move(observation), std::move(on_done));
    return;
  }
  on_done(std::move(observation));
}

// Reads the instance action of our pending wake. Microversion 2.84 shows the event's details
// (the "No valid host" text) where policy allows; an older Nova answers 400/406 to it, so 2.51
// (events without details) is tried next, and without events the action's own message decides.
void NovaProvider::check_pending_action(const nova::Server& server, core::CloudObservation observation,
                                        ObserveCallback on_done) {
  auto check = std::make_shared<ActionCheck>();
  check->path = "/servers/" + core::percent_encode(server.id) + "/os-instance-actions/" +
                core::percent_encode(pending_wake_->request_id);
  check->observation = std::move(observation);
  check->on_done = std::move(on_done);
  query_action(std::move(check));
}

void NovaProvider::query_action(std::shared_ptr<ActionCheck> check) {
  static constexpr std::string_view kVersions[] = {nova::kActionDetailsMicroversion,
                                                   nova::kActionEventsMicroversion, nova::kBaseMicroversion};
  ApiRequest request;
  request.path = check->path;
  request.headers = microversion(kVersions[check->version_index]);
  call(std::move(request), [this, check = std::move(check)](const io::ClientResponse& response) {
    const bool version_refused =
        response.transport_ok() && (response.status == 400 || response.status == 406);
    if (version_refused && check->version_index + 1 < std::size(kVersions)) {
      ++check->version_index;
      query_action(check);
      return;
    }
    if (response.is_2xx() && pending_wake_) {
      nova::ActionVerdict verdict = nova::instance_action_verdict(response.body);
      if (verdict.kind == nova::ActionVerdict::Kind::kFailed) {
        spdlog::warn("[{}] the cloud reports that {} failed: {}", backend_.name, pending_wake_->name,
                     verdict.message);
        check->observation.detail = verdict.message;
        pending_wake_.reset();
      }
    } else if (!response.is_2xx()) {
      spdlog::debug("[{}] cannot read the instance action: {}", backend_.name, describe(response));
    }
    check->on_done(std::move(check->observation));
  });
}

void NovaProvider::wake(ActionCallback on_done) {
  act(true, std::move(on_done));
}
void NovaProvider::sleep(ActionCallback on_done) {
  act(false, std::move(on_done));
}

void NovaProvider::act(bool wake, ActionCallback on_done) {
  // The last server read decides at once when it calls for an action: sending it straight away
  // saves a round trip, and a stale view costs nothing, because Nova refuses an action that does
  // not fit the server's state with 409, which makes the reconciler observe and decide afresh.
  // A view that says "nothing to do" or "busy" is read again before it is believed.
  if (last_server_) {
    auto plan =
        wake ? nova::wake_plan(*last_server_) : nova::sleep_plan(*last_server_, backend_.sleep_action);
    last_server_.reset();
    if (plan && plan->kind == nova::ActionPlan::Kind::kSend) {
      send_action(*plan, wake, std::move(on_done));
      return;
    }
  }
  read_server([this, wake, on_done = std::move(on_done)](Result<nova::Server> server, bool) {
    if (!server) {
      // Unknown outcome: the reconciler observes again (and keeps the error visible) rather
      // than failing the wake on one unreadable answer.
      on_done(ActionResult::busy(server.error().message));
      return;
    }
    auto plan = wake ? nova::wake_plan(*server) : nova::sleep_plan(*server, backend_.sleep_action);
    if (!plan) {
      on_done(ActionResult::refused(plan.error().message));
      return;
    }
    switch (plan->kind) {
      case nova::ActionPlan::Kind::kAlreadyThere:
        on_done(
            ActionResult::accepted("already " + std::string(wake ? "awake" : "asleep") + " or on its way"));
        return;
      case nova::ActionPlan::Kind::kBusy: on_done(ActionResult::busy(plan->reason)); return;
      case nova::ActionPlan::Kind::kSend: send_action(*plan, wake, on_done); return;
    }
  });
}

void NovaProvider::send_action(const nova::ActionPlan& plan, bool wake, ActionCallback on_done) {
  ApiRequest request;
  request.method = "POST";
  request.path = "/servers/" + core::percent_encode(server_id_) + "/action";
  request.body = plan.body;
  const std::string name = plan.name;
  if (!wake) pending_wake_.reset();
  last_server_.reset();
  last_action_at_ = std::chrono::steady_clock::now();
  call(std::move(request),
       [this, name, wake, on_done = std::move(on_done)](const io::ClientResponse& response) {
         if (response.transport_ok() && response.status == 202) {
           const std::string* request_id = response.header("x-openstack-request-id");
           if (!request_id) request_id = response.header("x-compute-request-id");
           spdlog::info("[{}] Nova accepted {} (request {})", backend_.name, name,
                        request_id ? *request_id : "unknown");
           if (wake && request_id) pending_wake_ = PendingAction{*request_id, name};
           on_done(ActionResult::accepted());
           return;
         }
         if (response.transport_ok() && response.status == 409) {
           on_done(ActionResult::busy(describe(response)));
           return;
         }
         if (!response.transport_ok() || response.status >= 500 || response.status == 429) {
           // The session has retried already; whether Nova applied the action is unknown, so observe.
           on_done(ActionResult::busy(name + ": " + describe(response)));
           return;
         }
         on_done(ActionResult::refused(name + ": " + describe(response)));
       });
}

}  // namespace unshelver::providers
