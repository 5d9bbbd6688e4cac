// Loop tests of EtcdClient on a real libuv loop: (1) against a real etcd, Debian's /usr/bin/etcd
// (3.4.23), started per test as a single member on free loopback ports with its data in a
// temporary directory, and killed by PID: leases, a campaign won by one client and lost by
// another, a fenced write refused once the lease is gone, prefix ranges, failover past a dead
// port, and auth (a wrong password, an expired token); (2) against scripted fake endpoints (our
// own HttpServer): a 4xx is final, a 5xx fails over, a hung endpoint times out, close() cancels.
#include "ha/etcd_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/loop.h"
#include "support/peers.h"
#include "uv/http_server.h"

extern char** environ;

namespace unshelver::io {
namespace {

using namespace std::chrono_literals;
namespace etcd = core::etcd;

constexpr const char* kEtcd = "/usr/bin/etcd";
constexpr const char* kEtcdctl = "/usr/bin/etcdctl";
constexpr const char* kOpenssl = "/usr/bin/openssl";
constexpr const char* kPassword = "loop-test-root-password";

// A loopback port that nothing listens on right now (bound, read, closed).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return 0;
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Starts `argv` with its output (stdout and stderr) appended to `log`; returns its pid, or -1.
pid_t spawn(std::vector<std::string> argv, const std::string& log) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Runs a program to its end with its output in `log`; returns its exit status (-1: not run).
int run(std::vector<std::string> argv, const std::string& log) {
  const pid_t pid = spawn(std::move(argv), log);
  if (pid < 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// One etcd member of its own cluster, on free loopback ports, its data in a temporary directory.
class EtcdServer {
 public:
  ~EtcdServer() { stop(); }

  // Starts etcd; `extra` are more flags. With `tls`, the clients' port speaks https with a
  // certificate of a private CA and asks every client for a certificate of the same CA
  // (--client-cert-auth). Returns "" or what went wrong.
  std::string start(std::vector<std::string> extra = {}, bool tls = false) {
    std::string pattern = (std::filesystem::temp_directory_path() / "etcd-client-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return "mkdtemp failed";
    dir_ = pattern;
    client_port_ = free_port();
    const int peer_port = free_port();
    if (tls) {
      if (std::string made = make_certificates(); !made.empty()) return made;
      scheme_ = "https";
      for (std::string flag : {"--cert-file=" + dir_ + "/server.pem", "--key-file=" + dir_ + "/server.key",
                               "--trusted-ca-file=" + dir_ + "/ca.pem", std::string("--client-cert-auth")}) {
        extra.push_back(std::move(flag));
      }
    }
    const std::string client = scheme_ + "://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    std::vector<std::string> argv = {kEtcd,
                                     "--name=m1",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=m1=" + peer,
                                     "--logger=zap",
                                     "--log-outputs=" + dir_ + "/etcd.log",
                                     "--log-level=warn"};
    for (std::string& flag : extra) argv.push_back(std::move(flag));
    // A fresh directory: the output file is new, so appending is writing it from the start.
    const std::string out = dir_ + "/etcd.out";
    pid_ = spawn(std::move(argv), out);
    if (pid_ < 0) {
      pid_ = 0;
      return "cannot start etcd";
    }
    // Ready once the client port accepts: a single member is its own leader at once.
    const auto deadline = std::chrono::steady_clock::now() + 8s;
    while (std::chrono::steady_clock::now() < deadline) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      address.sin_port = htons(static_cast<std::uint16_t>(client_port_));
      const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
      ::close(fd);
      if (up) return "";
      std::this_thread::sleep_for(20ms);
    }
    return "etcd did not listen within 8 s: " + read_file(out) + read_file(dir_ + "/etcd.log");
  }

  // Adds the root user and turns auth on (etcdctl, the v3 API).
  std::string enable_auth() {
    const std::string log = dir_ + "/etcdctl.out";
    const std::string endpoints = "--endpoints=" + endpoint();
    if (run({kEtcdctl, endpoints, "user", "add", std::string("root:") + kPassword}, log) != 0 ||
        run({kEtcdctl, endpoints, "auth", "enable"}, log) != 0)
      return "etcdctl failed: " + read_file(log);
    return "";
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = 0;
    }
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
      dir_.clear();
    }
  }

