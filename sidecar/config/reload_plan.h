// ReloadPlan: what a reload of the configuration (SIGHUP) changes, worked out from the running
// configuration and the new one, before anything is touched.
//
// A reload rebuilds the whole daemon in the same process (app/app.h), so every setting takes the
// new value, with one exception: the listening socket is handed over as it is, so that no
// connection is refused during the reload, and a changed `listen` therefore keeps the old address
// until a restart. The plan says so, names the backends added, removed and changed for the
// `config_reloaded` event, and never mentions a secret's value (only that one changed).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace unshelver::core {

struct ReloadPlan {
  std::vector<std::string> added;    // backends in the new configuration only, in its order
  std::vector<std::string> removed;  // backends in the running configuration only, in its order
  std::vector<std::string> changed;  // backends in both, with a setting that differs
  // Top-level sections that differ ("app", "http", "caddy", ...); the secrets are named as such
  // ("control token", "secret key") and never shown.
  std::vector<std::string> settings;
  bool listen_changed = false;  // `listen` differs: the running address stays until a restart
  std::string listen_kept;      // the running address (when listen_changed)
  std::string listen_wanted;    // the new one (when listen_changed)

  bool unchanged() const {
    return added.empty() && removed.empty() && changed.empty() && settings.empty() && !listen_changed;
  }
  // One line for the event log and the daemon's log: "backends added: c; backends removed: b;
  // backends changed: a; settings: app, control token" or "no change".
  std::string summary() const;
};

ReloadPlan plan_reload(const Config& running, const Config& next);

// `next` with the parts a reload cannot change set back to the running values (`listen`), so that
// what runs after the reload is exactly what the plan describes.
Config apply_reload_limits(const Config& running, Config next);

}  // namespace unshelver::core
