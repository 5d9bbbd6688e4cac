"""Benchmark (not a test): one Unshelver guarding a fleet of simulated backends (issue 20, "1,000
backends for free"). Every figure is printed beside its baseline, measured in the same run.

1. Start-up to the first /healthz answer for each fleet size of FLEET_SIZES (default "250 1000
   2000"), beside the smallest size's time scaled linearly (goal: <= 0.5 s at 1,000, linear).
2. One wake at 1,000 backends: the answer time of `POST /control/wake/NAME` (the loop handles it
   whole before it answers: the state change, the state file, the pages), median of 5, beside the
   same with one backend. Then the time for the loop to answer /healthz right after the wake. Then
   the first /metrics, public /api/status and launcher (`GET /`) right after a change of one
   backend (a wake; at one backend, a wake or a shelve in turn), to the answer's first byte on a
   connection made beforehand, median of 5 each: what the first reader after a change pays for
   bringing the cached documents up to date (goal: <= 2 ms at 1,000 backends).
3. 100 wakes at once at 1,000 backends: until all are ready, beside one wake alone (the simulated
   cloud's own time, with the default 10 s poll).
4. RSS at 1,000 backends and at 1, in private dirty, private clean and shared pages (goals: <= 50
   MB at 1,000; private dirty <= 2 MB at one), beside the floor: a minimal program linked with the
   same Debian libraries, which waits and does nothing.
5. /metrics, the public /api/status (what visitors and the launcher's script read: any client that
   is not local, here through an X-Forwarded-For) and the launcher page at 1,000 backends, in
   requests per second under `wrk -t1 -c32`, beside nginx (one worker) serving the very same bytes
   (goal >= 1.0x).

With FLEET_BASELINE_BIN set to another build (the previous commit's, say), sections 1, 2 and 4
also print its figures. FLEET_INFLIGHT=0 turns in-flight sampling off (see below);
FLEET_ONLY=throughput runs section 5 alone, FLEET_ONLY=wake section 2 alone.

    python3 tests/bench/fleet_bench.py [BINARY]
"""
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BINARY = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/unshelver")
BASELINE = os.environ.get("FLEET_BASELINE_BIN", "")
SIZES = [int(size) for size in os.environ.get("FLEET_SIZES", "250 1000 2000").split()]
DURATION = os.environ.get("BENCH_DURATION", "5")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "32")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# FLEET_INFLIGHT=0 turns the in-flight sampling off on every backend (buttons[].inflight.enabled),
# to tell its cost at start-up from the rest.
INFLIGHT = os.environ.get("FLEET_INFLIGHT", "1") != "0"
TOKEN = "fleet-bench-control-token-0123456789"
PUBLIC = {"X-Forwarded-For": "192.0.2.10"}  # not local: the public document


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fleet_config(size, port, state_dir):
    lines = ["app:\n  title: Fleet\n  control_token: " + TOKEN + "\n",
             f"listen: 127.0.0.1:{port}\n", f"state_dir: {state_dir}\n", "log_level: warn\n", "buttons:\n"]
    for i in range(size):
        lines.append(f"  - id: b{i:04d}\n    label: Backend {i}\n    provider: sim\n"
                     f"    public_base_url: http://b{i:04d}.localhost/\n")
        if not INFLIGHT:
            lines.append("    inflight:\n      enabled: false\n")
    return "".join(lines)


