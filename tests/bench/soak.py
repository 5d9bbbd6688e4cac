"""Soak (not a test): wake/shelve cycles under a mix of hostile clients, for issue 15's acceptance.

    python3 tests/bench/soak.py [BINARY] [--seconds 600] [--nofile 1024] [...]

Runs the real binary with the simulated cloud behind Debian's Caddy on 127.0.0.1 (the harness of
tests/integration: BareCaddy, FakeBackend, test_routing's config with `caddy.manage: true`), and for
SOAK_SECONDS (default 600):

- every SOAK_CYCLE_SECONDS (30) wakes the backend `gpu` (idle timeout SOAK_IDLE_SECONDS, 20) through
  the launcher's button via Caddy (the admin token straight to Unshelver if the button is refused),
  touches the backend once through Caddy, and leaves it idle: the idle monitor must shelve it at its
  deadline, that touch + the idle timeout (no hostile client sends to the backend's host, so any
  later activity the daemon counts is not genuine; its own `idle_deadline` from /api/status, polled
  every 0.25 s, is shown when it moved). Each cycle prints the deadline and the lateness of the idle
  monitor's decision (the `ready -> sleeping` line of the daemon's log).
- meanwhile hostile clients run in one asyncio thread, each bounded in rate and concurrency:
    pipeline  one connection straight to Unshelver that pipelines `GET /` (SOAK_PIPELINE_RATE per
              second) and never reads; it pauses while the daemon's RSS is above --rss-limit-mb so
              that an unbounded output queue cannot take the machine down
    slow      SOAK_SLOW_BODIES connections (half through Caddy, half straight) sending
              `POST /control/login` bodies one byte every SOAK_SLOW_BYTE_SECONDS
    idle      SOAK_IDLE_CONNECTIONS connections straight to Unshelver that send nothing
    tokens    SOAK_TOKEN_RATE requests per second with a wrong bearer token and a long path, half
              through Caddy, half straight with a forged X-Forwarded-For
    fuzz      SOAK_FUZZ_RATE mutated valid requests per second to each of Unshelver's port and Caddy
  A connection the server closes is reopened (at most SOAK_CONNECT_RATE connects per second per
  kind), so the pressure stays constant.
- a probe thread GETs the launcher through Caddy every 0.5 s.

Every SOAK_REPORT_SECONDS (30) it prints one line: elapsed time, the daemon's RSS (VmRSS) and open
descriptors, the event log's size (events.jsonl and its rotated files), the launcher probes that
answered 200 / failed in the interval, the last shelve's lateness and what the hostile clients did.
At the end a summary against the targets of issue 15: RSS and descriptors flat within 10 % (from
the first report after the hostile clients ramped up), every idle shelve within 2 s of its
deadline, the launcher answering throughout, every state transition of the cycles present in the
event log. PASS/MISS are printed only: the soak exits 0 whatever it saw; only a failing set-up
(no Caddy, the daemon not starting) exits non-zero.

`--nofile N` starts the daemon with a soft descriptor limit of N (the hard limit unchanged, as
systemd does without LimitNOFILE) so that the descriptor attack shows. Everything binds 127.0.0.1,
uses free ports and stops by itself; the working directory is removed at the end unless --keep.
"""
import argparse
import asyncio
import datetime
import glob
import http.client
import json
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

TRANSITION = re.compile(r"^(\S+Z) \w+\s+\[gpu\] (\w+) -> (\w+) \((\w+)\) by ([\w-]+)")
RSS_TARGET = FDS_TARGET = 10.0      # per cent
LATENESS_TARGET = 2.0               # seconds
HOSTILE_KINDS = ("pipeline", "slow", "idle", "tokens", "fuzz")


# Each knob: its option, the environment variable that sets its default, the default, its meaning.
KNOBS = [
    ("--seconds", "SOAK_SECONDS", 600.0, "how long the hostile clients run"),
    ("--report-seconds", "SOAK_REPORT_SECONDS", 30.0, "seconds between two report lines"),
    ("--cycle-seconds", "SOAK_CYCLE_SECONDS", 30.0, "seconds between two wakes"),
    ("--idle-seconds", "SOAK_IDLE_SECONDS", 20, "the backend's idle timeout"),
    ("--nofile", "SOAK_NOFILE", 0, "the daemon's soft descriptor limit, 0 for this process's"),
    ("--pipeline-rate", "SOAK_PIPELINE_RATE", 200.0, "pipelined GET / per second, never read"),
    ("--slow-bodies", "SOAK_SLOW_BODIES", 600, "slow POST /control/login connections (half through Caddy)"),
    ("--slow-byte-seconds", "SOAK_SLOW_BYTE_SECONDS", 8.0, "seconds between two bytes of a slow body"),
    ("--idle-connections", "SOAK_IDLE_CONNECTIONS", 600, "connections that send nothing"),
    ("--token-rate", "SOAK_TOKEN_RATE", 100.0, "requests with a wrong bearer token per second"),
    ("--fuzz-rate", "SOAK_FUZZ_RATE", 20.0, "mutated requests per second, to each of Unshelver and Caddy"),
    ("--connect-rate", "SOAK_CONNECT_RATE", 100.0, "connects per second per hostile client kind at most"),
    ("--rss-limit-mb", "SOAK_RSS_LIMIT_MB", 512.0, "the pipeline flood pauses while the daemon's RSS is above"),
    ("--seed", "SOAK_SEED", 15, "the random seed of the clients and the mutations"),
]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary", nargs="?", help="the unshelver binary (default: build/unshelver)")
    for option, variable, default, meaning in KNOBS:
        kind = type(default)
        parser.add_argument(option, type=kind, default=kind(os.environ.get(variable, default)),
                            help=f"{meaning} ({variable}, default {default:g})")
    parser.add_argument("--clients", default=os.environ.get("SOAK_CLIENTS", ",".join(HOSTILE_KINDS)),
                        help=f"the hostile clients to run, comma-separated, empty for none (SOAK_CLIENTS, "
                             f"default {','.join(HOSTILE_KINDS)})")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--tcp-proxy", action="store_true",
                        help="Caddy reaches Unshelver over loopback TCP, like every local client, instead of "
                             "the production setup's http.proxy_socket (README \"Who the client is\"): the "
                             "per-client connection cap then counts Caddy and the direct attackers as one client")
    arguments = parser.parse_args()
    arguments.clients = [kind for kind in arguments.clients.split(",") if kind]
    unknown = set(arguments.clients) - set(HOSTILE_KINDS)
    if unknown:
        parser.error(f"unknown clients {sorted(unknown)}; known: {', '.join(HOSTILE_KINDS)}")
    if arguments.idle_seconds + 5 > arguments.cycle_seconds:
        parser.error("the idle timeout must be at least 5 s shorter than the cycle")
    return arguments