  std::string endpoint() const { return scheme_ + "://127.0.0.1:" + std::to_string(client_port_); }
  // The private CA, and a client certificate and key it signed (with start(..., true)).
  std::string file(const char* name) const { return dir_ + "/" + name; }

 private:
  // A CA, a server certificate for 127.0.0.1 and a client certificate, with Debian's openssl.
  std::string make_certificates() {
    const std::string log = dir_ + "/openssl.out";
    const std::string key = "ec";
    const std::string curve = "ec_paramgen_curve:prime256v1";
    auto in_dir = [this](const char* name) { return dir_ + "/" + name; };
    {
      // etcd 3.4's JSON gateway calls its own gRPC port with the server certificate as its client
      // certificate: with --client-cert-auth that certificate must allow clientAuth too (with
      // serverAuth alone every call through the gateway answers 503 "failed to write client preface").
      std::ofstream extensions(in_dir("server.ext"));
      extensions << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n";
      std::ofstream client_extensions(in_dir("client.ext"));
      client_extensions << "extendedKeyUsage=clientAuth\n";
    }
    const std::vector<std::vector<std::string>> steps = {
        {kOpenssl, "req", "-x509", "-newkey", key, "-pkeyopt", curve, "-nodes", "-keyout", in_dir("ca.key"),
         "-out", in_dir("ca.pem"), "-days", "2", "-subj", "/CN=unshelver-test-ca"},
        {kOpenssl, "req", "-newkey", key, "-pkeyopt", curve, "-nodes", "-keyout", in_dir("server.key"),
         "-out", in_dir("server.csr"), "-subj", "/CN=127.0.0.1"},
        {kOpenssl, "x509", "-req", "-in", in_dir("server.csr"), "-CA", in_dir("ca.pem"), "-CAkey",
         in_dir("ca.key"), "-CAcreateserial", "-out", in_dir("server.pem"), "-days", "2", "-extfile",
         in_dir("server.ext")},
        {kOpenssl, "req", "-newkey", key, "-pkeyopt", curve, "-nodes", "-keyout", in_dir("client.key"),
         "-out", in_dir("client.csr"), "-subj", "/CN=unshelver"},
        {kOpenssl, "x509", "-req", "-in", in_dir("client.csr"), "-CA", in_dir("ca.pem"), "-CAkey",
         in_dir("ca.key"), "-CAcreateserial", "-out", in_dir("client.pem"), "-days", "2", "-extfile",
         in_dir("client.ext")},
    };
    for (const auto& step : steps) {
      if (run(step, log) != 0) return "openssl failed: " + read_file(log);
    }
    return "";
  }

