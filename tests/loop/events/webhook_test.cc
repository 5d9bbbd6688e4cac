// Loop tests of WebhookSender (events/webhook.h) against a real HttpServer on 127.0.0.1, both on
// one libuv loop: one attempt at a time and in seq order, the cursor advanced only past accepted
// or unwanted events, failed and rejected attempts counted apart, a valid signature, and a
// Retry-After honoured instead of the back-off.
#include "events/webhook.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "events/webhook_policy.h"
#include "support/loop.h"
#include "uv/http_client.h"
#include "uv/http_server.h"

namespace unshelver::providers {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSecret = "0123456789abcdef-loop-secret";

core::EventRecord record(std::uint64_t seq, std::string action = "unshelve_requested") {
  core::EventRecord r;
  r.seq = seq;
  r.id = "id-" + std::to_string(seq);
  r.action = std::move(action);
  r.backend = "gpu";
  return r;
}

class WebhookSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(0, uv_loop_init(&loop_));
    client_ = std::make_unique<io::HttpClient>(&loop_);
    server_ = std::make_unique<io::HttpServer>(
        &loop_, core::HttpLimits{}, [this](const io::HttpRequest& request, const io::Responder& responder) {
          on_request(request, responder);
        });
    ASSERT_TRUE(server_->listen("127.0.0.1", 0).ok());
  }

  void TearDown() override {
    if (sender_) sender_->close();
    sender_.reset();
    client_->close();
    bool closed = false;
    server_->shutdown([&] { closed = true; });
    testing::run_loop_until(
        &loop_, [&] { return closed; }, 5s);
    timers_.clear();
    server_.reset();
    client_.reset();
    testing::drain_and_close_loop(&loop_);
  }

  // Each request takes the next answer (status, Retry-After) of `answers_`, 204 when none is left;
  // answers come 20 ms later, so that a second request while one is in flight would be seen.
  void on_request(const io::HttpRequest& request, const io::Responder& responder) {
    ++in_flight_;
    most_in_flight_ = std::max(most_in_flight_, in_flight_);
    const std::string* timestamp = request.header(core::kWebhookTimestampHeader);
    const std::string* signature = request.header(core::kWebhookSignatureHeader);
    const bool valid = timestamp != nullptr && signature != nullptr &&
                       *signature == core::webhook_signature(kSecret, std::stoll(*timestamp), request.body);
    if (!valid) ++bad_signatures_;
    auto parsed = core::parse_event_line(request.body);
    seen_.push_back(parsed ? parsed->seq : 0);
    std::pair<int, std::string> answer{204, ""};
    if (!answers_.empty()) {
      answer = answers_.front();
      answers_.pop_front();
    }
    auto timer = std::make_shared<io::Timer>(&loop_);
    timers_.push_back(timer);
    timer->start(answer_delay_, [this, responder, answer] {
      --in_flight_;
      io::HttpResponse response = io::HttpResponse::text(answer.first, "");
      if (!answer.second.empty()) response.set_header("Retry-After", answer.second);
      responder.respond(std::move(response));
    });
  }

  void start_sender(std::vector<std::string> events = {}) {
    core::WebhookConfig config;
    config.name = "test";
    config.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/hook";
    config.secret = kSecret;
    config.events = std::move(events);
    config.timeout = 2s;
    config.retry_max = 60s;
    sender_ = std::make_unique<WebhookSender>(
        &loop_, *client_, config, 0, [this](std::uint64_t through) { progress_.push_back(through); },
        nullptr);
  }

  uv_loop_t loop_{};
  std::unique_ptr<io::HttpClient> client_;
  std::unique_ptr<io::HttpServer> server_;
  std::unique_ptr<WebhookSender> sender_;
  std::deque<std::pair<int, std::string>> answers_;
  std::vector<std::shared_ptr<io::Timer>> timers_;
  std::vector<std::uint64_t> seen_;
  std::vector<std::uint64_t> progress_;
  std::chrono::milliseconds answer_delay_ = 20ms;
  int in_flight_ = 0;
  int most_in_flight_ = 0;
  int bad_signatures_ = 0;
};

