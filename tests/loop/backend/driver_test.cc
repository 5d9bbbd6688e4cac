// Loop tests of BackendDriver: the driver, the simulated cloud (SimProvider) and the health prober
// on a real libuv loop, with no binary. The simulated VM runs with short phase durations, and its
// fake backend on 127.0.0.1 is the health endpoint the prober asks once the VM "runs".
//
// The tests follow the driver only through its public interface: the change callback's
// transitions, the reconciler's views, and HTTP requests to the upstream it reports. Every test
// ends with the driver shut down, the client closed and uv_loop_close() == 0.
#include "backend/driver.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/sim_provider.h"
#include "backend/state_machine.h"
#include "support/loop.h"
#include "uv/http_client.h"
#include "uv/timer.h"

namespace unshelver::app {
namespace {

using namespace std::chrono_literals;
using core::BackendState;

class BackendDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("no_proxy", "127.0.0.1", 1);
    ASSERT_EQ(0, uv_loop_init(&loop_));
    client_ = std::make_unique<io::HttpClient>(&loop_);
    config_.name = "gpu";
    config_.provider = core::ProviderKind::kSim;
    config_.health.path = "/health";
    config_.health.interval = 50ms;
    config_.health.timeout = 1s;
    config_.boot_timeout = 2s;
    config_.sim.wake_duration = 150ms;
    config_.sim.boot_duration = 150ms;
    config_.sim.sleep_duration = 150ms;
  }

  void TearDown() override {
    if (driver_) driver_->shutdown();
    driver_.reset();
    client_->close();
    client_.reset();
    testing::drain_and_close_loop(&loop_);
  }

  void start_driver() {
    auto sim = std::make_unique<providers::SimProvider>(&loop_, config_, core::HttpLimits{}, std::string());
    ASSERT_TRUE(sim->start().ok());
    sim_ = sim.get();
    upstream_ = sim->upstream();
    auto settings = core::ReconcilerSettings::from_config(config_, fast_app());
    driver_ = std::make_unique<BackendDriver>(
        &loop_, config_, settings, std::move(sim), *client_,
        [this](const std::vector<core::Transition>& transitions, const std::vector<core::Notice>& notices,
               BackendDriver::Change change) {
          for (const auto& notice : notices) notices_.push_back(notice);
          ++changes_;
          ++changes_by_kind_[static_cast<int>(change)];
          if (change == BackendDriver::Change::kPersist) ++persists_;
          for (const auto& transition : transitions) {
            EXPECT_EQ(states_.empty() ? BackendState::kUnknown : states_.back(), transition.from)
                << "transitions must chain";
            states_.push_back(transition.to);
            transitions_.push_back(transition);
          }
        },
        [this] {
          // The real clocks, with the wall clock moved by the test (issue 15 §7).
          core::ClockReading reading = core::ClockReading::now();
          reading.wall += wall_offset_;
          return reading;
        });
    driver_->start(std::nullopt);
  }

  bool run_until_state(BackendState state, std::chrono::milliseconds limit = 10s) {
    return testing::run_loop_until(
        &loop_, [&] { return driver_->reconciler().state() == state; }, limit);
  }

  io::ClientResponse fetch(const std::string& url) {
    std::optional<io::ClientResponse> result;
    io::ClientRequest request;
    request.url = url;
    request.timeout = 2s;
    client_->send(request, [&](io::ClientResponse response) { result = std::move(response); });
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return result.has_value(); }, 5s));
    return result.value_or(io::ClientResponse{});
  }

  // A 50 ms poll, and the settled period its default gives (30 s: longer than any test here).
  static core::AppSettings fast_app() {
    core::AppSettings app;
    app.poll_interval = 50ms;
    app.settled_poll_interval = 30s;
    return app;
  }

  uv_loop_t loop_{};
  std::unique_ptr<io::HttpClient> client_;
  core::BackendConfig config_;
  std::unique_ptr<BackendDriver> driver_;
  std::string upstream_;
  std::vector<BackendState> states_;
  std::vector<core::Transition> transitions_;
  std::vector<core::Notice> notices_;
  providers::SimProvider* sim_ = nullptr;  // owned by driver_
  int changes_ = 0;
  int persists_ = 0;
  std::array<int, 3> changes_by_kind_{};  // by BackendDriver::Change
  std::chrono::system_clock::duration wall_offset_{};
};

