#include "cli/dns_command.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/log_format.h"
#include "config/files.h"
#include "openstack/designate.h"
#include "openstack/keystone.h"
#include "openstack/session.h"
#include "uv/http_client.h"
#include "uv/loop.h"
#include "uv/timer.h"

namespace unshelver::app {

const char* const kDnsUsage = R"(Usage:
  unshelver dns ensure FQDN IP [--ttl N] [--config FILE] [--wait-seconds N] [--json]
                               [--log-level LEVEL]

Creates or updates the A record (AAAA for an IPv6 address) of FQDN in the longest matching
Designate zone of the project so that it holds exactly IP, then waits until it is ACTIVE.
  --ttl N            the record's TTL in seconds (default 300 for a new record; an existing
                     record keeps its TTL unless --ttl is given)
  --config FILE      the configuration with the `openstack` section (default $UNSHELVER_CONFIG,
                     else ./config.yaml, else the OS_* variables alone)
  --wait-seconds N   how long to wait for ACTIVE (default 120; 0: do not wait)
  --json             print the result as one JSON object
  --log-level LEVEL  also log the session's retries and requests (info, debug, ...)

Exit codes: 0 done or unchanged, 1 no zone for FQDN, 2 configuration or API error, 64 usage.
)";

namespace {

namespace designate = core::designate;
using designate::Plan;

// How many pages of zones to follow at most. Designate's default page is 20 zones, so this is
// 20,000 zones: a next link that never ends (a broken proxy) cannot keep the command running.
constexpr int kMaxZonePages = 1000;
// How many times a create that lost a race (409 duplicate_recordset) is turned into a fresh look.
constexpr int kMaxConflicts = 3;
// At most this many zone names are listed in the "no zone" message.
constexpr std::size_t kZonesShown = 10;

// The configuration named by --config or $UNSHELVER_CONFIG, else ./config.yaml when it exists,
// else none: then the OS_* variables alone give the credentials, as the openstack CLI works.
Result<core::Config> load_dns_config(const std::string& flag_path,
                                     const std::map<std::string, std::string>& env) {
  const auto env_config = env.find("UNSHELVER_CONFIG");
  const bool named = !flag_path.empty() || (env_config != env.end() && !env_config->second.empty());
  std::string path = !flag_path.empty() ? flag_path : named ? env_config->second : "config.yaml";
  std::error_code ignored;
  if (!named && !std::filesystem::exists(path, ignored)) path.clear();
  return load_openstack_config(path, env);
}

void setup_logging(const std::string& level) {
  auto logger = spdlog::get("unshelver");
  if (!logger) logger = spdlog::stderr_color_mt("unshelver");
  spdlog::set_default_logger(logger);
  use_log_format();
  // Quiet unless asked: an ops script wants the one result line, and the error (if any) is
  // printed once by the command itself rather than also by the session's log.
  spdlog::set_level(spdlog::level::from_str(level.empty() ? "off" : level));
}

// One `dns ensure` run on the loop: a chain of requests, each step started by the answer to the
// previous one, that ends in finish(). finish() closes the session and the HTTP client, so that
// uv_run returns.
class EnsureRun {
 public:
  EnsureRun(uv_loop_t* loop, io::HttpClient& client, providers::OpenStackSession& session,
            designate::EnsureRequest request)
      : client_(client), session_(session), request_(std::move(request)), poll_timer_(loop) {}

  void start() { list_zones("/v2/zones"); }
  bool finished() const { return finished_; }
  int exit_code() const { return exit_code_; }

 private:
  using Response = io::ClientResponse;

  void send(std::string method, std::string path, std::string body,
            void (EnsureRun::*on_answer)(const std::string& what, const Response&)) {
    const std::string what = method + " " + path;
    spdlog::debug("designate: {}", what);
    providers::ApiRequest api;
    api.service_type = "dns";
    api.method = std::move(method);
    api.path = std::move(path);
    api.body = std::move(body);
    session_.request(std::move(api), [this, what, on_answer](const Response& response) {
      if (finished_) return;
      (this->*on_answer)(what, response);
    });
  }

  // --- zones ---------------------------------------------------------------------------------

  void list_zones(std::string path) {
    seen_pages_.insert(path);
    send("GET", std::move(path), "", &EnsureRun::on_zones);
  }

  void on_zones(const std::string& what, const Response& response) {
    if (!response.is_2xx()) return fail_api(what, response);
    auto page = designate::parse_zone_page(response.body);
    if (!page) return fail(kDnsExitFailed, what + ": " + page.error().message);
    for (auto& zone : page->zones) zones_.push_back(std::move(zone));
    // Designate adds links.next whenever a page is full; a path already followed means the links
    // go round in a circle, and the zones seen so far are all there is.
    const std::string next = designate::next_page_path(page->next);
    if (!next.empty() && !seen_pages_.contains(next) &&
        static_cast<int>(seen_pages_.size()) < kMaxZonePages) {
      return list_zones(next);
    }
    auto zone = designate::choose_zone(request_.fqdn, zones_);
    if (!zone) return fail(kDnsExitNoZone, no_zone_message());
    zone_ = std::move(*zone);
    spdlog::info("designate: {} belongs in zone {} ({})", request_.fqdn, zone_.name, zone_.id);
    look_up();
  }

