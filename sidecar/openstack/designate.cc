#include "openstack/designate.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "base/json_values.h"
#include "base/text.h"

namespace unshelver::core::designate {

namespace {
using nlohmann::json;

// Designate's Hostname field rejects names of 255 characters or more, the trailing dot included
// (RE_HOSTNAME's "(?!.{255,})" in designate/objects/fields.py).
constexpr std::size_t kMaxNameLength = 254;
constexpr std::size_t kMaxLabelLength = 63;
// Designate's RecordSet.ttl is an integer of 1..2147483647 (designate/objects/recordset.py).
constexpr long long kMaxTtl = 2147483647;
constexpr long long kMaxWaitSeconds = 86'400;

bool is_label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::string ttl_text(std::optional<int> ttl) {
  return ttl ? std::to_string(*ttl) : "the zone's default";
}

// "--ttl=300" and "--ttl 300" alike: the flag's value, or nullopt when the flag needs one and
// there is none left.
std::optional<std::string> flag_value(const std::vector<std::string>& args, std::size_t& index,
                                      std::string_view inline_value, bool has_inline) {
  if (has_inline) return std::string(inline_value);
  if (index + 1 >= args.size()) return std::nullopt;
  return args[++index];
}

std::optional<long long> whole_number(std::string_view text, long long low, long long high) {
  long long value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < low || value > high) return std::nullopt;
  return value;
}

RecordSet recordset_of(const json& object) {
  RecordSet recordset;
  recordset.id = json_string(object, "id");
  recordset.zone_id = json_string(object, "zone_id");
  recordset.name = to_lower(json_string(object, "name"));
  recordset.type = json_string(object, "type");
  if (object.contains("ttl") && object["ttl"].is_number_integer()) recordset.ttl = object["ttl"].get<int>();
  if (object.contains("records") && object["records"].is_array()) {
    for (const json& record : object["records"]) {
      if (record.is_string()) recordset.records.push_back(record.get<std::string>());
    }
  }
  recordset.status = json_string(object, "status");
  recordset.action = json_string(object, "action");
  return recordset;
}

bool same_records(const RecordSet& recordset, const IpAddress& address) {
  if (recordset.records.size() != 1) return false;
  const auto existing = parse_ip(recordset.records.front());
  return existing && *existing == address;
}
}  // namespace

// --- Names and addresses ---------------------------------------------------------------------

Result<std::string> normalize_fqdn(std::string_view text) {
  std::string name = to_lower(text);
  if (name.empty()) return Error{"the name is empty"};
  if (!name.ends_with('.')) name += '.';
  if (name.size() > kMaxNameLength) {
    return Error{"the name is " + std::to_string(name.size()) + " characters long; DNS allows at most " +
                 std::to_string(kMaxNameLength) + " (with the trailing dot)"};
  }
  std::size_t start = 0;
  int labels = 0;
  while (start < name.size()) {
    const std::size_t dot = name.find('.', start);
    const std::string_view label = std::string_view(name).substr(start, dot - start);
    const std::string shown = "label \"" + std::string(label) + "\" of \"" + std::string(text) + "\"";
    if (label.empty()) return Error{"\"" + std::string(text) + "\" has an empty label (two dots in a row)"};
    if (label.size() > kMaxLabelLength) return Error{shown + " is longer than 63 characters"};
    if (label == "*") {
      if (labels != 0)
        return Error{"a wildcard '*' may only be the first label, in \"" + std::string(text) + "\""};
    } else {
      if (!std::all_of(label.begin(), label.end(), is_label_char)) {
        return Error{shown + " may contain only letters, digits, '-' and '_'"};
      }
      if (label.front() == '-' || label.back() == '-') return Error{shown + " may not start or end with '-'"};
    }
    ++labels;
    start = dot + 1;
  }
  if (labels < 2) return Error{"\"" + std::string(text) + "\" is a top-level domain, not a host name"};
  return name;
}

std::string_view record_type_name(RecordType type) {
  return type == RecordType::kA ? "A" : "AAAA";
}

