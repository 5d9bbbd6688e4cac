// unshelver: parses the command line, sets up logging, and hands over to App or a one-shot command.
//
// Exit codes (DESIGN.md "Command line"): 0 success, 1 run-time failure, 2 usage or config error.
// `unshelver dns` keeps the Python unshelver's ensure_dns_record.py codes instead (0 done, 1 no
// zone, 2 API or config error) and uses 64 (EX_USAGE) for usage errors; see app/dns_command.h.
// The commands that ask a running instance (events, status, wake, shelve) add 3 (the control
// token was refused) and 4 (no such backend); see app/cli_client.h.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "app/app.h"
#include "base/crypto.h"
#include "caddy/render_input.h"
#include "caddy/renderer.h"
#include "cli/dns_command.h"
#include "cli/events_command.h"
#include "cli/help.h"
#include "cli/log_format.h"
#include "cli/ops_command.h"
#include "cli/report_command.h"
#include "config/files.h"
#include "config/schema.h"
#include "uv/descriptor_limit.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

struct Options {
  std::string command = "run";
  std::string config_path;
  std::string listen;
  std::string log_level;
  std::optional<unshelver::core::LogFormat> log_format;  // --log-format; else the configuration's
  std::string demo_dir;
  int caddy_port = 0;
  std::string caddy_admin;
  std::vector<std::string> ready;
  bool help = false;
};

// A TCP port below 65535, so that the next one (the demo's default admin port) is one too.
bool parse_port(const std::string& text, int& port) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  port = std::stoi(text);
  return port >= 1 && port <= 65534;
}

// Returns an error message, or "" when the arguments are understood.
std::string parse_arguments(int argc, char** argv, Options& options) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::size_t index = 0;
  if (index < args.size() && !args[index].empty() && args[index][0] != '-') options.command = args[index++];
  for (; index < args.size(); ++index) {
    const std::string& arg = args[index];
    auto value = [&](std::string& out) -> bool {
      if (index + 1 >= args.size()) return false;
      out = args[++index];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      options.help = true;
    } else if (arg == "--version") {
      options.command = "version";
    } else if (arg == "--man") {
      options.command = "man";
    } else if (arg == "--config" || arg == "-c") {
      if (!value(options.config_path)) return "--config needs a file name";
    } else if (arg.rfind("--config=", 0) == 0) {
      options.config_path = arg.substr(9);
    } else if (arg == "--listen") {
      if (!value(options.listen)) return "--listen needs an address such as 127.0.0.1:5001";
    } else if (arg == "--caddy-port") {
      std::string port;
      if (!value(port) || !parse_port(port, options.caddy_port))
        return "--caddy-port needs a port from 1 to 65534";
    } else if (arg == "--dir") {
      if (!value(options.demo_dir) || options.demo_dir.empty()) return "--dir needs a directory";
    } else if (arg == "--caddy-admin") {
      if (!value(options.caddy_admin)) return "--caddy-admin needs an address such as 127.0.0.1:8081";
    } else if (arg == "--ready") {
      std::string name;
      if (!value(name)) return "--ready needs a backend name";
      options.ready.push_back(name);
    } else if (arg == "--log-level") {
      if (!value(options.log_level)) return "--log-level needs a level (trace, debug, info, warn, error)";
    } else if (arg == "--log-format") {
      std::string format;
      if (value(format)) options.log_format = unshelver::app::parse_log_format(format);
      if (!options.log_format) return "--log-format needs text or json";
    } else {
      return "unknown argument: " + arg;
    }
  }
  if (!options.caddy_admin.empty() && options.caddy_port == 0) return "--caddy-admin goes with --caddy-port";
  if (options.command != "demo" && (options.caddy_port != 0 || !options.demo_dir.empty())) {
    return "--caddy-port and --dir are for `unshelver demo`";
  }
  if (options.command != "run" && options.command != "demo" && options.command != "check-config" &&
      options.command != "render-caddy" && options.command != "version" && options.command != "man") {
    return "unknown command: " + options.command;
  }
  return "";
}

void setup_logging(const std::string& level, unshelver::core::LogFormat format) {
  auto logger = spdlog::stderr_color_mt("unshelver");
  spdlog::set_default_logger(logger);
  unshelver::app::use_log_format(format);
  spdlog::set_level(spdlog::level::from_str(level.empty() ? "info" : level));
  spdlog::flush_on(spdlog::level::info);
}