  std::string no_zone_message() const {
    std::string looked;
    for (const std::string& name : designate::candidate_zone_names(request_.fqdn)) {
      looked += (looked.empty() ? "" : ", ") + name;
    }
    std::string have;
    for (std::size_t i = 0; i < zones_.size() && i < kZonesShown; ++i) {
      have += (i == 0 ? "" : ", ") + zones_[i].name;
    }
    if (zones_.size() > kZonesShown) have += ", ... (" + std::to_string(zones_.size()) + " in all)";
    return "no Designate zone of the project contains " + request_.fqdn + " (looked for " + looked + "; " +
           (zones_.empty() ? std::string("the project has no zones") : "the project's zones are " + have) +
           ")";
  }

  // --- the recordset -------------------------------------------------------------------------

  void look_up() {
    send("GET", designate::recordsets_query_path(zone_.id, request_.fqdn, request_.address.type), "",
         &EnsureRun::on_lookup);
  }

  void on_lookup(const std::string& what, const Response& response) {
    if (!response.is_2xx()) return fail_api(what, response);
    auto recordsets = designate::parse_recordsets(response.body);
    if (!recordsets) return fail(kDnsExitFailed, what + ": " + recordsets.error().message);
    auto plan = designate::plan_recordset(request_.fqdn, request_.address, request_.ttl, *recordsets);
    if (!plan) return fail(kDnsExitFailed, plan.error().message);
    plan_ = std::move(*plan);
    switch (plan_.kind) {
      case Plan::Kind::kCreate:
        spdlog::info("designate: creating {} {}", request_.fqdn,
                     designate::record_type_name(request_.address.type));
        return send("POST", designate::recordsets_path(zone_.id), plan_.body, &EnsureRun::on_written);
      case Plan::Kind::kUpdate:
        spdlog::info("designate: updating {} ({})", request_.fqdn, plan_.reason);
        return send("PUT", designate::recordset_path(zone_.id, plan_.recordset_id), plan_.body,
                    &EnsureRun::on_written);
      case Plan::Kind::kUnchanged:
        for (const auto& recordset : *recordsets) {
          if (recordset.id == plan_.recordset_id) return observe(recordset);
        }
        break;
    }
    fail(kDnsExitFailed, "internal error: the planned recordset is not in the answer");
  }

  void on_written(const std::string& what, const Response& response) {
    // A concurrent creator, or our own POST that the session retried after its answer was lost,
    // got there first (contract §4: 409 duplicate_recordset). Look again and update that one.
    if (plan_.kind == Plan::Kind::kCreate && response.transport_ok() &&
        designate::is_duplicate_recordset(response.status, response.body) && conflicts_ < kMaxConflicts) {
      ++conflicts_;
      spdlog::info("designate: {} was created meanwhile; looking again", request_.fqdn);
      return look_up();
    }
    if (!response.is_2xx()) return fail_api(what, response);
    auto recordset = designate::parse_recordset(response.body);
    if (!recordset) return fail(kDnsExitFailed, what + ": " + recordset.error().message);
    plan_.recordset_id = recordset->id;
    observe(*recordset);
  }

  // --- waiting for ACTIVE --------------------------------------------------------------------

  void observe(const designate::RecordSet& recordset) {
    last_ = recordset;
    const auto verdict = designate::poll_verdict(designate::parse_record_status(recordset.status));
    if (verdict == designate::PollVerdict::kDone ||
        (verdict == designate::PollVerdict::kWait && request_.wait.count() == 0)) {
      return succeed();
    }
    if (verdict == designate::PollVerdict::kFailed) {
      return fail(kDnsExitFailed, "Designate reports the recordset " + request_.fqdn + " " +
                                      std::string(designate::record_type_name(request_.address.type)) + " (" +
                                      recordset.id + ") as " + recordset.status);
    }
    const auto now = std::chrono::steady_clock::now();
    if (!deadline_) deadline_ = now + request_.wait;
    if (now >= *deadline_) {
      return fail(kDnsExitFailed, "the recordset " + request_.fqdn + " (" + recordset.id + ") is still " +
                                      recordset.status + " after " + std::to_string(request_.wait.count()) +
                                      " s (--wait-seconds)");
    }
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - now);
    const auto delay = std::min(designate::poll_delay(++polls_), remaining);
    poll_timer_.start(delay, [this] {
      send("GET", designate::recordset_path(zone_.id, plan_.recordset_id), "", &EnsureRun::on_polled);
    });
  }

  void on_polled(const std::string& what, const Response& response) {
    if (!response.is_2xx()) return fail_api(what, response);
    auto recordset = designate::parse_recordset(response.body);
    if (!recordset) return fail(kDnsExitFailed, what + ": " + recordset.error().message);
    observe(*recordset);
  }

  // --- the end -------------------------------------------------------------------------------

