// ChildProcess: runs one program as a child of the daemon, on the loop, and hands back what
// happened as a value (issue 17: the mail notifier's sendmail; issue 18's command provider).
//
// Flow: start() spawns `arguments` directly (never through a shell, so no text is ever
// interpreted as a command line) with exactly the environment given, in a process group of its
// own. The input bytes are written to the child's stdin, which is then closed so that the child
// sees end-of-file. Its stdout and stderr are read as they come: up to `output_limit` bytes of
// each are kept, the rest is counted and discarded, so a child that floods its output costs no
// memory. When `timeout` passes first, the child's whole group gets SIGTERM, and SIGKILL after
// `kill_grace` if it is still there. The result is delivered once the child has exited and both
// of its outputs have ended (or, when a grandchild keeps them open, shortly after the exit).
//
// Ownership: the process handle, the three pipes and the timer live in one heap block that only
// the last of their close callbacks frees (uv/handle.h's rule). Destroying the ChildProcess while
// the child runs kills its group with SIGKILL and forgets the callback; the block lives on until
// the child has been reaped, so that no zombie is left behind. Callbacks never let an exception
// escape into libuv.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace unshelver::io {

struct ProcessSpec {
  // argv, argv[0] included. arguments[0] is the program: a path, or a bare name that libuv looks
  // up on the PATH of `environment` (see find_program to resolve it beforehand).
  std::vector<std::string> arguments;
  // "NAME=value" entries: the child's whole environment. Nothing is inherited from the daemon.
  std::vector<std::string> environment;
  std::string working_directory;                      // "" keeps the daemon's
  std::string input;                                  // written to stdin, which is then closed
  std::size_t output_limit = std::size_t{64} * 1024;  // bytes kept of stdout, and of stderr
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds kill_grace{2'000};  // from SIGTERM to SIGKILL
};

struct ProcessResult {
  enum class Outcome {
    kExited,       // exit_status holds the code
    kSignalled,    // term_signal holds the signal (not one we sent for a timeout)
    kTimedOut,     // killed because `timeout` passed
    kSpawnFailed,  // never ran; error says why (errno's text)
  };
  Outcome outcome = Outcome::kSpawnFailed;
  int exit_status = 0;
  int term_signal = 0;
  std::string error;   // for kSpawnFailed: "cannot run /usr/sbin/sendmail: no such file or directory"
  std::string output;  // stdout, at most output_limit bytes
  std::string errors;  // stderr, at most output_limit bytes
  std::uint64_t output_discarded = 0;  // bytes of stdout past the limit
  std::uint64_t errors_discarded = 0;
  std::chrono::milliseconds duration{0};

  bool succeeded() const { return outcome == Outcome::kExited && exit_status == 0; }
  // One line for logs and status pages: "exited with status 75: <first line of stderr>",
  // "killed by signal 9", "timed out after 10 s", or the spawn error.
  std::string describe() const;
};

class ChildProcess {
 public:
  using Callback = std::function<void(ProcessResult)>;

  explicit ChildProcess(uv_loop_t* loop);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts the child. `done` runs exactly once, on the loop and never inside this call, also when
  // the program cannot be started (kSpawnFailed). Returns false, and never calls `done`, only
  // when a child started by this object still runs.
  bool start(ProcessSpec spec, Callback done);
  bool running() const { return run_ != nullptr; }

 private:
  struct Run;
  uv_loop_t* loop_;
  Run* run_ = nullptr;  // the child in flight; its block frees itself (see above)
};

// The first executable `name` in the colon-separated `path` (like execvp), or "" when there is
// none. A name containing '/' is returned as it is, when it is executable.
std::string find_program(std::string_view name, std::string_view path);

// This machine's name (gethostname(2)), or "localhost" when it has none.
std::string host_name();

}  // namespace unshelver::io
