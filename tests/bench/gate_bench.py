"""Benchmark (not a test): what Unshelver's gate (`caddy.routing: gate`, Caddy's forward_auth)
costs through Debian's Caddy 2.6.2, and how fast it releases held requests.

    python3 tests/bench/gate_bench.py [BINARY]

Defaults (about 3 minutes on 2 vCPUs): BENCH_SECONDS=5 per wrk run, BENCH_ROUNDS=2,
BENCH_CONNECTIONS=1,32,128, BENCH_HOLD_ROUNDS=7, BENCH_HELD=4 (requests held per round);
BENCH_STATUSES=1 makes wrk count the answers per status (a Lua callback per response, slower);
BENCH_STANDIN=1 measures the stand-in gate instead of Unshelver's.

Everything runs on 127.0.0.1 with free ports and stops by itself: the real binary (caddy.manage:
false, so that it never overwrites the Caddyfiles loaded here), one "front" Caddy into which this
bench loads each variant through the admin API, one "static" Caddy as a fast upstream
(`respond "ok"`), and a small recording upstream (this file, --serve-recorder) for part 3.

1. Throughput and latency of a small GET through Caddy, wrk at 1, 32 and 128 connections, every variant
   in the same run (interleaved per round; the medians over the rounds are printed):
     direct       wrk straight to the static upstream (no front Caddy): the ceiling
     switch       `caddy.routing: switch` rendered with the backend ready: Caddy proxies directly.
                  The baseline, and also variant (c) "gate only while not ready"
     gate         `caddy.routing: gate` as `render-caddy` prints it (variant a)
     gate+ka      the same with an explicit keep-alive transport on forward_auth (variant b)
     gate-only    wrk straight to Unshelver's gate endpoint (no Caddy): the gate's own capacity
   For each, the TIME-WAIT sockets on Unshelver's port that appeared during the run and the
   connections Unshelver held established mid-run: whether Caddy reuses its connections to the gate.
   A gate over a unix socket is not measured: Unshelver listens on TCP only (`listen: HOST:PORT`).
2. The time from "backend ready" to the first held request released: requests are held at the gate
   while a simulated backend wakes (sim wake 0.4 s, boot 0, health every 0.05 s, one success
   needed). Measured at the recording upstream: from the health probe that first got 200
   to the first non-health request (target <= 50 ms), and at the client: until the last held
   response. min / median / max over BENCH_HOLD_ROUNDS rounds.

Until the binary knows `caddy.routing: gate` (its render-caddy fails on the key or prints no
forward_auth), or with BENCH_STANDIN=1, the gate is a stand-in (this file, --serve-standin: an
asyncio server answering the same gate URI) and every figure is marked STAND-IN: it measures the
harness, not Unshelver. Figures are printed, never judged: no timing makes this fail.
"""
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
HOLD_ROUNDS = int(os.environ.get("BENCH_HOLD_ROUNDS", "7"))
HELD = int(os.environ.get("BENCH_HELD", "4"))  # requests held per round in part 2
# 128: beyond Caddy 2.6.2's default idle pool per upstream host, where the gate's connections churn.
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,32,128").split(",")]
FORCE_STANDIN = os.environ.get("BENCH_STANDIN") == "1"
# BENCH_STATUSES=1: wrk counts the answers per status (a Lua callback per response: slower).
STATUS_SCRIPT = (os.path.join(HERE, "..", "integration", "wrk_status_counts.lua")
                 if os.environ.get("BENCH_STATUSES") == "1" else None)
WRK = shutil.which("wrk")
GATE_PREFIX = "/.unshelver/gate/"
KEEPALIVE_TRANSPORT = ["transport http {", "\tkeepalive 5m", "\tkeepalive_idle_conns 512",
                       "\tkeepalive_idle_conns_per_host 128", "}"]


# --------------------------------------------------------------------------------------------
# Helper servers, run as `python3 gate_bench.py --serve-...` (subprocesses of the bench).

