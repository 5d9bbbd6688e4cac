#include "openstack/nova.h"

#include <array>

#include "base/text.h"

namespace unshelver::core::nova {

namespace {
using nlohmann::json;
using Kind = CloudObservation::Kind;

std::string string_or_empty(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return "";
  return object[key].get<std::string>();
}

template <std::size_t N>
bool one_of(std::string_view value, const std::array<std::string_view, N>& names) {
  for (std::string_view name : names) {
    if (value == name) return true;
  }
  return false;
}

// Task states from nova/objects/fields.py (TaskState), grouped by where they lead.
constexpr std::array<std::string_view, 14> kStartingTasks = {"unshelving",          "spawning",
                                                             "powering-on",         "resuming",
                                                             "unpausing",           "rebooting",
                                                             "reboot_pending",      "reboot_started",
                                                             "rebooting_hard",      "reboot_pending_hard",
                                                             "reboot_started_hard", "rebuilding",
                                                             "scheduling",          "block_device_mapping"};
constexpr std::array<std::string_view, 9> kStoppingTasks = {"shelving",
                                                            "shelving_image_pending_upload",
                                                            "shelving_image_uploading",
                                                            "shelving_offloading",
                                                            "powering-off",
                                                            "suspending",
                                                            "pausing",
                                                            "deleting",
                                                            "soft-deleting"};

bool is_off_status(std::string_view status) {
  return status == "SHELVED" || status == "SHELVED_OFFLOADED" || status == "SHUTOFF" ||
         status == "SUSPENDED" || status == "PAUSED";
}

bool settled_for(std::string_view status, SleepAction action) {
  if (status == "SHELVED" || status == "SHELVED_OFFLOADED") return true;  // the cheapest state there is
  if (status == "SHUTOFF") return action == SleepAction::kStop;
  if (status == "SUSPENDED") return action == SleepAction::kSuspend;
  return false;
}

std::string error_text(const Server& server) {
  return server.fault_message.empty() ? "the server is in ERROR (Nova reports no fault message)"
                                      : "the server is in ERROR: " + server.fault_message;
}

ActionPlan send(std::string name, std::string body) {
  return ActionPlan{ActionPlan::Kind::kSend, std::move(name), std::move(body), ""};
}
ActionPlan already() {
  return ActionPlan{};
}
ActionPlan busy(const Server& server) {
  return ActionPlan{ActionPlan::Kind::kBusy, "", "",
                    "task " + server.task_state + " is running (status " + server.status + ")"};
}

std::string with_port(const std::string& address, int version, int port) {
  const bool v6 = version == 6 || address.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + address + "]" : address;
  return port > 0 ? host + ":" + std::to_string(port) : host;
}

// One server object, as GET /servers/{id} and GET /servers/detail show it.
Result<Server> server_of(const json& object) {
  if (!object.is_object()) return Error{"a server in Nova's answer is not a JSON object"};
  Server server;
  server.id = string_or_empty(object, "id");
  server.name = string_or_empty(object, "name");
  server.status = string_or_empty(object, "status");
  server.task_state = string_or_empty(object, "OS-EXT-STS:task_state");
  server.vm_state = string_or_empty(object, "OS-EXT-STS:vm_state");
  if (object.contains("OS-EXT-STS:power_state") && object["OS-EXT-STS:power_state"].is_number_integer()) {
    server.power_state = object["OS-EXT-STS:power_state"].get<int>();
  }
  if (object.contains("fault") && object["fault"].is_object()) {
    server.fault_message = string_or_empty(object["fault"], "message");
  }
  if (object.contains("addresses") && object["addresses"].is_object()) server.addresses = object["addresses"];
  server.access_ipv4 = string_or_empty(object, "accessIPv4");
  server.access_ipv6 = string_or_empty(object, "accessIPv6");
  if (server.id.empty() || server.status.empty()) return Error{"Nova's server answer has no id or status"};
  return server;
}
}  // namespace

Result<Server> parse_server(std::string_view body) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("server") || !document["server"].is_object()) {
    return Error{"Nova's server answer is not the documented JSON ({\"server\": {...}})"};
  }
  return server_of(document["server"]);
}

