// Loop tests of OpenStackSession: the session and its HttpClient on a real libuv loop, against a
// small fake Keystone and Nova served by our own HttpServer on the same loop (127.0.0.1, port 0).
//
// The fake answers POST /v3/auth/tokens with numbered tokens ("token-1", "token-2", ...) whose
// catalog points "compute" at /compute on the same server; each test scripts the answers of both
// services. Every request the fake receives is recorded with the token it carried and the time it
// arrived, so the tests can check what was sent, how often, and how far apart.
//
// Every test ends with the session closed, the client closed, the server shut down and
// uv_loop_close() == 0 (tests/support/loop.h).
#include "openstack/session.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/time_format.h"
#include "openstack/nova_provider.h"
#include "support/loop.h"
#include "uv/http_client.h"
#include "uv/http_server.h"

namespace unshelver::providers {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr const char* kPassword = "pa55-word-never-shown";

// One scripted answer. `hang` holds the request unanswered (the client must time out).
struct Scripted {
  int status = 200;
  std::string body = "{}";
  io::HeaderList headers;
  bool hang = false;
};

Scripted answer(int status, std::string body = "{}", io::HeaderList headers = {}) {
  Scripted scripted;
  scripted.status = status;
  scripted.body = std::move(body);
  scripted.headers = std::move(headers);
  return scripted;
}

Scripted hang() {
  Scripted scripted;
  scripted.hang = true;
  return scripted;
}

struct Seen {
  std::string method;
  std::string target;
  std::string token;  // X-Auth-Token ("" for Keystone)
  std::string body;
  Clock::time_point at;
};

// Keystone and Nova on one HttpServer. Unscripted requests get 201 with a fresh token (Keystone)
// or 200 {"ok": true} (Nova).
class FakeCloud {
 public:
  explicit FakeCloud(uv_loop_t* loop) {
    core::HttpLimits limits;
    limits.shutdown_grace = 100ms;
    server_ = std::make_unique<io::HttpServer>(
        loop, limits, [this](const io::HttpRequest& request, io::Responder responder) {
          handle(request, std::move(responder));
        });
    auto status = server_->listen("127.0.0.1", 0);
    EXPECT_TRUE(status.ok());
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  void shutdown(std::function<void()> on_closed) { server_->shutdown(std::move(on_closed)); }

  std::chrono::seconds token_lifetime{3600};
  std::deque<Scripted> keystone_script;
  std::deque<Scripted> nova_script;
  std::vector<Seen> keystone_seen;
  std::vector<Seen> nova_seen;
  int tokens_issued = 0;

 private:
  void handle(const io::HttpRequest& request, io::Responder responder) {
    const std::string* token = request.header("X-Auth-Token");
    Seen seen{request.method, request.target, token ? *token : "", request.body, Clock::now()};
    const bool keystone = request.path == "/v3/auth/tokens";
    (keystone ? keystone_seen : nova_seen).push_back(seen);
    std::deque<Scripted>& script = keystone ? keystone_script : nova_script;
    std::optional<Scripted> scripted;
    if (!script.empty()) {
      scripted = script.front();
      script.pop_front();
    }
    if (scripted && scripted->hang) {
      held_.push_back(std::move(responder));
      return;
    }
    if (keystone && !scripted) {
      responder.respond(issue_token());
      return;
    }
    if (!scripted) scripted = Scripted();
    io::HttpResponse response = io::HttpResponse::json(scripted->status, scripted->body);
    for (auto& [name, value] : scripted->headers) response.set_header(name, value);
    responder.respond(std::move(response));
  }

  io::HttpResponse issue_token() {
    const auto expires = std::chrono::system_clock::now() + token_lifetime;
    json body = {
        {"token",
         {{"expires_at", core::format_rfc3339(expires)},
          {"project", {{"id", "project-1"}}},
          {"catalog", json::array({{{"type", "compute"},
                                    {"endpoints", json::array({{{"interface", "public"},
                                                                {"region_id", "RegionOne"},
                                                                {"url", base() + "/compute"}}})}}})}}}};
    io::HttpResponse response = io::HttpResponse::json(201, body.dump());
    response.set_header("X-Subject-Token", "token-" + std::to_string(++tokens_issued));
    return response;
  }

  std::unique_ptr<io::HttpServer> server_;
  std::vector<io::Responder> held_;  // never answered; dropped with the server
};

class OpenStackSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("no_proxy", "127.0.0.1", 1);
    ASSERT_EQ(0, uv_loop_init(&loop_));
    cloud_ = std::make_unique<FakeCloud>(&loop_);
    client_ = std::make_unique<io::HttpClient>(&loop_);
    // Everything the session logs is kept, to check that no secret reaches the log.
    previous_logger_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("session-test", sink));
  }

  void TearDown() override {
    if (session_) session_->close();
    session_.reset();
    client_->close();
    client_.reset();
    bool closed = false;
    cloud_->shutdown([&] { closed = true; });
    testing::drain_and_close_loop(&loop_);
    EXPECT_TRUE(closed);
    cloud_.reset();
    spdlog::set_default_logger(previous_logger_);
  }

  core::openstack::Credentials credentials() const {
    core::openstack::Credentials credentials;
    credentials.auth_url = cloud_->base() + "/v3";
    credentials.username = "demo";
    credentials.user_domain_name = "Default";
    credentials.password = kPassword;
    credentials.project_name = "demo";
    credentials.project_domain_name = "Default";
    credentials.region_name = "RegionOne";
    credentials.source = "config.yaml";
    return credentials;
  }

  void make_session(SessionSettings settings = quick_settings()) {
    session_ = std::make_unique<OpenStackSession>(&loop_, *client_, credentials(), settings);
  }

  static SessionSettings quick_settings() {
    SessionSettings settings;
    settings.timeout = 2s;
    settings.attempts = 3;
    settings.backoff.base = 100ms;
    settings.backoff.max = 1s;
    return settings;
  }

  static ApiRequest servers() {
    ApiRequest request;
    request.service_type = "compute";
    request.path = "/servers/vm-1";
    return request;
  }

  // Sends one request and runs the loop until its answer; the callback must not run inside
  // request().
  io::ClientResponse call(ApiRequest request, std::chrono::milliseconds limit = 10s) {
    std::optional<io::ClientResponse> result;
    session_->request(std::move(request), [&](io::ClientResponse response) { result = std::move(response); });
    EXPECT_FALSE(result.has_value()) << "the callback ran inside request()";
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return result.has_value(); }, limit))
        << "no answer in time";
    return result.value_or(io::ClientResponse{});
  }

  void run_for(std::chrono::milliseconds duration) {
    testing::run_loop_until(
        &loop_, [] { return false; }, duration);
  }

  void expect_no_secret(const std::string& text) {
    EXPECT_EQ(std::string::npos, text.find(kPassword)) << text;
    EXPECT_EQ(std::string::npos, text.find("token-")) << text;
  }

  uv_loop_t loop_{};
  std::unique_ptr<FakeCloud> cloud_;
  std::unique_ptr<io::HttpClient> client_;
  std::unique_ptr<OpenStackSession> session_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

