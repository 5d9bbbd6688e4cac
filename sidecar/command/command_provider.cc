#include "command/command_provider.h"

#include <spdlog/spdlog.h>

#include "events/notification.h"

namespace unshelver::providers {

namespace command = core::command;

namespace {
command::Ending ending_of(io::ProcessResult::Outcome outcome) {
  using Outcome = io::ProcessResult::Outcome;
  switch (outcome) {
    case Outcome::kExited: return command::Ending::kExited;
    case Outcome::kSignalled: return command::Ending::kSignalled;
    case Outcome::kTimedOut: return command::Ending::kTimedOut;
    case Outcome::kSpawnFailed: break;
  }
  return command::Ending::kSpawnFailed;
}
}  // namespace

CommandProvider::CommandProvider(uv_loop_t* loop, const core::BackendConfig& backend,
                                 const std::map<std::string, std::string>& daemon_environment)
    : backend_(backend),
      environment_(command::child_environment(backend, daemon_environment)),
      child_(std::make_unique<io::ChildProcess>(loop)) {
  default_port_ = backend.port > 0 ? backend.port : (backend.url_scheme == "https" ? 443 : 80);
}

CommandProvider::~CommandProvider() {
  close();
}

void CommandProvider::close() {
  if (closed_) return;
  closed_ = true;
  queue_.clear();
  // Destroying the child kills its process group and forgets its callback.
  child_.reset();
}

std::vector<std::string> CommandProvider::problems() const {
  std::vector<std::string> found;
  for (core::Command command : {core::Command::kWake, core::Command::kSleep, core::Command::kObserve}) {
    const auto& argv = argv_of(command);
    if (argv.empty()) continue;
    if (io::find_program(argv.front(), environment_.path).empty()) {
      found.push_back("the " + std::string(core::to_string(command)) + " command's program \"" +
                      argv.front() + "\" is not an executable file on the commands' PATH (" +
                      environment_.path + ")");
    }
  }
  for (const std::string& name : environment_.missing) {
    found.push_back("pass_environment names " + name + ", which Unshelver's environment does not have");
  }
  return found;
}

const std::vector<std::string>& CommandProvider::argv_of(core::Command command) const {
  switch (command) {
    case core::Command::kWake: return backend_.command.wake;
    case core::Command::kSleep: return backend_.command.sleep;
    case core::Command::kObserve: break;
  }
  return backend_.command.observe;
}

std::string CommandProvider::describe(core::Command command, const io::ProcessResult& result) const {
  // Scrubbed before it is cut and escaped, so that a secret is matched as it was printed.
  const std::string said = core::scrub_secrets(result.describe(), environment_.secrets);
  return std::string(core::to_string(command)) + " command " +
         command::quote(said, command::kQuoteLimit + 100);
}

void CommandProvider::run(core::Command command, std::function<void(io::ProcessResult)> on_done) {
  queue_.push_back(Job{command, std::move(on_done)});
  start_next();
}

void CommandProvider::start_next() {
  if (closed_ || queue_.empty() || child_->running()) return;
  Job job = std::move(queue_.front());
  queue_.pop_front();
  io::ProcessSpec spec;
  spec.arguments = argv_of(job.command);
  spec.environment = environment_.entries;
  spec.environment.push_back("UNSHELVER_COMMAND=" + std::string(core::to_string(job.command)));
  spec.working_directory = backend_.command.working_directory;
  spec.output_limit = backend_.command.output_limit;
  spec.timeout = backend_.command.timeout;
  spdlog::debug("[{}] running the {} command ({})", backend_.name, core::to_string(job.command),
                spec.arguments.empty() ? std::string() : spec.arguments.front());
  // The child's callback runs on the loop after start() returned (never inside it), and only
  // while this provider has not closed: destroying the child forgets it.
  child_->start(std::move(spec), [this, on_done = std::move(job.on_done)](io::ProcessResult result) {
    on_done(std::move(result));
    start_next();
  });
}

void CommandProvider::observe(ObserveMode /*mode*/, ObserveCallback on_done) {
  run(core::Command::kObserve, [this, on_done = std::move(on_done)](const io::ProcessResult& result) {
    if (!result.succeeded()) {
      on_done(Error{describe(core::Command::kObserve, result)});
      return;
    }
    auto observation = command::parse_observation(result.output, result.output_discarded > 0, default_port_);
    if (!observation) {
      on_done(Error{core::scrub_secrets(observation.error().message, environment_.secrets)});
      return;
    }
    observation->status = core::scrub_secrets(observation->status, environment_.secrets);
    observation->detail = core::scrub_secrets(observation->detail, environment_.secrets);
    if (!backend_.upstream.empty()) observation->upstream.clear();
    if (!unsettled_.empty()) observation->status += "; last " + unsettled_;
    on_done(std::move(*observation));
  });
}

void CommandProvider::wake(ActionCallback on_done) {
  act(core::Command::kWake, std::move(on_done));
}

void CommandProvider::sleep(ActionCallback on_done) {
  act(core::Command::kSleep, std::move(on_done));
}

void CommandProvider::act(core::Command command, ActionCallback on_done) {
  run(command, [this, command, on_done = std::move(on_done)](const io::ProcessResult& result) {
    const core::ActionOutcome outcome =
        command::action_outcome(ending_of(result.outcome), result.exit_status);
    switch (outcome) {
      case core::ActionOutcome::kAccepted:
        unsettled_.clear();
        spdlog::info("[{}] the {} command succeeded", backend_.name, core::to_string(command));
        on_done(ActionResult::accepted());
        return;
      case core::ActionOutcome::kBusy:
        unsettled_ = describe(command, result);
        on_done(ActionResult::busy(unsettled_));
        return;
      case core::ActionOutcome::kRefused: break;
    }
    on_done(ActionResult::refused(describe(command, result)));
  });
}

}  // namespace unshelver::providers