  std::string scheme_ = "http";
  pid_t pid_ = 0;
  int client_port_ = 0;
  std::string dir_;
};

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Before any thread of the test exists: a proxy from the environment must not catch loopback.
    ::setenv("no_proxy", "127.0.0.1", 1);  // NOLINT(concurrency-mt-unsafe)
    ASSERT_EQ(0, uv_loop_init(&loop_));
    http_ = std::make_unique<HttpClient>(&loop_);
    previous_logger_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "etcd-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_)));
  }

  void TearDown() override {
    for (auto& client : clients_) client->close();
    clients_.clear();
    http_->close();
    http_.reset();
    for (auto& server : servers_) {
      for (Responder& held : server->held) held.drop();
      server->http.shutdown([] {});
    }
    testing::drain_and_close_loop(&loop_);
    servers_.clear();
    etcd_.stop();
    spdlog::set_default_logger(previous_logger_);
    EXPECT_EQ(std::string::npos, log_.str().find(kPassword)) << log_.str();
  }

  void start_etcd(std::vector<std::string> extra = {}, bool tls = false) {
    UNSHELVER_REQUIRE_PEER(kEtcd);
    const std::string error = etcd_.start(std::move(extra), tls);
    ASSERT_EQ(error, "");
    started_ = true;
  }

  EtcdClient& client(std::vector<std::string> endpoints, std::string username = "", std::string password = "",
                     std::chrono::milliseconds timeout = 2000ms) {
    EtcdSettings settings;
    settings.endpoints = std::move(endpoints);
    settings.request_timeout = timeout;
    settings.username = std::move(username);
    settings.password = std::move(password);
    return client_with(std::move(settings));
  }
  EtcdClient& client_with(EtcdSettings settings) {
    clients_.push_back(std::make_unique<EtcdClient>(*http_, std::move(settings)));
    return *clients_.back();
  }

  // Runs one call to its end: `call` gets the callback to pass on.
  template <typename T>
  T wait(const std::function<void(std::function<void(T)>)>& call) {
    std::optional<T> result;
    call([&result](T value) { result.emplace(std::move(value)); });
    EXPECT_FALSE(result.has_value()) << "the callback ran inside the call";
    EXPECT_TRUE(testing::run_loop_until(
        &loop_, [&] { return result.has_value(); }, 8s));
    if (!result) return T(Error{"no answer"});
    return std::move(*result);
  }

  Result<etcd::Lease> grant(EtcdClient& c, std::int64_t ttl) {
    return wait<Result<etcd::Lease>>([&](auto done) { c.grant(ttl, std::move(done)); });
  }
  Result<std::optional<std::int64_t>> keepalive(EtcdClient& c, std::int64_t lease) {
    return wait<Result<std::optional<std::int64_t>>>([&](auto done) { c.keepalive(lease, std::move(done)); });
  }
  Status revoke(EtcdClient& c, std::int64_t lease) {
    return wait<Status>([&](auto done) { c.revoke(lease, std::move(done)); });
  }
  Result<etcd::TxnResult> txn(EtcdClient& c, const etcd::Txn& t) {
    return wait<Result<etcd::TxnResult>>([&](auto done) { c.txn(t, std::move(done)); });
  }
  Result<etcd::RangeResult> range(EtcdClient& c, const etcd::Range& r) {
    return wait<Result<etcd::RangeResult>>([&](auto done) { c.range(r, std::move(done)); });
  }

  static etcd::Txn campaign(const std::string& key, const std::string& me, std::int64_t lease) {
    etcd::Txn t;
    t.compare.push_back({key, etcd::CompareTarget::kCreate, etcd::CompareResult::kEqual, 0, ""});
    t.success.emplace_back(etcd::Put{key, me, lease});
    t.failure.emplace_back(etcd::Range{key, false});
    return t;
  }

  // A fake etcd endpoint: answers from `script` (then 200 "{}"), or holds every request.
  struct FakeEndpoint {
    FakeEndpoint(uv_loop_t* loop, core::HttpLimits limits)
        : http(loop, limits, [this](const HttpRequest& request, Responder responder) {
            targets.push_back(request.target);
            const std::string* auth = request.header("Authorization");
            authorizations.push_back(auth != nullptr ? *auth : "");
            if (hold) {
              held.push_back(std::move(responder));
              return;
            }
            HttpResponse response = HttpResponse::json(200, "{}");
            if (!script.empty()) {
              response = std::move(script.front());
              script.erase(script.begin());
            }
            responder.respond(std::move(response));
          }) {}
    std::string url() const { return "http://127.0.0.1:" + std::to_string(http.port()); }
    HttpServer http;
    std::vector<HttpResponse> script;
    std::vector<std::string> targets;
    std::vector<std::string> authorizations;
    bool hold = false;
    std::vector<Responder> held;
  };

  FakeEndpoint& fake() {
    core::HttpLimits limits;
    limits.shutdown_grace = 100ms;
    servers_.push_back(std::make_unique<FakeEndpoint>(&loop_, limits));
    EXPECT_TRUE(servers_.back()->http.listen("127.0.0.1", 0).ok());
    return *servers_.back();
  }

  uv_loop_t loop_{};
  std::unique_ptr<HttpClient> http_;
  std::vector<std::unique_ptr<EtcdClient>> clients_;
  std::vector<std::unique_ptr<FakeEndpoint>> servers_;
  EtcdServer etcd_;
  bool started_ = false;
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

// --- against a real etcd ---------------------------------------------------------------------------