TEST_F(OpenStackSessionTest, FirstRequestAuthenticatesAndCarriesTheToken) {
  make_session();
  EXPECT_EQ("", session_->endpoint("compute"));
  auto response = call(servers());
  ASSERT_TRUE(response.transport_ok()) << response.error;
  EXPECT_EQ(200, response.status);
  ASSERT_EQ(1u, cloud_->keystone_seen.size());
  EXPECT_EQ("POST", cloud_->keystone_seen[0].method);
  auto auth = json::parse(cloud_->keystone_seen[0].body);
  EXPECT_EQ(kPassword, auth["auth"]["identity"]["password"]["user"]["password"]);
  ASSERT_EQ(1u, cloud_->nova_seen.size());
  EXPECT_EQ("/compute/servers/vm-1", cloud_->nova_seen[0].target);
  EXPECT_EQ("token-1", cloud_->nova_seen[0].token);
  EXPECT_EQ(cloud_->base() + "/compute", session_->endpoint("compute"));
  EXPECT_EQ(1u, session_->stats().authentications);
  EXPECT_EQ(1u, session_->stats().requests);
  EXPECT_EQ("", session_->auth_error());
}

TEST_F(OpenStackSessionTest, ConcurrentRequestsWaitForOneAuthentication) {
  make_session();
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    session_->request(servers(), [&](io::ClientResponse response) {
      EXPECT_EQ(200, response.status);
      ++answered;
    });
  }
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return answered == 3; }, 10s));
  EXPECT_EQ(1u, cloud_->keystone_seen.size());
  ASSERT_EQ(3u, cloud_->nova_seen.size());
  for (const Seen& seen : cloud_->nova_seen) EXPECT_EQ("token-1", seen.token);
}

