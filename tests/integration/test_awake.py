"""Never running unnoticed (issue 17), through the real binary on the simulated cloud:

- a backend whose machine runs while it is in `error` is shelved after its idle timeout;
- one whose health passes again after an error returns to `ready`;
- a slow boot probed fast is not an error (a boot's patience is a duration);
- a dry-run backend never sends the cloud a wake or a sleep, and records what it would have done.

Durations are short (a few seconds per test); the deadlines are generous bounds for correctness
on a loaded machine, never performance targets.
"""
import json
import os
import tempfile
import time
import unittest

from harness import ADMIN, Unshelver, sim_config


def awake_config(state_dir, idle_seconds, boot_seconds, extra_backend="", start_awake=False, refuse_sleeps=0):
    """One simulated backend whose fake service answers `boot_seconds` after the VM runs."""
    text = sim_config(state_dir, "{port}", idle_seconds=idle_seconds, extra_backend=extra_backend)
    sim = (f"      boot_seconds: {boot_seconds}\n" + ("      start_awake: true\n" if start_awake else "") +
           f"      refuse_sleeps: {refuse_sleeps}\n")
    return text.replace("      boot_seconds: 0.3\n", sim)


class AwakeTestCase(unittest.TestCase):
    daemon = None

    def start(self, idle_seconds, boot_seconds, extra_backend="", start_awake=False, refuse_sleeps=0):
        workdir = tempfile.mkdtemp(prefix="unshelver-awake-")
        text = awake_config(os.path.join(workdir, "state"), idle_seconds, boot_seconds, extra_backend, start_awake,
                            refuse_sleeps)
        self.daemon = Unshelver(config_text=text, workdir=workdir).start()
        return self.daemon

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.stop()

    def events(self):
        code, _, body = self.daemon.request("GET", "/api/events?limit=200", admin=True)
        self.assertEqual(code, 200, body)
        return [event for event in json.loads(body)["events"] if event.get("backend") == "gpu"]

    def wait_for_event(self, predicate, timeout, what):
        return self.daemon.wait_until(lambda: [e for e in self.events() if predicate(e)], timeout, what)


