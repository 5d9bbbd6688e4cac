// Exoscale's API v2 as data: the EXO2-HMAC-SHA256 request signature, instances and operations
// read from its answers, an instance's state in Unshelver's terms, and what to send to move it.
// Pure; exoscale/exoscale_client.h sends the requests, exoscale/exoscale_provider.h drives them.
//
// Contract: ../shared/research/api-contracts.md §5 and peers-2026.md §4.1.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backend/reconciler.h"
#include "base/clock.h"
#include "base/result.h"

namespace unshelver::core::exoscale {

inline constexpr std::string_view kDefaultZone = "ch-gva-2";
// `{zone}` is replaced by the backend's zone.
inline constexpr std::string_view kDefaultApiUrl = "https://api-{zone}.exoscale.com/v2";
// How long a signature stays valid; egoscale signs for ten minutes too.
inline constexpr std::chrono::seconds kSignatureLifetime{600};

// "" when `zone` has the shape of an Exoscale zone name (ch-gva-2, ch-dk-2, de-fra-1: two
// letters, two to four letters, a number); otherwise what is wrong. Unknown but well-formed zones are
// accepted: new zones open without a release of Unshelver.
std::string check_zone(std::string_view zone);

// "" when `url_template` is an http(s) URL with a host once `{zone}` is replaced; otherwise what is wrong.
std::string check_api_url(std::string_view url_template);

// The API's base URL for a zone: `url_template` with every `{zone}` replaced.
std::string api_url_for(std::string_view url_template, std::string_view zone);

struct QueryArg {
  std::string name;
  std::string value;  // URL-decoded
};

// The five segments the signature covers, joined by '\n': "METHOD PATH" (the escaped path with
// the /v2 prefix, ':' unescaped), the body, the values of the query parameters that occur once
// (in the alphabetical order of their names, concatenated), an empty header segment, and the
// expiry as a UNIX timestamp.
std::string signature_message(std::string_view method, std::string_view path,
                              const std::vector<QueryArg>& query, std::string_view body,
                              std::int64_t expires);

// The value of the Authorization header:
// "EXO2-HMAC-SHA256 credential=KEY[,signed-query-args=a;b],expires=TS,signature=BASE64".
std::string authorization(std::string_view api_key, std::string_view api_secret, std::string_view method,
                          std::string_view path, const std::vector<QueryArg>& query, std::string_view body,
                          std::int64_t expires);

// The expiry of a request signed at `now`: kSignatureLifetime later, in UNIX seconds.
std::int64_t expiry_for(TimePoint now);

struct Instance {
  std::string id;
  std::string name;
  std::string
      state;  // expunging, starting, destroying, running, stopping, stopped, migrating, error, destroyed
  std::string public_ip;  // "" when the instance has none (yet)
};

Result<Instance> parse_instance(std::string_view body);

// The instances of a GET /v2/instance answer (list-instances: {"instances": [...]}, one answer
// without pages, each item with the fields parse_instance reads). An error when the answer is
// not that JSON, an item lacks its id or state, or it lists more than `max_instances`.
inline constexpr std::size_t kMaxListedInstances = 10'000;
Result<std::vector<Instance>> parse_instance_list(std::string_view body,
                                                  std::size_t max_instances = kMaxListedInstances);

// The id of the one instance in a GET /v2/instance answer whose id or exact name is `wanted` (the
// API has no name filter, so the whole list is searched, as egoscale does). Errors say whether
// none or several matched, with their ids.
Result<std::string> find_instance_id(std::string_view list_body, std::string_view wanted);

struct Operation {
  std::string id;
  std::string state;    // pending, success, failure, timeout
  std::string reason;   // on failure: incorrect, unknown, unavailable, forbidden, busy, fault, ...
  std::string message;  // on failure: the API's words
  bool pending() const { return state == "pending"; }
  bool succeeded() const { return state == "success"; }
};

Result<Operation> parse_operation(std::string_view body);

// What a finished operation that did not succeed says, for the visible reason: "start failed
// (unavailable): no capacity in ch-gva-2"; "" for a pending or successful one.
std::string operation_failure(const Operation& operation, std::string_view action);

// The API's error text from an error answer: `message`, else `error`, else the RFC 9457 `title`
// and `detail`; "" when the body holds none of them.
std::string error_message_of(std::string_view body);

// The instance's state in Unshelver's terms. `migrating` counts as running (the instance serves
// while it moves); an instance being destroyed or destroyed is an error that says so.
CloudObservation observe(const Instance& instance);

// host:port of the instance's public IPv4 address; "" when it has none.
std::string upstream_address(const Instance& instance, int port);

// What to do to move the instance towards awake or asleep from its state.
struct ActionPlan {
  enum class Kind {
    kSend,          // PUT /instance/{id}:`name`
    kAlreadyThere,  // already in (or on its way to) the wanted state
    kBusy,          // another transition runs: observe again, then decide
  } kind = Kind::kAlreadyThere;
  std::string name;    // "start" or "stop"
  std::string reason;  // for kBusy: the state that blocks
};
Result<ActionPlan> wake_plan(const Instance& instance);
Result<ActionPlan> sleep_plan(const Instance& instance);

}  // namespace unshelver::core::exoscale