TEST_F(OpenStackSessionTest, TokenIsReusedUntilItNearsExpiryThenRenewed) {
  // Renewal starts 120 s before expiry (keystoneauth's margin); a token that lives 122 s is
  // good for two more seconds.
  cloud_->token_lifetime = 122s;
  make_session();
  EXPECT_EQ(200, call(servers()).status);
  EXPECT_EQ(200, call(servers()).status);
  ASSERT_EQ(2u, cloud_->nova_seen.size());
  EXPECT_EQ("token-1", cloud_->nova_seen[1].token);
  EXPECT_EQ(1u, cloud_->keystone_seen.size());
  run_for(2200ms);
  EXPECT_EQ(200, call(servers()).status);
  EXPECT_EQ(2u, cloud_->keystone_seen.size());
  ASSERT_EQ(3u, cloud_->nova_seen.size());
  EXPECT_EQ("token-2", cloud_->nova_seen[2].token);
  EXPECT_EQ(2u, session_->stats().authentications);
  EXPECT_EQ(0u, session_->stats().reauthentications);
}

TEST_F(OpenStackSessionTest, UnauthorizedReauthenticatesAndRetriesOnce) {
  make_session();
  cloud_->nova_script = {answer(401, R"({"error":{"message":"token revoked"}})")};
  auto response = call(servers());
  EXPECT_EQ(200, response.status);
  EXPECT_EQ(2u, cloud_->keystone_seen.size());
  ASSERT_EQ(2u, cloud_->nova_seen.size());
  EXPECT_EQ("token-1", cloud_->nova_seen[0].token);
  EXPECT_EQ("token-2", cloud_->nova_seen[1].token);
  EXPECT_EQ(1u, session_->stats().reauthentications);
  EXPECT_EQ(0u, session_->stats().retries);
}

TEST_F(OpenStackSessionTest, SecondUnauthorizedIsTheAnswer) {
  make_session();
  cloud_->nova_script = {answer(401), answer(401), answer(200)};
  auto response = call(servers());
  ASSERT_TRUE(response.transport_ok()) << response.error;
  EXPECT_EQ(401, response.status);
  EXPECT_EQ(2u, cloud_->nova_seen.size()) << "a 401 is retried once, not again";
  EXPECT_EQ(2u, cloud_->keystone_seen.size());
  EXPECT_EQ(1u, session_->stats().reauthentications);
}

TEST_F(OpenStackSessionTest, ServerErrorsAreRetriedWithGrowingBackoff) {
  make_session();
  cloud_->nova_script = {answer(503), answer(502)};
  auto response = call(servers());
  EXPECT_EQ(200, response.status);
  ASSERT_EQ(3u, cloud_->nova_seen.size());
  // Equal jitter: retry n waits between base*2^(n-1)/2 and base*2^(n-1).
  const auto first_gap = cloud_->nova_seen[1].at - cloud_->nova_seen[0].at;
  const auto second_gap = cloud_->nova_seen[2].at - cloud_->nova_seen[1].at;
  EXPECT_GE(first_gap, 50ms);
  EXPECT_GE(second_gap, 100ms);
  EXPECT_EQ(2u, session_->stats().retries);
  EXPECT_EQ(3u, session_->stats().requests);
  EXPECT_EQ(1u, cloud_->keystone_seen.size()) << "a 5xx says nothing about the token";
  EXPECT_EQ(1u, (session_->stats().by_service_status.at("compute").at(503)));
}