TEST_F(EtcdClientTest, GrantsKeepsAliveAndRevokesALease) {
  start_etcd();
  EtcdClient& c = client({etcd_.endpoint()});
  auto lease = grant(c, 15);
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_NE(lease->id, 0);
  EXPECT_EQ(lease->ttl_seconds, 15);
  auto ttl = keepalive(c, lease->id);
  ASSERT_TRUE(ttl) << ttl.error().message;
  ASSERT_TRUE(ttl->has_value());
  EXPECT_EQ(**ttl, 15);
  auto revoked = revoke(c, lease->id);
  ASSERT_TRUE(revoked) << revoked.error().message;
  // etcd no longer knows the lease: the keepalive answer has no TTL.
  auto gone = keepalive(c, lease->id);
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_FALSE(gone->has_value());
  // Revoking it again is a 404 with etcd's message, final.
  auto again = revoke(c, lease->id);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("etcdserver: requested lease not found (code 5)"), std::string::npos)
      << again.error().message;
  EXPECT_NE(again.error().message.find("HTTP 404"), std::string::npos) << again.error().message;
  EXPECT_EQ(c.health().calls, 5U);
  EXPECT_EQ(c.health().failures, 1U);
  EXPECT_TRUE(c.health().reachable);
  EXPECT_EQ(c.health().endpoint, etcd_.endpoint());
}

TEST_F(EtcdClientTest, ACampaignIsWonByOneAndLostByTheOther) {
  start_etcd();
  EtcdClient& a = client({etcd_.endpoint()});
  EtcdClient& b = client({etcd_.endpoint()});
  auto lease_a = grant(a, 15);
  auto lease_b = grant(b, 15);
  ASSERT_TRUE(lease_a && lease_b);
  const std::string key = "unshelver/gpu1/leader";
  auto won = txn(a, campaign(key, "node-a", lease_a->id));
  ASSERT_TRUE(won) << won.error().message;
  EXPECT_TRUE(won->succeeded);
  ASSERT_EQ(won->responses.size(), 1U);
  EXPECT_EQ(won->responses[0].kind, etcd::OpResult::Kind::kPut);
  auto lost = txn(b, campaign(key, "node-b", lease_b->id));
  ASSERT_TRUE(lost) << lost.error().message;
  EXPECT_FALSE(lost->succeeded);
  ASSERT_EQ(lost->responses.size(), 1U);
  ASSERT_EQ(lost->responses[0].kvs.size(), 1U);
  const etcd::KeyValue& holder = lost->responses[0].kvs[0];
  EXPECT_EQ(holder.value, "node-a");
  EXPECT_EQ(holder.lease, lease_a->id);
  // The winner's header revision is its put's revision: the fencing token.
  EXPECT_EQ(holder.create_revision, won->revision);
  EXPECT_EQ(holder.mod_revision, won->revision);
}

TEST_F(EtcdClientTest, AFencedWriteIsRefusedOnceTheLeaseIsRevoked) {
  start_etcd();
  EtcdClient& c = client({etcd_.endpoint()});
  auto lease = grant(c, 15);
  ASSERT_TRUE(lease);
  const std::string key = "unshelver/gpu1/leader";
  auto won = txn(c, campaign(key, "node-a", lease->id));
  ASSERT_TRUE(won && won->succeeded);
  const std::int64_t token = won->revision;
  etcd::Txn fenced;
  fenced.compare.push_back({key, etcd::CompareTarget::kCreate, etcd::CompareResult::kEqual, token, ""});
  fenced.compare.push_back({key, etcd::CompareTarget::kValue, etcd::CompareResult::kEqual, 0, "node-a"});
  fenced.success.emplace_back(etcd::Put{"unshelver/gpu1/state", "SHELVING", 0});
  auto first = txn(c, fenced);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first->succeeded);
  ASSERT_TRUE(revoke(c, lease->id));
  auto refused = txn(c, fenced);
  ASSERT_TRUE(refused) << refused.error().message;
  EXPECT_FALSE(refused->succeeded);
  EXPECT_TRUE(refused->responses.empty());
  auto state = range(c, {"unshelver/gpu1/state", false});
  ASSERT_TRUE(state);
  ASSERT_EQ(state->kvs.size(), 1U);
  EXPECT_EQ(state->kvs[0].value, "SHELVING");
  EXPECT_EQ(state->kvs[0].version, 1);  // written once, by the first fenced txn only
}

