// Loop tests of ExoscaleClient: its requests on a real libuv loop against a small scripted server
// (our own HttpServer on 127.0.0.1, port 0). Each attempt carries a fresh EXO2-HMAC-SHA256 header
// whose expiry follows the injected clock; 503 and 429 are retried (Retry-After honoured), 403 is
// not; the secret appears in no header but the signature's and in no log line.
#include "exoscale/exoscale_client.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "exoscale/exoscale.h"
#include "support/loop.h"
#include "uv/http_server.h"

namespace unshelver::providers {
namespace {

using namespace std::chrono_literals;

constexpr const char* kKey = "EXOlooptest0000000000000000";
constexpr const char* kSecret = "loop-test-secret-never-logged";

struct Seen {
  std::string method;
  std::string target;
  std::string authorization;
  std::string content_type;
  std::string body;
};

class ExoscaleClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("no_proxy", "127.0.0.1", 1);
    ASSERT_EQ(0, uv_loop_init(&loop_));
    core::HttpLimits limits;
    limits.shutdown_grace = 100ms;
    server_ = std::make_unique<
        io::HttpServer>(&loop_, limits, [this](const io::HttpRequest& request, io::Responder responder) {
      const std::string* auth = request.header("Authorization");
      const std::string* type = request.header("Content-Type");
      seen_.push_back({request.method, request.target, auth ? *auth : "", type ? *type : "", request.body});
      io::HttpResponse response = io::HttpResponse::json(200, "{}");
      if (!script_.empty()) {
        response = std::move(script_.front());
        script_.pop_front();
      }
      responder.respond(std::move(response));
    });
    ASSERT_TRUE(server_->listen("127.0.0.1", 0).ok());
    http_ = std::make_unique<io::HttpClient>(&loop_);
    previous_logger_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "exoscale-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_)));
    ExoscaleClientSettings settings;
    settings.api_url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/v2/";
    settings.timeout = 2s;
    settings.attempts = 3;
    settings.backoff.base = 50ms;
    settings.backoff.max = 200ms;
    settings.now = [this] { return now_; };
    client_ = std::make_unique<ExoscaleClient>(&loop_, *http_, ExoscaleCredentials{kKey, kSecret}, settings);
  }

  void TearDown() override {
    client_->close();
    client_.reset();
    http_->close();
    http_.reset();
    bool closed = false;
    server_->shutdown([&] { closed = true; });
    testing::drain_and_close_loop(&loop_);
    EXPECT_TRUE(closed);
    server_.reset();
    spdlog::set_default_logger(previous_logger_);
    EXPECT_EQ(std::string::npos, log_.str().find(kSecret)) << log_.str();
  }

  io::ClientResponse call(std::string method, std::string path, std::string body = "") {
    std::optional<io::ClientResponse> result;
    client_->request(std::move(method), std::move(path), std::move(body),
                     [&](io::ClientResponse response) { result = std::move(response); });
    EXPECT_FALSE(result.has_value()) << "the callback ran inside request()";
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return result.has_value(); }, 10s));
    return result.value_or(io::ClientResponse{});
  }

  static io::HttpResponse answer(int status, std::string body, std::string retry_after = "") {
    io::HttpResponse response = io::HttpResponse::json(status, std::move(body));
    if (!retry_after.empty()) response.set_header("Retry-After", retry_after);
    return response;
  }

  uv_loop_t loop_{};
  std::unique_ptr<io::HttpServer> server_;
  std::unique_ptr<io::HttpClient> http_;
  std::unique_ptr<ExoscaleClient> client_;
  std::deque<io::HttpResponse> script_;
  std::vector<Seen> seen_;
  std::chrono::system_clock::time_point now_{std::chrono::seconds(1'700'000'000)};
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

TEST_F(ExoscaleClientTest, SignsTheStartWithItsBodyAndTheInjectedClock) {
  const std::string path = "/instance/85664334-0fd5-47bd-94a1-b4f40b1d2eb7:start";
  io::ClientResponse response = call("PUT", path, "{}");
  EXPECT_EQ(response.status, 200);
  ASSERT_EQ(seen_.size(), 1U);
  EXPECT_EQ(seen_[0].target, "/v2" + path);
  EXPECT_EQ(seen_[0].body, "{}");
  EXPECT_EQ(seen_[0].content_type, "application/json");
  EXPECT_EQ(seen_[0].authorization,
            core::exoscale::authorization(kKey, kSecret, "PUT", "/v2" + path, {}, "{}", 1'700'000'600));
}

TEST_F(ExoscaleClientTest, RetriesA503AndA429WithAFreshSignatureButNotA403) {
  script_.push_back(answer(503, R"({"message":"Endpoint template temporarily unavailable"})"));
  script_.push_back(answer(429, R"({"message":"slow down"})", "0"));
  client_->request("GET", "/instance/i-1", "", [](const io::ClientResponse&) {});
  // The clock moves between the attempts: each one is signed at its own time.
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [this] { return !seen_.empty(); }, 5s));
  now_ += 60s;
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [this] { return seen_.size() == 3; }, 5s));
  EXPECT_NE(seen_[0].authorization.find("expires=1700000600"), std::string::npos);
  EXPECT_NE(seen_[2].authorization.find("expires=1700000660"), std::string::npos);
  EXPECT_EQ(seen_[2].content_type, "");  // no body, no Content-Type

  seen_.clear();
  script_.push_back(answer(403, R"({"message":"Invalid request signature"})"));
  io::ClientResponse refused = call("GET", "/instance/i-1");
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(seen_.size(), 1U);
}

TEST_F(ExoscaleClientTest, NoCallbackAfterClose) {
  bool called = false;
  client_->request("GET", "/instance", "", [&](const io::ClientResponse&) { called = true; });
  client_->close();
  testing::run_loop_until(
      &loop_, [] { return false; }, 200ms);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace unshelver::providers
