// Loop tests of CaddyRouter: the real router, HttpClient and timers on a real libuv loop, against
// (1) a fake admin API (our own HttpServer on the same loop) that records every request and can
// answer 200, 400 {"error": ...}, hold a load, or be down; and (2) the real Caddy from Debian's
// package (/usr/bin/caddy, 2.6.2), started per test on free loopback ports with its state in a
// temporary directory, and stopped by PID.
//
// The fake mimics the part of Caddy's admin API contract that the router relies on (caddy-facts
// §5): POST /load replaces the running config; POST /adapt answers {"result": X} and GET /config/
// answers X for the loaded body, so that the two are equal unless someone "loads" something else.
//
// The templates are the tests' own (core::Template::compile of a small Caddyfile), so that these
// tests do not depend on the shipped templates. Every test ends with the router closed, every
// handle closed, and uv_loop_close() == 0.
#include "caddy/router.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/loop.h"
#include "support/peers.h"
#include "uv/files.h"
#include "uv/http_client.h"
#include "uv/http_server.h"
#include "uv/timer.h"

extern char** environ;

namespace unshelver::app {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// --- helpers ---------------------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
}

// A loopback port that nothing listens on right now (bound, read, closed).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "caddy-router-XXXXXX").string();
  char* made = ::mkdtemp(pattern.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// A minimal routing template: one site per backend that proxies to the backend when it is ready
// and to Unshelver otherwise.
constexpr const char* kFakeTemplate =
    "# modes: {{{modes}}}\n"
    "{{#backends}}\n"
    "{{{site}}} {\n"
    "{{#ready}}\treverse_proxy {{{upstream}}}\n{{/ready}}"
    "{{^ready}}\treverse_proxy {{{unshelver}}}\n{{/ready}}"
    "}\n"
    "{{/backends}}\n";

core::Template compile_template(const char* source) {
  auto compiled = core::Template::compile(source, "test.Caddyfile");
  if (!compiled) throw std::runtime_error(compiled.error().message);
  return *compiled;
}

core::CaddyRenderInput make_input(bool ready, const std::string& upstream = "127.0.0.1:18500") {
  core::CaddyRenderInput input;
  input.launcher_site = "http://launcher.localhost:18080";
  input.unshelver = "127.0.0.1:5001";
  core::CaddyBackendView backend;
  backend.name = "gpu";
  backend.site = "http://chat.localhost:18080";
  backend.upstream = upstream;
  backend.label = "gpu";
  backend.ready = ready;
  input.backends.push_back(backend);
  return input;
}

struct Event {
  std::string kind;
  std::string detail;
};

// --- the fake admin API ------------------------------------------------------------------------------

struct RecordedRequest {
  std::string method;
  std::string path;
  std::string content_type;
  std::string cache_control;
  std::string body;
  Clock::time_point at;
};

class FakeAdmin {
 public:
  explicit FakeAdmin(uv_loop_t* loop)
      : server_(loop, core::HttpLimits{}, [this](const io::HttpRequest& request, io::Responder responder) {
          handle(request, responder);
        }) {}

  Status listen(int port = 0) { return server_.listen("127.0.0.1", port); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  void shutdown(std::function<void()> done) { server_.shutdown(std::move(done)); }

  std::vector<RecordedRequest> requests(const std::string& path) const {
    std::vector<RecordedRequest> out;
    for (const auto& request : requests_) {
      if (request.path == path) out.push_back(request);
    }
    return out;
  }
  std::size_t loads() const { return requests("/load").size(); }
  std::size_t total() const { return requests_.size(); }

  // Answers to POST /load: a status and, for errors, Caddy's JSON error body.
  void answer_loads(int status, std::string error = "") {
    load_status_ = status;
    load_error_ = std::move(error);
  }
  // While holding, loads are recorded but answered only by release().
  void hold_loads(bool hold) { hold_ = hold; }
  std::size_t held() const { return held_.size(); }
  void release() {
    auto held = std::move(held_);
    held_.clear();
    for (auto& [responder, body] : held) answer_load(responder, body);
  }
  // What the "running config" is: as if someone else had loaded `body`.
  void foreign_load(const std::string& body) { running_body_ = body; }
  // Makes GET /config/ answer `config` whatever is loaded (a Caddy whose /adapt and /config/
  // never agree).
  void force_config(std::optional<json> config) {
    forced_config_ = config ? std::optional<std::string>(config->dump()) : std::nullopt;
  }
  // The same with a raw body, which need not be JSON.
  void force_config_text(std::string text) { forced_config_ = std::move(text); }

 private:
  static json adapt(const std::string& body) { return json{{"apps", {{"loaded", body}}}}; }

  void handle(const io::HttpRequest& request, io::Responder responder) {
    RecordedRequest recorded;
    recorded.method = request.method;
    recorded.path = request.path;
    if (auto* value = request.header("Content-Type")) recorded.content_type = *value;
    if (auto* value = request.header("Cache-Control")) recorded.cache_control = *value;
    recorded.body = request.body;
    recorded.at = Clock::now();
    requests_.push_back(recorded);

    if (request.method == "POST" && request.path == "/load") {
      if (hold_) {
        held_.emplace_back(responder, request.body);
      } else {
        answer_load(responder, request.body);
      }
    } else if (request.method == "POST" && request.path == "/adapt") {
      responder.respond(io::HttpResponse::json(200, json{{"result", adapt(request.body)}}.dump()));
    } else if (request.method == "GET" && request.path == "/config/") {
      if (forced_config_) {
        responder.respond(io::HttpResponse::json(200, *forced_config_));
      } else {
        json running = running_body_ ? adapt(*running_body_) : json();
        responder.respond(io::HttpResponse::json(200, running.dump()));
      }
    } else {
      responder.respond(io::HttpResponse::json(404, R"({"error":"not found"})"));
    }
  }

  void answer_load(io::Responder& responder, const std::string& body) {
    if (load_status_ == 200) {
      running_body_ = body;
      responder.respond(io::HttpResponse::text(200, ""));
    } else {
      responder.respond(io::HttpResponse::json(load_status_, json{{"error", load_error_}}.dump()));
    }
  }

  io::HttpServer server_;
  std::vector<RecordedRequest> requests_;
  int load_status_ = 200;
  std::string load_error_;
  bool hold_ = false;
  std::vector<std::pair<io::Responder, std::string>> held_;
  std::optional<std::string> running_body_;
  std::optional<std::string> forced_config_;
};

// --- the fixture ----------------------------------------------------------------------------------

class CaddyRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(0, uv_loop_init(&loop_));
    client_ = std::make_unique<io::HttpClient>(&loop_);
    dir_ = make_temp_dir();
    settings_.manage = true;
    settings_.caddyfile = dir_ + "/Caddyfile";
    settings_.snippet = dir_ + "/unshelver.caddy";
    settings_.retry_max = 200ms;
    settings_.drift_check_interval = 200ms;
  }

  void TearDown() override {
    router_.reset();
    close_fake();
    client_->close();
    client_.reset();
    testing::drain_and_close_loop(&loop_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  FakeAdmin& start_fake() {
    fake_ = std::make_unique<FakeAdmin>(&loop_);
    EXPECT_TRUE(fake_->listen().ok());
    settings_.admin = fake_->url();
    return *fake_;
  }

  void close_fake() {
    if (!fake_) return;
    fake_->shutdown([] {});
    uv_run(&loop_, UV_RUN_DEFAULT);
    fake_.reset();
  }

  CaddyRouter& make_router(const char* source = kFakeTemplate) {
    router_ = std::make_unique<CaddyRouter>(&loop_, *client_, settings_, compile_template(source),
                                            [this](const std::string& kind, const std::string& detail) {
                                              events_.push_back({kind, detail});
                                            });
    return *router_;
  }

  std::string rendered(const core::CaddyRenderInput& input) {
    auto text = router_->render(input);
    EXPECT_TRUE(text.ok());
    return text.ok() ? *text : std::string();
  }

  // Runs the loop until `done` holds or `timeout` has passed; returns whether `done` holds.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    return testing::run_loop_until(&loop_, done, limit);
  }

  void run_for(std::chrono::milliseconds duration) {
    const auto until = Clock::now() + duration;
    run_until([&] { return Clock::now() >= until; }, duration + 1s);
  }

  std::size_t count_events(const std::string& kind) const {
    std::size_t count = 0;
    for (const auto& event : events_) count += event.kind == kind ? 1 : 0;
    return count;
  }

  uv_loop_t loop_{};
  std::unique_ptr<io::HttpClient> client_;
  std::unique_ptr<FakeAdmin> fake_;
  std::unique_ptr<CaddyRouter> router_;
  core::CaddySettings settings_;
  std::string dir_;
  std::vector<Event> events_;
};

// --- fake admin API ----------------------------------------------------------------------------------

TEST_F(CaddyRouterTest, FirstUpdateLoadsIdenticalSkipsChangedLoadsAgain) {
  FakeAdmin& fake = start_fake();
  CaddyRouter& router = make_router();
  const std::string text_a = rendered(make_input(false));
  const std::string text_b = rendered(make_input(true));
  ASSERT_NE(text_a, text_b);

  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }));
  ASSERT_EQ(1u, fake.loads());
  const RecordedRequest first = fake.requests("/load")[0];
  EXPECT_EQ("POST", first.method);
  EXPECT_EQ("text/caddyfile", first.content_type);
  EXPECT_EQ("", first.cache_control);
  EXPECT_EQ(text_a, first.body);
  EXPECT_EQ(text_a, read_file(settings_.caddyfile));  // Written, so that a restart comes up in it.
  EXPECT_EQ(std::filesystem::perms(0644),
            std::filesystem::status(settings_.caddyfile).permissions() & std::filesystem::perms::mask);

  const CaddyRouterStatus& status = router.status();
  EXPECT_EQ(fake.url(), status.admin);
  EXPECT_EQ("full", status.integration);
  EXPECT_EQ("gpu=unshelver", status.loaded_modes);
  EXPECT_TRUE(status.loaded_at.has_value());
  EXPECT_EQ("", status.pending_modes);
  EXPECT_EQ("", status.last_error);
  EXPECT_EQ("unshelver", status.modes.at("gpu"));
  ASSERT_EQ(1u, events_.size());
  EXPECT_EQ("caddy_loaded", events_[0].kind);
  EXPECT_EQ("gpu=unshelver", events_[0].detail);

  // The same text again: nothing goes to Caddy (a reload drops idle keep-alive connections).
  router.update(make_input(false));
  run_for(300ms);
  EXPECT_EQ(1u, fake.loads());
  EXPECT_EQ(1u, router.status().loads_ok);

  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 2; }));
  ASSERT_EQ(2u, fake.loads());
  EXPECT_EQ(text_b, fake.requests("/load")[1].body);
  EXPECT_EQ(text_b, read_file(settings_.caddyfile));
  EXPECT_EQ("gpu=backend", router.status().loaded_modes);
  EXPECT_EQ("backend", router.status().modes.at("gpu"));
  EXPECT_EQ(2u, count_events("caddy_loaded"));
  EXPECT_EQ(0u, count_events("caddy_drift_repaired"));
}

