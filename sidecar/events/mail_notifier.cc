#include "events/mail_notifier.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "base/crypto.h"
#include "base/json_values.h"
#include "base/text.h"
#include "config/checks.h"
#include "uv/random.h"

namespace unshelver::app {

namespace {
using nlohmann::json;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}
}  // namespace

NotifierSettings notifier_settings(const core::Config& config,
                                   const std::map<std::string, std::string>& environment) {
  NotifierSettings settings;
  settings.to = core::config_detail::split_addresses(config.notification_email);
  auto variable = [&environment](const std::string& name) {
    auto found = environment.find(name);
    return found == environment.end() ? std::string() : found->second;
  };
  settings.from = config.notifications.from;
  if (settings.from.empty()) settings.from = "unshelver@" + io::host_name();
  const std::string path = variable("PATH").empty()
                               ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                               : variable("PATH");
  // /usr/sbin and /usr/lib are where sendmail lives when a service's PATH leaves them out.
  settings.sendmail = config.notifications.sendmail;
  if (settings.sendmail.empty())
    settings.sendmail = io::find_program("sendmail", path + ":/usr/sbin:/usr/lib");
  if (settings.sendmail.empty()) settings.sendmail = "/usr/sbin/sendmail";
  settings.environment.push_back("PATH=" + path);
  for (const char* name : {"HOME", "USER", "LOGNAME", "LANG"}) {
    if (const std::string value = variable(name); !value.empty())
      settings.environment.push_back(name + ("=" + value));
  }
  settings.outage_threshold = config.notifications.outage_threshold;
  // A service is looked at ten times per threshold (at most every 5 s, at least every 100 ms), so
  // an outage is mailed within a tenth of the threshold after it crosses it.
  settings.health_interval =
      std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(settings.outage_threshold) / 10,
                 std::chrono::milliseconds(100), std::chrono::milliseconds(5'000));
  settings.quiet = config.notifications.quiet;
  settings.max_queued = static_cast<std::size_t>(config.notifications.max_queued);
  settings.send_timeout = config.notifications.send_timeout;
  settings.attempts = config.notifications.attempts;
  settings.secrets = {config.app.control_token, config.app.secret_key, config.openstack.password,
                      config.openstack.application_credential_secret, config.exoscale.api_secret};
  return settings;
}

MailNotifier::MailNotifier(uv_loop_t* loop, NotifierSettings settings, std::function<void()> on_change)
    : settings_(std::move(settings)),
      on_change_(std::move(on_change)),
      throttle_(settings_.quiet),
      child_(std::make_unique<io::ChildProcess>(loop)),
      retry_timer_(loop),
      health_timer_(loop),
      random_(std::random_device{}()) {
  settings_.attempts = std::max(1, settings_.attempts);
  settings_.max_queued = std::max<std::size_t>(1, settings_.max_queued);
}

MailNotifier::~MailNotifier() {
  close();
}

void MailNotifier::watch(std::string subsystem, HealthProbe probe) {
  core::OutageWatch watch(subsystem, settings_.outage_threshold);
  watched_.push_back(Watched{std::move(subsystem), std::move(probe), std::move(watch)});
}

void MailNotifier::start() {
  spdlog::info("notifications: failures are mailed to {} through {}", join(settings_.to), settings_.sendmail);
  if (!watched_.empty()) health_timer_.start_repeating(settings_.health_interval, [this] { poll_health(); });
}

void MailNotifier::close() {
  if (closed_) return;
  closed_ = true;
  health_timer_.stop();
  retry_timer_.stop();
  if (!queue_.empty()) spdlog::warn("notifications: stopping with {} message(s) unsent", queue_.size());
  child_.reset();
  sending_ = false;
  queue_.clear();
}

void MailNotifier::poll_health() {
  const core::TimePoint now = std::chrono::system_clock::now();
  for (Watched& watched : watched_) {
    const ServiceHealth health = watched.probe();
    if (!health.watched) continue;
    if (auto found = watched.watch.observe(health.failing, health.error, now)) alert(*found);
  }
}

void MailNotifier::on_record(const core::EventRecord& record) {
  if (closed_) return;
  if (auto found = core::alert_for_record(record)) alert(*found);
}

void MailNotifier::alert(const core::Alert& alert) {
  const core::TimePoint now = std::chrono::system_clock::now();
  const core::MailThrottle::Decision decision = throttle_.admit(alert, now);
  const std::string key = alert.throttle_key();
  if (!decision.send) {
    spdlog::info("notifications: {} not mailed: held back by the quiet period ({})", key,
                 core::human_duration(settings_.quiet));
    if (on_change_) on_change_();
    return;
  }
  if (queue_.size() >= settings_.max_queued) {
    ++stats_.queue_full;
    spdlog::error("notifications: {} not mailed: {} message(s) already wait for sendmail", key,
                  queue_.size());
    if (on_change_) on_change_();
    return;
  }
  core::MailContext context;
  context.now = now;
  context.control_url = settings_.control_url;
  context.held_back_before = decision.held_back_before;
  context.held_back_since = decision.held_back_since;
  context.quiet = settings_.quiet;
  const core::MailMessage message = core::compose(alert, context);
  const core::MailEnvelope envelope{settings_.from, settings_.to, core::hex(io::random_bytes(8))};
  queue_.push_back(Pending{key, core::render_message(message, envelope, now, settings_.secrets), 0});
  pump();
}

void MailNotifier::pump() {
  if (closed_ || sending_ || queue_.empty() || retry_timer_.active()) return;
  io::ProcessSpec spec;
  // -t: the recipients are the To header's; -oi: a line with a single dot does not end the input.
  spec.arguments = {settings_.sendmail, "-t", "-oi"};
  spec.environment = settings_.environment;
  spec.input = queue_.front().message;
  spec.output_limit = 4096;
  spec.timeout = settings_.send_timeout;
  sending_ = true;
  ++queue_.front().attempts;
  child_->start(std::move(spec), [this](const io::ProcessResult& result) { on_sent(result); });
}

void MailNotifier::on_sent(const io::ProcessResult& result) {
  sending_ = false;
  if (queue_.empty()) return;
  Pending& pending = queue_.front();
  if (result.succeeded()) {
    ++stats_.sent;
    stats_.last_sent_at = std::chrono::system_clock::now();
    spdlog::info("notifications: mailed {} to {}", pending.key, join(settings_.to));
    queue_.pop_front();
    if (on_change_) on_change_();
    pump();
    return;
  }
  ++stats_.failed_attempts;
  // sendmail's own words can quote the message, and so a secret: they pass the same scrubbing.
  stats_.last_error = core::scrub_secrets(settings_.sendmail + " " + result.describe(), settings_.secrets);
  stats_.last_error_at = std::chrono::system_clock::now();
  if (pending.attempts >= settings_.attempts) {
    ++stats_.given_up;
    spdlog::error("notifications: cannot mail {} after {} attempt(s): {}; the event stays in the event log",
                  pending.key, pending.attempts, stats_.last_error);
    queue_.pop_front();
    if (on_change_) on_change_();
    pump();
    return;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto delay = core::backoff_delay(settings_.backoff, pending.attempts, unit(random_));
  spdlog::warn("notifications: cannot mail {} (attempt {} of {}): {}; trying again in {} ms", pending.key,
               pending.attempts, settings_.attempts, stats_.last_error, delay.count());
  retry_timer_.start(delay, [this] { pump(); });
  if (on_change_) on_change_();
}

void MailNotifier::write_status(json& document) const {
  json watched = json::object();
  for (const Watched& item : watched_) {
    watched[item.subsystem] = json{{"failing_since", core::time_or_null(item.watch.failing_since())},
                                   {"alerted", item.watch.alerted()}};
  }
  document["notifications"] = json{{"to", settings_.to},
                                   {"sendmail", settings_.sendmail},
                                   {"queued", queue_.size()},
                                   {"sent", stats_.sent},
                                   {"failed_attempts", stats_.failed_attempts},
                                   {"given_up", stats_.given_up},
                                   {"queue_full", stats_.queue_full},
                                   {"held_back", throttle_.held_back()},
                                   {"last_error", core::text_or_null(stats_.last_error)},
                                   {"last_error_at", core::time_or_null(stats_.last_error_at)},
                                   {"last_sent_at", core::time_or_null(stats_.last_sent_at)},
                                   {"outage_threshold_seconds", settings_.outage_threshold.count()},
                                   {"watched", std::move(watched)}};
}

void MailNotifier::write_metrics(core::MetricsPage& page) const {
  constexpr const char* kHelp =
      "Notification mails, by outcome: sent, failed (a sendmail run that failed), given_up (dropped after "
      "the last attempt), queue_full (dropped unqueued), held_back (a repeat within the quiet period).";
  for (const auto& [outcome, count] :
       {std::pair{"sent", stats_.sent}, std::pair{"failed", stats_.failed_attempts},
        std::pair{"given_up", stats_.given_up}, std::pair{"queue_full", stats_.queue_full},
        std::pair{"held_back", throttle_.held_back()}}) {
    page.counter("unshelver_notifications_total", kHelp, {{"outcome", outcome}}, static_cast<double>(count));
  }
  page.gauge("unshelver_notifications_queued", "Notification mails waiting for sendmail.", {},
             static_cast<double>(queue_.size()));
}

}  // namespace unshelver::app
