"""Caddy's routing managed through its admin API, with the real Caddy from Debian: the backend host
goes to the backend while it is ready and to Unshelver's waiting page otherwise, with no broken
page in between, and whatever someone else loads into Caddy is repaired."""
import http.client
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.request

from caddy_harness import CADDY, BareCaddy, FakeBackend
from harness import ADMIN, Unshelver, require_peer

WRK = shutil.which("wrk")


def routing_config(workdir, caddy, backend, idle_seconds=120, activity=True, template="", inflight=True,
                   routing="switch"):
    """These tests are about the switch routing (the route changes with the state); the gate has
    its own in test_gate.py."""
    log = f"{workdir}/access.log"
    return f"""
app:
  title: Routing test
  poll_interval_seconds: 0.1
listen: 127.0.0.1:{{port}}
state_dir: {workdir}/state
log_level: debug
{"activity_log_path: " + log if activity else ""}
caddy:
  manage: true
  admin: {caddy.admin_url}
  integration: full
  caddyfile: {workdir}/Caddyfile
  launcher_url: http://launcher.localhost:{caddy.port}
  bind: 127.0.0.1
  http_port: {caddy.port}
  auto_https: false
  routing: {routing}
  log_roll_size_mb: 1
  log_roll_keep: 2
  drift_check_seconds: 1
  retry_max_seconds: 1
  {"template: " + template if template else ""}
buttons:
  - id: gpu
    label: Test GPU
    provider: sim
    public_base_url: http://chat.localhost:{caddy.port}/
    upstream: 127.0.0.1:{backend.port}
    idle_timeout_seconds: {idle_seconds}
    health:
      path: /health
      interval_seconds: 0.05
      timeout_seconds: 1
      successes_needed: 2
    inflight:
      enabled: {"true" if inflight else "false"}
    sim:
      wake_seconds: 0.05
      boot_seconds: 0
      sleep_seconds: 0.05
"""


