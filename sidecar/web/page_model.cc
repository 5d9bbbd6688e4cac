#include "web/page_model.h"

#include <algorithm>

#include "base/json_values.h"
#include "base/text.h"
#include "base/time_format.h"
#include "bill/savings.h"

namespace unshelver::web {

using core::BackendState;

std::string_view state_label(BackendState state) {
  switch (state) {
    case BackendState::kAsleep: return "Asleep";
    case BackendState::kWaking: return "Waking up";
    case BackendState::kBooting: return "Starting services";
    case BackendState::kReady: return "Ready";
    case BackendState::kSleeping: return "Going to sleep";
    case BackendState::kError: return "Error";
    case BackendState::kUnknown: break;
  }
  return "Checking";
}

std::string explanation(BackendState state, const std::string& label) {
  switch (state) {
    case BackendState::kAsleep:
      return label + " is asleep to save costs. Wake it to continue; waking takes a few minutes.";
    case BackendState::kWaking: return label + " is waking up: the cloud is starting its machine.";
    case BackendState::kBooting: return "The machine runs; " + label + "'s services are starting.";
    case BackendState::kReady: return label + " is ready.";
    case BackendState::kSleeping: return label + " is going to sleep. You can wake it again right away.";
    case BackendState::kError: return label + " could not be woken.";
    case BackendState::kUnknown: break;
  }
  return "Checking " + label + "'s state.";
}

bool can_wake(BackendState state) {
  return state == BackendState::kAsleep || state == BackendState::kError || state == BackendState::kSleeping;
}

bool is_busy(BackendState state) {
  return state == BackendState::kWaking || state == BackendState::kBooting ||
         state == BackendState::kSleeping || state == BackendState::kUnknown;
}

bool auto_refresh(BackendState state) {
  return state != BackendState::kAsleep && state != BackendState::kError;
}

int retry_after_seconds(BackendState state) {
  return state == BackendState::kWaking || state == BackendState::kBooting ? 10 : 30;
}

namespace {

bool contains_any(std::string_view text, std::initializer_list<std::string_view> needles) {
  for (std::string_view needle : needles) {
    if (text.find(needle) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

FailureReason classify_failure(std::string_view error) {
  if (core::trim(error).empty()) return FailureReason::kNone;
  const std::string text = core::to_lower(error);
  // The reconciler's own words (backend/reconciler.cc) come first: they start the text, while
  // anything the cloud said comes after them.
  if (text.starts_with("not ready within ")) return FailureReason::kNotReadyInTime;
  if (text.starts_with("health check did not pass")) return FailureReason::kUnhealthy;
  if (text.starts_with("the cloud still reports the vm")) return FailureReason::kCloudStuck;
  // Nova's "Quota exceeded for instances", "No valid host was found", 413 Request Entity Too Large
  // (overLimit); a quota is a capacity the project ran out of.
  if (contains_any(text, {"quota", "no valid host", "not enough hosts", "insufficient", "over limit",
                          "overlimit", "http 413", "answered 413"})) {
    return FailureReason::kNoCapacity;
  }
  // libcurl's transport failures (http_client.cc) and gateway errors in front of the cloud.
  if (contains_any(text, {"timed out", "timeout", "couldn't connect", "could not connect",
                          "failed to connect", "couldn't resolve", "could not resolve", "connection refused",
                          "connection reset", "empty reply", "http 502", "http 503", "http 504",
                          "answered 502", "answered 503", "answered 504", "cannot reach", "unreachable"})) {
    return FailureReason::kCloudUnreachable;
  }
  // BackendReconciler::on_action_done words a refused command "<command> failed: <message>".
  if (text.starts_with("wake failed:") || text.starts_with("sleep failed:") ||
      text.starts_with("observe failed:")) {
    return FailureReason::kCloudRefused;
  }
  return FailureReason::kCloudFault;
}

std::string_view failure_code(FailureReason reason) {
  switch (reason) {
    case FailureReason::kNone: break;
    case FailureReason::kCloudRefused: return "cloud_refused";
    case FailureReason::kCloudUnreachable: return "cloud_unreachable";
    case FailureReason::kNoCapacity: return "no_capacity";
    case FailureReason::kCloudFault: return "cloud_fault";
    case FailureReason::kNotReadyInTime: return "not_ready_in_time";
    case FailureReason::kUnhealthy: return "unhealthy";
    case FailureReason::kCloudStuck: return "cloud_stuck";
  }
  return "";
}

std::string_view failure_summary(FailureReason reason) {
  switch (reason) {
    case FailureReason::kNone: break;
    case FailureReason::kCloudRefused: return "The cloud refused the request.";
    case FailureReason::kCloudUnreachable: return "The cloud did not answer.";
    case FailureReason::kNoCapacity:
      return "The cloud has no room for the machine right now (quota or capacity).";
    case FailureReason::kCloudFault: return "The cloud reported an error for the machine.";
    case FailureReason::kNotReadyInTime: return "The machine did not become ready in time.";
    case FailureReason::kUnhealthy: return "The machine started, but its service did not become healthy.";
    case FailureReason::kCloudStuck: return "The cloud did not carry out the request.";
  }
  return "";
}

std::string_view step_label(WakeStep step) {
  switch (step) {
    case WakeStep::kRequested: return "Wake requested";
    case WakeStep::kMachineStarting: return "Machine starting";
    case WakeStep::kServicesStarting: return "Services starting";
    case WakeStep::kReady: break;
  }
  return "Ready";
}

namespace {

std::string_view step_key(WakeStep step) {
  switch (step) {
    case WakeStep::kRequested: return "requested";
    case WakeStep::kMachineStarting: return "machine";
    case WakeStep::kServicesStarting: return "services";
    case WakeStep::kReady: break;
  }
  return "ready";
}

constexpr WakeStep kWakeSteps[] = {WakeStep::kRequested, WakeStep::kMachineStarting,
                                   WakeStep::kServicesStarting, WakeStep::kReady};

}  // namespace

std::optional<WakeStep> current_step(const BackendView& view) {
  switch (view.state) {
    case BackendState::kWaking: return WakeStep::kMachineStarting;
    case BackendState::kBooting: return WakeStep::kServicesStarting;
    case BackendState::kReady: return WakeStep::kReady;
    // Asked for, but the cloud has not been told yet (or the state is not known yet).
    case BackendState::kAsleep:
    case BackendState::kUnknown:
      if (view.desired_awake) return WakeStep::kRequested;
      break;
    case BackendState::kSleeping:
    case BackendState::kError: break;
  }
  return std::nullopt;
}

std::string hint(const BackendView& view) {
  // Nothing moves until a controller may act again: promising progress here would be untrue.
  switch (view.coordination) {
    case Coordination::kActing: break;
    case Coordination::kStoreUnreachable:
      return "Unshelver cannot reach the store its controllers agree through: nothing is woken or put to "
             "sleep until it can. Please try again in a minute.";
    case Coordination::kHandingOver:
      return "Unshelver is handing " + view.label +
             " over to another controller; this takes a few seconds, and this page moves on by itself.";
  }
  if (view.state == BackendState::kReady) return view.label + " is ready.";
  if (view.state == BackendState::kError) {
    return "You can try again: the cause may have passed. If it fails again, tell whoever runs " +
           view.label + ".";
  }
  // A sleeping backend moves on only when someone wakes it: say so rather than promise progress.
  if (!current_step(view)) return "Nothing happens until someone wakes " + view.label + ".";
  return "This page moves on to " + view.label + " by itself as soon as it is ready.";
}

std::string_view coordination_code(Coordination coordination) {
  switch (coordination) {
    case Coordination::kActing: return "";
    case Coordination::kStoreUnreachable: return "etcd_unreachable";
    case Coordination::kHandingOver: return "handing_over";
  }
  return "";
}

std::string duration_in_words(std::chrono::seconds duration) {
  const long long seconds = std::max<long long>(0, duration.count());
  auto plural = [](long long count, const char* unit) {
    return std::to_string(count) + " " + unit + (count == 1 ? "" : "s");
  };
  if (seconds < 60) return plural(seconds, "second");
  if (seconds % 3600 == 0) return plural(seconds / 3600, "hour");
  if (seconds < 3600 && seconds % 60 == 0) return plural(seconds / 60, "minute");
  if (seconds < 3600) return std::to_string(seconds / 60) + " min " + std::to_string(seconds % 60) + " s";
  return std::to_string(seconds / 3600) + " h " + std::to_string(seconds % 3600 / 60) + " min";
}

std::string time_left(std::chrono::seconds elapsed, std::chrono::seconds usual) {
  const std::chrono::seconds left = usual - elapsed;
  if (left.count() <= 0) return "taking longer than usual";
  // Rounded up to whole minutes from a minute on: "about 1 minute" while 40 s are left would
  // promise too much.
  if (left.count() < 60) return "about " + duration_in_words(left) + " left";
  return "about " + duration_in_words(std::chrono::minutes((left.count() + 59) / 60)) + " left";
}

std::string human_time(const nlohmann::json& iso, std::chrono::system_clock::time_point now) {
  if (!iso.is_string()) return "";
  auto at = core::parse_rfc3339(iso.get<std::string>());
  if (!at) return "";
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto day = std::chrono::floor<std::chrono::days>(*at);
  const std::chrono::year_month_day date{day};
  const std::chrono::hh_mm_ss clock{std::chrono::floor<std::chrono::seconds>(*at - day)};
  auto two = [](long long value) { return (value < 10 ? "0" : "") + std::to_string(value); };
  const std::string hh_mm = two(clock.hours().count()) + ":" + two(clock.minutes().count());
  if (day == std::chrono::floor<std::chrono::days>(now))
    return hh_mm + ":" + two(clock.seconds().count()) + " UTC";
  return std::to_string(static_cast<unsigned>(date.day())) + " " +
         kMonths[static_cast<unsigned>(date.month()) - 1] + " " + hh_mm + " UTC";
}

void add_time_texts(nlohmann::json& backend, std::chrono::system_clock::time_point now) {
  for (const char* field : {"since", "last_activity", "idle_deadline"})
    backend[std::string(field) + "_text"] = human_time(backend.value(field, nlohmann::json()), now);
}

void add_page_fields(const BackendView& view, nlohmann::json& entry) {
  entry["state_label"] = std::string(state_label(view.state));
  entry["explanation"] = explanation(view.state, view.label);
  entry["is_ready"] = view.state == BackendState::kReady;
  entry["can_wake"] = can_wake(view.state);
  entry["is_busy"] = is_busy(view.state);
  entry["is_error"] = view.state == BackendState::kError;
  entry["auto_refresh"] = auto_refresh(view.state);
  // The control page's timeline without JavaScript.
  entry["history_summary"] = core::history_summary(view.history, core::WakeHistorySettings{}.window);
  // The control page's savings section (bill/savings.h), drawn by the server: no script needed.
  if (view.savings.is_object()) {
    entry["bill"] = {
        {"this_month", core::period_summary(view.savings["this_month"])},
        {"last_month", core::period_summary(view.savings["last_month"])},
        {"bars", core::chart_bars(view.savings["days"])},
        {"first_day", view.savings["days"].empty() ? "" : view.savings["days"].front().value("day", "")},
        {"last_day", view.savings["days"].empty() ? "" : view.savings["days"].back().value("day", "")},
        {"width", core::kChartWidth},
        {"height", core::kChartHeight}};
  }
  const std::optional<WakeStep> step = current_step(view);
  nlohmann::json steps = nlohmann::json::array();
  for (WakeStep each : kWakeSteps) {
    steps.push_back({{"key", std::string(step_key(each))},
                     {"label", std::string(step_label(each))},
                     {"is_done", step && each < *step},
                     {"is_current", step && each == *step}});
  }
  entry["steps"] = std::move(steps);
  entry["step"] = step ? std::string(step_key(*step)) : std::string();
  entry["hint"] = hint(view);
  entry["wake_button"] = (view.state == BackendState::kError ? "Try again to wake " : "Wake ") + view.label;
  entry["idle_timeout_text"] = view.idle_timeout.count() > 0 ? duration_in_words(view.idle_timeout) : "";
}

nlohmann::json backend_json(const BackendView& view) {
  using nlohmann::json;
  const FailureReason failure = classify_failure(view.error);
  json entry = {
      {"name", view.name},
      {"label", view.label},
      {"description", view.description},
      {"provider", view.provider},
      {"state", std::string(core::to_string(view.state))},
      {"state_label", std::string(state_label(view.state))},  // what every page shows
      {"routing", view.routing ? json(*view.routing) : json()},
      {"since", core::format_rfc3339(view.since)},
      {"desired", view.desired_awake ? "awake" : "asleep"},
      {"desired_by", view.desired_by},
      {"desired_reason", view.desired_reason},
      {"last_activity", core::time_or_null(view.last_activity)},
      {"idle_deadline", core::time_or_null(view.idle_deadline)},
      {"idle_timeout_seconds", view.idle_timeout.count()},
      {"wake_started_at", core::time_or_null(view.wake_started_at)},
      {"url", view.url},
      {"upstream", view.upstream},
      {"cloud_status", view.cloud_status},
      {"observed_at", core::time_or_null(view.observed_at)},
      {"error", view.error},
      // What the public view shows in place of `error` (public_backend): the cloud's text
      // can carry a traceback and internal host names.
      {"error_reason", std::string(failure_code(failure))},
      {"error_summary", std::string(failure_summary(failure))},
      {"observe_error", view.observe_error},
      {"coordination", std::string(coordination_code(view.coordination))},
      {"action_in_flight",
       view.action_in_flight ? json(std::string(core::to_string(*view.action_in_flight))) : json()},
      {"requests_in_flight", view.requests_in_flight},
      // Unshelver observes this backend but never wakes or shelves it; the events record what it
      // would have done (dry_run_would_shelve, dry_run_would_wake).
      {"dry_run", view.dry_run},
      // A contract with the pages (waiting page, launcher): seconds, or null before the first
      // completed wake. Public; the history below is for admins (public_backend).
      {"wake_estimate_seconds", view.wake_estimate_seconds ? json(*view.wake_estimate_seconds) : json()},
      {"history", core::history_json(view.history)},
  };
  // Admins only, like the history (public_backend leaves it out).
  if (!view.savings.is_null()) entry["savings"] = view.savings;
  // Why the backend is awake, and the awake holds (README "Keep-warm windows and pre-warming").
  entry["awake_reason"] = view.awake_reason.empty() ? json() : json(view.awake_reason);
  entry["held_until"] = core::time_or_null(view.held_until);
  entry["pinned"] = view.pin ? json{{"by", view.pin->actor},
                                    {"at", core::format_rfc3339(view.pin->since)},
                                    {"detail", view.pin->detail}}
                             : json();
  if (view.scheduled) {
    entry["keep_warm"] = {{"window_until", core::time_or_null(view.window_until)},
                          {"next_window", core::time_or_null(view.next_window)},
                          {"next_prewarm", core::time_or_null(view.next_prewarm)},
                          {"wake_lead_seconds", view.wake_lead.count()},
                          {"prewarm_seconds_this_week", view.prewarm_used.count()},
                          {"prewarm_cap_seconds", view.prewarm_cap.count()}};
  }
  if (view.activity_lines) entry["activity_lines"] = *view.activity_lines;
  if (view.ignored_lines) entry["ignored_lines"] = *view.ignored_lines;
  if (view.gate) {
    const GateView& gate = *view.gate;
    entry["gate"] = {{"held", gate.held},
                     {"oldest_hold_ms", gate.oldest.count()},
                     {"held_total", gate.held_total},
                     {"released", gate.released},
                     {"failed", gate.failed},
                     {"expired", gate.expired},
                     {"gone", gate.gone},
                     {"refused", gate.refused},
                     {"longest_hold_ms", gate.longest_hold.count()},
                     {"in_flight", gate.in_flight},
                     {"in_flight_forgotten", gate.in_flight_forgotten}};
  }
  return entry;
}

}  // namespace unshelver::web
