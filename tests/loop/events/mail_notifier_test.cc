// Loop tests for app::MailNotifier with scripted sendmail programs: a failing sendmail is tried
// again with back-off and then given up (counted, with its reason), the queue is bounded, repeats
// are held back, an outage is mailed once when it crosses the threshold and once on recovery, and
// close() does not wait for a hung sendmail.
#include "events/mail_notifier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>

#include "support/loop.h"

namespace unshelver::app {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class MailNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(SIG_ERR, std::signal(SIGPIPE, SIG_IGN));
    ASSERT_EQ(0, uv_loop_init(&loop_));
    folder_ = fs::temp_directory_path() / ("unshelver-notifier-" + std::to_string(::getpid()) + "-" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(folder_);
    fs::create_directories(folder_);
  }
  void TearDown() override {
    notifier_.reset();
    testing::drain_and_close_loop(&loop_);
    fs::remove_all(folder_);
  }

  // A sendmail script: `body` runs with the message on stdin, in the test's folder.
  std::string script(const std::string& body) {
    const fs::path path = folder_ / "sendmail";
    std::ofstream(path) << "#!/bin/sh\ncd '" << folder_.string() << "' || exit 70\n" << body << "\n";
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  }

  NotifierSettings settings(const std::string& sendmail) {
    NotifierSettings result;
    result.to = {"admin@example.org"};
    result.from = "unshelver@test.example.org";
    result.sendmail = sendmail;
    result.environment = {"PATH=/usr/bin:/bin"};
    result.backoff = core::BackoffPolicy{10ms, 50ms};
    result.health_interval = 20ms;
    result.secrets = {"the-configured-secret"};
    return result;
  }

  static core::EventRecord failed_wake(const std::string& backend) {
    core::EventRecord record;
    record.seq = 7;
    record.at = std::chrono::system_clock::now();
    record.backend = backend;
    record.action = "workflow_failed";
    record.from = "waking";
    record.to = "error";
    record.detail = "wake failed: the-configured-secret leaked by the cloud";
    return record;
  }

  std::size_t messages() const {
    std::size_t count = 0;
    for (const auto& entry : fs::directory_iterator(folder_))
      count += entry.path().extension() == ".eml" ? 1 : 0;
    return count;
  }

  uv_loop_t loop_{};
  fs::path folder_;
  std::unique_ptr<MailNotifier> notifier_;
};

TEST_F(MailNotifierTest, SendsTheMessageOnStdinWithoutSecrets) {
  notifier_ = std::make_unique<MailNotifier>(&loop_, settings(script("cat > \"$$.eml\"; echo \"$@\" > args")),
                                             nullptr);
  notifier_->start();
  notifier_->on_record(failed_wake("gpu"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return notifier_->stats().sent == 1; }, 10s));
  ASSERT_EQ(1U, messages());
  std::ifstream args(folder_ / "args");
  std::string line;
  std::getline(args, line);
  EXPECT_EQ("-t -oi", line);
  for (const auto& entry : fs::directory_iterator(folder_)) {
    if (entry.path().extension() != ".eml") continue;
    std::ifstream file(entry.path());
    const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    EXPECT_NE(std::string::npos, text.find("Subject: [Unshelver] gpu: wake failed"));
    EXPECT_EQ(std::string::npos, text.find("the-configured-secret"));
  }
}

TEST_F(MailNotifierTest, TriesAgainWithBackOffThenGivesUp) {
  auto config = settings(script("cat > /dev/null; echo 'mail queue is full' >&2; exit 75"));
  config.attempts = 3;
  notifier_ = std::make_unique<MailNotifier>(&loop_, std::move(config), nullptr);
  notifier_->on_record(failed_wake("gpu"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return notifier_->stats().given_up == 1; }, 10s));
  EXPECT_EQ(3U, notifier_->stats().failed_attempts);
  EXPECT_EQ(0U, notifier_->stats().sent);
  EXPECT_NE(std::string::npos,
            notifier_->stats().last_error.find("exited with status 75: mail queue is full"));
  EXPECT_EQ(0U, notifier_->queued());
}

TEST_F(MailNotifierTest, ASendThatFailsOnceIsSentOnTheRetry) {
  notifier_ = std::make_unique<MailNotifier>(
      &loop_,
      settings(script("if [ ! -e failed-once ]; then touch failed-once; exit 75; fi; cat > \"$$.eml\"")),
      nullptr);
  notifier_->on_record(failed_wake("gpu"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return notifier_->stats().sent == 1; }, 10s));
  EXPECT_EQ(1U, notifier_->stats().failed_attempts);
  EXPECT_EQ(1U, messages());
}

TEST_F(MailNotifierTest, ReportsAMissingSendmail) {
  auto config = settings((folder_ / "no-such-sendmail").string());
  config.attempts = 1;
  notifier_ = std::make_unique<MailNotifier>(&loop_, std::move(config), nullptr);
  notifier_->on_record(failed_wake("gpu"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return notifier_->stats().given_up == 1; }, 10s));
  EXPECT_NE(std::string::npos, notifier_->stats().last_error.find("no-such-sendmail"));
}

TEST_F(MailNotifierTest, BoundsTheQueueAndHoldsBackRepeats) {
  auto config = settings(script("sleep 0.2; cat > \"$$.eml\""));
  config.max_queued = 2;
  notifier_ = std::make_unique<MailNotifier>(&loop_, std::move(config), nullptr);
  for (const char* backend : {"a", "b", "c", "d", "e"}) notifier_->on_record(failed_wake(backend));
  notifier_->on_record(failed_wake("a"));  // a repeat within the quiet period
  EXPECT_EQ(2U, notifier_->queued());
  EXPECT_EQ(3U, notifier_->stats().queue_full);
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return notifier_->stats().sent == 2; }, 10s));
  EXPECT_EQ(2U, messages());
  nlohmann::json status;
  notifier_->write_status(status);
  EXPECT_EQ(1, status["notifications"]["held_back"]);
}

TEST_F(MailNotifierTest, MailsAnOutageOnceAndItsRecoveryOnce) {
  auto config = settings(script("cat > \"$$-$(date +%s%N).eml\""));
  config.outage_threshold = 1s;
  notifier_ = std::make_unique<MailNotifier>(&loop_, std::move(config), nullptr);
  bool failing = true;
  notifier_->watch("Caddy", [&] { return ServiceHealth{true, failing, "connection refused"}; });
  notifier_->watch("Swift", [] { return ServiceHealth{}; });  // not configured: never mailed
  notifier_->start();
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return notifier_->stats().sent == 1; }, 10s));
  // Still failing: nothing more.
  testing::run_loop_until(
      &loop_, [] { return false; }, 300ms);
  EXPECT_EQ(1U, notifier_->stats().sent);
  failing = false;
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return notifier_->stats().sent == 2; }, 10s));
  testing::run_loop_until(
      &loop_, [] { return false; }, 300ms);
  EXPECT_EQ(2U, notifier_->stats().sent);
  EXPECT_EQ(2U, messages());
}

TEST_F(MailNotifierTest, CloseDoesNotWaitForAHungSendmail) {
  notifier_ = std::make_unique<MailNotifier>(&loop_, settings(script("sleep 30")), nullptr);
  notifier_->on_record(failed_wake("gpu"));
  testing::run_loop_until(
      &loop_, [] { return false; }, 100ms);
  const auto started = std::chrono::steady_clock::now();
  notifier_->close();
  notifier_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

}  // namespace
}  // namespace unshelver::app
