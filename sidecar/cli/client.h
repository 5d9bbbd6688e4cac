// The plumbing shared by the commands that talk to a running unshelver over HTTP: `unshelver
// events`, `status`, `wake` and `shelve`.
//
// Flow: a command parses its own flags and hands --config, --url and --token-file to
// take_connection_option; resolve_instance then decides where to ask (--url, else $UNSHELVER_URL,
// else the configuration's `listen`) and with which control token (--token-file, else
// $UNSHELVER_CONTROL_TOKEN, else the configuration's app.control_token, which load_config_file has
// already merged from config.yaml, its secrets file and the environment). The configuration is
// read only when one of them is still missing, so `--url` plus a token needs no config file.
// CliClient then sends one request at a time and blocks until the answer, on a private libuv loop
// driving io::HttpClient; describe_failure turns an answer that is not a success into one message
// and one exit code, the same for every command.
//
// The token is never taken from the command line (every user sees argv in `ps`) and never
// printed: messages name where it came from, and server texts are scrubbed of it before printing.
#pragma once

#include <uv.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/config.h"
#include "uv/http_client.h"
#include "uv/loop.h"

namespace unshelver::app::cli {

// Exit codes, the same for every command of this family (kExitCodesHelp says it for --help).
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;          // not reached, 5xx or another failed answer, the wait failed
constexpr int kExitUsage = 2;           // usage or configuration, no token, unreadable token file
constexpr int kExitRefused = 3;         // 401, 403, 429: the instance refused the token
constexpr int kExitUnknownBackend = 4;  // 404 from a route that names a backend

// The --help lines on --config, --url and --token-file, and the exit codes.
extern const char* const kConnectionHelp;
extern const char* const kExitCodesHelp;

struct ConnectionOptions {
  std::string config_path;
  std::string url;
  std::string token_file;
};

// When args[index] is --config (-c), --url or --token-file (also as --flag=VALUE), stores its
// value, moves `index` past it and returns true; returns false for any other argument. Fails on
// a missing value, on a URL that is not http(s), and on --token (never accepted: see above).
Result<bool> take_connection_option(const std::vector<std::string>& args, std::size_t& index,
                                    ConnectionOptions& options);

// The value after args[index] (an option that takes one, e.g. "--backend NAME"): moves `index`
// onto it, or fails naming `what` was expected.
Result<std::string> option_value(const std::vector<std::string>& args, std::size_t& index, const char* what);

// An argument as a message may quote it: long ones are not shown, since a token pasted by mistake
// must not be echoed back.
std::string shown_argument(const std::string& argument);

// The configuration named by options.config_path (else $UNSHELVER_CONFIG, else ./config.yaml).
Result<core::Config> load_config(const ConnectionOptions& options,
                                 const std::map<std::string, std::string>& env);

// The base URL of the instance that `listen` names; a wildcard address is asked on loopback.
Result<std::string> instance_url(const std::string& listen);

struct Instance {
  std::string base_url;      // "http://127.0.0.1:5001", no trailing slash
  std::string token;         // the control token: never print it
  std::string token_source;  // where it came from, for messages: "$UNSHELVER_CONTROL_TOKEN"
};

// Whether a command can do without the control token: `status` then shows the public view.
enum class TokenNeed { kRequired, kOptional };

// Where to ask and with which token (see the top of this file). Errors are usage or configuration
// errors (exit 2) and never contain the token. With TokenNeed::kOptional, no token anywhere is
// not an error (the token is then empty), unless a configuration named by --config or
// $UNSHELVER_CONFIG cannot be read.
Result<Instance> resolve_instance(const ConnectionOptions& options,
                                  const std::map<std::string, std::string>& env,
                                  TokenNeed need = TokenNeed::kRequired);

// One request at a time to one instance, each with `Authorization: Bearer <token>` (none without
// a token), blocking
// until the answer arrives. Not copyable or movable: the loop lives inside.
class CliClient {
 public:
  // Fails only when the event loop cannot be initialised.
  static Result<std::unique_ptr<CliClient>> open(Instance instance);
  ~CliClient();
  CliClient(const CliClient&) = delete;
  CliClient& operator=(const CliClient&) = delete;

  // `target` is the path and query ("/api/status"). POST sends an empty body.
  io::ClientResponse request(const std::string& method, const std::string& target,
                             std::chrono::milliseconds timeout);
  // Lets `delay` pass (on the loop, so curl's idle connections are still looked after).
  void pause(std::chrono::milliseconds delay);

  const Instance& instance() const { return instance_; }

 private:
  explicit CliClient(Instance instance);

  io::Loop loop_;
  std::unique_ptr<io::HttpClient> http_;
  Instance instance_;
};

// `text` safe for a terminal and free of the token: control characters are escaped
// (core::escape_control_characters), the token (if any) becomes "[token]", and more than `limit`
// bytes are cut.
std::string printable(std::string_view text, const std::string& token, std::size_t limit = 300);

// The server's explanation of an answer: its JSON "error", else the start of its body.
std::string server_error(const io::ClientResponse& response, const std::string& token);

struct Failure {
  int exit_code;
  std::string message;  // one or two lines, without the command's prefix or a final newline
};

// For an answer that is not 2xx, or no answer at all: what to say and which exit code to return.
// `names_backend`: the route names a backend, so 404 means "no such backend" (exit 4).
Failure describe_failure(const io::ClientResponse& response, const Instance& instance, bool names_backend);

}  // namespace unshelver::app::cli