// inet_pton(3) and inet_ntop(3) are glibc's, which netaddr (and so Designate) uses too: the same
// addresses are accepted ("01.2.3.4" and "1:2:3:4:5:6:7::8" are not) and written the same way
// (RFC 5952 compression, "::ffff:a.b.c.d" for IPv4-mapped addresses).
std::optional<IpAddress> parse_ip(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would end the address early.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  const std::string terminated(text);
  IpAddress address;
  address.type = text.find(':') != std::string_view::npos ? RecordType::kAAAA : RecordType::kA;
  const int family = address.type == RecordType::kA ? AF_INET : AF_INET6;
  if (inet_pton(family, terminated.c_str(), address.bytes.data()) != 1) return std::nullopt;
  return address;
}

std::string format_ip(const IpAddress& address) {
  char buffer[INET6_ADDRSTRLEN];
  const int family = address.type == RecordType::kA ? AF_INET : AF_INET6;
  // Cannot fail: the family is known and the buffer holds the longest address.
  if (inet_ntop(family, address.bytes.data(), buffer, sizeof buffer) == nullptr) return "";
  return buffer;
}

// --- Command line ----------------------------------------------------------------------------

Result<EnsureRequest> parse_ensure_arguments(const std::vector<std::string>& args) {
  EnsureRequest request;
  std::vector<std::string> operands;
  for (std::size_t index = 0; index < args.size(); ++index) {
    const std::string& arg = args[index];
    if (arg.size() < 2 || arg[0] != '-') {
      operands.push_back(arg);
      continue;
    }
    const std::size_t equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    const bool has_inline = equals != std::string::npos;
    const std::string_view inline_value =
        has_inline ? std::string_view(arg).substr(equals + 1) : std::string_view();
    auto value = [&]() { return flag_value(args, index, inline_value, has_inline); };
    if (name == "--help" || name == "-h") {
      request.help = true;
    } else if (name == "--json") {
      if (has_inline) return Error{"--json takes no value"};
      request.json = true;
    } else if (name == "--ttl") {
      auto text = value();
      if (!text) return Error{"--ttl needs a number of seconds"};
      auto ttl = whole_number(*text, 1, kMaxTtl);
      if (!ttl)
        return Error{"--ttl must be a whole number of seconds from 1 to 2147483647, got \"" + *text + "\""};
      request.ttl = static_cast<int>(*ttl);
    } else if (name == "--config" || name == "-c") {
      auto text = value();
      if (!text || text->empty()) return Error{"--config needs a file name"};
      request.config_path = *text;
    } else if (name == "--wait-seconds") {
      auto text = value();
      if (!text) return Error{"--wait-seconds needs a number of seconds"};
      auto seconds = whole_number(*text, 0, kMaxWaitSeconds);
      if (!seconds)
        return Error{"--wait-seconds must be a whole number from 0 to 86400, got \"" + *text + "\""};
      request.wait = std::chrono::seconds(*seconds);
    } else if (name == "--log-level") {
      auto text = value();
      static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                     "error", "critical", "off"};
      if (!text || std::find(std::begin(kLevels), std::end(kLevels), *text) == std::end(kLevels)) {
        return Error{"--log-level needs one of trace, debug, info, warn, error, critical, off"};
      }
      request.log_level = *text;
    } else {
      return Error{"unknown option " + name + " for `dns`"};
    }
  }
  if (request.help) return request;
  if (operands.empty()) return Error{"`dns` needs a sub-command: ensure"};
  if (operands.front() != "ensure")
    return Error{"unknown `dns` sub-command \"" + operands.front() + "\" (there is: ensure)"};
  if (operands.size() != 3) {
    return Error{"`dns ensure` needs exactly two arguments, FQDN and IP, got " +
                 std::to_string(operands.size() - 1)};
  }
  auto fqdn = normalize_fqdn(operands[1]);
  if (!fqdn) return Error{"bad FQDN: " + fqdn.error().message};
  request.fqdn = std::move(*fqdn);
  auto address = parse_ip(operands[2]);
  if (!address) return Error{"\"" + operands[2] + "\" is not an IPv4 or IPv6 address"};
  request.address = *address;
  return request;
}

