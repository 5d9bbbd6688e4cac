// Signals between two Apps of one process (a configuration reload, app.h).
//
// The old App's signal handles close before the new App's exist, and libuv resets a signal to its
// default action when its last handle closes: a SIGHUP or SIGTERM in that gap would end the
// process at once, with no graceful stop. park_signals() closes the gap: it installs a plain
// handler that only notes which of the signals arrived; replay_parked_signals(), called once the
// new App's handles are started (and have replaced that handler), raises each noted signal again,
// so that the new loop handles it as if it had come a moment later.
#pragma once

#include <functional>
#include <initializer_list>

namespace unshelver::app {

// Runs `close_handles` (which closes the libuv handles of `signals`) with the signals blocked in
// this thread, then parks them, so that no moment is left with the default action in place here.
void close_and_park_signals(std::initializer_list<int> signals, const std::function<void()>& close_handles);

// Raises again each parked signal that arrived, once, and forgets them. Only after the handles
// for them are started.
void replay_parked_signals();

}  // namespace unshelver::app
