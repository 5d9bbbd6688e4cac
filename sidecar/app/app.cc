#include "app/app.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <limits>

#include "app/signal_handover.h"
#include "app/status.h"
#include "backend/sim_provider.h"
#include "base/text.h"
#include "base/time_format.h"
#include "base/url.h"
#include "caddy/render_input.h"
#include "command/command_provider.h"
#include "config/files.h"
#include "config/reload_plan.h"
#include "exoscale/exoscale_provider.h"
#include "openstack/nova_provider.h"
#include "schedule/windows.h"
#include "schedule/zone_files.h"
#include "uv/process.h"
#include "uv/random.h"

namespace unshelver::app {

namespace {
using nlohmann::json;
using namespace std::chrono_literals;

// How long a stop waits for the answer to a webhook delivery in flight: a receiver that took the
// event gets its cursor moved rather than the same event again after the restart. Short beside
// systemd's TimeoutStopSec (90 s by default) and a delivery's own timeout_seconds.
constexpr std::chrono::milliseconds kWebhookStopGrace = 2s;

// The API client settings of an Exoscale zone: its endpoint and the retries of
// app.api_retry_attempts, as for OpenStack.
providers::ExoscaleClientSettings exoscale_client_settings(const core::Config& config,
                                                           std::string_view zone) {
  providers::ExoscaleClientSettings settings;
  settings.api_url = core::exoscale::api_url_for(config.exoscale.api_url, zone);
  settings.timeout = config.exoscale.api_timeout;
  settings.attempts = std::max(1, config.app.api_retry_attempts);
  return settings;
}

providers::ExoscaleCredentials exoscale_credentials(const core::Config& config) {
  return {config.exoscale.api_key, config.exoscale.api_secret};
}

// The API client of a backend on Exoscale: its zone's endpoint and the shared credentials.
std::unique_ptr<providers::ExoscaleClient> make_exoscale_client(uv_loop_t* loop, io::HttpClient& client,
                                                                const core::Config& config,
                                                                const core::BackendConfig& backend) {
  auto settings = exoscale_client_settings(config, backend.exoscale.zone);
  spdlog::info("[{}] Exoscale instance in zone {} via {}", backend.name, backend.exoscale.zone,
               settings.api_url);
  return std::make_unique<providers::ExoscaleClient>(loop, client, exoscale_credentials(config),
                                                     std::move(settings));
}

// The listing shared by the Exoscale backends of one zone (one endpoint, the same credentials),
// with a client of its own, reused for half the settled observation period as Nova's.
std::unique_ptr<providers::ExoscaleInstanceListing> make_exoscale_listing(uv_loop_t* loop,
                                                                          io::HttpClient& client,
                                                                          const core::Config& config,
                                                                          std::string_view zone) {
  providers::InstanceListingSettings listing;
  listing.max_age = config.app.settled_poll_interval / 2;
  auto settings = exoscale_client_settings(config, zone);
  settings.max_response_bytes = listing.max_response_bytes;
  return std::make_unique<providers::ExoscaleInstanceListing>(
      loop, std::make_unique<providers::ExoscaleClient>(loop, client, exoscale_credentials(config), settings),
      listing);
}
}  // namespace

void release(Handover& handover) {
  if (handover.listening_fd >= 0) ::close(std::exchange(handover.listening_fd, -1));
  if (handover.proxy_socket_fd >= 0) {
    ::close(std::exchange(handover.proxy_socket_fd, -1));
    if (::unlink(handover.proxy_socket_path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("cannot remove {}: {}", handover.proxy_socket_path, core::errno_text());
    }
  }
}

App::App(core::Config config, ConfigSource reread, std::optional<Handover> handover)
    : config_(std::move(config)), reread_(std::move(reread)), handed_over_(std::move(handover)) {
  if (handed_over_) {
    started_at_ = handed_over_->started_at;
    // Pages and long polls that wait for a newer revision must see one after the reload.
    revision_ = handed_over_->revision + 1;
    session_key_ = handed_over_->session_key;
    reloads_applied_ = handed_over_->reloads_applied;
    reloads_refused_ = handed_over_->reloads_refused;
  }
}

App::~App() {
  if (loop_.open()) finish();
  // A socket taken over but never adopted (start-up failed before listening) is closed here.
  if (handed_over_) release(*handed_over_);
  if (reload_) release(reload_->handover);
}

std::optional<Reload> App::take_reload() {
  std::optional<Reload> reload = std::move(reload_);
  reload_.reset();
  return reload;
}

int App::run() {
  if (int rc = loop_.init_error(); rc != 0) {
    spdlog::critical("cannot initialise the event loop: {}", uv_strerror(rc));
    return 1;
  }
  int code = start();
  if (code != 0) {
    begin_shutdown("start-up failed");
    loop_.run();
    finish();
    return code;
  }
  loop_.run();
  int closed = finish();
  return exit_code_ != 0 ? exit_code_ : closed;
}

int App::start() {
  // The file checks that `check-config` also makes (config/files.h).
  if (Status files = check_files(config_); !files) {
    spdlog::critical("{}", files.error().message);
    return 2;
  }
  store_.emplace(config_.state_dir);
  if (Status opened = store_->open(); !opened) {
    spdlog::critical("{}", opened.error().message);
    return 2;
  }
  start_persisting();
  auto pages = web::Pages::load(config_.templates_dir);
  if (!pages) {
    spdlog::critical("templates: {}", pages.error().message);
    return 2;
  }
  pages_.emplace(std::move(pages.value()));
  client_ = std::make_unique<io::HttpClient>(loop_.get());

  backends_.reserve(config_.backends.size());
  ticks_ = std::make_shared<io::TickTimers>(loop_.get());
  for (const core::BackendConfig& backend : config_.backends) {
    std::unique_ptr<providers::CloudProvider> provider = make_provider(backend);
    if (!provider) return 2;
    auto settings = core::ReconcilerSettings::from_config(backend, config_.app);
    const std::size_t index = backends_.size();
    backends_.emplace_back().driver = std::make_unique<BackendDriver>(
        loop_.get(), backend, settings, std::move(provider), *client_,
        [this, index](const std::vector<core::Transition>& transitions,
                      const std::vector<core::Notice>& notices, BackendDriver::Change change) {
          on_backend_change(backends_[index], transitions, notices, change);
          notify_systemd_when_observed();
        },
        core::ClockReading::now, ticks_);
    index_by_name_.emplace(backend.name, index);
  }
  if (int code = start_events(); code != 0) return code;
  start_web();

  server_ = std::make_unique<io::HttpServer>(
      loop_.get(), config_.http, [this](const io::HttpRequest& request, const io::Responder& responder) {
        web_->handle(request, responder);
      });
  if (int code = start_listening(); code != 0) return code;

  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
    auto signal = std::make_unique<io::Signal>(loop_.get());
    if (Status started = signal->start(signal_number, [this](int number) { on_signal(number); }); !started) {
      spdlog::critical("{}", started.error().message);
      return 1;
    }
    signals_.push_back(std::move(signal));
  }
  // Signals that came while the previous App handed over (none at first start).
  replay_parked_signals();
  if (handed_over_ && handed_over_->reload_again && std::raise(SIGHUP) != 0) {
    spdlog::warn("cannot read the configuration again: raise(SIGHUP) failed");
  }
  // A client that disconnects mid-write must not kill the daemon. Nor may a file size limit
  // (RLIMIT_FSIZE): past it, write(2) fails with EFBIG, which the writers report like a full disk.
  for (const int ignored : {SIGPIPE, SIGXFSZ}) {
    if (std::signal(ignored, SIG_IGN) == SIG_ERR) {
      spdlog::warn("cannot ignore signal {}: {}", ignored, core::errno_text());
    }
  }

  if (int code = start_activity(); code != 0) return code;
  if (int code = start_routing(); code != 0) return code;
  start_notifications();

  if (config_.ha.enabled()) {
    start_ha();
  } else {
    for (Backend& backend : backends_) {
      const auto& loaded = store_->loaded();
      auto found = loaded.find(backend.config().name);
      backend.driver->start(found == loaded.end() ? std::nullopt : std::optional(found->second));
    }
  }
  if (int code = start_keep_warm(); code != 0) return code;
  // What each backend's view reads from the subsystems as they start, so that the first change
  // one of them reports is attributed to the backends it concerns rather than to every backend.
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    read_inputs(i, kActivityChanged | kRoutingChanged | kGateChanged | kHaChanged, backends_[i].inputs);
  }
  spdlog::info("listening on http://{}:{} with {} backend(s); state in {}", server_->host(), server_->port(),
               backends_.size(), store_->path());
  if (handed_over_) {
    spdlog::info("configuration reloaded: {}", handed_over_->summary);
    record_event("config_reloaded", "signal", handed_over_->summary);
  }
  systemd_ = std::make_unique<io::SystemdNotifier>(loop_.get());
  systemd_->start_watchdog();
  // Well within systemd's default TimeoutStartSec= of 90 s.
  constexpr std::chrono::seconds kMostReadyWait{60};
  systemd_->ready_at_the_latest(kMostReadyWait, [this] {
    return fmt::format("listening on {}; {} of {} backend(s) not observed yet (is the cloud reachable?)",
                       listen_address(), backends_.size() - first_unobserved_, backends_.size());
  });
  notify_systemd_when_observed();
  return 0;
}

