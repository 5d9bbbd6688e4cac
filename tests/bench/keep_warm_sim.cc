// Benchmark (not a test): what keep-warm windows and pre-warming cost and save, replayed through
// the pure decision code with a fake clock.
//
// A synthetic four-week usage trace (seeded): on weekdays, office visitors from about 08:30 (the
// first arrival jitters by ±30 min) through the afternoon, each using the backend for 10 to 60
// minutes, plus a random evening visit on some days and a rare weekend one. It is replayed
// through core::BackendReconciler and core::BackendSchedule against a fake cloud whose wake takes
// WAKE_MINUTES (default 5), for three policies:
//   idle-only   the idle rule alone (idle timeout IDLE_MINUTES, default 30);
//   windows     plus a keep-warm window mon-fri 08:00-18:00;
//   pre-warm    plus pre-warming learned from the trace itself (10th percentile, cap 10 h/week).
// It prints, per policy, the VM hours, the visitors who had to wait for a wake, and the minutes
// they waited in all. Never fails.
//
//   build/tests/bench/keep_warm_sim [SEED]      (or tests/bench/keep_warm_sim.sh [BUILD_DIR])
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "schedule/keep_warm.h"

namespace {

using namespace std::chrono_literals;
using unshelver::core::ActionOutcome;
using unshelver::core::BackendReconciler;
using unshelver::core::BackendSchedule;
using unshelver::core::BackendState;
using unshelver::core::ClockReading;
using unshelver::core::CloudObservation;
using unshelver::core::Command;
using unshelver::core::KeepWarmSchedule;
using unshelver::core::MonoTime;
using unshelver::core::PrewarmPlanner;
using unshelver::core::PrewarmSettings;
using unshelver::core::ReconcilerSettings;
using unshelver::core::SysSeconds;
using unshelver::core::TimePoint;
using unshelver::core::TimeZone;

struct Visit {
  SysSeconds arrive;
  std::chrono::seconds length;
};

long env_number(const char* name, long fallback) {
  const char* text = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): single-threaded tool
  return text != nullptr && *text != '\0' ? std::strtol(text, nullptr, 10) : fallback;
}

// Four weeks from Monday 1 June 2026, UTC.
std::vector<Visit> make_trace(SysSeconds start, unsigned seed) {
  std::mt19937 random(seed);
  std::vector<Visit> visits;
  auto minutes_between = [&](int low, int high) {
    return std::chrono::minutes(std::uniform_int_distribution<int>(low, high)(random));
  };
  for (int day = 0; day < 28; ++day) {
    const SysSeconds midnight = start + std::chrono::days(day);
    const bool weekday = day % 7 < 5;
    if (weekday) {
      // The first visitor around 08:30, then about one more an hour until 17:00.
      SysSeconds at = midnight + 8h + 30min + minutes_between(-30, 30);
      while (at < midnight + 17h) {
        visits.push_back({at, minutes_between(10, 60)});
        at += minutes_between(20, 100);
      }
      if (std::bernoulli_distribution(0.3)(random)) {
        visits.push_back({midnight + 19h + minutes_between(0, 240), minutes_between(10, 30)});
      }
    } else if (std::bernoulli_distribution(0.2)(random)) {
      visits.push_back({midnight + 10h + minutes_between(0, 480), minutes_between(10, 60)});
    }
  }
  return visits;
}

// A VM whose wake takes `wake` and whose backend answers health checks at once after that.
class FakeCloud {
 public:
  explicit FakeCloud(std::chrono::seconds wake) : wake_(wake) {}
  void wake(SysSeconds now) {
    starting_ = true;
    stopping_ = false;
    changes_at_ = now + wake_;
  }
  void sleep(SysSeconds now) {
    stopping_ = true;
    starting_ = false;
    changes_at_ = now + 2min;
  }
  void advance(SysSeconds now) {
    if (starting_ && now >= changes_at_) {
      starting_ = false;
      running_ = true;
    }
    if (stopping_ && now >= changes_at_) {
      stopping_ = false;
      running_ = false;
    }
  }
  CloudObservation observe() const {
    using Kind = CloudObservation::Kind;
    if (starting_) return {Kind::kStarting, "SHELVED_OFFLOADED (unshelving)", "", "10.0.0.5:8080"};
    if (stopping_) return {Kind::kStopping, "ACTIVE (shelving)", "", "10.0.0.5:8080"};
    if (running_) return {Kind::kRunning, "ACTIVE", "", "10.0.0.5:8080"};
    return {Kind::kStopped, "SHELVED_OFFLOADED", "", ""};
  }
  bool billing() const { return starting_ || stopping_ || running_; }
  bool running() const { return running_; }

 private:
  std::chrono::seconds wake_;
  bool starting_ = false;
  bool stopping_ = false;
  bool running_ = false;
  SysSeconds changes_at_{};
};

struct Outcome {
  double vm_hours = 0;
  int visitors = 0;
  int waited = 0;
  double minutes_waited = 0;
  int prewarms = 0;
};

