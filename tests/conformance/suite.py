"""The conformance suite: the same scenarios against every cloud provider (README.md beside this file).

    CONFORMANCE_PROVIDER=sim python3 -m unittest -v suite     # in tests/conformance

The provider's adapter is tests/conformance/provider_<CONFORMANCE_PROVIDER>.py (class Adapter, a
provider.Provider). Every scenario starts the adapter's cloud and one real daemon
(tests/integration/harness.py), drives it through the public button or the control API, counts the
wake and sleep actions at the cloud, and ends by checking that the adapter's marker secret reached
neither the daemon's output, nor its state directory (state files, event log), nor /api/status.
"""
import importlib
import json
import os
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
sys.path.insert(0, HERE)

from harness import Unshelver, free_port  # noqa: E402
from provider import ScenarioUnsupported, Timings  # noqa: E402

PROVIDER_VARIABLE = "CONFORMANCE_PROVIDER"

# Every scenario, as the README lists them; a test method is test_<scenario>.
SCENARIOS = ("observed_asleep_at_start", "observed_awake_at_start", "one_action_per_wake", "idle_sleep",
             "failed_wake_shows_its_reason", "restart_in_the_middle_of_a_wake", "crash_in_the_middle_of_a_wake",
             "transition_never_finishes",
             "cloud_down_for_a_while", "credentials_refused")


def load_adapter_class():
    name = os.environ.get(PROVIDER_VARIABLE)
    if not name:
        raise SystemExit(f"set {PROVIDER_VARIABLE} to a provider with a tests/conformance/provider_<name>.py")
    return importlib.import_module(f"provider_{name}").Adapter


def indent(text, spaces):
    return textwrap.indent(textwrap.dedent(text).strip("\n"), " " * spaces) + "\n"