// The first load is not held back for requests held at the gate (before it, Caddy sends none
// there), unless Unshelver reloaded its configuration: Caddy then still routes to the gate.
TEST_F(CaddyRouterTest, HeldRequestsHoldBackTheFirstLoadOnlyAfterAReload) {
  FakeAdmin& fake = start_fake();
  bool busy = true;
  CaddyRouter& first_start = make_router();
  first_start.hold_loads_while([&] { return busy; });
  first_start.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return first_start.status().loads_ok == 1; }));
  first_start.close();

  CaddyRouter& after_reload = make_router();
  after_reload.hold_loads_while([&] { return busy; }, /*first_load_too=*/true);
  after_reload.update(make_input(true));
  run_for(300ms);
  EXPECT_EQ(1u, fake.loads());
  EXPECT_EQ(0u, after_reload.status().loads_ok);
  busy = false;
  after_reload.poke();
  ASSERT_TRUE(run_until([&] { return after_reload.status().loads_ok == 1; }));
  EXPECT_EQ(2u, fake.loads());
}

TEST_F(CaddyRouterTest, RejectedLoadReportsCaddysErrorAndRetriesWithBackOff) {
  FakeAdmin& fake = start_fake();
  const std::string caddy_error =
      "adapting config using caddyfile adapter: Caddyfile:3 - Error during parsing: Unexpected EOF";
  fake.answer_loads(400, caddy_error);
  CaddyRouter& router = make_router();

  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 1; }));
  {
    const CaddyRouterStatus& status = router.status();
    EXPECT_NE(std::string::npos, status.last_error.find(caddy_error)) << status.last_error;
    EXPECT_NE(std::string::npos, status.last_error.find("400")) << status.last_error;
    EXPECT_TRUE(status.last_error_at.has_value());
    EXPECT_TRUE(status.next_retry_at.has_value());
    EXPECT_EQ("gpu=backend", status.pending_modes);
    EXPECT_EQ("", status.loaded_modes);
    EXPECT_EQ(0u, status.loads_ok);
    ASSERT_GE(events_.size(), 1u);
    EXPECT_EQ("caddy_load_failed", events_[0].kind);
    EXPECT_NE(std::string::npos, events_[0].detail.find(caddy_error));
  }

  // It keeps retrying the same text, spaced by the back-off (retry_max 200 ms, with jitter down
  // to 75 %), not in a hot loop.
  ASSERT_TRUE(run_until([&] { return fake.loads() >= 3; }));
  const auto loads = fake.requests("/load");
  for (std::size_t i = 1; i < loads.size(); ++i) {
    EXPECT_GE(loads[i].at - loads[i - 1].at, 140ms);
    EXPECT_EQ(loads[0].body, loads[i].body);
  }

  fake.answer_loads(200);
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }, 2s));
  const CaddyRouterStatus& status = router.status();
  EXPECT_EQ("", status.last_error);
  EXPECT_FALSE(status.next_retry_at.has_value());
  EXPECT_EQ("", status.pending_modes);
  EXPECT_EQ("gpu=backend", status.loaded_modes);
  EXPECT_GE(status.loads_failed, 3u);
  EXPECT_EQ("caddy_loaded", events_.back().kind);

  // Once loaded, the retries stop.
  const std::size_t after = fake.loads();
  run_for(500ms);
  EXPECT_EQ(after, fake.loads());
}