// --- Zones -----------------------------------------------------------------------------------

Result<ZonePage> parse_zone_page(std::string_view body) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("zones") || !document["zones"].is_array()) {
    return Error{"Designate's zone list is not the documented JSON ({\"zones\": [...]})"};
  }
  ZonePage page;
  for (const json& entry : document["zones"]) {
    Zone zone;
    zone.id = json_string(entry, "id");
    zone.name = to_lower(json_string(entry, "name"));
    zone.status = json_string(entry, "status");
    zone.type = json_string(entry, "type");
    if (zone.id.empty() || zone.name.empty()) continue;  // nothing to create a record in
    if (!zone.name.ends_with('.')) zone.name += '.';
    page.zones.push_back(std::move(zone));
  }
  if (document.contains("links") && document["links"].is_object())
    page.next = json_string(document["links"], "next");
  return page;
}

std::string next_page_path(std::string_view next_link) {
  const std::size_t at = next_link.find("/v2/");
  if (at == std::string_view::npos) return "";
  return std::string(next_link.substr(at));
}

std::vector<std::string> candidate_zone_names(std::string_view fqdn) {
  std::vector<std::string> names;
  std::string_view rest = fqdn;
  while (!rest.empty() && rest != ".") {
    names.emplace_back(rest);
    const std::size_t dot = rest.find('.');
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return names;
}

std::optional<Zone> choose_zone(std::string_view fqdn, const std::vector<Zone>& zones) {
  const std::string name = to_lower(fqdn);
  const Zone* best = nullptr;
  for (const Zone& zone : zones) {
    if (zone.status == "DELETED") continue;
    const bool apex = name == zone.name;
    const bool inside = name.size() > zone.name.size() && name.ends_with(zone.name) &&
                        name[name.size() - zone.name.size() - 1] == '.';
    if ((apex || inside) && (best == nullptr || zone.name.size() > best->name.size())) best = &zone;
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

// --- Recordsets ------------------------------------------------------------------------------

RecordStatus parse_record_status(std::string_view status) {
  if (status == "ACTIVE") return RecordStatus::kActive;
  if (status == "PENDING") return RecordStatus::kPending;
  if (status == "ERROR") return RecordStatus::kError;
  if (status == "DELETED") return RecordStatus::kDeleted;
  return RecordStatus::kUnknown;
}

Result<RecordSet> parse_recordset(std::string_view body) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) return Error{"Designate's recordset answer is not JSON"};
  RecordSet recordset = recordset_of(document);
  if (recordset.id.empty() || recordset.status.empty())
    return Error{"Designate's recordset answer has no id or status"};
  return recordset;
}

Result<std::vector<RecordSet>> parse_recordsets(std::string_view body) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("recordsets") || !document["recordsets"].is_array()) {
    return Error{"Designate's recordset list is not the documented JSON ({\"recordsets\": [...]})"};
  }
  std::vector<RecordSet> recordsets;
  for (const json& entry : document["recordsets"]) {
    RecordSet recordset = recordset_of(entry);
    if (!recordset.id.empty()) recordsets.push_back(std::move(recordset));
  }
  return recordsets;
}

std::string recordsets_path(std::string_view zone_id) {
  return "/v2/zones/" + percent_encode(zone_id) + "/recordsets";
}

std::string recordset_path(std::string_view zone_id, std::string_view recordset_id) {
  return recordsets_path(zone_id) + "/" + percent_encode(recordset_id);
}

std::string recordsets_query_path(std::string_view zone_id, std::string_view fqdn, RecordType type) {
  return recordsets_path(zone_id) + "?name=" + percent_encode(fqdn) +
         "&type=" + std::string(record_type_name(type));
}

