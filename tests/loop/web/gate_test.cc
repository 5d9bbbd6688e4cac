// Loop tests of the gate (web/gate_routes.cc, web/hold_queue.h): Caddy's forward_auth
// sub-requests sent by a real libcurl client to a real HttpServer on one libuv loop, against a
// fake Controller whose backend the tests move through its states.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "support/loop.h"
#include "uv/http_client.h"
#include "uv/http_server.h"
#include "web/hold_queue.h"
#include "web/routes.h"

namespace unshelver::web {
namespace {

using core::BackendState;
using namespace std::chrono_literals;

constexpr const char* kHost = "gpu.example.org";
constexpr const char* kApiKey = "sk-the-right-key";

class GateController : public Controller {
 public:
  GateController() {
    BackendView gpu;
    gpu.name = "gpu";
    gpu.label = "GPU";
    gpu.state = BackendState::kAsleep;
    gpu.upstream = "10.0.0.5:8080";
    gpu.wake_on_request = true;
    views.push_back(gpu);
  }
  std::uint64_t revision() const override { return revision_value; }
  std::vector<BackendView> backends() const override { return views; }
  nlohmann::json status() const override {
    nlohmann::json backends = nlohmann::json::array();
    for (const BackendView& view : views) {
      backends.push_back(
          {{"name", view.name}, {"label", view.label}, {"state", std::string(core::to_string(view.state))}});
    }
    return {{"revision", revision_value}, {"title", "Test"}, {"backends", backends}};
  }
  RequestOutcome wake(const std::string& name, const std::string& actor, const std::string& reason) override {
    wakes.push_back(actor + ": " + reason);
    if (views[0].desired_awake) return RequestOutcome::kNothingToDo;
    views[0].desired_awake = true;
    if (views[0].state == BackendState::kAsleep) views[0].state = BackendState::kWaking;
    ++revision_value;
    return name == "gpu" ? RequestOutcome::kAccepted : RequestOutcome::kUnknownBackend;
  }
  RequestOutcome shelve(const std::string&, const std::string&, const std::string&) override {
    return RequestOutcome::kAccepted;
  }
  void record_event(const std::string&, const std::string&, const std::string&) override {}
  std::string ignore_reason(const io::HttpRequest& request) const override {
    const std::string* agent = request.header("User-Agent");
    return agent != nullptr && agent->find("UptimeRobot") != std::string::npos ? "user_agent" : "";
  }
  void metrics(core::MetricsPage&) const override {}
  std::string backend_for_host(std::string_view host) const override { return host == kHost ? "gpu" : ""; }
  void request_started(const std::string& name, bool counts_as_activity) override {
    started.emplace_back(name, counts_as_activity);
  }
  nlohmann::json events(std::optional<std::uint64_t>, const std::string&, std::size_t) const override {
    return {{"events", nlohmann::json::array()}, {"last_seq", 0}};
  }
  void wait_for_events(std::uint64_t, std::chrono::milliseconds, std::function<void()> then) override {
    then();
  }

  std::vector<BackendView> views;
  std::uint64_t revision_value = 1;
  std::vector<std::string> wakes;
  std::vector<std::pair<std::string, bool>> started;
};

class GateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("no_proxy", "127.0.0.1", 1);
    ASSERT_EQ(0, uv_loop_init(&loop_));
    config_.security.wake_burst = 100;
    core::BackendConfig gpu;
    gpu.name = "gpu";
    gpu.wake_on_request = true;
    gpu.hold.max_requests = 3;
    gpu.hold.max_duration = 30s;
    gpu.hold.retry_after = 7s;
    config_.backends.push_back(gpu);
    auto pages = Pages::load("");
    ASSERT_TRUE(pages) << pages.error().message;
    pages_ = std::make_unique<Pages>(std::move(pages.value()));
    access_ = std::make_unique<AccessControl>(config_, "a signing key of enough length for the test");
    web_ = std::make_unique<WebApp>(*pages_, controller_, *access_, "/manual-shelve");
    start_gate();
    server_ = std::make_unique<io::HttpServer>(
        &loop_, config_.http, [this](const io::HttpRequest& request, const io::Responder& responder) {
          web_->handle(request, responder);
        });
    ASSERT_TRUE(server_->listen("127.0.0.1", 0).ok());
    client_ = std::make_unique<io::HttpClient>(&loop_);
  }

