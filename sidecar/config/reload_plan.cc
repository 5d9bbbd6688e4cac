#include "config/reload_plan.h"

namespace unshelver::core {

namespace {

void append_list(std::string& out, const char* what, const std::vector<std::string>& names) {
  if (names.empty()) return;
  if (!out.empty()) out += "; ";
  out += what;
  out += ": ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
}

}  // namespace

ReloadPlan plan_reload(const Config& running, const Config& next) {
  ReloadPlan plan;
  for (const BackendConfig& backend : next.backends) {
    const BackendConfig* before = running.find_backend(backend.name);
    if (before == nullptr) {
      plan.added.push_back(backend.name);
    } else if (!(*before == backend)) {
      plan.changed.push_back(backend.name);
    }
  }
  for (const BackendConfig& backend : running.backends) {
    if (next.find_backend(backend.name) == nullptr) plan.removed.push_back(backend.name);
  }

  // The secrets first, by name only; then the sections with them set equal, so that a changed
  // token does not also show up as a changed "app".
  AppSettings running_app = running.app;
  AppSettings next_app = next.app;
  if (running_app.control_token != next_app.control_token) plan.settings.emplace_back("control token");
  if (running_app.secret_key != next_app.secret_key) plan.settings.emplace_back("secret key");
  running_app.control_token = next_app.control_token;
  running_app.secret_key = next_app.secret_key;
  if (!(running_app == next_app)) plan.settings.emplace_back("app");
  if (!(running.openstack == next.openstack)) plan.settings.emplace_back("openstack");
  if (!(running.activity == next.activity) || running.activity_log_path != next.activity_log_path ||
      running.idle_poll_interval != next.idle_poll_interval) {
    plan.settings.emplace_back("activity");
  }
  if (!(running.events == next.events) || running.local_event_log != next.local_event_log ||
      running.swift_event_container != next.swift_event_container ||
      running.swift_event_prefix != next.swift_event_prefix) {
    plan.settings.emplace_back("events");
  }
  if (!(running.webhooks == next.webhooks)) plan.settings.emplace_back("webhooks");
  if (!(running.security == next.security)) plan.settings.emplace_back("security");
  if (!(running.http == next.http)) plan.settings.emplace_back("http");
  if (!(running.caddy == next.caddy) || running.caddy_upstream_label != next.caddy_upstream_label) {
    plan.settings.emplace_back("caddy");
  }
  if (running.state_dir != next.state_dir) plan.settings.emplace_back("state_dir");
  if (running.templates_dir != next.templates_dir) plan.settings.emplace_back("templates_dir");
  if (running.log_level != next.log_level) plan.settings.emplace_back("log_level");
  if (running.notification_email != next.notification_email) plan.settings.emplace_back("notification_email");
  if (!(running.notifications == next.notifications)) plan.settings.emplace_back("notifications");

  if (running.listen != next.listen) {
    plan.listen_changed = true;
    plan.listen_kept = running.listen;
    plan.listen_wanted = next.listen;
  }
  return plan;
}

Config apply_reload_limits(const Config& running, Config next) {
  next.listen = running.listen;
  return next;
}

std::string ReloadPlan::summary() const {
  std::string out;
  append_list(out, "backends added", added);
  append_list(out, "backends removed", removed);
  append_list(out, "backends changed", changed);
  append_list(out, "settings", settings);
  if (listen_changed) {
    if (!out.empty()) out += "; ";
    out += "listen stays " + listen_kept + " until a restart (wanted " + listen_wanted + ")";
  }
  return out.empty() ? "no change" : out;
}

}  // namespace unshelver::core
