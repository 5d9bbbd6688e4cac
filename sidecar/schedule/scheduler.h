// KeepWarmScheduler: runs each backend's BackendSchedule (schedule/keep_warm.h) on the loop.
//
// Every `interval` (30 s in the daemon) it asks each schedule what to do and carries it out
// through the backend's driver: wake requests and awake holds. It learns uses for pre-warming
// from the event log at start (the recorder's recent records: wake requests by visitors and API
// clients) and then from each such record as it is written and from activity the reconciler
// sees. The pre-warm cost cap's hours are kept in <state_dir>/prewarm-budget.json so that a
// restart does not reset the week. The decisions are all in the pure core.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/driver.h"
#include "events/record.h"
#include "schedule/keep_warm.h"
#include "uv/timer.h"

namespace unshelver::app {

class KeepWarmScheduler {
 public:
  using Estimate = std::function<std::optional<double>(const std::string& backend)>;
  struct Entry {
    BackendDriver* driver;
    core::BackendSchedule schedule;
  };

  KeepWarmScheduler(uv_loop_t* loop, std::vector<Entry> entries, std::string budget_path, Estimate estimate,
                    std::chrono::milliseconds interval);

  // Reads the budget file, learns from `history`, runs the first step now and then every interval.
  void start(const std::vector<core::EventRecord>& history);
  // A record just written: a visitor's or API client's wake request counts as a use.
  void on_event(const core::EventRecord& record);
  void close() { timer_.stop(); }

  // What the pages show; nullopt for a backend with neither windows nor pre-warming.
  std::optional<core::ScheduleView> view(const std::string& backend) const;

 private:
  void run();
  // One step for every backend; false while a backend has not been observed yet (it is skipped).
  bool step();
  void save_budget();

  std::vector<Entry> entries_;
  std::map<std::string, core::TimePoint> last_use_seen_;  // per backend, the last activity learned
  std::string budget_path_;
  Estimate estimate_;
  std::chrono::milliseconds interval_;
  io::Timer timer_;
};

// Whether an event record is a use for pre-warming (schedule/prewarm.h).
bool is_use_record(const core::EventRecord& record);

}  // namespace unshelver::app