TEST_F(CaddyRouterTest, RejectedLoadPutsTheRunningTextBackOnDisk) {
  FakeAdmin& fake = start_fake();
  CaddyRouter& router = make_router();
  const std::string text_a = rendered(make_input(false));
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }));

  fake.answer_loads(400, "Caddyfile:7: unrecognized directive: reverse_prox");
  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed == 1; }));
  // Caddy keeps running A (caddy-facts §5e), so a restart of Caddy must find A, not the broken B.
  EXPECT_EQ(text_a, read_file(settings_.caddyfile));
  EXPECT_EQ("gpu=unshelver", router.status().loaded_modes);
  EXPECT_EQ("gpu=backend", router.status().pending_modes);

  // Wanting A again settles it: no load (Caddy runs A), no more retries of B.
  router.update(make_input(false));
  const std::size_t loads = fake.loads();
  run_for(500ms);
  EXPECT_EQ(loads, fake.loads());
  EXPECT_EQ("", router.status().pending_modes);
  EXPECT_FALSE(router.status().next_retry_at.has_value());
}

TEST_F(CaddyRouterTest, AdminApiDownExplainsAdminOffAndRetries) {
  settings_.admin = "http://127.0.0.1:" + std::to_string(free_port());
  CaddyRouter& router = make_router();
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 2; }, 3s));
  const std::string& error = router.status().last_error;
  EXPECT_NE(std::string::npos, error.find("admin API at " + settings_.admin)) << error;
  EXPECT_NE(std::string::npos, error.find("does not answer")) << error;
  EXPECT_NE(std::string::npos, error.find("admin off")) << error;
  EXPECT_EQ(0u, router.status().loads_ok);
  ASSERT_GE(events_.size(), 2u);
  EXPECT_EQ("caddy_load_failed", events_[0].kind);
  EXPECT_EQ(error, events_.back().detail);
  // The file is written anyway: Caddy, when it comes up, reads the current mode from it.
  EXPECT_EQ(rendered(make_input(false)), read_file(settings_.caddyfile));
}

