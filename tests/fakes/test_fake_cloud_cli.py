"""The scripted cloud CLI keeps to the command contract the command provider's tests rely on."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

CLI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_cloud_cli.py")


class FakeCloudCliTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory(prefix="fake-cloud-cli-")
        self.state = os.path.join(self.directory.name, "vm.json")
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FAKE_CLOUD_STATE": self.state}
        self.run_cli("init", "start_seconds=0.3", "stop_seconds=0.3", 'address="127.0.0.1:9"')

    def tearDown(self):
        self.directory.cleanup()

    def run_cli(self, *args, env=None, timeout=10):
        return subprocess.run([sys.executable, CLI, *args], env=env or self.env, capture_output=True,
                              text=True, timeout=timeout)

    def vm(self):
        with open(self.state) as handle:
            return json.load(handle)

    def observe(self):
        done = self.run_cli("observe")
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout)

    def set(self, **values):
        vm = self.vm()
        vm.update(values)
        with open(self.state, "w") as handle:
            json.dump(vm, handle)

    def test_wake_starts_then_runs_with_an_address_and_sleep_stops(self):
        self.assertEqual(self.observe(), {"state": "stopped"})
        self.assertEqual(self.run_cli("wake").returncode, 0)
        self.assertEqual(self.observe(), {"state": "starting"})
        time.sleep(0.4)
        self.assertEqual(self.observe(), {"state": "running", "address": "127.0.0.1:9"})
        self.assertEqual(self.run_cli("sleep").returncode, 0)
        self.assertEqual(self.observe()["state"], "stopping")
        time.sleep(0.4)
        self.assertEqual(self.observe(), {"state": "stopped"})
        calls = self.vm()["calls"]
        self.assertEqual((calls["wake"], calls["sleep"], calls["starts"], calls["stops"]), (1, 1, 1, 1))
        self.assertEqual((calls["wake_accepted"], calls["sleep_accepted"]), (1, 1))
        self.assertEqual(calls["observe"], 5)

    def test_actions_are_idempotent_and_busy_mid_transition(self):
        self.set(stuck=True)  # the transition lasts, however slowly the calls come
        self.run_cli("wake")
        self.assertEqual(self.run_cli("wake").returncode, 0)  # already starting: nothing to do
        busy = self.run_cli("sleep")
        self.assertEqual(busy.returncode, 75)
        self.assertIn("IncorrectInstanceState", busy.stderr)
        self.assertEqual(self.vm()["calls"]["starts"], 1)
        self.assertEqual(self.run_cli("init").returncode, 0)
        self.assertEqual(self.run_cli("sleep").returncode, 0)  # already stopped
        self.assertEqual(self.vm()["calls"]["sleep"], 1)
        self.assertEqual(self.vm()["calls"]["stops"], 0)

    def test_a_stuck_transition_never_finishes(self):
        self.set(stuck=True)
        self.run_cli("wake")
        time.sleep(0.4)
        self.assertEqual(self.observe()["state"], "starting")

    def test_a_failing_wake_ends_in_error_with_its_message(self):
        self.set(wake_fails_with="InsufficientInstanceCapacity: no capacity in eu-central-1a")
        self.assertEqual(self.run_cli("wake").returncode, 0)
        time.sleep(0.4)
        self.assertEqual(self.observe(), {"state": "error",
                                          "message": "InsufficientInstanceCapacity: no capacity in eu-central-1a"})
        # Once only: the next wake succeeds.
        self.assertEqual(self.run_cli("wake").returncode, 0)
        time.sleep(0.4)
        self.assertEqual(self.observe()["state"], "running")
        calls = self.vm()["calls"]
        self.assertEqual((calls["wake_accepted"], calls["starts"]), (2, 2))

    def test_credentials_are_checked_and_never_printed(self):
        self.set(require_env={"FAKE_CLOUD_SECRET": "marker-5ec7e7"})
        refused = self.run_cli("wake")
        self.assertEqual(refused.returncode, 1)
        self.assertEqual(refused.stderr.strip(), "AuthFailure: credentials refused")
        self.assertEqual(self.vm()["calls"]["starts"], 0)
        good = self.run_cli("wake", env={**self.env, "FAKE_CLOUD_SECRET": "marker-5ec7e7"})
        self.assertEqual(good.returncode, 0)
        self.assertNotIn("marker-5ec7e7", good.stdout + good.stderr)
        self.assertEqual(self.vm()["calls"]["starts"], 1)

    def test_faults(self):
        cases = {
            "garbage": lambda done: self.assertTrue(done.returncode == 0 and "<html>" in done.stdout),
            "several": lambda done: self.assertEqual(len(done.stdout.strip().splitlines()), 2),
            "flood": lambda done: self.assertEqual(len(done.stdout), 1 << 20),
            "fail": lambda done: self.assertTrue(done.returncode == 1 and "InvalidInstanceID" in done.stderr),
            "busy": lambda done: self.assertEqual(done.returncode, 75),
            "crash": lambda done: self.assertEqual(done.returncode, -9),
        }
        for mode, check in cases.items():
            with self.subTest(mode=mode):
                self.set(faults={"observe": {"mode": mode, "times": 1}})
                check(self.run_cli("observe"))
                # Once only: the next call answers normally again.
                self.assertEqual(self.observe(), {"state": "stopped"})

    def test_a_faulty_wake_does_not_act(self):
        self.set(faults={"wake": {"mode": "fail", "message": "UnauthorizedOperation", "times": 2}})
        for _ in range(2):
            done = self.run_cli("wake")
            self.assertEqual((done.returncode, done.stderr.strip()), (1, "UnauthorizedOperation"))
        self.assertEqual(self.vm()["calls"]["starts"], 0)
        self.assertEqual(self.run_cli("wake").returncode, 0)
        calls = self.vm()["calls"]
        self.assertEqual((calls["wake"], calls["starts"]), (3, 1))

    def test_a_hang_holds_no_lock(self):
        self.set(faults={"wake": {"mode": "hang"}})
        hanging = subprocess.Popen([sys.executable, CLI, "wake"], env=self.env)
        try:
            time.sleep(0.3)
            self.assertEqual(self.observe(), {"state": "stopped"})
            with self.assertRaises(subprocess.TimeoutExpired):
                hanging.wait(timeout=0.2)
        finally:
            hanging.kill()
            hanging.wait()


if __name__ == "__main__":
    unittest.main()
