#include "exoscale/exoscale.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/json_values.h"
#include "base/text.h"
#include "base/url.h"

namespace unshelver::core::exoscale {

namespace {

using json = nlohmann::json;
using Kind = CloudObservation::Kind;

bool all_lower(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}
bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The query parameters that occur exactly once, ordered by name: the only ones the signature covers.
std::map<std::string, std::string> signed_query(const std::vector<QueryArg>& query) {
  std::map<std::string, int> counts;
  for (const QueryArg& arg : query) ++counts[arg.name];
  std::map<std::string, std::string> single;
  for (const QueryArg& arg : query) {
    if (counts[arg.name] == 1) single[arg.name] = arg.value;
  }
  return single;
}

// An instance object, as get-instance answers it and list-instances lists it (both carry id,
// name, state and public-ip).
Result<Instance> instance_of(const json& document) {
  if (!document.is_object() || json_string(document, "id").empty() ||
      json_string(document, "state").empty()) {
    return Error{"Exoscale's instance answer is not the documented JSON (an object with id and state)"};
  }
  Instance instance;
  instance.id = json_string(document, "id");
  instance.name = json_string(document, "name");
  instance.state = json_string(document, "state");
  instance.public_ip = json_string(document, "public-ip");
  return instance;
}

// The items of a GET /v2/instance answer (list-instances: {"instances": [...]}), or an error
// naming that shape.
Result<json> instance_list_entries(std::string_view body) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("instances") || !document["instances"].is_array()) {
    return Error{"Exoscale's instance list is not the documented JSON ({\"instances\": [...]})"};
  }
  return std::move(document["instances"]);
}

Result<ActionPlan> already() {
  return ActionPlan{ActionPlan::Kind::kAlreadyThere, "", ""};
}
Result<ActionPlan> busy(const Instance& instance) {
  return ActionPlan{ActionPlan::Kind::kBusy, "", "the instance is " + instance.state};
}
Result<ActionPlan> send(std::string name) {
  return ActionPlan{ActionPlan::Kind::kSend, std::move(name), ""};
}

}  // namespace

std::string check_zone(std::string_view zone) {
  // Zone names are "<country>-<city>-<number>": ch-gva-2, ch-dk-2, de-fra-1, at-vie-2, bg-sof-1.
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dash = zone.find('-', start);
    parts.push_back(
        zone.substr(start, dash == std::string_view::npos ? std::string_view::npos : dash - start));
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  const bool shaped = parts.size() == 3 && parts[0].size() == 2 && all_lower(parts[0]) &&
                      parts[1].size() >= 2 && parts[1].size() <= 4 && all_lower(parts[1]) &&
                      parts[2].size() <= 3 && all_digits(parts[2]);
  return shaped
             ? ""
             : "must be an Exoscale zone name such as ch-gva-2 or de-fra-1 (country-city-number, lower case)";
}

std::string check_api_url(std::string_view url_template) {
  const auto url = parse_url(api_url_for(url_template, kDefaultZone));
  const bool http = url && (url->scheme == "http" || url->scheme == "https");
  if (!http || url->authority.empty() || url->userinfo || url->query || url->fragment) {
    return "expected an http:// or https:// URL with a host and no user, query or fragment, such as "
           "https://api-{zone}.exoscale.com/v2";
  }
  return "";
}

std::string api_url_for(std::string_view url_template, std::string_view zone) {
  return replace_all(std::string(url_template), "{zone}", zone);
}

std::string signature_message(std::string_view method, std::string_view path,
                              const std::vector<QueryArg>& query, std::string_view body,
                              std::int64_t expires) {
  std::string message;
  message.append(method).append(" ").append(path).append("\n");
  message.append(body).append("\n");
  for (const auto& [name, value] : signed_query(query)) message.append(value);
  message.append("\n");
  message.append("\n");  // the header segment, always empty
  message.append(std::to_string(expires));
  return message;
}

std::string authorization(std::string_view api_key, std::string_view api_secret, std::string_view method,
                          std::string_view path, const std::vector<QueryArg>& query, std::string_view body,
                          std::int64_t expires) {
  const std::string message = signature_message(method, path, query, body, expires);
  std::string header = "EXO2-HMAC-SHA256 credential=" + std::string(api_key);
  const std::map<std::string, std::string> single = signed_query(query);
  if (!single.empty()) {
    std::string names;
    for (const auto& [name, value] : single) names += (names.empty() ? "" : ";") + name;
    header += ",signed-query-args=" + names;
  }
  header += ",expires=" + std::to_string(expires);
  header += ",signature=" + base64_encode(to_bytes(hmac_sha256(api_secret, message)));
  return header;
}

std::int64_t expiry_for(TimePoint now) {
  return std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch() + kSignatureLifetime)
      .count();
}

Result<Instance> parse_instance(std::string_view body) {
  return instance_of(json::parse(body, nullptr, /*allow_exceptions=*/false));
}