void App::notify_systemd_when_observed() {
  if (!systemd_ || systemd_->ready_sent() || shutting_down_) return;
  // A backend never returns to kUnknown, so each is looked at until it leaves it, and only then.
  while (first_unobserved_ < backends_.size() &&
         backends_[first_unobserved_].driver->reconciler().state() != core::BackendState::kUnknown) {
    ++first_unobserved_;
  }
  if (first_unobserved_ < backends_.size()) return;
  systemd_->ready(fmt::format("{} backend(s) observed, listening on {}", backends_.size(), listen_address()));
}

int App::start_listening() {
  if (handed_over_ && handed_over_->listening_fd >= 0) {
    // After a reload: the socket the App before listened on, with its queued connections.
    const int fd = std::exchange(handed_over_->listening_fd, -1);
    if (Status adopted = server_->adopt(fd, handed_over_->listen_host); !adopted) {
      spdlog::critical("{}", adopted.error().message);
      return 1;
    }
    return listen_on_proxy_socket();
  }
  // "host:port", "[v6]:port" or ":port" (--listen), where a missing host means 127.0.0.1.
  const Result<core::Authority> address = core::parse_authority(config_.listen);
  if (!address || !address->port) {
    spdlog::critical("listen: {} in '{}'", address ? "missing port" : address.error().message,
                     config_.listen);
    return 2;
  }
  const std::string host = address->host.empty() ? "127.0.0.1" : address->host;
  if (Status listening = server_->listen(host, *address->port); !listening) {
    spdlog::critical("cannot listen on {}: {}", config_.listen, listening.error().message);
    return 1;
  }
  return listen_on_proxy_socket();
}

