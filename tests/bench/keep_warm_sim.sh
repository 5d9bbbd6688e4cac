#!/usr/bin/env bash
# Benchmark (not a test): replays a synthetic four-week usage trace through the keep-warm and
# pre-warm decision code with a fake clock and prints, for idle-only, windows and pre-warm, the
# VM hours, the visitors who had to wait and the minutes they waited (tests/bench/keep_warm_sim.cc).
#
#   tests/bench/keep_warm_sim.sh [BUILD_DIR] [SEED]    (WAKE_MINUTES, IDLE_MINUTES size it)
set -euo pipefail
arg="${1:-build}"
if [ -f "$arg" ]; then build_dir="$(dirname "$arg")"; else build_dir="$arg"; fi
sim="$build_dir/tests/bench/keep_warm_sim"
if [ ! -x "$sim" ]; then cmake --build "$build_dir" --target keep_warm_sim >/dev/null; fi
"$sim" "${2:-17}"
