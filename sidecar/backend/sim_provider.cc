#include "backend/sim_provider.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <system_error>

#include "base/json_values.h"
#include "base/text.h"
#include "base/url.h"
#include "uv/files.h"

namespace unshelver::providers {

namespace {
using namespace std::chrono_literals;
// A real cloud API answers in tens of milliseconds; a short delay keeps the asynchronous
// contract honest (callbacks never run inside the call) without slowing tests down.
constexpr auto kApiLatency = 5ms;
// The faults file and the VM's file are a few hundred bytes; anything far larger is not ours.
constexpr std::size_t kMaxSimFileBytes = std::size_t{64} * 1024;

constexpr std::string_view kPhaseNames[] = {"stopped", "starting", "running", "stopping"};

using Clock = std::chrono::system_clock;
std::int64_t to_epoch_millis(Clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

// Asks the kernel for a free port by binding port 0 once. The simulated VM keeps that port for
// its whole life, so the upstream address that Caddy and the prober use never changes.
Result<int> find_free_port(const std::string& host) {
  sockaddr_storage address{};
  if (uv_ip4_addr(host.c_str(), 0, reinterpret_cast<sockaddr_in*>(&address)) != 0 &&
      uv_ip6_addr(host.c_str(), 0, reinterpret_cast<sockaddr_in6*>(&address)) != 0) {
    return Error{"sim.backend_listen: not an IP address: " + host};
  }
  int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{std::string("socket: ") + core::errno_text()};
  socklen_t length = address.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&address)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  }
  const int saved_errno = errno;
  ::close(fd);
  if (port == 0) return Error{"cannot find a free port on " + host + ": " + core::errno_text(saved_errno)};
  return port;
}
}  // namespace

SimApi::SimApi(uv_loop_t* loop) : timer_(loop) {}

void SimApi::call(const void* owner, std::function<void()> answer) {
  calls_.push_back(Call{std::chrono::steady_clock::now() + kApiLatency, owner, std::move(answer)});
  if (calls_.size() == 1) arm();
}

void SimApi::cancel(const void* owner) {
  std::erase_if(calls_, [owner](const Call& call) { return call.owner == owner; });
  if (calls_.empty()) timer_.stop();
}

void SimApi::arm() {
  if (calls_.empty()) return;
  // Rounded up: a timer that fired a little early would find nothing due and arm again.
  const auto wait =
      std::chrono::ceil<std::chrono::milliseconds>(calls_.front().due - std::chrono::steady_clock::now());
  timer_.start(std::max(wait, std::chrono::milliseconds(0)), [this] { answer_due(); });
}

void SimApi::answer_due() {
  const auto now = std::chrono::steady_clock::now();
  // An answer may make calls (due later) or cancel others: each is taken out before it runs.
  while (!calls_.empty() && calls_.front().due <= now) {
    std::function<void()> answer = std::move(calls_.front().answer);
    calls_.pop_front();
    answer();
  }
  arm();
}

SimProvider::SimProvider(uv_loop_t* loop, const core::BackendConfig& backend, core::HttpLimits limits,
                         const std::string& state_dir, std::shared_ptr<SimApi> api)
    : loop_(loop),
      backend_(backend),
      limits_(limits),
      vm_path_(backend.sim.persist ? state_dir + "/sim-" + backend.name + ".json" : std::string()),
      phase_timer_(loop),
      boot_timer_(loop),
      api_(api ? std::move(api) : std::make_shared<SimApi>(loop)),
      random_(std::random_device{}()) {}

SimProvider::~SimProvider() {
  close();
}