int App::listen_on_proxy_socket() {
  if (handed_over_ && handed_over_->proxy_socket_fd >= 0) {
    if (handed_over_->proxy_socket_path == config_.proxy.socket) {
      // After a reload: the same socket, with the connections Caddy queued in the meantime.
      const int fd = std::exchange(handed_over_->proxy_socket_fd, -1);
      if (Status adopted = server_->adopt_unix(fd, config_.proxy.socket); !adopted) {
        spdlog::critical("http.proxy_socket: {}", adopted.error().message);
        return 1;
      }
      return 0;
    }
    // The reload moved or removed the socket: the old one goes.
    release(*handed_over_);
  }
  if (config_.proxy.socket.empty()) return 0;
  if (Status listening = server_->listen_unix(config_.proxy.socket, 0660); !listening) {
    spdlog::critical("http.proxy_socket: {}", listening.error().message);
    return 1;
  }
  return 0;
}

void App::on_signal(int number) {
  if (number == SIGHUP) {
    reload_config();
    return;
  }
  const char* name = number == SIGINT ? "SIGINT" : "SIGTERM";
  if (reload_) {
    // A stop asked for during the handover wins: this App is already stopping gracefully, and no
    // next one is started.
    spdlog::info("{} during the reload: stopping instead", name);
    if (systemd_) systemd_->stopping(name);
    release(reload_->handover);
    reload_.reset();
    return;
  }
  begin_shutdown(name);
}