int render_caddy(const unshelver::core::Config& config, const Options& options) {
  std::vector<unshelver::app::BackendRoute> routes;
  for (const auto& backend : config.backends) {
    const bool ready =
        std::find(options.ready.begin(), options.ready.end(), backend.name) != options.ready.end();
    if (ready && backend.upstream.empty()) {
      // The cloud reports the address at run time; offline there is none to render.
      routes.push_back({"UPSTREAM-OF-" + backend.name + ":80", true});
    } else {
      routes.push_back({"", ready});
    }
  }
  for (const auto& name : options.ready) {
    if (config.find_backend(name) == nullptr) {
      std::fprintf(stderr, "unshelver: --ready %s: no such backend\n", name.c_str());
      return kExitUsage;
    }
  }
  auto caddy_template = unshelver::app::load_caddy_template(config.caddy);
  if (!caddy_template) {
    std::fprintf(stderr, "unshelver: %s\n", caddy_template.error().message.c_str());
    return kExitUsage;
  }
  auto text = unshelver::core::render_caddy(*caddy_template,
                                            unshelver::app::make_caddy_input(config, routes, config.listen));
  if (!text) {
    std::fprintf(stderr, "unshelver: the Caddy template does not render: %s\n", text.error().message.c_str());
    return kExitUsage;
  }
  std::fputs(text->c_str(), stdout);
  return kExitOk;
}

// Runs the daemon. A SIGHUP that reloads the configuration ends one App and starts the next in
// this loop, in the same process, with the listening socket handed over (app/app.h).
int run_app(unshelver::core::Config config, const Options& options,
            const unshelver::app::ConfigSource& reread) {
  if (!options.listen.empty()) config.listen = options.listen;
  setup_logging(options.log_level.empty() ? config.log_level : options.log_level,
                options.log_format.value_or(config.log_format));
  unshelver::io::raise_descriptor_limit();
  std::optional<unshelver::app::Handover> handover;
  for (;;) {
    std::optional<unshelver::app::Reload> reload;
    int code = 0;
    {
      unshelver::app::App app(std::move(config), reread, std::move(handover));
      code = app.run();
      reload = app.take_reload();
    }
    if (!reload) return code;
    if (options.log_level.empty()) spdlog::set_level(spdlog::level::from_str(reload->config.log_level));
    if (!options.log_format) unshelver::app::use_log_format(reload->config.log_format);
    config = std::move(reload->config);
    handover = std::move(reload->handover);
  }
}

// `unshelver hash-key`: the key on standard input, one trailing newline dropped, at most 4 KiB.
int hash_key(int argc) {
  if (argc != 2) {
    std::fputs("usage: unshelver hash-key < FILE   (or: printf %s \"$KEY\" | unshelver hash-key)\n", stderr);
    return kExitUsage;
  }
  constexpr std::size_t kMostKeyBytes = 4096;
  std::string key;
  char buffer[512];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, stdin)) > 0) {
    key.append(buffer, got);
    if (key.size() > kMostKeyBytes + 2) break;
  }
  if (!key.empty() && key.back() == '\n') key.pop_back();
  if (!key.empty() && key.back() == '\r') key.pop_back();
  if (key.empty() || key.size() > kMostKeyBytes) {
    std::fprintf(stderr, "unshelver hash-key: expected one key of 1 to %zu bytes on standard input\n",
                 kMostKeyBytes);
    return kExitUsage;
  }
  std::printf("sha256:%s\n",
              unshelver::core::hex(unshelver::core::to_bytes(unshelver::core::sha256(key))).c_str());
  return kExitOk;
}

}  // namespace

