#include "backend/health_prober.h"

namespace unshelver::io {

HealthProber::HealthProber(uv_loop_t* loop, HttpClient& client) : client_(client), timer_(loop) {}

HealthProber::~HealthProber() {
  stop();
}

void HealthProber::start(ProbeTarget target, ResultCallback on_result) {
  stop();
  target_ = std::move(target);
  on_result_ = std::move(on_result);
  running_ = true;
  probe();
}

void HealthProber::stop() {
  running_ = false;
  timer_.stop();
  if (in_flight_ != 0) {
    client_.cancel(in_flight_);
    in_flight_ = 0;
  }
}

void HealthProber::probe() {
  ClientRequest request;
  request.url = target_.url;
  request.timeout = target_.timeout;
  request.connect_timeout = target_.timeout;
  request.verify_tls = target_.verify_tls;
  request.max_response_bytes = std::size_t{64} * 1024;
  request.headers.emplace_back("User-Agent", "unshelver-health-probe");
  in_flight_ = client_.send(std::move(request), [this](const ClientResponse& response) {
    in_flight_ = 0;
    if (!running_) return;
    const bool passed = response.is_2xx();
    std::string detail;
    if (!response.transport_ok()) {
      detail = response.error;
    } else if (!passed) {
      detail = "HTTP " + std::to_string(response.status);
    }
    // Schedule first: the callback may stop or restart this prober.
    timer_.start(target_.interval, [this] { probe(); });
    ResultCallback callback = on_result_;
    callback(passed, detail);
  });
}

}  // namespace unshelver::io