ARGUMENTS = parse_arguments()
if ARGUMENTS.binary:
    os.environ["UNSHELVER_BIN"] = os.path.abspath(ARGUMENTS.binary)

from caddy_harness import CADDY, BareCaddy, FakeBackend  # noqa: E402
from harness import Unshelver  # noqa: E402
from test_routing import routing_config  # noqa: E402


def parse_time(text):
    """An RFC 3339 UTC time as the daemon writes it, to a POSIX timestamp."""
    layout = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.datetime.strptime(text, layout).replace(tzinfo=datetime.timezone.utc).timestamp()


def clock(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def status_code(data):
    """The status of the first response in `data`, or None when it holds no status line."""
    match = re.match(rb"HTTP/\d\.\d (\d{3})", data)
    return int(match.group(1)) if match else None


class LauncherThroughCaddy(Unshelver):
    """The harness's client methods (visitor_form, public_wake, request) aimed at the launcher host
    through Caddy instead of Unshelver's own port; it starts nothing."""

    def __init__(self, caddy):
        self.port = caddy.port
        self.host = launcher_host(caddy)

    def request(self, method, path, headers=None, body=None, admin=False):
        return super().request(method, path, {"Host": self.host, **(headers or {})}, body, admin)


def launcher_host(caddy):
    return f"launcher.localhost:{caddy.port}"


# ------------------------------------------------------------------------------------------------
# What the daemon uses: memory, descriptors, event log.

class Sampler:
    """Samples the daemon's RSS and descriptors every second (for the maxima and the flood's brake)."""

    def __init__(self, pid, events_path):
        self.pid = pid
        self.events_path = events_path
        self.rss_kb = 0
        self.fds = 0
        self.max_rss_kb = 0
        self.max_fds = 0

    def sample(self):
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        self.rss_kb = int(line.split()[1])
            self.fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            pass  # the daemon exited; the report says so
        self.max_rss_kb = max(self.max_rss_kb, self.rss_kb)
        self.max_fds = max(self.max_fds, self.fds)
        return self.rss_kb, self.fds

    def event_log_bytes(self):
        return sum(os.path.getsize(path) for path in event_log_files(self.events_path) if os.path.exists(path))

    def run(self, stop):
        while not stop.wait(1.0):
            self.sample()


def event_log_files(events_path):
    """The event log and its rotated files (events.jsonl.1, .2, …), oldest first."""
    rotated = [path for path in glob.glob(events_path + ".*") if path[len(events_path) + 1:].isdigit()]
    return sorted(rotated, key=lambda path: -int(path.rsplit(".", 1)[1])) + [events_path]


# ------------------------------------------------------------------------------------------------
# The launcher probe: one GET / through Caddy every 0.5 s.

class Probe:
    def __init__(self, caddy):
        self.launcher = LauncherThroughCaddy(caddy)
        self.lock = threading.Lock()
        self.interval = [0, 0]
        self.total = [0, 0]
        self.failures = {}

    def take_interval(self):
        with self.lock:
            taken, self.interval = self.interval, [0, 0]
            return taken

    def run(self, stop):
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                code = self.launcher.get("/", {"Accept": "text/html"})[0]
                reason = None if code == 200 else f"HTTP {code}"
            except (OSError, http.client.HTTPException) as error:
                reason = type(error).__name__
            with self.lock:
                slot = 0 if reason is None else 1
                self.interval[slot] += 1
                self.total[slot] += 1
                if reason:
                    self.failures[reason] = self.failures.get(reason, 0) + 1
            next_at += 0.5
            now = time.monotonic()
            if next_at < now:
                next_at = now  # a probe that took longer than 0.5 s: no catching up in a burst
            stop.wait(next_at - now)


# ------------------------------------------------------------------------------------------------
# The wake/shelve cycles.

class DaemonLog:
    """Reads the daemon's output as it grows and keeps gpu's state transitions with their times."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.transitions = []   # (timestamp, from, to, reason, actor)

    def read(self):
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            match = TRANSITION.match(line.decode(errors="replace"))
            if match:
                self.transitions.append((parse_time(match.group(1)),) + match.groups()[1:])
        return self.transitions


class Cycles:
    def __init__(self, daemon, caddy, arguments, started):
        self.daemon = daemon
        self.launcher = LauncherThroughCaddy(caddy)
        self.backend_host = f"chat.localhost:{caddy.port}"
        self.caddy_port = caddy.port
        self.arguments = arguments
        self.started = started
        self.log = DaemonLog(daemon.log_path)
        self.cycles = []
        self.skipped = 0    # ticks without a wake: the previous cycle still open, or gpu not asleep
        self.status_failures = 0
        self.last_lateness = None

    def lateness_text(self):
        """For the report: the open cycle's overdue time if it is past its deadline, else the last
        shelve's lateness."""
        open_cycles = [c for c in self.cycles if not c.get("done") and c.get("deadline")]
        if open_cycles and time.time() > open_cycles[-1]["deadline"]:
            return f"open +{time.time() - open_cycles[-1]['deadline']:.1f} s"
        return f"{self.last_lateness:+.2f} s" if self.last_lateness is not None else "-"

    def elapsed(self):
        return time.monotonic() - self.started

    def backend(self):
        try:
            return self.daemon.backend()
        except (OSError, http.client.HTTPException, AssertionError, ValueError, KeyError):
            self.status_failures += 1
            return None

    def wake(self):
        """The launcher's button through Caddy; the admin token straight to Unshelver if refused."""
        attempts = []
        try:
            code = self.launcher.public_wake("gpu")[0]
            attempts.append(f"button {code}")
            if code in (200, 202):
                return True, attempts
        except (OSError, http.client.HTTPException, AssertionError) as error:
            attempts.append(f"button {type(error).__name__}")
        try:
            code = self.daemon.wake("gpu")[0]
            attempts.append(f"admin {code}")
            return code in (200, 202), attempts
        except (OSError, http.client.HTTPException) as error:
            attempts.append(f"admin {type(error).__name__}")
            return False, attempts

    def touch(self, cycle):
        """One request to the backend's host through Caddy: the activity the idle timer counts from."""
        connection = http.client.HTTPConnection("127.0.0.1", self.caddy_port, timeout=5)
        try:
            connection.request("GET", "/", headers={"Host": self.backend_host})
            response = connection.getresponse()
            response.read()
            cycle["touch"] = response.status
        except (OSError, http.client.HTTPException) as error:
            cycle["touch"] = type(error).__name__
        finally:
            connection.close()

    def transition(self, cycle, source, target):
        """The first logged transition source -> target (None: any source) since the cycle's wake."""
        for when, before, after, reason, actor in self.log.transitions:
            if when >= cycle["wake_wall"] and source in (None, before) and after == target:
                return when, actor
        return None

    def print_cycle(self, cycle):
        parts = [f"cycle {cycle['index']} at {cycle['at']:6.1f} s: wake {', '.join(cycle['wake'])}"]
        if cycle.get("ready_after") is not None:
            parts.append(f"ready after {cycle['ready_after']:.1f} s, backend through Caddy {cycle.get('touch')}")
        if cycle.get("deadline"):
            parts.append(f"deadline {clock(cycle['deadline'])}")
            moved = cycle.get("daemon_deadline", cycle["deadline"]) - cycle["deadline"]
            if abs(moved) > 0.5:
                parts.append(f"the daemon's idle_deadline moved {moved:+.1f} s (activity the soak did not make)")
        if cycle.get("shelved_at"):
            marker = "" if abs(cycle["lateness"]) <= LATENESS_TARGET else "  MISS"
            parts.append(f"shelved by {cycle['actor']} at {clock(cycle['shelved_at'])}: "
                         f"{cycle['lateness']:+.2f} s{marker}")
        if cycle.get("note"):
            parts.append(cycle["note"])
        print("  " + "; ".join(parts), flush=True)

    def finish(self, cycle, outcome, note=None):
        """Closes a cycle; its outcome is one of shelved, not_shelved, never_ready, refused."""
        cycle["done"] = True
        cycle["outcome"] = outcome
        if note:
            cycle["note"] = note
        self.print_cycle(cycle)

    def step(self, cycle, backend):
        """Follows one open cycle: ready, the touch, the deadline, the shelve decision.

        The deadline is the soak's own: its touch of the backend's host through Caddy (or, if the
        touch got no answer at all, the moment the backend became ready) plus the idle timeout. No
        hostile client sends to the backend's host, so activity the daemon counts beyond that is
        not genuine (the daemon's own `idle_deadline`, from /api/status, is shown when it moved)."""
        if cycle.get("ready_after") is None:
            ready = self.transition(cycle, None, "ready")
            if not ready:
                return
            cycle["ready_after"] = ready[0] - cycle["wake_wall"]
            time.sleep(0.5)  # Caddy's route to the backend follows the state within milliseconds
            touched_at = time.time()
            self.touch(cycle)
            origin = touched_at if isinstance(cycle["touch"], int) else ready[0]
            cycle["deadline"] = origin + self.arguments.idle_seconds
        if backend and backend["state"] == "ready" and backend.get("idle_deadline"):
            cycle["daemon_deadline"] = parse_time(backend["idle_deadline"])
        decision = self.transition(cycle, "ready", "sleeping")
        if decision:
            cycle["shelved_at"], cycle["actor"] = decision
            cycle["lateness"] = cycle["shelved_at"] - cycle["deadline"]
            self.last_lateness = cycle["lateness"]
            self.finish(cycle, "shelved")

    def run(self, stop, end):
        """Until `end`, then until the open cycle is shelved (at most idle timeout + 10 s more);
        `stop` aborts."""
        next_tick = self.started + 1.0
        cycle = None
        while not stop.is_set():
            backend = self.backend()
            self.log.read()
            if cycle and not cycle.get("done"):
                self.step(cycle, backend)
            now = time.monotonic()
            if now >= next_tick:
                next_tick += self.arguments.cycle_seconds
                if end - now < self.arguments.idle_seconds + 8:
                    next_tick = float("inf")  # no time left for a whole cycle
                elif cycle and not cycle.get("done"):
                    self.skipped += 1
                    late = time.time() - cycle["deadline"] if cycle.get("deadline") else None
                    print(f"  cycle {len(self.cycles) + 1} skipped at {self.elapsed():.1f} s: the previous "
                          f"one is not shelved yet" + (f" ({late:.1f} s past its deadline)" if late else ""),
                          flush=True)
                elif backend is None or backend["state"] != "asleep":
                    self.skipped += 1
                    state = backend["state"] if backend else "unknown (status unanswered)"
                    print(f"  cycle {len(self.cycles) + 1} skipped at {self.elapsed():.1f} s: gpu is {state}",
                          flush=True)
                else:
                    cycle = {"index": len(self.cycles) + 1, "at": self.elapsed(), "wake_wall": time.time()}
                    self.cycles.append(cycle)
                    accepted, cycle["wake"] = self.wake()
                    if not accepted:
                        self.finish(cycle, "refused", "the wake was refused")
            if now >= end and (cycle is None or cycle.get("done")):
                return
            if now >= end + self.arguments.idle_seconds + 10:
                self.close_unfinished()
                return
            stop.wait(0.25)
        self.close_unfinished()

    def close_unfinished(self):
        for cycle in self.cycles:
            if cycle.get("done"):
                continue
            if cycle.get("deadline"):
                overdue = time.time() - cycle["deadline"]
                self.finish(cycle, "not_shelved", f"NOT shelved at the end, {overdue:.1f} s past its deadline")
            else:
                self.finish(cycle, "never_ready", "never became ready")


# ------------------------------------------------------------------------------------------------
# Hostile clients, in one asyncio loop.

class Bucket:
    """A token bucket: at most `rate` takes per second, in small bursts."""

    def __init__(self, rate):
        self.rate = rate
        self.tokens = 0.0
        self.updated = time.monotonic()

    async def take(self):
        while True:
            now = time.monotonic()
            self.tokens = min(max(1.0, self.rate / 10), self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


class Hostile:
    """The hostile clients. Counters are plain integers in fixed dicts, read by the report thread."""

    FUZZ_TEMPLATES = [
        "GET / HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\r\n",
        "GET /api/status HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        "POST /wake/gpu HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Cookie: unshelver_visitor=abc\r\nContent-Length: 16\r\n\r\nform_token=xyz12",
        "POST /control/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 11\r\n\r\ntoken=wrong",
        "POST /control/login HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
        "b\r\ntoken=wrong\r\n0\r\n\r\n",
        "GET /.well-known/unshelver/status HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n",
        "GET /healthz HTTP/1.0\r\n\r\n",
    ]

    def __init__(self, arguments, daemon, caddy, sampler):
        self.arguments = arguments
        self.direct = ("127.0.0.1", daemon.port, f"127.0.0.1:{daemon.port}")
        self.proxied = ("127.0.0.1", caddy.port, launcher_host(caddy))
        self.sampler = sampler
        self.rng = random.Random(arguments.seed)
        self.running = True
        self.buckets = {kind: Bucket(arguments.connect_rate) for kind in HOSTILE_KINDS}
        self.counts = {
            "pipeline": dict.fromkeys(["sent", "connects", "closed", "refused", "stalled_s", "paused_s"], 0),
            "slow": dict.fromkeys(["open", "connects", "bytes", "answered", "closed", "refused"], 0),
            "idle": dict.fromkeys(["open", "connects", "answered", "closed", "refused"], 0),
            "tokens": dict.fromkeys(["sent", "401", "429", "other", "no_answer", "refused", "skipped"], 0),
            "fuzz": dict.fromkeys(["sent", "2xx", "3xx", "4xx", "5xx", "other", "no_answer", "refused", "skipped"], 0),
        }

    # -- helpers

    async def connect(self, target, kind):
        await self.buckets[kind].take()
        try:
            return await asyncio.wait_for(asyncio.open_connection(target[0], target[1]), 5)
        except (OSError, asyncio.TimeoutError):
            self.counts[kind]["refused"] += 1
            return None

    async def exchange(self, target, kind, data, timeout=2.0):
        """Sends `data` on a new connection; the first response's status, "no_answer" or "refused"."""
        streams = await self.connect(target, kind)
        if streams is None:
            return "refused"
        reader, writer = streams
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), timeout)
            answer = await asyncio.wait_for(reader.read(4096), timeout)
            return status_code(answer) or "no_answer"
        except (OSError, asyncio.TimeoutError):
            return "no_answer"
        finally:
            writer.close()

    def rss_over_limit(self):
        return self.sampler.rss_kb > self.arguments.rss_limit_mb * 1024

    # -- the clients

    async def pipeline(self):
        counts = self.counts["pipeline"]
        request = f"GET / HTTP/1.1\r\nHost: {self.direct[2]}\r\nAccept: text/html\r\n\r\n".encode()
        per_tick = max(1, int(self.arguments.pipeline_rate / 10))
        while self.running:
            streams = await self.connect(self.direct, "pipeline")
            if streams is None:
                await asyncio.sleep(1)
                continue
            counts["connects"] += 1
            reader, writer = streams
            try:
                while self.running:
                    if self.rss_over_limit():
                        counts["paused_s"] += 0.1
                    elif writer.transport.get_write_buffer_size() > 65536:
                        counts["stalled_s"] += 0.1   # the server stopped reading: what a bound does
                    else:
                        writer.write(request * per_tick)
                        counts["sent"] += per_tick
                    if writer.transport.is_closing() or reader.at_eof():
                        raise ConnectionResetError
                    await asyncio.sleep(0.1)
            except OSError:
                counts["closed"] += 1
            finally:
                writer.close()
            await asyncio.sleep(1)

    async def held(self, kind, target, head=b"", body_length=0):
        """One connection held open, reopened after the server closes it: it sends `head`, then a
        byte of its body every slow_byte_seconds (without a body: nothing), and never reads until
        the server answers or closes."""
        counts = self.counts[kind]
        while self.running:
            streams = await self.connect(target, kind)
            if streams is None:
                await asyncio.sleep(2)
                continue
            reader, writer = streams
            counts["connects"] += 1
            counts["open"] += 1
            answer = asyncio.ensure_future(reader.read(4096))
            try:
                writer.write(head)
                sent = 0
                while self.running:
                    delay = self.arguments.slow_byte_seconds * self.rng.uniform(0.8, 1.2) if body_length else 1.0
                    done, _ = await asyncio.wait({answer}, timeout=delay)
                    if done:
                        counts["answered" if answer.result() else "closed"] += 1
                        break
                    if sent < body_length:
                        writer.write(b"a")
                        await asyncio.wait_for(writer.drain(), 5)
                        sent += 1
                        counts["bytes"] += 1
            except (OSError, asyncio.TimeoutError):
                counts["closed"] += 1
            finally:
                counts["open"] -= 1
                answer.cancel()
                writer.close()
            await asyncio.sleep(1)

    async def slow(self, target):
        # Below http.max_body_bytes (64 KiB), so that the length alone is not refused; days of bytes.
        body_length = 60000
        head = (f"POST /control/login HTTP/1.1\r\nHost: {target[2]}\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_length}\r\n\r\n").encode()
        await self.held("slow", target, head, body_length)

    async def idle(self):
        await self.held("idle", self.direct)

    async def paced(self, kind, rate, concurrency, make_request, classify):
        """`rate` requests per second, each on a new connection, at most `concurrency` at a time (a
        slow server gets fewer, not a pile of connections); make_request(number) gives the target
        and the bytes, classify(result) the counter an answer goes to."""
        counts = self.counts[kind]
        in_flight = asyncio.Semaphore(concurrency)
        bucket = Bucket(rate)
        tasks = set()

        async def one(target, data):
            async with in_flight:
                result = await self.exchange(target, kind, data)
                if result != "refused":   # counted by connect()
                    counts[classify(result)] += 1

        number = 0
        while self.running:
            await bucket.take()
            if in_flight.locked():
                counts["skipped"] += 1
                continue
            number += 1
            counts["sent"] += 1
            task = asyncio.ensure_future(one(*make_request(number)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def tokens(self):
        """Wrong bearer tokens with a long path: through Caddy, and straight with a forged
        X-Forwarded-For (a fresh address each time)."""
        def make_request(number):
            through_caddy = number % 2 == 0
            target = self.proxied if through_caddy else self.direct
            forged = "" if through_caddy else (f"X-Forwarded-For: 10.{self.rng.randrange(256)}."
                                               f"{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}\r\n")
            return target, (f"GET /control/{'x' * self.rng.randint(1000, 4000)} HTTP/1.1\r\nHost: {target[2]}\r\n"
                            f"Authorization: Bearer wrong-{self.rng.getrandbits(64):016x}\r\n{forged}"
                            "Connection: close\r\n\r\n").encode()

        def classify(result):
            return str(result) if result in (401, 429) else "no_answer" if result == "no_answer" else "other"

        await self.paced("tokens", self.arguments.token_rate, 20, make_request, classify)

    async def fuzz(self, target):
        def make_request(number):
            return target, mutate(self.rng, self.rng.choice(self.FUZZ_TEMPLATES).format(host=target[2]).encode())

        def classify(result):
            if isinstance(result, int) and 2 <= result // 100 <= 5:
                return f"{result // 100}xx"
            return "no_answer" if result == "no_answer" else "other"

        await self.paced("fuzz", self.arguments.fuzz_rate, 10, make_request, classify)

    # -- running

    async def main(self, stop):
        kinds = self.arguments.clients
        tasks = []
        if "pipeline" in kinds:
            tasks.append(self.pipeline())
        if "slow" in kinds:
            tasks += [self.slow(self.proxied if i % 2 == 0 else self.direct) for i in range(self.arguments.slow_bodies)]
        if "idle" in kinds:
            tasks += [self.idle() for _ in range(self.arguments.idle_connections)]
        if "tokens" in kinds:
            tasks.append(self.tokens())
        if "fuzz" in kinds:
            tasks += [self.fuzz(self.direct), self.fuzz(self.proxied)]
        running = [asyncio.ensure_future(task) for task in tasks]
        while not stop.is_set():
            await asyncio.sleep(0.2)
        self.running = False
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        # The fire-and-forget requests of tokens and fuzz end within their 2 s timeouts.
        await asyncio.sleep(2.5)

    def run(self, stop):
        asyncio.run(self.main(stop))

    def snapshot(self):
        return {kind: dict(values) for kind, values in self.counts.items()}


def mutate(rng, data):
    """One to three random mutations of a valid request, aimed at a parser's edges."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not data:
            data = bytearray(b"\r\n")
        at = rng.randrange(len(data))
        operation = rng.randrange(12)
        if operation == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif operation == 1:
            data[at] = rng.choice(b"\x00\r\n :\t\x7f\xff")
        elif operation == 2:
            data[at:at] = rng.choice([b"\r\n", b" ", b":", b"\r\n ", b"\x00", b"%00", b"Transfer-Encoding: chunked\r\n",
                                      b"Content-Length: 5\r\n", b"Host: evil\r\n", b"A" * rng.randint(1, 5000)])
        elif operation == 3:
            del data[at:at + rng.randint(1, 16)]
        elif operation in (4, 5, 6):
            head, separator, body = bytes(data).partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            if len(lines) > 1:
                index = rng.randrange(1, len(lines))
                if operation == 4:
                    lines.insert(index, lines[index])                        # a repeated header (two Hosts)
                elif operation == 5:
                    lines[index] = lines[index].replace(b":", b" :", 1)      # whitespace before the colon
                else:
                    lines.insert(index + 1, b"\t folded")                    # obs-fold
            data = bytearray(b"\r\n".join(lines) + separator + body)
        elif operation == 7:
            del data[at:]
        elif operation == 8:
            data = data * rng.randint(2, 5)                                  # pipelined copies
        elif operation == 9:
            value = rng.choice([b"-1", b"99999999999999999999", b"0x10", b" 5", b"5, 6", b"1e3", b"+3"])
            data = bytearray(re.sub(rb"Content-Length: \d+", b"Content-Length: " + value, bytes(data)))
        elif operation == 10:
            coding = rng.choice([b"gzip", b"chunked, identity", b"identity", b"chunked\x00", b"xchunked", b"gzip, chunked"])
            line_end = data.find(b"\r\n")
            data[line_end + 2:line_end + 2] = b"Transfer-Encoding: " + coding + b"\r\n"
        else:
            request_line, _, rest = bytes(data).partition(b"\r\n")
            parts = request_line.split(b" ")
            if len(parts) == 3:
                slot = rng.randrange(3)
                parts[slot] = rng.choice([
                    [b"GETT", b"get", b"PRI", b"CONNECT", b"OPTIONS", b"DELETE", b"TRACE"],
                    [b"*", b"http://evil/", b"http://launcher.localhost/api/status", b"//x", b"/%2e%2e/", b"/" + b"a" * 9000],
                    [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.10", b"HTTP/0.9", b"HTTPS/1.1"]][slot])
            data = bytearray(b" ".join(parts) + b"\r\n" + rest)
    return bytes(data)


def hostile_line(now, before, kinds):
    """The hostile clients' activity in one report interval, compactly."""
    def delta(kind, key):
        return now[kind][key] - before[kind][key]
    parts = {
        "pipeline": f"pipe +{delta('pipeline', 'sent')} stalled {delta('pipeline', 'stalled_s'):.0f}s"
                    + (f" paused {delta('pipeline', 'paused_s'):.0f}s" if delta("pipeline", "paused_s") else ""),
        "slow": f"slow {now['slow']['open']} open +{delta('slow', 'connects')}",
        "idle": f"idle {now['idle']['open']} open +{delta('idle', 'connects')}",
        "tokens": f"tokens +{delta('tokens', 'sent')} (401 {delta('tokens', '401')}, 429 {delta('tokens', '429')})",
        "fuzz": f"fuzz +{delta('fuzz', 'sent')}",
    }
    return " | ".join(parts[kind] for kind in kinds) or "none"


def hostile_description(arguments):
    descriptions = {
        "pipeline": f"pipeline {arguments.pipeline_rate:g}/s (paused above {arguments.rss_limit_mb:g} MB RSS)",
        "slow": f"{arguments.slow_bodies} slow bodies (1 byte / {arguments.slow_byte_seconds:g} s)",
        "idle": f"{arguments.idle_connections} idle connections",
        "tokens": f"{arguments.token_rate:g} wrong tokens/s",
        "fuzz": f"{arguments.fuzz_rate:g} mutated requests/s per target",
    }
    return ", ".join(descriptions[kind] for kind in arguments.clients) or "none"


# ------------------------------------------------------------------------------------------------
# The summary.

def genuine_events(events_path, transitions, since, until):
    """Every state transition of gpu the daemon logged during the soak, matched one-to-one with an
    event of the same from/to within 1 s in the event log (all its files). Returns (expected,
    found, a few missing ones)."""
    events = []
    for path in event_log_files(events_path):
        try:
            with open(path, "rb") as log:
                for line in log:
                    if b'"gpu"' not in line or b'"from"' not in line:
                        continue
                    try:
                        event = json.loads(line)
                        events.append((parse_time(event["ts"]), event["from"], event["to"]))
                    except (ValueError, KeyError):
                        pass
        except OSError:
            pass
    used = set()
    missing = []
    expected = [t for t in transitions if since <= t[0] <= until]
    for when, source, target, reason, actor in expected:
        match = next((i for i, (ts, f, t) in enumerate(events)
                      if i not in used and f == source and t == target and abs(ts - when) <= 1.0), None)
        if match is None:
            missing.append(f"{clock(when)} {source} -> {target} ({reason})")
        else:
            used.add(match)
    return len(expected), len(expected) - len(missing), missing


def change(first, value):
    return (value - first) * 100.0 / first if first else 0.0


def verdict(ok):
    return "PASS" if ok else "MISS"


def summary(samples, sampler, cycles, probe, hostile, events_check, arguments, fd_limit):
    print("\nsummary")
    # The baseline is the first report after the hostile clients ramped up (or the only sample).
    baseline = samples[1] if len(samples) > 1 else samples[0]
    last = samples[-1]
    rss_max = max(sample[1] for sample in samples[1:] or samples)
    fds_max = max(sample[2] for sample in samples[1:] or samples)
    # A flood paused at the RSS limit means the limit, not the daemon, kept the RSS flat.
    braked = hostile.counts["pipeline"]["paused_s"] > 0
    rss_change = max(change(baseline[1], rss_max), change(baseline[1], last[1]))
    fds_change = max(change(baseline[2], fds_max), change(baseline[2], last[2]))
    print(f"  {'':26} {'first':>9} {'max':>9} {'last':>9} {'change':>8}  target")
    print(f"  {'RSS (MB)':26} {baseline[1] / 1024:9.1f} {rss_max / 1024:9.1f} {last[1] / 1024:9.1f} "
          f"{rss_change:+7.1f}%  <= {RSS_TARGET:.0f} %   {verdict(rss_change <= RSS_TARGET and not braked)}"
          f"{'  (the pipeline flood was paused at --rss-limit-mb)' if braked else ''}")
    # Flat at the descriptor limit is no success: the daemon has nothing in reserve.
    at_limit = sampler.max_fds >= fd_limit - 1
    print(f"  {'descriptors':26} {baseline[2]:9d} {fds_max:9d} {last[2]:9d} "
          f"{fds_change:+7.1f}%  <= {FDS_TARGET:.0f} %   {verdict(fds_change <= FDS_TARGET and not at_limit)}"
          f"{f'  (reached the limit, {fd_limit})' if at_limit else ''}")
    print(f"  {'event log (MB)':26} {baseline[3] / 1e6:9.2f} {'':9} {last[3] / 1e6:9.2f}")
    print(f"    (first = the report at {baseline[0]:.0f} s, after the hostile clients ramped up; before them: "
          f"RSS {samples[0][1] / 1024:.1f} MB, {samples[0][2]} descriptors; 1 s samples' max: "
          f"RSS {sampler.max_rss_kb / 1024:.1f} MB, {sampler.max_fds} descriptors)")
    outcomes = {}
    for cycle in cycles.cycles:
        outcomes[cycle.get("outcome", "open")] = outcomes.get(cycle.get("outcome", "open"), 0) + 1
    lateness = [c["lateness"] for c in cycles.cycles if c.get("outcome") == "shelved"]
    worst = max(lateness, key=abs) if lateness else None
    on_time = bool(lateness) and len(lateness) == len(cycles.cycles) and \
        all(abs(x) <= LATENESS_TARGET for x in lateness)
    others = ", ".join(f"{count} {outcome.replace('_', ' ')}" for outcome, count in sorted(outcomes.items())
                       if outcome != "shelved")
    print(f"  idle shelves: {len(lateness)} of {len(cycles.cycles)} cycles measured, worst lateness "
          f"{'%+.2f s' % worst if worst is not None else 'n/a'} (target within {LATENESS_TARGET:.0f} s)"
          f"{'; ' + others if others else ''}{'; %d wakes skipped' % cycles.skipped if cycles.skipped else ''}"
          f"   {verdict(on_time and not cycles.skipped)}")
    ok, failed = probe.total
    availability = ok * 100.0 / (ok + failed) if ok + failed else 0.0
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(probe.failures.items()))
    print(f"  launcher through Caddy: {ok} of {ok + failed} probes answered 200 ({availability:.1f} %)"
          f"{'; failures: ' + reasons if reasons else ''}   {verdict(failed == 0 and ok > 0)}")
    expected, found, missing = events_check
    print(f"  genuine events: {found} of {expected} state transitions of the cycles are in the event log"
          f"{' (missing: ' + '; '.join(missing[:5]) + (' …' if len(missing) > 5 else '') + ')' if missing else ''}"
          f"   {verdict(expected > 0 and not missing)}")
    print(f"  /api/status straight to Unshelver unanswered: {cycles.status_failures} times")
    counts = hostile.snapshot()
    print("  hostile clients (totals):")
    for kind in arguments.clients:
        values = ", ".join(f"{key} {value:.0f}" if isinstance(value, float) else f"{key} {value}"
                           for key, value in counts[kind].items())
        print(f"    {kind:9} {values}")
    if not arguments.clients:
        print("    none (--clients '')")


# ------------------------------------------------------------------------------------------------

def start_daemon(config_text, workdir, nofile):
    """Starts the daemon; with `nofile`, under that soft descriptor limit (inherited at the fork:
    this process lowers its own limit around the start, then restores it)."""
    daemon = Unshelver(config_text, workdir=workdir)
    if not nofile:
        return daemon.start()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))
    try:
        return daemon.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def main():
    arguments = ARGUMENTS
    if CADDY is None:
        raise SystemExit("soak: Debian's caddy is not installed (scripts/setup test-tools)")
    # This process holds a socket per hostile connection.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = tempfile.mkdtemp(prefix="unshelver-soak-")
    backend = FakeBackend()
    caddy = BareCaddy(workdir)
    config_text = routing_config(workdir, caddy, backend, idle_seconds=arguments.idle_seconds)
    # Info, not debug: the daemon's own log must not be what fills the disk during a soak. The
    # wake rate limits are lifted so that the soak's own button wake every cycle is never refused.
    config_text = config_text.replace("log_level: debug", "log_level: info") + (
        "security:\n  wake_burst: 1000\n  wake_refill_seconds: 1\n  wake_cooldown_seconds: 0\n")
    if not arguments.tcp_proxy:
        # The production setup: Caddy on its own socket, apart from every local TCP client.
        config_text += f"http:\n  proxy_socket: {os.path.join(workdir, 'http.sock')}\n"
    daemon = None
    stop = threading.Event()
    threads = []
    try:
        daemon = start_daemon(config_text, workdir, arguments.nofile)
        limit = open(f"/proc/{daemon.process.pid}/limits").read()
        nofile_line = next(line for line in limit.splitlines() if line.startswith("Max open files"))
        soft_limit = nofile_line.split()[3]
        fd_limit = int(soft_limit) if soft_limit.isdigit() else float("inf")
        events_path = daemon.status()["events"]["log"]
        daemon.wait_for_state("asleep", 15)
        print(f"soak: {arguments.seconds:.0f} s, report every {arguments.report_seconds:.0f} s, wake every "
              f"{arguments.cycle_seconds:.0f} s, idle timeout {arguments.idle_seconds} s; daemon pid "
              f"{daemon.process.pid} on 127.0.0.1:{daemon.port}, Caddy on :{caddy.port}; "
              f"{' '.join(nofile_line.split()[3:5])} (soft, hard) descriptors")
        print(f"  hostile clients: {hostile_description(arguments)}; workdir {workdir}", flush=True)
        sampler = Sampler(daemon.process.pid, events_path)
        sampler.sample()
        started, started_wall = time.monotonic(), time.time()
        end = started + arguments.seconds
        probe = Probe(caddy)
        cycles = Cycles(daemon, caddy, arguments, started)
        hostile = Hostile(arguments, daemon, caddy, sampler)
        attack_over = threading.Event()
        threads.append(threading.Thread(target=hostile.run, args=(attack_over,), daemon=True))
        for target in (sampler.run, probe.run):
            threads.append(threading.Thread(target=target, args=(stop,), daemon=True))
        cycle_thread = threading.Thread(target=cycles.run, args=(stop, end), daemon=True)
        threads.append(cycle_thread)
        for thread in threads:
            thread.start()

        print(f"{'elapsed':>7} {'RSS MB':>7} {'fds':>5} {'evlog MB':>8} {'launcher ok/fail':>16} "
              f"{'last shelve':>11}  hostile clients in the interval")
        samples = [(0.0, sampler.rss_kb, sampler.fds, sampler.event_log_bytes())]
        print(f"{0.0:7.1f} {sampler.rss_kb / 1024:7.1f} {sampler.fds:5d} {samples[0][3] / 1e6:8.2f} "
              f"{'-':>16} {'-':>11}  (before the hostile clients)", flush=True)
        before = hostile.snapshot()
        next_report = started + arguments.report_seconds
        while cycle_thread.is_alive():
            now = time.monotonic()
            cycle_thread.join(timeout=max(0.05, (next_report if now >= end else min(next_report, end)) - now))
            now = time.monotonic()
            if now >= next_report or (now >= end and samples[-1][0] < arguments.seconds - 1):
                rss, fds = sampler.sample()
                log_bytes = sampler.event_log_bytes()
                samples.append((now - started, rss, fds, log_bytes))
                ok, failed = probe.take_interval()
                counts = hostile.snapshot()
                last = cycles.lateness_text()
                alive = "" if daemon.process.poll() is None else f"  DAEMON EXITED ({daemon.process.returncode})"
                print(f"{now - started:7.1f} {rss / 1024:7.1f} {fds:5d} {log_bytes / 1e6:8.2f} "
                      f"{f'{ok}/{failed}':>16} {last:>11}  {hostile_line(counts, before, arguments.clients)}{alive}", flush=True)
                before = counts
                next_report += arguments.report_seconds
            if now >= end:
                attack_over.set()   # the hostile clients stop; a cycle still open gets its last chance
        attack_over.set()
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        # The last cycle's shelve is complete (asleep) within moments of its decision.
        settle = time.monotonic() + 10
        while time.monotonic() < settle and (cycles.backend() or {}).get("state") != "asleep":
            time.sleep(0.1)
        cycles.log.read()
        events_check = genuine_events(events_path, cycles.log.transitions, started_wall, time.time())
        summary(samples, sampler, cycles, probe, hostile, events_check, arguments, fd_limit)
    finally:
        stop.set()
        if threads:
            attack_over.set()
        for thread in threads:
            thread.join(timeout=15)
        if daemon is not None:
            try:
                daemon.stop()
            except AssertionError as error:
                print(f"  the daemon did not stop cleanly: {str(error)[:2000]}")
        caddy.stop()
        backend.stop()
        if arguments.keep:
            print(f"  kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