Status SimProvider::start() {
  const std::string& listen = backend_.sim.backend_listen;
  const Result<core::Authority> address = core::parse_authority(listen);
  if (!address) return Error{address.error().message + " in '" + listen + "'"};
  if (!address->port) return Error{"missing port in '" + listen + "'"};
  backend_host_ = address->host.empty() ? "127.0.0.1" : address->host;
  backend_port_ = *address->port;
  if (backend_port_ == 0) {
    auto port = find_free_port(backend_host_);
    if (!port) return port.error();
    backend_port_ = *port;
  }
  upstream_ = backend_host_ + ":" + std::to_string(backend_port_);
  if (!vm_path_.empty()) {
    Result<std::optional<std::string>> saved = io::read_file_if_exists(vm_path_, kMaxSimFileBytes);
    if (!saved) return saved.error();
    if (*saved) return load_vm(**saved);
  }
  if (backend_.sim.start_awake) {
    phase_ = Phase::kRunning;
    start_backend();
  }
  save_vm();
  return ok_status();
}

Status SimProvider::load_vm(const std::string& text) {
  const nlohmann::json vm = nlohmann::json::parse(text, nullptr, false);
  const auto phase = vm.is_object()
                         ? std::ranges::find(kPhaseNames, core::json_field(vm, "phase", std::string()))
                         : std::end(kPhaseNames);
  if (phase == std::end(kPhaseNames)) return Error{"the simulated VM in " + vm_path_ + " is not readable"};
  wake_actions_ = core::json_field(vm, "wake_actions", 0);
  sleep_actions_ = core::json_field(vm, "sleep_actions", 0);
  wake_will_fail_ = core::json_field(vm, "wake_will_fail", false);
  wake_stalls_ = core::json_field(vm, "wake_stalls", false);
  failure_message_ = core::json_field(vm, "failure_message", std::string());
  failure_detail_ = core::json_field(vm, "failure_detail", std::string());
  // The transition goes on where it was, as it did in the cloud while Unshelver was away: one
  // that ended meanwhile ends at once.
  const Clock::time_point ends_at{
      std::chrono::milliseconds(core::json_field(vm, "phase_ends_at_ms", std::int64_t{0}))};
  const auto remaining =
      std::max(std::chrono::milliseconds(0),
               std::chrono::duration_cast<std::chrono::milliseconds>(ends_at - Clock::now()));
  spdlog::info("[{}] sim: the VM is taken back from {}: {}", backend_.name, vm_path_, *phase);
  enter(static_cast<Phase>(phase - std::begin(kPhaseNames)), remaining);
  return ok_status();
}

void SimProvider::save_vm() const {
  if (vm_path_.empty()) return;
  const nlohmann::json vm = {{"phase", kPhaseNames[static_cast<int>(phase_)]},
                             {"phase_ends_at_ms", to_epoch_millis(phase_ends_at_)},
                             {"wake_will_fail", wake_will_fail_},
                             {"wake_stalls", wake_stalls_},
                             {"failure_message", failure_message_},
                             {"failure_detail", failure_detail_},
                             {"wake_actions", wake_actions_},
                             {"sleep_actions", sleep_actions_}};
  if (Status saved = io::write_file_atomically(vm_path_, vm.dump() + "\n", 0600); !saved) {
    spdlog::warn("[{}] sim: cannot keep the VM: {}", backend_.name, saved.error().message);
  }
}

SimProvider::Faults SimProvider::read_faults() {
  Faults faults;
  if (backend_.sim.faults_file.empty()) return faults;
  Result<std::optional<std::string>> text =
      io::read_file_if_exists(backend_.sim.faults_file, kMaxSimFileBytes);
  const std::string content = text && *text ? **text : std::string();
  if (content != faults_text_) {
    faults_text_ = content;
    wakes_since_faults_changed_ = 0;
    if (!text) spdlog::warn("[{}] sim: {}", backend_.name, text.error().message);
  }
  if (content.empty()) return faults;
  const nlohmann::json json = nlohmann::json::parse(content, nullptr, false);
  if (!json.is_object()) {
    spdlog::warn("[{}] sim: {} is not a JSON object; no faults", backend_.name, backend_.sim.faults_file);
    return faults;
  }
  faults.unreachable = core::json_field(json, "unreachable", false);
  faults.refuse_credentials = core::json_field(json, "refuse_credentials", false);
  faults.fail_wakes = core::json_field(json, "fail_wakes", 0);
  faults.stall_wakes = core::json_field(json, "stall_wakes", 0);
  faults.failure_message = core::json_field(json, "failure_message", std::string());
  return faults;
}

