#include "cli/client.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/text.h"
#include "base/url.h"
#include "config/files.h"
#include "uv/timer.h"

namespace unshelver::app::cli {

const char* const kConnectionHelp =
    R"(  --config FILE      the configuration (default: $UNSHELVER_CONFIG, else ./config.yaml); its
                     `listen` address and app.control_token are used when not given otherwise
  --url URL          ask this instance, e.g. http://127.0.0.1:5001 (default: $UNSHELVER_URL,
                     else http://<listen> from the configuration)
  --token-file FILE  read the control token from the first line of FILE (default:
                     $UNSHELVER_CONTROL_TOKEN, else app.control_token from the configuration,
                     its secrets_file or the environment). The token itself is never accepted
                     as an argument: every user on the machine can read arguments with `ps`.
)";

const char* const kExitCodesHelp = R"(Exit codes (the same for events, status, wake and shelve):
  0  success
  1  the instance could not be reached, answered 5xx or another error, or the wait failed
  2  usage or configuration error: bad flags, unreadable token file, no token anywhere
  3  the instance refused the token (401 or 403; 429 after too many failed attempts)
  4  no such backend (404)
)";

namespace {

using nlohmann::json;

// A token file holds one line; anything much longer is not a token file.
constexpr std::size_t kMaxTokenFileBytes = std::size_t{64} * 1024;
// Arguments longer than this are not quoted back: the config parser's minimum secret length is
// 16, so anything shorter cannot be a control token.
constexpr std::size_t kLongestShownArgument = 15;

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

Status check_url(const std::string& url, const std::string& where) {
  const bool http = url.rfind("http://", 0) == 0 && url.size() > 7;
  const bool https = url.rfind("https://", 0) == 0 && url.size() > 8;
  if (!http && !https)
    return Error{where + " must be an http:// or https:// URL such as http://127.0.0.1:5001"};
  for (char c : url) {
    if (is_control(c) || c == ' ') return Error{where + " must not contain spaces or control characters"};
  }
  return ok_status();
}

std::string without_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The first line of `path`, trimmed. The error never quotes the content.
Result<std::string> read_token_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return Error{"cannot read the token file " + path + ": " + core::errno_text()};
  }
  std::string text(kMaxTokenFileBytes, '\0');
  const std::size_t read = std::fread(text.data(), 1, text.size(), file);
  const bool failed = std::ferror(file) != 0;
  const int read_errno = errno;
  // Closing a stream that was only read flushes nothing: the read's outcome is already known.
  (void)std::fclose(file);
  if (failed) return Error{"cannot read the token file " + path + ": " + core::errno_text(read_errno)};
  text.resize(read);
  const std::size_t end = text.find('\n');
  std::string token(core::trim(std::string_view(text).substr(0, end)));
  if (token.empty()) return Error{"the token file " + path + " is empty (the token is its first line)"};
  return token;
}

}  // namespace

Result<std::string> option_value(const std::vector<std::string>& args, std::size_t& index, const char* what) {
  if (index + 1 >= args.size()) return Error{args[index] + " needs " + what};
  return args[++index];
}

Result<bool> take_connection_option(const std::vector<std::string>& args, std::size_t& index,
                                    ConnectionOptions& options) {
  const std::string& arg = args[index];
  // "--flag VALUE" or "--flag=VALUE"; nullopt when `arg` is not `flag`.
  auto value_of = [&](std::string_view flag) -> std::optional<Result<std::string>> {
    if (arg == flag) {
      if (index + 1 >= args.size()) return Result<std::string>(Error{arg + " needs a value"});
      return Result<std::string>(args[++index]);
    }
    if (arg.size() > flag.size() && arg.compare(0, flag.size(), flag) == 0 && arg[flag.size()] == '=') {
      return Result<std::string>(arg.substr(flag.size() + 1));
    }
    return std::nullopt;
  };
  // Refused without reading the value, so that no message can ever quote it.
  for (std::string_view refused : {"--token", "--control-token"}) {
    if (arg == refused || (arg.rfind(std::string(refused) + "=", 0) == 0)) {
      return Error{
          "the control token is not accepted on the command line (every user can read it with "
          "`ps`); use --token-file FILE or $UNSHELVER_CONTROL_TOKEN"};
    }
  }
  for (std::string_view flag : {"--config", "-c"}) {
    if (auto value = value_of(flag)) {
      if (!*value) return Error{arg + " needs a file name"};
      options.config_path = value->value();
      return true;
    }
  }
  if (auto value = value_of("--url")) {
    if (!*value) return Error{"--url needs a URL such as http://127.0.0.1:5001"};
    options.url = without_trailing_slashes(value->value());
    if (Status valid = check_url(options.url, "--url"); !valid) return valid.error();
    return true;
  }
  if (auto value = value_of("--token-file")) {
    if (!*value || value->value().empty())
      return Error{"--token-file needs the name of a file holding the token"};
    options.token_file = value->value();
    return true;
  }
  return false;
}

