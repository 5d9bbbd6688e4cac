#include "ha/etcd_wire.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/json_values.h"

namespace unshelver::core::etcd {

namespace {

using Json = nlohmann::json;
// The order of the keys in etcd's own documentation, which makes the bodies easy to compare.
using OrderedJson = nlohmann::ordered_json;

std::string b64(std::string_view bytes) {
  return base64_encode(bytes);
}

// int64 as proto3 JSON writes it: a decimal string.
std::string int64_text(std::int64_t number) {
  return std::to_string(number);
}

const char* target_name(CompareTarget target) {
  switch (target) {
    case CompareTarget::kVersion: return "VERSION";
    case CompareTarget::kCreate: return "CREATE";
    case CompareTarget::kMod: return "MOD";
    case CompareTarget::kValue: return "VALUE";
    case CompareTarget::kLease: return "LEASE";
  }
  return "VALUE";
}

// The field of Compare's target_union that goes with the target (rpc.proto: version = 4,
// create_revision = 5, mod_revision = 6, value = 7, lease = 8).
const char* target_field(CompareTarget target) {
  switch (target) {
    case CompareTarget::kVersion: return "version";
    case CompareTarget::kCreate: return "create_revision";
    case CompareTarget::kMod: return "mod_revision";
    case CompareTarget::kValue: return "value";
    case CompareTarget::kLease: return "lease";
  }
  return "value";
}

const char* result_name(CompareResult result) {
  switch (result) {
    case CompareResult::kEqual: return "EQUAL";
    case CompareResult::kNotEqual: return "NOT_EQUAL";
    case CompareResult::kGreater: return "GREATER";
    case CompareResult::kLess: return "LESS";
  }
  return "EQUAL";
}

// A key and, for a prefix, its range_end. etcd refuses an empty key, so the empty prefix is
// spelled as clientv3's WithPrefix spells it: key "\0", range_end "\0", every key.
void add_range(OrderedJson& object, const std::string& key, bool prefix) {
  if (prefix && key.empty()) {
    object["key"] = b64(std::string(1, '\0'));
    object["range_end"] = b64(std::string(1, '\0'));
    return;
  }
  object["key"] = b64(key);
  if (prefix) object["range_end"] = b64(prefix_end(key));
}

OrderedJson compare_json(const Compare& compare) {
  OrderedJson object;
  object["key"] = b64(compare.key);
  object["target"] = target_name(compare.target);
  object["result"] = result_name(compare.result);
  if (compare.target == CompareTarget::kValue) {
    object[target_field(compare.target)] = b64(compare.value);
  } else {
    // Written even when 0: "create_revision 0" is the campaign's condition and must be explicit
    // to a reader, although proto3 would take the absent field for 0 too.
    object[target_field(compare.target)] = int64_text(compare.number);
  }
  return object;
}

OrderedJson operation_json(const Operation& operation) {
  OrderedJson object;
  if (const auto* put = std::get_if<Put>(&operation)) {
    OrderedJson request;
    request["key"] = b64(put->key);
    request["value"] = b64(put->value);
    if (put->lease != 0) request["lease"] = int64_text(put->lease);
    object["request_put"] = std::move(request);
  } else if (const auto* range = std::get_if<Range>(&operation)) {
    OrderedJson request;
    add_range(request, range->key, range->prefix);
    object["request_range"] = std::move(request);
  } else if (const auto* erase = std::get_if<DeleteRange>(&operation)) {
    OrderedJson request;
    add_range(request, erase->key, erase->prefix);
    object["request_delete_range"] = std::move(request);
  }
  return object;
}

OrderedJson operations_json(const std::vector<Operation>& operations) {
  OrderedJson list = OrderedJson::array();
  for (const Operation& operation : operations) list.push_back(operation_json(operation));
  return list;
}

// Parses an answer without exceptions; refuses one that is too large or too deeply nested (the
// parser callback sees each value's depth and drops the deep ones before they are built).
Result<Json> parse_json(std::string_view body, const char* what) {
  if (body.size() > kMaxAnswerBytes) return Error{std::string(what) + ": the answer is too large"};
  bool too_deep = false;
  Json::parser_callback_t guard = [&too_deep](int depth, Json::parse_event_t, Json&) {
    if (depth > kMaxJsonDepth) too_deep = true;
    return depth <= kMaxJsonDepth;
  };
  Json parsed = Json::parse(body.begin(), body.end(), guard, /*allow_exceptions=*/false);
  if (too_deep) return Error{std::string(what) + ": the answer is nested too deeply"};
  if (parsed.is_discarded()) return Error{std::string(what) + ": the answer is not JSON"};
  if (!parsed.is_object()) return Error{std::string(what) + ": the answer is not a JSON object"};
  return parsed;
}

// An int64 field: absent is 0; a decimal string (proto3 JSON) or a JSON integer (which proto3
// readers accept too) is its value; anything else is an error.
Result<std::int64_t> int64_field(const Json& object, const char* name) {
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) return std::int64_t{0};
  if (found->is_number_integer()) {
    if (found->is_number_unsigned() && found->get<std::uint64_t>() > INT64_MAX)
      return Error{std::string("\"") + name + "\" is out of range"};
    return found->get<std::int64_t>();
  }
  if (found->is_string()) {
    const auto& text = found->get_ref<const std::string&>();
    std::int64_t number = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, number);
    if (!text.empty() && ec == std::errc() && ptr == end) return number;
  }
  return Error{std::string("\"") + name + "\" is not an int64"};
}