TEST_F(BackendDriverTest, FirstObservationFindsTheVmAsleep) {
  start_driver();
  EXPECT_EQ(BackendState::kUnknown, driver_->reconciler().state());
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  EXPECT_EQ((std::vector<BackendState>{BackendState::kAsleep}), states_);
  EXPECT_EQ("sim", driver_->provider_kind());
  EXPECT_EQ(upstream_, driver_->upstream());
  EXPECT_EQ("http://" + upstream_ + "/health", driver_->health_url());
  // Asleep: nothing answers on the backend's port.
  EXPECT_FALSE(fetch(driver_->health_url()).transport_ok());
}

// Issue 20: a probe that confirms a ready backend changes what the pages show (its time) and
// nothing that routing, the gate or the activity monitor act on: the owner hears kSeen, while the
// way to ready was kPersist (transitions) and kVisible (the address, the probes beginning).
TEST_F(BackendDriverTest, ConfirmationsReachOnlyThePagesWhileChangesReachEveryone) {
  config_.sim.start_awake = true;
  config_.idle_timeout = 3600s;
  start_driver();
  ASSERT_TRUE(run_until_state(BackendState::kReady));
  EXPECT_GT(changes_by_kind_[static_cast<int>(BackendDriver::Change::kPersist)], 0);
  const std::array<int, 3> at_ready = changes_by_kind_;
  // Probes every 50 ms: a dozen or so in a second, each a confirmation.
  testing::run_loop_until(
      &loop_, [] { return false; }, 1s);
  EXPECT_EQ(BackendState::kReady, driver_->reconciler().state());
  EXPECT_GT(changes_by_kind_[static_cast<int>(BackendDriver::Change::kSeen)],
            at_ready[static_cast<int>(BackendDriver::Change::kSeen)] + 3);
  EXPECT_EQ(changes_by_kind_[static_cast<int>(BackendDriver::Change::kVisible)],
            at_ready[static_cast<int>(BackendDriver::Change::kVisible)]);
  EXPECT_EQ(changes_by_kind_[static_cast<int>(BackendDriver::Change::kPersist)],
            at_ready[static_cast<int>(BackendDriver::Change::kPersist)]);
  // A wish changes the desired state: persisted, and everyone hears of it.
  EXPECT_TRUE(driver_->request(false, "test", "done"));
  EXPECT_GT(changes_by_kind_[static_cast<int>(BackendDriver::Change::kPersist)],
            at_ready[static_cast<int>(BackendDriver::Change::kPersist)]);
}

// Issue 17: a dry run observes and probes as usual, records what it would have done, and never
// asks the cloud for a wake or a sleep.
TEST_F(BackendDriverTest, DryRunNeverSendsTheCloudAnAction) {
  config_.dry_run = true;
  config_.sim.start_awake = true;
  config_.idle_timeout = 1s;
  start_driver();
  ASSERT_TRUE(run_until_state(BackendState::kReady));
  auto has = [this](const std::string& action) {
    return std::any_of(notices_.begin(), notices_.end(),
                       [&](const core::Notice& notice) { return notice.action == action; });
  };
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return has("dry_run_would_shelve"); }, 5s));
  EXPECT_TRUE(driver_->request(true, "control", "a wake"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return has("dry_run_would_wake"); }, 5s));
  EXPECT_TRUE(driver_->request(false, "control", "a shelve"));
  testing::run_loop_until(
      &loop_, [] { return false; }, 300ms);
  EXPECT_EQ(0, sim_->actions_received());
  EXPECT_EQ(BackendState::kReady, driver_->reconciler().state());
  EXPECT_EQ(3u, notices_.size());
}

TEST_F(BackendDriverTest, WakeGoesThroughWakingAndBootingToReadyThenSleeps) {
  start_driver();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  EXPECT_TRUE(driver_->request(true, "test", "a visitor"));
  EXPECT_FALSE(driver_->request(true, "test", "again")) << "a repeated wake changes nothing";
  EXPECT_TRUE(driver_->reconciler().desired().awake);
  ASSERT_TRUE(run_until_state(BackendState::kReady)) << core::to_string(driver_->reconciler().state());
  EXPECT_EQ((std::vector<BackendState>{BackendState::kAsleep, BackendState::kWaking, BackendState::kBooting,
                                       BackendState::kReady}),
            states_);
  // Ready means the health endpoint answered; it still does.
  auto health = fetch(driver_->health_url());
  ASSERT_TRUE(health.transport_ok()) << health.error;
  EXPECT_EQ(200, health.status);
  ASSERT_NE(nullptr, health.header("x-sim-backend"));
  EXPECT_EQ("gpu", *health.header("x-sim-backend"));
  EXPECT_EQ("http://" + upstream_ + "/", driver_->visitor_url());
  EXPECT_GT(persists_, 0);

  EXPECT_TRUE(driver_->request(false, "test", "done"));
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  EXPECT_EQ((std::vector<BackendState>{BackendState::kAsleep, BackendState::kWaking, BackendState::kBooting,
                                       BackendState::kReady, BackendState::kSleeping, BackendState::kAsleep}),
            states_);
  EXPECT_EQ("test", transitions_[4].actor);
  EXPECT_FALSE(fetch(driver_->health_url()).transport_ok()) << "the backend stops serving when asleep";
  EXPECT_EQ(0u, driver_->reconciler().illegal_events());
}