Result<std::vector<Instance>> parse_instance_list(std::string_view body, std::size_t max_instances) {
  auto listed = instance_list_entries(body);
  if (!listed) return listed.error();
  const json& entries = *listed;
  if (entries.size() > max_instances) {
    return Error{"Exoscale's instance list has " + std::to_string(entries.size()) + " instances, more than " +
                 std::to_string(max_instances)};
  }
  std::vector<Instance> instances;
  instances.reserve(entries.size());
  for (const json& entry : entries) {
    auto instance = instance_of(entry);
    if (!instance) return Error{"Exoscale's instance list: " + instance.error().message};
    instances.push_back(std::move(*instance));
  }
  return instances;
}

Result<std::string> find_instance_id(std::string_view list_body, std::string_view wanted) {
  auto listed = instance_list_entries(list_body);
  if (!listed) return listed.error();
  const json& entries = *listed;
  std::vector<std::string> ids;
  for (const json& entry : entries) {
    if (json_string(entry, "id") == wanted || json_string(entry, "name") == wanted) {
      ids.push_back(json_string(entry, "id"));
    }
  }
  if (ids.size() == 1) return ids.front();
  if (ids.empty()) {
    return Error{"no instance in this zone has the id or the exact name \"" + std::string(wanted) + "\" (" +
                 std::to_string(entries.size()) + " instance(s) listed)"};
  }
  std::string list;
  for (const std::string& id : ids) list += (list.empty() ? "" : ", ") + id;
  return Error{std::to_string(ids.size()) + " instances are named \"" + std::string(wanted) + "\" (" + list +
               "); set buttons[].instance_id to the one Unshelver should manage"};
}

Result<Operation> parse_operation(std::string_view body) {
  const json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || json_string(document, "state").empty()) {
    return Error{"Exoscale's operation answer is not the documented JSON (an object with id and state)"};
  }
  Operation operation;
  operation.id = json_string(document, "id");
  operation.state = json_string(document, "state");
  operation.reason = json_string(document, "reason");
  operation.message = json_string(document, "message");
  return operation;
}

std::string operation_failure(const Operation& operation, std::string_view action) {
  if (operation.pending() || operation.succeeded()) return "";
  std::string text =
      std::string(action) + (operation.state == "timeout" ? " timed out at Exoscale" : " failed");
  if (!operation.reason.empty()) text += " (" + operation.reason + ")";
  if (!operation.message.empty()) text += ": " + operation.message;
  if (operation.state != "failure" && operation.state != "timeout") {
    text += " (operation state " + operation.state + ")";
  }
  return text;
}

std::string error_message_of(std::string_view body) {
  const json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) return "";
  if (std::string message = json_string(document, "message"); !message.empty()) return message;
  if (std::string error = json_string(document, "error"); !error.empty()) return error;
  const std::string title = json_string(document, "title");
  const std::string detail = json_string(document, "detail");
  if (!title.empty() && !detail.empty()) return title + ": " + detail;
  return title.empty() ? detail : title;
}

CloudObservation observe(const Instance& instance) {
  CloudObservation observation;
  observation.status = instance.state;
  const std::string_view state = instance.state;
  if (state == "running" || state == "migrating") {
    observation.kind = Kind::kRunning;
  } else if (state == "starting") {
    observation.kind = Kind::kStarting;
  } else if (state == "stopping") {
    observation.kind = Kind::kStopping;
  } else if (state == "stopped") {
    observation.kind = Kind::kStopped;
  } else if (state == "error") {
    observation.kind = Kind::kError;
    observation.detail = "Exoscale reports the instance in state error";
  } else if (state == "expunging" || state == "destroying") {
    observation.kind = Kind::kError;
    observation.detail = "the instance is being destroyed (state " + instance.state + ")";
  } else if (state == "destroyed") {
    observation.kind = Kind::kError;
    observation.detail = "the instance was destroyed";
  } else {
    observation.kind = Kind::kError;
    observation.detail = "Exoscale reports an unexpected state " + instance.state;
  }
  return observation;
}

std::string upstream_address(const Instance& instance, int port) {
  if (instance.public_ip.empty()) return "";
  return instance.public_ip + ":" + std::to_string(port);
}

Result<ActionPlan> wake_plan(const Instance& instance) {
  const CloudObservation now = observe(instance);
  switch (now.kind) {
    case Kind::kError: return Error{"cannot wake the instance: " + now.detail};
    case Kind::kRunning:
    case Kind::kStarting: return already();
    case Kind::kStopping: return busy(instance);
    case Kind::kStopped: return send("start");
  }
  return Error{"cannot wake an instance in state " + instance.state};
}

Result<ActionPlan> sleep_plan(const Instance& instance) {
  const CloudObservation now = observe(instance);
  if (now.kind == Kind::kError) return Error{"cannot stop the instance: " + now.detail};
  if (now.kind == Kind::kStopped || now.kind == Kind::kStopping) return already();
  // Exoscale stops only a running instance; a starting or migrating one is waited for.
  if (now.kind == Kind::kStarting || instance.state == "migrating") return busy(instance);
  return send("stop");
}

}  // namespace unshelver::core::exoscale
