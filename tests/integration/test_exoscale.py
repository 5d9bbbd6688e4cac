"""The real binary against the fake Exoscale API (tests/fakes/fake_exoscale.py).

Every request is signed and checked by the fake. A wake reaches ready through starting/running
and the guest's health check; the idle rule stops the instance; a start whose operation fails
shows the operation's reason and message; refused credentials are shown, and the backend
recovers once they are accepted again. No test lets the API secret reach the daemon's output,
its state files or its event log. A few seconds each.
"""
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

from fake_exoscale import FakeExoscale  # noqa: E402
from harness import Unshelver, free_port  # noqa: E402

API_KEY = "EXO0123456789abcdef01234567"
API_SECRET = "exo-marker-secret-Zq8V3nT1wK5pL0"
TIMINGS = {"start_seconds": 0.3, "stop_seconds": 0.3, "boot_seconds": 0.2, "reboot_seconds": 0.3}


class ExoscaleTestCase(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-exoscale-")
        self.guest_port = free_port()
        self.fake = FakeExoscale({"api_key": API_KEY, "api_secret": API_SECRET, "timings": TIMINGS}).start()
        self.addCleanup(self.fake.stop)
        self.instance_id = self.fake.add_instance("gpu-box", state="stopped", public_ip="127.0.0.1",
                                                  serve_http_port=self.guest_port)
        self.unshelver = None

    def start_unshelver(self, credentials="yaml", idle_seconds=30, button_extra=""):
        port = free_port()
        state_dir = os.path.join(self.workdir, "state")
        env = dict(os.environ)
        exoscale = f"exoscale:\n  api_url: {self.fake.api_url}\n  api_timeout_seconds: 1\n"
        top = ""
        if credentials == "yaml":
            exoscale += f"  api_key: {API_KEY}\n  api_secret: {API_SECRET}\n"
        elif credentials == "secrets_file":
            secrets = os.path.join(self.workdir, "secrets.ini")
            with open(secrets, "w") as file:
                file.write(f"[exoscale]\napi_key = {API_KEY}\napi_secret = {API_SECRET}\n")
            os.chmod(secrets, 0o600)
            top = f"secrets_file: {secrets}\n"
        else:
            env["EXOSCALE_API_KEY"] = API_KEY
            env["EXOSCALE_API_SECRET"] = API_SECRET
        text = f"""
app:
  title: Exoscale test
  poll_interval_seconds: 0.1
  api_retry_attempts: 2
listen: 127.0.0.1:{port}
state_dir: {state_dir}
log_level: debug
{top}{exoscale}
buttons:
  - id: gpu
    label: GPU
    provider: exoscale
    zone: de-fra-1
    instance_name: gpu-box
    port: {self.guest_port}
    idle_timeout_seconds: {idle_seconds}
    health:
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 1
{button_extra}
"""
        self.unshelver = Unshelver(text, workdir=self.workdir, port=port, env=env)
        self.unshelver.start()
        self.addCleanup(self.stop_unshelver)
        return self.unshelver

    def stop_unshelver(self):
        if self.unshelver.process and self.unshelver.process.poll() is None:
            self.unshelver.stop()
        # The secret never leaves the config: not in the output, the state or the event log.
        self.assertNotIn(API_SECRET, self.unshelver.output())
        for directory, _, files in os.walk(os.path.join(self.workdir, "state")):
            for name in files:
                with open(os.path.join(directory, name), "rb") as file:
                    self.assertNotIn(API_SECRET.encode(), file.read(), name)

    def counts(self):
        return self.fake.action_counts(self.instance_id)


class Lifecycle(ExoscaleTestCase):
    def test_wake_to_ready_then_idle_stop(self):
        u = self.start_unshelver(credentials="environment", idle_seconds=1.5)
        u.wait_for_state("asleep", 10)
        code, _, _ = u.wake()
        self.assertEqual(code, 202)
        seen = u.wait_for_state("ready", 15)
        self.assertIn("waking", seen)
        self.assertEqual(u.backend()["upstream"], f"127.0.0.1:{self.guest_port}")
        self.assertEqual(self.counts()["start"], 1)
        # Start needs its JSON body; every request was signed and accepted.
        starts = self.fake.requests(method="PUT", path_regex=r":start$")
        self.assertEqual([s["body"] for s in starts], ["{}"])
        self.assertEqual(self.fake.requests(status=403), [])
        # Idle: the instance is stopped, once.
        u.wait_for_state("asleep", 15)
        self.assertEqual(self.fake.instance(self.instance_id)["state"], "stopped")
        self.assertEqual(self.counts(), {"start": 1, "stop": 1, "reboot": 0})
        stops = self.fake.requests(method="PUT", path_regex=r":stop$")
        self.assertEqual([s["body"] for s in stops], [""])

    def test_a_failed_start_operation_is_shown_with_its_reason(self):
        u = self.start_unshelver(credentials="secrets_file")
        u.wait_for_state("asleep", 10)
        self.fake.fail_start(reason="unavailable", message="no GPU left in de-fra-1")
        u.wake()
        u.wait_for_state("error", 10)
        error = u.backend()["error"]
        self.assertIn("no GPU left in de-fra-1", error)
        self.assertIn("unavailable", error)
        self.assertEqual(self.counts()["start"], 1)
        self.assertGreaterEqual(len(self.fake.requests(method="GET", path_regex=r"/v2/operation/")), 1)
        # on_error: wait stays in error; asking again starts it.
        time.sleep(0.5)
        self.assertEqual(u.backend()["state"], "error")
        self.assertEqual(self.counts()["start"], 1)
        u.wake()
        u.wait_for_state("ready", 15)
        self.assertEqual(self.counts()["start"], 2)

    def test_refused_credentials_are_visible_and_recovered_from(self):
        self.fake.configure(refuse_credentials=True)
        u = self.start_unshelver()
        shown = u.wait_until(lambda: u.backend()["observe_error"], 10, "the refusal shown")
        self.assertIn("refused the API credentials", shown)
        self.assertIn("Invalid request signature", shown)
        self.assertEqual(self.counts()["start"], 0)
        self.fake.configure(refuse_credentials=False)
        u.wait_for_state("asleep", 10)
        self.assertFalse(u.backend()["observe_error"])

    def test_a_missing_instance_name_stops_the_daemon_with_a_clear_error(self):
        self.fake.set_instance_state(self.instance_id, "stopped")
        port = free_port()
        text = f"""
app:
  poll_interval_seconds: 0.1
listen: 127.0.0.1:{port}
state_dir: {os.path.join(self.workdir, "state")}
exoscale:
  api_url: {self.fake.api_url}
  api_key: {API_KEY}
  api_secret: {API_SECRET}
buttons:
  - id: gpu
    provider: exoscale
    instance_name: no-such-box
"""
        self.unshelver = Unshelver(text, workdir=self.workdir, port=port)
        self.addCleanup(self.stop_unshelver)
        self.unshelver.log = open(self.unshelver.log_path, "ab")
        import subprocess
        from harness import BINARY
        process = subprocess.Popen([BINARY] + self.unshelver.args, stdout=self.unshelver.log,
                                   stderr=subprocess.STDOUT)
        self.unshelver.process = process
        self.assertEqual(process.wait(timeout=10), 2)
        self.unshelver.log.close()
        self.assertIn("no instance in this zone has the id or the exact name \"no-such-box\"",
                      self.unshelver.output())


if __name__ == "__main__":
    unittest.main()
