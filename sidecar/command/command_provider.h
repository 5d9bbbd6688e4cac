// CommandProvider: a backend VM on any cloud, driven through three commands (README "Any cloud
// through commands"; the contract is command/contract.h).
//
// Each observe, wake and sleep runs its configured argv as an io::ChildProcess: no shell, the
// environment built by core::command::child_environment and nothing else, the configured timeout
// (then the command's whole process group is killed) and output limit. One command runs at a
// time per backend: the reconciler asks for one thing at a time anyway, and a request that comes
// while a command runs waits in a queue, so two commands never act on one VM at once.
//
// Secrets reach a command only through its environment (pass_environment). Every message built
// from what a command printed is scrubbed of their values, cut to one line and made safe for
// logs, so a CLI that echoes its credentials does not put them in the log or the status page.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "backend/cloud_provider.h"
#include "command/contract.h"
#include "config/config.h"
#include "uv/process.h"

namespace unshelver::providers {

class CommandProvider final : public CloudProvider {
 public:
  // `daemon_environment` is the daemon's own environment (config::environment_snapshot()), from
  // which only the names listed in pass_environment (and PATH, HOME, USER, LOGNAME, LANG) are taken.
  CommandProvider(uv_loop_t* loop, const core::BackendConfig& backend,
                  const std::map<std::string, std::string>& daemon_environment);
  ~CommandProvider() override;

  // What is likely wrong with the configured commands, for warnings at start-up: a program not
  // found on the commands' PATH, a pass_environment variable the daemon does not have.
  std::vector<std::string> problems() const;

  std::string_view kind() const override { return "command"; }
  void observe(ObserveMode mode, ObserveCallback on_done) override;
  void wake(ActionCallback on_done) override;
  void sleep(ActionCallback on_done) override;
  void close() override;

 private:
  struct Job {
    core::Command command;
    std::function<void(io::ProcessResult)> on_done;
  };
  void run(core::Command command, std::function<void(io::ProcessResult)> on_done);
  void start_next();
  void act(core::Command command, ActionCallback on_done);
  // "wake command exited with status 1: <stderr's first line>", scrubbed of the secrets.
  std::string describe(core::Command command, const io::ProcessResult& result) const;
  const std::vector<std::string>& argv_of(core::Command command) const;

  core::BackendConfig backend_;
  core::command::ChildEnvironment environment_;
  int default_port_ = 80;
  std::unique_ptr<io::ChildProcess> child_;
  std::deque<Job> queue_;
  // Why the last wake or sleep could not be told accepted or refused (a timeout): added to the
  // observed status until an action is accepted, so that /api/status shows it.
  std::string unsettled_;
  bool closed_ = false;
};

}  // namespace unshelver::providers
