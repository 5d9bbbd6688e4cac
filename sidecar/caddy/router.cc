// CaddyRouter's implementation. The contract is in caddy_router.h; this comment is about the flow.
//
// Three things may be under way at once, each owned by one member:
// - at most one load (`POST /load`, load_id_): what is wanted is kept in wanted_, what Caddy runs
//   (as far as we know) in loaded_; pump() starts the next load whenever nothing is in flight and
//   the two differ, so updates that arrive during a load coalesce into one more load of the newest
//   text;
// - a back-off after a failed load (retry_timer_), which holds back only a retry of the same text:
//   a different text is new information and is tried at once;
// - a drift check (check_id_: `POST /adapt`, then `GET /config/`), which runs only while no load
//   is due and is cancelled when a load starts, so that its answer can never describe a stale
//   text.
//
// Caddy's admin API contract relied on (caddy-facts §5, verified on 2.6.2): `POST /load` with
// `Content-Type: text/caddyfile` answers 200 with an empty body, or 400 `{"error": "..."}` with the
// old config still running (§5e); an identical config is a no-op unless `Cache-Control:
// must-revalidate` is sent (§5a); `POST /adapt` answers `{"result": {...}}` and `GET /config/` the
// running JSON, and for the same Caddyfile the two are equal as JSON values (§5b). The admin API
// is also the only way to switch routes live: with `admin off` nothing answers (§5f).
#include "caddy/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <random>

#include "base/backoff.h"
#include "base/json_values.h"
#include "base/url.h"
#include "config/caddy_admin.h"
#include "uv/files.h"

