// Tests of the configuration parser: Python-unshelver compatibility, our extensions, precedence
// rules, secrets, and the messages users see (file, line, column, key, text).
#include "config/parser.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "config/checks.h"
#include "support/config_text.h"
#include "support/source_root.h"

namespace unshelver::core {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// Test data lives beside this file.
std::filesystem::path source_dir() {
  return test::source_root() / "tests/unit/config";
}
std::filesystem::path repo_dir() {
  return test::source_root();
}

using test::all_issues;
ParsedConfig parse(std::string yaml, std::map<std::string, std::string> env = {}, std::string secrets = "") {
  return test::parse_config_text(std::move(yaml), std::move(env), std::move(secrets));
}

// The first issue about `key`, or nullptr.
const ConfigIssue* issue_for(const ParsedConfig& parsed, const std::string& key) {
  for (const ConfigIssue& issue : parsed.issues) {
    if (issue.key == key) return &issue;
  }
  return nullptr;
}

// A small valid configuration on the simulated cloud, to which tests add keys.
constexpr const char* kSimButton = R"(buttons:
  - id: gpu
    provider: sim
)";

// A valid OpenStack configuration with password login.
constexpr const char* kOpenStackConfig = R"(openstack:
  auth_url: "https://keystone.example.org:5000/v3"
  username: "user"
  project_name: "project"
buttons:
  - id: gpu
    instance_name: gpu-vm
)";

// --- Compatibility with the Python unshelver -------------------------------------------------

