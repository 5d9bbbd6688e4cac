// etcd's v3 API as data: the JSON bodies of etcd's gRPC gateway (POST /v3/kv/txn, /v3/kv/range,
// /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke, /v3/auth/authenticate) and readers of
// its answers. Pure; ha/etcd_client.h sends the bodies and hands the answers here.
//
// Contract (../shared/research/ha-etcd.md §3.2, verified on Debian's etcd 3.4.23): keys and values
// are padded base64 (proto3 JSON's `bytes`); int64 fields (IDs, revisions, TTLs) are JSON strings;
// proto3 leaves out fields that are false, zero or empty, so a failed txn has no "succeeded", an
// empty range no "kvs", a lease etcd no longer knows no "TTL". The readers take an absent field
// for its zero value and refuse a present one of the wrong type. They never throw, and their
// errors name the field that was wrong but never quote the body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace unshelver::core::etcd {

// The largest answer the readers look at; etcd_client.h asks HttpClient to refuse larger ones
// before they arrive. Unshelver's keys hold small records, so 4 MiB leaves room for a wide range.
inline constexpr std::size_t kMaxAnswerBytes = std::size_t{4} * 1024 * 1024;
// JSON nested deeper than this is refused (etcd's answers are five levels deep at most).
inline constexpr int kMaxJsonDepth = 16;

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

enum class CompareTarget { kVersion, kCreate, kMod, kValue, kLease };
enum class CompareResult { kEqual, kNotEqual, kGreater, kLess };

// One condition of a txn. `number` is compared for every target but kValue, which compares
// `value`. A key that does not exist has version, create and mod revisions and lease 0, so
// {target kCreate, kEqual, 0} means "the key is absent" (the campaign's condition).
struct Compare {
  std::string key;
  CompareTarget target = CompareTarget::kValue;
  CompareResult result = CompareResult::kEqual;
  std::int64_t number = 0;
  std::string value;
};

struct Put {
  std::string key;
  std::string value;
  std::int64_t lease = 0;  // 0: the key is bound to no lease
};
struct Range {
  std::string key;
  bool prefix = false;  // prefix: every key that starts with `key`
};
struct DeleteRange {
  std::string key;
  bool prefix = false;
};
using Operation = std::variant<Put, Range, DeleteRange>;

struct Txn {
  std::vector<Compare> compare;
  std::vector<Operation> success;
  std::vector<Operation> failure;
};

struct OpResult {
  enum class Kind { kPut, kRange, kDelete } kind = Kind::kPut;
  std::vector<KeyValue> kvs;  // kRange: the keys found
  std::int64_t deleted = 0;   // kDelete: how many keys went
};

struct TxnResult {
  std::int64_t revision = 0;  // header.revision: for a succeeded txn with a put, the put's mod_revision
  bool succeeded = false;
  std::vector<OpResult> responses;  // one per operation of the branch that ran
};

struct RangeResult {
  std::int64_t revision = 0;
  std::vector<KeyValue> kvs;
};

struct Lease {
  std::int64_t id = 0;
  std::int64_t ttl_seconds = 0;
};

// etcd's range_end for a prefix (clientv3's GetPrefixRangeEnd): the prefix with its last byte
// below 0xff incremented and what follows dropped; "\0" (every key) when there is no such byte.
std::string prefix_end(std::string_view prefix);

std::string txn_body(const Txn& txn);
std::string range_body(const Range& range);
std::string grant_body(std::int64_t ttl_seconds);
std::string keepalive_body(std::int64_t lease_id);
std::string revoke_body(std::int64_t lease_id);
std::string authenticate_body(std::string_view user, std::string_view password);

Result<TxnResult> parse_txn(std::string_view body);
Result<RangeResult> parse_range(std::string_view body);
Result<Lease> parse_grant(std::string_view body);
// The remaining TTL; nullopt when etcd no longer knows the lease (keepalive answers without "TTL").
// The gateway streams this call: the body holds one JSON object, possibly followed by a newline.
Result<std::optional<std::int64_t>> parse_keepalive(std::string_view body);
Result<std::string> parse_authenticate(std::string_view body);  // the token

// etcd's error answer {"error":..,"code":N,"message":..} as one line ("etcdserver: requested
// lease not found (code 5)"); "" when the body is not one.
std::string error_message(std::string_view body);

// Whether an error answer says the auth token is no longer good: invalid or expired (gRPC code
// 16, "etcdserver: invalid auth token"), issued before the auth store changed ("revision of auth
// store is old"), or missing ("user name is empty"). clientv3 authenticates again on these.
bool token_rejected(std::string_view body);

}  // namespace unshelver::core::etcd