TEST_F(BackendDriverTest, FailedWakeIsAnErrorAndANewWakeRecovers) {
  config_.sim.fail_wakes = 1;
  config_.sim.failure_message = "No valid host was found.";
  start_driver();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  driver_->request(true, "test", "first try");
  ASSERT_TRUE(run_until_state(BackendState::kError)) << core::to_string(driver_->reconciler().state());
  EXPECT_NE(std::string::npos, driver_->reconciler().last_error().find("No valid host"))
      << driver_->reconciler().last_error();
  EXPECT_EQ((std::vector<BackendState>{BackendState::kAsleep, BackendState::kWaking, BackendState::kError}),
            states_);
  // The backend waits for someone to ask again (the default error policy); a new wake lifts it.
  driver_->request(true, "test", "second try");
  ASSERT_TRUE(run_until_state(BackendState::kReady)) << core::to_string(driver_->reconciler().state());
  EXPECT_EQ(BackendState::kWaking, states_.at(3));
  EXPECT_EQ(0u, driver_->reconciler().illegal_events());
}

TEST_F(BackendDriverTest, ShutdownStopsEverythingAndRunsNoMoreCallbacks) {
  start_driver();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  driver_->request(true, "test", "wake");
  ASSERT_TRUE(run_until_state(BackendState::kWaking));
  driver_->shutdown();
  const int changes = changes_;
  testing::run_loop_until(
      &loop_, [] { return false; }, 500ms);
  EXPECT_EQ(changes, changes_);
  EXPECT_EQ(BackendState::kWaking, driver_->reconciler().state());
  EXPECT_FALSE(driver_->request(false, "test", "after shutdown"));
}

// Issue 15 §7: the wall clock moved 2 h ahead right after ready used to shelve the VM at the next
// tick. The idle timeout now runs on the monotonic clock: the VM stays up for the whole timeout.
TEST_F(BackendDriverTest, WallClockJumpAheadDoesNotShelveBeforeTheIdleTimeout) {
  config_.idle_timeout = 3s;
  start_driver();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  driver_->request(true, "test", "a visitor");
  ASSERT_TRUE(run_until_state(BackendState::kReady)) << core::to_string(driver_->reconciler().state());
  const auto ready_at = std::chrono::steady_clock::now();
  wall_offset_ = std::chrono::hours(2);
  ASSERT_TRUE(run_until_state(BackendState::kAsleep, 20s)) << core::to_string(driver_->reconciler().state());
  EXPECT_GE(std::chrono::steady_clock::now() - ready_at, 2500ms) << "shelved before the idle timeout ran out";
  EXPECT_EQ("idle-monitor", driver_->reconciler().desired().actor);
  // What the event trail records is on the moved wall clock.
  ASSERT_FALSE(transitions_.empty());
  EXPECT_GT(transitions_.back().at, std::chrono::system_clock::now() + std::chrono::hours(1));
}

// The wall clock moved 2 h back used to add those 2 h to the idle timeout.
TEST_F(BackendDriverTest, WallClockJumpBackDoesNotPostponeTheIdleShelve) {
  config_.idle_timeout = 2s;
  start_driver();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  driver_->request(true, "test", "a visitor");
  ASSERT_TRUE(run_until_state(BackendState::kReady)) << core::to_string(driver_->reconciler().state());
  wall_offset_ = -std::chrono::hours(2);
  EXPECT_TRUE(run_until_state(BackendState::kAsleep, 20s))
      << "still " << core::to_string(driver_->reconciler().state()) << " long after the idle timeout";
}

}  // namespace
}  // namespace unshelver::app