  // (Again) with config_.backends as it is now.
  void start_gate() {
    if (holds_) holds_->close();
    holds_ = std::make_unique<HoldQueue>(
        &loop_, [this](const std::string& name) { return web_->gate_expired(name); }, [] {},
        [this] { web_->retry_deferred_wakes(); });
    web_->enable_gate(*holds_, config_.backends);
  }

  void TearDown() override {
    holds_->close();
    client_->close();
    bool closed = false;
    server_->shutdown([&] { closed = true; });
    testing::run_loop_until(
        &loop_, [&] { return closed; }, 10s);
    holds_.reset();
    client_.reset();
    server_.reset();
    testing::drain_and_close_loop(&loop_);
  }

  struct Pending {
    bool done = false;
    io::ClientResponse response;
  };

  // Sends Caddy's sub-request for a client's `method` `uri` with `headers`; the answer lands in
  // the returned Pending.
  std::shared_ptr<Pending> ask(const std::string& method, const std::string& uri, io::HeaderList headers = {},
                               std::chrono::milliseconds timeout = 20s) {
    io::ClientRequest request;
    request.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/.unshelver/gate/gpu";
    request.headers = {{"Host", kHost},
                       {"X-Forwarded-Method", method},
                       {"X-Forwarded-Uri", uri},
                       {"X-Forwarded-For", "198.51.100.7"}};
    for (auto& header : headers) request.headers.push_back(header);
    request.timeout = timeout;
    auto pending = std::make_shared<Pending>();
    client_->send(std::move(request), [pending](io::ClientResponse response) {
      pending->response = std::move(response);
      pending->done = true;
    });
    return pending;
  }

  io::ClientResponse answer(const std::shared_ptr<Pending>& pending, std::chrono::milliseconds limit = 5s) {
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return pending->done; }, limit))
        << "no answer in time";
    return pending->response;
  }

  void run_for(std::chrono::milliseconds duration) {
    testing::run_loop_until(
        &loop_, [] { return false; }, duration);
  }

  void set_state(BackendState state, bool desired_awake) {
    controller_.views[0].state = state;
    controller_.views[0].desired_awake = desired_awake;
    ++controller_.revision_value;
    web_->backend_changed(controller_.views[0].name);
  }

  static std::string header(const io::ClientResponse& response, const std::string& name) {
    const std::string* value = io::find_header(response.headers, name);
    return value != nullptr ? *value : "";
  }

  uv_loop_t loop_{};
  core::Config config_;
  GateController controller_;
  std::unique_ptr<Pages> pages_;
  std::unique_ptr<AccessControl> access_;
  std::unique_ptr<WebApp> web_;
  std::unique_ptr<HoldQueue> holds_;
  std::unique_ptr<io::HttpServer> server_;
  std::unique_ptr<io::HttpClient> client_;
};

TEST_F(GateTest, AReadyBackendPassesAtOnceAndNamesItsUpstream) {
  set_state(BackendState::kReady, true);
  const io::ClientResponse response = answer(ask("POST", "/v1/chat/completions"));
  EXPECT_EQ(204, response.status);
  EXPECT_EQ("10.0.0.5:8080", header(response, "x-unshelver-upstream"));
  ASSERT_EQ(1u, controller_.started.size());
  EXPECT_TRUE(controller_.started[0].second);
}