std::string shown_argument(const std::string& argument) {
  if (argument.size() > kLongestShownArgument) {
    return "(an argument of " + std::to_string(argument.size()) +
           " characters, not shown in case it is a secret)";
  }
  std::string shown;
  for (char c : argument) shown += is_control(c) ? '?' : c;
  return shown;
}

Result<core::Config> load_config(const ConnectionOptions& options,
                                 const std::map<std::string, std::string>& env) {
  return load_config_file(resolve_config_path(options.config_path, env), env);
}

Result<std::string> instance_url(const std::string& listen) {
  const Result<core::Authority> address = core::parse_authority(listen);
  if (!address) return Error{"listen: " + address.error().message + " in '" + listen + "'"};
  if (!address->port) return Error{"listen: missing port in '" + listen + "'"};
  std::string host = address->host;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(*address->port);
}

Result<Instance> resolve_instance(const ConnectionOptions& options,
                                  const std::map<std::string, std::string>& env, TokenNeed need) {
  // Read at most once, and only when the flags and the environment leave something open.
  std::optional<Result<core::Config>> config;
  auto configuration = [&]() -> const Result<core::Config>& {
    if (!config) config.emplace(load_config(options, env));
    return *config;
  };
  auto env_value = [&env](const char* name) -> std::string {
    auto found = env.find(name);
    return found == env.end() ? "" : found->second;
  };
  const std::string config_path = resolve_config_path(options.config_path, env);

  Instance instance;
  if (!options.url.empty()) {
    instance.base_url = options.url;
  } else if (std::string from_env = without_trailing_slashes(env_value("UNSHELVER_URL")); !from_env.empty()) {
    if (Status valid = check_url(from_env, "$UNSHELVER_URL"); !valid) return valid.error();
    instance.base_url = from_env;
  } else {
    const Result<core::Config>& loaded = configuration();
    if (!loaded) {
      return Error{loaded.error().message +
                   "\n(--url or $UNSHELVER_URL names the instance without a configuration)"};
    }
    auto url = instance_url(loaded->listen);
    if (!url) return Error{config_path + ": " + url.error().message};
    instance.base_url = *url;
  }

  if (!options.token_file.empty()) {
    auto token = read_token_file(options.token_file);
    if (!token) return token.error();
    instance.token = std::move(*token);
    instance.token_source = "the token file " + options.token_file;
  } else if (std::string from_env = env_value("UNSHELVER_CONTROL_TOKEN"); !from_env.empty()) {
    instance.token = std::move(from_env);
    instance.token_source = "$UNSHELVER_CONTROL_TOKEN";
  } else {
    const Result<core::Config>& loaded = configuration();
    // Without a configuration of its own choosing (./config.yaml is only the default), a command
    // that can do without the token goes on without it.
    const bool config_named = !options.config_path.empty() || !env_value("UNSHELVER_CONFIG").empty();
    if (need == TokenNeed::kOptional && (loaded ? loaded->app.control_token.empty() : !config_named)) {
      return instance;
    }
    if (!loaded) {
      return Error{
          "no control token: neither --token-file nor $UNSHELVER_CONTROL_TOKEN is given, and the "
          "configuration cannot be read:\n" +
          loaded.error().message};
    }
    if (loaded->app.control_token.empty()) {
      return Error{
          "no control token: give --token-file FILE, set $UNSHELVER_CONTROL_TOKEN, or set "
          "app.control_token in " +
          config_path + " or its secrets_file"};
    }
    instance.token = loaded->app.control_token;
    instance.token_source = "app.control_token of " + config_path;
  }
  for (char c : instance.token) {
    if (is_control(c))
      return Error{"the control token from " + instance.token_source + " contains control characters"};
  }
  return instance;
}