def serve_recorder(port):
    """A backend that records when each request arrived (wall clock, to compare with the bench's
    own times and with Unshelver's log).
    /health answers 200 while "up" (the default, --down starts it down); /__up, /__down, /__reset,
    /__records control it and are not recorded; any other path answers 200 "ok"."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock = threading.Lock()
    state = {"up": "--down" not in sys.argv, "records": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else 40 ms of delayed ACK per answer (caddy-facts §2)

        def log_message(self, *args):
            pass

        def answer(self, status, body=b"ok"):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            arrived = time.time()
            path = self.path.split("?")[0]
            if path.startswith("/__"):
                with lock:
                    if path == "/__up":
                        state["up"] = True
                    elif path == "/__down":
                        state["up"] = False
                    elif path == "/__reset":
                        state["records"] = []
                    body = json.dumps(state["records"]).encode() if path == "/__records" else b"ok"
                self.answer(200, body)
                return
            with lock:
                status = 200 if (path != "/health" or state["up"]) else 503
                state["records"].append([arrived, path, status])
            self.answer(status)

        do_HEAD = do_GET
        do_POST = do_GET

    class Quiet(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass

    Quiet(("127.0.0.1", port), Handler).serve_forever()


def serve_standin(port, specs):
    """A stand-in for Unshelver's gate, for developing this bench before the real one exists:
    GET /.unshelver/gate/NAME answers 204 with X-Unshelver-Upstream while NAME's upstream answers
    /health with 200 (polled every 50 ms), and holds the request until then otherwise."""
    backends = {}
    for spec in specs:
        name, upstream = spec.split("=", 1)
        backends[name] = {"upstream": upstream, "ready": None}
    counter = [0]

    async def probe(upstream):
        host, port_text = upstream.rsplit(":", 1)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port_text)), 1)
            writer.write(f"GET /health HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 1)
            writer.close()
            return line.split()[1:2] == [b"200"]
        except (OSError, asyncio.TimeoutError, IndexError):
            return False

    async def poll(backend):
        backend["ready"] = asyncio.Event()
        while True:
            if await probe(backend["upstream"]):
                backend["ready"].set()
            else:
                backend["ready"].clear()
            await asyncio.sleep(0.05)

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                backend = backends.get(target[len(GATE_PREFIX):]) if target.startswith(GATE_PREFIX) else None
                if backend is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                else:
                    await backend["ready"].wait()
                    counter[0] += 1
                    writer.write(f"HTTP/1.1 204 No Content\r\nX-Unshelver-Upstream: {backend['upstream']}\r\n"
                                 f"X-Unshelver-Request: {counter[0]}\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def main():
        for backend in backends.values():
            asyncio.ensure_future(poll(backend))
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------
# The bench.

def wait_http(url, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"gate_bench: {url} did not answer within {timeout} s")


class Helper:
    """One helper server of this file, stopped by its PID."""

    def __init__(self, *args):
        from harness import free_port
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), args[0], str(self.port),
                                         *args[1:]])

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def get(port, path, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
        return response.read()


def bench_config(workdir, caddy, static_port, recorder_port, routing):
    """Two sim buttons: `api` (awake from the start, upstream the static Caddy) for throughput, and
    `rec` (asleep, upstream the recorder, fast wake and probes) for the hold timing."""
    routing_line = f"  routing: {routing}\n" if routing else ""
    return f"""
app:
  title: Gate bench
  poll_interval_seconds: 0.05
listen: 127.0.0.1:{{port}}
state_dir: {workdir}/state
log_level: info
caddy:
  manage: false
  admin: http://127.0.0.1:{caddy.admin_port}
  integration: full
  caddyfile: {workdir}/Caddyfile
  launcher_url: http://launcher.localhost:{caddy.port}
  bind: 127.0.0.1
  http_port: {caddy.port}
  auto_https: false
{routing_line}buttons:
  - id: api
    label: API
    provider: sim
    public_base_url: http://api.localhost:{caddy.port}/
    upstream: 127.0.0.1:{static_port}
    idle_timeout_seconds: 3600
    inflight:
      enabled: false
    health:
      path: /health
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 1
    sim:
      start_awake: true
      wake_seconds: 0.05
      boot_seconds: 0
      sleep_seconds: 0.05
  - id: rec
    label: Recorder
    provider: sim
    public_base_url: http://rec.localhost:{caddy.port}/
    upstream: 127.0.0.1:{recorder_port}
    idle_timeout_seconds: 3600
    inflight:
      enabled: false
    health:
      path: /health
      interval_seconds: 0.05
      timeout_seconds: 1
      successes_needed: 1
    sim:
      wake_seconds: 0.4
      boot_seconds: 0
      sleep_seconds: 0.05