std::string SimProvider::api_failure(const Faults& faults) {
  if (faults.unreachable) return "sim: cannot reach the cloud API: Connection refused (sim.faults_file)";
  if (faults.refuse_credentials) {
    return "sim: 401 Unauthorized: the cloud refused the credentials (sim.faults_file)";
  }
  return {};
}

void SimProvider::later(std::function<void()> callback) {
  if (closed_) return;
  api_->call(this, std::move(callback));
}

core::CloudObservation SimProvider::snapshot() const {
  using Kind = core::CloudObservation::Kind;
  core::CloudObservation observation;
  observation.upstream = upstream();
  switch (phase_) {
    case Phase::kStopped:
      observation.kind = Kind::kStopped;
      observation.status = "SHELVED_OFFLOADED";
      observation.detail = failure_detail_;
      break;
    case Phase::kStarting:
      observation.kind = Kind::kStarting;
      observation.status = "SHELVED_OFFLOADED (unshelving)";
      break;
    case Phase::kRunning:
      observation.kind = Kind::kRunning;
      observation.status = "ACTIVE";
      break;
    case Phase::kStopping:
      observation.kind = Kind::kStopping;
      observation.status = "ACTIVE (shelving)";
      break;
  }
  return observation;
}

std::optional<ActionResult> SimProvider::failed_action(const Faults& faults) {
  // A cloud that cannot be reached may come back: observe again. Refused credentials will not
  // change by asking again.
  if (faults.unreachable) return ActionResult::busy(api_failure(faults));
  if (faults.refuse_credentials) return ActionResult::refused(api_failure(faults));
  return std::nullopt;
}

void SimProvider::observe(ObserveMode /*mode*/, ObserveCallback on_done) {
  later([this, on_done = std::move(on_done)] {
    if (std::string failure = api_failure(read_faults()); !failure.empty()) {
      on_done(Error{std::move(failure)});
      return;
    }
    on_done(snapshot());
  });
}

void SimProvider::wake(ActionCallback on_done) {
  ++actions_received_;
  spdlog::info("[{}] sim: wake received", backend_.name);
  later([this, on_done = std::move(on_done)] {
    const Faults faults = read_faults();
    if (auto failed = failed_action(faults)) {
      on_done(std::move(*failed));
      return;
    }
    if (phase_ == Phase::kRunning || phase_ == Phase::kStarting) {
      on_done(ActionResult::accepted());
      return;
    }
    if (phase_ == Phase::kStopping) {
      // Nova answers 409 while a shelve is under way; so does the simulation.
      on_done(ActionResult::busy("409 Conflict: cannot unshelve while shelving"));
      return;
    }
    ++wakes_;
    ++wakes_since_faults_changed_;
    ++wake_actions_;
    std::uniform_real_distribution<double> chance(0.0, 1.0);
    const bool fault_fails = wakes_since_faults_changed_ <= faults.fail_wakes;
    wake_will_fail_ =
        fault_fails || wakes_ <= backend_.sim.fail_wakes ||
        (backend_.sim.wake_failure_rate > 0 && chance(random_) < backend_.sim.wake_failure_rate);
    failure_message_ = fault_fails && !faults.failure_message.empty() ? faults.failure_message
                                                                      : backend_.sim.failure_message;
    wake_stalls_ = !wake_will_fail_ && wakes_since_faults_changed_ <= faults.stall_wakes;
    if (wake_stalls_) spdlog::info("[{}] sim: this wake never finishes (sim.faults_file)", backend_.name);
    failure_detail_.clear();
    enter(Phase::kStarting);
    on_done(ActionResult::accepted());
  });
}

