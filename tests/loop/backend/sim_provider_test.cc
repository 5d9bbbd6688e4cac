// Loop tests of SimProvider's conformance knobs: sim.persist keeps the simulated VM (its phase, the
// end of its transition, the actions it accepted) across a restart of Unshelver, and
// sim.faults_file changes the simulated cloud while it runs (tests/conformance/README.md).
#include "backend/sim_provider.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/loop.h"
#include "uv/files.h"

namespace unshelver::providers {
namespace {

using namespace std::chrono_literals;
using Kind = core::CloudObservation::Kind;

class SimProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(0, uv_loop_init(&loop_));
    char pattern[] = "/tmp/unshelver-sim-XXXXXX";
    ASSERT_NE(nullptr, ::mkdtemp(pattern));
    dir_ = pattern;
    config_.name = "gpu";
    config_.provider = core::ProviderKind::kSim;
    config_.sim.wake_duration = 300ms;
    config_.sim.boot_duration = 10ms;
    config_.sim.sleep_duration = 300ms;
    config_.sim.persist = true;
    config_.sim.faults_file = dir_ + "/faults.json";
  }

  void TearDown() override {
    if (sim_) sim_->close();
    sim_.reset();
    stopped_.clear();
    testing::drain_and_close_loop(&loop_);
    std::filesystem::remove_all(dir_);
  }

  // Starts the sim, as a new process of Unshelver would: the previous one is closed (and kept
  // until the loop is drained, which its handles' close callbacks need).
  void start_sim() {
    if (sim_) {
      sim_->close();
      stopped_.push_back(std::move(sim_));
    }
    sim_ = std::make_unique<SimProvider>(&loop_, config_, core::HttpLimits{}, dir_);
    ASSERT_TRUE(sim_->start().ok());
  }

  Result<core::CloudObservation> observe() {
    std::optional<Result<core::CloudObservation>> seen;
    sim_->observe(providers::ObserveMode::kCurrent,
                  [&](Result<core::CloudObservation> observation) { seen = std::move(observation); });
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return seen.has_value(); }, 2s));
    return seen ? *seen : Result<core::CloudObservation>(Error{"no answer"});
  }

  ActionResult act(bool wake) {
    std::optional<ActionResult> seen;
    auto done = [&](ActionResult result) { seen = std::move(result); };
    if (wake) {
      sim_->wake(done);
    } else {
      sim_->sleep(done);
    }
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return seen.has_value(); }, 2s));
    return seen.value_or(ActionResult::refused("no answer"));
  }

  // Observes every 20 ms until the VM is in `kind` or `limit` has passed.
  bool run_until_kind(Kind kind, std::chrono::milliseconds limit = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto observation = observe();
      if (observation && observation->kind == kind) return true;
      testing::run_loop_until(
          &loop_, [] { return false; }, 20ms);
    }
    return false;
  }

  nlohmann::json vm_file() const {
    auto text = io::read_file(dir_ + "/sim-gpu.json");
    return text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  }

  void write_faults(const std::string& json) const {
    ASSERT_TRUE(io::write_file_atomically(config_.sim.faults_file, json, 0600).ok());
  }

  uv_loop_t loop_{};
  std::string dir_;
  core::BackendConfig config_;
  std::unique_ptr<SimProvider> sim_;
  std::vector<std::unique_ptr<SimProvider>> stopped_;
};

TEST_F(SimProviderTest, AWakeUnderWayWhenUnshelverStopsGoesOnAfterTheRestart) {
  start_sim();
  ASSERT_EQ(Kind::kStopped, observe()->kind);
  ASSERT_EQ(core::ActionOutcome::kAccepted, act(true).outcome);
  ASSERT_EQ(Kind::kStarting, observe()->kind);
  EXPECT_EQ(1, vm_file().value("wake_actions", 0));

  // A new process: the VM is still starting (not stopped, which would make Unshelver wake it a
  // second time), then runs when the transition's time is up.
  start_sim();
  EXPECT_EQ(Kind::kStarting, observe()->kind);
  EXPECT_TRUE(run_until_kind(Kind::kRunning));
  EXPECT_EQ(1, vm_file().value("wake_actions", 0));
  EXPECT_EQ("running", vm_file().value("phase", ""));

  // A wake of the running VM is accepted without being an action; a sleep is one.
  EXPECT_EQ(core::ActionOutcome::kAccepted, act(true).outcome);
  EXPECT_EQ(core::ActionOutcome::kAccepted, act(false).outcome);
  EXPECT_EQ(1, vm_file().value("wake_actions", 0));
  EXPECT_EQ(1, vm_file().value("sleep_actions", 0));
}

TEST_F(SimProviderTest, WithoutPersistTheVmStartsAsConfigured) {
  config_.sim.persist = false;
  start_sim();
  ASSERT_EQ(core::ActionOutcome::kAccepted, act(true).outcome);
  start_sim();
  EXPECT_EQ(Kind::kStopped, observe()->kind);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/sim-gpu.json"));
}