Result<Plan> plan_recordset(std::string_view fqdn, const IpAddress& address, std::optional<int> ttl,
                            const std::vector<RecordSet>& existing) {
  const std::string name = to_lower(fqdn);
  const std::string_view type = record_type_name(address.type);
  std::vector<const RecordSet*> matches;
  for (const RecordSet& recordset : existing) {
    if (recordset.name == name && recordset.type == type) matches.push_back(&recordset);
  }
  if (matches.size() > 1) {
    return Error{"Designate lists " + std::to_string(matches.size()) + " " + std::string(type) +
                 " recordsets named " + name + "; refusing to guess which one to change"};
  }
  Plan plan;
  if (matches.empty()) {
    plan.kind = Plan::Kind::kCreate;
    plan.ttl = ttl.value_or(kDefaultTtl);
    plan.body = create_body(name, address, *plan.ttl);
    return plan;
  }
  const RecordSet& current = *matches.front();
  plan.recordset_id = current.id;
  const bool records_match = same_records(current, address);
  const bool ttl_matches = !ttl || current.ttl == ttl;
  const bool in_error = parse_record_status(current.status) == RecordStatus::kError;
  plan.ttl = ttl ? ttl : current.ttl;
  if (records_match && ttl_matches && !in_error) {
    plan.kind = Plan::Kind::kUnchanged;
    return plan;
  }
  std::vector<std::string> reasons;
  if (!records_match) {
    const std::string before = current.records.empty() ? "(none)" : join(current.records, ",");
    reasons.push_back("records " + before + " -> " + format_ip(address));
  }
  if (!ttl_matches) reasons.push_back("ttl " + ttl_text(current.ttl) + " -> " + std::to_string(*ttl));
  if (in_error) reasons.push_back("the recordset was in ERROR");
  plan.kind = Plan::Kind::kUpdate;
  plan.reason = join(reasons, ", ");
  plan.body = update_body(address, ttl);
  return plan;
}

std::string create_body(std::string_view fqdn, const IpAddress& address, int ttl) {
  const json body = {{"name", std::string(fqdn)},
                     {"type", std::string(record_type_name(address.type))},
                     {"ttl", ttl},
                     {"records", json::array({format_ip(address)})}};
  return body.dump();
}

std::string update_body(const IpAddress& address, std::optional<int> ttl) {
  json body = {{"records", json::array({format_ip(address)})}};
  if (ttl) body["ttl"] = *ttl;
  return body.dump();
}

PollVerdict poll_verdict(RecordStatus status) {
  switch (status) {
    case RecordStatus::kActive: return PollVerdict::kDone;
    case RecordStatus::kError:
    case RecordStatus::kDeleted: return PollVerdict::kFailed;
    case RecordStatus::kPending:
    case RecordStatus::kUnknown: break;
  }
  return PollVerdict::kWait;
}

std::chrono::milliseconds poll_delay(int poll) {
  const double grown = 500.0 * std::pow(1.5, std::clamp(poll - 1, 0, 10));
  return std::chrono::milliseconds(static_cast<long long>(std::min(grown, 2000.0)));
}

// --- Result ----------------------------------------------------------------------------------

std::string outcome_line(const Outcome& outcome) {
  std::string line = outcome.verb + " " + outcome.fqdn + " " +
                     std::string(record_type_name(outcome.address.type)) + " " + format_ip(outcome.address) +
                     " (ttl " + ttl_text(outcome.ttl) + ") in zone " + outcome.zone_name + ": " +
                     outcome.status;
  if (!outcome.reason.empty()) line += " (" + outcome.reason + ")";
  return line;
}

std::string outcome_json(const Outcome& outcome) {
  const json object = {{"result", outcome.verb},
                       {"name", outcome.fqdn},
                       {"type", std::string(record_type_name(outcome.address.type))},
                       {"records", json::array({format_ip(outcome.address)})},
                       {"ttl", outcome.ttl ? json(*outcome.ttl) : json()},
                       {"zone", outcome.zone_name},
                       {"zone_id", outcome.zone_id},
                       {"recordset_id", outcome.recordset_id},
                       {"status", outcome.status},
                       {"reason", outcome.reason}};
  // Designate's ids and statuses are ASCII, but a replacement beats an exception on odd bytes.
  return object.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_duplicate_recordset(long status, std::string_view body) {
  if (status != 409) return false;
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const std::string type = json_string(document, "type");
  return type.empty() || type == "duplicate_recordset";
}

}  // namespace unshelver::core::designate