TEST_F(CaddyRouterTest, CaddyComingBackGetsTheTextEvenIfUnchanged) {
  // After a transport failure the router does not know what Caddy runs; once the admin API is back
  // the wanted text goes out, although an earlier load of the same text had succeeded.
  start_fake();
  CaddyRouter& router = make_router();
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }));
  const std::string admin = settings_.admin;
  close_fake();

  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 1; }));
  router.update(make_input(false));  // Back to the loaded text while Caddy is away.

  // A new fake on the same port stands for Caddy coming back (libuv binds with SO_REUSEADDR).
  const int port = std::stoi(admin.substr(admin.rfind(':') + 1));
  fake_ = std::make_unique<FakeAdmin>(&loop_);
  ASSERT_TRUE(fake_->listen(port).ok());
  ASSERT_EQ(admin, fake_->url());
  ASSERT_TRUE(run_until([&] { return fake_->loads() >= 1 && router.status().loads_ok == 2; }, 3s));
  EXPECT_EQ(rendered(make_input(false)), fake_->requests("/load")[0].body);
  EXPECT_EQ("", router.status().last_error);
}

TEST_F(CaddyRouterTest, RenderErrorSendsNothing) {
  FakeAdmin& fake = start_fake();
  CaddyRouter& router = make_router();
  core::CaddyRenderInput broken = make_input(true);
  broken.backends[0].name = "gpu {";  // The renderer refuses Caddyfile syntax in values.
  router.update(broken);
  run_for(300ms);
  EXPECT_EQ(0u, fake.total());
  EXPECT_NE(std::string::npos, router.status().last_error.find("cannot render"))
      << router.status().last_error;
  EXPECT_TRUE(router.status().last_error_at.has_value());
  ASSERT_EQ(1u, events_.size());
  EXPECT_EQ("caddy_load_failed", events_[0].kind);
  EXPECT_FALSE(std::filesystem::exists(settings_.caddyfile));

  // A later update renders again and loads.
  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }));
  EXPECT_EQ(1u, fake.loads());
  EXPECT_EQ("", router.status().last_error);

  // Broken again, then back to the loaded text: nothing to load, and the error is gone.
  router.update(broken);
  EXPECT_NE("", router.status().last_error);
  router.update(make_input(true));
  run_for(100ms);
  EXPECT_EQ(1u, fake.loads());
  EXPECT_EQ("", router.status().last_error);
  EXPECT_EQ(2u, count_events("caddy_load_failed"));
}

TEST_F(CaddyRouterTest, UpdatesDuringALoadCoalesceIntoOneLoadOfTheNewest) {
  FakeAdmin& fake = start_fake();
  fake.hold_loads(true);
  CaddyRouter& router = make_router();

  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return fake.held() == 1; }));
  router.update(make_input(true, "127.0.0.1:18501"));
  router.update(make_input(true, "127.0.0.1:18502"));
  router.update(make_input(true, "127.0.0.1:18503"));
  run_for(200ms);
  EXPECT_EQ(1u, fake.loads());  // Single flight.
  EXPECT_EQ("gpu=backend", router.status().pending_modes);

  fake.hold_loads(false);
  fake.release();
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 2; }));
  run_for(300ms);
  ASSERT_EQ(2u, fake.loads());
  EXPECT_EQ(rendered(make_input(false)), fake.requests("/load")[0].body);
  EXPECT_EQ(rendered(make_input(true, "127.0.0.1:18503")), fake.requests("/load")[1].body);
  EXPECT_EQ(rendered(make_input(true, "127.0.0.1:18503")), read_file(settings_.caddyfile));
  EXPECT_EQ("gpu=backend", router.status().loaded_modes);
  EXPECT_EQ("", router.status().pending_modes);
}

TEST_F(CaddyRouterTest, DriftCheckComparesAdaptedAndRunningAndRepairsAForeignLoad) {
  FakeAdmin& fake = start_fake();
  CaddyRouter& router = make_router();
  router.start();
  const std::string text = rendered(make_input(true));
  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }));

  // In step: the checks run (after the load and every interval), /adapt once per text, no reload.
  ASSERT_TRUE(run_until([&] { return fake.requests("/config/").size() >= 3u; }));
  ASSERT_EQ(1u, fake.requests("/adapt").size());
  EXPECT_EQ(text, fake.requests("/adapt")[0].body);
  EXPECT_EQ("text/caddyfile", fake.requests("/adapt")[0].content_type);
  EXPECT_EQ(1u, fake.loads());
  EXPECT_EQ(0u, router.status().drift_repairs);

  // Someone loads another config: the router loads its own again, forced.
  fake.foreign_load("http://chat.localhost:18080 {\n\trespond \"foreign\"\n}\n");
  ASSERT_TRUE(run_until([&] { return router.status().drift_repairs == 1; }, 2s));
  ASSERT_EQ(2u, fake.loads());
  const RecordedRequest repair = fake.requests("/load")[1];
  EXPECT_EQ(text, repair.body);
  EXPECT_EQ("must-revalidate", repair.cache_control);
  EXPECT_EQ("text/caddyfile", repair.content_type);
  EXPECT_EQ(1u, count_events("caddy_drift_repaired"));

  // Repaired, the checks are quiet again; a second foreign load is repaired again.
  run_for(600ms);
  EXPECT_EQ(2u, fake.loads());
  fake.foreign_load("something else");
  ASSERT_TRUE(run_until([&] { return router.status().drift_repairs == 2; }, 2s));
  EXPECT_EQ(3u, fake.loads());
  EXPECT_EQ(1u, fake.requests("/adapt").size());  // Still the cached adapted form.
}