TEST_F(OpenStackSessionTest, RetriesStopAfterTheConfiguredAttempts) {
  make_session();
  cloud_->nova_script = {answer(500), answer(500), answer(500), answer(200)};
  auto response = call(servers());
  ASSERT_TRUE(response.transport_ok()) << response.error;
  EXPECT_EQ(500, response.status);
  EXPECT_EQ(3u, cloud_->nova_seen.size());
}

TEST_F(OpenStackSessionTest, NotImplementedAndClientErrorsAreNotRetried) {
  make_session();
  cloud_->nova_script = {answer(501), answer(404)};
  EXPECT_EQ(501, call(servers()).status);
  EXPECT_EQ(404, call(servers()).status);
  EXPECT_EQ(2u, cloud_->nova_seen.size());
  EXPECT_EQ(0u, session_->stats().retries);
}

TEST_F(OpenStackSessionTest, RetryAfterIsHonoured) {
  make_session();
  cloud_->nova_script = {answer(429, "{}", {{"Retry-After", "1"}})};
  EXPECT_EQ(200, call(servers()).status);
  ASSERT_EQ(2u, cloud_->nova_seen.size());
  EXPECT_GE(cloud_->nova_seen[1].at - cloud_->nova_seen[0].at, 950ms);
}

TEST_F(OpenStackSessionTest, TimeoutIsRetried) {
  SessionSettings settings = quick_settings();
  settings.timeout = 300ms;
  make_session(settings);
  cloud_->nova_script = {hang()};
  auto response = call(servers());
  EXPECT_EQ(200, response.status);
  EXPECT_EQ(2u, cloud_->nova_seen.size());
  EXPECT_EQ(1u, session_->stats().retries);
  EXPECT_EQ(1u, (session_->stats().by_service_status.at("compute").at(0)));
}

TEST_F(OpenStackSessionTest, KeystoneServerErrorsAreRetried) {
  make_session();
  cloud_->keystone_script = {answer(503), answer(500)};
  EXPECT_EQ(200, call(servers()).status);
  EXPECT_EQ(3u, cloud_->keystone_seen.size());
  EXPECT_GE(cloud_->keystone_seen[1].at - cloud_->keystone_seen[0].at, 50ms);
  EXPECT_EQ(1u, session_->stats().authentications);
  EXPECT_EQ(1u, cloud_->nova_seen.size());
}

TEST_F(OpenStackSessionTest, RefusedCredentialsFailEveryWaiterWithoutTheSecret) {
  make_session();
  cloud_->keystone_script = {answer(401, R"({"error":{"message":"The request requires authentication."}})")};
  int answered = 0;
  for (int i = 0; i < 2; ++i) {
    session_->request(servers(), [&](io::ClientResponse response) {
      EXPECT_FALSE(response.transport_ok());
      EXPECT_EQ(401, response.status);
      EXPECT_NE(std::string::npos, response.error.find("config.yaml")) << response.error;
      expect_no_secret(response.error);
      ++answered;
    });
  }
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return answered == 2; }, 10s));
  EXPECT_EQ(1u, cloud_->keystone_seen.size()) << "refused credentials are not retried";
  EXPECT_TRUE(cloud_->nova_seen.empty());
  EXPECT_EQ(1u, session_->stats().authentication_failures);
  EXPECT_FALSE(session_->auth_error().empty());
  expect_no_secret(session_->auth_error());
  expect_no_secret(log_.str());
  // The next request tries again, and a token clears the error.
  EXPECT_EQ(200, call(servers()).status);
  EXPECT_EQ("", session_->auth_error());
}

