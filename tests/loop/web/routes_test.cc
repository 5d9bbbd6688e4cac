// Tests for WebApp's routes against a fake Controller: no socket and no loop, but the runtime
// (AccessControl's random bytes, the embedded pages), so they live with the loop tests.
//
// What they pin is the web layer's own rules: tokens never in URLs, forms carry their anti-forgery
// token, failed logins and public wakes are rate limited, a wake that starts a sleeping backend
// waits for the global cool-down, and bearer tokens open the admin routes but never a backend's.
#include "web/routes.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "web/page_model.h"

namespace unshelver::web {
namespace {

using core::BackendState;
using nlohmann::json;

constexpr const char* kToken = "correct-horse-battery-staple";
constexpr const char* kPublicAddress = "203.0.113.5";

class FakeController : public Controller {
 public:
  struct Request {
    std::string name;
    bool wake;
    std::string actor;
  };

  FakeController() {
    BackendView gpu;
    gpu.name = "gpu";
    gpu.label = "GPU";
    gpu.state = BackendState::kAsleep;
    views.push_back(gpu);
  }

  std::uint64_t revision() const override { return revision_value; }
  std::vector<BackendView> backends() const override { return views; }
  json status() const override {
    json backends = json::array();
    for (const BackendView& view : views) {
      backends.push_back({{"name", view.name},
                          {"label", view.label},
                          {"state", std::string(core::to_string(view.state))},
                          {"upstream", "10.0.0.5:8080"}});
    }
    return {{"revision", revision_value}, {"title", "Test"}, {"backends", backends}};
  }
  RequestOutcome wake(const std::string& name, const std::string& actor, const std::string&) override {
    return request(name, true, actor);
  }
  RequestOutcome shelve(const std::string& name, const std::string& actor, const std::string&) override {
    return request(name, false, actor);
  }
  void record_event(const std::string& action, const std::string&, const std::string& detail) override {
    recorded.push_back(action);
    details.push_back(detail);
  }
  std::string ignore_reason(const io::HttpRequest& request) const override {
    const std::string* agent = request.header("User-Agent");
    return agent != nullptr && agent->find("bot") != std::string::npos ? "user_agent" : "";
  }
  void metrics(core::MetricsPage& page) const override {
    page.gauge("unshelver_test", "A metric of the fake controller.", {}, 1);
  }
  std::string backend_for_host(std::string_view host) const override {
    return host == "gpu.example.org" ? "gpu" : "";
  }
  void request_started(const std::string& name, bool counts_as_activity) override {
    started.emplace_back(name, counts_as_activity);
  }
  json events(std::optional<std::uint64_t>, const std::string&, std::size_t) const override {
    return {{"events", json::array()}, {"last_seq", 0}};
  }
  void wait_for_events(std::uint64_t, std::chrono::milliseconds, std::function<void()> then) override {
    then();
  }

  void set_state(BackendState state) {
    views[0].state = state;
    ++revision_value;
  }

  std::vector<BackendView> views;
  std::uint64_t revision_value = 1;
  std::vector<Request> requests;
  std::vector<std::string> recorded;                  // the actions of record_event
  std::vector<std::string> details;                   // ... and their details
  std::vector<std::pair<std::string, bool>> started;  // request_started calls

 private:
  RequestOutcome request(const std::string& name, bool wake, const std::string& actor) {
    if (name != "gpu") return RequestOutcome::kUnknownBackend;
    requests.push_back(Request{name, wake, actor});
    return RequestOutcome::kAccepted;
  }
};

std::string header(const io::HttpResponse& response, std::string_view name) {
  const std::string* value = io::find_header(response.headers, name);
  return value != nullptr ? *value : "";
}

class RoutesTest : public ::testing::Test {
 protected:
  RoutesTest() : pages_(load_pages()) {
    config_.app.control_token = kToken;
    config_.security.login_burst = 3;
    config_.security.wake_burst = 2;
    access_ = std::make_unique<AccessControl>(config_, "a signing key of enough length for the test");
    web_ = std::make_unique<WebApp>(pages_, controller_, *access_, "/manual-shelve");
  }

  static Pages load_pages() {
    auto pages = Pages::load("");
    EXPECT_TRUE(pages) << pages.error().message;
    return std::move(pages.value());
  }