Result<ServerPage> parse_server_page(std::string_view body, std::size_t max_servers) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("servers") || !document["servers"].is_array()) {
    return Error{"Nova's server list is not the documented JSON ({\"servers\": [...]})"};
  }
  const json& entries = document["servers"];
  if (entries.size() > max_servers) {
    return Error{"Nova's server list has " + std::to_string(entries.size()) +
                 " servers on one page, more than " + std::to_string(max_servers)};
  }
  ServerPage page;
  page.servers.reserve(entries.size());
  for (const json& entry : entries) {
    auto server = server_of(entry);
    if (!server) return Error{"Nova's server list: " + server.error().message};
    page.servers.push_back(std::move(*server));
  }
  // Pagination (Compute API reference, "Paginated collections"): a full page carries a link with
  // rel "next" whose href holds the marker of the next page; the last page has none.
  if (document.contains("servers_links") && document["servers_links"].is_array()) {
    for (const json& link : document["servers_links"]) {
      if (string_or_empty(link, "rel") != "next") continue;
      const std::string href = string_or_empty(link, "href");
      const std::size_t query = href.find('?');
      if (query == std::string::npos || query + 1 == href.size()) {
        return Error{"Nova's server list links to a next page without a marker: " + href.substr(0, 200)};
      }
      if (href.size() - query - 1 > kMaxNextQuery) {
        return Error{"Nova's server list links to a next page with a query longer than " +
                     std::to_string(kMaxNextQuery) + " bytes"};
      }
      page.next_query = href.substr(query + 1);
    }
  }
  return page;
}

Result<std::string> exact_server_id(std::string_view list_body, std::string_view name) {
  json document = json::parse(list_body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("servers") || !document["servers"].is_array()) {
    return Error{"Nova's server list is not the documented JSON ({\"servers\": [...]})"};
  }
  std::vector<std::string> ids;
  for (const json& entry : document["servers"]) {
    if (string_or_empty(entry, "name") == name) ids.push_back(string_or_empty(entry, "id"));
  }
  if (ids.size() == 1) return ids.front();
  if (ids.empty()) {
    return Error{"no server is named exactly \"" + std::string(name) + "\" in this project (" +
                 std::to_string(document["servers"].size()) + " other name(s) matched Nova's pattern)"};
  }
  std::string list;
  for (const std::string& id : ids) list += (list.empty() ? "" : ", ") + id;
  return Error{std::to_string(ids.size()) + " servers are named \"" + std::string(name) + "\" (" + list +
               "); set buttons[].instance_id to the one Unshelver should manage"};
}

CloudObservation observe(const Server& server, SleepAction action) {
  CloudObservation observation;
  observation.status =
      server.task_state.empty() ? server.status : server.status + " (" + server.task_state + ")";
  const std::string_view status = server.status;
  if (status == "ERROR") {
    observation.kind = Kind::kError;
    observation.detail = error_text(server);
    return observation;
  }
  if (status == "DELETED" || status == "SOFT_DELETED") {
    observation.kind = Kind::kError;
    observation.detail = "the server was deleted (status " + server.status + ")";
    return observation;
  }
  if (!server.task_state.empty()) {
    if (one_of(server.task_state, kStartingTasks)) {
      observation.kind = Kind::kStarting;
      return observation;
    }
    if (one_of(server.task_state, kStoppingTasks)) {
      observation.kind = Kind::kStopping;
      return observation;
    }
    // Other tasks (migrating, resizing, snapshotting) do not change whether the VM runs.
  }
  if (status == "ACTIVE" || status == "MIGRATING" || status == "RESIZE" || status == "VERIFY_RESIZE" ||
      status == "REVERT_RESIZE" || status == "PASSWORD") {
    observation.kind = Kind::kRunning;
  } else if (status == "BUILD" || status == "REBOOT" || status == "HARD_REBOOT" || status == "REBUILD") {
    observation.kind = Kind::kStarting;
  } else if (is_off_status(status)) {
    observation.kind = Kind::kStopped;
    observation.settled_asleep = settled_for(status, action);
  } else if (status == "RESCUE") {
    observation.kind = Kind::kError;
    observation.detail = "the server is in rescue mode (an operator is repairing it)";
  } else if (status == "UNKNOWN") {
    observation.kind = Kind::kError;
    observation.detail = "Nova reports the server's status as UNKNOWN (its compute host is unreachable)";
  } else {
    observation.kind = Kind::kError;
    observation.detail = "Nova reports an unexpected status " + server.status;
  }
  return observation;
}

Result<ActionPlan> wake_plan(const Server& server) {
  const CloudObservation now = observe(server, SleepAction::kShelve);
  if (now.kind == Kind::kError) return Error{"cannot wake the server: " + now.detail};
  if (now.kind == Kind::kRunning || now.kind == Kind::kStarting) return already();
  if (now.kind == Kind::kStopping) return busy(server);
  if (!server.task_state.empty()) return busy(server);
  const std::string_view status = server.status;
  if (status == "SHELVED" || status == "SHELVED_OFFLOADED") return send("unshelve", R"({"unshelve":null})");
  if (status == "SHUTOFF") return send("os-start", R"({"os-start":null})");
  if (status == "SUSPENDED") return send("resume", R"({"resume":null})");
  if (status == "PAUSED") return send("unpause", R"({"unpause":null})");
  return Error{"cannot wake a server in status " + server.status};
}