void App::reload_config() {
  if (reload_) {
    spdlog::info("SIGHUP during the reload: the configuration is read again once it is done");
    reload_->handover.reload_again = true;
    return;
  }
  if (shutting_down_) {
    spdlog::info("SIGHUP while stopping: ignored");
    return;
  }
  if (!reread_) {
    spdlog::warn("SIGHUP: this instance has no configuration to read again");
    return;
  }
  spdlog::info("SIGHUP: reading the configuration again");
  // systemd shows the unit as reloading until READY=1: from this App when the file is refused,
  // from the next one once it has observed every backend.
  if (systemd_) systemd_->reloading();
  Result<core::Config> next = reread_();
  if (!next) {
    if (systemd_) systemd_->ready("the new configuration was refused; the running one stays");
    ++reloads_refused_;
    // The status document's count; no backend's view shows it.
    ++revision_;
    spdlog::error("SIGHUP: the new configuration is refused, the running one stays:\n{}",
                  next.error().message);
    // The event says where; the log has every problem.
    const std::string& message = next.error().message;
    record_event("config_reload_refused", "signal", message.substr(0, message.find('\n')));
    return;
  }
  const core::ReloadPlan plan = core::plan_reload(config_, *next);
  if (plan.listen_changed) {
    spdlog::warn(
        "listen: {} stays in use until unshelver restarts; a reload keeps the listening socket ({} "
        "asked for)",
        plan.listen_kept, plan.listen_wanted);
  }
  Reload reload{core::apply_reload_limits(config_, std::move(*next)), Handover{}};
  Handover& handover = reload.handover;
  if (Result<int> duplicate = server_->duplicate_listener(); duplicate) {
    handover.listening_fd = *duplicate;
  } else {
    // The next App binds the address again once this one has closed it: a moment of refused
    // connections, but a reload all the same.
    spdlog::warn("{}; the socket is opened again after the reload", duplicate.error().message);
  }
  if (!config_.proxy.socket.empty()) {
    if (Result<int> duplicate = server_->duplicate_unix_listener(); duplicate) {
      handover.proxy_socket_fd = *duplicate;
      handover.proxy_socket_path = config_.proxy.socket;
    } else {
      spdlog::warn("{}; the socket is made again after the reload", duplicate.error().message);
    }
  }
  handover.listen_host = server_->host();
  handover.session_key = session_key_;
  handover.started_at = started_at_;
  handover.revision = revision_;
  handover.reloads_applied = reloads_applied_ + 1;
  handover.reloads_refused = reloads_refused_;
  handover.summary = plan.summary();
  reload_ = std::move(reload);
  begin_shutdown("SIGHUP: reloading the configuration");
}

int App::start_events() {
  // The Swift mirror authenticates like the OpenStack backends, with the same session.
  if (config_.swift_event_container && !openstack_ && start_openstack() != 0) return 2;
  // The recorder's callback marks what the status document's events section shows; a backend's
  // records may move its wake estimate (events/wake_history.h), which its view shows, and are
  // heard below, once written.
  events_ = std::make_unique<EventRecorder>(loop_.get(), config_, openstack_.get(), [this] { ++revision_; });
  events_->use_webhook_client(client_.get());
  if (Status started = events_->start(); !started) {
    spdlog::critical("{}", started.error().message);
    return 2;
  }
  web::EventStreamSettings stream_settings{
      config_.events.stream_max_clients, config_.events.stream_buffer_bytes, config_.events.stream_heartbeat};
  streams_ = std::make_unique<web::EventStreams>(loop_.get(), stream_settings, [this](std::uint64_t after) {
    return events_->recent(after, "", std::numeric_limits<std::size_t>::max());
  });
  events_->listen([this](const core::EventRecord& record) {
    if (streams_) streams_->publish(record);
    if (const std::optional<std::size_t> index = index_named(record.backend)) backend_changed(*index);
  });
  return 0;
}