  static io::HttpRequest request(std::string method, std::string target,
                                 std::string address = kPublicAddress) {
    io::HttpRequest request;
    request.method = std::move(method);
    request.target = target;
    const std::size_t query = target.find('?');
    request.path = target.substr(0, query);
    if (query != std::string::npos) request.query = target.substr(query + 1);
    request.remote_address = std::move(address);
    request.headers.emplace_back("Host", "unshelver.example.org");
    return request;
  }

  // A form POST as the visitor `visitor_id` sends it, with `form_token` when given.
  static io::HttpRequest form(std::string target, const std::string& visitor_id, std::string body) {
    io::HttpRequest post = request("POST", std::move(target));
    post.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    post.headers.emplace_back("Cookie", std::string(kVisitorCookie) + "=" + visitor_id);
    post.headers.emplace_back("Accept", "application/json");
    post.body = std::move(body);
    return post;
  }

  std::string visitor_token(const std::string& visitor_id, std::string_view purpose) const {
    return access_->visitor_form_token(AccessControl::Visitor{visitor_id, ""}, purpose);
  }

  static io::HttpRequest with_bearer(io::HttpRequest request, const std::string& token) {
    request.headers.emplace_back("Authorization", "Bearer " + token);
    return request;
  }

  core::Config config_;
  Pages pages_;
  FakeController controller_;
  std::unique_ptr<AccessControl> access_;
  std::unique_ptr<WebApp> web_;
  const std::string visitor_ = "dmlzaXRvci1vZi10aGUtdGVzdA";  // base64url, 19 bytes
};

// The public status document and the launcher are kept between changes (web/page_cache.h):
// a state change shows in both at the next request, and nothing else does.
TEST_F(RoutesTest, ThePublicPagesFollowEveryStateChange) {
  auto public_state = [this] {
    return json::parse(web_->answer(request("GET", "/api/status")).content())["backends"][0]["state"];
  };
  auto launcher = [this] { return web_->answer(request("GET", "/")).content(); };
  EXPECT_EQ(json("asleep"), public_state());
  EXPECT_NE(std::string::npos, launcher().find("state-asleep"));
  controller_.set_state(BackendState::kWaking);
  EXPECT_EQ(json("waking"), public_state());
  EXPECT_NE(std::string::npos, launcher().find("state-waking"));
  EXPECT_EQ(std::string::npos, launcher().find("state-asleep"));
  // A view that changes without a revision is not looked at: the revision is the contract.
  controller_.views[0].state = BackendState::kReady;
  EXPECT_EQ(json("waking"), public_state());
  ++controller_.revision_value;
  EXPECT_EQ(json("ready"), public_state());
  EXPECT_NE(std::string::npos, launcher().find("state-ready"));
}

TEST_F(RoutesTest, RefusesTheControlTokenInAUrl) {
  for (const char* target : {"/api/status?token=x", "/control?control_token=x", "/?token="}) {
    const io::HttpResponse response = web_->answer(request("GET", target));
    EXPECT_EQ(400, response.status) << target;
    EXPECT_NE(std::string::npos, response.body.find("never accepted in a URL")) << target;
  }
}

TEST_F(RoutesTest, PublicWakeNeedsTheFormTokenOfThisVisitor) {
  // None, one of another visitor, one made for the login form: all refused as forged.
  for (const std::string& body :
       {std::string(""), "form_token=" + visitor_token("c29tZW9uZS1lbHNlLWF0LWFsbA", "wake"),
        "form_token=" + visitor_token(visitor_, "login")}) {
    const io::HttpResponse response = web_->answer(form("/wake/gpu", visitor_, body));
    EXPECT_EQ(403, response.status) << body;
    EXPECT_NE(std::string::npos, response.body.find("form token")) << response.body;
  }
  EXPECT_TRUE(controller_.requests.empty());

  const io::HttpResponse accepted =
      web_->answer(form("/wake/gpu", visitor_, "form_token=" + visitor_token(visitor_, "wake")));
  EXPECT_EQ(202, accepted.status) << accepted.body;
  ASSERT_EQ(1u, controller_.requests.size());
  EXPECT_EQ("public-button", controller_.requests[0].actor);
}

// The waiting page stands at the address the visitor asked for; pressing Wake there brings them
// back to it, and never to another host.
TEST_F(RoutesTest, TheWaitingPagesWakeReturnsToTheAddressAskedFor) {
  io::HttpRequest page = request("GET", "/chat/c/42?model=big");
  page.headers = {{"Host", "gpu.example.org"},
                  {"Accept", "text/html"},
                  {"Cookie", std::string(kVisitorCookie) + "=" + visitor_}};
  const io::HttpResponse shown = web_->answer(page);
  EXPECT_NE(std::string::npos, shown.body.find("name=\"next\" value=\"/chat/c/42?model=big\"")) << shown.body;

  int client = 0;  // one address per wake, below the per-client limit
  const auto wake = [&](const std::string& next) {
    io::HttpRequest post = form("/.well-known/unshelver/wake", visitor_,
                                "form_token=" + visitor_token(visitor_, "wake") + "&next=" + next);
    post.headers[0].second = "gpu.example.org";
    post.headers.emplace_back("Accept", "text/html");
    post.headers.erase(post.headers.begin() + 3);  // the form's Accept: application/json
    post.remote_address = "203.0.113." + std::to_string(++client);
    const io::HttpResponse response = web_->answer(post);
    EXPECT_EQ(303, response.status) << next << ": " << response.body;
    return header(response, "Location");
  };
  controller_.set_state(BackendState::kReady);  // no cool-down between the wakes below
  EXPECT_EQ("/chat/c/42?model=big", wake("%2Fchat%2Fc%2F42%3Fmodel%3Dbig"));
  for (const char* elsewhere : {"%2F%2Fevil.example", "%2F%5Cevil.example", "https%3A%2F%2Fevil.example", "",
                                "%2Fa%0D%0ASet-Cookie%3Ax"}) {
    EXPECT_EQ("/", wake(elsewhere)) << elsewhere;
  }
}

TEST_F(RoutesTest, PublicWakeIsRefusedToBotsAndUnknownBackends) {
  io::HttpRequest bot = form("/wake/gpu", visitor_, "form_token=" + visitor_token(visitor_, "wake"));
  bot.headers.emplace_back("User-Agent", "examplebot/1.0");
  EXPECT_EQ(403, web_->answer(bot).status);
  EXPECT_EQ(
      404,
      web_->answer(form("/wake/other", visitor_, "form_token=" + visitor_token(visitor_, "wake"))).status);
  EXPECT_EQ(405, web_->answer(request("GET", "/wake/gpu")).status);
  EXPECT_TRUE(controller_.requests.empty());
}

TEST_F(RoutesTest, PublicWakeIsRateLimitedPerClient) {
  // Ready: a wake starts nothing, so only the per-client limit (a burst of 2) applies.
  controller_.set_state(BackendState::kReady);
  const std::string body = "form_token=" + visitor_token(visitor_, "wake");
  EXPECT_EQ(202, web_->answer(form("/wake/gpu", visitor_, body)).status);
  EXPECT_EQ(202, web_->answer(form("/wake/gpu", visitor_, body)).status);
  const io::HttpResponse limited = web_->answer(form("/wake/gpu", visitor_, body));
  EXPECT_EQ(429, limited.status);
  EXPECT_FALSE(header(limited, "Retry-After").empty());
  EXPECT_EQ(2u, controller_.requests.size());
}

TEST_F(RoutesTest, WakesThatStartASleepingBackendWaitForTheCooldown) {
  const std::string body = "form_token=" + visitor_token(visitor_, "wake");
  EXPECT_EQ(202, web_->answer(form("/wake/gpu", visitor_, body)).status);
  // Still asleep as far as the page knows: a second start within the cool-down is refused.
  io::HttpRequest other = form("/wake/gpu", "YW5vdGhlci12aXNpdG9yLWlk", "");
  other.body = "form_token=" + visitor_token("YW5vdGhlci12aXNpdG9yLWlk", "wake");
  other.remote_address = "198.51.100.7";
  const io::HttpResponse refused = web_->answer(other);
  EXPECT_EQ(429, refused.status);
  EXPECT_NE(std::string::npos, refused.body.find("moments ago")) << refused.body;
  EXPECT_FALSE(header(refused, "Retry-After").empty());
  EXPECT_EQ(1u, controller_.requests.size());
}

TEST_F(RoutesTest, FailedLoginsAreThrottled) {
  auto login = [&](const std::string& token) {
    return web_->answer(form("/control/login", visitor_,
                             "form_token=" + visitor_token(visitor_, "login") + "&token=" + token));
  };
  // Without the login form's token (login CSRF) the token is not even checked.
  EXPECT_EQ(403, web_->answer(form("/control/login", visitor_, std::string("token=") + kToken)).status);
  for (int attempt = 0; attempt < 3; ++attempt) EXPECT_EQ(401, login("wrong").status) << attempt;
  const io::HttpResponse throttled = login("wrong");
  EXPECT_EQ(429, throttled.status);
  EXPECT_FALSE(header(throttled, "Retry-After").empty());
  EXPECT_EQ(3, std::count(controller_.recorded.begin(), controller_.recorded.end(), "login_failed"));
  // The right token still logs in: whoever shares the admin's address cannot lock the admin out.
  EXPECT_EQ(303, login(kToken).status);
}

TEST_F(RoutesTest, ALoginGivesASessionWhoseFormsNeedTheirToken) {
  const io::HttpResponse login = web_->answer(form(
      "/control/login", visitor_, "form_token=" + visitor_token(visitor_, "login") + "&token=" + kToken));
  ASSERT_EQ(303, login.status) << login.body;
  const std::string set_cookie = header(login, "Set-Cookie");
  ASSERT_EQ(0u, set_cookie.find(kSessionCookie)) << set_cookie;
  const std::string session = set_cookie.substr(0, set_cookie.find(';'));
  EXPECT_EQ(std::vector<std::string>{"login"}, controller_.recorded);

  io::HttpRequest page = request("GET", "/control");
  page.headers.emplace_back("Cookie", session);
  EXPECT_EQ(200, web_->answer(page).status);

  // A forged form (no token) cannot shelve, whatever cookie the browser adds.
  io::HttpRequest forged = request("POST", "/control/shelve/gpu");
  forged.headers.emplace_back("Cookie", session);
  forged.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  const io::HttpResponse refused = web_->answer(forged);
  EXPECT_EQ(403, refused.status);
  EXPECT_TRUE(controller_.requests.empty());
}

TEST_F(RoutesTest, BearerTokenOpensTheAdminRoutes) {
  EXPECT_EQ(200, web_->answer(with_bearer(request("GET", "/control"), kToken)).status);
  const io::HttpResponse shelved = web_->answer(with_bearer(request("POST", "/control/shelve/gpu"), kToken));
  EXPECT_EQ(202, shelved.status) << shelved.body;
  EXPECT_EQ(json("asleep"), json::parse(shelved.body)["state"]);
  ASSERT_EQ(1u, controller_.requests.size());
  EXPECT_FALSE(controller_.requests[0].wake);
  EXPECT_EQ("control", controller_.requests[0].actor);
  EXPECT_EQ(404, web_->answer(with_bearer(request("POST", "/control/wake/other"), kToken)).status);

  // The full status document only for admins (or local clients).
  EXPECT_EQ(std::string::npos, web_->answer(request("GET", "/api/status")).content().find("upstream"));
  EXPECT_NE(std::string::npos,
            web_->answer(with_bearer(request("GET", "/api/status"), kToken)).content().find("upstream"));
  EXPECT_EQ(200, web_->answer(with_bearer(request("GET", "/metrics"), kToken)).status);
}

TEST_F(RoutesTest, AWrongBearerTokenIsRefusedEverywhereAndRecorded) {
  for (const char* target : {"/", "/api/status", "/control"}) {
    const io::HttpResponse response = web_->answer(with_bearer(request("GET", target), "wrong"));
    EXPECT_EQ(401, response.status) << target;
    EXPECT_FALSE(header(response, "WWW-Authenticate").empty());
  }
  EXPECT_EQ(3, std::count(controller_.recorded.begin(), controller_.recorded.end(), "login_failed"));
  // Past the login burst the token is not even checked.
  const io::HttpResponse limited = web_->answer(with_bearer(request("GET", "/control"), "wrong"));
  EXPECT_EQ(429, limited.status);
  EXPECT_FALSE(header(limited, "Retry-After").empty());
}

// Issue 15 §4: a local process that fails on purpose (with forged forwarding headers, too) does
// not lock out the admin's CLI, which sends the right token from the same address.
TEST_F(RoutesTest, TheRightBearerTokenIsNeverLockedOut) {
  for (int i = 0; i < 8; ++i) {
    io::HttpRequest attack = with_bearer(request("GET", "/control", "127.0.0.1"), "wrong");
    if (i % 2 == 1) attack.headers.emplace_back("X-Forwarded-For", "1.2.3." + std::to_string(i));
    web_->answer(attack);
  }
  EXPECT_EQ(429, web_->answer(with_bearer(request("GET", "/control", "127.0.0.1"), "wrong")).status);
  const io::HttpResponse cli =
      web_->answer(with_bearer(request("POST", "/control/shelve/gpu", "127.0.0.1"), kToken));
  EXPECT_EQ(202, cli.status) << cli.body;
}

// Issue 15 §4: with a proxy socket, a TCP peer is the client itself, whatever X-Forwarded-For it
// sends: forged addresses neither give it fresh rate-limit buckets nor reach the audit trail.
TEST_F(RoutesTest, ForwardedAddressesAreBelievedOnlyFromTheProxy) {
  config_.proxy.socket = "/run/unshelver/http.sock";
  access_ = std::make_unique<AccessControl>(config_, "a signing key of enough length for the test");
  web_ = std::make_unique<WebApp>(pages_, controller_, *access_, "/manual-shelve");
  for (int i = 0; i < 3; ++i) {
    io::HttpRequest forged = with_bearer(request("GET", "/control", "127.0.0.1"), "wrong");
    forged.headers.emplace_back("X-Forwarded-For", "1.2.3." + std::to_string(i));
    EXPECT_EQ(401, web_->answer(forged).status) << i;
  }
  io::HttpRequest forged = with_bearer(request("GET", "/control", "127.0.0.1"), "wrong");
  forged.headers.emplace_back("X-Forwarded-For", "1.2.3.99");
  EXPECT_EQ(429, web_->answer(forged).status) << "one bucket: the real peer's";
  ASSERT_FALSE(controller_.details.empty());
  for (const std::string& detail : controller_.details) {
    EXPECT_NE(std::string::npos, detail.find("from 127.0.0.1")) << detail;
    EXPECT_EQ(std::string::npos, detail.find("1.2.3.")) << detail;
  }
  // On the proxy socket the header is Caddy's, and names the visitor.
  io::HttpRequest proxied = with_bearer(request("GET", "/control", "unix"), "wrong");
  proxied.via_proxy_socket = true;
  proxied.headers.emplace_back("X-Forwarded-For", "198.51.100.4");
  EXPECT_EQ(401, web_->answer(proxied).status);
  EXPECT_NE(std::string::npos, controller_.details.back().find("from 198.51.100.4"))
      << controller_.details.back();
  EXPECT_EQ("198.51.100.4", access_->client_address(proxied));
  // X-Forwarded-Proto likewise: only the proxy says whether the visitor used https.
  io::HttpRequest claimed_https = request("GET", "/", "127.0.0.1");
  claimed_https.headers.emplace_back("X-Forwarded-Proto", "https");
  EXPECT_FALSE(access_->is_https(claimed_https));
  claimed_https.via_proxy_socket = true;
  EXPECT_TRUE(access_->is_https(claimed_https));
  // A request through the socket is never a local client's.
  io::HttpRequest socket_scrape = request("GET", "/metrics", "127.0.0.1");
  socket_scrape.via_proxy_socket = true;
  EXPECT_EQ(401, web_->answer(socket_scrape).status);
}

// Issue 15 §5: a logged-out session stays ended when the daemon restarts with the same key.
TEST_F(RoutesTest, ALogoutIsRememberedAcrossARestart) {
  char directory_template[] = "/tmp/unshelver-revocations-XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(directory_template));
  const std::string file = std::string(directory_template) + "/sessions.json";
  const std::string key = "a signing key of enough length for the test";
  auto restart = [&] {
    access_ = std::make_unique<AccessControl>(config_, key, file);
    web_ = std::make_unique<WebApp>(pages_, controller_, *access_, "/manual-shelve");
  };
  auto log_in = [&] {
    const io::HttpResponse login = web_->answer(form(
        "/control/login", visitor_, "form_token=" + visitor_token(visitor_, "login") + "&token=" + kToken));
    const std::string set_cookie = header(login, "Set-Cookie");
    return set_cookie.substr(0, set_cookie.find(';'));
  };
  auto page_with = [&](const std::string& cookie) {
    io::HttpRequest page = request("GET", "/control");
    page.headers.emplace_back("Cookie", cookie);
    page.headers.emplace_back("Accept", "application/json");
    return web_->answer(page).status;
  };
  restart();
  const std::string ended = log_in();
  const std::string other = log_in();
  ASSERT_EQ(200, page_with(ended));

  io::HttpRequest control = request("GET", "/control");
  control.headers.emplace_back("Cookie", ended);
  const std::string form_token = access_->session_form_token(
      access_->identify(control, std::chrono::system_clock::now(), std::chrono::steady_clock::now()));
  io::HttpRequest logout = request("POST", "/control/logout");
  logout.headers.emplace_back("Cookie", ended);
  logout.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  logout.body = "form_token=" + form_token;
  ASSERT_EQ(303, web_->answer(logout).status);
  EXPECT_EQ(401, page_with(ended));

  restart();
  EXPECT_EQ(401, page_with(ended)) << "a restart must not revive a logged-out session";
  EXPECT_EQ(200, page_with(other)) << "the other admin's session is not ended";
  std::remove(file.c_str());
  rmdir(directory_template);
}

TEST_F(RoutesTest, AShelveFromThePageNeedsItsConfirmationAndEveryActionSaysWhatItDid) {
  const io::HttpResponse login = web_->answer(form(
      "/control/login", visitor_, "form_token=" + visitor_token(visitor_, "login") + "&token=" + kToken));
  const std::string set_cookie = header(login, "Set-Cookie");
  const std::string session = set_cookie.substr(0, set_cookie.find(';'));
  io::HttpRequest page = request("GET", "/control");
  page.headers.emplace_back("Cookie", session);
  const std::string form_token = access_->session_form_token(
      access_->identify(page, std::chrono::system_clock::now(), std::chrono::steady_clock::now()));
  auto post = [&](const std::string& target, const std::string& body) {
    io::HttpRequest action = request("POST", target);
    action.headers.emplace_back("Cookie", session);
    action.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    action.headers.emplace_back("Accept", "text/html");
    action.body = body;
    return web_->answer(action);
  };
  auto shown = [&](const std::string& target) {
    io::HttpRequest get = request("GET", target);
    get.headers.emplace_back("Cookie", session);
    get.headers.emplace_back("Accept", "text/html");
    return web_->answer(get).body;
  };

  // The form's first submit (all a browser without JavaScript sends) only asks.
  const io::HttpResponse asked = post("/control/shelve/gpu", "form_token=" + form_token);
  EXPECT_EQ(303, asked.status);
  EXPECT_EQ("/control?confirm=gpu#backend-gpu", header(asked, "Location"));
  EXPECT_TRUE(controller_.requests.empty());
  const std::string confirming = shown("/control?confirm=gpu");
  EXPECT_NE(std::string::npos, confirming.find("Yes, shelve now"));
  EXPECT_NE(std::string::npos, confirming.find(R"(data-role="shelve-confirm" >)"))
      << "the confirmation is hidden";
  EXPECT_NE(std::string::npos, shown("/control").find(R"(data-role="shelve-confirm" hidden>)"));
  // A script with the session cookie but no confirmation is refused too.
  io::HttpRequest script = request("POST", "/control/shelve/gpu");
  script.headers.emplace_back("Cookie", session);
  script.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  script.body = "form_token=" + form_token;
  EXPECT_EQ(409, web_->answer(script).status);
  EXPECT_TRUE(controller_.requests.empty());
  // The confirmation still needs the form token.
  EXPECT_EQ(403, post("/control/shelve/gpu", "confirm=yes").status);
  EXPECT_TRUE(controller_.requests.empty());

  const io::HttpResponse shelved = post("/control/shelve/gpu", "form_token=" + form_token + "&confirm=yes");
  EXPECT_EQ(303, shelved.status);
  EXPECT_EQ("/control?done=shelve_requested&backend=gpu#backend-gpu", header(shelved, "Location"));
  ASSERT_EQ(1u, controller_.requests.size());
  EXPECT_FALSE(controller_.requests[0].wake);
  EXPECT_NE(
      std::string::npos,
      shown("/control?done=shelve_requested&backend=gpu").find("Shelve requested: GPU is going to sleep"));
  // A script with the bearer token shelves at once, as before.
  EXPECT_EQ(202, web_->answer(with_bearer(request("POST", "/control/shelve/gpu"), kToken)).status);
  EXPECT_EQ(2u, controller_.requests.size());

  const io::HttpResponse woken = post("/control/wake/gpu", "form_token=" + form_token);
  EXPECT_EQ("/control?done=wake_requested&backend=gpu#backend-gpu", header(woken, "Location"));
  EXPECT_NE(std::string::npos,
            shown("/control?done=wake_requested&backend=gpu").find("Wake requested: GPU is starting"));
  EXPECT_NE(std::string::npos,
            shown("/control?done=already_ready&backend=gpu").find("GPU was already awake. Nothing was done"));
  // Only the fixed texts: an unknown key, or another backend, shows nothing.
  for (const char* target :
       {"/control?done=%3Cscript%3Ealert(1)%3C/script%3E&backend=gpu",
        "/control?done=wake_requested&backend=other", "/control?done=Hacked&backend=gpu"}) {
    const std::string body = shown(target);
    EXPECT_EQ(std::string::npos, body.find(R"(id="flash")")) << target;
    EXPECT_EQ(std::string::npos, body.find("script%3E")) << target;
  }
}

TEST_F(RoutesTest, WithoutASessionAdminRoutesAskToLogIn) {
  io::HttpRequest browser = request("GET", "/control");
  browser.headers.emplace_back("Accept", "text/html");
  const io::HttpResponse redirect = web_->answer(browser);
  EXPECT_EQ(303, redirect.status);
  EXPECT_EQ("/control/login", header(redirect, "Location"));
  EXPECT_EQ(401, web_->answer(request("POST", "/control/wake/gpu")).status);
  EXPECT_EQ(401, web_->answer(request("GET", "/metrics")).status);
  EXPECT_EQ(200, web_->answer(request("GET", "/metrics", "127.0.0.1")).status);  // a local scraper
}

TEST_F(RoutesTest, ABackendsHostTellsApiClientsWhenToComeBack) {
  io::HttpRequest api = request("POST", "/v1/chat");
  api.headers = {
      {"Host", "gpu.example.org"}, {"Accept", "application/json"}, {"Authorization", "Bearer sk-backend"}};
  io::HttpResponse response = web_->answer(api);
  EXPECT_EQ(503, response.status);
  EXPECT_EQ(std::to_string(retry_after_seconds(BackendState::kAsleep)), header(response, "Retry-After"));
  EXPECT_EQ(json("asleep"), json::parse(response.body)["state"]);
  // The backend's own Authorization header is none of Unshelver's business: no failed login.
  EXPECT_TRUE(controller_.recorded.empty());
  // Without wake_on_request nothing is woken.
  EXPECT_TRUE(controller_.requests.empty());

  controller_.views[0].wake_on_request = true;
  ++controller_.revision_value;
  response = web_->answer(api);
  EXPECT_EQ("10", header(response, "Retry-After"));
  EXPECT_EQ(json("waking"), json::parse(response.body)["state"]);
  EXPECT_EQ(json("requested"), json::parse(response.body)["wake"]);
  ASSERT_EQ(1u, controller_.requests.size());
  EXPECT_EQ("wake-on-request", controller_.requests[0].actor);

  // Booting: nothing to wake, and a shorter wait.
  controller_.set_state(BackendState::kBooting);
  response = web_->answer(api);
  EXPECT_EQ("10", header(response, "Retry-After"));
  EXPECT_EQ(1u, controller_.requests.size());
}

// A wake by request obeys the button's rules: against a backend that fails every wake, ten API
// requests start it once (the global cool-down), not ten times.
TEST_F(RoutesTest, AWakeByRequestObeysTheCooldownLikeTheButton) {
  controller_.views[0].wake_on_request = true;
  controller_.set_state(BackendState::kError);
  io::HttpRequest api = request("POST", "/v1/chat");
  api.headers = {{"Host", "gpu.example.org"}, {"Accept", "application/json"}};
  for (int i = 0; i < 10; ++i) {
    api.headers.emplace_back("X-Forwarded-For", "198.51.100." + std::to_string(i));
    api.remote_address = "127.0.0.1";
    EXPECT_EQ(503, web_->answer(api).status);
    api.headers.pop_back();
  }
  ASSERT_EQ(1u, controller_.requests.size());
  EXPECT_EQ("wake-on-request", controller_.requests[0].actor);
}

}  // namespace
}  // namespace unshelver::web