class ErrorWithTheVmRunningTest(AwakeTestCase):
    def test_error_with_the_vm_running_is_shelved_after_its_idle_timeout(self):
        # The fake service never answers within the test: the boot ends in `error` after 0.5 s,
        # with the VM running. Nothing uses it, so it sleeps one idle timeout (3 s) after the wake.
        daemon = self.start(idle_seconds=3, boot_seconds=60, extra_backend="    boot_timeout_seconds: 0.5\n")
        daemon.wait_for_state("asleep", 5)
        woken = time.monotonic()
        self.assertEqual(daemon.wake()[0], 202)
        daemon.wait_for_state("error", 10)
        backend = daemon.backend()
        self.assertEqual(backend["cloud_status"], "ACTIVE")
        self.assertIn("did not pass within 0.5 s", backend["error"])
        self.assertIsNotNone(backend["idle_deadline"], "a running VM in error has an idle deadline")

        seen = daemon.wait_for_state("asleep", 15)
        self.assertIn("sleeping", seen)
        self.assertGreaterEqual(time.monotonic() - woken, 3.0)
        self.assertEqual(daemon.backend()["desired_by"], "idle-monitor")
        self.assertIn("[gpu] error -> sleeping (sleep_requested) by idle-monitor", daemon.output())

    def test_health_passing_after_an_error_returns_to_ready(self):
        # The service answers 2 s after the VM runs, the boot timeout is 0.5 s: error first, then
        # ready once the probes that go on in `error` pass.
        daemon = self.start(idle_seconds=60, boot_seconds=2, extra_backend="    boot_timeout_seconds: 0.5\n")
        daemon.wait_for_state("asleep", 5)
        self.assertEqual(daemon.wake()[0], 202)
        seen = daemon.wait_for_state("ready", 15)
        self.assertEqual(seen[-2:], ["error", "ready"])
        backend = daemon.backend()
        self.assertEqual(backend["error"], "")
        self.assertIsNotNone(backend["idle_deadline"])
        recovered = self.wait_for_event(lambda e: e["from"] == "error" and e["to"] == "ready", 5,
                                        "the transition from error to ready")
        self.assertEqual(recovered[0]["action"], "unshelve_complete")

    def test_a_refused_sleep_records_shelve_failed_and_is_tried_again(self):
        # The sim refuses the first sleep: the idle rule's shelve fails while the VM runs, which
        # is recorded for the alerts; the retry one error_retry_seconds later shelves it.
        daemon = self.start(idle_seconds=1, boot_seconds=0.3, extra_backend="    error_retry_seconds: 1\n",
                            refuse_sleeps=1)
        daemon.wait_for_state("asleep", 5)
        self.assertEqual(daemon.wake()[0], 202)
        seen = daemon.wait_for_state("asleep", 20)
        self.assertIn("error", seen)
        failed = self.wait_for_event(lambda e: e["action"] == "shelve_failed", 5, "shelve_failed")
        self.assertEqual(len(failed), 1)
        self.assertIn("sim: cannot shelve the instance", failed[0]["detail"])
        self.assertIn("the VM still runs", failed[0]["detail"])
        self.assertEqual((failed[0]["from"], failed[0]["to"]), ("", ""))

    def test_a_slow_boot_probed_fast_is_not_an_error(self):
        # Probes every 0.1 s and the default attempts: 12 failed probes took 1.2 s and made this 3 s
        # boot an error; the boot's patience is a duration now (10 minutes by default).
        daemon = self.start(idle_seconds=60, boot_seconds=3)
        daemon.wait_for_state("asleep", 5)
        self.assertEqual(daemon.wake()[0], 202)
        seen = daemon.wait_for_state("ready", 15)
        self.assertNotIn("error", seen)


class DryRunTest(AwakeTestCase):
    def test_dry_run_never_acts_and_records_what_it_would_have_done(self):
        daemon = self.start(idle_seconds=2, boot_seconds=0.3, extra_backend="    dry_run: true\n", start_awake=True)
        daemon.wait_for_state("ready", 10)
        self.assertTrue(daemon.backend()["dry_run"])

        shelve = self.wait_for_event(lambda e: e["action"] == "dry_run_would_shelve", 10, "a would-shelve")[0]
        self.assertEqual(shelve["actor"], "idle-monitor")
        self.assertIn("no activity for 2 s", shelve["detail"])
        self.assertIn("idle since", shelve["detail"])
        self.assertEqual(shelve["from"], "")

        # A wake asked for now is recorded, not sent; so is a shelve after it.
        self.assertEqual(daemon.wake()[0], 202)
        wake = self.wait_for_event(lambda e: e["action"] == "dry_run_would_wake", 5, "a would-wake")[0]
        self.assertEqual(wake["actor"], "control")
        self.assertGreater(wake["seq"], shelve["seq"])
        daemon.shelve()
        self.wait_for_event(lambda e: e["action"] == "dry_run_would_shelve" and e["actor"] == "control", 5,
                            "a would-shelve by control")

        time.sleep(0.5)  # any command it wrongly issued would reach the sim by now
        backend = daemon.backend()
        self.assertEqual(backend["state"], "ready")
        self.assertEqual(backend["cloud_status"], "ACTIVE")
        output = daemon.output()
        self.assertNotIn("sim: wake received", output)
        self.assertNotIn("sim: sleep received", output)
        self.assertNotIn("sleep_requested", output)

        code, _, page = daemon.request("GET", "/control", {"Accept": "text/html", **ADMIN})
        self.assertEqual(code, 200)
        self.assertIn('class="dry-run"', page.decode())


if __name__ == "__main__":
    unittest.main()