void App::start_web() {
  std::string signing_key = config_.app.secret_key;
  if (signing_key.empty()) {
    // Without a configured key, sessions are signed with one that lives as long as the process
    // (reloads included): safe, but every restart logs the admins out.
    if (session_key_.empty()) session_key_ = io::random_bytes(32);
    signing_key = session_key_;
    if (!config_.app.control_token.empty()) {
      spdlog::warn("app.secret_key is not set: control sessions end whenever unshelver restarts");
    }
  }
  if (config_.app.control_token.empty()) {
    spdlog::warn(
        "no control token is configured (app.control_token, the secrets file or UNSHELVER_CONTROL_TOKEN): "
        "/control, /api/events and the CLI's status, wake and shelve are off");
  }
  access_ = std::make_unique<web::AccessControl>(config_, signing_key, config_.state_dir + "/sessions.json");
  web_ = std::make_unique<web::WebApp>(*pages_, *this, *access_, config_.app.manual_shelve_path);
  holds_ = std::make_unique<web::HoldQueue>(
      loop_.get(), [this](const std::string& name) { return web_->gate_expired(name); },
      [this] {
        subsystem_changed(kGateChanged);
        // A reload of Caddy deferred while requests were held may be due now.
        if (router_) router_->poke();
      },
      [this] { web_->retry_deferred_wakes(); });
  web_->enable_gate(*holds_, config_.backends);
}

