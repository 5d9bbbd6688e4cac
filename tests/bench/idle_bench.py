"""Benchmark (not a test): what an idle Unshelver costs, beside Debian's Caddy idle with one site.

    python3 tests/bench/idle_bench.py [BINARY]

Each process is started, left to settle (IDLE_SETTLE_SECONDS, default 65: long enough for the
access log's stat safety net to back off to its 30 s cap), and then measured over IDLE_SECONDS
(default 300): CPU time (from /proc/PID/task/*/schedstat; utime + stime in clock ticks beside it)
and wake-ups (voluntary context switches, all threads: each time the process slept and was woken,
by a timer or by input). The window is minutes long because an idle process's work comes in
periods of a minute or two: Caddy's Go runtime forces a garbage collection every two minutes
(runtime.forcegcperiod), Unshelver observes each sleeping backend's cloud once a minute. A 30 s
window sees one of those or none, by chance. The variants run at the same time, side by side (all
idle, so they hardly disturb each other; each window starts once its variant has settled;
IDLE_SEQUENTIAL=1 measures them one after another instead):
  caddy           Debian's Caddy with one site and an access log (the baseline)
  1 asleep        Unshelver, one sleeping sim backend, in-flight detection on (the default),
                  following an access log
  1000 asleep     the same with IDLE_FLEET (1,000) sleeping sim backends
  1000 asleep, settled N s
                  the same with app.settled_poll_interval_seconds: IDLE_SETTLED_SECONDS (180):
                  an operator's choice to observe sleeping VMs every 3 minutes, not every minute
  1 ready         one sim backend kept ready (sim.start_awake, a long idle timeout): health
                  probes run and the in-flight sampler walks the kernel's socket table
Figures are per 30 s of idling, whatever IDLE_SECONDS is; they are printed, never judged.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
if len(sys.argv) > 1:
    os.environ["UNSHELVER_BIN"] = os.path.abspath(sys.argv[1])

from caddy_harness import CADDY, wait_for_http  # noqa: E402
from harness import BINARY, Unshelver, free_port  # noqa: E402

IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "300"))
SETTLE_SECONDS = float(os.environ.get("IDLE_SETTLE_SECONDS", "65"))
SEQUENTIAL = os.environ.get("IDLE_SEQUENTIAL") == "1"
FLEET = int(os.environ.get("IDLE_FLEET", "1000"))
SETTLED = float(os.environ.get("IDLE_SETTLED_SECONDS", "180"))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def cpu_ns(pid):
    """Time on a CPU, summed over the process's threads (/proc/PID/task/*/schedstat, first field,
    in nanoseconds): utime + stime counts whole clock ticks (10 ms), too coarse for an idle process."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                total += int(schedstat.read().split()[0])
        except FileNotFoundError:
            pass  # The thread ended meanwhile.
    return total


def voluntary_switches(pid):
    """Summed over the process's threads (/proc/PID/task/*/status), so that a helper thread's
    wake-ups count too."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass  # The thread ended meanwhile.
    return total


def measure(pid):
    """(CPU ms from schedstat, CPU ms from utime + stime, wake-ups) per 30 s of idling."""
    ns_before, ticks_before, switches_before = cpu_ns(pid), cpu_ticks(pid), voluntary_switches(pid)
    started = time.monotonic()
    time.sleep(IDLE_SECONDS)
    elapsed = time.monotonic() - started
    scale = 30.0 / elapsed
    cpu = (cpu_ns(pid) - ns_before) / 1e6
    ticks_ms = (cpu_ticks(pid) - ticks_before) * 1000.0 / TICKS
    switches = voluntary_switches(pid) - switches_before
    return cpu * scale, ticks_ms * scale, switches * scale


def backend_yaml(index, ready):
    lines = [
        f"  - id: b{index}",
        f"    label: Backend {index}",
        "    provider: sim",
        f"    host: b{index}.localhost",
        f"    idle_timeout_seconds: {86400 if ready else 600}",
        "    sim:",
        "      wake_seconds: 0.2",
        "      boot_seconds: 0.1",
        "      sleep_seconds: 0.2",
    ]
    if ready:
        lines.append("      start_awake: true")
    return "\n".join(lines)


def unshelver_config(workdir, backends, ready, settled=None):
    access_log = os.path.join(workdir, "access.log")
    open(access_log, "a").close()
    buttons = "\n".join(backend_yaml(i, ready) for i in range(backends))
    settled_line = f"\n  settled_poll_interval_seconds: {settled:g}" if settled else ""
    return f"""
