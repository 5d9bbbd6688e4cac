// Loop tests for io::ChildProcess: a child's input, outputs and exit status come back as a value;
// a child that hangs is killed (even one that ignores SIGTERM), one that floods its output costs
// no more than the bound, a missing program is a result rather than an exception, and the owner
// may go away while its child runs without leaking a handle or a zombie.
#include "uv/process.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "support/loop.h"

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;
using Outcome = ProcessResult::Outcome;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As the daemon does (App::start): a child that closes its stdin early must not kill us.
    ASSERT_NE(SIG_ERR, std::signal(SIGPIPE, SIG_IGN));
    ASSERT_EQ(0, uv_loop_init(&loop_));
  }
  void TearDown() override { testing::drain_and_close_loop(&loop_); }

  std::optional<ProcessResult> run(ProcessSpec spec, std::chrono::milliseconds limit = 10s) {
    ChildProcess child(&loop_);
    std::optional<ProcessResult> result;
    EXPECT_TRUE(child.start(std::move(spec), [&](ProcessResult done) { result = std::move(done); }));
    EXPECT_FALSE(result.has_value()) << "the callback ran inside start()";
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return result.has_value(); }, limit));
    return result;
  }

  static ProcessSpec shell(std::string script) {
    ProcessSpec spec;
    spec.arguments = {"/bin/sh", "-c", std::move(script), "script-name", "first argument"};
    spec.environment = {"PATH=/usr/bin:/bin", "GREETING=hello from the environment"};
    return spec;
  }

  uv_loop_t loop_{};
};

TEST_F(ProcessTest, WritesTheInputAndReturnsOutputsAndExitStatus) {
  ProcessSpec spec = shell("cat; printf '%s|%s' \"$GREETING\" \"$1\" >&2; exit 3");
  spec.input = "line one\nline two\n";
  auto result = run(std::move(spec));
  ASSERT_TRUE(result);
  EXPECT_EQ(Outcome::kExited, result->outcome);
  EXPECT_EQ(3, result->exit_status);
  EXPECT_FALSE(result->succeeded());
  EXPECT_EQ("line one\nline two\n", result->output);
  EXPECT_EQ("hello from the environment|first argument", result->errors);
  EXPECT_EQ("exited with status 3: hello from the environment|first argument", result->describe());
}

TEST_F(ProcessTest, GivesTheChildOnlyTheEnvironmentItWasGiven) {
  // The tests run on one thread: nothing reads the environment meanwhile.
  ASSERT_EQ(0,
            ::setenv("UNSHELVER_PROCESS_TEST_SECRET", "must-not-leak", 1));  // NOLINT(concurrency-mt-unsafe)
  auto result = run(shell("printf '%s' \"${UNSHELVER_PROCESS_TEST_SECRET:-absent}\""));
  ASSERT_EQ(0, ::unsetenv("UNSHELVER_PROCESS_TEST_SECRET"));  // NOLINT(concurrency-mt-unsafe)
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->succeeded()) << result->describe();
  EXPECT_EQ("absent", result->output);
}

TEST_F(ProcessTest, PassesArgumentsWithoutAShell) {
  const std::filesystem::path marker =
      std::filesystem::temp_directory_path() / ("unshelver-process-test-" + std::to_string(::getpid()));
  std::filesystem::remove(marker);
  ProcessSpec spec;
  const std::string argument = "a; touch " + marker.string() + " $(touch " + marker.string() + ")";
  spec.arguments = {"/bin/echo", argument};
  auto result = run(std::move(spec));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->succeeded()) << result->describe();
  EXPECT_EQ(argument + "\n", result->output);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(ProcessTest, KillsAChildThatHangs) {
  ProcessSpec spec = shell("sleep 30");
  spec.timeout = 200ms;
  auto result = run(std::move(spec));
  ASSERT_TRUE(result);
  EXPECT_EQ(Outcome::kTimedOut, result->outcome);
  EXPECT_LT(result->duration, 10s);
  EXPECT_NE(std::string::npos, result->describe().find("did not finish in time"));
}

