// Renders the built-in Caddyfile templates (as embedded in the binary) for every combination of
// modes and options, and checks that Debian's real Caddy accepts each result: `caddy adapt`
// exits 0 without warning that the input is unformatted, its JSON carries the expected routes,
// and `caddy validate` (which provisions every module but binds no port) says valid. The snippet
// is checked the way it is used: imported by absolute path from a user's Caddyfile. The examples
// in caddy/examples/ are rendered from their own config.yaml through the app's wiring
// (caddy/render_input.h) and checked the same way.
//
// Fails when /usr/bin/caddy is missing, or skips with UNSHELVER_ALLOW_MISSING_PEERS=1
// (tests/support/peers.h). Caddy runs with HOME and XDG_* in a temporary directory,
// so it never touches the real user's Caddy state.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/embedded_files.h"
#include "caddy/render_input.h"
#include "caddy/renderer.h"
#include "config/caddy_admin.h"
#include "config/parser.h"
#include "support/peers.h"
#include "support/source_root.h"

namespace unshelver {
namespace {

namespace fs = std::filesystem;
using core::CaddyBackendView;
using core::CaddyRenderInput;

constexpr const char* kCaddy = "/usr/bin/caddy";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

fs::path repo_dir() {
  return test::source_root();
}

core::Template embedded_template(const std::string& name) {
  for (const web::EmbeddedTemplate& entry : web::embedded_caddy_templates()) {
    if (entry.name != name) continue;
    auto compiled = core::Template::compile(entry.text, name);
    EXPECT_TRUE(compiled.ok()) << (compiled.ok() ? "" : compiled.error().message);
    if (compiled.ok()) return compiled.value();
  }
  ADD_FAILURE() << name << " is not embedded";
  return core::Template{};
}

struct CaddyRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CaddyRenderAdapt : public ::testing::Test {
 protected:
  void SetUp() override {
    UNSHELVER_REQUIRE_PEER(kCaddy);
    char pattern[] = "/tmp/unshelver-caddy-render-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ignored;
      fs::remove_all(dir_, ignored);
    }
  }

  // Runs `caddy ARGS` in the temporary directory. The paths involved come from mkdtemp and the
  // test itself, so they need no shell quoting.
  CaddyRun caddy(const std::string& args) {
    const std::string home = dir_.string();
    const std::string command = "cd " + home + " && env HOME=" + home + " XDG_CONFIG_HOME=" + home +
                                "/xdg XDG_DATA_HOME=" + home + "/xdg " + kCaddy + " " + args + " >" + home +
                                "/caddy.out 2>" + home + "/caddy.err";
    // The test runs no other threads, so system()'s process-wide signal handling is harmless.
    const int status = std::system(command.c_str());  // NOLINT(concurrency-mt-unsafe)
    CaddyRun run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = read_text(dir_ / "caddy.out");
    run.err = read_text(dir_ / "caddy.err");
    return run;
  }