TEST_F(CaddyRouterTest, DriftThatARepairDoesNotFixStopsRepairing) {
  FakeAdmin& fake = start_fake();
  // A Caddy whose running config never equals the adapted text: one forced reload, then no more
  // (each reload drops Caddy's idle keep-alive connections, caddy-facts §5d).
  fake.force_config(json{{"apps", {{"something", "else"}}}});
  CaddyRouter& router = make_router();
  router.start();
  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().drift_repairs == 1; }, 2s));
  run_for(1000ms);
  EXPECT_EQ(2u, fake.loads());
  EXPECT_EQ("must-revalidate", fake.requests("/load")[1].cache_control);
  EXPECT_EQ(1u, router.status().drift_repairs);

  // A new text turns drift repair back on.
  fake.force_config(std::nullopt);
  fake.foreign_load("foreign");
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 3; }));
  fake.foreign_load("foreign again");
  ASSERT_TRUE(run_until([&] { return router.status().drift_repairs == 2; }, 2s));
}

TEST_F(CaddyRouterTest, DriftCheckToleratesOddAnswers) {
  FakeAdmin& fake = start_fake();
  CaddyRouter& router = make_router();
  router.start();
  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }));

  // Not JSON at all: the check gives up for this round; nothing crashes, nothing is reloaded.
  fake.force_config_text("not json {");
  run_for(600ms);
  EXPECT_EQ(1u, fake.loads());
  EXPECT_EQ(0u, router.status().drift_repairs);
  EXPECT_EQ("", router.status().last_error);  // A failed check is not a failed load.

  // JSON of an unexpected shape is simply a different config: repaired.
  fake.force_config_text(R"({"apps": [1, {"x": null}], "admin": "odd"})");
  ASSERT_TRUE(run_until([&] { return router.status().drift_repairs == 1; }, 2s));
  fake.force_config(std::nullopt);  // The repair took: the fake runs the router's text again.
  run_for(500ms);                   // The check after the repair finds it in step.
  EXPECT_EQ(2u, fake.loads());

  // "null" (a Caddy without any config) is drift as well.
  fake.force_config_text("null");
  ASSERT_TRUE(run_until([&] { return router.status().drift_repairs == 2; }, 2s));
  fake.force_config(std::nullopt);
  run_for(600ms);
  EXPECT_EQ(2u, router.status().drift_repairs);
  EXPECT_EQ(3u, fake.loads());
}

TEST_F(CaddyRouterTest, SnippetIntegrationWritesTheSnippetAndPostsTheUsersCaddyfile) {
  FakeAdmin& fake = start_fake();
  settings_.integration = core::CaddyIntegration::kSnippet;
  const std::string user_a = "{\n\tadmin 127.0.0.1:2019\n}\nimport " + settings_.snippet + "\n";
  write_file(settings_.caddyfile, user_a);
  CaddyRouter& router = make_router();
  EXPECT_EQ("snippet", router.status().integration);

  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }));
  EXPECT_EQ(rendered(make_input(false)), read_file(settings_.snippet));
  EXPECT_EQ(user_a, read_file(settings_.caddyfile));  // The user's file is never written.
  EXPECT_EQ(user_a, fake.requests("/load")[0].body);
  EXPECT_EQ("text/caddyfile", fake.requests("/load")[0].content_type);

  // The user's Caddyfile is read again for every load.
  const std::string user_b = user_a + "# edited by the user\n";
  write_file(settings_.caddyfile, user_b);
  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 2; }));
  EXPECT_EQ(rendered(make_input(true)), read_file(settings_.snippet));
  EXPECT_EQ(user_b, fake.requests("/load")[1].body);
}

TEST_F(CaddyRouterTest, SnippetIntegrationWithoutTheUsersCaddyfileFails) {
  FakeAdmin& fake = start_fake();
  settings_.integration = core::CaddyIntegration::kSnippet;
  settings_.caddyfile = dir_ + "/missing/Caddyfile";
  CaddyRouter& router = make_router();
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 1; }));
  EXPECT_EQ(0u, fake.total());
  EXPECT_NE(std::string::npos, router.status().last_error.find(settings_.caddyfile))
      << router.status().last_error;
}

TEST_F(CaddyRouterTest, SnippetIntegrationRefusesAUsersCaddyfileWithAdminOff) {
  FakeAdmin& fake = start_fake();
  settings_.integration = core::CaddyIntegration::kSnippet;
  write_file(settings_.caddyfile,
             "{\n\t# the admin API is switched off:\n\tadmin   off\n}\nimport " + settings_.snippet + "\n");
  CaddyRouter& router = make_router();
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 1; }));
  EXPECT_EQ(0u, fake.total());
  EXPECT_NE(std::string::npos, router.status().last_error.find("`admin off`")) << router.status().last_error;
  // `admin off` in a comment, or another admin address, is fine.
  write_file(settings_.caddyfile,
             "{\n\tadmin 127.0.0.1:2019 # not admin off\n}\nimport " + settings_.snippet + "\n");
  router.update(make_input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; }));
}

TEST_F(CaddyRouterTest, CloseCancelsTheLoadInFlightAndNoCallbackRunsAfterwards) {
  FakeAdmin& fake = start_fake();
  fake.hold_loads(true);
  CaddyRouter& router = make_router();
  router.start();
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return fake.held() == 1; }));
  router.close();
  router.update(make_input(true));  // Ignored after close().
  fake.hold_loads(false);
  fake.release();
  run_for(500ms);
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(0u, router.status().loads_ok);
  EXPECT_EQ(1u, fake.total());
}

TEST_F(CaddyRouterTest, AnEventCallbackMayCloseTheRouter) {
  start_fake();
  router_ = std::make_unique<CaddyRouter>(&loop_, *client_, settings_, compile_template(kFakeTemplate),
                                          [this](const std::string& kind, const std::string& detail) {
                                            events_.push_back({kind, detail});
                                            router_->close();
                                          });
  router_->start();
  router_->update(make_input(false));
  ASSERT_TRUE(run_until([&] { return !events_.empty(); }));
  run_for(500ms);
  EXPECT_EQ(1u, events_.size());
}