class Fleet:
    """One Unshelver process with `size` simulated backends, in a directory of its own."""

    def __init__(self, binary, size, workdir):
        self.size = size
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"fleet-{size}-", dir=workdir)
        config = os.path.join(self.dir, "config.yaml")
        with open(config, "w") as out:
            out.write(fleet_config(size, self.port, os.path.join(self.dir, "state")))
        self.log = open(os.path.join(self.dir, "unshelver.log"), "w")
        started = time.monotonic()
        self.process = subprocess.Popen([binary, "run", "--config", config], stderr=self.log)
        while True:
            try:
                if self.request("GET", "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.002)
            if self.process.poll() is not None or time.monotonic() - started > 120:
                raise RuntimeError(f"unshelver with {size} backends did not start; see {self.dir}")
        self.startup = time.monotonic() - started

    def request(self, method, path, headers=None, timeout=30):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wake(self, name):
        started = time.monotonic()
        status, _ = self.request("POST", f"/control/wake/{name}",
                                 {"Authorization": "Bearer " + TOKEN, "Accept": "application/json"})
        elapsed = time.monotonic() - started
        if status not in (200, 202):
            raise RuntimeError(f"wake {name}: HTTP {status}")
        return elapsed

    def states(self):
        _, body = self.request("GET", "/api/status", PUBLIC)
        return {backend["name"]: backend["state"] for backend in json.loads(body)["backends"]}

    def wait_settled(self, timeout=120):
        """Until every backend has been observed once (none is `unknown`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(state != "unknown" for state in self.states().values()):
                return
            time.sleep(0.2)
        raise RuntimeError("the fleet was not observed in time")

    def wait_ready(self, names, timeout=120):
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            states = self.states()
            if all(states[name] == "ready" for name in names):
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError("the wakes did not finish in time")

    def memory(self):
        return process_memory(self.process.pid)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def process_memory(pid):
    """VmRSS and its parts from /proc/PID/smaps_rollup, in kB: `dirty` is the private dirty pages
    (heap, stacks, the libraries' relocated data: what this process alone costs, the issue's
    "private memory"), `clean` the private clean ones (file pages that no other process maps now,
    shared as soon as one does), `shared` the pages other processes map too."""
    figures = {"rss": 0, "dirty": 0, "clean": 0, "shared": 0}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                figures["rss"] = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Private_Dirty:"):
                figures["dirty"] += int(line.split()[1])
            elif line.startswith("Private_Clean:"):
                figures["clean"] += int(line.split()[1])
            elif line.startswith(("Shared_Clean:", "Shared_Dirty:")):
                figures["shared"] += int(line.split()[1])
    return figures


def floor_memory(binary, workdir):
    """The floor: a program that does nothing but wait, linked with the very libraries `binary` needs
    (its DT_NEEDED entries, each forced in), so the loader maps and relocates them all as for
    Unshelver. None when no C++ compiler is found."""
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        return None
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    needed = [line.split("[", 1)[1].split("]", 1)[0] for line in dynamic.splitlines() if "(NEEDED)" in line]
    source = os.path.join(workdir, "floor.cc")
    program = os.path.join(workdir, "floor")
    with open(source, "w") as out:
        out.write("#include <unistd.h>\n#include <iostream>\n"
                  "int main() { std::cout << \"ready\" << std::endl; pause(); }\n")
    libraries = ["-l:" + name for name in needed if not name.startswith(("libc.so", "ld-linux"))]
    subprocess.run([compiler, "-O2", "-o", program, source, "-Wl,--no-as-needed", *libraries], check=True)
    process = subprocess.Popen([program], stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()
        time.sleep(0.2)
        return process_memory(process.pid), len(needed)
    finally:
        process.kill()
        process.wait()


def mb(kb):
    return f"{kb / 1024:.1f} MB"


def startup_section(binary, label, workdir):
    print(f"-- start-up to the first /healthz ({label})")
    figures = {}
    for size in SIZES:
        fleet = Fleet(binary, size, workdir)
        figures[size] = fleet.startup
        fleet.stop()
    smallest = min(SIZES)
    for size in SIZES:
        linear = figures[smallest] * size / smallest
        print(f"   {size:5d} backends: {figures[size]:7.3f} s   (linear from {smallest}: {linear:6.3f} s;"
              f" goal at 1000: <= 0.5 s)")
    return figures


# What the first reader after a change reads: each is a cached document brought up to date then.
FIRST_READS = [("/metrics", {}), ("/api/status", PUBLIC), ("/", {"Accept": "text/html"})]


def shelve(fleet, name):
    status, _ = fleet.request("POST", f"/control/shelve/{name}",
                              {"Authorization": "Bearer " + TOKEN, "Accept": "application/json"})
    if status not in (200, 202):
        raise RuntimeError(f"shelve {name}: HTTP {status}")


def wake_section(binary, label, workdir):
    print(f"-- one wake request, answer time ({label})")
    results = {}
    first_reads = {}
    for size in (1, 1000):
        fleet = Fleet(binary, size, workdir)
        try:
            fleet.wait_settled()
            names = [f"b{i:04d}" for i in range(1, 6)] if size > 1 else ["b0000"]
            times = []
            lags = []
            for name in names:
                times.append(fleet.wake(name))
                started = time.monotonic()
                fleet.request("GET", "/healthz")
                lags.append(time.monotonic() - started)
            results[size] = (statistics.median(times), statistics.median(lags))
            # Every document is read once first, so that each measured read follows one change.
            for path, headers in FIRST_READS:
                fleet.request("GET", path, headers)
            first_reads[size] = {}
            for kind, (path, headers) in enumerate(FIRST_READS):
                figures = []
                for round_ in range(5):
                    if size > 1:
                        name = f"b{100 + 10 * kind + round_:04d}"
                        change = lambda name=name: fleet.wake(name)
                    else:
                        # One backend: woken and put to sleep in turn, each a change of it.
                        change = (lambda: shelve(fleet, "b0000")) if round_ % 2 == 0 else (lambda: fleet.wake("b0000"))
                    figures.append(one_first_byte_ms(fleet.port, path, headers, before=change))
                first_reads[size][path] = statistics.median(figures)
        finally:
            fleet.stop()
    for size, (answer, lag) in results.items():
        print(f"   {size:5d} backends: wake answered in {answer * 1000:7.2f} ms, /healthz right after"
              f" in {lag * 1000:6.2f} ms (median)")
    for size, figures in first_reads.items():
        text = ", ".join(f"{path} {ms:6.2f} ms" for path, ms in figures.items())
        print(f"   {size:5d} backends: first answer's first byte after a change: {text} (median;"
              f" goal at 1000: <= 2 ms)")
    return results


def many_wakes_section(binary, workdir):
    print("-- 100 wakes at once at 1000 backends, until all are ready")
    fleet = Fleet(binary, 1000, workdir)
    try:
        fleet.wait_settled()
        fleet.wake("b0999")
        one = fleet.wait_ready(["b0999"])
        names = [f"b{i:04d}" for i in range(100, 200)]
        threads = [threading.Thread(target=fleet.wake, args=(name,)) for name in names]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent = time.monotonic() - started
        hundred = fleet.wait_ready(names) + sent
        print(f"   100 wakes: all ready after {hundred:6.2f} s (sent in {sent:5.2f} s);"
              f" one wake alone: {one:6.2f} s")
    finally:
        fleet.stop()


def memory_section(binary, label, workdir):
    print(f"-- memory after start-up and one wake ({label})")
    def line(name, figures, goal):
        print(f"   {name:<22} VmRSS {mb(figures['rss']):>8}: private dirty {figures['dirty'] / 1024:5.2f} MB,"
              f" private clean {mb(figures['clean']):>8}, shared {mb(figures['shared']):>8}{goal}")
    floor = floor_memory(binary, workdir)
    if floor is None:
        print("   (no C++ compiler: the floor of a minimal program is not measured)")
    else:
        line(f"floor ({floor[1]} libraries)", floor[0], "   (a program linking the same libraries)")
    for size in (1, 1000):
        fleet = Fleet(binary, size, workdir)
        try:
            fleet.wait_settled()
            fleet.wake("b0000")
            for path, headers in (("/metrics", {}), ("/api/status", PUBLIC), ("/", {"Accept": "text/html"})):
                fleet.request("GET", path, headers)
            goal = ("   (goal: private dirty <= 2 MB)" if size == 1 else "   (goal: VmRSS <= 50 MB)")
            line(f"{size} backend" + ("s" if size > 1 else ""), fleet.memory(), goal)
        finally:
            fleet.stop()
    print("   private dirty: what this process alone costs; private clean: library and program pages no"
          " other process maps now (shared once one does)")


def wrk(url, headers=()):
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s"]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError("wrk printed no rate:\n" + output)


def one_first_byte_ms(port, path, headers, before=None):
    """The time from a request's last byte to its answer's first, on a connection made beforehand
    (after which `before()`, when given, runs): on an idle server, the loop's work for the answer
    (the answer's head goes out with its body, in one write, once the body is ready)."""
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        if before:
            before()
        started = time.perf_counter()
        connection.sendall(request.encode())
        if not connection.recv(1):
            raise RuntimeError(f"{path}: the connection closed without an answer")
        elapsed = (time.perf_counter() - started) * 1000
        while connection.recv(1 << 20):
            pass
    return elapsed


def first_byte_ms(port, path, headers):
    """The median of one_first_byte_ms over 20 requests one at a time."""
    return statistics.median(one_first_byte_ms(port, path, headers) for _ in range(20))


def throughput_section(binary, workdir):
    print(f"-- requests per second at 1000 backends beside nginx (wrk -t1 -c{CONNECTIONS} -d{DURATION}s,"
          f" median of {ROUNDS})")
    if not shutil.which("wrk") or not shutil.which("nginx"):
        print("   wrk or nginx is missing (scripts/setup bench): skipped")
        return
    fleet = Fleet(binary, 1000, workdir)
    nginx = None
    try:
        fleet.wait_settled()
        html = os.path.join(workdir, "nginx", "html")
        os.makedirs(os.path.join(html, "api"), exist_ok=True)
        os.makedirs(os.path.join(workdir, "nginx", "tmp"), exist_ok=True)
        paths = [("/metrics", "metrics", {}, "text/plain"),
                 ("/api/status", "api/status", PUBLIC, "application/json"),
                 ("/", "index.html", {"Accept": "text/html"}, "text/html")]
        for path, file, headers, _ in paths:
            with open(os.path.join(html, file), "wb") as out:
                out.write(fleet.request("GET", path, headers)[1])
        # nginx's workers drop root's rights: they must be able to read the files.
        for directory in (workdir, os.path.join(workdir, "nginx"), html, os.path.join(html, "api")):
            os.chmod(directory, 0o755)
        nginx_port = free_port()
        conf = os.path.join(workdir, "nginx", "nginx.conf")
        tmp = os.path.join(workdir, "nginx", "tmp")
        with open(conf, "w") as out:
            out.write(f"""worker_processes 1;
daemon off;
pid {workdir}/nginx/nginx.pid;
error_log {workdir}/nginx/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{
    listen 127.0.0.1:{nginx_port};
    root {html};
    location = /metrics {{ default_type text/plain; }}
    location = /api/status {{ default_type application/json; }}
    location = / {{ default_type text/html; try_files /index.html =404; }}
  }}
}}
""")
        nginx = subprocess.Popen(["nginx", "-p", os.path.join(workdir, "nginx"), "-c", conf])
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", nginx_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        for path, file, headers, _ in paths:
            connection = http.client.HTTPConnection("127.0.0.1", nginx_port, timeout=10)
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            served = len(response.read())
            connection.close()
            if response.status != 200 or served != os.path.getsize(os.path.join(html, file)):
                raise RuntimeError(f"nginx answered {path} with {response.status}, {served} bytes")
        print(f"   {'path':<12} {'bytes':>9} {'unshelver r/s':>14} {'nginx r/s':>10} {'ratio':>7}")
        for path, file, headers, _ in paths:
            header_lines = [f"{name}: {value}" for name, value in headers.items()]
            ours, theirs = [], []
            for _ in range(ROUNDS):
                ours.append(wrk(f"http://127.0.0.1:{fleet.port}{path}", header_lines))
                theirs.append(wrk(f"http://127.0.0.1:{nginx_port}{path}", header_lines))
            a, b = statistics.median(ours), statistics.median(theirs)
            size = os.path.getsize(os.path.join(html, file))
            print(f"   {path:<12} {size:>9} {a:>14.0f} {b:>10.0f} {a / b:>6.2f}x")
        # Each answer's time on the loop: what a scrape or a page costs every other client.
        print("   time to the first byte of one answer on an idle server, median of 20:")
        for path, _, headers, _ in paths:
            ours = first_byte_ms(fleet.port, path, headers)
            theirs = first_byte_ms(nginx_port, path, headers)
            print(f"   {path:<12} unshelver {ours:6.2f} ms, nginx {theirs:6.2f} ms")
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
        fleet.stop()


def main():
    workdir = tempfile.mkdtemp(prefix="unshelver-fleet-bench-")
    try:
        binaries = [(BINARY, "this build")] + ([(BASELINE, "baseline " + BASELINE)] if BASELINE else [])
        if os.environ.get("FLEET_ONLY") == "throughput":
            throughput_section(BINARY, workdir)
            return
        if os.environ.get("FLEET_ONLY") == "wake":
            for binary, label in binaries:
                wake_section(binary, label, workdir)
            return
        for binary, label in binaries:
            startup_section(binary, label, workdir)
        for binary, label in binaries:
            wake_section(binary, label, workdir)
        many_wakes_section(BINARY, workdir)
        for binary, label in binaries:
            memory_section(binary, label, workdir)
        throughput_section(BINARY, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
