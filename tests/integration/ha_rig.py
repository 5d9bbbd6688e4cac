"""HaRig: N Unshelver controllers sharing one backend through a private etcd cluster, for the HA
tests (test_ha.py) and the failover benchmark (tests/bench/ha_failover.py).

One fake OpenStack (tests/fakes/fake_openstack.py) with one shelved server whose guest answers
HTTP once it is ACTIVE; controllers c0..cN-1, each with its own workdir, state_dir, port and
access log, the same etcd endpoints and prefix. The gate is used directly, as Caddy's
forward_auth would (GET /.unshelver/gate/gpu with the backend's Host), at a random live
controller, the way Caddy with `lb_policy first` across the controllers moves on when one does
not answer. Cleanup (`close()`) kills every process the rig started, whatever happened; it also
runs at interpreter exit.

Python standard library only.
"""
import atexit
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from etcd_cluster import EtcdCluster  # noqa: E402
from fake_openstack import FakeOpenStack  # noqa: E402
from harness import Unshelver, free_port  # noqa: E402
from test_openstack import openstack_config, password_auth  # noqa: E402

BACKEND = "gpu"
HOST = "gpu.localhost"
ACTION_PATH = r"/servers/[^/]+/action$"


def access_line(host=HOST, status=200, uri="/v1/chat/completions"):
    """One Caddy access-log line (JSON) for a request to `host` that ended now."""
    return json.dumps({
        "level": "info", "ts": time.time(), "logger": "http.log.access.log1", "msg": "handled request",
        "request": {"remote_ip": "127.0.0.1", "remote_port": "40000", "proto": "HTTP/1.1", "method": "POST",
                    "host": host, "uri": uri, "headers": {"User-Agent": ["ha-test-client"], "Accept": ["*/*"]}},
        "user_id": "", "duration": 0.01, "size": 10, "status": status, "resp_headers": {"X-Served-By": [BACKEND]}}) + "\n"