"""


def render(binary, config_text, port, workdir, tag):
    path = os.path.join(workdir, f"render-{tag}.yaml")
    with open(path, "w") as file:
        file.write(config_text.replace("{port}", str(port)))
    result = subprocess.run([binary, "render-caddy", "--config", path, "--ready", "api", "--ready", "rec"],
                            capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr


def standin_gate_caddyfile(switch_text, gate_port, names_ports):
    """The gate as the brief renders it, built from the switch Caddyfile's global options and
    launcher site, for the stand-in."""
    head = re.split(r"\n(?=# (?:api|rec): )", switch_text)[0]
    sites = []
    for name, site in names_ports:
        sites.append(f"""
{site} {{
	bind 127.0.0.1
	route {{
		request_header -X-Unshelver-Upstream
		forward_auth 127.0.0.1:{gate_port} {{
			uri {GATE_PREFIX}{name}
			copy_headers X-Unshelver-Upstream X-Unshelver-Request
			lb_try_duration 15s
		}}
		reverse_proxy {{http.request.header.X-Unshelver-Upstream}} {{
			header_up -X-Unshelver-Upstream
			buffer_requests
		}}
	}}
}}
""")
    return head.rstrip() + "\n" + "".join(sites)


def without_transport(gate_text):
    """The rendered gate with Caddy's default connection pool to the gate: every forward_auth's
    `transport http { ... }` block removed; None when there is none."""
    out, removed = [], 0
    inside_auth, skipping, depth = False, False, 0
    for line in gate_text.split("\n"):
        stripped = line.strip()
        if not inside_auth and stripped.startswith("forward_auth ") and stripped.endswith("{"):
            inside_auth, depth = True, 1
            out.append(line)
            continue
        if inside_auth:
            if skipping:
                if stripped == "}":
                    skipping = False
                continue
            if stripped.startswith("transport ") and stripped.endswith("{"):
                skipping, removed = True, removed + 1
                continue
            if stripped.startswith("#"):
                continue  # the comment about the pool goes with it
            depth += stripped.endswith("{") - (stripped == "}")
            if depth == 0:
                inside_auth = False
        out.append(line)
    return "\n".join(out) if removed else None


def with_keepalive(gate_text):
    """Variant (b): an explicit keep-alive transport inside every forward_auth block; None when the
    rendered gate already sets a transport there."""
    lines = gate_text.split("\n")
    out = []
    inside, depth, added = None, 0, 0
    for line in lines:
        stripped = line.strip()
        if inside is None and stripped.startswith("forward_auth ") and stripped.endswith("{"):
            inside = re.match(r"\t*", line).group(0) + "\t"
            depth = 1
            out.append(line)
            out.extend(inside + part for part in KEEPALIVE_TRANSPORT)
            added += 1
            continue
        if inside is not None:
            if stripped.startswith("transport "):
                return None
            depth += stripped.endswith("{") - (stripped == "}")
            if depth == 0:
                inside = None
        out.append(line)
    return "\n".join(out) if added else None


def sockets(port, state):
    """The 4-tuples of the sockets in `state` with `port` on either side (the gate's side when the
    gate closes first, Caddy's or wrk's side when they do)."""
    lines = subprocess.run(["ss", "-Htan", "state", state], capture_output=True, text=True).stdout.splitlines()
    found = set()
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and (fields[2].endswith(f":{port}") or fields[3].endswith(f":{port}")):
            found.add((fields[2], fields[3]))
    return found


def served_by(port, tuples):
    """Of `tuples`, the ones on the gate's own (server) side: one per connection."""
    return {t for t in tuples if t[0].endswith(f":{port}")}


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port, host, path, connections, gate_port, headers=()):
    """One wrk run; besides its figures, what happened to connections on the gate's port: `tw` the
    TIME-WAIT sockets that appeared (a connection closed), `new` the connections to the gate opened
    during the run (seen established mid-run or at the end, or in TIME-WAIT at the end, and not
    before it), `est` the gate's established connections mid-run."""
    tw_before = sockets(gate_port, "time-wait")
    est_before = served_by(gate_port, sockets(gate_port, "established"))
    command = [WRK, "-t1", f"-c{connections}", f"-d{SECONDS:g}s", "--latency", "-H", f"Host: {host}",
               "-H", "Accept: application/json"]
    for header in headers:
        command += ["-H", header]
    if STATUS_SCRIPT:
        command += ["-s", STATUS_SCRIPT]
    command.append(f"http://127.0.0.1:{port}{path}")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(SECONDS / 2)
    est_mid = served_by(gate_port, sockets(gate_port, "established"))
    output, _ = process.communicate(timeout=SECONDS + 30)
    tw_after = sockets(gate_port, "time-wait")
    est_after = served_by(gate_port, sockets(gate_port, "established"))
    tw_new = tw_after - tw_before
    # A connection in TIME-WAIT on the client's side shows as (client, gate): turn it round.
    opened = (est_mid | est_after | {t if t[0].endswith(f":{gate_port}") else (t[1], t[0]) for t in tw_new}) - est_before
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"\s50%\s+(\S+)", output)
    p99 = re.search(r"\s99%\s+(\S+)", output)
    if not (rps and p50 and p99):
        raise SystemExit(f"gate_bench: could not read wrk's output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    statuses = " ".join(f"{code}x{count}" for code, count in re.findall(r"^status (\d+) (\d+)$", output, re.M))
    return {"statuses": statuses, "rps": float(rps.group(1)), "p50": to_ms(p50.group(1)), "p99": to_ms(p99.group(1)),
            "bad": int(bad.group(1)) if bad else 0,
            "errors": sum(map(int, errors.groups())) if errors else 0,
            "error_kinds": errors.group(0) if errors else "",
            "tw": len(tw_new), "new": len(opened), "est": len(est_mid)}


def check_route(port, host, path="/"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Host": host, "Accept": "application/json"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def load(caddy, text):
    try:
        caddy.load(text)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"gate_bench: Caddy refused a variant ({error.code}): {error.read()[:500]!r}\n{text}")
    time.sleep(0.2)


def median_of(runs, key):
    return statistics.median(run[key] for run in runs)


def caddy_errors(caddy, offset):
    """Caddy's own log lines at level error written since `offset`, counted by message."""
    path = os.path.join(caddy.workdir, "caddy.out")
    with open(path, "rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    counts = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") == "error":
            message = f"{entry.get('msg', '')}: {entry.get('error', '')}"[:160]
            counts[message] = counts.get(message, 0) + 1
    return counts


def diagnose(gate_port):
    """What the gate's port looks like when it stops answering: whether Unshelver answers at all,
    its listener's accept queue (Recv-Q of the LISTEN socket) and its connections."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{gate_port}/healthz", timeout=5) as response:
            print(f"    /healthz straight to Unshelver: {response.status} in {time.monotonic() - started:.3f} s")
    except OSError as error:
        print(f"    /healthz straight to Unshelver: no answer ({error!r}) after {time.monotonic() - started:.3f} s")
    listen = subprocess.run(["ss", "-Hltn", f"sport = :{gate_port}"], capture_output=True, text=True).stdout.strip()
    print(f"    listener (state recv-q send-q ...): {listen}")
    print(f"    connections on the gate's port: {len(served_by(gate_port, sockets(gate_port, 'established')))} "
          f"established, {len(sockets(gate_port, 'close-wait'))} close-wait, "
          f"{len(sockets(gate_port, 'time-wait'))} time-wait")


def throughput(caddy, variants, static_port, gate_port):
    """Every variant at every connection count, interleaved per round."""
    results = {}
    log_path = os.path.join(caddy.workdir, "caddy.out")
    for round_index in range(ROUNDS):
        for connections in CONNECTIONS:
            for name, kind, text in variants:
                log_offset = os.path.getsize(log_path)
                if kind == "caddy":
                    load(caddy, text)
                    try:
                        status, body = check_route(caddy.port, f"api.localhost:{caddy.port}", "/v1/models")
                    except OSError as error:
                        print(f"  {name}: a request through Caddy got no answer within 10 s ({error!r})")
                        diagnose(gate_port)
                        raise SystemExit("gate_bench: stopped: the gate no longer answers through Caddy")
                    if status != 200:
                        raise SystemExit(f"gate_bench: {name}: a request through Caddy got {status}: {body[:300]!r}")
                    run = run_wrk(caddy.port, f"api.localhost:{caddy.port}", "/v1/models", connections, gate_port)
                elif kind == "direct":
                    run = run_wrk(static_port, f"127.0.0.1:{static_port}", "/v1/models", connections, gate_port)
                else:  # the gate endpoint itself
                    # Caddy's sub-request keeps the client's Host; Unshelver answers the gate only for
                    # the backend's own host.
                    run = run_wrk(gate_port, f"api.localhost:{caddy.port}", GATE_PREFIX + "api", connections, gate_port,
                                  ("X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/models"))
                results.setdefault((name, connections), []).append(run)
                print(f"  round {round_index + 1} c={connections:<3} {name:<10} {run['rps']:>9.0f} req/s  "
                      f"p50 {run['p50']:6.2f} ms  p99 {run['p99']:6.2f} ms  gate conns: new {run['new']:<6} "
                      f"TIME-WAIT +{run['tw']:<6} established {run['est']:<4} non-2xx {run['bad']} sock-err {run['errors']}",
                      flush=True)
                if run["statuses"]:
                    print(f"      answers: {run['statuses']}")
                if run["errors"]:
                    print(f"      wrk: {run['error_kinds']}")
                    diagnose(gate_port)
                if run["bad"] or run["errors"]:
                    for message, count in caddy_errors(caddy, log_offset).items():
                        print(f"      Caddy logged {count} x {message}")
    return results


# Health is probed while waking too (issue 20), so ready may follow either state.
READY_LOGGED = re.compile(r"^(\S+) info\s+\[rec\] (?:waking|booting) -> ready ")


def logged_ready(daemon, since):
    """When Unshelver logged `rec` ready after `since` (its log's UTC timestamps), or None."""
    import datetime
    times = [datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() for m in map(READY_LOGGED.match, daemon.output().splitlines()) if m]
    times = [t for t in times if t > since]
    return times[0] if times else None


def hold_rounds(caddy, recorder, before_requests, after_requests, make_asleep, daemon):
    """Part 2: HELD requests held while `rec` wakes, released when it turns ready. The real gate
    answers 503 to API requests while a backend sleeps (unless wake_on_request, which the wake rate
    limits would refuse round after round): it is woken first with the control token and the
    requests arrive while it wakes (sim wake 0.4 s). The stand-in holds while the recorder's health
    fails: the requests come first, then the recorder turns healthy."""
    delays, lasts, clients, noticed, released, statuses = [], [], [], [], [], {}
    for _ in range(HOLD_ROUNDS):
        make_asleep()
        started = time.time()
        get(recorder.port, "/__reset")
        before_requests()
        done = []

        def client():
            try:
                status, _ = check_route(caddy.port, f"rec.localhost:{caddy.port}", "/v1/chat/completions")
            except OSError as error:
                status = type(error).__name__
            done.append((time.time(), status))

        threads = [threading.Thread(target=client) for _ in range(HELD)]
        for thread in threads:
            thread.start()
        time.sleep(0.1)
        early = len(done)
        after_requests()
        for thread in threads:
            thread.join(30)
        records = json.loads(get(recorder.port, "/__records"))
        ready = [t for t, path, status in records if path == "/health" and status == 200]
        served = [t for t, path, _ in records if path != "/health"]
        for _, status in done:
            statuses[status] = statuses.get(status, 0) + 1
        if early:
            statuses["answered within 0.1 s, not held"] = statuses.get("answered within 0.1 s, not held", 0) + early
        if not ready or not served:
            print(f"  round: no health 200 or no request reached the backend; answers {[s for _, s in done]}")
            continue
        delays.append((served[0] - ready[0]) * 1000)
        lasts.append((max(served) - ready[0]) * 1000)
        clients.append((max(t for t, _ in done) - ready[0]) * 1000)
        logged = logged_ready(daemon, started) if daemon is not None else None
        if logged is not None:
            noticed.append((logged - ready[0]) * 1000)
            released.append((served[0] - logged) * 1000)
    return delays, lasts, clients, noticed, released, statuses


def summary(values):
    if not values:
        return "n/a"
    return f"min {min(values):6.1f}  median {statistics.median(values):6.1f}  max {max(values):6.1f} ms"


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-recorder":
        return serve_recorder(int(sys.argv[2]))
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-standin":
        return serve_standin(int(sys.argv[2]), sys.argv[3:])
    if len(sys.argv) > 1:
        os.environ["UNSHELVER_BIN"] = os.path.abspath(sys.argv[1])
    from caddy_harness import CADDY, BareCaddy, CaddyProcess
    from harness import BINARY, Unshelver, free_port

    if not os.access(BINARY, os.X_OK):
        raise SystemExit(f"gate_bench: no unshelver binary at {BINARY}; usage: python3 {sys.argv[0]} [BINARY]")
    if CADDY is None or WRK is None:
        print("gate_bench: needs Debian's caddy and wrk (scripts/setup test-tools); skipped")
        return
    caddy_version = subprocess.run([CADDY, "version"], capture_output=True, text=True).stdout.strip()
    print(f"machine: nproc {os.cpu_count()}, {caddy_version and 'Caddy ' + caddy_version.split()[0]}, "
          f"wrk -t1, {SECONDS:g} s per run, {ROUNDS} round(s), load average {os.getloadavg()[0]:.2f}; binary {BINARY}")

    workdir = tempfile.mkdtemp(prefix="unshelver-gate-bench-")
    stoppers = []
    try:
        class StaticCaddy(CaddyProcess):
            def __init__(self):
                self.workdir = os.path.join(workdir, "static")
                os.makedirs(self.workdir)
                self.port, self.admin_port = free_port(), free_port()
                path = os.path.join(self.workdir, "Caddyfile")
                with open(path, "w") as file:
                    file.write(f"{{\n\tadmin 127.0.0.1:{self.admin_port}\n\tauto_https off\n}}\n"
                               f"http://127.0.0.1:{self.port} {{\n\tbind 127.0.0.1\n\trespond \"ok\" 200\n}}\n")
                self.run(path)

        static = StaticCaddy()
        stoppers.append(static.stop)
        recorder = Helper("--serve-recorder")
        stoppers.append(recorder.stop)
        wait_http(f"http://127.0.0.1:{recorder.port}/__records")
        front = BareCaddy(workdir)
        stoppers.append(front.stop)
        unshelver_port = free_port()

        gate_code, gate_text, gate_error = render(BINARY, bench_config(workdir, front, static.port, recorder.port, "gate"),
                                             unshelver_port, workdir, "gate")
        knows_routing = gate_code == 0 and "forward_auth" in gate_text
        real = knows_routing and not FORCE_STANDIN
        routing = "gate" if real else ("switch" if knows_routing else None)
        if knows_routing:
            code, switch_text, error = render(BINARY, bench_config(workdir, front, static.port, recorder.port, "switch"),
                                              unshelver_port, workdir, "switch")
            if code != 0:
                raise SystemExit(f"gate_bench: render-caddy with routing: switch failed: {error}")
        else:
            code, switch_text, error = render(BINARY, bench_config(workdir, front, static.port, recorder.port, None),
                                              unshelver_port, workdir, "switch")
            if code != 0:
                raise SystemExit(f"gate_bench: render-caddy failed: {error}")
        daemon = Unshelver(bench_config(workdir, front, static.port, recorder.port, routing), workdir=workdir,
                           port=unshelver_port)
        daemon.start()
        stoppers.append(daemon.stop)
        daemon.wait_for_state("ready", 10, "api")
        daemon.wait_for_state("asleep", 10, "rec")

        if real:
            gate_port = unshelver_port
            label = ""
            print(f"gate: the real Unshelver on 127.0.0.1:{gate_port} (render-caddy, caddy.routing: gate)")
        else:
            standin = Helper("--serve-standin", f"api=127.0.0.1:{static.port}", f"rec=127.0.0.1:{recorder.port}")
            stoppers.append(standin.stop)
            gate_port = standin.port
            wait_http(f"http://127.0.0.1:{gate_port}/")
            get(recorder.port, "/__down")
            label = " STAND-IN"
            why = "BENCH_STANDIN=1" if FORCE_STANDIN else (
                "render-caddy printed no forward_auth" if gate_code == 0
                else "this binary does not know caddy.routing: " + (gate_error.strip().splitlines() or ["?"])[-1])
            print(f"gate: STAND-IN (asyncio Python on 127.0.0.1:{gate_port}), not Unshelver: {why}")
            gate_text = standin_gate_caddyfile(switch_text, gate_port, [
                ("api", f"http://api.localhost:{front.port}"), ("rec", f"http://rec.localhost:{front.port}")])
        keepalive_text = with_keepalive(gate_text)
        with open(os.path.join(workdir, "gate.Caddyfile"), "w") as file:
            file.write(gate_text)
        print(f"Caddyfiles and logs in {workdir}")
        print("unix socket to the gate: not measured, Unshelver listens on TCP only (listen: HOST:PORT)")

        variants = [("direct", "direct", None), ("switch", "caddy", switch_text), ("gate", "caddy", gate_text)]
        if keepalive_text is None:
            # The rendered gate keeps its own pool (variant b): measure Caddy's default beside it.
            default_pool_text = without_transport(gate_text)
            if default_pool_text is not None:
                variants.append(("gate-dflt", "caddy", default_pool_text))
        else:
            variants.append(("gate+ka", "caddy", keepalive_text))
        variants.append(("gate-only", "gate", None))

        print(f"\n1. a small GET (200 \"ok\" from a static Caddy), wrk -t1 for {SECONDS:g} s per run{label}:")
        results = throughput(front, variants, static.port, gate_port)

        print(f"\n2. backend ready -> held requests released ({HELD} held per round, {HOLD_ROUNDS} rounds){label}:")
        load(front, gate_text)
        if real:
            def wake():
                code = daemon.wake("rec")[0]
                if code >= 300:
                    print(f"  the wake got {code}")

            def make_asleep():
                if daemon.backend("rec")["state"] != "asleep":
                    daemon.shelve("rec")
                    daemon.wait_for_state("asleep", 10, "rec")
                time.sleep(0.1)  # any probe of the last wake is answered
        else:
            def wake():
                get(recorder.port, "/__up")

            def make_asleep():
                get(recorder.port, "/__down")
                time.sleep(0.15)  # the stand-in's poller sees it down
        if real:
            held = hold_rounds(front, recorder, wake, lambda: None, make_asleep, daemon)
        else:
            held = hold_rounds(front, recorder, lambda: None, wake, make_asleep, None)
        delays, lasts, clients, noticed, released, statuses = held
    finally:
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception as error:  # report, and stop the rest anyway
                print(f"gate_bench: stopping: {error}")

    print(f"\n=== gate_bench summary{label}: medians over {ROUNDS} round(s); nproc {os.cpu_count()}, "
          f"Caddy {caddy_version.split()[0] if caddy_version else '?'}; wrk shares the CPUs; "
          f"load average now {os.getloadavg()[0]:.2f}")
    print(f"{'variant':<10} {'conns':>5} {'req/s':>9} {'vs switch':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'new conn':>8} {'TW':>6} {'errors':>6}")
    for connections in CONNECTIONS:
        base = median_of(results[("switch", connections)], "rps")
        for name, _, _ in variants:
            runs = results[(name, connections)]
            rps = median_of(runs, "rps")
            print(f"{name:<10} {connections:>5} {rps:>9.0f} {rps / base:>9.2f} {median_of(runs, 'p50'):>7.2f} "
                  f"{median_of(runs, 'p99'):>7.2f} {median_of(runs, 'new'):>8.0f} {median_of(runs, 'tw'):>6.0f} "
                  f"{sum(r['bad'] + r['errors'] for r in runs):>6}")
    print("  direct: wrk to the static upstream; switch: routing switch, ready (= variant c, the baseline); "
          "gate: as rendered;\n  gate-dflt: the rendered gate with Caddy's default pool to the gate (a);\n  gate+ka: forward_auth with transport http { keepalive 5m keepalive_idle_conns 512 "
          "keepalive_idle_conns_per_host 128 } (b);\n  gate-only: wrk to the gate URI itself. On the gate's port during one run: "
          "new conn = connections opened\n  (about the conns when Caddy reuses them, about the requests when not), "
          "TW = TIME-WAIT sockets that appeared;\n  errors = non-2xx answers plus wrk's socket errors, over all rounds. Unix socket: not measured (Unshelver listens on TCP only).")
    print(f"ready -> first held request at the backend: {summary(delays)}  (target <= 50 ms)")
    print(f"ready -> last held request at the backend:  {summary(lasts)}")
    print(f"ready -> last held response at the client:  {summary(clients)}")
    if noticed:
        print(f"  of which: health 200 -> Unshelver logs ready:       {summary(noticed)}")
        print(f"            logged ready -> first request at backend: {summary(released)}")
    print(f"held requests' answers: {statuses}")


if __name__ == "__main__":
    main()
