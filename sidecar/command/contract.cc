#include "command/contract.h"

#include <nlohmann/json.hpp>

#include "base/text.h"

namespace unshelver::core::command {

namespace {
using nlohmann::json;

std::string quoted_output(std::string_view output) {
  const std::string_view shown = trim(output);
  return shown.empty() ? std::string("nothing") : "\"" + quote(shown) + "\"";
}

// "host" or "host:port" or "[v6]:port" or a bare IPv6 address; "" when it is none of them.
std::string upstream_of(std::string_view address, int default_port) {
  address = trim(address);
  if (address.empty() || address.find_first_of(" \t\r\n/") != std::string_view::npos) return "";
  const auto is_port = [](std::string_view text) {
    if (text.empty() || text.size() > 5) return false;
    for (char c : text) {
      if (c < '0' || c > '9') return false;
    }
    const int port = std::stoi(std::string(text));
    return port > 0 && port <= 65535;
  };
  const std::string port = std::to_string(default_port);
  if (address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close == 1) return "";
    const std::string_view rest = address.substr(close + 1);
    if (rest.empty()) return std::string(address) + ":" + port;
    if (rest.front() != ':' || !is_port(rest.substr(1))) return "";
    return std::string(address);
  }
  const auto colon = address.find(':');
  if (colon == std::string_view::npos) return std::string(address) + ":" + port;
  if (address.find(':', colon + 1) != std::string_view::npos) {
    return "[" + std::string(address) + "]:" + port;  // a bare IPv6 address
  }
  if (colon == 0 || !is_port(address.substr(colon + 1))) return "";
  return std::string(address);
}
}  // namespace

std::string quote(std::string_view text, std::size_t limit) {
  text = trim(text);
  text = text.substr(0, text.find_first_of("\r\n"));
  const bool cut = text.size() > limit;
  std::string shown = escape_control_characters(text.substr(0, limit));
  if (cut) shown += "...";
  return shown;
}

ChildEnvironment child_environment(const BackendConfig& backend,
                                   const std::map<std::string, std::string>& daemon_environment) {
  std::map<std::string, std::string> chosen;
  auto from_daemon = [&daemon_environment](const std::string& name) -> const std::string* {
    const auto found = daemon_environment.find(name);
    return found == daemon_environment.end() ? nullptr : &found->second;
  };
  const std::string* daemon_path = from_daemon("PATH");
  chosen["PATH"] = daemon_path != nullptr && !daemon_path->empty()
                       ? *daemon_path
                       : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const char* name : {"HOME", "USER", "LOGNAME", "LANG"}) {
    if (const std::string* value = from_daemon(name); value != nullptr && !value->empty())
      chosen[name] = *value;
  }
  chosen["UNSHELVER_BACKEND"] = backend.name;
  for (const std::string& entry : backend.command.environment) {
    const auto equals = entry.find('=');
    if (equals == std::string::npos || equals == 0) continue;  // the config check refuses these
    chosen[entry.substr(0, equals)] = entry.substr(equals + 1);
  }
  ChildEnvironment result;
  for (const std::string& name : backend.command.pass_environment) {
    const std::string* value = from_daemon(name);
    if (value == nullptr) {
      result.missing.push_back(name);
      continue;
    }
    chosen[name] = *value;
    result.secrets.push_back(*value);
  }
  for (const auto& [name, value] : chosen) {
    std::string entry = name;
    entry += '=';
    entry += value;
    result.entries.push_back(std::move(entry));
  }
  result.path = chosen["PATH"];
  return result;
}

Result<CloudObservation> parse_observation(std::string_view output, bool truncated, int default_port) {
  if (truncated)
    return Error{"observe printed more than the output limit allows; it must print one JSON object"};
  const json document = json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) {
    return Error{"observe must print one JSON object such as {\"state\": \"running\"}, but printed " +
                 quoted_output(output)};
  }
  const auto state = document.find("state");
  if (state == document.end() || !state->is_string()) {
    return Error{"observe printed no \"state\" string: " + quoted_output(output)};
  }
  const std::string word = to_lower(trim(state->get<std::string>()));
  CloudObservation observation;
  bool known = false;
  for (const StateWord& candidate : kStates) {
    if (candidate.word == word) {
      observation.kind = candidate.kind;
      known = true;
      break;
    }
  }
  if (!known) {
    return Error{"observe printed an unknown state \"" + quote(state->get<std::string>()) +
                 "\" (expected stopped, starting, running, stopping or error; see the README)"};
  }
  std::string message;
  if (const auto found = document.find("message"); found != document.end() && !found->is_null()) {
    if (!found->is_string()) return Error{"observe printed a \"message\" that is not a string"};
    message = quote(found->get<std::string>());
  }
  if (const auto found = document.find("address"); found != document.end() && !found->is_null()) {
    if (!found->is_string()) return Error{"observe printed an \"address\" that is not a string"};
    observation.upstream = upstream_of(found->get<std::string>(), default_port);
    if (observation.upstream.empty() && !trim(found->get<std::string>()).empty()) {
      return Error{"observe printed an address that is not \"host\" or \"host:port\": \"" +
                   quote(found->get<std::string>()) + "\""};
    }
  }
  observation.status = quote(state->get<std::string>());
  if (observation.kind == CloudObservation::Kind::kError) {
    observation.detail = message.empty() ? "the cloud reports the VM in error" : message;
  }
  if (!message.empty()) observation.status += " (" + message + ")";
  return observation;
}

ActionOutcome action_outcome(Ending ending, int exit_status) {
  switch (ending) {
    case Ending::kExited:
      if (exit_status == 0) return ActionOutcome::kAccepted;
      return exit_status == kBusyExitStatus ? ActionOutcome::kBusy : ActionOutcome::kRefused;
    case Ending::kTimedOut: return ActionOutcome::kBusy;
    case Ending::kSignalled:
    case Ending::kSpawnFailed: break;
  }
  return ActionOutcome::kRefused;
}

}  // namespace unshelver::core::command
