#include "uv/process.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <exception>

namespace unshelver::io {

namespace {
using Clock = std::chrono::steady_clock;

// How long the result waits, after the child exited, for outputs that a grandchild still holds
// open: the child's own last bytes are in the pipe by then, so this only has to be short.
constexpr std::chrono::milliseconds kDrainAfterExit{250};

std::string first_line(std::string_view text, std::size_t limit) {
  while (!text.empty() && (text.front() == '\n' || text.front() == '\r' || text.front() == ' ')) {
    text.remove_prefix(1);
  }
  text = text.substr(0, text.find_first_of("\r\n"));
  if (text.size() > limit) return std::string(text.substr(0, limit)) + "...";
  return std::string(text);
}
}  // namespace

std::string ProcessResult::describe() const {
  switch (outcome) {
    case Outcome::kExited: {
      std::string text = "exited with status " + std::to_string(exit_status);
      const std::string said = first_line(errors.empty() ? output : errors, 200);
      if (!said.empty()) text += ": " + said;
      return text;
    }
    case Outcome::kSignalled: return "killed by signal " + std::to_string(term_signal);
    case Outcome::kTimedOut:
      return "did not finish in time and was killed after " + std::to_string(duration.count()) + " ms";
    case Outcome::kSpawnFailed: break;
  }
  return error;
}

// One child's handles and what is known about it. `open_handles` counts the handles initialised
// and not yet closed; the close callback that brings it to zero deletes the block.
struct ChildProcess::Run {
  enum class TimerStep { kNone, kTimeout, kKill, kDrain, kDeliver };

  uv_process_t process{};
  uv_pipe_t input_pipe{};
  uv_pipe_t output_pipe{};
  uv_pipe_t error_pipe{};
  uv_timer_t timer{};
  uv_write_t write_request{};
  int open_handles = 0;

  ChildProcess* owner = nullptr;  // null once the owner is gone
  Callback done;
  std::string input;
  std::size_t limit = 0;
  std::chrono::milliseconds kill_grace{0};
  Clock::time_point started_at = Clock::now();
  ProcessResult result;
  TimerStep step = TimerStep::kNone;
  int pid = 0;
  bool process_initialized = false;  // uv_spawn was called (which initialises the handle)
  bool spawned = false;
  bool exited = false;
  bool output_open = false;
  bool errors_open = false;
  bool timed_out = false;
  bool finished = false;
  std::array<char, std::size_t{16} * 1024> buffer{};

  template <typename Handle>
  void adopt(Handle* handle) {
    handle->data = this;
    ++open_handles;
  }
  template <typename Handle>
  void close(Handle* handle) {
    auto* plain = reinterpret_cast<uv_handle_t*>(handle);
    if (!uv_is_closing(plain)) uv_close(plain, on_closed);
  }
  // Signals the child's whole group (the child leads it: UV_PROCESS_DETACHED), so that a shell
  // script's own children go too.
  void signal_group(int signal_number) const {
    if (!spawned || exited) return;
    if (uv_kill(-pid, signal_number) != 0) uv_kill(pid, signal_number);
  }
  bool outputs_ended() const { return !output_open && !errors_open; }

  void arm(TimerStep next, std::chrono::milliseconds delay) {
    step = next;
    uv_timer_start(&timer, on_timer, static_cast<std::uint64_t>(std::max<std::int64_t>(0, delay.count())), 0);
  }

  void finish();
  void on_output(uv_stream_t* stream, ssize_t nread);

  static void on_closed(uv_handle_t* handle) noexcept {
    auto* run = static_cast<Run*>(handle->data);
    if (--run->open_handles == 0) delete run;
  }
  static void on_timer(uv_timer_t* handle) noexcept;
  static void on_exit(uv_process_t* process, std::int64_t exit_status, int term_signal) noexcept;
  static void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buffer) noexcept {
    auto* run = static_cast<Run*>(handle->data);
    *buffer = uv_buf_init(run->buffer.data(), static_cast<unsigned>(run->buffer.size()));
  }
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) noexcept {
    static_cast<Run*>(stream->data)->on_output(stream, nread);
  }
  static void on_written(uv_write_t* request, int) noexcept {
    // Written, refused (EPIPE: the child closed its stdin early) or cancelled by a close: in every
    // case stdin is done, and closing it tells the child there is no more.
    auto* run = static_cast<Run*>(request->data);
    run->close(&run->input_pipe);
  }
};