TEST_F(OpenStackSessionTest, NoSecretInAnyFailureOrLog) {
  SessionSettings settings = quick_settings();
  settings.timeout = 300ms;
  make_session(settings);
  // Keystone exhausted by server errors; then a token, and Nova failing every way it can.
  cloud_->keystone_script = {answer(500), answer(500), answer(500)};
  auto failed = call(servers());
  EXPECT_FALSE(failed.transport_ok());
  EXPECT_EQ(500, failed.status);
  expect_no_secret(failed.error);
  cloud_->nova_script = {hang(), answer(503), hang(), answer(401), answer(401)};
  auto timed_out = call(servers());
  EXPECT_FALSE(timed_out.transport_ok());
  expect_no_secret(timed_out.error);
  auto refused = call(servers());
  EXPECT_EQ(401, refused.status);
  expect_no_secret(refused.error);
  expect_no_secret(session_->auth_error());
  // The log did record the failures, so the check above looked at something.
  EXPECT_NE(std::string::npos, log_.str().find("retry")) << log_.str();
  expect_no_secret(log_.str());
}

TEST_F(OpenStackSessionTest, UnknownServiceFailsLaterNotInsideRequest) {
  make_session();
  ApiRequest request = servers();
  request.service_type = "volumev3";
  auto response = call(request);
  EXPECT_FALSE(response.transport_ok());
  EXPECT_NE(std::string::npos, response.error.find("volumev3")) << response.error;
  EXPECT_TRUE(cloud_->nova_seen.empty());
}

TEST_F(OpenStackSessionTest, CancelledAndClosedRequestsNeverCallBack) {
  make_session();
  int calls = 0;
  auto id = session_->request(servers(), [&](io::ClientResponse) { ++calls; });
  session_->cancel(id);
  EXPECT_EQ(200, call(servers()).status);
  cloud_->nova_script = {hang()};
  session_->request(servers(), [&](io::ClientResponse) { ++calls; });
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return cloud_->nova_seen.size() == 2; }, 5s));
  session_->close();
  run_for(100ms);
  EXPECT_EQ(0, calls);
  // After close() a request is refused quietly.
  session_->request(servers(), [&](io::ClientResponse) { ++calls; });
  run_for(100ms);
  EXPECT_EQ(0, calls);
}

// NovaServerListing on the same session and fake: one listing of every page serves many lookups.
class NovaServerListingTest : public OpenStackSessionTest {
 protected:
  using Found = std::optional<core::nova::Server>;

  static std::string page(const std::vector<std::string>& ids, const std::string& next_href = "") {
    json servers = json::array();
    for (const std::string& id : ids) servers.push_back({{"id", id}, {"status", "SHELVED_OFFLOADED"}});
    json body = {{"servers", servers}};
    if (!next_href.empty()) body["servers_links"] = json::array({{{"rel", "next"}, {"href", next_href}}});
    return body.dump();
  }

  // Looks `id` up and runs the loop until the answer; the callback must not run inside find().
  Found find(NovaServerListing& listing, const std::string& id, core::MonoTime not_before) {
    std::optional<Found> result;
    listing.find(id, not_before, [&](Found server) { result = std::move(server); });
    EXPECT_FALSE(result.has_value()) << "the callback ran inside find()";
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return result.has_value(); }, 10s))
        << "no answer in time";
    return result.value_or(std::nullopt);
  }
};