namespace unshelver::app {

namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// The admin API answers a load in a few ms (caddy-facts §5c); ten seconds means it is stuck.
constexpr auto kRequestTimeout = 10'000ms;
constexpr auto kConnectTimeout = 3'000ms;
// The first retry after a failed load; each further failure doubles it, up to retry_max.
constexpr auto kFirstRetryDelay = 1'000ms;
// A retry waits 75 % to 100 % of its ceiling.
constexpr double kRetryJitter = 0.25;
// A successful load is followed by a drift check this much later: long enough for a burst of
// state changes to settle into one more load, short enough to catch a foreign reload quickly.
constexpr auto kPostLoadCheckDelay = 300ms;
// Caddy's error messages are one line, but a proxy in front of the admin API could answer with a
// whole page; status texts and logs keep only this much of it.
constexpr std::size_t kMaxErrorChars = 600;
// The Caddyfile and the snippet must be readable by Caddy's own user (Debian: `caddy`), which is
// usually not Unshelver's; they hold site addresses and upstreams, no secrets.
constexpr int kCaddyfileMode = 0644;

core::TimePoint now() {
  return std::chrono::system_clock::now();
}

std::string without_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The endpoint for caddy.admin. check-config has accepted the value; should it not have been
// checked, an http URL is still used as it is.
core::CaddyAdminEndpoint endpoint_of(const std::string& admin) {
  Result<core::CaddyAdminEndpoint> endpoint = core::parse_caddy_admin(admin);
  if (endpoint) return std::move(*endpoint);
  core::CaddyAdminEndpoint fallback;
  fallback.base_url = without_trailing_slashes(admin);
  const std::optional<core::Url> parts = core::parse_url(admin);
  fallback.listen = parts ? parts->authority : admin;
  return fallback;
}

// Why Caddy must not load `body`, or "" when it may: the `admin` global option of a config
// loaded through the admin API decides where that API listens afterwards. `admin off` leaves
// none (Unshelver could never switch the routing again; caddy-facts §5f). With a Unix socket,
// any other address (none means localhost:2019) would move the API to TCP, where every local
// user can load a config of their own (issue 15 §6), and out of Unshelver's reach.
std::string admin_option_problem(std::string_view body, const core::CaddyAdminEndpoint& endpoint) {
  const std::vector<std::string> addresses = core::caddyfile_admin_addresses(body);
  if (std::find(addresses.begin(), addresses.end(), "off") != addresses.end()) {
    return "sets `admin off`: Caddy could not be reloaded live afterwards. Set `admin " + endpoint.listen +
           "` in its global options instead";
  }
  if (!endpoint.is_unix_socket()) return "";
  for (const std::string& address : addresses) {
    if (address != endpoint.listen) {
      return (address.empty() ? std::string("sets `admin` without an address")
                              : "sets `admin " + address + "`") +
             ", but caddy.admin is " + endpoint.listen +
             ": Caddy would move its admin API there, out of Unshelver's reach. Set `admin " +
             endpoint.listen + "` in its global options";
    }
  }
  if (addresses.empty()) {
    return "has no `admin " + endpoint.listen +
           "` in its global options: Caddy would move its admin API to localhost:2019, open to "
           "every local user and out of Unshelver's reach. Add it";
  }
  return "";
}

std::string shorten(std::string text) {
  if (text.size() > kMaxErrorChars) {
    text.resize(kMaxErrorChars);
    text += "…";
  }
  // Keep log lines and status texts on one line.
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

// Caddy's message from an error answer: the "error" member of the JSON body (caddy-facts §5e), or
// the body itself when it is something else. Never throws, whatever the body holds.
std::string caddy_error_message(const io::ClientResponse& response) {
  json document = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (document.is_object()) {
    auto it = document.find("error");
    if (it != document.end() && it->is_string()) return shorten(it->get<std::string>());
  }
  if (response.body.empty()) return "no error message";
  return shorten(response.body);
}

std::map<std::string, std::string> modes_of(const core::CaddyRenderInput& input) {
  std::map<std::string, std::string> modes;
  for (const auto& backend : input.backends) {
    // The renderer never proxies to an unknown upstream (caddy_renderer.h), so neither do we say so.
    modes[backend.name] = backend.gate                                 ? "gate"
                          : backend.ready && !backend.upstream.empty() ? "backend"
                                                                       : "unshelver";
  }
  return modes;
}

std::string format_ms(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

}  // namespace

struct CaddyRouter::Impl {
  // A rendered text and what it means.
  struct Rendered {
    std::string text;
    std::string modes;                            // describe_modes()
    std::map<std::string, std::string> mode_map;  // CaddyRouterStatus::modes
  };
  // One load: the rendered text written to disk and the body POSTed (the same text in the full
  // integration; the user's Caddyfile, which imports the text, in the snippet integration).
  struct Attempt {
    Rendered rendered;
    std::string body;
    bool must_revalidate = false;
    bool repair = false;
  };

  Impl(uv_loop_t* loop, io::HttpClient& client, const core::CaddySettings& settings,
       core::Template caddy_template, EventCallback on_event)
      : client_(client),
        settings_(settings),
        template_(std::move(caddy_template)),
        on_event_(std::move(on_event)),
        admin_(without_trailing_slashes(settings.admin)),
        endpoint_(endpoint_of(settings.admin)),
        snippet_(settings.integration == core::CaddyIntegration::kSnippet),
        retry_timer_(loop),
        check_timer_(loop),
        drift_timer_(loop),
        update_timer_(loop),
        random_(std::random_device{}()),
        log_(spdlog::default_logger()->clone("caddy")) {
    status_.admin = admin_;
    status_.integration = snippet_ ? "snippet" : "full";
  }

  void set_hold_loads(std::function<bool()> hold_loads, bool first_load_too) {
    hold_loads_ = std::move(hold_loads);
    hold_first_load_ = first_load_too;
  }
  void poke() {
    if (deferred_) pump();
  }

  void update_soon(InputSource source) {
    if (closed_) return;
    update_source_ = std::move(source);
    if (update_timer_.active()) return;
    update_timer_.start(std::chrono::milliseconds(0), [this] {
      const InputSource source = std::move(update_source_);
      update_source_ = nullptr;
      if (!source) return;
      if (std::optional<core::CaddyRenderInput> input = source()) update(*input);
    });
  }

  // --- update ------------------------------------------------------------------------------------

  void update(const core::CaddyRenderInput& input) {
    if (closed_) return;
    auto text = core::render_caddy(template_, input);
    if (!text) {
      // A broken template or a value the renderer refuses: nothing goes to Caddy, which keeps
      // its config; the next update renders again (the input may have changed).
      const std::string message = "cannot render the Caddyfile template: " + shorten(text.error().message);
      log_->error("{}; Caddy keeps its current routing", message);
      status_.loads_failed++;
      if (!render_failed_) error_before_render_ = status_.last_error;
      render_failed_ = true;
      status_.last_error = message;
      status_.last_error_at = now();
      emit("caddy_load_failed", message);
      return;
    }
    if (render_failed_) {
      // The template renders again: the error shown is the one from before (if a load had failed
      // then, its retry is still due).
      render_failed_ = false;
      status_.last_error = std::move(error_before_render_);
      error_before_render_.clear();
    }
    Rendered rendered{std::move(*text), core::describe_modes(input), modes_of(input)};
    if (wanted_ && wanted_->text == rendered.text) return;  // Nothing new (the common case).
    wanted_ = std::move(rendered);
    pump();
  }

  // Starts a load when one is due and none is in flight. Idempotent: every event that may make a
  // load due (an update, a finished load, a retry timer, a detected drift) calls it.
  void pump() {
    if (closed_ || !wanted_) return;
    const bool due = !loaded_ || wanted_->text != loaded_->rendered.text || reload_needed_;
    status_.pending_modes = due ? wanted_->modes : std::string();
    if (load_id_) return;  // Single flight: the load's completion calls pump() again.
    if (!due) {
      // What Caddy runs is what we want; a back-off for some other text is moot now.
      stop_back_off();
      return;
    }
    if (backing_off_ && wanted_->text == failed_text_) return;  // The retry timer will come.
    // A reload while the gate holds requests would make them fail once released: Caddy 2.6.2
    // lets a request finish on the config it began on, but that config's proxy handlers are
    // cancelled by the reload, so a held request let through afterwards gets no answer at all
    // (test_gate). The first load is not deferred: before it, Caddy sends nothing to the gate,
    // unless Unshelver reloaded its configuration (hold_first_load_).
    if ((loaded_ || hold_first_load_) && hold_loads_ && hold_loads_()) {
      if (!deferred_) log_->info("reload of Caddy deferred while requests are held at the gate");
      deferred_ = true;
      return;
    }
    deferred_ = false;
    stop_back_off();
    start_load();
  }

  void start_load() {
    Attempt attempt;
    attempt.rendered = *wanted_;
    attempt.must_revalidate = must_revalidate_;
    // Only a reload of the loaded text is a repair; a new text that is due repairs a drift too,
    // but is reported as the load it is.
    attempt.repair = repair_pending_ && loaded_ && attempt.rendered.text == loaded_->rendered.text;
    // A drift check in flight would compare against the text being replaced.
    cancel_check();

    // Write first, so that a Caddy restart comes up in the current mode (and, for the snippet,
    // because Caddy reads the imported file while adapting the POSTed Caddyfile).
    const std::string& path = snippet_ ? settings_.snippet : settings_.caddyfile;
    if (Status written = io::write_file_atomically(path, attempt.rendered.text, kCaddyfileMode,
                                                   io::SymlinkTarget::kFollow);
        !written) {
      fail(attempt,
           "cannot write the " + std::string(snippet_ ? "snippet" : "Caddyfile") + ": " +
               written.error().message,
           /*rejected=*/false);
      return;
    }
    if (snippet_) {
      // The user's Caddyfile is read each time: the user may have edited it since the last load.
      auto body = io::read_file(settings_.caddyfile);
      if (!body) {
        fail(attempt, "cannot read the Caddyfile that imports the snippet: " + body.error().message,
             /*rejected=*/false);
        return;
      }
      attempt.body = std::move(*body);
      if (attempt.body.find(settings_.snippet) == std::string::npos && !warned_no_import_) {
        warned_no_import_ = true;
        log_->warn(
            "{} does not mention {}: without `import {}` at the top level of that file (outside any site "
            "block), the snippet has no effect",
            settings_.caddyfile, settings_.snippet, settings_.snippet);
      }
    } else {
      attempt.body = attempt.rendered.text;
    }
    // A custom template or the user's own Caddyfile could say the wrong `admin`.
    if (std::string problem = admin_option_problem(attempt.body, endpoint_); !problem.empty()) {
      fail(attempt, (snippet_ ? settings_.caddyfile : std::string("the Caddy template")) + " " + problem,
           /*rejected=*/true);
      return;
    }

    io::ClientRequest request = admin_request("POST", "/load");
    request.headers.emplace_back("Content-Type", "text/caddyfile");
    // Caddy skips a config identical to the running one (caddy-facts §5a); this header, which
    // `caddy reload --force` sends, makes it reload anyway.
    if (attempt.must_revalidate) request.headers.emplace_back("Cache-Control", "must-revalidate");
    request.body = attempt.body;
    log_->debug("loading {} ({} bytes){}", attempt.rendered.modes, attempt.body.size(),
                attempt.must_revalidate ? ", forced" : "");
    auto shared = std::make_shared<Attempt>(std::move(attempt));
    load_id_ = client_.send(std::move(request), [this, shared](const io::ClientResponse& response) {
      on_load_done(std::move(*shared), response);
    });
  }

  void on_load_done(Attempt attempt, const io::ClientResponse& response) {
    load_id_.reset();
    if (closed_) return;
    if (response.is_2xx()) {
      succeed(std::move(attempt), response.elapsed);
    } else if (response.transport_ok()) {
      fail(attempt,
           "Caddy rejected the config (HTTP " + std::to_string(response.status) +
               "), and keeps running the previous one: " + caddy_error_message(response),
           /*rejected=*/true);
    } else if (endpoint_.is_unix_socket()) {
      fail(attempt,
           "Caddy's admin API at " + admin_ + " does not answer (" + shorten(response.error) +
               "): is Caddy running, did it start from a Caddyfile with `admin " + endpoint_.listen +
               "` (else its admin API is on localhost:2019), and may Unshelver's user write the "
               "socket (its group)? See README \"Caddy's admin API on a Unix socket\"",
           /*rejected=*/false);
    } else {
      fail(attempt,
           "Caddy's admin API at " + admin_ + " does not answer (" + shorten(response.error) +
               "): is Caddy running, and is its admin endpoint enabled? With `admin off` "
               "Unshelver cannot switch routes live; see README",
           /*rejected=*/false);
    }
  }

  void succeed(Attempt attempt, std::chrono::milliseconds elapsed) {
    const bool new_text = !loaded_ || loaded_->rendered.text != attempt.rendered.text;
    status_.loaded_modes = attempt.rendered.modes;
    status_.loaded_at = now();
    status_.modes = attempt.rendered.mode_map;
    status_.loads_ok++;
    // A render error that happened while this load was in flight still stands.
    if (render_failed_) {
      error_before_render_.clear();
    } else {
      status_.last_error.clear();
    }
    failures_ = 0;
    failed_text_.clear();
    reload_needed_ = false;
    must_revalidate_ = false;
    repair_pending_ = false;
    if (new_text) drift_check_off_ = false;
    just_repaired_ = attempt.repair;
    if (attempt.repair) status_.drift_repairs++;
    loaded_ = std::move(attempt);
    stop_back_off();

    const Rendered& rendered = loaded_->rendered;
    if (loaded_->repair) {
      log_->warn("loaded {} again after a drift ({})", rendered.modes, format_ms(elapsed));
    } else {
      log_->info("loaded {} ({})", rendered.modes, format_ms(elapsed));
    }
    check_timer_.start(kPostLoadCheckDelay, [this] { check_drift(); });
    const std::string kind = loaded_->repair ? "caddy_drift_repaired" : "caddy_loaded";
    const std::string detail =
        loaded_->repair
            ? "Caddy was running a config that Unshelver did not load; loaded " + rendered.modes + " again"
            : rendered.modes;
    // The event may call update(); pump() afterwards sees whatever it wanted.
    emit(kind, detail);
    pump();
  }

  // `rejected`: Caddy answered (so it keeps its previous config); otherwise it may not have seen
  // the attempt at all (admin API down, or the file could not be written).
  void fail(const Attempt& attempt, const std::string& message, bool rejected) {
    status_.loads_failed++;
    status_.last_error = message;
    status_.last_error_at = now();
    render_failed_ = false;
    failures_++;
    failed_text_ = attempt.rendered.text;
    if (rejected) {
      // Caddy runs the previous config (caddy-facts §5e); put the previous text back on disk, so
      // that a restart of Caddy comes up with the config that works rather than failing to start.
      restore_loaded_file();
    } else {
      // Caddy may be restarting from the file that was just written, or from its autosave; what it
      // runs is unknown now, so the next load goes out even if the text equals the loaded one.
      reload_needed_ = true;
    }

    // Exponential back-off with jitter (so that several Unshelvers, or a restart loop, do not
    // retry in step), never above retry_max.
    const core::BackoffPolicy policy{kFirstRetryDelay, std::max(settings_.retry_max, core::Millis{1}),
                                     kRetryJitter};
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const auto delay = std::max(core::Millis{1}, core::backoff_delay(policy, failures_, unit(random_)));
    backing_off_ = true;
    status_.next_retry_at = now() + delay;
    status_.pending_modes = wanted_ ? wanted_->modes : attempt.rendered.modes;
    retry_timer_.start(delay, [this] {
      backing_off_ = false;
      status_.next_retry_at.reset();
      pump();
    });
    if (rejected) {
      log_->error("{} (attempt {}, next in {})", message, failures_, format_ms(delay));
    } else {
      log_->warn("{} (attempt {}, next in {})", message, failures_, format_ms(delay));
    }
    emit("caddy_load_failed", message);
    // An update that arrived during the failed load may want a different text: try that now.
    pump();
  }

  // A request to the admin API. Over a Unix socket Caddy allows only an empty Host header
  // (config/caddy_admin.h); curl would send "localhost".
  io::ClientRequest admin_request(std::string method, std::string_view path) const {
    io::ClientRequest request;
    request.method = std::move(method);
    request.url = endpoint_.base_url + std::string(path);
    if (endpoint_.is_unix_socket()) {
      request.unix_socket = endpoint_.unix_socket;
      request.headers.emplace_back("Host", "");
    }
    request.timeout = kRequestTimeout;
    request.connect_timeout = kConnectTimeout;
    return request;
  }

  void restore_loaded_file() {
    if (!loaded_) return;
    const std::string& path = snippet_ ? settings_.snippet : settings_.caddyfile;
    if (Status restored = io::write_file_atomically(path, loaded_->rendered.text, kCaddyfileMode,
                                                    io::SymlinkTarget::kFollow);
        !restored) {
      log_->error("cannot put the running config back into {}: {}", path, restored.error().message);
    }
  }

  void stop_back_off() {
    backing_off_ = false;
    retry_timer_.stop();
    status_.next_retry_at.reset();
  }

  // --- drift -------------------------------------------------------------------------------------

  void check_drift() {
    if (closed_ || load_id_ || check_id_ || !loaded_ || drift_check_off_) return;
    // A load is due anyway (or backing off): its own check follows it.
    if (reload_needed_ || (wanted_ && wanted_->text != loaded_->rendered.text)) return;
    const std::string key = loaded_->rendered.text + '\0' + loaded_->body;
    if (adapted_ && adapted_key_ == key) {
      fetch_running();
      return;
    }
    io::ClientRequest request = admin_request("POST", "/adapt");
    request.headers.emplace_back("Content-Type", "text/caddyfile");
    request.body = loaded_->body;
    check_id_ = client_.send(std::move(request), [this, key](const io::ClientResponse& response) {
      check_id_.reset();
      if (closed_) return;
      if (!response.is_2xx()) {
        check_failed("POST /adapt", response);
        return;
      }
      json document = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
      if (!document.is_object() || !document.contains("result")) {
        check_failed_with("POST /adapt answered without a \"result\"");
        return;
      }
      adapted_ = std::move(document["result"]);
      adapted_key_ = key;
      fetch_running();
    });
  }

  void fetch_running() {
    io::ClientRequest request = admin_request("GET", "/config/");
    check_id_ = client_.send(std::move(request), [this](const io::ClientResponse& response) {
      check_id_.reset();
      if (closed_) return;
      if (!response.is_2xx()) {
        check_failed("GET /config/", response);
        return;
      }
      json running = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
      if (running.is_discarded()) {
        check_failed_with("GET /config/ answered with something that is not JSON");
        return;
      }
      compare(running);
    });
  }

  void compare(const json& running) {
    if (check_failing_) {
      check_failing_ = false;
      log_->info("drift check: Caddy's admin API answers again");
    }
    if (adapted_ && running == *adapted_) {
      just_repaired_ = false;
      return;
    }
    if (just_repaired_) {
      // The config still differs right after we forced our own text in: the two forms are not
      // comparable here (a Caddy that adapts differently from how it loads), and repairing again
      // would reload Caddy, and drop its idle connections, forever. Stop until the text changes.
      just_repaired_ = false;
      drift_check_off_ = true;
      log_->error(
          "drift check: Caddy's running config still differs from Unshelver's right after "
          "a forced reload; drift repair is off until the routing changes");
      return;
    }
    log_->warn(
        "drift: Caddy runs a config that Unshelver did not load (someone used the admin "
        "API or `caddy reload`); loading {} again",
        loaded_->rendered.modes);
    reload_needed_ = true;
    must_revalidate_ = true;
    repair_pending_ = true;
    pump();
  }

  void check_failed(const std::string& what, const io::ClientResponse& response) {
    check_failed_with(what + (response.transport_ok() ? " answered HTTP " + std::to_string(response.status) +
                                                            ": " + caddy_error_message(response)
                                                      : " failed: " + shorten(response.error)));
  }

  void check_failed_with(const std::string& message) {
    // Logged once per outage: the check runs every drift_check_interval.
    if (check_failing_) {
      log_->debug("drift check: {}", message);
      return;
    }
    check_failing_ = true;
    log_->warn("drift check: {}", message);
  }

  void cancel_check() {
    if (!check_id_) return;
    client_.cancel(*check_id_);
    check_id_.reset();
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  void start() {
    if (closed_ || started_) return;
    started_ = true;
    if (!endpoint_.is_unix_socket()) {
      // Issue 15 §6: said once per start, so that a production host on the default notices.
      log_->warn(
          "Caddy's admin API is on TCP ({}): any local user can load a config of their own into "
          "Caddy; in production put it on a Unix socket (README \"Caddy's admin API on a Unix socket\")",
          admin_);
    }
    if (settings_.drift_check_interval.count() > 0) {
      drift_timer_.start_repeating(settings_.drift_check_interval, [this] { check_drift(); });
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (load_id_) client_.cancel(*load_id_);
    load_id_.reset();
    cancel_check();
    retry_timer_.stop();
    check_timer_.stop();
    drift_timer_.stop();
    update_timer_.stop();
    update_source_ = nullptr;
    on_event_ = nullptr;
  }

  void emit(const std::string& kind, const std::string& detail) {
    if (!on_event_) return;
    // Copied first: the callback may call close(), which resets on_event_.
    EventCallback callback = on_event_;
    callback(kind, detail);
  }

  io::HttpClient& client_;
  core::CaddySettings settings_;
  core::Template template_;
  EventCallback on_event_;
  const std::string admin_;                  // caddy.admin, for messages and the status
  const core::CaddyAdminEndpoint endpoint_;  // where requests go
  const bool snippet_;
  CaddyRouterStatus status_;

  std::optional<Rendered> wanted_;         // the newest successfully rendered text
  std::optional<Attempt> loaded_;          // the last attempt Caddy accepted
  std::optional<io::RequestId> load_id_;   // the load in flight
  std::optional<io::RequestId> check_id_;  // the drift check's request in flight
  bool reload_needed_ = false;             // load even if wanted equals loaded (unknown or drifted)
  bool must_revalidate_ = false;           // send Cache-Control: must-revalidate with the next load
  bool repair_pending_ = false;            // the next load repairs a drift
  bool just_repaired_ = false;             // the next comparison follows a repair
  bool drift_check_off_ = false;           // repairs did not converge for the loaded text
  bool check_failing_ = false;
  bool backing_off_ = false;
  bool warned_no_import_ = false;
  bool render_failed_ = false;       // last_error is a render error ...
  std::string error_before_render_;  // ... and this was shown before it
  bool started_ = false;
  std::function<bool()> hold_loads_;  // see set_hold_loads()
  bool hold_first_load_ = false;      // Caddy may route to the gate before the first load (a reload)
  bool deferred_ = false;             // a due load waits for hold_loads_ to turn false
  bool closed_ = false;
  int failures_ = 0;             // consecutive failed loads
  std::string failed_text_;      // the text of the last failed load
  std::optional<json> adapted_;  // POST /adapt of the loaded body ...
  std::string adapted_key_;      // ... for this text and body

  io::Timer retry_timer_;
  io::Timer check_timer_;      // the check after a successful load
  io::Timer drift_timer_;      // the periodic check
  io::Timer update_timer_;     // update_soon(): the next loop turn
  InputSource update_source_;  // ... and what it updates with
  std::mt19937 random_;
  std::shared_ptr<spdlog::logger> log_;
};

CaddyRouter::CaddyRouter(uv_loop_t* loop, io::HttpClient& client, const core::CaddySettings& settings,
                         core::Template caddy_template, EventCallback on_event)
    : impl_(std::make_unique<Impl>(loop, client, settings, std::move(caddy_template), std::move(on_event))) {}

CaddyRouter::~CaddyRouter() {
  close();
}

void CaddyRouter::update(const core::CaddyRenderInput& input) {
  impl_->update(input);
}
void CaddyRouter::update_soon(InputSource source) {
  impl_->update_soon(std::move(source));
}
void CaddyRouter::hold_loads_while(std::function<bool()> busy, bool first_load_too) {
  impl_->set_hold_loads(std::move(busy), first_load_too);
}

void CaddyRouter::poke() {
  impl_->poke();
}

void CaddyRouter::start() {
  impl_->start();
}
void CaddyRouter::close() {
  impl_->close();
}
const CaddyRouterStatus& CaddyRouter::status() const {
  return impl_->status_;
}

Result<std::string> CaddyRouter::render(const core::CaddyRenderInput& input) const {
  return core::render_caddy(impl_->template_, input);
}

void CaddyRouter::write_status(nlohmann::json& document) const {
  const CaddyRouterStatus& status = this->status();
  document["caddy"] = nlohmann::json{{"manage", true},
                                     {"admin", status.admin},
                                     {"integration", status.integration},
                                     {"loaded_modes", status.loaded_modes},
                                     {"loaded_at", core::time_or_null(status.loaded_at)},
                                     {"pending_modes", status.pending_modes},
                                     {"last_error", status.last_error},
                                     {"last_error_at", core::time_or_null(status.last_error_at)},
                                     {"next_retry_at", core::time_or_null(status.next_retry_at)},
                                     {"loads_ok", status.loads_ok},
                                     {"loads_failed", status.loads_failed},
                                     {"drift_repairs", status.drift_repairs},
                                     {"modes", status.modes}};
}

void CaddyRouter::write_metrics(core::MetricsPage& page) const {
  const CaddyRouterStatus& status = this->status();
  for (auto [outcome, count] : {std::pair{"ok", status.loads_ok}, std::pair{"failed", status.loads_failed}}) {
    page.counter("unshelver_caddy_loads_total", "Configurations loaded into Caddy's admin API, by outcome.",
                 {{"outcome", outcome}}, static_cast<double>(count));
  }
  page.counter("unshelver_caddy_drift_repairs_total",
               "Times Caddy ran another configuration than Unshelver's and was set right.", {},
               static_cast<double>(status.drift_repairs));
}

}  // namespace unshelver::app