TEST_F(SimProviderTest, TheFaultsFileMakesTheCloudUnreachableOrRefuseTheCredentials) {
  start_sim();
  write_faults(R"({"unreachable": true})");
  auto observation = observe();
  ASSERT_FALSE(observation);
  EXPECT_NE(std::string::npos, observation.error().message.find("cannot reach the cloud API"));
  EXPECT_EQ(core::ActionOutcome::kBusy, act(true).outcome);

  write_faults(R"({"refuse_credentials": true})");
  ASSERT_FALSE(observe());
  ActionResult refused = act(true);
  EXPECT_EQ(core::ActionOutcome::kRefused, refused.outcome);
  EXPECT_NE(std::string::npos, refused.message.find("refused the credentials"));
  EXPECT_EQ(0, vm_file().value("wake_actions", 0));

  write_faults("{}");
  EXPECT_EQ(Kind::kStopped, observe()->kind);
  EXPECT_EQ(core::ActionOutcome::kAccepted, act(true).outcome);
  EXPECT_EQ(1, vm_file().value("wake_actions", 0));
}

TEST_F(SimProviderTest, TheFaultsFileFailsOrStallsTheNextWakes) {
  start_sim();
  write_faults(R"json({"fail_wakes": 1, "failure_message": "No valid host (test)"})json");
  ASSERT_EQ(core::ActionOutcome::kAccepted, act(true).outcome);
  ASSERT_TRUE(run_until_kind(Kind::kStopped));
  EXPECT_EQ("No valid host (test)", observe()->detail);

  write_faults(R"({"stall_wakes": 1})");
  ASSERT_EQ(core::ActionOutcome::kAccepted, act(true).outcome);
  // Far past the wake's 300 ms, and across a restart, the VM is still starting.
  EXPECT_FALSE(run_until_kind(Kind::kRunning, 800ms));
  start_sim();
  EXPECT_FALSE(run_until_kind(Kind::kRunning, 500ms));
  EXPECT_EQ(Kind::kStarting, observe()->kind);
  EXPECT_EQ(2, vm_file().value("wake_actions", 0));
}

TEST_F(SimProviderTest, AFaultsFileWithValuesOfTheWrongTypeMeansNoFaults) {
  start_sim();
  // A hand-written file with quoted numbers and a number for a flag: each such field is ignored
  // (nlohmann::json's value() would throw inside the loop's callback).
  write_faults(R"({"unreachable": 1, "fail_wakes": "2", "stall_wakes": [1], "failure_message": 7})");
  EXPECT_EQ(Kind::kStopped, observe()->kind);
  ASSERT_EQ(core::ActionOutcome::kAccepted, act(true).outcome);
  EXPECT_TRUE(run_until_kind(Kind::kRunning));
  EXPECT_EQ(1, vm_file().value("wake_actions", 0));
}

TEST_F(SimProviderTest, SimulatedVmsShareOneApiThatAnswersEachCallAfterItsLatencyInOrder) {
  // A fleet of settled backends observed together: one timer answers them all, each no sooner than
  // the API's latency (5 ms) after its call, in the order called; a closed VM's call is dropped.
  config_.sim.persist = false;
  config_.sim.faults_file.clear();
  auto api = std::make_shared<SimApi>(&loop_);
  std::vector<std::unique_ptr<SimProvider>> fleet;
  for (int i = 0; i < 50; ++i) {
    fleet.push_back(std::make_unique<SimProvider>(&loop_, config_, core::HttpLimits{}, dir_, api));
    ASSERT_TRUE(fleet.back()->start().ok());
  }
  const auto called_at = std::chrono::steady_clock::now();
  std::vector<int> answered;
  std::optional<std::chrono::steady_clock::duration> first_after;
  for (int i = 0; i < 50; ++i) {
    fleet[i]->observe(ObserveMode::kSettled, [&, i](Result<core::CloudObservation> observation) {
      ASSERT_TRUE(observation.ok());
      EXPECT_EQ(observation->kind, Kind::kStopped);
      if (!first_after) first_after = std::chrono::steady_clock::now() - called_at;
      answered.push_back(i);
    });
  }
  EXPECT_TRUE(answered.empty()) << "never inside the call";
  EXPECT_EQ(api->pending(), 50u);
  fleet[7]->close();
  EXPECT_EQ(api->pending(), 49u);
  EXPECT_TRUE(testing::run_loop_until(
      &loop_, [&] { return answered.size() == 49; }, 2s));
  ASSERT_TRUE(first_after);
  EXPECT_GE(*first_after, 5ms);
  std::vector<int> expected;
  for (int i = 0; i < 50; ++i) {
    if (i != 7) expected.push_back(i);
  }
  EXPECT_EQ(answered, expected);
  EXPECT_EQ(api->pending(), 0u);
  for (auto& sim : fleet) {
    sim->close();
    stopped_.push_back(std::move(sim));
  }
}

}  // namespace
}  // namespace unshelver::providers
