"""Benchmark (not a test): how fast a wake reaches the cloud, and whether the loop stalls on it.

Runs the real binary against the fake OpenStack (tests/fakes/fake_openstack.py) on loopback.

1. Wake latency: the time from `POST /control/wake/gpu` (an admin's wake with the control token, as `unshelver wake` sends it) leaving the client to the Nova action arriving at
   the fake, with a warm token, median over 100 wakes (BENCH_WAKES). Unshelver chooses the action
   from its last observation and posts it at once; the baseline, measured in the same run, is one
   bare GET of the same server straight from this script: the fake's own round trip.
   Target (OpenStack issue): median <= 5 ms.
2. Launcher latency while every Nova call hangs until its timeout, beside the same launcher with
   an idle cloud. Target: <= 50 ms.
3. Cloud API calls per minute with N settled backends (BENCH_SETTLED_BACKENDS, 20), all asleep on
   the fake OpenStack, counted by the fake over BENCH_SETTLED_SECONDS (90) after they settled,
   beside the same figure for the baseline binary BENCH_BASELINE_BIN (e.g. the main build's
   /work/main/build/unshelver), measured in the same run. Settled observations share one
   GET /servers/detail (issue 20); without that, each backend reads its server once a period.
   BENCH_CLOUD=exoscale measures the same on the fake Exoscale API (tests/fakes/fake_exoscale.py):
   N stopped instances in one zone, whose settled observations share one GET /v2/instance.

    python3 tests/bench/cloud_bench.py [BINARY]      (BENCH_SECTION=settled: only the third)
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
if len(sys.argv) > 1:
    os.environ["UNSHELVER_BIN"] = os.path.abspath(sys.argv[1])

import harness  # noqa: E402
from fake_exoscale import FakeExoscale  # noqa: E402
from fake_openstack import FakeOpenStack  # noqa: E402
from harness import Unshelver, free_port  # noqa: E402
from test_openstack import openstack_config, password_auth  # noqa: E402

WAKES = int(os.environ.get("BENCH_WAKES", "100"))
SETTLED_BACKENDS = int(os.environ.get("BENCH_SETTLED_BACKENDS", "20"))
SETTLED_SECONDS = float(os.environ.get("BENCH_SETTLED_SECONDS", "90"))
SETTLED_CLOUD = os.environ.get("BENCH_CLOUD", "openstack")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def launcher_latencies(daemon, seconds):
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with urllib.request.urlopen(daemon.url("/"), timeout=10) as response:
            response.read()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main():
    workdir = tempfile.mkdtemp(prefix="unshelver-cloud-bench-")
    guest_port = free_port()
    fake = FakeOpenStack({"timings": {"default": 0.01}}).start()
    server_id = fake.add_server("gpu-box", addresses={"private": [{"addr": "127.0.0.1", "version": 4}]},
                                serve_http_port=guest_port)
    port = free_port()
    text = openstack_config(workdir, port, password_auth(fake), f"    port: {guest_port}\n", idle_seconds=3600)
    text = text.replace("log_level: debug", "log_level: warn")
    daemon = Unshelver(text, workdir=workdir, port=port)
    daemon.start()
    try:
        daemon.wait_for_state("asleep", 10)
        wake_ms, baseline_ms = [], []
        for run in range(WAKES + 1):
            # The fake stamps each request when it arrives, so this script may look for it at
            # leisure; an empty log and a slow poll keep it from competing with the fake for the
            # interpreter while the request is on its way.
            fake.clear_requests()
            started = time.time()
            daemon.wake()
            arrived = None
            while arrived is None:
                time.sleep(0.005)
                posts = fake.requests(service="compute", method="POST", path_regex=r"/action$")
                fresh = [p for p in posts if p["time"] >= started]
                if fresh:
                    arrived = fresh[0]["time"]
            if run > 0:  # the first wake warms the connection and the token
                wake_ms.append((arrived - started) * 1000)
            daemon.wait_for_state("ready", 10)
            # Shelve it "outside Unshelver": it follows the cloud back to asleep.
            fake.set_server_state(server_id, vm_state="shelved_offloaded")
            daemon.wait_for_state("asleep", 10)
            # The baseline: one GET of the same server from here, the fake's own round trip (401
            # without a token; the round trip is what is measured).
            get_started = time.perf_counter()
            try:
                urllib.request.urlopen(f"{fake.url}/compute/v2.1/servers/{server_id}", timeout=5).read()
            except urllib.error.HTTPError:
                pass
            baseline_ms.append((time.perf_counter() - get_started) * 1000)
        median = statistics.median(wake_ms)
        base = statistics.median(baseline_ms)
        print(f"wake -> Nova action at the fake, warm token, {len(wake_ms)} wakes: "
              f"median {median:.2f} ms, p90 {percentile(wake_ms, 0.9):.2f} ms, max {max(wake_ms):.2f} ms "
              f"(target <= 5 ms)")
        print(f"baseline, one bare GET to the fake from this script: median {base:.2f} ms; "
              f"wake latency = {median / base:.1f}x one fake round trip (Unshelver sends the action from its last "
              f"observation: one round trip, plus this script's own POST /control/wake with its token check)")

        idle = launcher_latencies(daemon, 2)
        fake.add_fault(service="compute", delay_seconds=5, times=None)
        daemon.wake()  # asleep again: the wake's GET now hangs until its timeout, three times
        hung = launcher_latencies(daemon, 3)
        fake.clear_faults()
        print(f"launcher GET / with an idle cloud: {len(idle)} requests, median {statistics.median(idle):.2f} ms, "
              f"max {max(idle):.2f} ms")
        print(f"launcher GET / while every Nova call hangs: {len(hung)} requests, median "
              f"{statistics.median(hung):.2f} ms, p99 {percentile(hung, 0.99):.2f} ms, max {max(hung):.2f} ms "
              f"(target <= 50 ms; {max(hung) / max(idle):.2f}x the idle maximum)")
    finally:
        daemon.stop(expect_code=None)
        fake.stop()


class SettledOpenStack:
    """N shelved servers on the fake OpenStack; its calls are Nova's, its listings /servers/detail."""

    def __init__(self, names):
        self.fake = FakeOpenStack({"timings": {"default": 0.01}}).start()
        for name in names:
            self.fake.add_server(f"{name}-box", addresses={"private": [{"addr": "127.0.0.1", "version": 4}]})
        self.config = password_auth(self.fake)
        self.startup_grace = 0

    def button(self, name):
        return f"    instance_name: {name}-box\n"

    def calls(self):
        calls = self.fake.requests(service="compute")
        return calls, [c for c in calls if c["path"].endswith("/servers/detail")]