class Conformance(unittest.TestCase):
    adapter_class = None  # the adapter named by the environment

    @classmethod
    def setUpClass(cls):
        cls.adapter_class = load_adapter_class()

    def setUp(self):
        scenario = self._testMethodName.removeprefix("test_")
        reason = self.adapter_class.unsupported.get(scenario)
        if reason:
            self.skipTest(f"{self.adapter_class.name} cannot support {scenario}: {reason}")
        self.workdir = tempfile.mkdtemp(prefix=f"unshelver-conformance-{self.adapter_class.name}-")
        self.adapter = None
        self.daemon = None

    # --- building blocks -------------------------------------------------------------------------

    def start_cloud(self, awake=False, timings=Timings()):
        self.adapter = self.adapter_class()
        self.addCleanup(self.adapter.stop)
        self.adapter.start(self.workdir, awake, timings)
        return self.adapter

    def config_text(self, port, idle_seconds, unshelve_timeout_minutes):
        state_dir = os.path.join(self.workdir, "state")
        return (f"app:\n  title: Conformance {self.adapter.name}\n  poll_interval_seconds: 0.1\n"
                f"listen: 127.0.0.1:{port}\nstate_dir: {state_dir}\nlog_level: debug\n"
                + indent(self.adapter.top_yaml(), 0) +
                "buttons:\n  - id: gpu\n    label: GPU\n"
                f"    idle_timeout_seconds: {idle_seconds}\n"
                f"    unshelve_timeout_minutes: {unshelve_timeout_minutes}\n"
                "    health:\n      interval_seconds: 0.1\n      timeout_seconds: 1\n      successes_needed: 1\n"
                + indent(self.adapter.backend_yaml(), 4))

    def start_daemon(self, idle_seconds=60, unshelve_timeout_minutes=0.5):
        """Starts (or, after stop_daemon, restarts with the same config and state) the daemon."""
        if self.daemon is None:
            port = free_port()
            self.daemon = Unshelver(self.config_text(port, idle_seconds, unshelve_timeout_minutes),
                                    workdir=self.workdir, port=port, env={**os.environ, **self.adapter.env()})
            self.addCleanup(self.finish)
        self.daemon.start()
        return self.daemon

    def stop_daemon(self):
        self.check_no_marker()
        self.daemon.stop()

    def finish(self):
        """After every scenario, whatever happened: the daemon stops cleanly and the marker secret
        is nowhere it must not be."""
        if self.daemon.process is not None and self.daemon.process.poll() is None:
            self.check_no_marker()
            self.daemon.stop()
        self.check_no_marker(with_status=False)

    def check_no_marker(self, with_status=True):
        marker = self.adapter.marker_secret
        self.assertNotIn(marker, self.daemon.output(), "the marker secret appeared in the daemon's output")
        for directory, _, files in os.walk(os.path.join(self.workdir, "state")):
            for name in files:
                path = os.path.join(directory, name)
                with open(path, "rb") as file:
                    self.assertNotIn(marker.encode(), file.read(), f"the marker secret appeared in {path}")
        if with_status and self.daemon.process is not None and self.daemon.process.poll() is None:
            code, _, body = self.daemon.request("GET", "/api/status", admin=True)
            self.assertEqual(code, 200)
            self.assertNotIn(marker.encode(), body, "the marker secret appeared in /api/status")

    def admin_backend(self):
        """The backend as an admin sees it in /api/status (the cloud's own words included)."""
        code, _, body = self.daemon.request("GET", "/api/status", admin=True)
        self.assertEqual(code, 200)
        return next(b for b in json.loads(body)["backends"] if b["name"] == "gpu")

    def visible_reason(self):
        backend = self.admin_backend()
        return " ".join(filter(None, (backend.get("error"), backend.get("observe_error"))))

    def wait_for_reason(self, containing=None, timeout=15):
        """Waits until /api/status shows a reason (containing `containing`, case-insensitive)."""
        def shown():
            reason = self.visible_reason()
            return reason if reason and (containing is None or containing.lower() in reason.lower()) else None
        return self.daemon.wait_until(shown, timeout, f"a visible reason containing {containing!r}")

    def assert_counts(self, wakes, sleeps):
        self.assertEqual((self.adapter.wake_actions(), self.adapter.sleep_actions()), (wakes, sleeps),
                         "(wake actions, sleep actions) counted at the cloud")

    def assert_counts_stay(self, wakes, sleeps, seconds=1.0):
        """The counts are right now and stay so for `seconds` (no late extra action)."""
        self.assert_counts(wakes, sleeps)
        time.sleep(seconds)
        self.assert_counts(wakes, sleeps)

    def fault(self, hook, *args):
        try:
            return hook(*args)
        except ScenarioUnsupported as unsupported:
            self.fail(f"{self.adapter.name} cannot inject {unsupported}; list the scenario in the adapter's "
                      "`unsupported` with a reason if it truly cannot")

    def wake_to_ready(self, timeout=15):
        code, _, body = self.daemon.wake()
        self.assertEqual(code, 202, body)
        self.daemon.wait_for_state("ready", timeout)

    # --- the scenarios ---------------------------------------------------------------------------

    def test_observed_asleep_at_start(self):
        """The daemon reports the cloud's real state, asleep, without acting."""
        self.start_cloud(awake=False)
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        self.assert_counts_stay(0, 0)
        self.assertEqual(daemon.backend()["state"], "asleep")
        self.assertFalse(self.adapter.vm_awake())

    def test_observed_awake_at_start(self):
        """The daemon reports the cloud's real state, awake (ready once its health passes), without
        acting: no wake for a VM that runs, and no sleep before the idle timeout."""
        self.start_cloud(awake=True)
        daemon = self.start_daemon()
        daemon.wait_for_state("ready", 10)
        self.assert_counts_stay(0, 0)
        self.assertEqual(daemon.backend()["state"], "ready")
        self.assertTrue(self.adapter.vm_awake())

    def test_one_action_per_wake(self):
        """The public button pressed several times, and the control API once, while the VM sleeps
        and wakes: exactly one wake action reaches the cloud, and the backend gets ready."""
        self.start_cloud(awake=False)
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        code, _, body = daemon.public_wake()
        self.assertIn(code, (200, 202, 303), body)
        for _ in range(3):
            daemon.public_wake()  # a rate limit may refuse some: none may act twice
        self.assertEqual(daemon.wake()[0], 202)
        daemon.wait_for_state("ready", 15)
        self.assertTrue(self.adapter.vm_awake())
        daemon.public_wake()  # pressed again while ready
        self.assert_counts_stay(1, 0)

    def test_idle_sleep(self):
        """After the idle timeout, exactly one sleep action; the backend is asleep and stays so."""
        self.start_cloud(awake=False)
        daemon = self.start_daemon(idle_seconds=1.5)
        daemon.wait_for_state("asleep", 10)
        self.wake_to_ready()
        daemon.wait_for_state("asleep", 15)
        self.daemon.wait_until(lambda: not self.adapter.vm_awake(), 5, "the cloud shows the VM asleep")
        self.assert_counts_stay(1, 1)

    def test_failed_wake_shows_its_reason(self):
        """A wake the cloud accepts and then fails ends in error with the cloud's reason in
        /api/status; the next wake asked for succeeds."""
        self.start_cloud(awake=False)
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        expected = self.fault(self.adapter.fail_next_wake, "No valid host was found (conformance)")
        self.assertEqual(daemon.wake()[0], 202)
        daemon.wait_for_state("error", 15)
        self.wait_for_reason(expected, timeout=5)
        self.assertTrue(daemon.backend()["error"], "the public status shows a reason too")
        self.assert_counts_stay(1, 0, seconds=0.5)
        self.wake_to_ready()
        self.assert_counts(2, 0)

    def restart_in_the_middle_of_a_wake(self, crash):
        self.start_cloud(awake=False, timings=Timings(wake_seconds=4))
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        self.assertEqual(daemon.wake()[0], 202)
        daemon.wait_until(lambda: self.adapter.wake_actions() == 1, 10, "the wake action at the cloud")
        self.assertEqual(daemon.backend()["state"], "waking")
        if crash:
            self.check_no_marker()
            daemon.process.kill()
            daemon.process.wait()
            daemon.log.close()
        else:
            self.stop_daemon()
        self.assertFalse(self.adapter.vm_awake(), "the restart must come before the VM runs")
        daemon.start()
        daemon.wait_for_state("ready", 20)
        self.assert_counts_stay(1, 0)

    def test_restart_in_the_middle_of_a_wake(self):
        """The daemon stops (SIGTERM) while the cloud is starting the VM; the new process continues
        that wake: still exactly one wake action, and the backend gets ready."""
        self.restart_in_the_middle_of_a_wake(crash=False)

    def test_crash_in_the_middle_of_a_wake(self):
        """The same with SIGKILL: nothing is written on the way out, and still one wake action."""
        self.restart_in_the_middle_of_a_wake(crash=True)

    def test_transition_never_finishes(self):
        """A wake whose transition never finishes ends in error at the wake timeout, with a visible
        reason, and no further action is sent."""
        self.start_cloud(awake=False)
        daemon = self.start_daemon(unshelve_timeout_minutes=0.04)  # 2.4 s
        daemon.wait_for_state("asleep", 10)
        self.fault(self.adapter.stall_next_wake)
        self.assertEqual(daemon.wake()[0], 202)
        daemon.wait_for_state("error", 15)
        self.wait_for_reason(timeout=5)
        self.assert_counts_stay(1, 0, seconds=1.5)
        self.assertEqual(daemon.backend()["state"], "error")

    def test_cloud_down_for_a_while(self):
        """While the cloud cannot be reached, the reason is visible; once it answers again the wake
        asked for meanwhile completes with exactly one wake action."""
        self.start_cloud(awake=False)
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        self.fault(self.adapter.set_reachable, False)
        self.assertEqual(daemon.wake()[0], 202)
        self.wait_for_reason(self.adapter.unreachable_text)
        self.fault(self.adapter.set_reachable, True)
        if daemon.backend()["state"] == "error":
            daemon.wake()  # a provider may give up on a wake it could not send: asked again
        daemon.wait_for_state("ready", 20)
        self.assert_counts_stay(1, 0)

    def test_credentials_refused(self):
        """Refused credentials give a visible reason and no action; once they are accepted again,
        a wake completes with exactly one wake action."""
        self.start_cloud(awake=False)
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        self.fault(self.adapter.set_credentials_accepted, False)
        self.assertEqual(daemon.wake()[0], 202)
        self.wait_for_reason(self.adapter.credentials_refused_text)
        self.assertEqual(self.adapter.wake_actions(), 0)
        self.fault(self.adapter.set_credentials_accepted, True)
        if daemon.backend()["state"] == "error":
            daemon.wake()  # a refusal may end the wake: asked again
        daemon.wait_for_state("ready", 20)
        self.assert_counts_stay(1, 0)


assert all(hasattr(Conformance, f"test_{s}") for s in SCENARIOS), "every scenario has its test"


if __name__ == "__main__":
    unittest.main()