class Controller:
    """One controller of the rig: an Unshelver process that can be killed, stopped and restarted."""

    def __init__(self, rig, index, config_text, workdir, port):
        self.rig = rig
        self.index = index
        self.name = f"c{index}"
        self.workdir = workdir
        self.access_log = os.path.join(workdir, "access.log")
        open(self.access_log, "a").close()
        self.daemon = Unshelver(config_text, workdir=workdir, port=port)
        self.stopped = False  # SIGSTOPped

    @property
    def port(self):
        return self.daemon.port

    def alive(self):
        p = self.daemon.process
        return p is not None and p.poll() is None

    def live(self):
        """Running and not stopped: it can answer."""
        return self.alive() and not self.stopped

    def start(self):
        self.stopped = False
        self.daemon.start()
        return self

    def kill9(self):
        if self.alive():
            if self.stopped:
                self.daemon.process.send_signal(signal.SIGCONT)
            self.daemon.process.kill()
            self.daemon.process.wait()
            self.daemon.log.close()
        self.stopped = False

    def sigstop(self):
        self.daemon.process.send_signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        self.daemon.process.send_signal(signal.SIGCONT)
        self.stopped = False

    def terminate(self):
        """SIGTERM and a clean exit (the harness checks the code and the log for secrets)."""
        if self.stopped:
            self.sigcont()
        return self.daemon.stop()

    def restart(self):
        self.kill9()
        return self.start()

    def status(self, timeout=3):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", "/api/status")
            response = connection.getresponse()
            return json.loads(response.read())
        finally:
            connection.close()

    def backend(self):
        for backend in self.status()["backends"]:
            if backend["name"] == BACKEND:
                return backend
        raise KeyError(BACKEND)

    def state(self):
        return self.backend()["state"]

    def leading(self):
        return bool(self.status()["ha"]["backends"][BACKEND]["leading"])

    def shown_leader(self):
        return self.status()["ha"]["backends"][BACKEND]["leader"]

    def public_wake(self):
        return self.daemon.public_wake(BACKEND)

    def wake(self):
        return self.daemon.wake(BACKEND)

    def write_access_line(self, status=200):
        """What this controller's Caddy would log when a request to the backend ends."""
        with open(self.access_log, "a") as log:
            log.write(access_line(status=status))

    def gate(self, timeout=60, method="POST", uri="/v1/chat/completions"):
        """One forward_auth sub-request; (status, headers, body). Raises OSError when the
        controller does not answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", f"/.unshelver/gate/{BACKEND}", headers={
                "Host": HOST, "X-Forwarded-Method": method, "X-Forwarded-Uri": uri,
                "X-Forwarded-For": "127.0.0.1", "Accept": "application/json", "User-Agent": "ha-test-client"})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def events(self):
        path = os.path.join(self.workdir, "state", "events.jsonl")
        records = []
        for candidate in (path + ".1", path):
            if os.path.exists(candidate):
                with open(candidate) as file:
                    for line in file:
                        line = line.strip()
                        if line:
                            try:
                                records.append(json.loads(line))
                            except ValueError:
                                pass  # a torn last line after kill -9
        return records

    def output(self):
        try:
            return self.daemon.output()
        except OSError:
            return ""


def documented_refusal(status, headers):
    """The gate's documented answer to a hold that ran out (README "The gate"; web/gate_routes.cc
    gate_expired): 503 with Retry-After and x-should-retry: true, which SDKs retry."""
    return status == 503 and headers.get("x-should-retry") == "true" and "retry-after" in headers


class HeldRequest(threading.Thread):
    """An API request held at the gate, sent the way Caddy's forward_auth with several upstreams
    and lb_try_duration would: to a random live controller, and again to another when the one
    asked does not answer (killed). A documented refusal (the hold ran out) is retried after
    Retry-After, as the OpenAI SDKs do. Ends with the first 2xx, or at `deadline` seconds."""

    def __init__(self, rig, rng, deadline=90, hold_timeout=60):
        super().__init__(daemon=True)
        self.rig = rig
        self.rng = rng
        self.deadline = deadline
        self.hold_timeout = hold_timeout
        self.attempts = []  # (controller, outcome) in order
        self.passed = False
        self.passed_at = None
        self.sent_at = None

    def run(self):
        self.sent_at = time.monotonic()
        end = self.sent_at + self.deadline
        while time.monotonic() < end:
            live = [c for c in self.rig.controllers if c.live()]
            if not live:
                time.sleep(0.2)
                continue
            controller = self.rng.choice(live)
            try:
                status, headers, _ = controller.gate(timeout=min(self.hold_timeout, max(1, end - time.monotonic())))
            except (OSError, http.client.HTTPException) as error:
                self.attempts.append((controller.name, f"no answer: {type(error).__name__}"))
                time.sleep(0.1)
                continue
            if 200 <= status < 300:
                self.attempts.append((controller.name, status))
                self.passed = True
                self.passed_at = time.monotonic()
                # The request reached the backend and ended: Caddy logs it at that controller.
                controller.write_access_line()
                return
            documented = documented_refusal(status, headers)
            self.attempts.append((controller.name, f"{status}{' documented' if documented else ''}"))
            if not documented:
                return  # any other answer reaches the client: a failed request
            time.sleep(min(float(headers.get("retry-after", "1")), 2))

    def failures(self):
        """Answers other than a pass, a dead controller or the documented refusal."""
        return [a for a in self.attempts if not (a[1] == 204 or (isinstance(a[1], int) and 200 <= a[1] < 300)
                                                 or str(a[1]).startswith("no answer")
                                                 or str(a[1]).endswith("documented"))]

    def refusals(self):
        return [a for a in self.attempts if str(a[1]).endswith("documented")]


class HaRig:
    def __init__(self, controllers=2, lease_ttl=5, poll=0.2, idle_seconds=4, etcd_members=3, hold_max_seconds=60,
                 cluster=None, tmp=None, start=True):
        self.tmp = tmp or tempfile.mkdtemp(prefix="unshelver-ha-")
        self.own_cluster = cluster is None
        self.cluster = None
        self.fake = None
        self.controllers = []
        self.closed = False
        atexit.register(self.close)
        try:
            if cluster is None:
                os.makedirs(os.path.join(self.tmp, "etcd"), exist_ok=True)
                cluster = EtcdCluster(etcd_members, os.path.join(self.tmp, "etcd"))
            self.cluster = cluster
            if self.own_cluster:
                self.cluster.wait_healthy(30)
            self.prefix = f"t{os.getpid()}-{random.randrange(1 << 30)}/"
            self.fake = FakeOpenStack({"timings": {"default": 0.05}})
            self.fake.start()
            self.guest_port = free_port()
            self.server_id = self.fake.add_server(
                "gpu-box", vm_state="shelved_offloaded",
                addresses={"private": [{"addr": "127.0.0.1", "version": 4, "OS-EXT-IPS:type": "fixed"}]},
                serve_http_port=self.guest_port)
            for index in range(controllers):
                workdir = os.path.join(self.tmp, f"c{index}")
                os.makedirs(workdir, exist_ok=True)
                port = free_port()
                self.controllers.append(Controller(self, index, self.config_text(
                    index, workdir, port, lease_ttl, poll, idle_seconds, hold_max_seconds), workdir, port))
            if start:
                for controller in self.controllers:
                    controller.start()
        except BaseException:
            self.close()
            raise

    def config_text(self, index, workdir, port, lease_ttl, poll, idle_seconds, hold_max_seconds):
        endpoints = ", ".join(f'"{e}"' for e in self.cluster.endpoints)
        lease = f"  lease_ttl_seconds: {lease_ttl}\n" if lease_ttl else ""  # None: the default lease
        top = (f"ha:\n  etcd: [{endpoints}]\n  instance: c{index}\n  prefix: \"{self.prefix}\"\n{lease}"
               f"  poll_interval_seconds: {poll}\n  request_timeout_seconds: 1\n"
               f"activity_log_path: {workdir}/access.log\n"
               "activity:\n  stat_interval_seconds: 0.2\n"
               "security:\n  wake_burst: 1000\n  wake_cooldown_seconds: 0\n")
        # inflight off: the controllers share one host here, so each one's socket table shows the
        # other's health prober (a probe every 0.1 s looks like a long stream), which would hold the
        # backend awake for ever; on separate hosts each sees only its own Caddy's connections.
        button = (f"    port: {self.guest_port}\n    host: {HOST}\n    public_base_url: http://{HOST}/\n"
                  f"    upstream_label: {BACKEND}\n    inflight:\n      enabled: false\n    routing: gate\n    wake_on_request: true\n"
                  f"    hold:\n      max_seconds: {hold_max_seconds}\n      retry_after_seconds: 1\n")
        return openstack_config(workdir, port, password_auth(self.fake), button, idle_seconds, top)

    # --- who leads, waiting ---------------------------------------------------------------------

    def live(self):
        return [c for c in self.controllers if c.live()]

    def leaders(self):
        """The live controllers that say they lead the backend."""
        found = []
        for controller in self.live():
            try:
                if controller.leading():
                    found.append(controller)
            except (OSError, ValueError, http.client.HTTPException):
                pass
        return found

    def leader(self, timeout=20):
        """The one live controller that leads, once exactly one does and every live one shows it."""
        def one():
            leaders = self.leaders()
            if len(leaders) != 1:
                return None
            try:
                if all(c.shown_leader() == leaders[0].name for c in self.live()):
                    return leaders[0]
            except (OSError, ValueError, http.client.HTTPException):
                return None
            return None
        return self.wait(one, timeout, "exactly one leader, shown by every live controller")

    def followers(self, leader):
        return [c for c in self.live() if c is not leader]

    def wait(self, predicate, timeout, what, interval=0.05):
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except (OSError, ValueError, KeyError, http.client.HTTPException) as error:
                last_error = error
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last_error})\n"
                             + self.describe())

    def states(self):
        out = {}
        for controller in self.live():
            try:
                out[controller.name] = controller.state()
            except (OSError, ValueError, http.client.HTTPException):
                out[controller.name] = None
        return out

    def wait_state(self, state, timeout, everywhere=True):
        """Until the leader (and, with `everywhere`, every live controller) shows `state`."""
        def reached():
            states = self.states()
            leaders = self.leaders()
            if len(leaders) != 1 or states.get(leaders[0].name) != state:
                return False
            return all(s == state for s in states.values()) if everywhere else True
        return self.wait(reached, timeout, f"the backend {state}", interval=0.1)

    def describe(self):
        lines = []
        for controller in self.controllers:
            try:
                if controller.live():
                    status = controller.status()
                    backend = [b for b in status["backends"] if b["name"] == BACKEND][0]
                    lines.append(f"{controller.name}: state={backend['state']} ha={status['ha']['backends']} "
                                 f"etcd={status['ha']['etcd']['reachable']} lease={status['ha']['lease']}")
                else:
                    lines.append(f"{controller.name}: {'stopped' if controller.stopped else 'dead'}")
            except Exception as error:  # noqa: BLE001 - a description for a failure message
                lines.append(f"{controller.name}: {error}")
        lines.append(f"actions: {self.action_names()}")
        return "\n".join(lines)

    # --- the cloud and the audit trail ------------------------------------------------------------

    def actions(self, name=None):
        entries = self.fake.requests(service="compute", method="POST", path_regex=ACTION_PATH, status=202)
        return [e for e in entries if name is None or e.get("action") == name]

    def action_names(self):
        return [e.get("action") for e in self.actions()]

    def events(self):
        """Every event of every controller, deduplicated by id, oldest first; and the duplicates."""
        seen = {}
        duplicates = []
        for controller in self.controllers:
            for record in controller.events():
                key = record.get("id")
                if key in seen:
                    duplicates.append(record)
                    continue
                seen[key] = dict(record, controller=controller.name)
        return sorted(seen.values(), key=lambda r: r.get("ts", "")), duplicates

    def held(self, rng, count=1, **kwargs):
        requests = [HeldRequest(self, rng, **kwargs) for _ in range(count)]
        for request in requests:
            request.start()
        return requests

    # --- cleanup ---------------------------------------------------------------------------------

    def close(self, keep_logs_on=None):
        if self.closed:
            return
        self.closed = True
        for controller in self.controllers:
            try:
                if controller.alive():
                    if controller.stopped:
                        controller.sigcont()
                    try:
                        controller.daemon.stop(expect_code=None)
                    except AssertionError:
                        controller.kill9()
            except OSError:
                pass
        if self.fake is not None:
            try:
                self.fake.stop()
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        if self.cluster is not None and self.own_cluster:
            self.cluster.stop()
        if os.environ.get("UNSHELVER_HA_KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


__all__ = ["HaRig", "Controller", "HeldRequest", "EtcdCluster", "documented_refusal", "access_line", "BACKEND"]
