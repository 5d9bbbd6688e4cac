#include "backend/sim_provider.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "base/text.h"
#include "base/url.h"

namespace unshelver::providers {

namespace {
using namespace std::chrono_literals;
// A real cloud API answers in tens of milliseconds; a short delay keeps the asynchronous
// contract honest (callbacks never run inside the call) without slowing tests down.
constexpr auto kApiLatency = 5ms;

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

SimProvider::SimProvider(uv_loop_t* loop, const core::BackendConfig& backend, core::HttpLimits limits)
    : loop_(loop),
      backend_(backend),
      limits_(limits),
      phase_timer_(loop),
      boot_timer_(loop),
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
  if (backend_.sim.start_awake) {
    phase_ = Phase::kRunning;
    start_backend();
  }
  return ok_status();
}

std::string SimProvider::upstream() const {
  return backend_host_ + ":" + std::to_string(backend_port_);
}

void SimProvider::later(std::function<void()> callback) {
  auto timer = std::make_unique<io::Timer>(loop_);
  io::Timer* raw = timer.get();
  pending_.push_back(std::move(timer));
  raw->start(kApiLatency, [this, raw, callback = std::move(callback)]() mutable {
    // Take the callback's owner out of the pending list first; destroying a Timer inside its own
    // callback is allowed (timer.h), and `callback` was captured by value.
    auto self = std::move(callback);
    std::erase_if(pending_, [raw](const auto& timer) { return timer.get() == raw; });
    if (!closed_) self();
  });
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

void SimProvider::observe(ObserveCallback on_done) {
  later([this, on_done = std::move(on_done)] { on_done(snapshot()); });
}

void SimProvider::wake(ActionCallback on_done) {
  ++actions_received_;
  spdlog::info("[{}] sim: wake received", backend_.name);
  later([this, on_done = std::move(on_done)] {
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
    std::uniform_real_distribution<double> chance(0.0, 1.0);
    wake_will_fail_ = wakes_ <= backend_.sim.fail_wakes || (backend_.sim.wake_failure_rate > 0 &&
                                                            chance(random_) < backend_.sim.wake_failure_rate);
    failure_detail_.clear();
    enter(Phase::kStarting);
    on_done(ActionResult::accepted());
  });
}

void SimProvider::sleep(ActionCallback on_done) {
  ++actions_received_;
  spdlog::info("[{}] sim: sleep received", backend_.name);
  later([this, on_done = std::move(on_done)] {
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
    enter(Phase::kStopping);
    on_done(ActionResult::accepted());
  });
}

void SimProvider::enter(Phase phase) {
  phase_ = phase;
  switch (phase) {
    case Phase::kStarting:
      phase_timer_.start(backend_.sim.wake_duration, [this] { on_phase_timer(); });
      break;
    case Phase::kStopping:
      boot_timer_.stop();
      stop_backend();
      phase_timer_.start(backend_.sim.sleep_duration, [this] { on_phase_timer(); });
      break;
    case Phase::kRunning: boot_timer_.start(backend_.sim.boot_duration, [this] { start_backend(); }); break;
    case Phase::kStopped: stop_backend(); break;
  }
}

void SimProvider::on_phase_timer() {
  if (phase_ == Phase::kStarting) {
    if (wake_will_fail_) {
      // Like Nova's scheduler failure: the server drops back to shelved and the reason is known.
      failure_detail_ = backend_.sim.failure_message;
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
  pending_.clear();
  stop_backend();
}

}  // namespace unshelver::providers