TEST_F(EtcdClientTest, RangeWithAPrefixFindsExactlyItsKeys) {
  start_etcd();
  EtcdClient& c = client({etcd_.endpoint()});
  etcd::Txn puts;
  for (const char* key : {"p/b", "p/a", "p/c\xff", "p0", "o"})
    puts.success.emplace_back(etcd::Put{key, key, 0});
  puts.success.emplace_back(etcd::DeleteRange{"nothing/", true});
  auto written = txn(c, puts);
  ASSERT_TRUE(written) << written.error().message;
  EXPECT_TRUE(written->succeeded);  // no compare: success
  ASSERT_EQ(written->responses.size(), 6U);
  EXPECT_EQ(written->responses[5].kind, etcd::OpResult::Kind::kDelete);
  EXPECT_EQ(written->responses[5].deleted, 0);
  auto found = range(c, {"p/", true});
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->kvs.size(), 3U);
  EXPECT_EQ(found->kvs[0].key, "p/a");
  EXPECT_EQ(found->kvs[1].key, "p/b");
  EXPECT_EQ(found->kvs[2].key, "p/c\xff");
  EXPECT_EQ(found->kvs[2].value, "p/c\xff");
  EXPECT_EQ(found->revision, written->revision);
  auto all = range(c, {"", true});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->kvs.size(), 5U);
  auto none = range(c, {"q/", true});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->kvs.empty());
}

TEST_F(EtcdClientTest, FailsOverFromADeadPortAndStaysOnTheLiveEndpoint) {
  start_etcd();
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  EtcdClient& c = client({dead, etcd_.endpoint()});
  auto lease = grant(c, 15);
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(c.health().endpoint, etcd_.endpoint());
  EXPECT_TRUE(c.health().reachable);
  EXPECT_EQ(c.health().last_error, "");
  EXPECT_TRUE(c.health().last_success.has_value());
  EXPECT_NE(log_.str().find("trying " + etcd_.endpoint()), std::string::npos) << log_.str();
  // The next call starts at the endpoint that answered: no second warning.
  log_.str("");
  ASSERT_TRUE(keepalive(c, lease->id));
  EXPECT_EQ(log_.str(), "");

  // With every endpoint dead, the error names each one and what happened there.
  etcd_.stop();
  auto failed = keepalive(c, lease->id);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("no endpoint answered"), std::string::npos);
  EXPECT_NE(failed.error().message.find(dead + ": "), std::string::npos) << failed.error().message;
  EXPECT_NE(failed.error().message.find(etcd_.endpoint() + ": "), std::string::npos)
      << failed.error().message;
  EXPECT_FALSE(c.health().reachable);
  EXPECT_EQ(c.health().failures, 1U);
}

TEST_F(EtcdClientTest, AWrongPasswordIsAClearErrorWithoutThePassword) {
  start_etcd();
  ASSERT_EQ(etcd_.enable_auth(), "");
  const std::string wrong = "wrong-password-never-shown";
  EtcdClient& bad = client({etcd_.endpoint()}, "root", wrong);
  // Two calls wait for the same authentication and fail with its reason.
  std::optional<Result<etcd::RangeResult>> first;
  bad.range({"k", false}, [&](Result<etcd::RangeResult> r) { first.emplace(std::move(r)); });
  auto second = range(bad, {"k", false});
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return first.has_value(); }, 5s));
  ASSERT_FALSE(second);
  ASSERT_FALSE(*first);
  const std::string& message = second.error().message;
  EXPECT_NE(message.find("etcdserver: authentication failed, invalid user ID or password"), std::string::npos)
      << message;
  EXPECT_EQ(message.find(wrong), std::string::npos);
  EXPECT_EQ(bad.health().last_error.find(wrong), std::string::npos);
  EXPECT_EQ(bad.health().failures, 2U);
  EXPECT_EQ(log_.str().find(wrong), std::string::npos);

  // Without credentials, etcd refuses the read (a 4xx, final).
  EtcdClient& anonymous = client({etcd_.endpoint()});
  auto refused = range(anonymous, {"k", false});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("user name is empty"), std::string::npos) << refused.error().message;

  EtcdClient& good = client({etcd_.endpoint()}, "root", kPassword);
  auto lease = grant(good, 15);
  ASSERT_TRUE(lease) << lease.error().message;
  auto won = txn(good, campaign("unshelver/x/leader", "node-a", lease->id));
  ASSERT_TRUE(won) << won.error().message;
  EXPECT_TRUE(won->succeeded);
  EXPECT_EQ(good.health().last_error, "");
}