app:
  title: Idle bench{settled_line}
listen: 127.0.0.1:{{port}}
state_dir: {os.path.join(workdir, "state")}
activity_log_path: {access_log}
log_level: warn
buttons:
{buttons}
"""


def start_slowly(daemon, timeout=120):
    """Unshelver.start() with room for a large fleet's start-up (the harness allows 10 s)."""
    daemon.log = open(daemon.log_path, "ab")
    daemon.process = subprocess.Popen([BINARY] + daemon.args, stdout=daemon.log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise SystemExit(f"idle_bench: unshelver exited with {daemon.process.returncode}:\n{daemon.output()}")
        try:
            if daemon.get("/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"idle_bench: unshelver did not answer /healthz within {timeout} s")


def run_unshelver(backends, ready, settled=None):
    workdir = tempfile.mkdtemp(prefix="unshelver-idle-bench-")
    daemon = Unshelver(unshelver_config(workdir, backends, ready, settled), workdir=workdir)
    start_slowly(daemon)
    try:
        want = "ready" if ready else "asleep"
        deadline = time.monotonic() + 120
        while True:
            states = [backend["state"] for backend in daemon.status()["backends"]]
            if all(state == want for state in states):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"idle_bench: the backends did not all reach {want}: {set(states)}")
            time.sleep(1)
        time.sleep(SETTLE_SECONDS)
        return measure(daemon.process.pid)
    finally:
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run_caddy():
    workdir = tempfile.mkdtemp(prefix="unshelver-idle-bench-caddy-")
    port, admin_port = free_port(), free_port()
    caddyfile = os.path.join(workdir, "Caddyfile")
    with open(caddyfile, "w") as text:
        text.write(f"""{{
\tadmin 127.0.0.1:{admin_port}
\tauto_https off
\thttp_port {port}
}}

http://site.localhost:{port} {{
\tlog {{
\t\toutput file {os.path.join(workdir, "access.log")}
\t\tformat json
\t}}
\trespond "ok"
}}
""")
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(workdir, "xdg"), XDG_DATA_HOME=os.path.join(workdir, "xdg"))
    with open(os.path.join(workdir, "caddy.out"), "wb") as output:
        process = subprocess.Popen([CADDY, "run", "--config", caddyfile, "--adapter", "caddyfile"],
                                   stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_http(f"http://127.0.0.1:{admin_port}/config/", process=process)
        time.sleep(SETTLE_SECONDS)
        return measure(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    variants = []
    if CADDY is None:
        print("idle_bench: Debian's caddy is not installed; the baseline is skipped")
    else:
        variants.append(("caddy, 1 site (baseline)", run_caddy))
    variants.append(("unshelver, 1 asleep", lambda: run_unshelver(1, False)))
    variants.append((f"unshelver, {FLEET} asleep", lambda: run_unshelver(FLEET, False)))
    variants.append((f"unshelver, {FLEET} asleep, settled {SETTLED:g} s", lambda: run_unshelver(FLEET, False, SETTLED)))
    variants.append(("unshelver, 1 ready (sampling)", lambda: run_unshelver(1, True)))
    results = {}
    failures = []

    def measure_variant(name, run):
        try:
            results[name] = run()
        except BaseException as failure:  # SystemExit from a variant that did not start
            failures.append(f"{name}: {failure}")

    if SEQUENTIAL:
        for name, run in variants:
            measure_variant(name, run)
    else:
        threads = [threading.Thread(target=measure_variant, args=variant) for variant in variants]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise SystemExit("idle_bench: " + "; ".join(failures))
    how = "one after another" if SEQUENTIAL else "side by side"
    print(f"idle, per 30 s (measured over {IDLE_SECONDS:g} s each, {how}, after {SETTLE_SECONDS:g} s to settle;"
          f" {os.cpu_count()} CPUs; CPU from schedstat, utime+stime in ticks of {1000 // TICKS} ms in brackets):")
    baseline = results[variants[0][0]][0] if CADDY else None
    for name, _ in variants:
        cpu, ticks_ms, wakeups = results[name]
        ratio = f"  {cpu / baseline:6.2f}x caddy" if baseline else ""
        print(f"  {name:32s} {cpu:7.2f} ms CPU ({ticks_ms:5.0f} ms)  {wakeups:6.1f} wake-ups{ratio}")


if __name__ == "__main__":
    main()
