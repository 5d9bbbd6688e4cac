"""The real binary against the protocol-faithful fake OpenStack (tests/fakes/fake_openstack.py).

Keystone (password, application credential, clouds.yaml), a full wake and idle shelve through
Nova's real task states, token expiry in the middle of a wake, injected faults (5xx, 429, dropped
connections, timeouts, 409, No valid host, transitions that never finish), a SHUTOFF server that
is started, an ambiguous server name, and a loop that keeps serving while a cloud call hangs.
Every test checks that no action was sent twice and that the password never reaches the log.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

from fake_openstack import FakeOpenStack  # noqa: E402
from harness import BINARY, Unshelver, free_port  # noqa: E402

PASSWORD = "demo-password-123"
APP_SECRET = "ac-secret-xyz"


def openstack_config(workdir, port, auth, button_extra="", idle_seconds=2, top_extra=""):
    state_dir = os.path.join(workdir, "state")
    return f"""
app:
  title: OpenStack test
  poll_interval_seconds: 0.1
  api_retry_attempts: 3
listen: 127.0.0.1:{port}
state_dir: {state_dir}
log_level: debug
{auth}
buttons:
  - id: gpu
    label: GPU
    instance_name: gpu-box
    idle_timeout_seconds: {idle_seconds}
    health:
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 1
{button_extra}
{top_extra}
"""


def password_auth(fake, extra="", api_timeout=1, region="RegionOne"):
    """The `openstack:` section for the fake's default user, as YAML text."""
    region_line = f"  region_name: {region}\n" if region else ""
    return f"""
openstack:
  auth_url: {fake.auth_url}
  username: demo
  password: {PASSWORD}
  project_name: demo
  user_domain_name: Default
  project_domain_name: Default
{region_line}  api_timeout_seconds: {api_timeout}
{extra}
"""


class OpenStackTestCase(unittest.TestCase):
    """One fake cloud with one shelved server whose guest answers HTTP once it is ACTIVE."""

    server_state = "shelved_offloaded"

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-openstack-")
        self.guest_port = free_port()
        self.fake = FakeOpenStack({"timings": {"default": 0.05}})
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.server_id = self.fake.add_server(
            "gpu-box", vm_state=self.server_state,
            addresses={"private": [{"addr": "127.0.0.1", "version": 4, "OS-EXT-IPS:type": "fixed"}]},
            serve_http_port=self.guest_port)
        self.unshelver = None

    def start_unshelver(self, auth=None, button_extra="", idle_seconds=30, env=None, cwd=None, top_extra=""):
        port = free_port()
        button = f"    port: {self.guest_port}\n" + button_extra
        text = openstack_config(self.workdir, port, auth if auth is not None else password_auth(self.fake),
                                button, idle_seconds, top_extra)
        self.unshelver = Unshelver(text, workdir=self.workdir, port=port, env=env, cwd=cwd)
        self.unshelver.start()
        self.addCleanup(self.stop_unshelver)
        return self.unshelver

    def stop_unshelver(self):
        if self.unshelver and self.unshelver.process and self.unshelver.process.poll() is None:
            self.unshelver.stop()
        output = self.unshelver.output() if self.unshelver else ""
        # Secrets never reach the log, whatever happened.
        self.assertNotIn(PASSWORD, output)
        self.assertNotIn(APP_SECRET, output)

    def actions(self, name=None):
        """Nova actions the fake accepted (202) for our server, oldest first."""
        entries = self.fake.requests(service="compute", method="POST", path_regex=r"/servers/[^/]+/action$",
                                     status=202)
        if name is None:
            return entries
        return [e for e in entries if e.get("action") == name]

    def accepted_action_names(self):
        return [a["action"] for a in reversed(self.fake.instance_actions(self.server_id))]

    def wake_to_ready(self, timeout=15):
        code, _, _ = self.unshelver.wake()
        self.assertEqual(code, 202)
        return self.unshelver.wait_for_state("ready", timeout)