// A bytes field: absent is ""; otherwise padded base64.
Result<std::string> bytes_field(const Json& object, const char* name) {
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) return std::string();
  if (found->is_string()) {
    if (auto decoded = base64_decode(found->get_ref<const std::string&>())) return std::move(*decoded);
  }
  return Error{std::string("\"") + name + "\" is not base64"};
}

Result<bool> bool_field(const Json& object, const char* name) {
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) return false;
  if (found->is_boolean()) return found->get<bool>();
  return Error{std::string("\"") + name + "\" is not a boolean"};
}

// A nested message: absent is the empty object (proto3 leaves out an empty message too).
Result<const Json*> object_field(const Json& object, const char* name) {
  static const Json kEmpty = Json::object();
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) return &kEmpty;
  if (found->is_object()) return &*found;
  return Error{std::string("\"") + name + "\" is not an object"};
}

Result<const Json*> array_field(const Json& object, const char* name) {
  static const Json kEmpty = Json::array();
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) return &kEmpty;
  if (found->is_array()) return &*found;
  return Error{std::string("\"") + name + "\" is not an array"};
}

Error in(const char* what, const Error& error) {
  return Error{std::string(what) + ": " + error.message};
}

Result<std::int64_t> header_revision(const Json& answer) {
  auto header = object_field(answer, "header");
  if (!header) return header.error();
  return int64_field(**header, "revision");
}

Result<KeyValue> parse_kv(const Json& object) {
  if (!object.is_object()) return Error{"a kv is not an object"};
  KeyValue kv;
  auto key = bytes_field(object, "key");
  if (!key) return key.error();
  kv.key = std::move(*key);
  auto value = bytes_field(object, "value");
  if (!value) return value.error();
  kv.value = std::move(*value);
  for (auto [name, field] :
       {std::pair{"create_revision", &kv.create_revision}, std::pair{"mod_revision", &kv.mod_revision},
        std::pair{"version", &kv.version}, std::pair{"lease", &kv.lease}}) {
    auto number = int64_field(object, name);
    if (!number) return number.error();
    *field = *number;
  }
  return kv;
}

Result<std::vector<KeyValue>> parse_kvs(const Json& object) {
  auto list = array_field(object, "kvs");
  if (!list) return list.error();
  std::vector<KeyValue> kvs;
  kvs.reserve((*list)->size());
  for (const Json& item : **list) {
    auto kv = parse_kv(item);
    if (!kv) return kv.error();
    kvs.push_back(std::move(*kv));
  }
  return kvs;
}

Result<OpResult> parse_op_result(const Json& item) {
  if (!item.is_object()) return Error{"a response is not an object"};
  OpResult result;
  if (item.contains("response_put")) {
    result.kind = OpResult::Kind::kPut;
    return result;
  }
  if (item.contains("response_range")) {
    result.kind = OpResult::Kind::kRange;
    auto range = object_field(item, "response_range");
    if (!range) return range.error();
    auto kvs = parse_kvs(**range);
    if (!kvs) return kvs.error();
    result.kvs = std::move(*kvs);
    return result;
  }
  if (item.contains("response_delete_range")) {
    result.kind = OpResult::Kind::kDelete;
    auto erase = object_field(item, "response_delete_range");
    if (!erase) return erase.error();
    auto deleted = int64_field(**erase, "deleted");
    if (!deleted) return deleted.error();
    result.deleted = *deleted;
    return result;
  }
  // response_txn (a nested txn) is never asked for.
  return Error{"a response of an unknown kind"};
}

// One line of at most 300 characters: an error text goes into logs and the status page.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text;
}

}  // namespace

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string txn_body(const Txn& txn) {
  OrderedJson body;
  OrderedJson compare = OrderedJson::array();
  for (const Compare& item : txn.compare) compare.push_back(compare_json(item));
  body["compare"] = std::move(compare);
  body["success"] = operations_json(txn.success);
  body["failure"] = operations_json(txn.failure);
  return body.dump();
}

std::string range_body(const Range& range) {
  OrderedJson body;
  add_range(body, range.key, range.prefix);
  return body.dump();
}

std::string grant_body(std::int64_t ttl_seconds) {
  OrderedJson body;
  body["TTL"] = int64_text(ttl_seconds);
  return body.dump();
}

std::string keepalive_body(std::int64_t lease_id) {
  OrderedJson body;
  body["ID"] = int64_text(lease_id);
  return body.dump();
}

std::string revoke_body(std::int64_t lease_id) {
  return keepalive_body(lease_id);
}