TEST(CaddyRouterAtomicFile, ReplacesContentKeepsSymlinksAndTheMode) {
  const std::string dir = make_temp_dir();
  const std::string target = dir + "/real.Caddyfile";
  const std::string link = dir + "/Caddyfile";
  write_file(target, "old\n");
  // The admin's mode stays; the mode passed is for a file that does not exist yet.
  std::filesystem::permissions(target, std::filesystem::perms(0640));
  std::filesystem::create_symlink("real.Caddyfile", link);
  ASSERT_TRUE(io::write_file_atomically(link, "new\n", 0644, io::SymlinkTarget::kFollow).ok());
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ("new\n", read_file(target));
  EXPECT_EQ(std::filesystem::perms(0640),
            std::filesystem::status(target).permissions() & std::filesystem::perms::mask);
  // No temporary file is left next to the target.
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_TRUE(entry.path() == target || entry.path() == link) << entry.path();
  }

  auto failed = io::write_file_atomically(dir + "/no/such/dir/file", "x", 0644);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(std::string::npos, failed.error().message.find("/no/such/dir/file")) << failed.error().message;
  std::filesystem::remove_all(dir);
}

// --- the real Caddy ----------------------------------------------------------------------------------

// A template for the real Caddy: each backend site answers with its mode, so that requests show
// which config runs. `upstream_tls` renders an unknown directive: a text that Caddy rejects.
constexpr const char* kCaddyTemplate =
    "{\n"
    "\tadmin {{{admin_listen}}}\n"
    "\tauto_https off\n"
    "\thttp_port {{{http_port}}}\n"
    "}\n"
    "{{#backends}}\n"
    "{{{site}}} {\n"
    "\tbind 127.0.0.1\n"
    "{{#ready}}\trespond \"backend {{{name}}}\" 200\n{{/ready}}"
    "{{^ready}}\trespond \"unshelver {{{name}}}\" 200\n{{/ready}}"
    "{{#upstream_tls}}\treverse_prox {{{upstream}}}\n{{/upstream_tls}}"
    "}\n"
    "{{/backends}}\n";

constexpr const char* kCaddyBinary = "/usr/bin/caddy";