namespace unshelver::app {
namespace {

using namespace std::chrono_literals;
using core::BackendState;

// A fence the test answers by hand: what a coordinator would say after its etcd transaction.
// Confirmations before a decision are granted on the loop unless `hold_confirms` is set.
class ManualFence final : public ActionFence {
 public:
  explicit ManualFence(uv_loop_t* loop) : timer_(loop) {}
  bool may_decide(const std::string& /*backend*/) override { return true; }
  void confirm(const std::string& /*backend*/, std::function<void(Status)> done) override {
    ++confirms_asked;
    confirms.push_back(std::move(done));
    if (!hold_confirms) timer_.start(std::chrono::milliseconds(0), [this] { answer_confirms(ok_status()); });
  }
  void authorize(const std::string& backend, std::function<void(Status)> done) override {
    backends.push_back(backend);
    pending.push_back(std::move(done));
  }
  void answer(const Status& status) {
    for (auto& done : std::exchange(pending, {})) done(status);
  }
  void answer_confirms(const Status& status) {
    for (auto& done : std::exchange(confirms, {})) done(status);
  }
  bool hold_confirms = false;
  int confirms_asked = 0;
  std::vector<std::string> backends;
  std::vector<std::function<void(Status)>> pending;
  std::vector<std::function<void(Status)>> confirms;

 private:
  io::Timer timer_;
};

class FencedDriverTest : public BackendDriverTest {
 protected:
  void start_fenced() {
    start_driver_without_start();
    driver_->set_fence(&fence());
    driver_->start(std::nullopt);
  }
  void start_driver_without_start() {
    auto sim = std::make_unique<providers::SimProvider>(&loop_, config_, core::HttpLimits{}, std::string());
    ASSERT_TRUE(sim->start().ok());
    sim_ = sim.get();
    auto settings = core::ReconcilerSettings::from_config(config_, fast_app());
    driver_ =
        std::make_unique<BackendDriver>(&loop_, config_, settings, std::move(sim), *client_,
                                        [this](const std::vector<core::Transition>& transitions,
                                               const std::vector<core::Notice>&, BackendDriver::Change) {
                                          for (const auto& transition : transitions)
                                            transitions_.push_back(transition);
                                          ++changes_;
                                        });
  }
  void TearDown() override {
    fence_.reset();
    BackendDriverTest::TearDown();
  }
  ManualFence& fence() {
    if (!fence_) fence_ = std::make_unique<ManualFence>(&loop_);
    return *fence_;
  }
  std::unique_ptr<ManualFence> fence_;
};

TEST_F(FencedDriverTest, NoWakeLeavesBeforeTheFenceSaysYes) {
  start_fenced();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  ASSERT_TRUE(driver_->request(true, "test", "wake"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().pending.empty(); }, 2s));
  EXPECT_EQ(fence().backends, std::vector<std::string>{"gpu"});
  // While the fence has not answered, the state shows the decision but the cloud has seen nothing.
  EXPECT_EQ(driver_->reconciler().state(), BackendState::kWaking);
  testing::run_loop_until(
      &loop_, [] { return false; }, 200ms);
  EXPECT_EQ(sim_->actions_received(), 0);
  fence().answer(ok_status());
  ASSERT_TRUE(run_until_state(BackendState::kReady));
  EXPECT_EQ(sim_->actions_received(), 1);
}

TEST_F(FencedDriverTest, ADecisionWaitsForEtcdAndIsNotRecordedWhileItIsRefused) {
  fence().hold_confirms = true;
  start_fenced();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  const std::size_t before = transitions_.size();
  ASSERT_TRUE(driver_->request(true, "test", "wake"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().confirms.empty(); }, 2s));
  // Not decided yet: no transition (no unshelve_requested in the audit trail), nothing sent.
  EXPECT_EQ(driver_->reconciler().state(), BackendState::kAsleep);
  fence().answer_confirms(Error{"etcd does not answer"});
  testing::run_loop_until(
      &loop_, [] { return false; }, 300ms);
  EXPECT_EQ(transitions_.size(), before);
  EXPECT_EQ(fence().confirms_asked, 1) << "asked again only after a pause";
  EXPECT_TRUE(fence().pending.empty());
  // etcd is back: the decision is taken (and recorded) once, then fenced and sent.
  fence().hold_confirms = false;
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().pending.empty(); }, 3s));
  fence().answer(ok_status());
  ASSERT_TRUE(run_until_state(BackendState::kReady));
  EXPECT_EQ(sim_->actions_received(), 1);
  ASSERT_GT(transitions_.size(), before);
  EXPECT_EQ(transitions_[before].from, BackendState::kAsleep);
  EXPECT_EQ(transitions_[before].to, BackendState::kWaking);
}

