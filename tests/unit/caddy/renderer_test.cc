// Tests of the Caddy renderer with the real templates of caddy/: both modes per backend, the
// global and per-site options, the snippet integration, and validation against Caddyfile
// injection. tests/loop/caddy/render_adapt_test.cc feeds the same renderings to Debian's Caddy.
#include "caddy/renderer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "support/source_root.h"

namespace unshelver::core {
namespace {

std::filesystem::path repo_dir() {
  return test::source_root();
}

Template load_template(const std::string& file) {
  std::ifstream in(repo_dir() / "caddy" / file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  EXPECT_FALSE(text.str().empty()) << file;
  auto compiled = Template::compile(text.str(), file);
  EXPECT_TRUE(compiled.ok()) << (compiled.ok() ? "" : compiled.error().message);
  return compiled.ok() ? compiled.value() : Template{};
}

const Template& full_template() {
  static const Template compiled = load_template("Caddyfile.template");
  return compiled;
}

const Template& snippet_template() {
  static const Template compiled = load_template("unshelver-snippet.caddy.template");
  return compiled;
}

CaddyBackendView backend(std::string name, std::string site, bool ready) {
  CaddyBackendView view;
  view.name = std::move(name);
  view.site = std::move(site);
  view.upstream = "10.0.0.5:8080";
  view.label = "gpu";
  view.ready = ready;
  return view;
}

CaddyRenderInput base_input() {
  CaddyRenderInput input;
  input.admin_listen = "127.0.0.1:2019";
  input.launcher_site = "https://launcher.example.org";
  input.unshelver = "127.0.0.1:5001";
  input.access_log = "/var/log/caddy/access.log";
  input.backends.push_back(backend("gpu", "https://chat.example.org", true));
  return input;
}

std::string render_ok(const Template& compiled, const CaddyRenderInput& input) {
  auto text = render_caddy(compiled, input);
  EXPECT_TRUE(text.ok()) << (text.ok() ? "" : text.error().message);
  return text.ok() ? text.value() : "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

// The site block that starts with `site {`, up to its closing brace at column 0.
std::string site_block(const std::string& text, const std::string& site) {
  const std::size_t begin = text.find("\n" + site + " {\n");
  if (begin == std::string::npos) return "";
  const std::size_t end = text.find("\n}\n", begin + 1);
  return text.substr(begin + 1, end == std::string::npos ? std::string::npos : end + 2 - begin);
}

// --- Modes ------------------------------------------------------------------------------------

TEST(CaddyRenderer, ReadyModeProxiesToUpstreamWithMethodAwareFallback) {
  const std::string text = render_ok(full_template(), base_input());
  const std::string block = site_block(text, "https://chat.example.org");
  ASSERT_FALSE(block.empty()) << text;
  EXPECT_TRUE(contains(block, "\treverse_proxy 10.0.0.5:8080 {\n\t\theader_down X-Served-By gpu\n")) << block;
  EXPECT_TRUE(contains(block, "\t\t@unavailable status 502 503 504\n\t\thandle_response @unavailable {\n"));
  EXPECT_EQ(count(block, "@safe method GET HEAD"), 2u);  // handle_response and handle_errors
  EXPECT_EQ(count(block, "reverse_proxy 127.0.0.1:5001 {"), 2u);
  EXPECT_EQ(count(block, "header_down X-Served-By launcher-fallback"), 2u);
  EXPECT_EQ(count(block, "header Retry-After 30"), 2u);
  EXPECT_EQ(count(block, "header X-Served-By fallback-static"), 2u);
  EXPECT_EQ(count(block, "respond \"gpu is not available right now; see https://launcher.example.org\" 503"),
            2u);
  EXPECT_TRUE(contains(block, "\n\thandle_errors {\n"));
  EXPECT_FALSE(contains(block, "transport"));
  EXPECT_FALSE(contains(block, "X-Served-By launcher\n"));
}

TEST(CaddyRenderer, NotReadyModeSendsTheWholeHostToUnshelver) {
  CaddyRenderInput input = base_input();
  input.backends[0].ready = false;
  const std::string text = render_ok(full_template(), input);
  const std::string block = site_block(text, "https://chat.example.org");
  EXPECT_EQ(block,
            "https://chat.example.org {\n"
            "\timport unshelver_access_log\n"
            "\treverse_proxy 127.0.0.1:5001 {\n"
            "\t\theader_down X-Served-By launcher\n"
            "\t}\n"
            "}\n");
  EXPECT_FALSE(contains(text, "10.0.0.5"));
  EXPECT_FALSE(contains(text, "handle_errors"));
}

TEST(CaddyRenderer, LauncherAlwaysGoesToUnshelver) {
  const std::string text = render_ok(full_template(), base_input());
  EXPECT_EQ(site_block(text, "https://launcher.example.org"),
            "https://launcher.example.org {\n"
            "\timport unshelver_access_log\n"
            "\treverse_proxy 127.0.0.1:5001\n"
            "}\n");
}

TEST(CaddyRenderer, EveryBackendGetsItsOwnModeAndTheModeLine) {
  CaddyRenderInput input = base_input();
  input.backends.push_back(backend("chat", "http://chat.localhost:8080", false));
  input.backends[1].label = "chat-vm";
  EXPECT_EQ(describe_modes(input), "gpu=backend chat=unshelver");
  const std::string text = render_ok(full_template(), input);
  EXPECT_TRUE(contains(text, "\n# mode: gpu=backend chat=unshelver\n")) << text;
  EXPECT_TRUE(contains(site_block(text, "https://chat.example.org"), "header_down X-Served-By gpu"));
  EXPECT_TRUE(contains(site_block(text, "http://chat.localhost:8080"), "header_down X-Served-By launcher\n"));
  EXPECT_LT(text.find("https://chat.example.org {"), text.find("http://chat.localhost:8080 {"));
}

TEST(CaddyRenderer, DescribeModes) {
  CaddyRenderInput input;
  EXPECT_EQ(describe_modes(input), "");
  input.backends.push_back(backend("gpu", "https://a.example.org", true));
  input.backends.push_back(backend("chat", "https://b.example.org", false));
  input.backends.push_back(backend("vision", "https://c.example.org", true));
  input.backends[2].upstream.clear();  // ready without an upstream cannot be proxied
  EXPECT_EQ(describe_modes(input), "gpu=backend chat=unshelver vision=unshelver");
}

TEST(CaddyRenderer, HeaderSaysRenderedAndNotToEdit) {
  const std::string text = render_ok(full_template(), base_input());
  EXPECT_TRUE(text.starts_with("# Rendered by Unshelver")) << text.substr(0, 200);
  EXPECT_TRUE(contains(text, "do not edit it by hand, edit the template instead"));
  EXPECT_FALSE(contains(text, "{{")) << "template syntax leaked";
  EXPECT_FALSE(contains(text, "\n\n\n")) << "runs of blank lines";
  EXPECT_FALSE(contains(text, " \n")) << "trailing spaces";
}

// --- Options ----------------------------------------------------------------------------------

TEST(CaddyRenderer, UpstreamTlsAndInsecure) {
  CaddyRenderInput input = base_input();
  input.backends[0].upstream_tls = true;
  std::string block = site_block(render_ok(full_template(), input), "https://chat.example.org");
  EXPECT_TRUE(contains(
      block,
      "\t\theader_down X-Served-By gpu\n\t\tbuffer_requests\n\t\ttransport http {\n\t\t\ttls\n\t\t}\n"))
      << block;
  EXPECT_FALSE(contains(block, "tls_insecure_skip_verify"));

  input.backends[0].upstream_tls_insecure = true;
  block = site_block(render_ok(full_template(), input), "https://chat.example.org");
  EXPECT_TRUE(contains(block, "\t\ttransport http {\n\t\t\ttls\n\t\t\ttls_insecure_skip_verify\n\t\t}\n"))
      << block;

  // Without TLS the insecure flag means nothing.
  input.backends[0].upstream_tls = false;
  block = site_block(render_ok(full_template(), input), "https://chat.example.org");
  EXPECT_FALSE(contains(block, "transport"));
  EXPECT_FALSE(render_context(input)["backends"][0]["upstream_tls_insecure"].get<bool>());
}

TEST(CaddyRenderer, GlobalOptionsPresentOrAbsent) {
  CaddyRenderInput input = base_input();
  std::string text = render_ok(full_template(), input);
  EXPECT_TRUE(contains(text, "\n{\n\tadmin 127.0.0.1:2019\n}\n")) << text;
  EXPECT_FALSE(contains(text, "auto_https"));
  EXPECT_FALSE(contains(text, "http_port"));

  input.auto_https = false;
  input.http_port = 18080;
  text = render_ok(full_template(), input);
  EXPECT_TRUE(contains(text, "\n{\n\tadmin 127.0.0.1:2019\n\tauto_https off\n\thttp_port 18080\n}\n"))
      << text;

  input.admin_listen.clear();
  input.auto_https = true;
  input.http_port = 0;
  text = render_ok(full_template(), input);
  EXPECT_FALSE(contains(text, "\n{\n")) << text;
  EXPECT_FALSE(contains(text, "admin"));
  EXPECT_FALSE(render_context(input)["has_global_options"].get<bool>());
}

// Issue 15 §6: with the admin API on a Unix socket, the loaded config must keep it there, or
// Caddy moves the API to localhost:2019 (open to every local user) on that load.
TEST(CaddyRenderer, AdminOnAUnixSocketKeepsItInTheGlobalOptions) {
  CaddyRenderInput input = base_input();
  input.admin_listen = "unix//run/caddy/admin.sock";
  std::string text = render_ok(full_template(), input);
  EXPECT_TRUE(contains(text, "\n{\n\tadmin unix//run/caddy/admin.sock\n}\n")) << text;
  EXPECT_EQ(1u, count(text, "\tadmin "));
  // The snippet leaves global options to the user's Caddyfile (the router checks its `admin`).
  text = render_ok(snippet_template(), input);
  EXPECT_FALSE(contains(text, "unix//")) << text;
}

TEST(CaddyRenderer, BindInEverySiteWhenSet) {
  CaddyRenderInput input = base_input();
  input.backends.push_back(backend("chat", "http://chat.localhost:8080", false));
  input.backends[1].label = "chat";
  EXPECT_FALSE(contains(render_ok(full_template(), input), "bind"));
  input.bind = "127.0.0.1";
  const std::string text = render_ok(full_template(), input);
  EXPECT_EQ(count(text, "\n\tbind 127.0.0.1\n"), 3u) << text;  // launcher + 2 backends
  EXPECT_TRUE(contains(site_block(text, "https://launcher.example.org"), "{\n\tbind 127.0.0.1\n\timport"));
}

TEST(CaddyRenderer, AccessLogSnippetAndImports) {
  CaddyRenderInput input = base_input();
  input.log_roll_size_mb = 5;
  input.log_roll_keep = 3;
  std::string text = render_ok(full_template(), input);
  EXPECT_TRUE(contains(text,
                       "(unshelver_access_log) {\n"
                       "\tlog {\n"
                       "\t\toutput file /var/log/caddy/access.log {\n"
                       "\t\t\troll_size 5MiB\n"
                       "\t\t\troll_keep 3\n"
                       "\t\t}\n"
                       "\t\tformat json\n"
                       "\t}\n"
                       "}\n"))
      << text;
  EXPECT_EQ(count(text, "\timport unshelver_access_log\n"), 2u);

  input.access_log.clear();
  text = render_ok(full_template(), input);
  EXPECT_FALSE(contains(text, "unshelver_access_log"));
  EXPECT_FALSE(contains(text, "log {"));
}

TEST(CaddyRenderer, SnippetHasSitesButNoGlobalOptions) {
  CaddyRenderInput input = base_input();
  input.auto_https = false;
  input.http_port = 18080;
  input.bind = "127.0.0.1";
  const std::string snippet = render_ok(snippet_template(), input);
  EXPECT_FALSE(contains(snippet, "\n{\n")) << snippet;
  EXPECT_FALSE(contains(snippet, "admin 127"));
  EXPECT_FALSE(contains(snippet, "auto_https off"));
  EXPECT_FALSE(contains(snippet, "http_port 18080"));
  EXPECT_TRUE(contains(snippet, "(unshelver_access_log) {"));
  EXPECT_TRUE(contains(snippet, "# mode: gpu=backend\n"));
  // The site blocks are the same as in the full Caddyfile.
  const std::string full = render_ok(full_template(), input);
  for (const std::string site : {"https://launcher.example.org", "https://chat.example.org"}) {
    EXPECT_FALSE(site_block(snippet, site).empty()) << site;
    EXPECT_EQ(site_block(snippet, site), site_block(full, site)) << site;
  }
  input.backends[0].ready = false;
  EXPECT_EQ(site_block(render_ok(snippet_template(), input), "https://chat.example.org"),
            site_block(render_ok(full_template(), input), "https://chat.example.org"));
}

TEST(CaddyRenderer, ContextNames) {
  CaddyRenderInput input = base_input();
  input.backends[0].upstream_tls = true;
  const nlohmann::json context = render_context(input);
  for (const char* key : {"admin_listen", "launcher_site", "unshelver", "access_log", "log_roll_size_mb",
                          "log_roll_keep", "max_request_body_bytes", "bind", "http_port", "auto_https_off",
                          "has_global_options", "modes", "backends"}) {
    EXPECT_TRUE(context.contains(key)) << key;
  }
  const nlohmann::json& gpu = context["backends"][0];
  EXPECT_EQ(gpu["name"], "gpu");
  EXPECT_EQ(gpu["site"], "https://chat.example.org");
  EXPECT_EQ(gpu["upstream"], "10.0.0.5:8080");
  EXPECT_EQ(gpu["upstream_tls"], true);
  EXPECT_EQ(gpu["upstream_tls_insecure"], false);
  EXPECT_EQ(gpu["label"], "gpu");
  EXPECT_EQ(gpu["ready"], true);
  EXPECT_EQ(context["auto_https_off"], false);
  EXPECT_EQ(context["http_port"], 0);
}

// --- The gate ---------------------------------------------------------------------------------

CaddyRenderInput gated_input(bool ready, std::string upstream, std::string open_upstream = "") {
  CaddyRenderInput input = base_input();
  CaddyBackendView& gpu = input.backends[0];
  gpu.gate = true;
  gpu.gate_uri = "/.unshelver/gate/gpu";
  gpu.gate_try_seconds = 600;
  gpu.ready = ready;
  gpu.upstream = std::move(upstream);
  gpu.open_upstream = std::move(open_upstream);
  return input;
}

// With http.proxy_socket, Caddy reaches Unshelver over the socket, the gate's forward_auth too
// (issue 15 §4: only there are its forwarded addresses believed).
TEST(CaddyRenderer, UnshelverOverItsProxySocket) {
  for (const Template* compiled : {&full_template(), &snippet_template()}) {
    CaddyRenderInput input = gated_input(false, "");
    input.unshelver = "unix//run/unshelver/http.sock";
    const std::string text = render_ok(*compiled, input);
    EXPECT_TRUE(contains(text, "forward_auth unix//run/unshelver/http.sock {\n")) << text;
    EXPECT_TRUE(contains(text, "reverse_proxy unix//run/unshelver/http.sock")) << text;
    EXPECT_FALSE(contains(text, "127.0.0.1:5001")) << text;
  }
}

TEST(CaddyRenderer, GateModeAsksUnshelverBeforeEveryRequest) {
  for (const Template* compiled : {&full_template(), &snippet_template()}) {
    const std::string text = render_ok(*compiled, gated_input(false, ""));
    const std::string block = site_block(text, "https://chat.example.org");
    ASSERT_FALSE(block.empty()) << text;
    // The waiting page's own paths go to Unshelver directly; everything else passes the gate.
    EXPECT_TRUE(contains(block, "\thandle /.well-known/unshelver/* {\n\t\treverse_proxy 127.0.0.1:5001 {\n"))
        << block;
    EXPECT_TRUE(contains(block,
                         "\t\t\trequest_header -X-Unshelver-Upstream\n\t\t\tforward_auth 127.0.0.1:5001 {\n"
                         "\t\t\t\turi /.unshelver/gate/gpu\n\t\t\t\tcopy_headers X-Unshelver-Upstream\n"))
        << block;
    EXPECT_TRUE(contains(block, "\t\t\t\tlb_try_duration 600s\n")) << block;
    EXPECT_TRUE(contains(block, "\t\t\t\ttransport http {\n\t\t\t\t\tkeepalive 30s\n")) << block;
    EXPECT_TRUE(contains(block,
                         "\t\t\treverse_proxy {http.request.header.X-Unshelver-Upstream} {\n"
                         "\t\t\t\theader_up -X-Unshelver-Upstream\n"
                         "\t\t\t\theader_down X-Served-By gpu\n"
                         "\t\t\t\tbuffer_requests\n"))
        << block;
    // Caddy 2.6.2 cuts a response that starts before its transport has finished with the request
    // body, so bodies are buffered; buffered bodies are bounded, and a declared length above the
    // bound is refused before the gate is asked.
    EXPECT_TRUE(contains(block, "\timport unshelver_request_body\n")) << block;
    EXPECT_TRUE(contains(block,
                         "\t\troute {\n\t\t\trespond @unshelver_body_too_large \"Request body larger than "
                         "33554432 bytes\" 413 {\n"))
        << block;
    EXPECT_FALSE(contains(block, "flush_interval")) << block;
    EXPECT_FALSE(contains(block, "handle_errors")) << block;  // closed: no way around the gate
    EXPECT_FALSE(contains(block, "fallback-static")) << block;
  }
  EXPECT_EQ("gpu=gate", describe_modes(gated_input(false, "")));
}

// Caddy reloads only when the configuration changes: a gated route is the same text whatever
// the backend's state and address.
TEST(CaddyRenderer, AGatedRouteDoesNotChangeWithTheState) {
  const std::string asleep = render_ok(full_template(), gated_input(false, ""));
  EXPECT_EQ(asleep, render_ok(full_template(), gated_input(true, "10.0.0.5:8080")));
  EXPECT_EQ(asleep, render_ok(full_template(), gated_input(true, "10.0.0.9:8080")));
  EXPECT_FALSE(contains(asleep, "10.0.0.5"));
}

TEST(CaddyRenderer, GateDownOpenGoesToTheLastKnownAddress) {
  const std::string text = render_ok(full_template(), gated_input(true, "", "10.0.0.5:8080"));
  const std::string block = site_block(text, "https://chat.example.org");
  EXPECT_TRUE(contains(
      block, "\thandle_errors {\n\t\treverse_proxy 10.0.0.5:8080 {\n\t\t\theader_down X-Served-By gpu\n"))
      << block;
}

TEST(CaddyRenderer, GateValuesAreValidatedLikeEveryOther) {
  CaddyRenderInput input = gated_input(false, "");
  input.backends[0].gate_uri = "/.unshelver/gate/gpu {";
  EXPECT_FALSE(render_caddy(full_template(), input).ok());
  input = gated_input(false, "");
  input.backends[0].open_upstream = "10.0.0.5:8080 }";
  EXPECT_FALSE(render_caddy(full_template(), input).ok());
  input = gated_input(false, "");
  input.backends[0].gate_try_seconds = 0;
  EXPECT_FALSE(render_caddy(full_template(), input).ok());
}

// --- Validation -------------------------------------------------------------------------------

struct BadCase {
  const char* what;
  std::function<void(CaddyRenderInput&)> change;
  const char* field;  // must appear in the message
};

TEST(CaddyRenderer, ValidationRejectsInjectionAndNonsense) {
  const BadCase cases[] = {
      {"label with a space", [](auto& in) { in.backends[0].label = "gpu x"; }, "backends[0] (gpu).label"},
      {"label with a brace", [](auto& in) { in.backends[0].label = "gpu}"; }, ".label"},
      {"label opening a block", [](auto& in) { in.backends[0].label = "gpu {"; }, ".label"},
      {"label with a placeholder", [](auto& in) { in.backends[0].label = "{env.HOME}"; }, ".label"},
      {"label with a quote", [](auto& in) { in.backends[0].label = "gpu\""; }, ".label"},
      {"label with a backquote", [](auto& in) { in.backends[0].label = "`gpu`"; }, ".label"},
      {"label starting a comment", [](auto& in) { in.backends[0].label = "#gpu"; }, ".label"},
      {"label with a newline", [](auto& in) { in.backends[0].label = "gpu\n}\nevil {"; }, ".label"},
      {"label with a control character", [](auto& in) { in.backends[0].label = "gpu\x01"; }, ".label"},
      {"label with a backslash", [](auto& in) { in.backends[0].label = "gpu\\"; }, ".label"},
      {"empty label", [](auto& in) { in.backends[0].label = ""; }, ".label"},
      {"reserved label", [](auto& in) { in.backends[0].label = "launcher-fallback"; }, ".label"},
      {"reserved label, other case", [](auto& in) { in.backends[0].label = "Launcher"; }, ".label"},
      {"empty name", [](auto& in) { in.backends[0].name = ""; }, "backends[0].name"},
      {"name with a space", [](auto& in) { in.backends[0].name = "g pu"; }, "backends[0].name"},
      {"name with a dot", [](auto& in) { in.backends[0].name = "g.pu"; }, "backends[0].name"},
      {"site with a path", [](auto& in) { in.backends[0].site = "https://chat.example.org/app"; }, ".site"},
      {"site with a trailing slash", [](auto& in) { in.backends[0].site = "https://chat.example.org/"; },
       ".site"},
      {"site with a query", [](auto& in) { in.backends[0].site = "https://chat.example.org?x"; }, ".site"},
      {"site without a scheme", [](auto& in) { in.backends[0].site = "chat.example.org"; }, ".site"},
      {"site with another scheme", [](auto& in) { in.backends[0].site = "ftp://chat.example.org"; }, ".site"},
      {"site with user info", [](auto& in) { in.backends[0].site = "https://u@chat.example.org"; }, ".site"},
      {"site with a placeholder", [](auto& in) { in.backends[0].site = "https://{env.HOST}"; }, ".site"},
      {"site with a space", [](auto& in) { in.backends[0].site = "https://a.example.org b.example.org"; },
       ".site"},
      {"site with a bad port", [](auto& in) { in.backends[0].site = "https://chat.example.org:99999"; },
       ".site"},
      {"site with an empty port", [](auto& in) { in.backends[0].site = "https://chat.example.org:"; },
       ".site"},
      {"empty site", [](auto& in) { in.backends[0].site = ""; }, ".site"},
      {"site of the launcher", [](auto& in) { in.backends[0].site = "HTTPS://launcher.example.org"; },
       ".site"},
      {"launcher site with a path", [](auto& in) { in.launcher_site = "https://launcher.example.org/x"; },
       "launcher_site"},
      {"empty launcher site", [](auto& in) { in.launcher_site = ""; }, "launcher_site"},
      {"relative log path", [](auto& in) { in.access_log = "logs/access.log"; }, "access_log"},
      {"log path with a space", [](auto& in) { in.access_log = "/var/log/caddy/a b.log"; }, "access_log"},
      {"log path opening a block", [](auto& in) { in.access_log = "/var/log/a.log {"; }, "access_log"},
      {"log path with a placeholder", [](auto& in) { in.access_log = "/var/log/{env.X}.log"; }, "access_log"},
      {"log path that is a directory", [](auto& in) { in.access_log = "/var/log/caddy/"; }, "access_log"},
      {"log path with a comment", [](auto& in) { in.access_log = "/var/log/#a.log"; }, "access_log"},
      {"ready without upstream", [](auto& in) { in.backends[0].upstream = ""; },
       "backends[0] (gpu).upstream"},
      {"upstream without port", [](auto& in) { in.backends[0].upstream = "10.0.0.5"; }, ".upstream"},
      {"upstream with a scheme", [](auto& in) { in.backends[0].upstream = "http://10.0.0.5:80"; },
       ".upstream"},
      {"upstream with port 0", [](auto& in) { in.backends[0].upstream = "10.0.0.5:0"; }, ".upstream"},
      {"upstream, bare IPv6", [](auto& in) { in.backends[0].upstream = "fd00::1:8080"; }, ".upstream"},
      {"upstream opening a block", [](auto& in) { in.backends[0].upstream = "10.0.0.5:8080 {"; },
       ".upstream"},
      {"upstream with a newline", [](auto& in) { in.backends[0].upstream = "10.0.0.5:80\nx"; }, ".upstream"},
      {"not-ready upstream is still checked",
       [](auto& in) {
         in.backends[0].ready = false;
         in.backends[0].upstream = "a b:80";
       },
       ".upstream"},
      {"unshelver without port", [](auto& in) { in.unshelver = "127.0.0.1"; }, "unshelver"},
      {"empty unshelver", [](auto& in) { in.unshelver = ""; }, "unshelver"},
      {"unshelver socket opening a block", [](auto& in) { in.unshelver = "unix//run/u.sock {"; },
       "unshelver"},
      {"unshelver socket with a placeholder", [](auto& in) { in.unshelver = "unix//{env.HOME}"; },
       "unshelver"},
      {"unshelver socket, relative", [](auto& in) { in.unshelver = "unix/run/u.sock"; }, "unshelver"},
      {"unshelver socket without a path", [](auto& in) { in.unshelver = "unix//"; }, "unshelver"},
      {"admin as a URL", [](auto& in) { in.admin_listen = "http://127.0.0.1:2019"; }, "admin_listen"},
      {"admin with a space", [](auto& in) { in.admin_listen = "127.0.0.1:2019 x"; }, "admin_listen"},
      {"admin socket, relative", [](auto& in) { in.admin_listen = "unix/run/admin.sock"; }, "admin_listen"},
      {"admin socket with a mode", [](auto& in) { in.admin_listen = "unix//run/admin.sock|0660"; },
       "admin_listen"},
      {"admin socket opening a block", [](auto& in) { in.admin_listen = "unix//run/admin.sock {"; },
       "admin_listen"},
      {"admin socket with a newline", [](auto& in) { in.admin_listen = "unix//run/a.sock\n}\nx {"; },
       "admin_listen"},
      {"admin socket with a placeholder", [](auto& in) { in.admin_listen = "unix//run/{env.X}"; },
       "admin_listen"},
      {"bind with a space", [](auto& in) { in.bind = "127.0.0.1 0.0.0.0"; }, "bind"},
      {"bind with a port", [](auto& in) { in.bind = "127.0.0.1:80"; }, "bind"},
      {"bind with a brace", [](auto& in) { in.bind = "}"; }, "bind"},
      {"negative http_port", [](auto& in) { in.http_port = -1; }, "http_port"},
      {"http_port too large", [](auto& in) { in.http_port = 65536; }, "http_port"},
      {"roll size 0", [](auto& in) { in.log_roll_size_mb = 0; }, "log_roll_size_mb"},
      {"negative roll keep", [](auto& in) { in.log_roll_keep = -1; }, "log_roll_keep"},
      {"no request body", [](auto& in) { in.max_request_body_bytes = 0; }, "max_request_body_bytes"},
      {"duplicate name",
       [](auto& in) { in.backends.push_back(backend("gpu", "https://other.example.org", false)); },
       "backends[1] (gpu).name"},
      {"duplicate site",
       [](auto& in) { in.backends.push_back(backend("other", "https://CHAT.example.org", false)); },
       "backends[1] (other).site"},
  };
  for (const BadCase& bad : cases) {
    CaddyRenderInput input = base_input();
    ASSERT_TRUE(validate_render_input(input).ok());
    bad.change(input);
    const Status status = validate_render_input(input);
    ASSERT_FALSE(status.ok()) << bad.what;
    EXPECT_TRUE(contains(status.error().message, bad.field)) << bad.what << ": " << status.error().message;
    const auto rendered = render_caddy(full_template(), input);
    EXPECT_FALSE(rendered.ok()) << bad.what;
  }
}

TEST(CaddyRenderer, ValidationAcceptsReasonableValues) {
  CaddyRenderInput input = base_input();
  input.admin_listen = "localhost:2019";
  input.launcher_site = "http://launcher.localhost:18080";
  input.unshelver = "[::1]:5001";
  input.access_log = "/var/log/caddy/access-2026_v1.log";
  input.bind = "::1";
  input.http_port = 18080;
  input.log_roll_keep = 0;
  input.backends[0].upstream = "[fd00::5]:8443";
  input.backends[0].label = "gpu-1.a_b:c+d=e@f/g~h";
  input.backends.push_back(backend("chat_2", "https://*.chat.example.org", false));
  input.backends.back().upstream = "";
  input.backends.back().label = "chat";
  input.backends.push_back(backend("ip", "http://10.1.2.3:8080", true));
  input.backends.push_back(backend("v6", "http://[fd00::9]:8080", true));
  const Status status = validate_render_input(input);
  EXPECT_TRUE(status.ok()) << (status.ok() ? "" : status.error().message);
  input.bind = "[::1]";
  EXPECT_TRUE(validate_render_input(input).ok());
  input.admin_listen = "";  // no `admin` option
  EXPECT_TRUE(validate_render_input(input).ok());
  input.admin_listen = "unix//run/caddy/admin-1_a.sock";
  EXPECT_TRUE(validate_render_input(input).ok());
}

// Every byte in a label is either on the allow-list or rejected; nothing in between.
TEST(CaddyRenderer, LabelAllowListIsExact) {
  const std::string allowed_punctuation = "._-:+=@/~";
  for (int byte = 1; byte < 256; ++byte) {
    const char c = static_cast<char>(byte);
    CaddyRenderInput input = base_input();
    input.backends[0].label = std::string("gpu") + c + "x";
    const bool expected =
        (byte < 128 && std::isalnum(byte)) || allowed_punctuation.find(c) != std::string::npos;
    EXPECT_EQ(validate_render_input(input).ok(), expected) << "byte " << byte;
  }
}

TEST(CaddyRenderer, ErrorListsEveryProblem) {
  CaddyRenderInput input = base_input();
  input.backends[0].label = "a b";
  input.access_log = "rel.log";
  const Status status = validate_render_input(input);
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(contains(status.error().message, ".label: ")) << status.error().message;
  EXPECT_TRUE(contains(status.error().message, "access_log: "));
  EXPECT_TRUE(contains(status.error().message, "got \"a b\""));
}

// --- Helpers ----------------------------------------------------------------------------------

TEST(CaddyRenderer, SiteAddressFromUrl) {
  EXPECT_EQ(site_address("https://chat.example.org/"), "https://chat.example.org");
  EXPECT_EQ(site_address("HTTPS://Chat.Example.org:8443/app/?q=1#x"), "https://chat.example.org:8443");
  EXPECT_EQ(site_address("http://user:pw@chat.localhost:8080"), "http://chat.localhost:8080");
  EXPECT_EQ(site_address("http://[FD00::1]:8080/"), "http://[fd00::1]:8080");
  EXPECT_EQ(site_address("chat.example.org"), "chat.example.org");
}

}  // namespace
}  // namespace unshelver::core