  void succeed() {
    designate::Outcome outcome;
    outcome.verb = plan_.kind == Plan::Kind::kCreate   ? "created"
                   : plan_.kind == Plan::Kind::kUpdate ? "updated"
                                                       : "unchanged";
    outcome.fqdn = request_.fqdn;
    outcome.address = request_.address;
    outcome.ttl = last_.ttl;
    outcome.zone_name = zone_.name;
    outcome.zone_id = zone_.id;
    outcome.recordset_id = last_.id;
    outcome.status = last_.status;
    outcome.reason = plan_.reason;
    if (conflicts_ > 0 && plan_.kind != Plan::Kind::kCreate) {
      outcome.reason +=
          std::string(outcome.reason.empty() ? "" : "; ") + "another client had created it meanwhile";
    }
    const std::string text =
        request_.json ? designate::outcome_json(outcome) : designate::outcome_line(outcome);
    std::fprintf(stdout, "%s\n", text.c_str());
    std::fflush(stdout);
    finish(kDnsExitOk);
  }

  void fail_api(const std::string& what, const Response& response) {
    if (!response.transport_ok()) {
      // Keystone's failure is about no request in particular; its text names the credentials'
      // source, never their values (openstack_session.h).
      if (!session_.auth_error().empty() && response.error == session_.auth_error()) {
        return fail(kDnsExitFailed, response.error);
      }
      return fail(kDnsExitFailed, what + " failed: " + response.error);
    }
    const std::string message = core::openstack::error_message_of(response.body);
    fail(kDnsExitFailed, "Designate answered " + what + " with HTTP " + std::to_string(response.status) +
                             (message.empty() ? "" : ": " + message));
  }

  void fail(int code, const std::string& message) {
    std::fprintf(stderr, "unshelver dns: %s\n", message.c_str());
    if (request_.json) {
      const nlohmann::json object = {{"result", code == kDnsExitNoZone ? "no_zone" : "error"},
                                     {"name", request_.fqdn},
                                     {"message", message}};
      std::fprintf(stdout, "%s\n",
                   object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      std::fflush(stdout);
    }
    finish(code);
  }

  void finish(int code) {
    finished_ = true;
    exit_code_ = code;
    poll_timer_.stop();
    // Both may be closed from inside their own callbacks (http_client.h, openstack_session.h):
    // no callback runs afterwards, and the loop runs out once their handles have closed.
    session_.close();
    client_.close();
  }

  io::HttpClient& client_;
  providers::OpenStackSession& session_;
  designate::EnsureRequest request_;
  io::Timer poll_timer_;

  std::vector<designate::Zone> zones_;
  std::set<std::string> seen_pages_;
  designate::Zone zone_;
  Plan plan_;
  designate::RecordSet last_;
  int conflicts_ = 0;
  int polls_ = 0;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  bool finished_ = false;
  int exit_code_ = kDnsExitFailed;  // until finish() says otherwise
};

}  // namespace

int run_dns_command(const std::vector<std::string>& args) {
  auto request = designate::parse_ensure_arguments(args);
  if (!request) {
    std::fprintf(stderr, "unshelver dns: %s\n\n%s", request.error().message.c_str(), kDnsUsage);
    return kDnsExitUsage;
  }
  if (request->help) {
    std::fputs(kDnsUsage, stdout);
    return kDnsExitOk;
  }
  setup_logging(request->log_level);

  const auto env = environment_snapshot();
  auto config = load_dns_config(request->config_path, env);
  if (!config) {
    std::fprintf(stderr, "unshelver dns: %s\n", config.error().message.c_str());
    return kDnsExitFailed;
  }
  auto credentials = load_openstack_credentials(*config, env);
  if (!credentials) {
    std::fprintf(stderr, "unshelver dns: openstack: %s\n", credentials.error().message.c_str());
    return kDnsExitFailed;
  }
  providers::SessionSettings settings;
  settings.timeout = config->openstack.api_timeout;
  settings.attempts = std::max(1, config->app.api_retry_attempts);

  io::Loop loop;
  if (int rc = loop.init_error(); rc != 0) {
    std::fprintf(stderr, "unshelver dns: cannot initialise the event loop: %s\n", uv_strerror(rc));
    return kDnsExitFailed;
  }
  int code = kDnsExitFailed;
  {
    // Declared in this order so that they are destroyed in the reverse one, after the loop has
    // run: the run (its timer) first, then the session, then the client it uses.
    io::HttpClient client(loop.get());
    providers::OpenStackSession session(loop.get(), client, std::move(*credentials), settings);
    EnsureRun run(loop.get(), client, session, std::move(*request));
    run.start();
    loop.run();
    code = run.exit_code();
    if (!run.finished()) {
      // Every path ends in finish(); a loop that ran dry before it is a bug, and must not pass
      // for success.
      std::fprintf(stderr, "unshelver dns: internal error: the loop stopped before the command finished\n");
    }
  }
  // The handles closed by the destructors above still need their close callbacks.
  if (int rc = loop.close(); rc != 0)
    std::fprintf(stderr, "unshelver dns: uv_loop_close: %s\n", uv_strerror(rc));
  return code;
}

}  // namespace unshelver::app
