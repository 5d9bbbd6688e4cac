"""SIGHUP reloads the configuration in the running process (issue 15 §9): an invalid file is refused
and the running configuration stays; a valid one adds and removes backends and changes timeouts and
tokens without refusing a single connection; a new listen address waits for a restart."""
import http.client
import os
import re
import signal
import socket
import threading
import time
import unittest
import urllib.request

from harness import CONTROL_TOKEN, Unshelver, free_port, sim_config
from prom_check import check

OLD_TOKEN = CONTROL_TOKEN
NEW_TOKEN = "reloaded-token-" + "x" * 32

SECOND_BACKEND = """  - id: cpu
    label: Second
    provider: sim
    idle_timeout_seconds: 9
    sim:
      wake_seconds: 0.4
      boot_seconds: 0.3
      sleep_seconds: 0.3
"""


class ReloadTest(unittest.TestCase):
    def setUp(self):
        env = dict(os.environ)
        # The token comes from the secrets file, which a reload reads again (the environment
        # would win over it, and a running process's environment cannot change).
        env.pop("UNSHELVER_CONTROL_TOKEN", None)
        self.daemon = Unshelver(config_text="", env=env)
        self.secrets_path = os.path.join(self.daemon.workdir, "secrets.ini")
        self.write_config(token=OLD_TOKEN)
        self.daemon.start()
        self.pid = self.daemon.process.pid

    def tearDown(self):
        self.daemon.stop()

    def write_config(self, token, extra_backend="", idle_seconds=2, port=None, text=None):
        with open(self.secrets_path, "w") as secrets:
            secrets.write(f"[app]\ncontrol_token = {token}\n")
        os.chmod(self.secrets_path, 0o600)
        if text is None:
            text = sim_config(os.path.join(self.daemon.workdir, "state"), port or self.daemon.port,
                              idle_seconds=idle_seconds, extra_backend=extra_backend,
                              extra_top=f"secrets_file: {self.secrets_path}\n")
        with open(self.daemon.config_path, "w") as config:
            config.write(text)

    def sighup_and_wait_for(self, line, timeout=10):
        before = self.daemon.output().count(line)
        os.kill(self.pid, signal.SIGHUP)
        self.daemon.wait_until(lambda: self.daemon.process.poll() is not None or
                               self.daemon.output().count(line) > before, timeout, line)
        self.assertIsNone(self.daemon.process.poll(), "SIGHUP ended the process:\n" + self.daemon.output()[-3000:])

    def names(self):
        return [backend["name"] for backend in self.daemon.status()["backends"]]

    def events_with(self, token):
        return self.daemon.request("GET", "/api/events", {"Authorization": f"Bearer {token}"})

    def reloads_metric(self, result):
        body = self.daemon.get("/metrics")[2].decode()
        self.assertEqual(check(body), [])
        found = re.search(r'^unshelver_config_reloads_total\{result="%s"\} (\S+)$' % result, body, re.M)
        return float(found.group(1)) if found else None

    def test_an_invalid_configuration_is_refused_and_the_running_one_stays(self):
        with open(self.daemon.config_path) as config:
            broken = config.read().replace("idle_timeout_seconds: 2", "idle_timeout_seconds: soon")
        self.write_config(token=NEW_TOKEN, text=broken)
        self.sighup_and_wait_for("the new configuration is refused")
        self.assertRegex(self.daemon.output(), r"config\.yaml:\d+:\d+: .*idle_timeout_seconds")
        self.assertEqual(self.daemon.get("/healthz")[0], 200)
        self.assertEqual(self.names(), ["gpu"])
        # The running configuration, secrets included, stays: the old token still works.
        self.assertEqual(self.events_with(OLD_TOKEN)[0], 200)
        self.assertEqual(self.events_with(NEW_TOKEN)[0], 401)
        self.assertEqual(self.reloads_metric("refused"), 1)
        self.assertEqual(self.reloads_metric("applied"), 0)
        self.assertIn(b'"config_reload_refused"', self.events_with(OLD_TOKEN)[2])

    def test_a_valid_configuration_adds_and_removes_backends_and_changes_settings_without_a_refused_request(self):
        results = {"ok": 0, "failed": []}
        stop = threading.Event()

        def poll_launcher():
            # Each request on a new connection, through the TCP port, as visitors would come.
            while not stop.is_set():
                try:
                    request = urllib.request.Request(self.daemon.url("/"), headers={"Accept": "text/html"})
                    with urllib.request.urlopen(request, timeout=10) as response:
                        response.read()
                        results["ok"] += 1
                except Exception as error:  # noqa: BLE001 - every failure counts
                    results["failed"].append(repr(error))

        poller = threading.Thread(target=poll_launcher)
        poller.start()
        try:
            time.sleep(0.2)
            self.write_config(token=NEW_TOKEN, extra_backend=SECOND_BACKEND, idle_seconds=7)
            self.sighup_and_wait_for("configuration reloaded:")
            self.assertEqual(self.names(), ["gpu", "cpu"])
            time.sleep(0.2)
        finally:
            stop.set()
            poller.join(15)
        self.assertEqual(results["failed"], [])
        self.assertGreater(results["ok"], 0)
        self.assertEqual(self.daemon.process.pid, self.pid)

        self.assertIn("configuration reloaded: backends added: cpu; backends changed: gpu; settings: control token",
                      self.daemon.output())
        self.assertEqual(self.events_with(OLD_TOKEN)[0], 401)
        code, _, body = self.events_with(NEW_TOKEN)
        self.assertEqual(code, 200)
        self.assertIn(b'"config_reloaded"', body)
        self.assertEqual(self.reloads_metric("applied"), 1)
        # The new idle timeout is in effect.
        self.assertEqual(self.daemon.backend("gpu")["idle_timeout_seconds"], 7)
        self.assertEqual(self.daemon.backend("cpu")["idle_timeout_seconds"], 9)

        # Removing it again.
        self.write_config(token=NEW_TOKEN)
        self.sighup_and_wait_for("configuration reloaded: backends removed: cpu")
        self.assertEqual(self.names(), ["gpu"])
        self.assertEqual(self.daemon.process.pid, self.pid)

    def test_the_proxy_socket_is_handed_over_without_a_refused_request(self):
        # Caddy reaches Unshelver on http.proxy_socket in production (issue 15 §4): a reload hands
        # that socket over too, with the connections queued on it, and leaves its file in place.
        path = os.path.join(self.daemon.workdir, "proxy.sock")

        def write_with_socket(token):
            self.write_config(token=token)
            with open(self.daemon.config_path) as config:
                text = config.read().replace("\nhttp:\n", f"\nhttp:\n  proxy_socket: {path}\n", 1)
            self.write_config(token=token, text=text)

        class UnixConnection(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(10)
                self.sock.connect(path)

        write_with_socket(OLD_TOKEN)
        self.sighup_and_wait_for("configuration reloaded:")
        self.daemon.wait_until(lambda: os.path.exists(path), 10, "the proxy socket")
        results = {"ok": 0, "failed": []}
        stop = threading.Event()

        def poll_socket():
            while not stop.is_set():
                connection = UnixConnection("launcher.test")
                try:
                    connection.request("GET", "/healthz")
                    response = connection.getresponse()
                    response.read()
                    if response.status == 200:
                        results["ok"] += 1
                    else:
                        results["failed"].append(response.status)
                except Exception as error:  # noqa: BLE001 - every failure counts
                    results["failed"].append(repr(error))
                finally:
                    connection.close()

        poller = threading.Thread(target=poll_socket)
        poller.start()
        try:
            time.sleep(0.2)
            before = results["ok"]
            write_with_socket(NEW_TOKEN)
            self.sighup_and_wait_for("configuration reloaded: settings: control token")
            time.sleep(0.3)
        finally:
            stop.set()
            poller.join(15)
        self.assertEqual(results["failed"], [])
        self.assertGreater(results["ok"], before)
        self.assertIn("listening on unix:" + path + " (socket handed over)", self.daemon.output())
        self.assertTrue(os.path.exists(path), "the reload removed the proxy socket's file")
        self.daemon.stop()
        self.assertFalse(os.path.exists(path), "the proxy socket's file outlived the daemon")

    def test_a_new_listen_address_waits_for_a_restart(self):
        other_port = free_port()
        self.write_config(token=OLD_TOKEN, port=other_port)
        self.sighup_and_wait_for("configuration reloaded:")
        self.assertIn(f"listen: 127.0.0.1:{self.daemon.port} stays in use until unshelver restarts", self.daemon.output())
        self.assertEqual(self.daemon.get("/healthz")[0], 200)
        with self.assertRaises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{other_port}/healthz", timeout=2)

    def test_a_stop_asked_for_during_a_reload_is_graceful(self):
        # SIGTERM right behind SIGHUP lands in the old App's drain, between the two Apps (parked,
        # then handled by the new one) or in the new App: in every case the stop is graceful.
        os.kill(self.pid, signal.SIGHUP)
        os.kill(self.pid, signal.SIGTERM)
        self.assertEqual(self.daemon.process.wait(timeout=15), 0, self.daemon.output()[-3000:])
        self.assertIn("stopped cleanly", self.daemon.output())

    def test_a_second_sighup_during_a_reload_reads_the_file_again(self):
        # The second comes once the first is being handled (two pending SIGHUPs are one signal): in
        # the old App's drain, between the Apps, or in the new App, it makes a second reload.
        os.kill(self.pid, signal.SIGHUP)
        self.daemon.wait_until(lambda: "SIGHUP: reading the configuration again" in self.daemon.output(), 10,
                               "the first SIGHUP")
        os.kill(self.pid, signal.SIGHUP)
        self.daemon.wait_until(lambda: self.daemon.process.poll() is not None or
                               self.daemon.output().count("configuration reloaded:") >= 2, 10, "two reloads")
        self.assertIsNone(self.daemon.process.poll())
        self.assertEqual(self.daemon.get("/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