class CaddyRouterRealCaddyTest : public CaddyRouterTest {
 protected:
  void SetUp() override {
    UNSHELVER_REQUIRE_PEER(kCaddyBinary);
    CaddyRouterTest::SetUp();
    admin_port_ = free_port();
    http_port_ = free_port();
    if (over_socket_) {
      // The documented production setup (caddy/examples/systemd): the socket in a directory of
      // its own, mode 0750, and Caddy running with umask 0007.
      ::mkdir((dir_ + "/run").c_str(), 0750);
      admin_listen_ = "unix/" + dir_ + "/run/admin.sock";
      settings_.admin = admin_listen_;
    } else {
      admin_listen_ = "127.0.0.1:" + std::to_string(admin_port_);
      settings_.admin = "http://" + admin_listen_;
    }
    settings_.drift_check_interval = 300ms;
    settings_.retry_max = 300ms;

    // Caddy starts with a config of its own (not the router's), like a Caddy that was running
    // before Unshelver.
    write_file(settings_.caddyfile, foreign_caddyfile("before unshelver"));
    const std::string config_home = "XDG_CONFIG_HOME=" + dir_ + "/xdg-config";
    const std::string data_home = "XDG_DATA_HOME=" + dir_ + "/xdg-data";
    const std::string home = "HOME=" + dir_;
    std::vector<std::string> env_strings = {config_home, data_home, home, "PATH=/usr/bin:/bin"};
    std::vector<char*> env;
    for (auto& entry : env_strings) env.push_back(entry.data());
    env.push_back(nullptr);
    std::vector<std::string> arg_strings = {
        "/bin/sh",           "-c",        "umask 0007 && exec \"$0\" \"$@\"",
        kCaddyBinary,        "run",       "--config",
        settings_.caddyfile, "--adapter", "caddyfile"};
    std::vector<char*> args;
    for (auto& arg : arg_strings) args.push_back(arg.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/caddy.out";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    int rc = posix_spawn(&caddy_pid_, "/bin/sh", &actions, nullptr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(0, rc) << "cannot start caddy";
    ASSERT_TRUE(wait_for_caddy()) << read_file(log);
  }

  void TearDown() override {
    if (caddy_pid_ > 0) {
      ::kill(caddy_pid_, SIGTERM);
      // Caddy closes its listeners at once and exits about 1.7 s later (caddy-facts §5h).
      int status = 0;
      const auto deadline = Clock::now() + 5s;
      while (::waitpid(caddy_pid_, &status, WNOHANG) == 0) {
        if (Clock::now() >= deadline) {
          ::kill(caddy_pid_, SIGKILL);
          ::waitpid(caddy_pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(20ms);
      }
      caddy_pid_ = -1;
    }
    if (client_) CaddyRouterTest::TearDown();
  }

  std::string foreign_caddyfile(const std::string& answer) const {
    return "{\n\tadmin " + admin_listen_ + "\n\tauto_https off\n\thttp_port " + std::to_string(http_port_) +
           "\n}\nhttp://chat.localhost:" + std::to_string(http_port_) + " {\n\tbind 127.0.0.1\n\trespond \"" +
           answer + "\" 200\n}\n";
  }

  core::CaddyRenderInput input(bool ready, bool broken = false) const {
    core::CaddyRenderInput in = make_input(ready);
    in.admin_listen = admin_listen_;
    in.http_port = http_port_;
    in.auto_https = false;
    in.launcher_site = "http://launcher.localhost:" + std::to_string(http_port_);
    in.backends[0].site = "http://chat.localhost:" + std::to_string(http_port_);
    in.backends[0].upstream_tls = broken;
    return in;
  }

  // One request on the loop; transport failures are retried a few times, because Caddy closes
  // idle keep-alive connections on every reload (caddy-facts §5d).
  io::ClientResponse fetch(const std::string& method, const std::string& url, io::HeaderList headers = {},
                           const std::string& body = "", const std::string& unix_socket = "") {
    io::ClientResponse result;
    for (int attempt = 0; attempt < 3; ++attempt) {
      io::ClientRequest request;
      request.method = method;
      request.url = url;
      request.headers = headers;
      request.body = body;
      request.unix_socket = unix_socket;
      request.timeout = 5s;
      bool done = false;
      client_->send(std::move(request), [&](io::ClientResponse response) {
        result = std::move(response);
        done = true;
      });
      run_until([&] { return done; }, 6s);
      if (result.transport_ok()) break;
      run_for(50ms);
    }
    return result;
  }

  // A new connection each time: a kept-alive one may still be served by the server instance of
  // the config before the last load (Caddy lets old connections finish gracefully).
  std::string chat_answer() {
    auto response =
        fetch("GET", "http://127.0.0.1:" + std::to_string(http_port_) + "/",
              {{"Host", "chat.localhost:" + std::to_string(http_port_)}, {"Connection", "close"}});
    return response.transport_ok() ? response.body : "error: " + response.error;
  }

  // The chat host's answer once it is `expected`, or the last one after 3 s. Right after a load,
  // a new connection may still reach the old config: Caddy's old server keeps accepting on the
  // shared listener until it has stopped, which takes longer on a loaded machine.
  std::string chat_answer_becomes(const std::string& expected) {
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    std::string answer = chat_answer();
    while (answer != expected && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
      answer = chat_answer();
    }
    return answer;
  }

  // A request to Caddy's admin API, over TCP or through the socket (with the empty Host header
  // Caddy wants there).
  io::ClientResponse admin_fetch(const std::string& method, const std::string& path,
                                 io::HeaderList headers = {}, const std::string& body = "") {
    if (!over_socket_) return fetch(method, settings_.admin + path, std::move(headers), body);
    headers.emplace_back("Host", "");
    return fetch(method, "http://localhost" + path, std::move(headers), body, admin_socket());
  }

  std::string admin_socket() const { return over_socket_ ? admin_listen_.substr(5) : std::string(); }

  json running_config() {
    auto response = admin_fetch("GET", "/config/");
    return json::parse(response.body, nullptr, false);
  }

  bool wait_for_caddy() {
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      io::ClientRequest request;
      request.url = over_socket_ ? "http://localhost/config/" : settings_.admin + "/config/";
      if (over_socket_) {
        request.unix_socket = admin_socket();
        request.headers.emplace_back("Host", "");
      }
      request.timeout = 1s;
      bool done = false;
      bool ok = false;
      client_->send(std::move(request), [&](io::ClientResponse response) {
        ok = response.is_2xx();
        done = true;
      });
      run_until([&] { return done; }, 2s);
      if (ok && chat_answer() == "before unshelver") return true;
      run_for(50ms);
    }
    return false;
  }

  pid_t caddy_pid_ = -1;
  int admin_port_ = 0;
  int http_port_ = 0;
  bool over_socket_ = false;  // the admin API on a Unix socket instead of admin_port_
  std::string admin_listen_;  // Caddy's `admin` option
};

// Issue 15 §6: the same with the admin API on a Unix socket, as in the production setup.
class CaddyRouterRealCaddySocketTest : public CaddyRouterRealCaddyTest {
 protected:
  CaddyRouterRealCaddySocketTest() { over_socket_ = true; }
};

TEST_F(CaddyRouterRealCaddyTest, LoadsModesAndSwitchesBetweenThem) {
  CaddyRouter& router = make_router(kCaddyTemplate);
  router.start();
  router.update(input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; })) << router.status().last_error;
  EXPECT_EQ("unshelver gpu", chat_answer_becomes("unshelver gpu"));
  const json config_a = running_config();
  ASSERT_TRUE(config_a.is_object());

  router.update(input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 2; })) << router.status().last_error;
  EXPECT_EQ("backend gpu", chat_answer_becomes("backend gpu"));
  const json config_b = running_config();
  EXPECT_NE(config_a, config_b);
  EXPECT_EQ(rendered(input(true)), read_file(settings_.caddyfile));

  // Real Caddy's /adapt and /config/ agree (caddy-facts §5b): the drift checks find nothing.
  run_for(1000ms);
  EXPECT_EQ(0u, router.status().drift_repairs);
  EXPECT_EQ(2u, router.status().loads_ok);
  EXPECT_EQ("", router.status().last_error);
}

TEST_F(CaddyRouterRealCaddyTest, RepairsAForeignLoad) {
  CaddyRouter& router = make_router(kCaddyTemplate);
  router.start();
  router.update(input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; })) << router.status().last_error;
  EXPECT_EQ("backend gpu", chat_answer_becomes("backend gpu"));

  // Someone loads their own config through the admin API.
  auto foreign =
      admin_fetch("POST", "/load", {{"Content-Type", "text/caddyfile"}}, foreign_caddyfile("foreign"));
  ASSERT_EQ(200, foreign.status) << foreign.body;
  EXPECT_EQ("foreign", chat_answer_becomes("foreign"));

  // Restored within about one drift_check_interval (300 ms; the margin is for a busy machine).
  ASSERT_TRUE(run_until([&] { return router.status().drift_repairs == 1; }, 1500ms));
  EXPECT_EQ("backend gpu", chat_answer_becomes("backend gpu"));
  EXPECT_EQ(1u, count_events("caddy_drift_repaired"));
  run_for(800ms);
  EXPECT_EQ(1u, router.status().drift_repairs);
  EXPECT_EQ("backend gpu", chat_answer_becomes("backend gpu"));
}