TEST_F(EtcdClientTest, AnExpiredTokenIsRenewedAndTheCallRetried) {
  // Simple tokens expire after --auth-token-ttl seconds without use (checked every second).
  start_etcd({"--auth-token-ttl=1"});
  ASSERT_EQ(etcd_.enable_auth(), "");
  EtcdClient& c = client({etcd_.endpoint()}, "root", kPassword);
  ASSERT_TRUE(range(c, {"k", false}));
  std::this_thread::sleep_for(2500ms);
  auto again = range(c, {"k", false});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(log_.str().find("refused the auth token"), std::string::npos) << log_.str();
  EXPECT_EQ(c.health().failures, 0U);
}

// --- against fake endpoints ------------------------------------------------------------------------

TEST_F(EtcdClientTest, SpeaksTlsWithAClientCertificateAndRefusesWithoutOne) {
  start_etcd({}, true);
  EtcdSettings settings;
  settings.endpoints = {etcd_.endpoint()};
  settings.ca_file = etcd_.file("ca.pem");
  settings.cert_file = etcd_.file("client.pem");
  settings.key_file = etcd_.file("client.key");
  EtcdClient& with_certificate = client_with(settings);
  Result<etcd::Lease> lease = grant(with_certificate, 10);
  ASSERT_TRUE(lease) << lease.error().message;
  Result<etcd::TxnResult> won = txn(with_certificate, campaign("tls/leader", "c1", lease->id));
  ASSERT_TRUE(won) << won.error().message;
  EXPECT_TRUE(won->succeeded);

  // etcd asks for a client certificate (--client-cert-auth): without one the handshake fails.
  settings.cert_file.clear();
  settings.key_file.clear();
  EtcdClient& without_certificate = client_with(settings);
  Result<etcd::Lease> refused = grant(without_certificate, 10);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find(etcd_.endpoint()), std::string::npos) << refused.error().message;
  EXPECT_FALSE(without_certificate.health().reachable);

  // A server certificate from a CA we were not given is not trusted.
  EtcdSettings untrusting;
  untrusting.endpoints = {etcd_.endpoint()};
  untrusting.cert_file = etcd_.file("client.pem");
  untrusting.key_file = etcd_.file("client.key");
  Result<etcd::Lease> untrusted = grant(client_with(untrusting), 10);
  ASSERT_FALSE(untrusted);
}

TEST_F(EtcdClientTest, A4xxIsFinalButA5xxFailsOver) {
  FakeEndpoint& first = fake();
  FakeEndpoint& second = fake();
  EtcdClient& c = client({first.url(), second.url() + "/"});
  first.script.push_back(HttpResponse::json(
      400,
      R"({"error":"etcdserver: too many operations in txn request","message":"etcdserver: too many operations in txn request","code":3})"));
  auto refused = range(c, {"k", false});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message,
            "etcd /v3/kv/range: " + first.url() +
                ": HTTP 400: etcdserver: too many operations in txn request (code 3)");
  EXPECT_TRUE(second.targets.empty());
  EXPECT_TRUE(c.health().reachable);

  first.script.push_back(HttpResponse::json(
      503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})"));
  second.script.push_back(HttpResponse::json(200, R"({"header":{"revision":"9"}})"));
  auto served = range(c, {"k", false});
  ASSERT_TRUE(served) << served.error().message;
  EXPECT_EQ(served->revision, 9);
  ASSERT_EQ(second.targets.size(), 1U);
  EXPECT_EQ(second.targets[0], "/v3/kv/range");
  EXPECT_EQ(c.health().endpoint, second.url());
  EXPECT_NE(log_.str().find("HTTP 503: etcdserver: no leader (code 14)"), std::string::npos) << log_.str();
  // An answer that is not etcd's JSON is a clear error too.
  second.script.push_back(HttpResponse::json(200, "<html>"));
  auto garbage = range(c, {"k", false});
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().message, "etcd range: the answer is not JSON");
  EXPECT_EQ(c.health().last_error, "etcd range: the answer is not JSON");
}