TEST_F(GateTest, AnApiRequestWakesTheBackendAndIsHeldUntilItIsReady) {
  auto held = ask("POST", "/v1/chat/completions", {{"Accept", "application/json"}});
  run_for(300ms);
  EXPECT_FALSE(held->done);
  ASSERT_EQ(1u, controller_.wakes.size());
  // The wake names the request and the client Caddy saw, not Caddy's own address.
  EXPECT_EQ("wake-on-request: POST /v1/chat/completions from 198.51.100.7", controller_.wakes[0]);
  EXPECT_EQ(1, holds_->held("gpu"));
  auto second = ask("GET", "/v1/models");
  run_for(100ms);
  EXPECT_EQ(1u, controller_.wakes.size());  // on its way up: no second wake
  set_state(BackendState::kBooting, true);
  run_for(100ms);
  EXPECT_FALSE(held->done);
  set_state(BackendState::kReady, true);
  EXPECT_EQ(204, answer(held).status);
  EXPECT_EQ(204, answer(second).status);
  EXPECT_EQ("10.0.0.5:8080", header(held->response, "x-unshelver-upstream"));
  EXPECT_EQ(2u, holds_->stats("gpu").released);
  EXPECT_EQ(2u, controller_.started.size());
}

TEST_F(GateTest, BrowsersGetTheWaitingPageAs503) {
  const io::ClientResponse response = answer(ask("GET", "/deep/link?x=1", {{"Accept", "text/html"}}));
  EXPECT_EQ(503, response.status);
  EXPECT_NE(std::string::npos, response.body.find("<html")) << response.body;
  EXPECT_TRUE(controller_.wakes.empty());
}

TEST_F(GateTest, AMonitorIsAnsweredAtOnceAndWakesNothing) {
  const io::ClientResponse response = answer(ask("GET", "/health", {{"User-Agent", "UptimeRobot/2.0"}}));
  EXPECT_EQ(503, response.status);
  EXPECT_FALSE(header(response, "retry-after").empty());
  EXPECT_TRUE(controller_.wakes.empty());
  EXPECT_EQ(0, holds_->held("gpu"));
}

TEST_F(GateTest, AKeyedBackendRefusesRequestsWithoutAValidKey) {
  config_.backends[0].api_key_digests = {core::hex(core::to_bytes(core::sha256(kApiKey)))};
  start_gate();
  for (const io::HeaderList& headers :
       {io::HeaderList{}, io::HeaderList{{"Authorization", "Bearer sk-wrong"}},
        io::HeaderList{{"Authorization", "Basic c2stdGhlLXJpZ2h0LWtleQ=="}}}) {
    const io::ClientResponse response = answer(ask("POST", "/v1/chat/completions", headers));
    EXPECT_EQ(401, response.status);
    EXPECT_EQ("Bearer realm=\"gpu\"", header(response, "www-authenticate"));
  }
  EXPECT_TRUE(controller_.wakes.empty());
  auto held = ask("POST", "/v1/chat/completions", {{"Authorization", std::string("bearer ") + kApiKey}});
  run_for(100ms);
  EXPECT_EQ(1u, controller_.wakes.size());
  set_state(BackendState::kReady, true);
  EXPECT_EQ(204, answer(held).status);
}

TEST_F(GateTest, BeyondTheCapRequestsAreRefusedAtOnceWithRetryAfter) {
  std::vector<std::shared_ptr<Pending>> held;
  for (int i = 0; i < 3; ++i) held.push_back(ask("POST", "/v1/chat/completions"));
  run_for(200ms);
  EXPECT_EQ(3, holds_->held("gpu"));
  const io::ClientResponse refused = answer(ask("POST", "/v1/chat/completions"));
  EXPECT_EQ(503, refused.status);
  EXPECT_EQ("7", header(refused, "retry-after"));
  EXPECT_EQ("true", header(refused, "x-should-retry"));
  EXPECT_EQ(1u, holds_->stats("gpu").refused);
  set_state(BackendState::kReady, true);
  for (auto& pending : held) EXPECT_EQ(204, answer(pending).status);
}

TEST_F(GateTest, AnExpiredHoldGetsRetryAfterAndShouldRetry) {
  config_.backends[0].hold.max_duration = std::chrono::seconds(1);
  start_gate();
  const auto begun = std::chrono::steady_clock::now();
  const io::ClientResponse response = answer(ask("POST", "/v1/chat/completions"), 5s);
  EXPECT_GE(std::chrono::steady_clock::now() - begun, 900ms);
  EXPECT_EQ(503, response.status);
  EXPECT_EQ("7", header(response, "retry-after"));
  EXPECT_EQ("true", header(response, "x-should-retry"));
  EXPECT_NE(std::string::npos, response.body.find("not ready in time")) << response.body;
  EXPECT_EQ(1u, holds_->stats("gpu").expired);
}