int App::start_keep_warm() {
  auto zones = io::load_config_zones(config_);
  if (!zones) {
    spdlog::critical("{}", zones.error().message);
    return 2;
  }
  std::vector<KeepWarmScheduler::Entry> entries;
  for (Backend& backend : backends_) {
    const core::BackendConfig& config = backend.config();
    if (config.keep_warm.empty() && !config.prewarm.enabled) {
      // Holds persisted while windows or pre-warming were configured end with that configuration.
      backend.driver->release_hold(core::HoldReason::kWindow);
      backend.driver->release_hold(core::HoldReason::kPrewarm);
      continue;
    }
    core::KeepWarmSchedule windows;
    for (const std::string& text : config.keep_warm) {
      // The configuration was checked: every window parses and its zone was loaded above.
      if (auto window = core::parse_keep_warm_window(text))
        windows.add(*window, zones->at(window->time_zone));
    }
    std::optional<core::PrewarmPlanner> prewarm;
    if (config.prewarm.enabled) prewarm.emplace(config.prewarm, zones->at(config.prewarm.time_zone));
    entries.push_back({backend.driver.get(),
                       core::BackendSchedule(std::move(windows), std::move(prewarm), config.wake_lead)});
  }
  if (entries.empty()) return 0;
  constexpr std::chrono::seconds kInterval{30};
  keep_warm_ = std::make_unique<KeepWarmScheduler>(
      loop_.get(), std::move(entries), config_.state_dir + "/prewarm-budget.json",
      [this](const std::string& name) {
        return events_ ? events_->history().estimate_seconds(name) : std::nullopt;
      },
      kInterval);
  // The recorder keeps the newest records of the log: the uses learned at start.
  keep_warm_->start(events_->recent(std::nullopt, "", 100'000));
  return 0;
}

// The backend's cloud, by its kind; nullptr after a critical log line when it cannot start.
std::unique_ptr<providers::CloudProvider> App::make_provider(const core::BackendConfig& backend) {
  std::unique_ptr<providers::CloudProvider> provider;
  if (backend.provider == core::ProviderKind::kSim) {
    if (!sim_api_) sim_api_ = std::make_shared<providers::SimApi>(loop_.get());
    auto sim = std::make_unique<providers::SimProvider>(loop_.get(), backend, config_.http, config_.state_dir,
                                                        sim_api_);
    if (Status started = sim->start(); !started) {
      spdlog::critical("[{}] simulated cloud: {}", backend.name, started.error().message);
      return nullptr;
    }
    provider = std::move(sim);
  } else if (backend.provider == core::ProviderKind::kCommand) {
    auto commands =
        std::make_unique<providers::CommandProvider>(loop_.get(), backend, environment_snapshot());
    // Warnings, not errors: the program may be installed, or the variable set, by the next restart.
    for (const std::string& problem : commands->problems()) spdlog::warn("[{}] {}", backend.name, problem);
    provider = std::move(commands);
  } else {
    // A VM that is missing or ambiguous is a configuration error: say so and stop, rather
    // than guard the wrong VM or none. A cloud that cannot be reached yet is not: the
    // reconciler keeps observing and /api/status shows why.
    auto on_resolved = [this, name = backend.name](const Status& found, bool definitive) {
      if (found) return;
      if (definitive) {
        spdlog::critical("[{}] {}", name, found.error().message);
        exit_code_ = 2;
        begin_shutdown("configuration error");
      } else {
        spdlog::warn("[{}] cannot check the VM yet: {}", name, found.error().message);
      }
    };
    if (backend.provider == core::ProviderKind::kExoscale) {
      auto& listing =
          exoscale_listings_[core::exoscale::api_url_for(config_.exoscale.api_url, backend.exoscale.zone)];
      if (!listing) listing = make_exoscale_listing(loop_.get(), *client_, config_, backend.exoscale.zone);
      auto exoscale = std::make_unique<providers::ExoscaleProvider>(
          make_exoscale_client(loop_.get(), *client_, config_, backend), backend, listing.get());
      exoscale->resolve(std::move(on_resolved));
      provider = std::move(exoscale);
    } else {
      if (!openstack_ && start_openstack() != 0) return nullptr;
      auto nova = std::make_unique<providers::NovaProvider>(*openstack_, backend, nova_listing_.get());
      nova->resolve(std::move(on_resolved));
      provider = std::move(nova);
    }
  }
  return provider;
}

int App::start_openstack() {
  auto credentials = load_openstack_credentials(config_, environment_snapshot());
  if (!credentials) {
    spdlog::critical("openstack: {}", credentials.error().message);
    return 2;
  }
  providers::SessionSettings settings;
  settings.timeout = config_.openstack.api_timeout;
  settings.attempts = std::max(1, config_.app.api_retry_attempts);
  spdlog::info(
      "openstack: {} via {} ({}{})",
      credentials->method == core::openstack::AuthMethod::kPassword ? "password" : "application credential",
      credentials->auth_url, credentials->source,
      credentials->region_name.empty() ? "" : ", region " + credentials->region_name);
  openstack_ =
      std::make_unique<providers::OpenStackSession>(loop_.get(), *client_, std::move(*credentials), settings);
  providers::ServerListingSettings listing;
  listing.max_age = config_.app.settled_poll_interval / 2;
  nova_listing_ = std::make_unique<providers::NovaServerListing>(*openstack_, listing);
  return 0;
}

void App::begin_shutdown(const char* why) {
  if (shutting_down_) {
    spdlog::warn("{} again during shutdown: stopping at once", why);
    exit_code_ = 1;
    loop_.stop();
    return;
  }
  shutting_down_ = true;
  spdlog::info("{}: shutting down", why);
  if (systemd_ && !reload_) systemd_->stopping(why);
  if (keep_warm_) keep_warm_->close();
  for (Backend& backend : backends_) backend.driver->shutdown();
  // The HTTP client (below) closes only after the webhook deliveries in flight were answered.
  auto client_users = std::make_shared<int>(2);
  auto close_client = [this, client_users] {
    if (--*client_users == 0 && client_) client_->close();
  };
  if (events_) {
    events_->close_after_deliveries(kWebhookStopGrace, close_client);
  } else {
    close_client();
  }
  if (streams_) streams_->end_all();
  if (notifier_) notifier_->close();
  if (activity_) activity_->close();
  // Held requests are dropped unanswered: Caddy asks the next Unshelver (lb_try_duration).
  if (holds_) holds_->close();
  if (router_) router_->close();
  if (activity_ && activity_->dirty() && store_) persist();
  if (nova_listing_) nova_listing_->close();
  for (auto& [url, listing] : exoscale_listings_) listing->close();
  if (openstack_) openstack_->close();
  // With ha, the lease is given up first (through the client), so that another controller takes
  // over this one's backends at once.
  if (ha_) {
    ha_->close(close_client);
  } else {
    close_client();
  }
  auto close_signals = [this] {
    if (!reload_) {
      signals_.clear();
      return;
    }
    // The process lives on after a reload: its signals must not fall back to their default
    // action (the end of the process) until the next App handles them.
    close_and_park_signals({SIGINT, SIGTERM, SIGHUP}, [this] { signals_.clear(); });
  };
  if (server_) {
    server_->shutdown(close_signals);
  } else {
    close_signals();
  }
}

int App::finish() {
  if (!loop_.open()) return 0;
  // Everything that owns handles is destroyed here, after uv_run has returned, so that no object
  // is destroyed inside one of its own callbacks; their close callbacks run when the loop closes.
  signals_.clear();
  systemd_.reset();
  notifier_.reset();
  activity_.reset();
  router_.reset();
  keep_warm_.reset();
  // Before the drivers they fence, and before the client and the recorder they use; the
  // coordinator first, since its pending answers lead into the fence.
  ha_.reset();
  fence_.reset();
  backends_.clear();
  ticks_.reset();
  holds_.reset();
  if (events_ && events_->unwritten() > 0) {
    spdlog::error("events: {} event(s) could not be written to {} before exit", events_->unwritten(),
                  config_.event_log_path());
  }
  streams_.reset();
  events_.reset();
  nova_listing_.reset();
  exoscale_listings_.clear();
  sim_api_.reset();
  openstack_.reset();
  web_.reset();
  access_.reset();
  server_.reset();
  client_.reset();
  if (int closed = loop_.close(); closed != 0) {
    spdlog::error("uv_loop_close: {}", uv_strerror(closed));
    return 1;
  }
  spdlog::info("stopped cleanly");
  return 0;
}

void App::on_backend_change(Backend& backend, const std::vector<core::Transition>& transitions,
                            const std::vector<core::Notice>& notices, BackendDriver::Change change) {
  if (change == BackendDriver::Change::kSeen) {
    // Only the pages show it: they read the backend again at their next reading.
    backend_changed(index_of(backend));
    return;
  }
  const bool persist_now = change == BackendDriver::Change::kPersist;
  for (const core::Transition& transition : transitions) {
    events_->record_transition(backend.config(), transition);
    backend.operations.observe(transition);
    ++backend.transitions;
    if (keep_warm_) {
      core::EventRecord use;
      use.at = transition.at;
      use.backend = backend.config().name;
      use.action = core::action_for(transition);
      use.actor = transition.actor;
      keep_warm_->on_event(use);
    }
  }
  for (const core::Notice& notice : notices) events_->record_notice(backend.config(), notice);
  if (ha_ && persist_now) ha_->publish(index_of(backend));
  backend_changed(index_of(backend));
  if (activity_) activity_->refresh_upstream(index_of(backend));
  update_routing();
  // Held requests go through the moment their backend is ready: nothing waits for a timer.
  if (web_) web_->backend_changed(backend.config().name);
  if (persist_now) persist();
}

void App::persist() {
  if (activity_) activity_->saved();
  if (ha_) ha_->publish_leading();
  // Coalesced (backend/state_store.h): the state is read when the write starts.
  store_->mark_dirty();
}

void App::start_persisting() {
  store_->save_in_background(
      loop_.get(),
      [this] {
        std::map<std::string, core::PersistedBackend> backends;
        for (const Backend& backend : backends_)
          backends[backend.config().name] = backend.driver->reconciler().persisted();
        return backends;
      },
      [](const Status& saved) {
        // Keep running: the VM must still be managed. The next change tries again.
        spdlog::error("cannot persist state: {}", saved.error().message);
      });
}

int App::start_activity() {
  std::vector<BackendDriver*> drivers;
  for (Backend& backend : backends_) drivers.push_back(backend.driver.get());
  activity_ = std::make_unique<activity::ActivityMonitor>(
      loop_.get(), config_, std::move(drivers), [this] { subsystem_changed(kActivityChanged); },
      [this] { persist(); });
  if (Status started = activity_->start(); !started) {
    spdlog::critical("{}", started.error().message);
    return 2;
  }
  return 0;
}

std::string App::listen_address() const {
  const std::string& host = server_->host();
  const std::string bracketed = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return bracketed + ":" + std::to_string(server_->port());
}

int App::start_routing() {
  if (!config_.caddy.manage) return 0;
  auto caddy_template = load_caddy_template(config_.caddy);
  if (!caddy_template) {
    spdlog::critical("caddy template: {}", caddy_template.error().message);
    return 2;
  }
  router_ =
      std::make_unique<CaddyRouter>(loop_.get(), *client_, config_.caddy, std::move(caddy_template.value()),
                                    [this](const std::string& kind, const std::string& detail) {
                                      subsystem_changed(kRoutingChanged);
                                      spdlog::debug("caddy: {}: {}", kind, detail);
                                      // Loads that follow transitions are not events of their own.
                                      if (kind != "caddy_loaded") record_event(kind, "reconciler", detail);
                                    });
  // A template that cannot render even the simplest state is a start-up error, before Caddy is
  // touched at all.
  if (auto rendered = router_->render(make_caddy_input(config_, {}, listen_address())); !rendered) {
    spdlog::critical("caddy template does not render: {}", rendered.error().message);
    return 2;
  }
  // After a reload Caddy still runs the config loaded before, whose gate may hold requests here
  // already. (An unchanged text is no reload for Caddy at all: it skips an identical load.)
  router_->hold_loads_while([this] { return holds_ && holds_->any_held(); }, handed_over_.has_value());
  router_->start();
  spdlog::info("managing Caddy's routing through {} ({} integration)", config_.caddy.admin,
               config_.caddy.integration == core::CaddyIntegration::kFull ? "full" : "snippet");
  return 0;
}

void App::start_notifications() {
  NotifierSettings settings = notifier_settings(config_, environment_snapshot());
  if (settings.to.empty()) return;
  settings.secrets.push_back(session_key_);
  // The status document's notifier section; no backend's view shows it.
  notifier_ = std::make_unique<MailNotifier>(loop_.get(), std::move(settings), [this] { ++revision_; });
  notifier_->watch("Swift", [this] {
    ServiceHealth health;
    const providers::SwiftMirror* mirror = events_ ? events_->mirror() : nullptr;
    if (mirror == nullptr) return health;
    health.watched = true;
    health.failing = mirror->stats().failing;
    health.error = mirror->stats().last_error;
    return health;
  });
  notifier_->watch("Caddy", [this] {
    ServiceHealth health;
    if (!router_) return health;
    health.watched = true;
    health.error = router_->status().last_error;
    health.failing = !health.error.empty();
    return health;
  });
  events_->listen([this](const core::EventRecord& record) {
    if (notifier_) notifier_->on_record(record);
  });
  notifier_->start();
}

void App::update_routing() {
  if (!router_ || shutting_down_) return;
  // Once per loop turn, however many backends changed in it (caddy/router.h).
  router_->update_soon([this]() -> std::optional<core::CaddyRenderInput> {
    std::vector<BackendRoute> routes;
    for (const Backend& backend : backends_) {
      const BackendDriver* driver = backend.driver.get();
      // Observe before acting: the first load waits until the cloud has been asked about every
      // backend, so that Caddy is set to the truth, not to a guess.
      if (driver->reconciler().state() == core::BackendState::kUnknown) return std::nullopt;
      routes.push_back(
          BackendRoute{driver->upstream(), driver->reconciler().state() == core::BackendState::kReady});
    }
    return make_caddy_input(config_, routes, listen_address());
  });
}

void App::start_ha() {
  std::string instance = config_.ha.instance;
  if (instance.empty()) instance = io::host_name();
  std::vector<BackendDriver*> drivers;
  for (Backend& backend : backends_) drivers.push_back(backend.driver.get());
  ha_ = std::make_unique<ha::Coordinator>(
      loop_.get(), *client_, config_.ha, instance, drivers, store_->loaded(),
      [this](std::size_t index, const core::ha::Wish& wish) {
        const std::string& name = backends_[index].config().name;
        switch (wish.kind) {
          case core::ha::Wish::Kind::kWake:
          case core::ha::Wish::Kind::kShelve:
            request_desired(name, wish.kind == core::ha::Wish::Kind::kWake, wish.actor, wish.reason);
            break;
          case core::ha::Wish::Kind::kPin:
          case core::ha::Wish::Kind::kUnpin:
            pin(name, wish.kind == core::ha::Wish::Kind::kPin, wish.actor, wish.reason);
            break;
        }
      },
      [this, instance](std::size_t index, bool leading, const std::string& why) {
        if (!events_ || shutting_down_) return;
        events_->record_notice(backends_[index].config(),
                               core::Notice{leading ? "ha_leading" : "ha_stepped_down", instance, why,
                                            std::chrono::system_clock::now()});
      },
      [this] { subsystem_changed(kHaChanged); });
  fence_ = std::make_unique<RecordedFence>(*ha_, *events_);
  for (BackendDriver* driver : drivers) driver->set_fence(fence_.get());
  ha_->start();
}

}  // namespace unshelver::app
