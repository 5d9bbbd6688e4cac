#include "app/signal_handover.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <array>
#include <csignal>

namespace unshelver::app {

namespace {

// Indexed by signal number; set by the handler, read on the loop's thread. sig_atomic_t is the
// only type a handler may write.
std::array<volatile std::sig_atomic_t, NSIG> parked{};

extern "C" void note_signal(int number) {
  if (number > 0 && number < NSIG) parked[static_cast<std::size_t>(number)] = 1;
}

}  // namespace

void close_and_park_signals(std::initializer_list<int> signals, const std::function<void()>& close_handles) {
  sigset_t set;
  sigemptyset(&set);
  for (int number : signals) sigaddset(&set, number);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &set, &previous);
  close_handles();
  struct sigaction action {};
  action.sa_handler = note_signal;
  sigemptyset(&action.sa_mask);
  for (int number : signals) {
    if (sigaction(number, &action, nullptr) != 0)
      spdlog::warn("cannot park signal {} during the reload", number);
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void replay_parked_signals() {
  for (std::size_t number = 1; number < parked.size(); ++number) {
    if (parked[number] == 0) continue;
    parked[number] = 0;
    spdlog::info("signal {} arrived during the reload: handling it now", number);
    if (std::raise(static_cast<int>(number)) != 0) spdlog::warn("cannot raise signal {} again", number);
  }
}

}  // namespace unshelver::app