TEST_F(ProcessTest, KillsAChildThatIgnoresSigterm) {
  // The ignored SIGTERM is inherited by `sleep` too: only SIGKILL ends the group.
  ProcessSpec spec = shell("trap '' TERM; sleep 30; echo survived");
  spec.timeout = 200ms;
  spec.kill_grace = 200ms;
  auto result = run(std::move(spec));
  ASSERT_TRUE(result);
  EXPECT_EQ(Outcome::kTimedOut, result->outcome);
  EXPECT_EQ("", result->output);
}

TEST_F(ProcessTest, KeepsOnlyTheBoundOfAFlood) {
  ProcessSpec spec = shell("head -c 1000000 /dev/zero; head -c 5000 /dev/zero >&2");
  spec.output_limit = 1000;
  auto result = run(std::move(spec));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->succeeded()) << result->describe();
  EXPECT_EQ(1000U, result->output.size());
  EXPECT_EQ(999'000U, result->output_discarded);
  EXPECT_EQ(1000U, result->errors.size());
  EXPECT_EQ(4000U, result->errors_discarded);
}

TEST_F(ProcessTest, ReportsASignal) {
  auto result = run(shell("kill -USR1 $$"));
  ASSERT_TRUE(result);
  EXPECT_EQ(Outcome::kSignalled, result->outcome);
  EXPECT_EQ(SIGUSR1, result->term_signal);
}

TEST_F(ProcessTest, SurvivesAChildThatDoesNotReadItsInput) {
  ProcessSpec spec = shell("exit 0");
  spec.input = std::string(std::size_t{4} * 1024 * 1024, 'x');
  auto result = run(std::move(spec));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->succeeded()) << result->describe();
}

TEST_F(ProcessTest, ReportsAMissingProgram) {
  ProcessSpec spec;
  spec.arguments = {"/nonexistent/unshelver-no-such-program", "-t"};
  auto result = run(std::move(spec));
  ASSERT_TRUE(result);
  EXPECT_EQ(Outcome::kSpawnFailed, result->outcome);
  EXPECT_NE(std::string::npos, result->error.find("/nonexistent/unshelver-no-such-program"));
  EXPECT_NE(std::string::npos, result->describe().find("no such file"));
}

TEST_F(ProcessTest, ReportsAnEmptyCommand) {
  auto result = run(ProcessSpec{});
  ASSERT_TRUE(result);
  EXPECT_EQ(Outcome::kSpawnFailed, result->outcome);
  EXPECT_EQ("cannot run an empty command: invalid argument", result->describe());
}

TEST_F(ProcessTest, DoesNotWaitForAGrandchildThatKeepsTheOutputsOpen) {
  // The grandchild holds the outputs for 2 s and then ends by itself.
  auto result = run(shell("sleep 2 & echo started"));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->succeeded()) << result->describe();
  EXPECT_EQ("started\n", result->output);
  EXPECT_LT(result->duration, 1500ms);
}

TEST_F(ProcessTest, MayBeDestroyedWhileTheChildRuns) {
  auto child = std::make_unique<ChildProcess>(&loop_);
  bool called = false;
  ASSERT_TRUE(child->start(shell("sleep 30"), [&](const ProcessResult&) { called = true; }));
  EXPECT_TRUE(child->running());
  EXPECT_FALSE(child->start(shell("true"), [](const ProcessResult&) {}));
  child.reset();
  // TearDown's drain requires the child to be reaped and every handle closed within 5 s.
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_FALSE(called);
}

TEST_F(ProcessTest, MayStartTheNextChildFromTheCallback) {
  ChildProcess child(&loop_);
  std::optional<ProcessResult> second;
  ASSERT_TRUE(child.start(shell("echo one"), [&](const ProcessResult& first) {
    EXPECT_EQ("one\n", first.output);
    EXPECT_TRUE(child.start(shell("echo two"), [&](ProcessResult done) { second = std::move(done); }));
  }));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return second.has_value(); }, 10s));
  EXPECT_EQ("two\n", second->output);
}

TEST(FindProgram, LooksAlongThePath) {
  EXPECT_EQ("/bin/sh", find_program("sh", "/nonexistent:/bin"));
  EXPECT_EQ("", find_program("unshelver-no-such-program", "/bin:/usr/bin"));
  EXPECT_EQ("/bin/sh", find_program("/bin/sh", ""));
  EXPECT_EQ("", find_program("/nonexistent/sh", "/bin"));
  EXPECT_EQ("", find_program("", "/bin"));
}

}  // namespace
}  // namespace unshelver::io