class KeystoneAndLifecycle(OpenStackTestCase):
    def test_password_auth_full_wake_and_idle_shelve(self):
        u = self.start_unshelver(idle_seconds=2)
        u.wait_for_state("asleep", 10)
        self.assertEqual(u.backend()["cloud_status"], "SHELVED_OFFLOADED")
        seen = self.wake_to_ready()
        self.assertIn("waking", seen)
        backend = u.backend()
        self.assertEqual(backend["upstream"], f"127.0.0.1:{self.guest_port}")
        # The guest answered the health probe; then, with no activity, the idle monitor shelves.
        seen = u.wait_for_state("asleep", 15)
        self.assertIn("sleeping", seen)
        self.assertEqual(self.fake.server(self.server_id)["status"], "SHELVED_OFFLOADED")
        self.assertEqual(self.accepted_action_names(), ["unshelve", "shelve"])
        keystone = self.fake.requests(service="identity", method="POST")
        self.assertEqual(len(keystone), 1, "one token serves every call")
        self.assertEqual(keystone[0].get("auth_method"), "password")
        self.assertEqual(u.status()["openstack"]["authentications"], 1)

    def test_application_credential(self):
        auth = f"""
openstack:
  auth_url: {self.fake.url}/identity
  application_credential_id: ac-0001
  application_credential_secret: {APP_SECRET}
"""
        u = self.start_unshelver(auth=auth)
        u.wait_for_state("asleep", 10)
        keystone = self.fake.requests(service="identity", method="POST", status=201)
        self.assertEqual([k.get("auth_method") for k in keystone], ["application_credential"])
        self.wake_to_ready()

    def test_clouds_yaml_from_the_working_directory(self):
        with open(os.path.join(self.workdir, "clouds.yaml"), "w") as clouds:
            clouds.write(f"""clouds:
  fake:
    auth_type: password
    auth:
      auth_url: {self.fake.auth_url}
      username: demo
      password: {PASSWORD}
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        u = self.start_unshelver(auth="openstack:\n  cloud: fake\n", env=env, cwd=self.workdir)
        u.wait_for_state("asleep", 10)
        compute = self.fake.requests(service="compute")
        self.assertTrue(compute)
        # The clouds.yaml entry's interface chose the catalog's internal endpoint.
        self.assertTrue(all(c["interface"] == "internal" for c in compute), compute[:2])
        self.assertIn("clouds.yaml entry 'fake'", u.output())

    def test_region_chooses_the_endpoint(self):
        u = self.start_unshelver(auth=password_auth(self.fake).replace("RegionOne", "RegionTwo"))
        u.wait_for_state("asleep", 10)
        self.assertTrue(all(c["region"] == "RegionTwo" for c in self.fake.requests(service="compute")))

    def expect_start_failure(self, auth):
        """Runs the binary on a config that must fail at start; returns its output."""
        port = free_port()
        text = openstack_config(self.workdir, port, auth, f"    port: {self.guest_port}\n")
        u = Unshelver(text, workdir=self.workdir, port=port)
        with open(u.log_path, "wb") as log:
            code = subprocess.run([BINARY] + u.args, stdout=log, stderr=subprocess.STDOUT, timeout=20).returncode
        output = u.output()
        self.assertEqual(code, 2, output)
        self.assertNotIn(PASSWORD, output)
        return output

    def test_wrong_password_is_a_clear_error_at_start(self):
        output = self.expect_start_failure(password_auth(self.fake).replace(PASSWORD, "not-the-password"))
        self.assertIn("Keystone refused the credentials from " + os.path.join(self.workdir, "config.yaml"), output)
        self.assertNotIn("not-the-password", output)

    def test_duplicate_server_name_is_a_clear_error_at_start(self):
        self.fake.add_server("gpu-box", vm_state="shelved_offloaded")
        self.fake.add_server("gpu-box-old", vm_state="shelved_offloaded")
        output = self.expect_start_failure(password_auth(self.fake))
        self.assertIn('2 servers are named "gpu-box"', output)
        self.assertIn("instance_id", output)

    def test_missing_clouds_yaml_entry_is_a_clear_error_at_start(self):
        output = self.expect_start_failure("openstack:\n  cloud: nowhere\n")
        self.assertIn("no cloud named 'nowhere'", output)

    def test_token_expiry_in_the_middle_of_a_wake(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        # Slow the unshelve down so the token can expire while it runs.
        self.fake.configure(timings={"default": 0.05, "unshelving": 0.6})
        u.wake()
        u.wait_for_state("waking", 5)
        self.fake.expire_tokens()
        u.wait_for_state("ready", 15)
        self.assertEqual(self.accepted_action_names(), ["unshelve"])
        self.assertGreaterEqual(self.fake.requests(service="compute", status=401).__len__(), 1)
        status = u.status()["openstack"]
        self.assertEqual(status["authentications"], 2)
        self.assertGreaterEqual(status["reauthentications"], 1)


class Faults(OpenStackTestCase):
    """Each injected fault converges to the right state, logged, with no action sent twice."""

    def converge_to_ready(self, expected_actions=("unshelve",)):
        self.unshelver.wait_for_state("ready", 20)
        self.assertEqual(self.accepted_action_names(), list(expected_actions))

    def test_503_on_the_action_is_retried(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.fake.add_fault(method="POST", path_regex=r"/action$", status=503, times=2)
        u.wake()
        self.converge_to_ready()
        self.assertEqual(len(self.fake.requests(service="compute", method="POST", status=503)), 2)
        self.assertIn("retry 1 of 2", u.output())

    def test_429_with_retry_after_is_honoured(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.fake.add_fault(method="GET", path_regex=r"/servers/[^/]+$", status=429, times=1, retry_after=1)
        u.wake()
        self.converge_to_ready()
        # The guest may pass its health probe (and the backend turn ready) while the refused read
        # still waits, so the wait is measured where it happens: between the 429 and the next read
        # of the server, in the cloud's own request log.
        deadline = time.monotonic() + 10
        while True:
            reads = self.fake.requests(service="compute", method="GET", path_regex=r"/servers/[^/]+$")
            refused = [i for i, e in enumerate(reads) if e["status"] == 429]
            if refused and refused[0] + 1 < len(reads):
                break
            self.assertLess(time.monotonic(), deadline, "no read of the server after the 429")
            time.sleep(0.05)
        waited = reads[refused[0] + 1]["time"] - reads[refused[0]]["time"]
        self.assertGreaterEqual(waited, 0.9)

    def test_dropped_connection_and_timeout_are_retried(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.fake.add_fault(method="GET", path_regex=r"/servers/[^/]+$", drop=True, times=1)
        self.fake.add_fault(method="POST", path_regex=r"/action$", delay_seconds=1.5, times=1)
        u.wake()
        self.converge_to_ready()
        self.assertIn("Timeout", u.output())

    def test_409_means_observe_again_never_blind_retry(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.fake.add_fault(method="POST", path_regex=r"/action$", status=409, times=1)
        u.wake()
        self.converge_to_ready()
        self.assertIn("busy", u.output())
        # Exactly two POSTs: the refused one and, after observing the server idle, the real one.
        self.assertEqual(len(self.fake.requests(service="compute", method="POST")), 2)

    def test_no_valid_host_becomes_error_with_the_clouds_message_quickly(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.fake.set_unshelve_fault("no_valid_host", times=1)
        u.wake()
        started = time.monotonic()
        u.wait_for_state("error", 10)
        detected_after = time.monotonic() - started
        backend = u.backend()
        self.assertIn("No valid host was found", backend["error"])
        self.assertEqual(self.fake.server(self.server_id)["status"], "SHELVED_OFFLOADED")
        print(f"\n  No valid host detected {detected_after:.2f} s after the wake request")
        # on_error: wait (the default) stays in error until someone asks again.
        time.sleep(0.5)
        self.assertEqual(u.backend()["state"], "error")
        self.assertEqual(len(self.actions("unshelve")), 1)
        u.wake()
        u.wait_for_state("ready", 15)
        self.assertEqual(self.accepted_action_names(), ["unshelve", "unshelve"])

    def test_no_valid_host_without_event_details(self):
        self.fake.configure(show_event_details=False)
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.fake.set_unshelve_fault("no_valid_host", times=1)
        u.wake()
        u.wait_for_state("error", 10)
        self.assertIn("instance action reports Error", u.backend()["error"])

    def test_no_valid_host_with_retry_policy_retries_after_the_back_off(self):
        u = self.start_unshelver(button_extra="    on_error: retry\n    error_retry_seconds: 1\n")
        u.wait_for_state("asleep", 10)
        self.fake.set_unshelve_fault("no_valid_host", times=2)
        u.wake()
        u.wait_for_state("ready", 20)
        self.assertEqual(self.accepted_action_names(), ["unshelve", "unshelve", "unshelve"])

    def test_spawn_error_puts_the_server_in_error(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.fake.set_unshelve_fault("spawn_error", times=1, at="spawning")
        u.wake()
        u.wait_for_state("error", 10)
        self.assertIn("ERROR", u.backend()["error"])

    def test_transition_that_never_finishes_hits_the_unshelve_timeout(self):
        u = self.start_unshelver(button_extra="    unshelve_timeout_minutes: 0.05\n")
        u.wait_for_state("asleep", 10)
        self.fake.set_unshelve_fault("never_finish", times=1)
        u.wake()
        u.wait_for_state("error", 10)
        self.assertIn("not ready within", u.backend()["error"])
        # The error stands while Nova still shows the same stuck task (no flapping back to waking).
        time.sleep(3.5)
        self.assertEqual(u.backend()["state"], "error")
        self.assertEqual(len(self.actions("unshelve")), 1)

    def test_cloud_down_for_a_while_then_back(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.fake.add_fault(path_regex=r"/compute/", status=503, times=None)
        u.wake()
        u.wait_until(lambda: u.backend()["observe_error"] or u.backend()["error"], 10, "an error shown")
        self.fake.clear_faults()
        u.wait_for_state("ready", 30)
        self.assertEqual(self.accepted_action_names(), ["unshelve"])


class ServerStates(OpenStackTestCase):
    def test_shutoff_guest_is_started_while_wanted_awake(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        self.wake_to_ready()
        # The guest powers itself off: Nova shows SHUTOFF with no task.
        self.fake.set_server_state(self.server_id, vm_state="stopped")
        u.wait_until(lambda: "os-start" in [a.get("action") for a in self.actions()], 15, "os-start sent")
        u.wait_for_state("ready", 15)
        self.assertEqual(self.accepted_action_names(), ["unshelve", "start"])
        self.assertEqual(self.fake.server(self.server_id)["status"], "ACTIVE")

    def test_stop_action_per_backend(self):
        u = self.start_unshelver(button_extra="    sleep_action: stop\n", idle_seconds=1)
        u.wait_for_state("asleep", 10)
        self.wake_to_ready()
        u.wait_for_state("asleep", 15)
        self.assertEqual(self.fake.server(self.server_id)["status"], "SHUTOFF")
        self.assertEqual(self.accepted_action_names(), ["unshelve", "stop"])
        self.wake_to_ready()
        self.assertEqual(self.accepted_action_names(), ["unshelve", "stop", "start"])


class ShutoffAtStart(OpenStackTestCase):
    server_state = "stopped"

    def test_shutoff_not_wanted_is_shelved(self):
        u = self.start_unshelver()
        u.wait_until(lambda: self.fake.server(self.server_id)["status"] == "SHELVED_OFFLOADED", 15, "shelved")
        u.wait_for_state("asleep", 10)
        self.assertEqual(self.accepted_action_names(), ["shelve"])


class LoopNeverBlocks(OpenStackTestCase):
    def test_launcher_answers_while_a_cloud_call_hangs(self):
        u = self.start_unshelver()
        u.wait_for_state("asleep", 10)
        # Every Nova call now hangs past the 1 s request timeout, three tries each.
        self.fake.add_fault(service="compute", delay_seconds=3, times=None)
        u.wake()
        latencies = []
        failures = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                with urllib.request.urlopen(u.url("/"), timeout=5) as response:
                    response.read()
                    if response.status != 200:
                        failures.append(response.status)
            except OSError as error:
                failures.append(str(error))
            latencies.append((time.monotonic() - started) * 1000)
        self.fake.clear_faults()
        self.assertEqual(failures, [])
        hung = self.fake.requests(service="compute", method="GET")
        self.assertTrue(hung, "the cloud call was made while the launcher was asked")
        latencies.sort()
        print(f"\n  launcher while a cloud call hangs: {len(latencies)} requests, median "
              f"{statistics.median(latencies):.2f} ms, p99 {latencies[int(len(latencies) * 0.99) - 1]:.2f} ms, "
              f"max {latencies[-1]:.2f} ms")


if __name__ == "__main__":
    unittest.main()
