// HealthProber: asks a backend's health URL, again and again, whether it serves.
//
// One probe at a time: the next one starts `interval` after the previous one ended, so a slow
// backend is never stacked with probes. A probe passes on any 2xx answer within `timeout`;
// everything else (other status, refused, timeout) fails with a short reason. The results go to
// the reconciler, which counts them.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "uv/http_client.h"
#include "uv/timer.h"

namespace unshelver::io {

struct ProbeTarget {
  std::string url;
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{5000};
  bool verify_tls = true;
};

class HealthProber {
 public:
  using ResultCallback = std::function<void(bool passed, const std::string& detail)>;

  HealthProber(uv_loop_t* loop, HttpClient& client);
  ~HealthProber();
  HealthProber(const HealthProber&) = delete;
  HealthProber& operator=(const HealthProber&) = delete;

  // Starts probing (the first probe right away), replacing any earlier target.
  void start(ProbeTarget target, ResultCallback on_result);
  void stop();
  bool running() const { return running_; }
  const ProbeTarget& target() const { return target_; }

 private:
  void probe();

  HttpClient& client_;
  Timer timer_;
  ProbeTarget target_;
  ResultCallback on_result_;
  RequestId in_flight_ = 0;
  bool running_ = false;
};

}  // namespace unshelver::io