TEST_F(EtcdClientTest, AHungEndpointTimesOutAndTheNextOneServes) {
  FakeEndpoint& hung = fake();
  hung.hold = true;
  FakeEndpoint& good = fake();
  EtcdClient& c = client({hung.url(), good.url()}, "", "", 300ms);
  const auto began = std::chrono::steady_clock::now();
  auto served = range(c, {"k", false});
  ASSERT_TRUE(served) << served.error().message;
  EXPECT_GE(std::chrono::steady_clock::now() - began, 250ms);
  EXPECT_EQ(hung.targets.size(), 1U);

  EtcdClient& alone = client({hung.url()}, "", "", 300ms);
  auto failed = range(alone, {"k", false});
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("no endpoint answered (" + hung.url() + ": "), std::string::npos)
      << failed.error().message;
  EXPECT_NE(failed.error().message.find("Timeout"), std::string::npos) << failed.error().message;
}

TEST_F(EtcdClientTest, TheTokenGoesInTheAuthorizationHeaderAndIsRenewedOnce) {
  FakeEndpoint& server = fake();
  EtcdClient& c = client({server.url()}, "root", "pw");
  const std::string invalid =
      R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})";
  server.script.push_back(HttpResponse::json(200, R"({"token":"tok.1"})"));
  server.script.push_back(HttpResponse::json(401, invalid));
  server.script.push_back(HttpResponse::json(200, R"({"token":"tok.2"})"));
  server.script.push_back(HttpResponse::json(401, invalid));
  auto refused = range(c, {"k", false});
  ASSERT_FALSE(refused);  // renewed once, then etcd's word is final
  EXPECT_NE(refused.error().message.find("HTTP 401: etcdserver: invalid auth token (code 16)"),
            std::string::npos)
      << refused.error().message;
  const std::vector<std::string> targets = {"/v3/auth/authenticate", "/v3/kv/range", "/v3/auth/authenticate",
                                            "/v3/kv/range"};
  EXPECT_EQ(server.targets, targets);
  const std::vector<std::string> sent = {"", "tok.1", "", "tok.2"};
  EXPECT_EQ(server.authorizations, sent);
  EXPECT_EQ(refused.error().message.find("tok."), std::string::npos);
  EXPECT_EQ(c.health().last_error.find("tok."), std::string::npos);
}

TEST_F(EtcdClientTest, CloseCancelsEveryCallAndNoCallbackRuns) {
  FakeEndpoint& hung = fake();
  hung.hold = true;
  EtcdClient& c = client({hung.url()});
  int callbacks = 0;
  c.range({"k", false}, [&](const Result<etcd::RangeResult>&) { ++callbacks; });
  c.grant(15, [&](const Result<etcd::Lease>&) { ++callbacks; });
  ASSERT_TRUE(testing::run_loop_until(
      &loop_, [&] { return hung.held.size() == 2; }, 5s));
  c.close();
  c.revoke(1, [&](const Status&) { ++callbacks; });  // after close: ignored
  ASSERT_TRUE(testing::run_loop_until(
                  &loop_, [] { return false; }, 100ms) == false);
  EXPECT_EQ(callbacks, 0);
  EXPECT_EQ(http_->in_flight(), 0U);
}

TEST_F(EtcdClientTest, WithoutEndpointsACallFailsOnTheLoop) {
  EtcdClient& c = client({});
  auto failed = range(c, {"k", false});
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "etcd: no endpoint is configured");
}

}  // namespace
}  // namespace unshelver::io