void SimProvider::sleep(ActionCallback on_done) {
  ++actions_received_;
  spdlog::info("[{}] sim: sleep received", backend_.name);
  later([this, on_done = std::move(on_done)] {
    const Faults faults = read_faults();
    if (auto failed = failed_action(faults)) {
      on_done(std::move(*failed));
      return;
    }
    if (phase_ == Phase::kStopped || phase_ == Phase::kStopping) {
      on_done(ActionResult::accepted());
      return;
    }
    if (phase_ == Phase::kStarting) {
      on_done(ActionResult::busy("409 Conflict: cannot shelve while unshelving"));
      return;
    }
    if (++sleeps_ <= backend_.sim.refuse_sleeps) {
      spdlog::info("[{}] sim: the sleep is refused", backend_.name);
      on_done(ActionResult::refused("sim: cannot shelve the instance (sim.refuse_sleeps)"));
      return;
    }
    ++sleep_actions_;
    enter(Phase::kStopping);
    on_done(ActionResult::accepted());
  });
}

void SimProvider::enter(Phase phase) {
  switch (phase) {
    case Phase::kStarting: enter(phase, backend_.sim.wake_duration); break;
    case Phase::kRunning: enter(phase, backend_.sim.boot_duration); break;
    case Phase::kStopping: enter(phase, backend_.sim.sleep_duration); break;
    case Phase::kStopped: enter(phase, std::chrono::milliseconds(0)); break;
  }
}

void SimProvider::enter(Phase phase, std::chrono::milliseconds duration) {
  phase_ = phase;
  phase_ends_at_ = Clock::now() + duration;
  switch (phase) {
    case Phase::kStarting:
      // A stalled wake stays "starting" for as long as the cloud is watched.
      if (!wake_stalls_) phase_timer_.start(duration, [this] { on_phase_timer(); });
      break;
    case Phase::kStopping:
      boot_timer_.stop();
      stop_backend();
      phase_timer_.start(duration, [this] { on_phase_timer(); });
      break;
    case Phase::kRunning: boot_timer_.start(duration, [this] { start_backend(); }); break;
    case Phase::kStopped: stop_backend(); break;
  }
  save_vm();
}

void SimProvider::on_phase_timer() {
  if (phase_ == Phase::kStarting) {
    if (wake_will_fail_) {
      // Like Nova's scheduler failure: the server drops back to shelved and the reason is known.
      failure_detail_ = failure_message_;
      spdlog::info("[{}] sim: the wake fails: {}", backend_.name, failure_detail_);
      enter(Phase::kStopped);
    } else {
      enter(Phase::kRunning);
    }
  } else if (phase_ == Phase::kStopping) {
    enter(Phase::kStopped);
  }
}

void SimProvider::start_backend() {
  if (backend_serving_ || closed_) return;
  const std::string name = backend_.name;
  server_ = std::make_unique<io::HttpServer>(
      loop_, limits_, [name](const io::HttpRequest& request, const io::Responder& responder) {
        std::string body = "<!doctype html><title>" + name + "</title><h1>Simulated backend " + name +
                           "</h1><p>The simulated VM is awake and served " + request.method + " " +
                           request.path + ".</p>\n";
        io::HttpResponse response = io::HttpResponse::html(200, std::move(body));
        response.set_header("X-Sim-Backend", name);
        responder.respond(std::move(response));
      });
  Status listening = server_->listen(backend_host_, backend_port_);
  if (!listening) {
    spdlog::error("[{}] sim: the fake backend cannot listen on {}: {}", backend_.name, upstream(),
                  listening.error().message);
    retiring_.push_back(std::move(server_));
    return;
  }
  backend_serving_ = true;
  spdlog::debug("[{}] sim: backend answers on {}", backend_.name, upstream());
}

void SimProvider::stop_backend() {
  if (!server_) return;
  backend_serving_ = false;
  server_->shutdown([] {});
  retiring_.push_back(std::move(server_));
}

void SimProvider::close() {
  if (closed_) return;
  closed_ = true;
  phase_timer_.stop();
  boot_timer_.stop();
  api_->cancel(this);
  stop_backend();
}

}  // namespace unshelver::providers