  // Adapts and validates `file`; returns the adapted JSON (null on failure, with test failures
  // that show `shown`, the text worth reading).
  nlohmann::json adapt_and_validate(const fs::path& file, const std::string& shown, const std::string& what) {
    const CaddyRun adapted = caddy("adapt --config " + file.string() + " --adapter caddyfile");
    EXPECT_EQ(adapted.exit_code, 0) << what << "\n" << adapted.err << "\n" << shown;
    EXPECT_EQ(adapted.err.find("not formatted"), std::string::npos) << what << "\n"
                                                                    << adapted.err << "\n"
                                                                    << shown;
    nlohmann::json json = nlohmann::json::parse(adapted.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(json.is_object()) << what << "\n" << adapted.out;
    const CaddyRun validated = caddy("validate --config " + file.string() + " --adapter caddyfile");
    EXPECT_EQ(validated.exit_code, 0) << what << "\n" << validated.err << "\n" << shown;
    EXPECT_NE((validated.out + validated.err).find("Valid configuration"), std::string::npos)
        << what << "\n"
        << validated.err;
    return json.is_object() ? json : nlohmann::json();
  }

  // `caddy fmt` leaves the text as it is.
  void expect_formatted(const fs::path& file, const std::string& text, const std::string& what) {
    const CaddyRun formatted = caddy("fmt " + file.string());
    EXPECT_EQ(formatted.exit_code, 0) << what << "\n" << formatted.err;
    EXPECT_EQ(formatted.out, text) << what;
  }

  fs::path dir_;
};

// What the routes of the adapted JSON must show for `input`. `only_ours`: every site is
// Unshelver's (the full integration), so with `bind` none may listen on all interfaces.
void expect_routes(const nlohmann::json& adapted, const CaddyRenderInput& input, const std::string& what,
                   bool only_ours) {
  const std::string json = adapted.dump();
  for (const CaddyBackendView& backend : input.backends) {
    if (backend.gate) {
      EXPECT_NE(json.find("\"uri\":\"" + backend.gate_uri + "\""), std::string::npos) << what;
      EXPECT_NE(json.find("\"dial\":\"{http.request.header.X-Unshelver-Upstream}\""), std::string::npos)
          << what;
      EXPECT_NE(json.find("\"try_duration\":" + std::to_string(backend.gate_try_seconds) + "000000000"),
                std::string::npos)
          << what;
      EXPECT_EQ(json.find("\"dial\":\"" + backend.open_upstream + "\"") != std::string::npos,
                !backend.open_upstream.empty())
          << what;
      continue;
    }
    const bool proxied = json.find("\"dial\":\"" + backend.upstream + "\"") != std::string::npos;
    EXPECT_EQ(proxied, backend.ready) << what << ": " << backend.name;
    if (backend.ready) {
      EXPECT_NE(json.find("\"X-Served-By\":[\"" + backend.label + "\"]"), std::string::npos) << what;
      EXPECT_NE(json.find("\"status_code\":[502,503,504]"), std::string::npos) << what;
      EXPECT_NE(json.find("\"X-Served-By\":[\"fallback-static\"]"), std::string::npos) << what;
      EXPECT_NE(json.find("\"Retry-After\":[\"30\"]"), std::string::npos) << what;
    }
    if (backend.ready && backend.upstream_tls) {
      EXPECT_NE(json.find("\"tls\":{"), std::string::npos) << what;
      EXPECT_EQ(json.find("\"insecure_skip_verify\":true") != std::string::npos,
                backend.upstream_tls_insecure)
          << what;
    }
  }
  EXPECT_NE(json.find("\"dial\":\"" + input.unshelver + "\""), std::string::npos) << what;
  EXPECT_EQ(json.find("\"output\":\"file\"") != std::string::npos, !input.access_log.empty()) << what;
  if (only_ours && !input.bind.empty()) {
    EXPECT_EQ(json.find("\"listen\":[\":"), std::string::npos)
        << what << ": a site listens on all interfaces";
  }
}

struct Options {
  const char* name;
  std::string bind;
  int http_port;
  bool auto_https;
  bool access_log;
};

// Every value of every option at least once, on and off together and apart.
const std::vector<Options>& option_sets() {
  static const std::vector<Options> sets = {
      {"none", "", 0, true, false},
      {"all", "127.0.0.1", 18080, false, true},
      {"bind+log", "127.0.0.1", 0, true, true},
      {"port+no-auto-https", "", 18080, false, false},
  };
  return sets;
}

// kGated: both backends pass the gate, one failing closed, one open.
enum class Modes { kAllReady, kNoneReady, kMixed, kGated };
enum class Tls { kPlain, kTls, kInsecure };

CaddyRenderInput make_input(Modes modes, Tls tls, const Options& options, const fs::path& dir) {
  CaddyRenderInput input;
  input.admin_listen = "127.0.0.1:2019";
  input.launcher_site = options.auto_https ? "https://launcher.example.org" : "http://launcher.localhost";
  input.unshelver = "127.0.0.1:5001";
  input.access_log = options.access_log ? (dir / "logs" / "access.log").string() : "";
  input.log_roll_size_mb = 2;
  input.log_roll_keep = 3;
  input.bind = options.bind;
  input.http_port = options.http_port;
  input.auto_https = options.auto_https;
  const auto add = [&](std::string name, std::string site, std::string upstream, std::string label,
                       bool ready) {
    CaddyBackendView backend;
    backend.name = std::move(name);
    backend.site = std::move(site);
    backend.upstream = std::move(upstream);
    backend.label = std::move(label);
    backend.ready = ready;
    backend.upstream_tls = tls != Tls::kPlain;
    backend.upstream_tls_insecure = tls == Tls::kInsecure;
    input.backends.push_back(backend);
  };
  add("gpu", "https://chat.example.org", "10.0.0.5:8080", "gpu", modes != Modes::kNoneReady);
  add("vision", "http://vision.localhost:8081", "[fd00::7]:8443", "vision-vm", modes == Modes::kAllReady);
  if (modes == Modes::kGated) {
    for (CaddyBackendView& backend : input.backends) {
      backend.gate = true;
      backend.gate_uri = "/.unshelver/gate/" + backend.name;
      backend.gate_try_seconds = 600;
      backend.ready = false;
    }
    input.backends[1].open_upstream = input.backends[1].upstream;
    input.backends[1].gate_try_seconds = 5;
    input.backends[0].upstream.clear();
  }
  return input;
}

std::string describe(Modes modes, Tls tls, const Options& options) {
  const char* mode_names[] = {"all-ready", "none-ready", "mixed", "gated"};
  const char* tls_names[] = {"plain", "tls", "insecure"};
  return std::string(mode_names[static_cast<int>(modes)]) + "/" + tls_names[static_cast<int>(tls)] + "/" +
         options.name;
}

TEST_F(CaddyRenderAdapt, FullCaddyfileEveryCombination) {
  const core::Template full = embedded_template("Caddyfile.template");
  for (Modes modes : {Modes::kAllReady, Modes::kNoneReady, Modes::kMixed, Modes::kGated}) {
    for (Tls tls : {Tls::kPlain, Tls::kTls, Tls::kInsecure}) {
      for (const Options& options : option_sets()) {
        const std::string what = describe(modes, tls, options);
        const CaddyRenderInput input = make_input(modes, tls, options, dir_);
        auto text = core::render_caddy(full, input);
        ASSERT_TRUE(text.ok()) << what << ": " << text.error().message;
        const fs::path file = dir_ / "Caddyfile";
        write_text(file, *text);
        expect_formatted(file, *text, what);
        const nlohmann::json adapted = adapt_and_validate(file, *text, what);
        expect_routes(adapted, input, what, true);
        EXPECT_EQ(adapted.dump().find("\"listen\":\"127.0.0.1:2019\"") != std::string::npos, true) << what;
        if (HasFailure()) return;  // one broken combination is enough to read
      }
    }
  }
}

// A user's Caddyfile around the snippet: global options, a site of its own, the import.
std::string user_caddyfile(const Options& options, const fs::path& snippet) {
  std::string text = "{\n\tadmin 127.0.0.1:2019\n";
  if (!options.auto_https) text += "\tauto_https off\n";
  if (options.http_port != 0) text += "\thttp_port " + std::to_string(options.http_port) + "\n";
  text += "}\n\nhttp://other.localhost {\n\trespond \"the user's own site\"\n}\n\nimport " +
          snippet.string() + "\n";
  return text;
}

TEST_F(CaddyRenderAdapt, SnippetImportedByUserCaddyfileEveryCombination) {
  const core::Template snippet_template = embedded_template("unshelver-snippet.caddy.template");
  for (Modes modes : {Modes::kAllReady, Modes::kNoneReady, Modes::kMixed, Modes::kGated}) {
    for (Tls tls : {Tls::kPlain, Tls::kTls, Tls::kInsecure}) {
      for (const Options& options : {option_sets()[0], option_sets()[1]}) {
        const std::string what = "snippet " + describe(modes, tls, options);
        const CaddyRenderInput input = make_input(modes, tls, options, dir_);
        auto text = core::render_caddy(snippet_template, input);
        ASSERT_TRUE(text.ok()) << what << ": " << text.error().message;
        const fs::path snippet = dir_ / "unshelver.caddy";
        write_text(snippet, *text);
        expect_formatted(snippet, *text, what);
        const fs::path file = dir_ / "Caddyfile";
        write_text(file, user_caddyfile(options, snippet));
        const nlohmann::json adapted = adapt_and_validate(file, *text, what);
        expect_routes(adapted, input, what, false);
        EXPECT_NE(adapted.dump().find("other.localhost"), std::string::npos) << what;
        if (HasFailure()) return;
      }
    }
  }
}

// The render input, built by the app's own wiring; the VM's address is made up.
CaddyRenderInput input_from_config(const core::Config& config, bool ready) {
  std::vector<app::BackendRoute> routes;
  for (const core::BackendConfig& backend : config.backends) {
    routes.push_back(app::BackendRoute{"10.0.0.5:" + std::to_string(backend.port), ready});
  }
  return app::make_caddy_input(config, routes, config.listen);
}

// The template the app would load for `config` (the built-in one of its integration).
core::Template template_for(const core::Config& config) {
  auto loaded = app::load_caddy_template(config.caddy);
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.error().message);
  return loaded.ok() ? loaded.value() : core::Template{};
}

core::Config load_example(const std::string& integration) {
  core::ConfigInputs inputs;
  inputs.yaml_path = (repo_dir() / "caddy/examples" / integration / "config.yaml").string();
  inputs.yaml_text = read_text(inputs.yaml_path);
  // The examples are production configs: their secrets come from the environment.
  inputs.env["UNSHELVER_CONTROL_TOKEN"] = "k3J9xQ2mV7pL0sD4fG8hZ1cB6nM5tR2w";
  inputs.env["UNSHELVER_SECRET_KEY"] = "0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938";
  core::ParsedConfig parsed = core::parse_config(inputs);
  for (const core::ConfigIssue& issue : parsed.issues) ADD_FAILURE() << issue.to_string();
  EXPECT_TRUE(parsed.config.caddy.manage);
  return parsed.config;
}

TEST_F(CaddyRenderAdapt, FullExampleRendersToAValidCaddyfile) {
  const core::Config config = load_example("full");
  ASSERT_EQ(config.caddy.integration, core::CaddyIntegration::kFull);
  const core::Template full = template_for(config);
  for (bool ready : {true, false}) {
    const CaddyRenderInput input = input_from_config(config, ready);
    auto text = core::render_caddy(full, input);
    ASSERT_TRUE(text.ok()) << text.error().message;
    const fs::path file = dir_ / "Caddyfile";
    write_text(file, *text);
    expect_formatted(file, *text, "full example");
    expect_routes(adapt_and_validate(file, *text, "full example"), input, "full example", true);
  }
}

TEST_F(CaddyRenderAdapt, SnippetExampleCaddyfileImportsTheRenderedSnippet) {
  const core::Config config = load_example("snippet");
  ASSERT_EQ(config.caddy.integration, core::CaddyIntegration::kSnippet);
  std::string user_file = read_text(repo_dir() / "caddy/examples/snippet/Caddyfile");
  const std::string import_line = "import " + config.caddy.snippet + "\n";
  const std::size_t at = user_file.find(import_line);
  ASSERT_NE(at, std::string::npos) << "the example Caddyfile must import " << config.caddy.snippet;
  // Its `admin` is the example's caddy.admin (the router refuses to load it otherwise).
  auto endpoint = core::parse_caddy_admin(config.caddy.admin);
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  EXPECT_EQ(std::vector<std::string>{endpoint->listen}, core::caddyfile_admin_addresses(user_file));
  // The same file, importing the snippet from the temporary directory instead of /etc/caddy.
  const fs::path snippet = dir_ / "unshelver.caddy";
  user_file.replace(at, import_line.size(), "import " + snippet.string() + "\n");
  const fs::path file = dir_ / "Caddyfile";
  write_text(file, user_file);
  expect_formatted(file, user_file, "snippet example Caddyfile");

  const core::Template snippet_template = template_for(config);
  for (bool ready : {true, false}) {
    const CaddyRenderInput input = input_from_config(config, ready);
    auto text = core::render_caddy(snippet_template, input);
    ASSERT_TRUE(text.ok()) << text.error().message;
    write_text(snippet, *text);
    expect_formatted(snippet, *text, "snippet example");
    const nlohmann::json adapted = adapt_and_validate(file, *text, "snippet example");
    expect_routes(adapted, input, "snippet example", false);
    EXPECT_NE(adapted.dump().find("www.example.org"), std::string::npos);
  }
}

// Before Unshelver's first render, the snippet file must exist and hold at least a comment:
// Caddy 2.6.2 rejects an import of a missing or empty file (as the snippet README says).
TEST_F(CaddyRenderAdapt, PlaceholderSnippetNeedsAComment) {
  const fs::path snippet = dir_ / "unshelver.caddy";
  const fs::path file = dir_ / "Caddyfile";
  write_text(file, user_caddyfile(option_sets()[0], snippet));
  EXPECT_NE(caddy("adapt --config " + file.string() + " --adapter caddyfile").exit_code, 0) << "missing file";
  write_text(snippet, "");
  EXPECT_NE(caddy("adapt --config " + file.string() + " --adapter caddyfile").exit_code, 0) << "empty file";
  write_text(snippet, "# Written by Unshelver.\n");
  EXPECT_EQ(caddy("adapt --config " + file.string() + " --adapter caddyfile").exit_code, 0) << "a comment";
}

}  // namespace
}  // namespace unshelver