class SettledExoscale:
    """N stopped instances in one zone on the fake Exoscale API; its listings are list-instances."""

    def __init__(self, names):
        self.fake = FakeExoscale({"timings": {"start_seconds": 0.01, "stop_seconds": 0.01}}).start()
        # By id: a name would be resolved with a list-instances call per backend at start, which
        # could still be under way when the count begins.
        self.ids = {name: self.fake.add_instance(f"{name}-box", state="stopped", zone="de-fra-1")
                    for name in names}
        self.config = (f"exoscale:\n  api_url: {self.fake.api_url}\n  api_key: {self.fake.api_key}\n"
                       f"  api_secret: {self.fake.api_secret}\n")
        # At start every backend reads its instance once (the check, whose answer is also the
        # first look); before, twice at once, and with 100 backends the fake's listen queue
        # overflowed and a few reads timed out (30 s) and were retried. The grace keeps such
        # start-up calls out of the settled count, whichever build is measured.
        self.startup_grace = 35

    def button(self, name):
        return f"    provider: exoscale\n    zone: de-fra-1\n    instance_id: {self.ids[name]}\n"

    def calls(self):
        calls = self.fake.requests()
        return calls, [c for c in calls if c["endpoint"] == "list-instances"]


def settled_calls_per_minute(binary, backends, seconds):
    """Cloud API calls per minute (any method) the fake sees from `binary` guarding `backends`
    sleeping VMs once all of them are asleep, over `seconds`; how many were listings; and the calls
    made at start-up, until every backend was asleep."""
    workdir = tempfile.mkdtemp(prefix="unshelver-settled-bench-")
    names = [f"vm{index:04d}" for index in range(backends)]
    cloud = SettledExoscale(names) if SETTLED_CLOUD == "exoscale" else SettledOpenStack(names)
    fake = cloud.fake
    buttons = "".join(f"""
  - id: {name}
    label: {name}
{cloud.button(name)}    port: 9
    idle_timeout_seconds: 3600
""" for name in names)
    port = free_port()
    text = f"""
app:
  title: settled bench
listen: 127.0.0.1:{port}
state_dir: {os.path.join(workdir, "state")}
log_level: warn
{cloud.config}
buttons:{buttons}
"""
    saved, harness.BINARY = harness.BINARY, binary
    daemon = Unshelver(text, workdir=workdir, port=port)
    try:
        daemon.start()
        daemon.wait_until(lambda: all(b["state"] == "asleep" for b in daemon.status()["backends"]), 60,
                          "every backend asleep")
        # Start-up's calls: each backend's check and first look (one read each since issue 20).
        startup = len(cloud.calls()[0])
        time.sleep(cloud.startup_grace)
        fake.clear_requests()
        time.sleep(seconds)
        calls, listings = cloud.calls()
        return len(calls) * 60.0 / seconds, len(listings) * 60.0 / seconds, startup
    finally:
        harness.BINARY = saved
        daemon.stop(expect_code=None)
        fake.stop()


def settled_section():
    baseline = os.environ.get("BENCH_BASELINE_BIN", "")
    figures = [("this build", harness.BINARY)]
    if baseline:
        figures.append(("baseline " + baseline, os.path.abspath(baseline)))
    results = {}
    for label, binary in figures:
        total, listed, startup = settled_calls_per_minute(binary, SETTLED_BACKENDS, SETTLED_SECONDS)
        results[label] = total
        revision = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
        cloud = "Exoscale" if SETTLED_CLOUD == "exoscale" else "OpenStack"
        print(f"cloud API calls at start-up with {SETTLED_BACKENDS} backends on the fake {cloud}, {label}: "
              f"{startup} ({startup / SETTLED_BACKENDS:.1f} per backend, until every one was asleep)")
        print(f"cloud API calls per minute with {SETTLED_BACKENDS} settled backends on the fake {cloud}, "
              f"{label} ({revision}): {total:.1f} ({listed:.1f} of them listings), over {SETTLED_SECONDS:.0f} s")
    if len(results) == 2:
        ours, theirs = results.values()
        print(f"settled API calls: {ours:.1f} vs {theirs:.1f} per minute "
              f"({(ours / theirs if theirs else float('nan')):.2f}x the baseline)")
    else:
        print("no baseline: set BENCH_BASELINE_BIN to another build's binary to measure it beside this one")


if __name__ == "__main__":
    if os.environ.get("BENCH_SECTION") != "settled":
        main()
    settled_section()