TEST_F(GateTest, AClientThatLeavesIsForgottenAtOnce) {
  for (int i = 0; i < 3; ++i) ask("POST", "/v1/chat/completions", {}, 200ms);  // curl gives up after 200 ms
  run_for(150ms);
  EXPECT_EQ(3, holds_->held("gpu"));
  run_for(400ms);
  EXPECT_EQ(0, holds_->held("gpu"));
  EXPECT_EQ(3u, holds_->stats("gpu").gone);
}

TEST_F(GateTest, AWakeThatFailsAnswersEveryHeldRequestWithTheReason) {
  auto held = ask("POST", "/v1/chat/completions");
  run_for(100ms);
  controller_.views[0].error = "No valid host was found.";
  set_state(BackendState::kError, true);
  const io::ClientResponse response = answer(held);
  EXPECT_EQ(503, response.status);
  // The classified reason: the gate answers the public, and the cloud's own text is for admins.
  EXPECT_NE(std::string::npos, response.body.find("The cloud has no room for the machine right now"))
      << response.body;
  EXPECT_EQ(std::string::npos, response.body.find("No valid host")) << response.body;
  // And a new request is answered at once, never held.
  EXPECT_EQ(503, answer(ask("POST", "/v1/chat/completions")).status);
  EXPECT_EQ(0, holds_->held("gpu"));
}

// Draining: ready, but the idle monitor wants it asleep. Nothing new may reach it: the request
// is held and wakes it again, and goes through once it is wanted awake.
TEST_F(GateTest, NothingNewReachesABackendAboutToBeShelved) {
  set_state(BackendState::kReady, false);
  const io::ClientResponse response = answer(ask("POST", "/v1/chat/completions"));
  EXPECT_EQ(204, response.status);
  ASSERT_EQ(1u, controller_.wakes.size());
}

TEST_F(GateTest, TheWakeCooldownDefersTheWakeInsteadOfRefusing) {
  config_.security.wake_cooldown = 600ms;
  access_ = std::make_unique<AccessControl>(config_, "a signing key of enough length for the test");
  web_ = std::make_unique<WebApp>(*pages_, controller_, *access_, "/manual-shelve");
  start_gate();
  EXPECT_EQ(0, access_->start_cooldown(std::chrono::steady_clock::now()).count());  // a wake just now
  auto held = ask("POST", "/v1/chat/completions");
  run_for(200ms);
  EXPECT_TRUE(controller_.wakes.empty());
  EXPECT_EQ(1, holds_->held("gpu"));
  run_for(700ms);
  ASSERT_EQ(1u, controller_.wakes.size());
  set_state(BackendState::kReady, true);
  EXPECT_EQ(204, answer(held).status);
}

TEST_F(GateTest, OnlyTheBackendsOwnHostMayAskTheGate) {
  io::ClientRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/.unshelver/gate/gpu";
  request.headers = {{"Host", "launcher.example.org"}, {"X-Forwarded-Method", "GET"}};
  auto pending = std::make_shared<Pending>();
  client_->send(std::move(request), [pending](io::ClientResponse response) {
    pending->response = std::move(response);
    pending->done = true;
  });
  const io::ClientResponse response = answer(pending);
  EXPECT_EQ(404, response.status);
  EXPECT_TRUE(header(response, "x-unshelver-upstream").empty());
  EXPECT_TRUE(controller_.wakes.empty());
}

TEST_F(GateTest, StoppingDropsHeldRequestsUnansweredSoCaddyAsksAgain) {
  auto held = ask("POST", "/v1/chat/completions");
  run_for(100ms);
  holds_->close();
  const io::ClientResponse response = answer(held);
  EXPECT_FALSE(response.transport_ok());  // no answer at all: Caddy's lb_try_duration retries it
}

}  // namespace
}  // namespace unshelver::web