Outcome replay(const std::vector<Visit>& trace, SysSeconds start, std::optional<BackendSchedule> schedule,
               std::chrono::seconds wake, std::chrono::seconds idle_timeout) {
  ReconcilerSettings settings;
  settings.poll_interval = 10s;
  settings.steady_observe_interval = 60s;
  settings.idle_timeout = idle_timeout;
  settings.boot_timeout = settings.unshelve_timeout;
  BackendReconciler reconciler("gpu", settings);
  FakeCloud cloud(wake);
  Outcome outcome;
  constexpr std::chrono::seconds kStep = 30s;
  const MonoTime mono_start = MonoTime(1000h);
  std::size_t next_visit = 0;
  std::deque<Visit> waiting;
  std::vector<SysSeconds> sessions_end;
  const SysSeconds end = start + std::chrono::days(28);
  for (SysSeconds now = start; now < end; now += kStep) {
    const ClockReading clock{mono_start + (now - start), TimePoint(now.time_since_epoch())};
    cloud.advance(now);
    const bool ready = reconciler.state() == BackendState::kReady;
    for (; next_visit < trace.size() && trace[next_visit].arrive <= now; ++next_visit) {
      const Visit& visit = trace[next_visit];
      ++outcome.visitors;
      if (schedule) schedule->add_use(visit.arrive);
      if (ready) {
        sessions_end.push_back(now + visit.length);
      } else {
        waiting.push_back(visit);
        reconciler.request(true, "public-button", "visitor", clock);
      }
    }
    if (ready) {
      for (const Visit& visit : waiting) {
        ++outcome.waited;
        outcome.minutes_waited += std::chrono::duration<double, std::ratio<60>>(now - visit.arrive).count();
        sessions_end.push_back(now + visit.length);
      }
      waiting.clear();
    }
    std::erase_if(sessions_end, [&](SysSeconds ends) { return ends <= now; });
    if (!sessions_end.empty()) reconciler.on_activity(clock.mono);
    if (schedule) {
      const auto step = schedule->step(now, reconciler, std::chrono::duration<double>(wake).count());
      if (step.wake) {
        if (step.actor == "pre-warm") ++outcome.prewarms;
        reconciler.request(true, step.actor, step.reason, clock);
      }
      for (auto reason : step.release) reconciler.release_hold(reason);
      for (const auto& hold : step.place) reconciler.hold_awake(hold, clock);
    }
    // A few rounds, so that an accepted action is observed within the same step.
    for (int round = 0; round < 3; ++round) {
      const std::optional<Command> command = reconciler.tick(clock);
      if (!command) break;
      switch (*command) {
        case Command::kWake:
          cloud.wake(now);
          reconciler.on_action_done(*command, ActionOutcome::kAccepted, "", clock);
          break;
        case Command::kSleep:
          cloud.sleep(now);
          reconciler.on_action_done(*command, ActionOutcome::kAccepted, "", clock);
          break;
        case Command::kObserve: reconciler.on_observed(cloud.observe(), clock); break;
      }
    }
    if (reconciler.wants_health_probe()) reconciler.on_health(cloud.running(), "", clock);
    reconciler.take_transitions();
    if (cloud.billing()) outcome.vm_hours += std::chrono::duration<double, std::ratio<3600>>(kStep).count();
  }
  return outcome;
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned seed = argc > 1 ? static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10)) : 17U;
  const auto wake = std::chrono::minutes(env_number("WAKE_MINUTES", 5));
  const auto idle = std::chrono::minutes(env_number("IDLE_MINUTES", 30));
  const SysSeconds start = std::chrono::sys_days(std::chrono::year(2026) / 6 / 1);  // a Monday
  const std::vector<Visit> trace = make_trace(start, seed);

  KeepWarmSchedule windows;
  windows.add(*unshelver::core::parse_keep_warm_window("mon-fri 08:00-18:00"), TimeZone::utc());
  PrewarmSettings prewarm;
  prewarm.enabled = true;
  prewarm.percentile = 10;
  prewarm.lookback_weeks = 4;
  prewarm.min_samples = 1;
  prewarm.max_hold = 60min;
  prewarm.max_per_week = 10h;

  std::printf("keep_warm_sim: seed %u, %zu visits over 4 weeks, wake %ld min, idle timeout %ld min\n", seed,
              trace.size(), static_cast<long>(wake.count()), static_cast<long>(idle.count()));
  std::printf("%-10s %10s %10s %14s %16s %10s\n", "policy", "VM hours", "visitors", "had to wait",
              "minutes waited", "pre-warms");
  auto print = [](const char* name, const Outcome& outcome) {
    std::printf("%-10s %10.1f %10d %14d %16.1f %10d\n", name, outcome.vm_hours, outcome.visitors,
                outcome.waited, outcome.minutes_waited, outcome.prewarms);
  };
  print("idle-only", replay(trace, start, std::nullopt, wake, idle));
  print("windows", replay(trace, start, BackendSchedule(windows, std::nullopt, wake), wake, idle));
  print("pre-warm",
        replay(trace, start,
               BackendSchedule(KeepWarmSchedule{}, PrewarmPlanner(prewarm, TimeZone::utc()), wake), wake,
               idle));
  return 0;
}