@require_peer(CADDY, "caddy")
class RoutingTest(unittest.TestCase):
    def start(self, admin_socket=False, **options):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-routing-")
        self.backend = FakeBackend()
        self.addCleanup(self.backend.stop)
        self.caddy = BareCaddy(self.workdir, admin_socket=admin_socket)
        self.addCleanup(self.caddy.stop)
        self.daemon = Unshelver(routing_config(self.workdir, self.caddy, self.backend, **options),
                                workdir=self.workdir)
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        self.wait_for(lambda: self.daemon.status()["caddy"].get("loaded_at"), 10, "the first load into Caddy")

    def wait_for(self, predicate, timeout, what):
        def attempt():
            # Caddy closes the connections it is serving when a new configuration replaces the
            # running one; a request that meets that moment is asked again, not a failure.
            try:
                return predicate()
            except (ConnectionError, http.client.RemoteDisconnected):
                return False
        return self.daemon.wait_until(attempt, timeout, what)

    def chat(self, method="GET", path="/", accept="text/html", body=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.caddy.port, timeout=10)
        headers = {"Host": f"chat.localhost:{self.caddy.port}", "Accept": accept}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), data

    def wake(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.caddy.port, timeout=10)
        # An admin's wake through Caddy (the public button's own checks are test_security's).
        connection.request("POST", "/control/wake/gpu", body=b"",
                           headers={"Host": f"launcher.localhost:{self.caddy.port}", "Accept": "application/json",
                                    **ADMIN})
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status

    def test_asleep_waiting_page_then_first_request_after_ready_reaches_the_backend(self):
        self.start()
        self.daemon.wait_for_state("asleep", 5)
        status, headers, body = self.chat()
        self.assertEqual(status, 200)
        self.assertIn(b"Wake Test GPU", body)
        self.assertIn(b"/.well-known/unshelver/static/waiting.js", body)
        self.assertEqual(self.wake(), 202)
        self.daemon.wait_for_state("ready", 10)
        # The very first request once the status says ready is served by the backend.
        status, headers, body = self.chat()
        self.assertEqual((status, headers.get("X-Served-By")), (200, "gpu"), body[:200])
        self.assertEqual(self.daemon.status()["caddy"]["modes"], {"gpu": "backend"})

    def test_post_while_asleep_gets_503_with_retry_after(self):
        self.start()
        self.daemon.wait_for_state("asleep", 5)
        status, headers, body = self.chat("POST", "/v1/chat/completions", accept="application/json", body=b"{}")
        self.assertEqual(status, 503)
        self.assertIn("Retry-After", headers)
        self.assertIn(b'"backend":"gpu"', body)
        status, headers, _ = self.chat("GET", "/v1/models", accept="application/json")
        self.assertEqual(status, 503)
        self.assertIn("Retry-After", headers)

    def test_killing_the_backend_while_ready_gives_the_fallback_page(self):
        self.start()
        self.wake()
        self.daemon.wait_for_state("ready", 10)
        self.backend.stop()
        status, headers, body = self.chat()
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers.get("X-Served-By"), "launcher-fallback")
        self.assertIn(b"/.well-known/unshelver/", body)
        # A POST cannot be replayed to the fallback: Caddy answers a documented 503.
        status, headers, _ = self.chat("POST", "/v1/chat", accept="application/json", body=b"{}")
        self.assertEqual(status, 503)
        self.assertIn("Retry-After", headers)
        # And the health probes notice: the backend drops back to booting, routing to Unshelver.
        self.wait_for(lambda: self.daemon.backend()["state"] != "ready", 10, "health to notice")

    def test_a_foreign_config_is_repaired_within_one_interval(self):
        self.start()
        self.wake()
        self.daemon.wait_for_state("ready", 10)
        self.assertEqual(self.chat()[1].get("X-Served-By"), "gpu")
        self.caddy.load(f"{{\n\tadmin {self.caddy.admin_listen}\n\tauto_https off\n\thttp_port {self.caddy.port}\n}}\n"
                        f"http://chat.localhost:{self.caddy.port} {{\n\tbind 127.0.0.1\n\trespond \"someone else\" 418\n}}\n")
        self.assertEqual(self.chat()[0], 418)
        # drift_check_seconds is 1: restored within about one interval.
        started = time.monotonic()
        self.wait_for(lambda: self.chat()[1].get("X-Served-By") == "gpu", 5, "the drift repair")
        print(f"\nforeign config repaired after {time.monotonic() - started:.2f} s")
        self.assertGreaterEqual(self.daemon.status()["caddy"]["drift_repairs"], 1)

    def test_admin_api_on_a_unix_socket_stays_there_through_loads_and_repairs(self):
        """Issue 15 §6: with `caddy.admin: unix//...` Unshelver loads, switches and repairs through
        the socket, every config it loads keeps the admin API there (no TCP admin port appears),
        and the socket has the documented mode: Caddy's user and group may connect, no one else."""
        self.start(admin_socket=True)
        self.daemon.wait_for_state("asleep", 5)
        self.assertIn(b"Wake Test GPU", self.chat()[2])
        self.assertEqual(self.wake(), 202)
        self.daemon.wait_for_state("ready", 10)
        self.wait_for(lambda: self.chat()[1].get("X-Served-By") == "gpu", 5, "the switch to the backend")
        self.assertEqual(self.daemon.status()["caddy"]["admin"], self.caddy.admin_url)
        # Someone in the socket's group loads a site of their own; it is repaired through the socket.
        self.caddy.load(f"{{\n\tadmin {self.caddy.admin_listen}\n\tauto_https off\n\thttp_port {self.caddy.port}\n}}\n"
                        f"http://chat.localhost:{self.caddy.port} {{\n\tbind 127.0.0.1\n\trespond \"someone else\" 418\n}}\n")
        self.wait_for(lambda: self.chat()[1].get("X-Served-By") == "gpu", 5, "the drift repair")
        # Caddy serves the repaired config a moment before Unshelver has its answer and counts it.
        self.wait_for(lambda: self.daemon.status()["caddy"]["drift_repairs"] >= 1, 5, "the repair to be counted")
        self.assertEqual(self.caddy.config()["admin"]["listen"], self.caddy.admin_listen)
        # Caddy's only TCP listener is its HTTP port: no admin API on localhost:2019 or elsewhere.
        self.assertEqual(self.caddy.tcp_listen_ports(), {self.caddy.port})
        mode = os.stat(self.caddy.admin_socket).st_mode
        self.assertTrue(stat.S_ISSOCK(mode))
        # 0770 from umask 0007: for a socket only the write bit matters, so this is what 0660 would be.
        self.assertEqual(stat.S_IMODE(mode), 0o770)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.caddy.admin_socket)).st_mode), 0o750)

    def test_caddy_rejecting_the_config_keeps_the_old_one_and_shows_the_error(self):
        self.start()
        self.daemon.wait_for_state("asleep", 5)
        before = self.caddy.config()
        # Stop Unshelver, then start it again with a template that renders an invalid Caddyfile.
        self.daemon.stop()
        broken = os.path.join(self.workdir, "broken.Caddyfile.template")
        with open(broken, "w") as template:
            template.write("{\n\tadmin {{{admin_listen}}}\n}\nhttp://x.localhost {\n\treverse_prox 127.0.0.1:1\n}\n")
        # Same port: Caddy's live config still sends the hosts to it.
        again = Unshelver(routing_config(self.workdir, self.caddy, self.backend, template=broken), workdir=self.workdir,
                          port=self.daemon.port)
        again.start()
        try:
            caddy_status = again.wait_until(lambda: again.status()["caddy"]["last_error"] and again.status()["caddy"],
                                            10, "Caddy's 400 to show")
            self.assertIn("reverse_prox", caddy_status["last_error"])
            self.assertEqual(self.caddy.config(), before)  # the old config is still live
            status, _, body = self.chat()
            self.assertEqual(status, 200)
            self.assertIn(b"Test GPU", body)
        finally:
            again.stop()

    @unittest.skipIf(WRK is None, "wrk is not installed (scripts/setup test installs it)")
    def test_100_mode_switches_under_load_give_no_server_errors(self):
        # Neither the access log nor in-flight detection: wrk's constant traffic must not keep the
        # backend awake, so that it sleeps 1 s after each wake.
        self.start(idle_seconds=1, activity=False, inflight=False)
        switches = 0
        wrk = subprocess.Popen([WRK, "-t1", "-c8", "-d120s", "--latency", "-H", "Accept: text/html",
                                "-H", f"Host: chat.localhost:{self.caddy.port}",
                                "-s", os.path.join(os.path.dirname(__file__), "wrk_status_counts.lua"),
                                f"http://127.0.0.1:{self.caddy.port}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            last_mode = None
            deadline = time.monotonic() + 110
            while switches < 100 and time.monotonic() < deadline:
                state = self.daemon.backend()["state"]
                if state == "asleep":
                    self.wake()
                mode = self.daemon.status()["caddy"]["modes"].get("gpu")
                if last_mode is not None and mode != last_mode:
                    switches += 1
                last_mode = mode
                time.sleep(0.01)
        finally:
            wrk.send_signal(signal.SIGINT)  # wrk stops early and prints its summary
            output, _ = wrk.communicate(timeout=30)
        print(f"\n{switches} mode switches under load\n{output}")
        self.assertGreaterEqual(switches, 100)
        counts = {}
        for line in output.splitlines():
            if line.startswith("status "):
                _, code, count = line.split()
                counts[int(code)] = int(count)
        self.assertTrue(counts, output)
        server_errors = {code: n for code, n in counts.items() if code >= 500}
        self.assertEqual(server_errors, {}, output)


if __name__ == "__main__":
    unittest.main()