TEST(ConfigParser, PythonFixtureLoadsWithZeroIssues) {
  const std::string yaml = test::read_text(source_dir() / "testdata/python_unshelver_config.yaml");
  ASSERT_FALSE(yaml.empty());
  const ParsedConfig parsed = parse(yaml);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const Config& config = parsed.config;

  EXPECT_EQ(config.source_path, "config.yaml");
  EXPECT_EQ(config.app.title, "OpenStack Unshelver");
  EXPECT_EQ(config.app.secret_key, "fixture-session-secret-0123456789");
  EXPECT_EQ(config.app.poll_interval, Millis(10'000));
  EXPECT_EQ(config.app.http_probe_timeout, Millis(5'000));
  EXPECT_EQ(config.app.http_probe_attempts, 18);
  EXPECT_EQ(config.app.control_token, "fixture-control-token-abcdef");
  EXPECT_EQ(config.app.manual_shelve_path, "/admin-shelve");
  EXPECT_EQ(config.app.unshelve_timeout, minutes(30));
  EXPECT_EQ(config.app.api_retry_attempts, 3);

  const OpenStackSettings& os = config.openstack;
  EXPECT_TRUE(os.configured);
  EXPECT_EQ(os.auth_url, "https://js2.jetstream-cloud.org:5000/v3/");
  EXPECT_EQ(os.application_credential_id, "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
  EXPECT_EQ(os.application_credential_secret, "fixture-application-credential-secret");
  EXPECT_EQ(os.region_name, "IU");
  EXPECT_EQ(os.interface, "public");
  EXPECT_TRUE(os.verify);
  EXPECT_EQ(os.user_domain_name, "Default");
  // Keys the Python unshelver passed through to openstacksdk are kept.
  EXPECT_EQ(os.extra.at("identity_api_version"), "3");
  EXPECT_EQ(os.extra.at("auth_type"), "v3applicationcredential");

  ASSERT_EQ(config.backends.size(), 1u);
  const BackendConfig& gpu = config.backends[0];
  EXPECT_EQ(gpu.name, "cosmosage");
  EXPECT_EQ(gpu.label, "Wake the Cosmosage chatbot");
  EXPECT_EQ(gpu.description, "Unshelve the GPU VM; the chat opens once llama-server answers.");
  EXPECT_EQ(gpu.instance_name, "cosmosage_70b");
  EXPECT_EQ(gpu.provider, ProviderKind::kOpenStack);
  EXPECT_EQ(gpu.public_base_url, "https://cosmosage.example-project.projects.jetstream-cloud.org");
  EXPECT_EQ(gpu.host, "cosmosage.example-project.projects.jetstream-cloud.org");
  EXPECT_EQ(gpu.preferred_networks, (std::vector<std::string>{"public", "auto_allocated_network"}));
  EXPECT_EQ(gpu.url_scheme, "http");
  EXPECT_EQ(gpu.port, 8080);
  EXPECT_EQ(gpu.health.path, "/health");
  EXPECT_EQ(gpu.launch_path, "/");
  // 18 probes of up to 5 s with 10 s between: the longest the Python controller waited.
  EXPECT_EQ(gpu.boot_timeout, Millis((18 * 5 + 17 * 10) * 1000));
  EXPECT_EQ(gpu.health.interval, Millis(10'000));
  EXPECT_EQ(gpu.health.timeout, Millis(5'000));
  EXPECT_FALSE(gpu.verify_tls);
  EXPECT_EQ(gpu.idle_timeout, minutes(120));
  EXPECT_EQ(gpu.upstream_label, "gpu-backend");
  EXPECT_EQ(gpu.unshelve_timeout, minutes(30));

  EXPECT_EQ(config.activity_log_path, "/var/log/caddy/gpu-access.log");
  EXPECT_EQ(config.idle_poll_interval, seconds(30));
  EXPECT_EQ(config.caddy_upstream_label, "gpu-backend");
  EXPECT_EQ(config.local_event_log, "/var/log/unshelver/events.jsonl");
  EXPECT_EQ(config.swift_event_container, std::optional<std::string>("cosmosage-unshelver-events"));
  EXPECT_EQ(config.swift_event_prefix, "unshelver-events");
  EXPECT_EQ(config.notification_email, "admin@example.org");
}

TEST(ConfigParser, PythonMainBranchConfigWithGithubSectionLoads) {
  // The shape of the `main` branch's example: GitHub OAuth and several buttons, no
  // public_base_url, password login.
  const ParsedConfig parsed = parse(R"(app:
  title: "OpenStack Unshelver"
  secret_key: "change-me-please-123456"
  poll_interval_seconds: 10
  http_probe_timeout: 5.0
  http_probe_attempts: 12
github:
  client_id: "id"
  client_secret: "secret"
  redirect_uri: "http://localhost:5001/auth/callback"
  organization: "org"
  scope:
    - read:user
    - read:org
openstack:
  auth_url: "https://openstack.example.com:5000/v3"
  username: "openstack-user"
  password: "openstack-password"
  project_name: "project"
  user_domain_name: "Default"
  project_domain_name: "Default"
  region_name: "RegionOne"
buttons:
  - id: "app-one"
    label: "Unshelve App One"
    instance_name: "app-one-instance"
    preferred_networks:
      - public
    url_scheme: "https"
    port: 443
    healthcheck_path: "health"
    verify_tls: false
  - id: "app-two"
    label: "Unshelve App Two"
    instance_name: "app-two-instance"
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  ASSERT_EQ(parsed.config.backends.size(), 2u);
  EXPECT_EQ(parsed.config.backends[0].health.path, "/health");  // normalised as in Python
  EXPECT_EQ(parsed.config.backends[0].url_scheme, "https");
  EXPECT_EQ(parsed.config.backends[1].name, "app-two");
  EXPECT_EQ(parsed.config.backends[1].idle_timeout, minutes(60));
  EXPECT_EQ(parsed.config.backends[1].upstream_label, "gpu");
  EXPECT_EQ(parsed.config.openstack.password, "openstack-password");
  EXPECT_FALSE(parsed.config.swift_event_container.has_value());
}

// --- The shipped examples --------------------------------------------------------------------

// The example says `env: production`, which needs strong secrets; a deployment keeps them in the
// environment or the secrets file.
void add_strong_secrets(ConfigInputs& in) {
  in.env["UNSHELVER_CONTROL_TOKEN"] = "k3J9xQ2mV7pL0sD4fG8hZ1cB6nM5tR2w";
  in.env["UNSHELVER_SECRET_KEY"] = "0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938";
}

TEST(ConfigParser, ExampleConfigLoadsWithZeroIssues) {
  ConfigInputs in;
  in.yaml_text = test::read_text(repo_dir() / "config/config.example.yaml");
  in.yaml_path = "config/config.example.yaml";
  add_strong_secrets(in);
  ASSERT_FALSE(in.yaml_text.empty());
  const ParsedConfig parsed = parse_config(in);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.backends.size(), 2u);
  EXPECT_EQ(parsed.config.openstack.cloud, "mycloud");
  EXPECT_EQ(secrets_file_of(in.yaml_text), "");
}

TEST(ConfigParser, ExampleSecretsFileLoadsWithZeroIssues) {
  ConfigInputs in;
  in.yaml_text = test::read_text(repo_dir() / "config/config.example.yaml");
  in.yaml_path = "config/config.example.yaml";
  in.secrets_text = test::read_text(repo_dir() / "config/secrets.example.ini");
  in.secrets_path = "config/secrets.example.ini";
  ASSERT_FALSE(in.secrets_text.empty());
  // In development the example secrets load (the values are read as written) ...
  in.yaml_text.replace(in.yaml_text.find("env: production"), 15, "env: development");
  const ParsedConfig parsed = parse_config(in);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  // ... in production each is refused by name, at its line of the secrets file, value unshown.
  ConfigInputs production = in;
  production.yaml_text.replace(production.yaml_text.find("env: development"), 16, "env: production");
  const std::string issues = all_issues(parse_config(production));
  EXPECT_NE(issues.find("config/secrets.example.ini:16: app.control_token: is the example value"),
            std::string::npos)
      << issues;
  EXPECT_NE(issues.find("app.secret_key: is the example value"), std::string::npos) << issues;
  EXPECT_NE(issues.find("openstack.password: is the example value"), std::string::npos) << issues;
  EXPECT_EQ(issues.find("replace-with"), std::string::npos) << issues;
  EXPECT_EQ(parsed.config.app.control_token, "replace-with-a-long-random-token");
  EXPECT_EQ(parsed.config.app.secret_key, "replace-with-another-long-random-value");
  EXPECT_EQ(parsed.config.openstack.password, "replace-with-the-openstack-password");
  EXPECT_EQ(parsed.config.openstack.application_credential_secret, "");
}

// Issue 15 §12: a secrets file that its group or others may read is refused in production; in
// development it loads (config/files.cc warns).
TEST(ConfigParser, ProductionRefusesASecretsFileOthersMayRead) {
  const std::string yaml = std::string("app:\n  env: production\nsecrets_file: secrets.ini\n") + kSimButton;
  const std::string secrets =
      "[app]\ncontrol_token = k3J9xQ2mV7pL0sD4fG8hZ1cB6nM5tR2w\nsecret_key = "
      "0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938\n";
  ConfigInputs in;
  in.yaml_text = yaml;
  in.yaml_path = "config.yaml";
  in.secrets_text = secrets;
  in.secrets_path = "secrets.ini";
  in.secrets_mode = 0600;
  ParsedConfig parsed = parse_config(in);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);

  in.secrets_mode = 0644;
  parsed = parse_config(in);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(all_issues(parsed).find("secrets.ini: the secrets file is readable by its group and others (mode "
                                    "0644); `chmod 600` it (app.env is production)"),
            std::string::npos)
      << all_issues(parsed);

  in.yaml_text.replace(in.yaml_text.find("env: production"), 15, "env: development");
  parsed = parse_config(in);
  EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
}

TEST(ConfigParser, DemoConfigLoadsWithZeroIssues) {
  const ParsedConfig parsed = parse(demo_config_yaml());
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const Config& config = parsed.config;
  EXPECT_EQ(config.listen, "127.0.0.1:5001");
  EXPECT_EQ(config.state_dir, ".unshelver-demo/state");
  ASSERT_EQ(config.backends.size(), 1u);
  const BackendConfig& gpu = config.backends[0];
  EXPECT_EQ(gpu.name, "gpu");
  EXPECT_EQ(gpu.label, "GPU chat (simulated)");
  EXPECT_EQ(gpu.provider, ProviderKind::kSim);
  EXPECT_EQ(gpu.sim.wake_duration, Millis(4'000));
  EXPECT_EQ(gpu.sim.boot_duration, Millis(2'000));
  EXPECT_EQ(gpu.sim.sleep_duration, Millis(3'000));
  EXPECT_EQ(gpu.idle_timeout, seconds(60));
  EXPECT_EQ(gpu.health.interval, Millis(500));
  EXPECT_EQ(gpu.health.successes_needed, 2);
  EXPECT_EQ(gpu.public_base_url, "");  // without Caddy in front, visitors go to the sim backend
  EXPECT_FALSE(config.caddy.manage);
  EXPECT_EQ(config.app.poll_interval, Millis(500));
  EXPECT_EQ(gpu.host, "chat.localhost");
  EXPECT_FALSE(config.openstack.configured);
}

// How often a settled backend is observed: six poll intervals and at least 30 s, unless
// app.settled_poll_interval_seconds says otherwise (down to 1 s).
TEST(ConfigParser, SettledPollIntervalDefaultsFromThePollIntervalAndCanBeSet) {
  auto settled = [](const std::string& app) {
    const ParsedConfig parsed = parse("app:\n" + app + kSimButton);
    EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
    return parsed.config.app.settled_poll_interval;
  };
  EXPECT_EQ(settled("  title: t\n"), Millis(60'000));
  EXPECT_EQ(settled("  poll_interval_seconds: 0.1\n"), Millis(30'000));
  EXPECT_EQ(settled("  poll_interval_seconds: 20\n"), Millis(120'000));
  EXPECT_EQ(settled("  poll_interval_seconds: 0.1\n  settled_poll_interval_seconds: 2.5\n"), Millis(2'500));
  EXPECT_EQ(settled("  settled_poll_interval_seconds: 600\n"), Millis(600'000));
  const ParsedConfig too_often =
      parse(std::string("app:\n  settled_poll_interval_seconds: 0.5\n") + kSimButton);
  const ConfigIssue* issue = issue_for(too_often, "app.settled_poll_interval_seconds");
  ASSERT_NE(issue, nullptr) << all_issues(too_often);
  EXPECT_EQ(issue->line, 2);
}

// scripts/demo runs `unshelver demo --caddy-port`: Caddy's routing is Unshelver's to manage, as in
// production (the gate, whose reserved prefix passes the waiting page's wake form to Unshelver,
// every method), never a static Caddyfile that lets only GET and HEAD through.
TEST(ConfigParser, DemoConfigBehindCaddyManagesItsRouting) {
  DemoSettings demo;
  demo.dir = "/tmp/a demo \"dir\"";  // quoted safely, whatever the path holds
  demo.caddy_port = 18080;
  demo.caddy_admin = "127.0.0.1:18081";
  const ParsedConfig parsed = parse(demo_config_yaml(demo));
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const Config& config = parsed.config;
  EXPECT_EQ(config.state_dir, demo.dir + "/state");
  EXPECT_TRUE(config.caddy.manage);
  EXPECT_EQ(config.caddy.admin, "http://127.0.0.1:18081");
  EXPECT_EQ(config.caddy.integration, CaddyIntegration::kFull);
  EXPECT_TRUE(config.caddy.template_path.empty());  // the built-in caddy/Caddyfile.template
  EXPECT_EQ(config.caddy.routing, RoutingMode::kGate);
  EXPECT_EQ(config.caddy.caddyfile, demo.dir + "/Caddyfile");
  EXPECT_EQ(config.caddy.launcher_url, "http://launcher.localhost:18080");
  EXPECT_EQ(config.caddy.bind, "127.0.0.1");
  EXPECT_EQ(config.caddy.http_port, 18080);
  EXPECT_FALSE(config.caddy.auto_https);
  EXPECT_EQ(config.activity_log_path, demo.dir + "/logs/access.log");
  ASSERT_EQ(config.backends.size(), 1u);
  EXPECT_EQ(config.backends[0].public_base_url, "http://chat.localhost:18080/");
  EXPECT_EQ(config.backends[0].routing, RoutingMode::kGate);
  EXPECT_TRUE(config.backends[0].wake_on_request);
}

// --- Messages: file, line, key ---------------------------------------------------------------

TEST(ConfigParser, WrongTypeNamesFileLineColumnAndKey) {
  const ParsedConfig parsed = parse(R"(buttons:
  - id: gpu
    provider: sim
  - id: other
    provider: sim
    port: abc
)");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  const ConfigIssue& issue = parsed.issues[0];
  EXPECT_EQ(issue.file, "config.yaml");
  EXPECT_EQ(issue.line, 6);
  EXPECT_EQ(issue.column, 11);
  EXPECT_EQ(issue.key, "buttons[1].port");
  EXPECT_EQ(issue.to_string(), "config.yaml:6:11: buttons[1].port: expected an integer, got \"abc\"");
}

TEST(ConfigParser, WrongTypesOfEveryKind) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(    verify_tls: maybe
    preferred_networks: public
    health: 5
    idle_timeout_seconds: [1, 2]
app:
  poll_interval_seconds: soon
)");
  EXPECT_NE(issue_for(parsed, "buttons[0].verify_tls"), nullptr) << all_issues(parsed);
  EXPECT_EQ(issue_for(parsed, "buttons[0].verify_tls")->message, "expected true or false, got \"maybe\"");
  EXPECT_EQ(issue_for(parsed, "buttons[0].preferred_networks")->message,
            "expected a list of strings, got \"public\"");
  EXPECT_EQ(issue_for(parsed, "buttons[0].health")->message, "expected a mapping, got \"5\"");
  EXPECT_EQ(issue_for(parsed, "buttons[0].idle_timeout_seconds")->message, "expected a number, got a list");
  EXPECT_EQ(issue_for(parsed, "app.poll_interval_seconds")->message, "expected a number, got \"soon\"");
}

TEST(ConfigParser, UnknownKeySuggestsTheNearestKnownKey) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(    instance_nmae: vm
idle_timout_minutes: 10
app:
  titel: "x"
)");
  ASSERT_EQ(parsed.issues.size(), 3u) << all_issues(parsed);
  EXPECT_EQ(issue_for(parsed, "buttons[0].instance_nmae")->message,
            "unknown key; did you mean \"instance_name\"?");
  EXPECT_EQ(issue_for(parsed, "buttons[0].instance_nmae")->line, 4);
  EXPECT_EQ(issue_for(parsed, "buttons[0].instance_nmae")->column, 5);
  EXPECT_EQ(issue_for(parsed, "idle_timout_minutes")->message,
            "unknown key; did you mean \"idle_timeout_minutes\"?");
  EXPECT_EQ(issue_for(parsed, "app.titel")->message, "unknown key; did you mean \"title\"?");
}

TEST(ConfigParser, UnknownKeyFarFromAnyKnownKeyHasNoSuggestion) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + "favourite_colour: blue\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].message, "unknown key");
  EXPECT_EQ(parsed.issues[0].line, 4);
}

TEST(ConfigParser, YamlSyntaxErrorNamesTheLine) {
  const ParsedConfig parsed = parse("buttons:\n  - id: gpu\n    label: a: b\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].file, "config.yaml");
  EXPECT_EQ(parsed.issues[0].line, 3);
  EXPECT_EQ(parsed.issues[0].to_string(), "config.yaml:3:13: YAML syntax error: illegal map value");

  const ParsedConfig unclosed = parse("app:\n  title: x\nbuttons: [a, b\nlisten: x\n");
  ASSERT_EQ(unclosed.issues.size(), 1u) << all_issues(unclosed);
  EXPECT_EQ(unclosed.issues[0].line, 4);

  const ParsedConfig bad_indent = parse("app:\n  title: a\n bad: b\n");
  ASSERT_EQ(bad_indent.issues.size(), 1u) << all_issues(bad_indent);
  EXPECT_EQ(bad_indent.issues[0].line, 3);
}

// yaml-cpp lets an unclosed quote run to the end of the file; the error points at the quote,
// not at a key that then seems to be missing.
TEST(ConfigParser, UnterminatedQuoteNamesItsLine) {
  for (const char* quoted : {"\"GPU chat", "'GPU chat"}) {
    const ParsedConfig parsed = parse(std::string("app:\n  title: ") + quoted + "\n" + kSimButton);
    ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
    EXPECT_EQ(parsed.issues[0].to_string(),
              "config.yaml:2:10: YAML syntax error: this quoted value is never closed (it runs to the end "
              "of the file)");
  }
  // Escaped quotes inside closed values are not mistaken for an open one.
  const ParsedConfig escaped = parse(std::string("app:\n  title: \"a \\\" b\"\n") + kSimButton);
  ASSERT_TRUE(escaped.ok()) << all_issues(escaped);
  EXPECT_EQ(escaped.config.app.title, "a \" b");
  const ParsedConfig doubled = parse(std::string("app:\n  title: 'it''s'\n") + kSimButton);
  ASSERT_TRUE(doubled.ok()) << all_issues(doubled);
  EXPECT_EQ(doubled.config.app.title, "it's");
}

TEST(ConfigParser, DuplicateYamlKeyIsAnIssue) {
  const ParsedConfig parsed = parse(std::string(kSimButton) +
                                    "listen: \"127.0.0.1:1\"\n"
                                    "listen: \"127.0.0.1:2\"\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "listen");
  EXPECT_EQ(parsed.issues[0].line, 5);
  EXPECT_EQ(parsed.issues[0].message, "duplicate key (first set on line 4)");
}

TEST(ConfigParser, AllIssuesAreCollectedInLineOrder) {
  const ParsedConfig parsed = parse(R"(log_level: loud
buttons:
  - provider: sim
  - id: b
    provider: sim
    port: 0
listen: nowhere
)");
  ASSERT_EQ(parsed.issues.size(), 4u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "log_level");
  EXPECT_EQ(parsed.issues[1].key, "buttons[0].id");
  EXPECT_EQ(parsed.issues[2].key, "buttons[1].port");
  EXPECT_EQ(parsed.issues[3].key, "listen");
}

TEST(ConfigParser, ToStringWithoutLineOrKey) {
  ConfigIssue issue{"<environment>", 0, 0, "OS_INTERFACE", "bad"};
  EXPECT_EQ(issue.to_string(), "<environment>: OS_INTERFACE: bad");
  ConfigIssue no_key{"config.yaml", 3, 0, "", "oops"};
  EXPECT_EQ(no_key.to_string(), "config.yaml:3: oops");
}

// --- Required keys and uniqueness ------------------------------------------------------------

TEST(ConfigParser, MissingIdNamesTheButtonsLine) {
  const ParsedConfig parsed = parse(R"(listen: "127.0.0.1:5001"
buttons:
  - label: "no id"
    provider: sim
)");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "buttons[0].id");
  EXPECT_EQ(parsed.issues[0].line, 3);
  EXPECT_EQ(parsed.issues[0].message, "missing required key `id`");
}

TEST(ConfigParser, InvalidIdIsAnIssue) {
  const ParsedConfig parsed = parse("buttons:\n  - id: \"gpu chat\"\n    provider: sim\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "buttons[0].id");
}

TEST(ConfigParser, RoutingIsInheritedFromCaddyAndOverriddenPerButton) {
  const ParsedConfig parsed = parse(R"(caddy:
  routing: switch
buttons:
  - id: gpu
    provider: sim
  - id: chat
    provider: sim
    routing: gate
    gate_down: open
    hold:
      max_seconds: 120
      max_requests: 8
      retry_after_seconds: 5
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(RoutingMode::kSwitch, parsed.config.backends[0].routing);
  EXPECT_EQ(RoutingMode::kGate, parsed.config.backends[1].routing);
  EXPECT_EQ(GateDown::kOpen, parsed.config.backends[1].gate_down);
  EXPECT_EQ(std::chrono::seconds(120), parsed.config.backends[1].hold.max_duration);
  EXPECT_EQ(8, parsed.config.backends[1].hold.max_requests);
  EXPECT_EQ(std::chrono::seconds(5), parsed.config.backends[1].hold.retry_after);
  // The default: every backend behind the gate, failing closed.
  const ParsedConfig defaults = parse("buttons:\n  - id: gpu\n    provider: sim\n");
  EXPECT_EQ(RoutingMode::kGate, defaults.config.backends[0].routing);
  EXPECT_EQ(GateDown::kClosed, defaults.config.backends[0].gate_down);
}

TEST(ConfigParser, RetryAfterOfAHoldIsAtMostSixtySeconds) {
  const ParsedConfig parsed =
      parse("buttons:\n  - id: gpu\n    provider: sim\n    hold:\n      retry_after_seconds: 61\n");
  ASSERT_NE(nullptr, issue_for(parsed, "buttons[0].hold.retry_after_seconds")) << all_issues(parsed);
}

TEST(ConfigParser, ApiKeysAreDigestsAndAPastedKeyIsNeverShown) {
  const std::string digest(64, 'A');
  const ParsedConfig parsed =
      parse("buttons:\n  - id: gpu\n    provider: sim\n    api_keys: [\"sha256:" + digest + "\"]\n");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(std::vector<std::string>{std::string(64, 'a')}, parsed.config.backends[0].api_key_digests);

  const ParsedConfig pasted =
      parse("buttons:\n  - id: gpu\n    provider: sim\n    api_keys: [\"sk-live-1234567890abcdef\"]\n");
  const ConfigIssue* issue = issue_for(pasted, "buttons[0].api_keys[0]");
  ASSERT_NE(nullptr, issue) << all_issues(pasted);
  EXPECT_EQ(4, issue->line);
  EXPECT_EQ(std::string::npos, all_issues(pasted).find("sk-live")) << all_issues(pasted);
  EXPECT_NE(std::string::npos, issue->message.find("hash-key"));
}

TEST(ConfigParser, DuplicateIdIsAnIssue) {
  const ParsedConfig parsed = parse(R"(buttons:
  - id: gpu
    provider: sim
  - id: gpu
    provider: sim
)");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "buttons[1].id");
  EXPECT_EQ(parsed.issues[0].line, 4);
  EXPECT_EQ(parsed.issues[0].message, "duplicate button id \"gpu\" (also used by buttons[0] on line 2)");
}

TEST(ConfigParser, DuplicateInstanceAndHostAreIssues) {
  const ParsedConfig parsed =
      parse(std::string(kOpenStackConfig) + R"(    public_base_url: "https://a.example.org"
  - id: gpu2
    instance_name: gpu-vm
    host: a.example.org
)",
            {{"OS_PASSWORD", "pw"}});
  ASSERT_EQ(parsed.issues.size(), 2u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "buttons[1].instance_name");
  EXPECT_EQ(parsed.issues[1].key, "buttons[1].host");
}

TEST(ConfigParser, AtLeastOneButtonIsRequired) {
  ParsedConfig parsed = parse("listen: \"127.0.0.1:5001\"\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "buttons");
  EXPECT_EQ(parsed.issues[0].line, 1);

  parsed = parse("buttons: []\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "buttons");

  parsed = parse("");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "buttons");

  parsed = parse("- just\n- a list\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].line, 1);
}

TEST(ConfigParser, InstanceIsRequiredForOpenStackOnly) {
  ParsedConfig parsed = parse(R"(openstack:
  cloud: mycloud
buttons:
  - id: gpu
)");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "buttons[0].instance_name");
  EXPECT_EQ(parsed.issues[0].line, 4);

  parsed = parse("openstack:\n  cloud: mycloud\nbuttons:\n  - id: gpu\n    instance_id: abc\n");
  EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.backends[0].instance_id, "abc");

  EXPECT_TRUE(parse(kSimButton).ok());
}

TEST(ConfigParser, OpenStackSectionIsRequiredWhenAButtonUsesIt) {
  ParsedConfig parsed = parse("buttons:\n  - id: gpu\n    instance_name: vm\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "openstack");
  EXPECT_EQ(parsed.issues[0].line, 2);

  // OS_AUTH_URL and friends in the environment are enough.
  parsed = parse("buttons:\n  - id: gpu\n    instance_name: vm\n",
                 {{"OS_AUTH_URL", "https://keystone.example.org/v3"},
                  {"OS_USERNAME", "u"},
                  {"OS_PASSWORD", "p"},
                  {"OS_PROJECT_ID", "0123"}});
  EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_TRUE(parsed.config.openstack.configured);
  EXPECT_EQ(parsed.config.openstack.project_id, "0123");

  // So is OS_CLOUD, with no credentials at all.
  parsed = parse("buttons:\n  - id: gpu\n    instance_name: vm\n", {{"OS_CLOUD", "mycloud"}});
  EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.openstack.cloud, "mycloud");

  // The Swift mirror needs OpenStack too.
  parsed = parse(std::string(kSimButton) + "swift_event_container: events\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "openstack");
}

TEST(ConfigParser, CloudsYamlEntryNeedsNoCredentials) {
  const ParsedConfig parsed =
      parse("openstack:\n  cloud: jetstream2\nbuttons:\n  - id: gpu\n    instance_name: vm\n");
  EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.openstack.cloud, "jetstream2");
}

TEST(ConfigParser, MissingCredentialsAreNamed) {
  ParsedConfig parsed = parse(kOpenStackConfig);
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "openstack.password");
  EXPECT_EQ(parsed.issues[0].line, 2);

  parsed = parse(R"(openstack:
  auth_url: "https://keystone.example.org/v3"
  application_credential_id: "abc"
buttons:
  - id: gpu
    instance_name: vm
)");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "openstack.application_credential_secret");

  parsed = parse(R"(openstack:
  username: u
  password: p
  project_name: x
buttons:
  - id: gpu
    instance_name: vm
)");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "openstack.auth_url");
}

TEST(ConfigParser, OpenStackExtrasAreKeptButNearMissesAreTypos) {
  ParsedConfig parsed = parse(std::string(kOpenStackConfig) + R"(    provider: openstack
)",
                              {{"OS_PASSWORD", "pw"}});
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);

  parsed = parse(R"(openstack:
  cloud: c
  project_domain_id: default
  auth_type: password
  pasword: hunter2-hunter2
  options: {a: 1}
buttons:
  - id: gpu
    instance_name: vm
)");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "openstack.pasword");
  EXPECT_NE(parsed.issues[0].message.find("did you mean \"password\""), std::string::npos);
  EXPECT_EQ(parsed.issues[0].to_string().find("hunter2"), std::string::npos);
  EXPECT_EQ(parsed.config.openstack.extra.at("project_domain_id"), "default");
  EXPECT_EQ(parsed.config.openstack.extra.at("auth_type"), "password");
  EXPECT_EQ(parsed.config.openstack.extra.at("options"), "{a: 1}");
}

TEST(ConfigParser, OpenStackVerifyMayNameACaBundleAndInterfaceIsNormalised) {
  const ParsedConfig parsed = parse(R"(openstack:
  cloud: c
  verify: /etc/ssl/my-ca.pem
  interface: internalURL
)" + std::string(kSimButton));
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_TRUE(parsed.config.openstack.verify);
  EXPECT_EQ(parsed.config.openstack.cacert, "/etc/ssl/my-ca.pem");
  EXPECT_EQ(parsed.config.openstack.interface, "internal");

  const ParsedConfig off = parse("openstack:\n  cloud: c\n  verify: false\n" + std::string(kSimButton));
  ASSERT_TRUE(off.ok()) << all_issues(off);
  EXPECT_FALSE(off.config.openstack.verify);
}

// --- Secrets ---------------------------------------------------------------------------------

constexpr const char* kSecretsYaml = R"(app:
  control_token: "yaml-control-token-0001"
  secret_key: "yaml-secret-key-00000001"
openstack:
  auth_url: "https://keystone.example.org/v3"
  username: u
  project_name: p
  password: "yaml-password"
  application_credential_id: ""
buttons:
  - id: gpu
    instance_name: vm
)";

TEST(ConfigParser, SecretsComeFromYamlThenIniThenEnvironment) {
  ParsedConfig parsed = parse(kSecretsYaml);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.app.control_token, "yaml-control-token-0001");
  EXPECT_EQ(parsed.config.app.secret_key, "yaml-secret-key-00000001");
  EXPECT_EQ(parsed.config.openstack.password, "yaml-password");

  const std::string ini = R"(; comment
[app]
control_token = ini-control-token-00002
secret_key = "ini-secret-key-000000002"

[openstack]
password = ini-password
application_credential_secret = ini-app-secret
)";
  parsed = parse(kSecretsYaml, {}, ini);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.app.control_token, "ini-control-token-00002");
  EXPECT_EQ(parsed.config.app.secret_key, "ini-secret-key-000000002");  // quotes removed
  EXPECT_EQ(parsed.config.openstack.password, "ini-password");
  EXPECT_EQ(parsed.config.openstack.application_credential_secret, "ini-app-secret");

  parsed = parse(kSecretsYaml,
                 {{"UNSHELVER_CONTROL_TOKEN", "env-control-token-000003"},
                  {"UNSHELVER_SECRET_KEY", "env-secret-key-000000003"},
                  {"UNSHELVER_OPENSTACK_PASSWORD", "env-password"},
                  {"UNSHELVER_OPENSTACK_APPLICATION_CREDENTIAL_SECRET", "env-app-secret"},
                  {"OS_PASSWORD", "os-password"}},
                 ini);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.app.control_token, "env-control-token-000003");
  EXPECT_EQ(parsed.config.app.secret_key, "env-secret-key-000000003");
  EXPECT_EQ(parsed.config.openstack.password, "env-password");
  EXPECT_EQ(parsed.config.openstack.application_credential_secret, "env-app-secret");

  // An empty INI value leaves the YAML's value in place.
  parsed = parse(kSecretsYaml, {}, "[openstack]\npassword =\n");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.openstack.password, "yaml-password");
}

TEST(ConfigParser, OsVariablesFillOnlyWhatTheYamlLeavesEmpty) {
  const ParsedConfig parsed = parse(kSecretsYaml, {{"OS_PASSWORD", "os-password"},
                                                   {"OS_USERNAME", "os-user"},
                                                   {"OS_REGION_NAME", "RegionTwo"},
                                                   {"OS_USER_DOMAIN_NAME", "users"},
                                                   {"OS_INTERFACE", "admin"},
                                                   {"OS_CACERT", "/ca.pem"}});
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const OpenStackSettings& os = parsed.config.openstack;
  EXPECT_EQ(os.password, "yaml-password");
  EXPECT_EQ(os.username, "u");
  EXPECT_EQ(os.region_name, "RegionTwo");
  EXPECT_EQ(os.user_domain_name, "users");
  EXPECT_EQ(os.project_domain_name, "Default");
  EXPECT_EQ(os.interface, "admin");
  EXPECT_EQ(os.cacert, "/ca.pem");

  // OS_PASSWORD fills a password that neither the YAML nor the secrets file gives, and loses to
  // the secrets file.
  EXPECT_EQ(parse(kOpenStackConfig, {{"OS_PASSWORD", "os-password"}}).config.openstack.password,
            "os-password");
  EXPECT_EQ(parse(kOpenStackConfig, {{"OS_PASSWORD", "os-password"}}, "[openstack]\npassword=ini\n")
                .config.openstack.password,
            "ini");

  const ParsedConfig bad = parse(kSecretsYaml, {{"OS_INTERFACE", "sideways"}});
  ASSERT_EQ(bad.issues.size(), 1u) << all_issues(bad);
  EXPECT_EQ(bad.issues[0].file, "<environment>");
  EXPECT_EQ(bad.issues[0].key, "OS_INTERFACE");
}

TEST(ConfigParser, ShortSecretsAreIssuesWithoutTheirValues) {
  // From the YAML.
  ParsedConfig parsed =
      parse("app:\n  control_token: tiny-yaml\n  secret_key: [x]\n" + std::string(kSimButton));
  ASSERT_EQ(parsed.issues.size(), 2u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "app.control_token");
  EXPECT_EQ(parsed.issues[0].line, 2);
  EXPECT_EQ(parsed.issues[0].message, "must be at least 16 characters long (the value is not shown)");
  EXPECT_EQ(parsed.issues[1].message, "expected a string, got a list");

  // From the secrets file.
  parsed = parse(kSimButton, {}, "[app]\n\ncontrol_token = tiny-ini\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].file, "secrets.ini");
  EXPECT_EQ(parsed.issues[0].line, 3);
  EXPECT_EQ(parsed.issues[0].key, "app.control_token");

  // From the environment.
  parsed = parse(kSimButton, {{"UNSHELVER_SECRET_KEY", "tiny-env"}});
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].file, "<environment>");
  EXPECT_EQ(parsed.issues[0].key, "UNSHELVER_SECRET_KEY");
}

TEST(ConfigParser, SecretValuesNeverAppearInMessages) {
  const std::vector<std::string> secrets = {"tiny-yaml",  "tiny-ini",         "tiny-env",
                                            "pw-in-yaml", "appsecret-in-ini", "syntaxsecret"};
  // Every way a secret can be wrong or unused, at once.
  const ParsedConfig parsed = parse(R"(app:
  control_token: tiny-yaml
openstack:
  auth_url: "https://keystone.example.org/v3"
  password: pw-in-yaml
  password: pw-in-yaml
buttons:
  - id: gpu
    instance_name: vm
)",
                                    {{"UNSHELVER_SECRET_KEY", "tiny-env"}},
                                    "[app]\ncontrol_token = tiny-ini\ncontrol_token = tiny-ini\n"
                                    "[openstack]\napplication_credential_secret = appsecret-in-ini\n"
                                    "syntaxsecret\n[nope]\nx = syntaxsecret\n");
  ASSERT_GE(parsed.issues.size(), 5u) << all_issues(parsed);
  const std::string text = all_issues(parsed);
  for (const std::string& secret : secrets) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " leaked in:\n" << text;
  }
}

TEST(ConfigParser, SecretsIniSyntaxErrorNamesFileAndLine) {
  const ParsedConfig parsed = parse(kSimButton, {},
                                    "[app]\ncontrol_token = long-enough-token-x\n"
                                    "this line has no equals sign\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].file, "secrets.ini");
  EXPECT_EQ(parsed.issues[0].line, 3);
  EXPECT_EQ(parsed.issues[0].to_string().rfind("secrets.ini:3: ", 0), 0u);
  EXPECT_EQ(parsed.config.app.control_token, "long-enough-token-x");
}

TEST(ConfigParser, SecretsIniUnknownKeysAndSections) {
  const ParsedConfig parsed = parse(kSimButton, {},
                                    "orphan = 1\n[app]\ncontrol_tokn = abcdefghijklmnopq\n"
                                    "[opnstack]\npassword = x\n");
  ASSERT_EQ(parsed.issues.size(), 3u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].line, 1);
  EXPECT_EQ(parsed.issues[0].key, "orphan");
  EXPECT_EQ(parsed.issues[1].line, 3);
  EXPECT_EQ(parsed.issues[1].message, "unknown key; did you mean \"control_token\"?");
  EXPECT_EQ(parsed.issues[2].line, 5);
  EXPECT_EQ(parsed.issues[2].message, "unknown section; did you mean \"openstack\"?");
}

TEST(ConfigParser, SecretsIniIndentedLineIsReported) {
  const ParsedConfig parsed = parse(kSimButton, {},
                                    "[app]\n  control_token = abcdefghijklmnopq\n"
                                    "  secret_key = abcdefghijklmnopq\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].line, 3);
  EXPECT_EQ(parsed.issues[0].key, "app.control_token");
}

TEST(ConfigParser, SecretsIniOverlongLineIsReported) {
  const ParsedConfig parsed = parse(kSimButton, {}, "[app]\ncontrol_token = " + std::string(300, 'x') + "\n");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].line, 2);
  EXPECT_EQ(parsed.issues[0].to_string().find("xxxx"), std::string::npos);
}

TEST(ConfigParser, SecretsFileOfReadsOnlyThePath) {
  EXPECT_EQ(secrets_file_of("secrets_file: /etc/unshelver/secrets.ini\nbogus: [1\n"), "");
  EXPECT_EQ(secrets_file_of("secrets_file: /etc/unshelver/secrets.ini\nbogus: 1\n"),
            "/etc/unshelver/secrets.ini");
  EXPECT_EQ(secrets_file_of("buttons: []\n"), "");
  EXPECT_EQ(secrets_file_of("- a\n"), "");
  EXPECT_EQ(secrets_file_of(""), "");
}

// --- Our extensions ----------------------------------------------------------------------------

TEST(ConfigParser, SimAndHealthKeys) {
  const ParsedConfig parsed = parse(R"(buttons:
  - id: sim1
    provider: sim
    on_error: retry
    error_retry_seconds: 42
    upstream: "10.0.0.5:8080"
    upstream_label: "sim-one"
    health:
      path: ready
      interval_seconds: 2
      timeout_seconds: 1
      successes_needed: 3
      failures_allowed: 4
      attempts: 0
    sim:
      wake_seconds: 1
      boot_seconds: 0
      sleep_seconds: 2.5
      fail_wakes: 2
      wake_failure_rate: 0.25
      failure_message: "No valid host"
      start_awake: yes
      backend_listen: "127.0.0.1:0"
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const BackendConfig& b = parsed.config.backends[0];
  EXPECT_EQ(b.provider, ProviderKind::kSim);
  EXPECT_EQ(b.on_error, ErrorPolicy::kRetry);
  EXPECT_EQ(b.error_retry_after, seconds(42));
  EXPECT_EQ(b.upstream, "10.0.0.5:8080");
  EXPECT_EQ(b.upstream_label, "sim-one");
  EXPECT_EQ(b.label, "sim1");  // defaults to the id
  EXPECT_EQ(b.health.path, "/ready");
  EXPECT_EQ(b.health.interval, Millis(2'000));
  EXPECT_EQ(b.health.timeout, Millis(1'000));
  EXPECT_EQ(b.health.successes_needed, 3);
  EXPECT_EQ(b.health.failures_allowed, 4);
  EXPECT_EQ(b.boot_timeout, b.unshelve_timeout);  // attempts: 0 meant until the unshelve timeout
  EXPECT_EQ(b.sim.wake_duration, Millis(1'000));
  EXPECT_EQ(b.sim.boot_duration, Millis(0));
  EXPECT_EQ(b.sim.sleep_duration, Millis(2'500));
  EXPECT_EQ(b.sim.fail_wakes, 2);
  EXPECT_DOUBLE_EQ(b.sim.wake_failure_rate, 0.25);
  EXPECT_EQ(b.sim.failure_message, "No valid host");
  EXPECT_TRUE(b.sim.start_awake);
  EXPECT_EQ(b.sim.backend_listen, "127.0.0.1:0");
}

TEST(ConfigParser, SimAndHealthRanges) {
  const ParsedConfig parsed = parse(R"(buttons:
  - id: sim1
    provider: sim
    health:
      interval_seconds: 0
      successes_needed: 0
      timeout: 3
    sim:
      wake_seconds: -1
      wake_failure_rate: 1.5
      backend_listen: "localhost"
)");
  ASSERT_EQ(parsed.issues.size(), 6u) << all_issues(parsed);
  EXPECT_EQ(issue_for(parsed, "buttons[0].health.interval_seconds")->message,
            "must be greater than 0, got 0");
  EXPECT_EQ(issue_for(parsed, "buttons[0].health.successes_needed")->message, "must be at least 1, got 0");
  EXPECT_EQ(issue_for(parsed, "buttons[0].health.timeout")->message,
            "unknown key; did you mean \"timeout_seconds\"?");
  EXPECT_EQ(issue_for(parsed, "buttons[0].sim.wake_seconds")->message, "must be at least 0, got -1");
  EXPECT_EQ(issue_for(parsed, "buttons[0].sim.wake_failure_rate")->message, "must be at most 1, got 1.5");
  EXPECT_NE(issue_for(parsed, "buttons[0].sim.backend_listen"), nullptr);
}

TEST(ConfigParser, FractionalSeconds) {
  const ParsedConfig parsed = parse(R"(app:
  poll_interval_seconds: 0.25
  http_probe_timeout: 0.1
http:
  header_timeout_seconds: 0.5
  shutdown_grace_seconds: 0
buttons:
  - id: fast
    provider: sim
    unshelve_timeout_minutes: 0.5
    health:
      interval_seconds: 0.05
    sim:
      wake_seconds: 0.2
      boot_seconds: 0.001
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const Config& c = parsed.config;
  EXPECT_EQ(c.app.poll_interval, Millis(250));
  EXPECT_EQ(c.app.http_probe_timeout, Millis(100));
  EXPECT_EQ(c.http.header_timeout, Millis(500));
  EXPECT_EQ(c.http.shutdown_grace, Millis(0));
  EXPECT_EQ(c.backends[0].unshelve_timeout, seconds(30));
  EXPECT_EQ(c.backends[0].health.interval, Millis(50));
  EXPECT_EQ(c.backends[0].health.timeout, Millis(100));  // from app.http_probe_timeout
  EXPECT_EQ(c.backends[0].sim.wake_duration, Millis(200));
  EXPECT_EQ(c.backends[0].sim.boot_duration, Millis(1));
}

TEST(ConfigParser, HealthPrecedence) {
  const ParsedConfig parsed = parse(R"(app:
  poll_interval_seconds: 7
  http_probe_timeout: 3
  http_probe_attempts: 9
buttons:
  - id: defaults
    provider: sim
  - id: python-keys
    provider: sim
    healthcheck_path: /old
    http_probe_interval_seconds: 4
    http_probe_attempts: 5
  - id: health-keys
    provider: sim
    healthcheck_path: /old
    http_probe_interval_seconds: 4
    http_probe_attempts: 5
    health:
      path: /new
      interval_seconds: 2
      timeout_seconds: 1
      attempts: 6
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const auto& b = parsed.config.backends;
  EXPECT_EQ(b[0].health.path, "/");
  EXPECT_EQ(b[0].health.interval, Millis(7'000));
  EXPECT_EQ(b[0].health.timeout, Millis(3'000));
  EXPECT_EQ(b[0].boot_timeout, Millis((9 * 3 + 8 * 7) * 1000));
  EXPECT_EQ(b[1].health.path, "/old");
  EXPECT_EQ(b[1].health.interval, Millis(4'000));
  EXPECT_EQ(b[1].health.timeout, Millis(3'000));
  EXPECT_EQ(b[1].boot_timeout, Millis((5 * 3 + 4 * 4) * 1000));
  EXPECT_EQ(b[2].health.path, "/new");
  EXPECT_EQ(b[2].health.interval, Millis(2'000));
  EXPECT_EQ(b[2].health.timeout, Millis(1'000));
  EXPECT_EQ(b[2].boot_timeout, Millis((6 * 1 + 5 * 2) * 1000));
}

// Issue 17: a boot's patience is a duration. With no attempts written it is ten minutes (at most
// the unshelve timeout), whatever the probe interval; boot_timeout_seconds wins over attempts.
TEST(ConfigParser, BootTimeoutAndDryRun) {
  const ParsedConfig parsed = parse(R"(app:
  http_probe_timeout: 3
buttons:
  - id: defaults
    provider: sim
    health:
      interval_seconds: 0.5
  - id: short-wake
    provider: sim
    unshelve_timeout_minutes: 4
  - id: written
    provider: sim
    http_probe_attempts: 5
    boot_timeout_seconds: 90.5
    dry_run: true
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const auto& b = parsed.config.backends;
  EXPECT_EQ(b[0].boot_timeout, Millis(600'000));
  EXPECT_FALSE(b[0].dry_run);
  EXPECT_EQ(b[1].boot_timeout, Millis(240'000));
  EXPECT_EQ(b[2].boot_timeout, Millis(90'500));
  EXPECT_TRUE(b[2].dry_run);
}

TEST(ConfigParser, IdleTimeoutPrecedence) {
  const auto idle_of = [](const std::string& top, const std::string& button) {
    const ParsedConfig parsed = parse(top + "buttons:\n  - id: gpu\n    provider: sim\n" + button);
    EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
    return parsed.ok() ? parsed.config.backends[0].idle_timeout : seconds(-1);
  };
  EXPECT_EQ(idle_of("", ""), minutes(60));
  EXPECT_EQ(idle_of("idle_timeout_minutes: 10\n", ""), minutes(10));
  EXPECT_EQ(idle_of("idle_timeout_minutes: 10\nidle_timeout_seconds: 2\n", ""), seconds(2));
  EXPECT_EQ(idle_of("idle_timeout_seconds: 2\n", "    idle_timeout_minutes: 6\n"), minutes(6));
  EXPECT_EQ(
      idle_of("idle_timeout_seconds: 2\n", "    idle_timeout_minutes: 6\n    idle_timeout_seconds: 1\n"),
      seconds(1));
}

TEST(ConfigParser, IdleMinimumsFollowThePythonRules) {
  const ParsedConfig parsed = parse(R"(idle_timeout_minutes: 4
idle_poll_interval_seconds: 4
idle_timeout_seconds: 0.5
buttons:
  - id: gpu
    provider: sim
    idle_timeout_minutes: 1
    idle_timeout_seconds: 0
)");
  ASSERT_EQ(parsed.issues.size(), 5u) << all_issues(parsed);
  EXPECT_EQ(issue_for(parsed, "idle_timeout_minutes")->message, "must be at least 5, got 4");
  EXPECT_EQ(issue_for(parsed, "idle_poll_interval_seconds")->message, "must be at least 5, got 4");
  EXPECT_EQ(issue_for(parsed, "idle_timeout_seconds")->message, "must be at least 1, got 0.5");
  EXPECT_NE(issue_for(parsed, "buttons[0].idle_timeout_minutes"), nullptr);
  EXPECT_NE(issue_for(parsed, "buttons[0].idle_timeout_seconds"), nullptr);
}

TEST(ConfigParser, UpstreamLabelAndUnshelveTimeoutPrecedence) {
  const ParsedConfig parsed = parse(R"(caddy_upstream_label: shared
app:
  unshelve_timeout_minutes: 20
buttons:
  - id: a
    provider: sim
  - id: b
    provider: sim
    upstream_label: own
    unshelve_timeout_minutes: 5
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.backends[0].upstream_label, "shared");
  EXPECT_EQ(parsed.config.backends[0].unshelve_timeout, minutes(20));
  EXPECT_EQ(parsed.config.backends[1].upstream_label, "own");
  EXPECT_EQ(parsed.config.backends[1].unshelve_timeout, minutes(5));
}

TEST(ConfigParser, HostComesFromPublicBaseUrlUnlessGiven) {
  const ParsedConfig parsed = parse(R"(buttons:
  - id: a
    provider: sim
    public_base_url: "https://User@Chat.Example.org:8443/path?q=1"
  - id: b
    provider: sim
    public_base_url: "https://b.example.org/"
    host: other.example.org
  - id: c
    provider: sim
    public_base_url: "http://[::1]:8080/"
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.backends[0].host, "chat.example.org");
  EXPECT_EQ(parsed.config.backends[1].host, "other.example.org");
  EXPECT_EQ(parsed.config.backends[2].host, "::1");

  const ParsedConfig bad = parse(R"(buttons:
  - id: a
    provider: sim
    public_base_url: "chat.example.org"
    host: "chat.example.org:8080"
)");
  ASSERT_EQ(bad.issues.size(), 2u) << all_issues(bad);
  EXPECT_EQ(bad.issues[0].key, "buttons[0].public_base_url");
  EXPECT_EQ(bad.issues[1].key, "buttons[0].host");
}

// base/url checks the port and what follows ']', which a looser splitter let through.
TEST(ConfigParser, UrlsAndAddressesWithBadPortsAreRejected) {
  const ParsedConfig parsed = parse(R"(buttons:
  - id: a
    provider: sim
    public_base_url: "http://chat.example.org:abc/"
listen: "127.0.0.1:000080"
caddy:
  launcher_url: "https://[::1]junk"
)");
  ASSERT_EQ(parsed.issues.size(), 3u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].to_string(),
            "config.yaml:4:22: buttons[0].public_base_url: expected an http:// or https:// URL with a host, "
            "got \"http://chat.example.org:abc/\"");
  EXPECT_EQ(parsed.issues[1].to_string(),
            "config.yaml:5:9: listen: expected HOST:PORT (for example \"127.0.0.1:8080\"), got "
            "\"127.0.0.1:000080\"");
  EXPECT_EQ(parsed.issues[2].to_string(),
            "config.yaml:7:17: caddy.launcher_url: expected a URL such as https://gpu.example.org, got "
            "\"https://[::1]junk\"");
}

TEST(ConfigParser, InvalidEnumValuesListTheAllowedOnes) {
  const ParsedConfig parsed = parse(R"(log_level: verbose
app:
  env: staging
buttons:
  - id: gpu
    provider: aws
    on_error: panic
    url_scheme: ftp
)");
  ASSERT_EQ(parsed.issues.size(), 5u) << all_issues(parsed);
  EXPECT_EQ(issue_for(parsed, "log_level")->message,
            "must be one of \"trace\", \"debug\", \"info\", \"warn\" or \"error\", got "
            "\"verbose\"");
  EXPECT_EQ(issue_for(parsed, "app.env")->message,
            "must be one of \"development\" or \"production\", got \"staging\"");
  EXPECT_EQ(issue_for(parsed, "buttons[0].provider")->message,
            "must be one of \"openstack\", \"sim\", \"exoscale\" or \"command\", got \"aws\"");
  EXPECT_EQ(issue_for(parsed, "buttons[0].on_error")->message,
            "must be one of \"wait\" or \"retry\", got \"panic\"");
  EXPECT_EQ(issue_for(parsed, "buttons[0].url_scheme")->message,
            "must be one of \"http\" or \"https\", got \"ftp\"");
}

TEST(ConfigParser, TopLevelExtensions) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(listen: "[::1]:6000"
state_dir: /tmp/state
templates_dir: /tmp/templates
secrets_file: /etc/unshelver/secrets.ini
log_level: debug
swift_event_container: null
app:
  env: production
  control_token: k3J9xQ2mV7pL0sD4fG8hZ1cB6nM5tR2w
  secret_key: 0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938
http:
  max_url_bytes: 1024
  max_header_bytes: 2048
  max_header_count: 10
  max_body_bytes: 0
  header_timeout_seconds: 3
  idle_timeout_seconds: 4
  shutdown_grace_seconds: 1.5
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const Config& c = parsed.config;
  EXPECT_EQ(c.listen, "[::1]:6000");
  EXPECT_EQ(c.state_dir, "/tmp/state");
  EXPECT_EQ(c.templates_dir, "/tmp/templates");
  EXPECT_EQ(c.secrets_file, "/etc/unshelver/secrets.ini");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_FALSE(c.swift_event_container.has_value());
  EXPECT_EQ(c.app.env, AppEnvironment::kProduction);
  EXPECT_EQ(c.http.max_url_bytes, 1024u);
  EXPECT_EQ(c.http.max_header_bytes, 2048u);
  EXPECT_EQ(c.http.max_header_count, 10u);
  EXPECT_EQ(c.http.max_body_bytes, 0u);
  EXPECT_EQ(c.http.header_timeout, Millis(3'000));
  EXPECT_EQ(c.http.idle_timeout, Millis(4'000));
  EXPECT_EQ(c.http.shutdown_grace, Millis(1'500));
}

TEST(ConfigParser, PythonValueRulesAreKept) {
  const ParsedConfig parsed = parse(R"(app:
  manual_shelve_path: "admin shelve"
  http_probe_attempts: 0
buttons:
  - id: gpu
    provider: sim
    port: 70000
    http_probe_interval_seconds: 0
notification_email: "nobody"
)");
  ASSERT_EQ(parsed.issues.size(), 5u) << all_issues(parsed);
  EXPECT_NE(issue_for(parsed, "app.manual_shelve_path"), nullptr);
  EXPECT_EQ(issue_for(parsed, "app.http_probe_attempts")->message, "must be at least 1, got 0");
  EXPECT_EQ(issue_for(parsed, "buttons[0].port")->message, "must be at most 65535, got 70000");
  EXPECT_NE(issue_for(parsed, "buttons[0].http_probe_interval_seconds"), nullptr);
  EXPECT_NE(issue_for(parsed, "notification_email"), nullptr);
}

TEST(ConfigParser, WholeNumbersWrittenAsFloatsAreIntegers) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + "    port: 8080.0\n");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.backends[0].port, 8080);
  const ParsedConfig fraction = parse(std::string(kSimButton) + "    port: 80.5\n");
  ASSERT_EQ(fraction.issues.size(), 1u);
  EXPECT_EQ(fraction.issues[0].message, "expected an integer, got \"80.5\"");
}

TEST(ConfigParser, NeverThrowsOnGarbage) {
  const std::vector<std::string> inputs = {"{",
                                           "[[[[",
                                           "\t\tx",
                                           std::string("\0\xff\xfe", 3),
                                           "a: &x [*x]",
                                           "? [a]\n: b\n",
                                           "buttons:\n  - id: x\n    <<: {provider: sim}\n",
                                           std::string(10'000, '['),
                                           "!!binary zzzz",
                                           "buttons: !!map {}\n"};
  for (const std::string& yaml : inputs) {
    ParsedConfig parsed;
    EXPECT_NO_THROW(parsed = parse(yaml, {}, "[\n=\n\x01\n"));
    EXPECT_FALSE(parsed.ok()) << yaml;
  }
}

// --- Activity following and in-flight detection ----------------------------------------------

TEST(ConfigParser, ActivityIgnoreRulesAndLimits) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(activity:
  ignore:
    user_agents: ["Pinger"]
    user_agent_patterns: ["^curl/7\\."]
    paths: ["/health", "/metrics*"]
    methods: ["options"]
  max_line_bytes: 4096
  stat_interval_seconds: 0.5
  checkpoint_path: /tmp/checkpoint.json
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const ActivitySettings& activity = parsed.config.activity;
  EXPECT_EQ(activity.ignore.user_agents, std::vector<std::string>{"Pinger"});  // replaces the defaults
  EXPECT_EQ(activity.ignore.user_agent_patterns, std::vector<std::string>{"^curl/7\\."});
  EXPECT_EQ(activity.ignore.paths, (std::vector<std::string>{"/health", "/metrics*"}));
  EXPECT_EQ(activity.ignore.methods, std::vector<std::string>{"OPTIONS"});
  EXPECT_EQ(activity.max_line_bytes, 4096u);
  EXPECT_EQ(activity.stat_interval, Millis(500));
  EXPECT_EQ(activity.checkpoint_path, "/tmp/checkpoint.json");
}

TEST(ConfigParser, DefaultIgnoreRulesNameUptimeMonitors) {
  const ParsedConfig parsed = parse(kSimButton);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const auto& agents = parsed.config.activity.ignore.user_agents;
  EXPECT_NE(std::find(agents.begin(), agents.end(), "Uptime-Kuma"), agents.end());
  EXPECT_NE(std::find(agents.begin(), agents.end(), "unshelver-health-probe"), agents.end());
}

TEST(ConfigParser, InvalidRegexNamesItsLineAndKey) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(activity:
  ignore:
    user_agent_patterns:
      - "fine"
      - "(unclosed"
)");
  const ConfigIssue* issue = issue_for(parsed, "activity.ignore.user_agent_patterns[1]");
  ASSERT_NE(issue, nullptr) << all_issues(parsed);
  EXPECT_EQ(issue->line, 8);
  EXPECT_NE(issue->message.find("regular expression"), std::string::npos);
}

TEST(ConfigParser, InflightSettingsPerButton) {
  const ParsedConfig parsed = parse(R"(buttons:
  - id: gpu
    provider: sim
    inflight:
      enabled: false
      min_busy_seconds: 2.5
      sample_interval_seconds: 0.25
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const InflightSettings& inflight = parsed.config.backends[0].inflight;
  EXPECT_FALSE(inflight.enabled);
  EXPECT_EQ(inflight.min_busy, Millis(2500));
  EXPECT_EQ(inflight.sample_interval, Millis(250));
  const ParsedConfig wrong = parse(std::string(kSimButton) + "    inflight:\n      min_busy: 3\n");
  const ConfigIssue* issue = issue_for(wrong, "buttons[0].inflight.min_busy");
  ASSERT_NE(issue, nullptr) << all_issues(wrong);
  EXPECT_NE(issue->message.find("min_busy_seconds"), std::string::npos);
}

// --- The event log (issue 6) -----------------------------------------------------------------

TEST(ConfigParser, EventsDefaults) {
  const ParsedConfig parsed = parse(kSimButton);
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const Config& c = parsed.config;
  EXPECT_EQ(c.events.rotate_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(c.events.keep_files, 5);
  EXPECT_EQ(c.events.upload_concurrency, 4);
  EXPECT_GT(c.events.upload_retry_max, Millis(0));
  EXPECT_EQ(c.local_event_log, "");
  EXPECT_FALSE(c.swift_event_container.has_value());
  EXPECT_EQ(c.swift_event_prefix, "unshelver-events");
  EXPECT_EQ(c.event_log_path(), c.state_dir + "/events.jsonl");
  EXPECT_EQ(c.event_log_path(), "/var/lib/unshelver/events.jsonl");
}

TEST(ConfigParser, EventLogPathFollowsStateDirUnlessSet) {
  const ParsedConfig in_state_dir = parse(std::string(kSimButton) + "state_dir: /srv/unshelver/state\n");
  ASSERT_TRUE(in_state_dir.ok()) << all_issues(in_state_dir);
  EXPECT_EQ(in_state_dir.config.event_log_path(), "/srv/unshelver/state/events.jsonl");

  const ParsedConfig given =
      parse(std::string(kSimButton) +
            "state_dir: /srv/unshelver/state\nlocal_event_log: /var/log/unshelver/audit.jsonl\n");
  ASSERT_TRUE(given.ok()) << all_issues(given);
  EXPECT_EQ(given.config.local_event_log, "/var/log/unshelver/audit.jsonl");
  EXPECT_EQ(given.config.event_log_path(), "/var/log/unshelver/audit.jsonl");

  // The order of the keys does not matter.
  const ParsedConfig reversed =
      parse(std::string(kSimButton) + "local_event_log: relative/events.jsonl\nstate_dir: /elsewhere\n");
  ASSERT_TRUE(reversed.ok()) << all_issues(reversed);
  EXPECT_EQ(reversed.config.event_log_path(), "relative/events.jsonl");

  Config plain;
  plain.state_dir = "/tmp/x";
  EXPECT_EQ(plain.event_log_path(), "/tmp/x/events.jsonl");
  plain.local_event_log = "/tmp/y.jsonl";
  EXPECT_EQ(plain.event_log_path(), "/tmp/y.jsonl");
}

TEST(ConfigParser, EventsValues) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(events:
  rotate_bytes: 4096
  keep_files: 1
  upload_concurrency: 16
  upload_retry_max_seconds: 2.5
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const EventSettings& events = parsed.config.events;
  EXPECT_EQ(events.rotate_bytes, 4096u);
  EXPECT_EQ(events.keep_files, 1);
  EXPECT_EQ(events.upload_concurrency, 16);
  EXPECT_EQ(events.upload_retry_max, Millis(2'500));

  const ParsedConfig big = parse(std::string(kSimButton) + R"(events:
  rotate_bytes: 104857600.0
  keep_files: 100
  upload_retry_max_seconds: 0.001
)");
  ASSERT_TRUE(big.ok()) << all_issues(big);
  EXPECT_EQ(big.config.events.rotate_bytes, 100u * 1024 * 1024);  // a whole number written as a float
  EXPECT_EQ(big.config.events.keep_files, 100);
  EXPECT_EQ(big.config.events.upload_concurrency, 4);  // left at its default
  EXPECT_EQ(big.config.events.upload_retry_max, Millis(1));
}

TEST(ConfigParser, EventsEmptySectionKeepsTheDefaults) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + "events:\n");
  EXPECT_TRUE(parsed.ok()) << all_issues(parsed);
  EXPECT_EQ(parsed.config.events.rotate_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(parsed.config.events.keep_files, 5);
}

TEST(ConfigParser, EventsRangesNameFileLineAndKey) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(events:
  rotate_bytes: 4095
  keep_files: 0
  upload_concurrency: 0
  upload_retry_max_seconds: 0
)");
  ASSERT_EQ(parsed.issues.size(), 4u) << all_issues(parsed);
  const ConfigIssue* rotate = issue_for(parsed, "events.rotate_bytes");
  ASSERT_NE(rotate, nullptr) << all_issues(parsed);
  EXPECT_EQ(rotate->file, "config.yaml");
  EXPECT_EQ(rotate->line, 5);
  EXPECT_EQ(rotate->column, 17);
  EXPECT_EQ(rotate->to_string(), "config.yaml:5:17: events.rotate_bytes: must be at least 4096, got 4095");
  ASSERT_NE(issue_for(parsed, "events.keep_files"), nullptr);
  EXPECT_EQ(issue_for(parsed, "events.keep_files")->message, "must be at least 1, got 0");
  EXPECT_EQ(issue_for(parsed, "events.keep_files")->line, 6);
  ASSERT_NE(issue_for(parsed, "events.upload_concurrency"), nullptr);
  EXPECT_EQ(issue_for(parsed, "events.upload_concurrency")->message, "must be at least 1, got 0");
  EXPECT_EQ(issue_for(parsed, "events.upload_concurrency")->line, 7);
  ASSERT_NE(issue_for(parsed, "events.upload_retry_max_seconds"), nullptr);
  EXPECT_EQ(issue_for(parsed, "events.upload_retry_max_seconds")->message, "must be greater than 0, got 0");
  EXPECT_EQ(issue_for(parsed, "events.upload_retry_max_seconds")->line, 8);

  const ParsedConfig negative = parse(std::string(kSimButton) + R"(events:
  keep_files: -3
  upload_retry_max_seconds: -1
)");
  ASSERT_EQ(negative.issues.size(), 2u) << all_issues(negative);
  EXPECT_EQ(issue_for(negative, "events.keep_files")->message, "must be at least 1, got -3");
  EXPECT_EQ(issue_for(negative, "events.upload_retry_max_seconds")->message,
            "must be greater than 0, got -1");
}

TEST(ConfigParser, EventsWrongTypes) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(events:
  rotate_bytes: big
  keep_files: 2.5
  upload_concurrency: [1, 2]
  upload_retry_max_seconds: soon
)");
  ASSERT_EQ(parsed.issues.size(), 4u) << all_issues(parsed);
  EXPECT_EQ(issue_for(parsed, "events.rotate_bytes")->to_string(),
            "config.yaml:5:17: events.rotate_bytes: expected an integer, got \"big\"");
  EXPECT_EQ(issue_for(parsed, "events.keep_files")->message, "expected an integer, got \"2.5\"");
  EXPECT_EQ(issue_for(parsed, "events.upload_concurrency")->message, "expected an integer, got a list");
  EXPECT_EQ(issue_for(parsed, "events.upload_retry_max_seconds")->message, "expected a number, got \"soon\"");

  const ParsedConfig not_a_map = parse(std::string(kSimButton) + "events: 5\n");
  ASSERT_EQ(not_a_map.issues.size(), 1u) << all_issues(not_a_map);
  EXPECT_EQ(not_a_map.issues[0].key, "events");
  EXPECT_EQ(not_a_map.issues[0].line, 4);
  EXPECT_EQ(not_a_map.issues[0].message, "expected a mapping, got \"5\"");
}

TEST(ConfigParser, EventsUnknownKeySuggestsTheNearest) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(events:
  rotate_byte: 8192
  keep_file: 2
  upload_retry_max: 5
  colour: blue
)");
  ASSERT_EQ(parsed.issues.size(), 4u) << all_issues(parsed);
  ASSERT_NE(issue_for(parsed, "events.rotate_byte"), nullptr) << all_issues(parsed);
  EXPECT_EQ(issue_for(parsed, "events.rotate_byte")->message, "unknown key; did you mean \"rotate_bytes\"?");
  EXPECT_EQ(issue_for(parsed, "events.rotate_byte")->line, 5);
  EXPECT_EQ(issue_for(parsed, "events.rotate_byte")->column, 3);
  EXPECT_EQ(issue_for(parsed, "events.keep_file")->message, "unknown key; did you mean \"keep_files\"?");
  EXPECT_EQ(issue_for(parsed, "events.upload_retry_max")->message,
            "unknown key; did you mean \"upload_retry_max_seconds\"?");
  EXPECT_EQ(issue_for(parsed, "events.colour")->message, "unknown key");
  // A misspelt value is not applied.
  EXPECT_EQ(parsed.config.events.rotate_bytes, 10u * 1024 * 1024);

  const ParsedConfig top = parse(std::string(kSimButton) + "event:\n  keep_files: 2\n");
  ASSERT_EQ(top.issues.size(), 1u) << all_issues(top);
  EXPECT_EQ(top.issues[0].key, "event");
  EXPECT_EQ(top.issues[0].message, "unknown key; did you mean \"events\"?");
}

TEST(ConfigParser, EventsDuplicateKeyIsAnIssue) {
  const ParsedConfig parsed = parse(std::string(kSimButton) + R"(events:
  keep_files: 2
  keep_files: 3
)");
  ASSERT_EQ(parsed.issues.size(), 1u) << all_issues(parsed);
  EXPECT_EQ(parsed.issues[0].key, "events.keep_files");
  EXPECT_EQ(parsed.issues[0].line, 6);
  EXPECT_EQ(parsed.issues[0].message, "duplicate key (first set on line 5)");
}

// Issue 17: notification_email takes one address or several, and the `notifications` section.
TEST(ConfigParser, NotificationsAreParsed) {
  const ParsedConfig parsed =
      parse(std::string(kSimButton) + R"(notification_email: "admin@example.org, ops@example.org"
notifications:
  sendmail: /usr/lib/sendmail
  from: unshelver@launcher.example.org
  outage_minutes: 0.5
  quiet_minutes: 0
  max_queued: 3
  send_timeout_seconds: 2.5
  attempts: 2
)");
  ASSERT_TRUE(parsed.ok()) << all_issues(parsed);
  const Config& c = parsed.config;
  EXPECT_EQ(config_detail::split_addresses(c.notification_email),
            (std::vector<std::string>{"admin@example.org", "ops@example.org"}));
  EXPECT_EQ(c.notifications.sendmail, "/usr/lib/sendmail");
  EXPECT_EQ(c.notifications.from, "unshelver@launcher.example.org");
  EXPECT_EQ(c.notifications.outage_threshold, std::chrono::seconds(30));
  EXPECT_EQ(c.notifications.quiet, std::chrono::seconds(0));
  EXPECT_EQ(c.notifications.max_queued, 3);
  EXPECT_EQ(c.notifications.send_timeout, Millis(2'500));
  EXPECT_EQ(c.notifications.attempts, 2);
}

TEST(ConfigParser, MailAddressesThatCouldBreakAHeaderAreRefused) {
  for (const char* value : {"\"a@example.org\\nBcc: c@example.org\"", "\"Admin <a@example.org>\"",
                            "\"a@example.org; c@example.org\"", "\"a@example.org, nobody\""}) {
    const ParsedConfig parsed = parse(std::string(kSimButton) + "notification_email: " + value + "\n");
    EXPECT_NE(issue_for(parsed, "notification_email"), nullptr) << value;
  }
  const ParsedConfig sender =
      parse(std::string(kSimButton) + "notifications:\n  from: \"a@example.org\\r\\nBcc: c@example.org\"\n");
  EXPECT_NE(issue_for(sender, "notifications.from"), nullptr);
  const ParsedConfig relative = parse(std::string(kSimButton) + "notifications:\n  sendmail: sendmail\n");
  EXPECT_NE(issue_for(relative, "notifications.sendmail"), nullptr);
}

}  // namespace
}  // namespace unshelver::core