TEST_F(WebhookSenderTest, DeliversOneAtATimeInOrderAndRetriesTheSameEvent) {
  answers_ = {{503, "0"}, {404, "0"}, {204, ""}};
  start_sender();
  for (std::uint64_t seq = 1; seq <= 3; ++seq) sender_->enqueue(record(seq));
  sender_->enqueue(record(2));  // older than the newest: ignored
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return sender_->delivered_through() == 3; }, 10s));
  EXPECT_EQ(seen_, (std::vector<std::uint64_t>{1, 1, 1, 2, 3})) << "the same event until it is accepted";
  EXPECT_EQ(most_in_flight_, 1);
  EXPECT_EQ(progress_, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(sender_->stats().delivered, 3u);
  EXPECT_EQ(sender_->stats().failed_attempts, 1u);
  EXPECT_EQ(sender_->stats().rejected_attempts, 1u);
  EXPECT_FALSE(sender_->stats().failing);
  EXPECT_EQ(sender_->pending(), 0u);
  EXPECT_EQ(bad_signatures_, 0);
}

TEST_F(WebhookSenderTest, UnwantedEventsAreSkippedAndTheCursorPassesThem) {
  start_sender({"shelve_complete"});
  sender_->enqueue(record(1));
  sender_->enqueue(record(2, "shelve_complete"));
  sender_->enqueue(record(3));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return sender_->delivered_through() == 3; }, 10s));
  EXPECT_EQ(seen_, (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(sender_->stats().skipped, 2u);
  EXPECT_EQ(sender_->stats().delivered, 1u);
}

TEST_F(WebhookSenderTest, RetryAfterIsHonouredInsteadOfTheBackOff) {
  // Without the Retry-After the first retry would come within a second (1 s back-off, half of it
  // random); with it, not before an hour (capped at retry_max: 60 s).
  answers_ = {{503, "3600"}};
  start_sender();
  sender_->enqueue(record(1));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return sender_->stats().failed_attempts == 1; }, 10s));
  testing::run_loop_until(
      &loop_, [] { return false; }, 1500ms);
  EXPECT_EQ(seen_.size(), 1u) << "retried before the Retry-After";
  EXPECT_TRUE(sender_->stats().failing);
  EXPECT_EQ(sender_->pending(), 1u);
  EXPECT_EQ(sender_->delivered_through(), 0u);
}

// A stop (SIGTERM) while the receiver answers: the answer still moves the cursor, so the
// restart does not send the event again; nothing more is sent.
TEST_F(WebhookSenderTest, FinishWaitsForTheAnswerInFlightAndSendsNothingMore) {
  answer_delay_ = 200ms;
  start_sender();
  sender_->enqueue(record(1));
  sender_->enqueue(record(2));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return seen_.size() == 1; }, 10s));
  bool done = false;
  sender_->finish(5s, [&] { done = true; });
  EXPECT_FALSE(done) << "an attempt is in flight";
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return done; }, 10s));
  EXPECT_EQ(sender_->delivered_through(), 1u);
  EXPECT_EQ(progress_, (std::vector<std::uint64_t>{1}));
  sender_->enqueue(record(3));
  testing::run_loop_until(
      &loop_, [] { return false; }, 300ms);
  EXPECT_EQ(seen_, (std::vector<std::uint64_t>{1})) << "nothing sent after the stop";
}

// A receiver slower than the grace does not hold the stop: its event stays in the outbox.
TEST_F(WebhookSenderTest, FinishGivesUpOnASlowReceiverAfterTheGrace) {
  answer_delay_ = 3s;
  start_sender();
  sender_->enqueue(record(1));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return seen_.size() == 1; }, 10s));
  bool done = false;
  const auto began = std::chrono::steady_clock::now();
  sender_->finish(100ms, [&] { done = true; });
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return done; }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - began, 2s);
  EXPECT_EQ(sender_->delivered_through(), 0u);
  EXPECT_EQ(sender_->pending(), 1u);
  EXPECT_TRUE(progress_.empty());
}

TEST_F(WebhookSenderTest, FinishWithNothingInFlightIsDoneAtOnce) {
  start_sender();
  bool done = false;
  sender_->finish(5s, [&] { done = true; });
  EXPECT_TRUE(done);
}

TEST_F(WebhookSenderTest, ARefusedConnectionIsAFailedAttempt) {
  core::WebhookConfig config;
  config.name = "nobody";
  config.url = "http://127.0.0.1:1/hook";
  config.secret = kSecret;
  config.retry_max = 60s;
  sender_ = std::make_unique<WebhookSender>(&loop_, *client_, config, 0, nullptr, nullptr);
  sender_->enqueue(record(1));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return sender_->stats().failed_attempts >= 1; }, 10s));
  EXPECT_TRUE(sender_->stats().failing);
  EXPECT_NE(sender_->stats().last_error.find("127.0.0.1:1/hook"), std::string::npos)
      << sender_->stats().last_error;
}

}  // namespace
}  // namespace unshelver::providers