TEST_F(CaddyRouterRealCaddyTest, RejectedTextKeepsTheOldConfig) {
  CaddyRouter& router = make_router(kCaddyTemplate);
  router.update(input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; })) << router.status().last_error;
  const json config_a = running_config();
  const std::string text_a = rendered(input(false));

  router.update(input(true, /*broken=*/true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 1; }));
  const std::string error = router.status().last_error;
  EXPECT_NE(std::string::npos, error.find("unrecognized directive: reverse_prox")) << error;
  EXPECT_EQ("caddy_load_failed", events_.back().kind);
  // Caddy still serves A, and A is back in the file.
  EXPECT_EQ("unshelver gpu", chat_answer_becomes("unshelver gpu"));
  EXPECT_EQ(config_a, running_config());
  EXPECT_EQ(text_a, read_file(settings_.caddyfile));
  EXPECT_EQ("gpu=unshelver", router.status().loaded_modes);

  // Fixed input: loads.
  router.update(input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 2; })) << router.status().last_error;
  EXPECT_EQ("backend gpu", chat_answer_becomes("backend gpu"));
  EXPECT_EQ("", router.status().last_error);
}

TEST_F(CaddyRouterRealCaddySocketTest, LoadsSwitchesAndRepairsThroughTheSocketWhichStaysThere) {
  CaddyRouter& router = make_router(kCaddyTemplate);
  router.start();
  router.update(input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 1; })) << router.status().last_error;
  EXPECT_EQ("unshelver gpu", chat_answer_becomes("unshelver gpu"));
  router.update(input(true));
  ASSERT_TRUE(run_until([&] { return router.status().loads_ok == 2; })) << router.status().last_error;
  EXPECT_EQ("backend gpu", chat_answer_becomes("backend gpu"));
  EXPECT_EQ(admin_listen_, router.status().admin);

  // A foreign load through the socket is repaired through it.
  auto foreign =
      admin_fetch("POST", "/load", {{"Content-Type", "text/caddyfile"}}, foreign_caddyfile("foreign"));
  ASSERT_EQ(200, foreign.status) << foreign.body;
  EXPECT_EQ("foreign", chat_answer_becomes("foreign"));
  ASSERT_TRUE(run_until([&] { return router.status().drift_repairs == 1; }, 3s));
  EXPECT_EQ("backend gpu", chat_answer_becomes("backend gpu"));

  // Every loaded config kept the admin API on the socket, with the mode the umask gives it:
  // owner and group may connect, nobody else.
  EXPECT_EQ(admin_listen_, running_config()["admin"]["listen"]) << running_config().dump();
  struct stat info {};
  ASSERT_EQ(0, ::stat(admin_socket().c_str(), &info));
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(0770u, info.st_mode & 0777u);
}

// A template without the socket's `admin` would move the API to localhost:2019 on load: nothing is
// sent, and the error says why.
TEST_F(CaddyRouterTest, WithTheAdminSocketATextWithoutItIsNeverSent) {
  settings_.admin = "unix/" + dir_ + "/admin.sock";
  CaddyRouter& router = make_router(kFakeTemplate);
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 1; }));
  const std::string error = router.status().last_error;
  EXPECT_NE(std::string::npos, error.find("has no `admin " + settings_.admin + "`")) << error;
  EXPECT_NE(std::string::npos, error.find("localhost:2019")) << error;
  EXPECT_EQ(std::string::npos, error.find("does not answer")) << error;
}

// Nobody listens on the socket: the error names it and says what to check.
TEST_F(CaddyRouterTest, WithTheAdminSocketNotAnsweringTheErrorSaysWhatToCheck) {
  settings_.admin = "unix/" + dir_ + "/admin.sock";
  CaddyRouter& router = make_router(kCaddyTemplate);
  core::CaddyRenderInput input = make_input(false);
  input.admin_listen = settings_.admin;
  router.update(input);
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 1; }));
  const std::string error = router.status().last_error;
  EXPECT_NE(std::string::npos, error.find("does not answer")) << error;
  EXPECT_NE(std::string::npos, error.find("through the Unix socket " + dir_ + "/admin.sock")) << error;
  EXPECT_NE(std::string::npos, error.find("`admin " + settings_.admin + "`")) << error;
}

TEST_F(CaddyRouterTest, WithTheAdminSocketAUsersCaddyfileWithAnotherAdminIsRefused) {
  settings_.admin = "unix/" + dir_ + "/admin.sock";
  settings_.integration = core::CaddyIntegration::kSnippet;
  write_file(settings_.caddyfile, "{\n\tadmin 127.0.0.1:2019\n}\nimport " + settings_.snippet + "\n");
  CaddyRouter& router = make_router();
  router.update(make_input(false));
  ASSERT_TRUE(run_until([&] { return router.status().loads_failed >= 1; }));
  const std::string error = router.status().last_error;
  EXPECT_NE(
      std::string::npos,
      error.find(settings_.caddyfile + " sets `admin 127.0.0.1:2019`, but caddy.admin is " + settings_.admin))
      << error;
}

}  // namespace
}  // namespace unshelver::app