Result<std::unique_ptr<CliClient>> CliClient::open(Instance instance) {
  std::unique_ptr<CliClient> client(new CliClient(std::move(instance)));
  if (int rc = client->loop_.init_error(); rc != 0) {
    return Error{std::string("cannot initialise the event loop: ") + uv_strerror(rc)};
  }
  client->http_ = std::make_unique<io::HttpClient>(client->loop_.get());
  return client;
}

CliClient::CliClient(Instance instance) : instance_(std::move(instance)) {}

CliClient::~CliClient() {
  if (!loop_.open()) return;
  // HttpClient's shutdown order (http_client.h): close, then run the loop until its handles are
  // closed; only then can the loop itself be closed.
  if (http_) http_->close();
  http_.reset();
  if (int rc = loop_.close(); rc != 0) {
    std::fprintf(stderr, "unshelver: the event loop did not close cleanly: %s\n", uv_strerror(rc));
  }
}

io::ClientResponse CliClient::request(const std::string& method, const std::string& target,
                                      std::chrono::milliseconds timeout) {
  io::ClientRequest request;
  request.method = method;
  request.url = instance_.base_url + target;
  request.timeout = timeout;
  request.headers.emplace_back("Accept", "application/json");
  if (!instance_.token.empty()) request.headers.emplace_back("Authorization", "Bearer " + instance_.token);
  request.headers.emplace_back("User-Agent", "unshelver-cli");

  // The callback only stores the answer; it runs on this loop, before uv_run returns.
  std::optional<io::ClientResponse> answer;
  http_->send(std::move(request), [&answer](io::ClientResponse response) { answer = std::move(response); });
  while (!answer) {
    // HttpClient promises exactly one callback; a loop with nothing left to do would mean it broke
    // that promise, and waiting forever would hide it.
    if (uv_run(loop_.get(), UV_RUN_ONCE) == 0 && !answer) {
      io::ClientResponse lost;
      lost.error = "the request ended without an answer";
      return lost;
    }
  }
  return std::move(*answer);
}

void CliClient::pause(std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return;
  io::Timer timer(loop_.get());
  bool done = false;
  timer.start(delay, [&done] { done = true; });
  while (!done && uv_run(loop_.get(), UV_RUN_ONCE) != 0) {
  }
}

std::string printable(std::string_view text, const std::string& token, std::size_t limit) {
  std::string out = core::replace_all(std::string(text), token, "[token]");
  if (out.size() > limit) {
    // Cut at the start of a UTF-8 sequence, not inside one.
    std::size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out = out.substr(0, cut) + "...";
  }
  return core::escape_control_characters(out);
}

std::string server_error(const io::ClientResponse& response, const std::string& token) {
  const json body = json::parse(response.body, nullptr, false);
  if (body.is_object()) {
    auto error = body.find("error");
    if (error != body.end() && error->is_string()) return printable(error->get<std::string>(), token);
  }
  return printable(core::trim(response.body), token);
}

Failure describe_failure(const io::ClientResponse& response, const Instance& instance, bool names_backend) {
  if (!response.transport_ok()) {
    return {kExitFailed,
            "cannot reach " + instance.base_url + ": " + printable(response.error, instance.token) +
                "\nIs unshelver running there? (--url, $UNSHELVER_URL or `listen` in the configuration)"};
  }
  const std::string said = server_error(response, instance.token);
  const std::string because = said.empty() ? "" : ": " + said;
  const std::string status = "HTTP " + std::to_string(response.status);
  switch (response.status) {
    case 401:
      return {kExitRefused, "the instance refused the control token from " + instance.token_source + " (" +
                                status + because + ")"};
    case 403: return {kExitRefused, "the instance refused the request (" + status + because + ")"};
    case 429: {
      std::string message =
          "the instance refuses tokens from this address for now (" + status + because + ")";
      if (const std::string* retry = response.header("retry-after"); retry != nullptr) {
        const std::string when = printable(core::trim(*retry), instance.token, 40);
        const bool seconds = !when.empty() && when.find_first_not_of("0123456789") == std::string::npos;
        message += seconds ? "; Retry-After: " + when + " s" : "; Retry-After: " + when;
      }
      return {kExitRefused, message};
    }
    case 404:
      if (names_backend) return {kExitUnknownBackend, "no such backend (" + status + because + ")"};
      break;
    default: break;
  }
  return {kExitFailed, instance.base_url + " answered " + status + because};
}

}  // namespace unshelver::app::cli