void ChildProcess::Run::on_output(uv_stream_t* stream, ssize_t nread) {
  const bool is_output = stream == reinterpret_cast<uv_stream_t*>(&output_pipe);
  if (nread > 0) {
    std::string& kept = is_output ? result.output : result.errors;
    std::uint64_t& discarded = is_output ? result.output_discarded : result.errors_discarded;
    const auto size = static_cast<std::size_t>(nread);
    const std::size_t room = limit > kept.size() ? limit - kept.size() : 0;
    kept.append(buffer.data(), std::min(room, size));
    if (size > room) discarded += size - room;
    return;
  }
  if (nread == 0) return;  // EAGAIN: nothing this time
  // End of file, or a read error: either way nothing more comes from this output.
  uv_read_stop(stream);
  close(stream);
  (is_output ? output_open : errors_open) = false;
  if (exited && outputs_ended()) finish();
}

void ChildProcess::Run::on_timer(uv_timer_t* handle) noexcept {
  auto* run = static_cast<Run*>(handle->data);
  switch (run->step) {
    case TimerStep::kTimeout:
      run->timed_out = true;
      run->signal_group(SIGTERM);
      run->arm(TimerStep::kKill, run->kill_grace);
      return;
    case TimerStep::kKill:
      run->signal_group(SIGKILL);
      run->step = TimerStep::kNone;
      return;
    case TimerStep::kDrain:
    case TimerStep::kDeliver: run->finish(); return;
    case TimerStep::kNone: return;
  }
}

void ChildProcess::Run::on_exit(uv_process_t* process, std::int64_t exit_status, int term_signal) noexcept {
  auto* run = static_cast<Run*>(process->data);
  run->exited = true;
  run->result.exit_status = static_cast<int>(exit_status);
  run->result.term_signal = term_signal;
  if (run->outputs_ended()) {
    run->finish();
  } else {
    run->arm(TimerStep::kDrain, kDrainAfterExit);
  }
}

void ChildProcess::Run::finish() {
  if (finished) return;
  finished = true;
  uv_timer_stop(&timer);
  step = TimerStep::kNone;
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_at);
  if (spawned) {
    using Outcome = ProcessResult::Outcome;
    result.outcome = timed_out                 ? Outcome::kTimedOut
                     : result.term_signal != 0 ? Outcome::kSignalled
                                               : Outcome::kExited;
  }
  if (process_initialized) close(&process);
  close(&input_pipe);
  close(&output_pipe);
  close(&error_pipe);
  close(&timer);
  if (owner == nullptr) return;
  owner->run_ = nullptr;
  owner = nullptr;
  // Moved out first: the callback may destroy the ChildProcess or start the next child.
  Callback callback = std::move(done);
  done = nullptr;
  if (!callback) return;
  try {
    callback(std::move(result));
  } catch (const std::exception& error) {
    spdlog::critical("uncaught exception in a child process callback: {}", error.what());
  } catch (...) {
    spdlog::critical("uncaught non-standard exception in a child process callback");
  }
}

ChildProcess::ChildProcess(uv_loop_t* loop) : loop_(loop) {}

ChildProcess::~ChildProcess() {
  if (run_ == nullptr) return;
  // The block stays until the child is reaped (see the header); only the callback is forgotten.
  run_->owner = nullptr;
  run_->done = nullptr;
  run_->signal_group(SIGKILL);
  run_ = nullptr;
}