TEST_F(NovaServerListingTest, OneListingOfEveryPageServesEveryLookupButNoneOlderThanItsLastAction) {
  make_session();
  NovaServerListing listing(*session_, ServerListingSettings{});
  // The next link names another host: only its query is followed, on the catalog's endpoint, so
  // the token never leaves for it.
  cloud_->nova_script = {
      answer(200, page({"a", "b"}, "http://elsewhere.invalid/v2.1/servers/detail?limit=2&marker=b")),
      answer(200, page({"c"}))};
  const core::MonoTime start = Clock::now();
  std::vector<Found> found(3);
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    listing.find(std::vector<std::string>{"a", "c", "gone"}[static_cast<std::size_t>(i)], start,
                 [&, i](Found server) {
                   found[static_cast<std::size_t>(i)] = std::move(server);
                   ++answered;
                 });
  }
  EXPECT_EQ(0, answered);
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return answered == 3; }, 10s));
  ASSERT_EQ(2U, cloud_->nova_seen.size()) << "one listing of two pages for three lookups";
  EXPECT_EQ("/compute/servers/detail?limit=200", cloud_->nova_seen[0].target);
  EXPECT_EQ("/compute/servers/detail?limit=2&marker=b", cloud_->nova_seen[1].target);
  ASSERT_TRUE(found[0].has_value());
  EXPECT_EQ("SHELVED_OFFLOADED", found[0]->status);
  ASSERT_TRUE(found[1].has_value());
  EXPECT_EQ("c", found[1]->id);
  EXPECT_FALSE(found[2].has_value()) << "a server the listing lacks is read on its own";
  EXPECT_EQ(1U, listing.listings());

  // A lookup whose last action came before the listing was requested is served from it...
  EXPECT_TRUE(find(listing, "b", start).has_value());
  EXPECT_EQ(2U, cloud_->nova_seen.size());
  // ...one whose action came after never is: a new listing is fetched for it.
  cloud_->nova_script = {answer(200, page({"b"}))};
  EXPECT_TRUE(find(listing, "b", Clock::now()).has_value());
  EXPECT_EQ(3U, cloud_->nova_seen.size());
  EXPECT_EQ(2U, listing.listings());
}

TEST_F(NovaServerListingTest, AListingPastItsAgeIsFetchedAgain) {
  make_session();
  ServerListingSettings settings;
  settings.max_age = 50ms;
  NovaServerListing listing(*session_, settings);
  cloud_->nova_script = {answer(200, page({"a"})), answer(200, page({"a"}))};
  const core::MonoTime start = Clock::now();
  EXPECT_TRUE(find(listing, "a", start).has_value());
  run_for(100ms);
  EXPECT_TRUE(find(listing, "a", start).has_value());
  EXPECT_EQ(2U, cloud_->nova_seen.size());
}

TEST_F(NovaServerListingTest, BoundsAndFailuresFallBackToTheSingleRead) {
  make_session();
  ServerListingSettings settings;
  settings.max_pages = 1;
  NovaServerListing listing(*session_, settings);
  // The page bound: the second page is not asked for, so its server is not found.
  cloud_->nova_script = {answer(200, page({"a"}, "http://x/servers/detail?limit=1&marker=a"))};
  const core::MonoTime start = Clock::now();
  EXPECT_FALSE(find(listing, "b", start).has_value());
  EXPECT_TRUE(find(listing, "a", start).has_value());
  EXPECT_EQ(1U, cloud_->nova_seen.size());
  // A refused listing, or one that is not Nova's JSON, answers nullopt and keeps nothing.
  cloud_->nova_script = {answer(403, R"({"forbidden":{"message":"no"}})"), answer(200, "[]")};
  EXPECT_FALSE(find(listing, "a", Clock::now()).has_value());
  EXPECT_FALSE(find(listing, "a", Clock::now()).has_value());
  EXPECT_EQ(3U, cloud_->nova_seen.size());
  EXPECT_EQ(1U, listing.listings());
}

TEST_F(NovaServerListingTest, CancelledAndClosedLookupsNeverCallBack) {
  make_session();
  NovaServerListing listing(*session_, ServerListingSettings{});
  cloud_->nova_script = {answer(200, page({"a"}))};
  int calls = 0;
  const auto id = listing.find("a", Clock::now(), [&](const Found&) { ++calls; });
  listing.cancel(id);
  EXPECT_TRUE(find(listing, "a", Clock::now() - 1h).has_value());
  cloud_->nova_script = {hang()};
  listing.find("a", Clock::now(), [&](const Found&) { ++calls; });
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return cloud_->nova_seen.size() == 2; }, 5s));
  listing.close();
  run_for(100ms);
  EXPECT_EQ(0, calls);
}

}  // namespace
}  // namespace unshelver::providers
