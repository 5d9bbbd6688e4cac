// Nova as data: a server's status read from GET /servers/{id}, what it means for Unshelver's
// states, which action wakes it or puts it to sleep, which address Caddy should proxy to, and how
// a failed unshelve shows up in the server's instance actions. Pure; openstack/nova_provider.h
// sends the requests.
//
// Contract: ../shared/research/api-contracts.md §2 and its addendum ("No valid host").
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/reconciler.h"
#include "base/result.h"
#include "config/config.h"

namespace unshelver::core::nova {

// The microversion Unshelver speaks for servers and actions: 2.1 bodies, which every Nova has.
inline constexpr std::string_view kBaseMicroversion = "2.1";
// Instance-action events need 2.51; their `details` (the "No valid host" text) need 2.84.
inline constexpr std::string_view kActionDetailsMicroversion = "2.84";
inline constexpr std::string_view kActionEventsMicroversion = "2.51";

struct Server {
  std::string id;
  std::string name;
  std::string status;      // ACTIVE, SHELVED_OFFLOADED, SHUTOFF, ...
  std::string task_state;  // "" when null
  std::string vm_state;
  int power_state = 0;
  std::string fault_message;  // "" when the server has no fault
  nlohmann::json addresses = nlohmann::json::object();
  std::string access_ipv4;
  std::string access_ipv6;
};

Result<Server> parse_server(std::string_view body);

// One page of GET /servers/detail: the servers (each as parse_server reads one) and the query of
// the next page, from the link with rel "next" ("limit=..&marker=.."; "" on the last page). Only
// the query is kept: the caller asks its own compute endpoint for it, so the token never follows
// a link to another host. A page with more than `max_servers` entries, or a next link without a
// query or with one longer than kMaxNextQuery, is refused: a misbehaving cloud cannot make
// Unshelver hold an unbounded list.
struct ServerPage {
  std::vector<Server> servers;
  std::string next_query;
};
inline constexpr std::size_t kMaxNextQuery = 2048;
Result<ServerPage> parse_server_page(std::string_view body, std::size_t max_servers);

// Picks the one server whose name is exactly `name` from a GET /servers?name= answer, where Nova
// treats the name as a regular expression (so "gpu" also lists "gpu-old"). Errors say whether none
// or several matched, with their ids.
Result<std::string> exact_server_id(std::string_view list_body, std::string_view name);

// The server's status in Unshelver's terms. `settled_asleep` is false for a server that is off in
// a way other than the configured sleep (SHUTOFF or SUSPENDED where shelving is configured): it
// may still cost money, and if it should be awake it is started.
CloudObservation observe(const Server& server, SleepAction action);

// What to do to move the server towards awake or asleep from where it is now. An Error when no
// action can get there (a server in ERROR: an operator must repair it first).
struct ActionPlan {
  enum class Kind {
    kSend,          // POST `body` to /servers/{id}/action
    kAlreadyThere,  // already in (or on its way to) the wanted state: nothing to send
    kBusy,          // another task runs (someone else acts): observe again, never act blindly
  } kind = Kind::kAlreadyThere;
  std::string name;    // for logs and events: "unshelve", "os-start", ...
  std::string body;    // JSON, for kSend
  std::string reason;  // for kBusy: the task that runs
};
Result<ActionPlan> wake_plan(const Server& server);
Result<ActionPlan> sleep_plan(const Server& server, SleepAction action);

// host:port for Caddy: the first address on a preferred network (in the given order), else a
// floating IP, else any IPv4, else any address, else accessIPv4/accessIPv6 (the Python
// unshelver's order). IPv6 comes back bracketed. Empty when the server has no address yet.
std::string upstream_address(const Server& server, const std::vector<std::string>& preferred_networks,
                             int port);

// What an instance action (GET /servers/{id}/os-instance-actions/{request_id}) says about an
// action of ours: still running, succeeded, or failed with the cloud's reason.
struct ActionVerdict {
  enum class Kind { kPending, kSucceeded, kFailed } kind = Kind::kPending;
  std::string message;  // for kFailed: what the cloud reports, or our best explanation
};
ActionVerdict instance_action_verdict(std::string_view body);

}  // namespace unshelver::core::nova