// Runs the command the arguments name and returns its exit code; main() checks its output.
static int dispatch(int argc, char** argv) {
  // The dns command has its own arguments, usage text and exit codes (cli/dns_command.h).
  if (argc >= 2 && std::string(argv[1]) == "dns") {
    return unshelver::app::run_dns_command(std::vector<std::string>(argv + 2, argv + argc));
  }
  // So do the commands that ask the running instance (cli/client.h).
  if (argc >= 2) {
    const std::string command = argv[1];
    const std::vector<std::string> rest(argv + 2, argv + argc);
    if (command == "events") return unshelver::app::run_events_command(rest);
    if (command == "status") return unshelver::app::run_status_command(rest);
    if (command == "wake") return unshelver::app::run_wake_command(rest);
    if (command == "shelve") return unshelver::app::run_shelve_command(rest);
    if (command == "report") return unshelver::app::run_report_command(rest);
  }
  if (argc >= 2 && std::string(argv[1]) == "hash-key") return hash_key(argc);
  // Hidden: prints a document written from the configuration schema (config/schema.h), to
  // regenerate config/config.example.yaml and the README's key table.
  if (argc >= 2 && std::string(argv[1]) == "config-reference") {
    const std::string what = argc == 3 ? argv[2] : "";
    if (what != "example" && what != "readme-table") {
      std::fputs("usage: unshelver config-reference example|readme-table\n", stderr);
      return kExitUsage;
    }
    const auto& schema_document =
        what == "example" ? unshelver::core::schema::example_yaml : unshelver::core::schema::readme_table;
    std::fputs(schema_document().c_str(), stdout);
    return kExitOk;
  }
  Options options;
  if (std::string problem = parse_arguments(argc, argv, options); !problem.empty()) {
    std::fprintf(stderr, "unshelver: %s\n\n%s", problem.c_str(), unshelver::app::render_usage().c_str());
    return kExitUsage;
  }
  if (options.help) {
    std::fputs(unshelver::app::render_usage().c_str(), stdout);
    return kExitOk;
  }
  if (options.command == "man") {
    std::fputs(unshelver::app::render_man_page(UNSHELVER_VERSION, UNSHELVER_MAN_DATE).c_str(), stdout);
    return kExitOk;
  }
  if (options.command == "version") {
    std::puts("unshelver " UNSHELVER_VERSION);
    return kExitOk;
  }

  const auto env = unshelver::app::environment_snapshot();
  if (options.command == "demo") {
    unshelver::core::DemoSettings demo;
    if (!options.demo_dir.empty()) demo.dir = options.demo_dir;
    if (options.caddy_port != 0) {
      demo.caddy_port = options.caddy_port;
      demo.caddy_admin = options.caddy_admin.empty() ? "127.0.0.1:" + std::to_string(options.caddy_port + 1)
                                                     : options.caddy_admin;
      // Caddy's access log and the rendered Caddyfile go to the demo's directory, by absolute
      // paths (Caddy runs elsewhere); the activity follower needs the log's folder to exist.
      std::error_code error;
      demo.dir = std::filesystem::absolute(demo.dir, error).lexically_normal().string();
      if (demo.dir.size() > 1 && demo.dir.back() == '/') demo.dir.pop_back();
      if (!error) std::filesystem::create_directories(demo.dir + "/logs", error);
      if (error) {
        std::fprintf(stderr, "unshelver: cannot create %s/logs: %s\n", demo.dir.c_str(),
                     error.message().c_str());
        return 1;
      }
    }
    auto config = unshelver::app::load_demo_config(env, demo);
    if (!config) {
      std::fprintf(stderr, "unshelver: the built-in demo config is invalid:\n%s\n",
                   config.error().message.c_str());
      return kExitUsage;
    }
    // The demo's configuration is built in: a reload starts it afresh, with the same options.
    auto reread = [demo, listen = options.listen]() -> unshelver::Result<unshelver::core::Config> {
      auto again = unshelver::app::load_demo_config(unshelver::app::environment_snapshot(), demo);
      if (again && !listen.empty()) again->listen = listen;
      return again;
    };
    return run_app(std::move(config.value()), options, reread);
  }

  const std::string path = unshelver::app::resolve_config_path(options.config_path, env);
  auto config = unshelver::app::load_config_file(path, env);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return kExitUsage;
  }
  if (options.command == "check-config") {
    // The same file checks that `run` makes before it binds a port.
    if (unshelver::Status files = unshelver::app::check_files(*config); !files) {
      std::fprintf(stderr, "%s\n", files.error().message.c_str());
      return kExitUsage;
    }
    std::printf("%s: valid (%zu backend%s)\n", path.c_str(), config->backends.size(),
                config->backends.size() == 1 ? "" : "s");
    return kExitOk;
  }
  if (options.command == "render-caddy") return render_caddy(*config, options);
  // SIGHUP reads and checks the file again exactly as here (and as check-config does).
  auto reread = [path, listen = options.listen]() -> unshelver::Result<unshelver::core::Config> {
    auto again = unshelver::app::load_config_file(path, unshelver::app::environment_snapshot());
    if (!again) return again;
    if (!listen.empty()) again->listen = listen;
    if (unshelver::Status files = unshelver::app::check_files(*again); !files) return files.error();
    return again;
  };
  return run_app(std::move(config.value()), options, reread);
}

int main(int argc, char** argv) {
  int code = 1;
  try {
    code = dispatch(argc, argv);
  } catch (const std::exception& error) {
    // Start-up reports its errors as values; this is the last guard, so that nothing ends in
    // std::terminate without a word.
    std::fprintf(stderr, "unshelver: %s\n", error.what());
    return 1;
  }
  // Commands write their output with stdio and do not check each call: the stream is checked once,
  // here, as coreutils' close_stdout does, so that a full disk or a closed pipe never ends in exit 0
  // with half a status document.
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    std::fprintf(stderr, "unshelver: writing the output failed: %s\n",
                 std::generic_category().message(errno).c_str());
    return code == kExitOk ? 1 : code;
  }
  return code;
}