std::string authenticate_body(std::string_view user, std::string_view password) {
  OrderedJson body;
  // dump() below must not throw on text that is not UTF-8: replace such bytes instead.
  body["name"] = std::string(user);
  body["password"] = std::string(password);
  return body.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

Result<TxnResult> parse_txn(std::string_view body) {
  constexpr const char* kWhat = "etcd txn";
  auto answer = parse_json(body, kWhat);
  if (!answer) return answer.error();
  TxnResult result;
  auto revision = header_revision(*answer);
  if (!revision) return in(kWhat, revision.error());
  result.revision = *revision;
  auto succeeded = bool_field(*answer, "succeeded");
  if (!succeeded) return in(kWhat, succeeded.error());
  result.succeeded = *succeeded;
  auto responses = array_field(*answer, "responses");
  if (!responses) return in(kWhat, responses.error());
  for (const Json& item : **responses) {
    auto op = parse_op_result(item);
    if (!op) return in(kWhat, op.error());
    result.responses.push_back(std::move(*op));
  }
  return result;
}

Result<RangeResult> parse_range(std::string_view body) {
  constexpr const char* kWhat = "etcd range";
  auto answer = parse_json(body, kWhat);
  if (!answer) return answer.error();
  RangeResult result;
  auto revision = header_revision(*answer);
  if (!revision) return in(kWhat, revision.error());
  result.revision = *revision;
  auto kvs = parse_kvs(*answer);
  if (!kvs) return in(kWhat, kvs.error());
  result.kvs = std::move(*kvs);
  return result;
}

Result<Lease> parse_grant(std::string_view body) {
  constexpr const char* kWhat = "etcd lease grant";
  auto answer = parse_json(body, kWhat);
  if (!answer) return answer.error();
  Lease lease;
  auto id = int64_field(*answer, "ID");
  if (!id) return in(kWhat, id.error());
  auto ttl = int64_field(*answer, "TTL");
  if (!ttl) return in(kWhat, ttl.error());
  if (*id == 0) {
    // LeaseGrantResponse has an `error` string of its own (rpc.proto), set instead of an ID.
    const std::string refused = json_string(*answer, "error");
    return Error{std::string(kWhat) + ": " +
                 (refused.empty() ? "no lease ID in the answer" : one_line(refused))};
  }
  lease.id = *id;
  lease.ttl_seconds = *ttl;
  return lease;
}

Result<std::optional<std::int64_t>> parse_keepalive(std::string_view body) {
  constexpr const char* kWhat = "etcd lease keepalive";
  // A streamed answer: the first object, on the first line, is the one for our request.
  const std::size_t newline = body.find('\n');
  if (newline != std::string_view::npos) body = body.substr(0, newline);
  auto answer = parse_json(body, kWhat);
  if (!answer) return answer.error();
  const auto stream_error = answer->find("error");
  if (stream_error != answer->end()) {
    const std::string message = error_message(body);
    return Error{std::string(kWhat) + ": " + (message.empty() ? "etcd answered with an error" : message)};
  }
  auto result = object_field(*answer, "result");
  if (!result) return in(kWhat, result.error());
  auto ttl = int64_field(**result, "TTL");
  if (!ttl) return in(kWhat, ttl.error());
  // proto3 leaves out TTL 0: a lease that is gone, or one at its very end, which is as good as gone.
  if (*ttl <= 0) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(*ttl);
}

Result<std::string> parse_authenticate(std::string_view body) {
  constexpr const char* kWhat = "etcd authenticate";
  auto answer = parse_json(body, kWhat);
  if (!answer) return answer.error();
  const auto token = answer->find("token");
  if (token == answer->end() || !token->is_string() || token->get_ref<const std::string&>().empty())
    return Error{std::string(kWhat) + ": no token in the answer"};
  return token->get<std::string>();
}

std::string error_message(std::string_view body) {
  if (body.size() > kMaxAnswerBytes) return "";
  Json answer = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object()) return "";
  // Unary calls: {"error":"..","code":N,"message":".."}. Streamed calls (keepalive) wrap it:
  // {"error":{"grpc_code":N,"http_code":N,"message":"..","http_status":".."}}.
  const Json* source = &answer;
  const auto nested = answer.find("error");
  if (nested != answer.end() && nested->is_object()) source = &*nested;
  std::string message;
  for (const char* name : {"message", "error"}) {
    const auto found = source->find(name);
    if (found != source->end() && found->is_string() && !found->get_ref<const std::string&>().empty()) {
      message = found->get<std::string>();
      break;
    }
  }
  if (message.empty()) return "";
  for (const char* name : {"code", "grpc_code"}) {
    const auto found = source->find(name);
    if (found != source->end() && found->is_number_integer()) {
      message += " (code " + std::to_string(found->get<std::int64_t>()) + ")";
      break;
    }
  }
  return one_line(std::move(message));
}

bool token_rejected(std::string_view body) {
  const std::string message = error_message(body);
  if (message.empty()) return false;
  return message.find("(code 16)") != std::string::npos ||
         message.find("invalid auth token") != std::string::npos ||
         message.find("revision of auth store is old") != std::string::npos ||
         message.find("user name is empty") != std::string::npos;
}

}  // namespace unshelver::core::etcd
