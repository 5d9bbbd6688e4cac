// SimProvider: a simulated cloud VM, so that the whole product runs with no credentials.
//
// The VM moves through the phases a shelved OpenStack server shows (stopped → starting → running
// → stopping → stopped) with the durations from the configuration, and a wake can be made to fail
// the way Nova's "No valid host" does: accepted, then back to stopped with the reason attached.
// While the VM "runs" (after its boot time) a tiny built-in backend listens on 127.0.0.1 and
// answers every request with 200; while it sleeps the port refuses connections, exactly what Caddy
// and the health prober see when a real VM is shelved.
//
// Two knobs make it a faithful target for the conformance suite (tests/conformance/README.md):
// with sim.persist the VM lives in state_dir/sim-BUTTON.json (phase, when the transition ends, the
// actions accepted), so it survives a restart of Unshelver as a real cloud's VM does and a test can
// count the actions at the "cloud"; sim.faults_file is read at every call, so a test can make the
// API unreachable, refuse the credentials, or make the next wakes fail or never finish.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backend/cloud_provider.h"
#include "config/config.h"
#include "uv/http_server.h"
#include "uv/timer.h"

namespace unshelver::providers {

// The simulated cloud's API, shared by the simulated VMs of one loop: each call is answered one
// API latency after it was made, in the order made, all from one timer. A thousand settled
// backends observed in the same second then cost one timer and one wake-up of the loop, as one
// listing would on a real cloud, instead of a timer each; every answer still takes the latency.
class SimApi {
 public:
  explicit SimApi(uv_loop_t* loop);
  SimApi(const SimApi&) = delete;
  SimApi& operator=(const SimApi&) = delete;

  // Runs `answer` one API latency from now, on the loop, unless cancel(owner) came first.
  void call(const void* owner, std::function<void()> answer);
  // Drops the calls of `owner` not answered yet.
  void cancel(const void* owner);
  // Calls made and not answered yet (for tests).
  std::size_t pending() const { return calls_.size(); }

 private:
  struct Call {
    std::chrono::steady_clock::time_point due;
    const void* owner = nullptr;
    std::function<void()> answer;
  };
  void answer_due();
  void arm();

  io::Timer timer_;
  std::deque<Call> calls_;  // in the order made, which is the order due: the latency is one
};

class SimProvider final : public CloudProvider {
 public:
  // `state_dir` holds the VM's file when backend.sim.persist is set. `api` is shared by the
  // simulated VMs of the loop (a provider without one answers from its own).
  SimProvider(uv_loop_t* loop, const core::BackendConfig& backend, core::HttpLimits limits,
              const std::string& state_dir, std::shared_ptr<SimApi> api = nullptr);
  ~SimProvider() override;

  // Picks the fake backend's port (port 0 in `backend_listen` means a free one, remembered so
  // that the upstream address never changes), then takes the persisted VM back (sim.persist), or
  // starts awake when configured so.
  Status start();

  std::string_view kind() const override { return "sim"; }
  void observe(ObserveMode mode, ObserveCallback on_done) override;
  void wake(ActionCallback on_done) override;
  void sleep(ActionCallback on_done) override;
  void close() override;

  // "127.0.0.1:PORT" of the fake backend (known once start() picked the port).
  const std::string& upstream() const { return upstream_; }
  // Wakes and sleeps asked of this cloud (each is also logged as "sim: wake received" or "sim:
  // sleep received"), so tests can show that a dry run never acts.
  int actions_received() const { return actions_received_; }

 private:
  enum class Phase { kStopped, kStarting, kRunning, kStopping };

  // The conditions of sim.faults_file at one call.
  struct Faults {
    bool unreachable = false;
    bool refuse_credentials = false;
    int fail_wakes = 0;
    int stall_wakes = 0;
    std::string failure_message;
  };

  // Enters `phase`, whose transition (or, for kRunning, the boot) ends after `duration`.
  void enter(Phase phase);
  void enter(Phase phase, std::chrono::milliseconds duration);
  void on_phase_timer();
  void start_backend();
  void stop_backend();
  core::CloudObservation snapshot() const;
  Faults read_faults();
  // The error every API call gets while the faults file says the cloud is down or refuses the
  // credentials; empty when it answers.
  static std::string api_failure(const Faults& faults);
  // The answer to a wake or sleep while the cloud is down or refuses the credentials.
  static std::optional<ActionResult> failed_action(const Faults& faults);
  Status load_vm(const std::string& text);
  void save_vm() const;
  // Runs `callback` on a later loop iteration, after a simulated API latency.
  void later(std::function<void()> callback);

  uv_loop_t* loop_;
  core::BackendConfig backend_;
  core::HttpLimits limits_;
  std::string backend_host_;
  int backend_port_ = 0;
  std::string upstream_;

  Phase phase_ = Phase::kStopped;
  bool backend_serving_ = false;
  bool wake_will_fail_ = false;
  bool wake_stalls_ = false;     // the wake under way never finishes (faults_file: stall_wakes)
  std::string failure_message_;  // of the wake under way, when it is to fail
  std::string failure_detail_;   // reported by the next observations after a failed wake
  std::chrono::system_clock::time_point phase_ends_at_{};  // wall time: it must survive a restart
  std::string vm_path_;                                    // empty unless sim.persist
  int wake_actions_ = 0;     // wakes that started the VM, persisted for the conformance suite
  int sleep_actions_ = 0;    // sleeps that stopped it
  std::string faults_text_;  // the faults file's content at the last call
  int wakes_since_faults_changed_ = 0;
  int wakes_ = 0;
  int actions_received_ = 0;
  int sleeps_ = 0;  // sleeps of a running VM asked for, for sim.refuse_sleeps
  bool closed_ = false;

  io::Timer phase_timer_;
  io::Timer boot_timer_;
  std::shared_ptr<SimApi> api_;
  std::unique_ptr<io::HttpServer> server_;
  std::vector<std::unique_ptr<io::HttpServer>> retiring_;
  std::mt19937 random_;
};

}  // namespace unshelver::providers