TEST_F(FencedDriverTest, AConfirmationLeftUnansweredByAnEarlierTermDoesNotBlockTheNextOne) {
  fence().hold_confirms = true;
  start_fenced();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  ASSERT_TRUE(driver_->request(true, "test", "wake"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().confirms.empty(); }, 2s));
  // The lead is lost while etcd is away, and later won again: the old confirmation's answer
  // belongs to the earlier term.
  driver_->follow(driver_->reconciler().snapshot());
  core::PersistedBackend persisted = driver_->reconciler().persisted();
  driver_->lead(persisted);
  fence().answer_confirms(Error{"etcd does not answer"});
  fence().hold_confirms = false;
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().pending.empty(); }, 5s))
      << "the new term asks for its own confirmation and decides";
  fence().answer(ok_status());
  ASSERT_TRUE(run_until_state(BackendState::kReady));
  EXPECT_EQ(sim_->actions_received(), 1);
}

TEST_F(FencedDriverTest, ARefusedFenceSendsNothingAndTheDriverDecidesAfresh) {
  start_fenced();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  ASSERT_TRUE(driver_->request(true, "test", "wake"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().pending.empty(); }, 2s));
  fence().answer(Error{"etcd refused the fenced write"});
  // Observed again, found still asleep and wanted awake: the wake is asked for once more, again
  // through the fence.
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().pending.empty(); }, 5s));
  EXPECT_EQ(sim_->actions_received(), 0);
  fence().answer(ok_status());
  ASSERT_TRUE(run_until_state(BackendState::kReady));
  EXPECT_EQ(sim_->actions_received(), 1);
}

TEST_F(FencedDriverTest, AFollowerStopsActingShowsTheLeaderAndIgnoresLateAnswers) {
  start_fenced();
  ASSERT_TRUE(run_until_state(BackendState::kAsleep));
  ASSERT_TRUE(driver_->request(true, "test", "wake"));
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().pending.empty(); }, 2s));

  // Another controller took over before the fence answered: what the leader published is shown.
  core::BackendSnapshot leader_view;
  leader_view.persisted.state = BackendState::kReady;
  leader_view.persisted.desired =
      core::Desired{true, "public-button", "visitor", std::chrono::system_clock::now()};
  leader_view.state_since = std::chrono::system_clock::now();
  leader_view.upstream = "10.0.0.9:8080";
  const std::size_t transitions_before = transitions_.size();
  driver_->follow(leader_view);
  EXPECT_FALSE(driver_->acting());
  EXPECT_EQ(driver_->reconciler().state(), BackendState::kReady);
  EXPECT_EQ(driver_->upstream(), "10.0.0.9:8080");
  // A late yes from the fence belongs to the earlier term: nothing is sent.
  fence().answer(ok_status());
  testing::run_loop_until(
      &loop_, [] { return false; }, 300ms);
  EXPECT_EQ(sim_->actions_received(), 0);
  EXPECT_EQ(transitions_.size(), transitions_before) << "a follower records no transitions";
  // Requests and activity change nothing while following.
  EXPECT_FALSE(driver_->request(false, "test", "sleep"));
  driver_->record_activity(std::chrono::steady_clock::now());
  EXPECT_TRUE(driver_->local_activity().has_value());
}

TEST_F(FencedDriverTest, ANewLeaderResumesADecisionThePreviousOneDidNotCarryOut) {
  start_driver_without_start();
  driver_->set_fence(&fence());
  // The previous leader recorded "wanted awake" but died before recording the wake itself.
  core::PersistedBackend persisted;
  persisted.desired = core::Desired{true, "public-button", "visitor", std::chrono::system_clock::now()};
  persisted.state = BackendState::kAsleep;
  driver_->lead(persisted);
  EXPECT_TRUE(driver_->acting());
  // Observing the VM asleep does not turn the wish into "found stopped at start": it is woken.
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return !fence().pending.empty(); }, 5s));
  EXPECT_TRUE(driver_->reconciler().desired().awake);
  fence().answer(ok_status());
  ASSERT_TRUE(run_until_state(BackendState::kReady));
  EXPECT_EQ(sim_->actions_received(), 1);
}

}  // namespace
}  // namespace unshelver::app