Result<ActionPlan> sleep_plan(const Server& server, SleepAction action) {
  const CloudObservation now = observe(server, action);
  if (now.kind == Kind::kError) return Error{"cannot put the server to sleep: " + now.detail};
  if (now.kind == Kind::kStopping) return already();
  if (now.kind == Kind::kStarting || !server.task_state.empty()) return busy(server);
  const std::string_view status = server.status;
  switch (action) {
    case SleepAction::kShelve:
      if (status == "SHELVED" || status == "SHELVED_OFFLOADED") return already();
      // Nova shelves from active, stopped, paused and suspended (contract §2 action table).
      if (status == "ACTIVE" || status == "SHUTOFF" || status == "PAUSED" || status == "SUSPENDED") {
        return send("shelve", R"({"shelve":null})");
      }
      break;
    case SleepAction::kStop:
      if (status == "ACTIVE") return send("os-stop", R"({"os-stop":null})");
      if (is_off_status(status)) return already();
      break;
    case SleepAction::kSuspend:
      if (status == "ACTIVE") return send("suspend", R"({"suspend":null})");
      if (is_off_status(status)) return already();
      break;
  }
  return Error{"cannot put a server in status " + server.status + " to sleep"};
}

std::string upstream_address(const Server& server, const std::vector<std::string>& preferred_networks,
                             int port) {
  struct Candidate {
    std::string network;
    std::string address;
    int version = 4;
    bool floating = false;
  };
  std::vector<Candidate> candidates;
  if (server.addresses.is_object()) {
    for (const auto& [network, list] : server.addresses.items()) {
      if (!list.is_array()) continue;
      for (const json& entry : list) {
        Candidate candidate{network, string_or_empty(entry, "addr"), 4, false};
        if (candidate.address.empty()) continue;
        if (entry.contains("version") && entry["version"].is_number_integer()) {
          candidate.version = entry["version"].get<int>();
        }
        candidate.floating = string_or_empty(entry, "OS-EXT-IPS:type") == "floating";
        candidates.push_back(std::move(candidate));
      }
    }
  }
  auto pick = [&](auto&& wanted) -> std::string {
    for (const Candidate& candidate : candidates) {
      if (wanted(candidate)) return with_port(candidate.address, candidate.version, port);
    }
    return "";
  };
  for (const std::string& network : preferred_networks) {
    // IPv4 first within a preferred network, since Caddy and most backends listen there.
    if (auto found = pick([&](const Candidate& c) { return c.network == network && c.version == 4; });
        !found.empty()) {
      return found;
    }
    if (auto found = pick([&](const Candidate& c) { return c.network == network; }); !found.empty())
      return found;
  }
  if (auto found = pick([](const Candidate& c) { return c.floating; }); !found.empty()) return found;
  if (auto found = pick([](const Candidate& c) { return c.version == 4; }); !found.empty()) return found;
  if (auto found = pick([](const Candidate&) { return true; }); !found.empty()) return found;
  if (!server.access_ipv4.empty()) return with_port(server.access_ipv4, 4, port);
  if (!server.access_ipv6.empty()) return with_port(server.access_ipv6, 6, port);
  return "";
}

ActionVerdict instance_action_verdict(std::string_view body) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("instanceAction") ||
      !document["instanceAction"].is_object()) {
    return ActionVerdict{};
  }
  const json& action = document["instanceAction"];
  const std::string name = string_or_empty(action, "action");
  std::string failed_event;
  std::string details;
  bool all_finished = true;
  bool any_event = false;
  if (action.contains("events") && action["events"].is_array()) {
    for (const json& event : action["events"]) {
      any_event = true;
      const std::string result = string_or_empty(event, "result");
      if (result == "Error") {
        failed_event = string_or_empty(event, "event");
        if (details.empty()) details = string_or_empty(event, "details");
      }
      if (string_or_empty(event, "finish_time").empty()) all_finished = false;
    }
  }
  if (string_or_empty(action, "message") == "Error" || !failed_event.empty()) {
    ActionVerdict verdict{ActionVerdict::Kind::kFailed, ""};
    if (!details.empty()) {
      verdict.message = details;
    } else {
      verdict.message = "the cloud could not " + (name.empty() ? std::string("complete the action") : name) +
                        " the server: its instance action reports Error" +
                        (failed_event.empty() ? std::string() : " in " + failed_event) +
                        " (Nova shows the reason, typically \"No valid host was found\", to admins only)";
    }
    return verdict;
  }
  if (any_event && all_finished) return ActionVerdict{ActionVerdict::Kind::kSucceeded, ""};
  return ActionVerdict{};
}

}  // namespace unshelver::core::nova