bool ChildProcess::start(ProcessSpec spec, Callback done) {
  if (run_ != nullptr) return false;
  auto* run = new Run{};
  run->owner = this;
  run->done = std::move(done);
  run->input = std::move(spec.input);
  run->limit = spec.output_limit;
  run->kill_grace = spec.kill_grace;
  run_ = run;

  // uv_timer_init and uv_pipe_init only initialise fields on Linux; their results are checked all
  // the same, as a broken loop would otherwise go unnoticed.
  int rc = uv_timer_init(loop_, &run->timer);
  if (rc != 0) spdlog::critical("uv_timer_init failed: {}", uv_strerror(rc));
  run->adopt(&run->timer);
  for (uv_pipe_t* pipe : {&run->input_pipe, &run->output_pipe, &run->error_pipe}) {
    rc = uv_pipe_init(loop_, pipe, 0);
    if (rc != 0) spdlog::critical("uv_pipe_init failed: {}", uv_strerror(rc));
    run->adopt(pipe);
  }

  std::vector<char*> argv;
  for (std::string& argument : spec.arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& entry : spec.environment) envp.push_back(entry.data());
  envp.push_back(nullptr);

  std::array<uv_stdio_container_t, 3> stdio{};
  stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
  stdio[0].data.stream = reinterpret_cast<uv_stream_t*>(&run->input_pipe);
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&run->output_pipe);
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&run->error_pipe);

  uv_process_options_t options{};
  options.exit_cb = Run::on_exit;
  options.file = spec.arguments.empty() ? "" : spec.arguments[0].c_str();
  options.args = argv.data();
  options.env = envp.data();
  options.cwd = spec.working_directory.empty() ? nullptr : spec.working_directory.c_str();
  // A process group of its own, so that a timeout can stop the child's children too.
  options.flags = UV_PROCESS_DETACHED;
  options.stdio_count = static_cast<int>(stdio.size());
  options.stdio = stdio.data();

  // uv_spawn initialises the process handle before anything can fail, so it is closed (and
  // counted) whatever the result.
  if (spec.arguments.empty()) {
    rc = UV_EINVAL;
  } else {
    rc = uv_spawn(loop_, &run->process, &options);
    run->adopt(&run->process);
    run->process_initialized = true;
  }
  if (rc != 0) {
    const std::string program = spec.arguments.empty() ? "an empty command" : spec.arguments[0];
    run->result.outcome = ProcessResult::Outcome::kSpawnFailed;
    run->result.error = "cannot run " + program + ": " + uv_strerror(rc);
    // Delivered from the loop, as promised, never inside start().
    run->arm(Run::TimerStep::kDeliver, std::chrono::milliseconds(0));
    return true;
  }
  run->spawned = true;
  run->pid = run->process.pid;
  run->output_open =
      uv_read_start(reinterpret_cast<uv_stream_t*>(&run->output_pipe), Run::on_alloc, Run::on_read) == 0;
  run->errors_open =
      uv_read_start(reinterpret_cast<uv_stream_t*>(&run->error_pipe), Run::on_alloc, Run::on_read) == 0;
  if (run->input.empty()) {
    run->close(&run->input_pipe);
  } else {
    run->write_request.data = run;
    uv_buf_t buffer = uv_buf_init(run->input.data(), static_cast<unsigned>(run->input.size()));
    // An error here means the write callback never runs (libuv's errors.rst): stdin is closed now.
    if (uv_write(&run->write_request, reinterpret_cast<uv_stream_t*>(&run->input_pipe), &buffer, 1,
                 Run::on_written) != 0) {
      run->close(&run->input_pipe);
    }
  }
  run->arm(Run::TimerStep::kTimeout, spec.timeout);
  return true;
}

std::string host_name() {
  std::array<char, 256> host{};
  const bool named = ::gethostname(host.data(), host.size() - 1) == 0 && host[0] != '\0';
  return named ? std::string(host.data()) : std::string("localhost");
}

std::string find_program(std::string_view name, std::string_view path) {
  auto executable = [](const std::string& candidate) {
    struct stat info {};
    return ::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
           ::access(candidate.c_str(), X_OK) == 0;
  };
  if (name.empty()) return "";
  if (name.find('/') != std::string_view::npos) {
    std::string candidate(name);
    return executable(candidate) ? candidate : "";
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t colon = path.find(':', start);
    if (colon == std::string_view::npos) colon = path.size();
    std::string folder(path.substr(start, colon - start));
    // An empty entry means the current folder (execvp's rule).
    std::string candidate = (folder.empty() ? std::string(".") : folder) + "/" + std::string(name);
    if (executable(candidate)) return candidate;
    start = colon + 1;
  }
  return "";
}

}  // namespace unshelver::io
