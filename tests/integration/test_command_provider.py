"""provider: command through the real binary, with the scripted cloud CLI (tests/fakes/fake_cloud_cli.py)
as the cloud and fake_backend.py as the VM's service.

Each failure of a command (hang, crash, garbage, non-zero exit) must give a visible reason in
/api/status and the retry policy of a cloud API error; the credential passed through the
environment must reach the commands (the fake refuses to act without it) and never Unshelver's
output, state, event log, status or any process's arguments.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

from harness import Unshelver, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.path.join(HERE, "..", "fakes", "fake_cloud_cli.py")
BACKEND = os.path.join(HERE, "fake_backend.py")
SECRET = "cmd-secret-marker-7f3a91c2"
TIMEOUT_SECONDS = 1.5


def command_config(state_dir, cloud_state, idle_seconds=2):
    def argv(name):
        return json.dumps([sys.executable, CLI, name])

    return f"""
app:
  title: Command provider test
  poll_interval_seconds: 0.2
listen: 127.0.0.1:{{port}}
state_dir: {state_dir}
log_level: debug
buttons:
  - id: gpu
    label: Test GPU
    provider: command
    idle_timeout_seconds: {idle_seconds}
    health:
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 1
    command:
      wake: {argv("wake")}
      sleep: {argv("sleep")}
      observe: {argv("observe")}
      timeout_seconds: {TIMEOUT_SECONDS}
      environment: ["FAKE_CLOUD_STATE={cloud_state}"]
      pass_environment: [FAKE_CLOUD_SECRET]
"""


class CommandProviderTest(unittest.TestCase):
    def setUp(self):
        self.cloud_dir = tempfile.TemporaryDirectory(prefix="fake-cloud-")
        self.cloud_state = os.path.join(self.cloud_dir.name, "vm.json")
        self.backend_port = free_port()
        self.backend = subprocess.Popen([sys.executable, BACKEND, str(self.backend_port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.daemon = None

    def tearDown(self):
        try:
            if self.daemon:
                self.daemon.stop()
                self.assert_secret_kept()
        finally:
            self.backend.kill()
            self.backend.wait()
            self.cloud_dir.cleanup()

    def init_cloud(self, **values):
        args = [f"{key}={json.dumps(value)}" for key, value in values.items()]
        subprocess.run([sys.executable, CLI, "init", "start_seconds=0.5", "stop_seconds=0.3",
                        f'address="127.0.0.1:{self.backend_port}"',
                        f'require_env={json.dumps({"FAKE_CLOUD_SECRET": SECRET})}', *args],
                       env={"FAKE_CLOUD_STATE": self.cloud_state}, check=True)

    def vm(self):
        with open(self.cloud_state) as handle:
            return json.load(handle)

    def set_cloud(self, **values):
        """Changes the fake's state under its lock, as the CLI does."""
        import fcntl
        with open(self.cloud_state + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            vm = self.vm()
            vm.update(values)
            with open(self.cloud_state + ".tmp", "w") as handle:
                json.dump(vm, handle)
            os.replace(self.cloud_state + ".tmp", self.cloud_state)

    def start_daemon(self, **config):
        workdir = tempfile.mkdtemp(prefix="unshelver-command-")
        text = command_config(os.path.join(workdir, "state"), self.cloud_state, **config)
        env = dict(os.environ, FAKE_CLOUD_SECRET=SECRET)
        self.daemon = Unshelver(config_text=text, workdir=workdir, env=env).start()
        return self.daemon

    def assert_secret_kept(self):
        self.assertNotIn(SECRET, self.daemon.output())
        for directory, _, files in os.walk(self.daemon.workdir):
            for name in files:
                with open(os.path.join(directory, name), "rb") as file:
                    self.assertNotIn(SECRET.encode(), file.read(), os.path.join(directory, name))

    def assert_secret_in_no_arguments(self):
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        self.assertNotIn(SECRET.encode(), cmdline.read(), pid)
                except OSError:
                    pass

    def test_wake_until_ready_then_idle_sleep_with_one_action_each(self):
        self.init_cloud()
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        code, _, body = daemon.wake()
        self.assertEqual(code, 202, body)
        daemon.wait_for_state("ready", 15)
        backend = daemon.backend()
        self.assertEqual(backend["provider"], "command")
        self.assertEqual(backend["cloud_status"], "running")
        self.assertEqual(backend["upstream"], f"127.0.0.1:{self.backend_port}")
        daemon.wait_for_state("asleep", 15)
        calls = self.vm()["calls"]
        # The fake acted only with the credential it requires: it reached the commands.
        self.assertEqual((calls["starts"], calls["stops"]), (1, 1))
        self.assertEqual((calls["wake"], calls["sleep"]), (1, 1))
        self.assertNotIn(SECRET, json.dumps(daemon.status()))

    def test_failed_wakes_show_their_reason_and_wait_for_an_admin(self):
        self.init_cloud()
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        cases = [
            ({"mode": "fail", "message": "UnauthorizedOperation: you may not start i-0abc"},
             "wake command exited with status 1: UnauthorizedOperation: you may not start i-0abc"),
            ({"mode": "crash"}, "wake command killed by signal 9"),
            # A CLI that echoes its credentials: quoted, but scrubbed.
            ({"mode": "leak"}, "wake command exited with status 1: debug: credentials [redacted]"),
        ]
        for fault, reason in cases:
            with self.subTest(fault=fault["mode"]):
                self.set_cloud(faults={"wake": dict(fault, times=1)})
                self.assertEqual(daemon.wake()[0], 202)
                daemon.wait_for_state("error", 10)
                backend = daemon.backend()
                self.assertIn(reason, backend["error"])
                # Refused: no further try until someone presses wake again (on_error: wait).
                time.sleep(0.6)
                self.assertEqual(daemon.backend()["state"], "error")
                self.assertEqual(self.vm()["calls"]["starts"], 0)
        wakes = self.vm()["calls"]["wake"]
        self.assertEqual(wakes, len(cases))
        # Accepted, then the cloud reports the VM in error with its reason.
        self.set_cloud(wake_fails_with="InsufficientInstanceCapacity: none left in eu-central-1a")
        self.assertEqual(daemon.wake()[0], 202)
        daemon.wait_until(lambda: "InsufficientInstanceCapacity" in daemon.backend()["error"], 10,
                          "the cloud's reason")
        self.assertEqual(daemon.backend()["state"], "error")
        self.assertEqual(self.vm()["calls"]["starts"], 1)

    def test_a_hanging_wake_is_killed_shown_and_tried_again(self):
        self.init_cloud()
        daemon = self.start_daemon()
        daemon.wait_for_state("asleep", 10)
        self.set_cloud(faults={"wake": {"mode": "hang"}})
        self.assertEqual(daemon.wake()[0], 202)
        # A timeout leaves the outcome unknown, like a request that timed out: observed, shown in
        # cloud_status, and tried again (not an error), each time killed after the timeout.
        daemon.wait_until(lambda: "did not finish in time" in daemon.backend()["cloud_status"], 10,
                          "the timeout in cloud_status")
        self.assertEqual(daemon.backend()["state"], "waking")
        self.assert_secret_in_no_arguments()
        daemon.wait_until(lambda: self.vm()["calls"]["wake"] >= 2, 10, "a second wake")
        self.set_cloud(faults={})
        daemon.wait_for_state("ready", 15)
        self.assertEqual(self.vm()["calls"]["starts"], 1)
        self.assertNotIn("did not finish", daemon.backend()["cloud_status"])
        self.assertIn("did not finish in time and was killed after", daemon.output())

    def test_observe_failures_are_shown_and_retried(self):
        self.init_cloud(faults={"observe": {"mode": "garbage"}})
        daemon = self.start_daemon()
        cases = [
            ("garbage", "observe must print one JSON object such as {\"state\": \"running\"}, but printed "
                        "\"<html><body><h1>502 Bad Gateway</h1></body></html>\""),
            ("several", "observe must print one JSON object"),
            ("flood", "observe printed more than the output limit allows"),
            ("fail", "observe command exited with status 1: An error occurred (InvalidInstanceID.NotFound)"),
            ("crash", "observe command killed by signal 9"),
            ("hang", "observe command did not finish in time"),
        ]
        for mode, reason in cases:
            with self.subTest(mode=mode):
                self.set_cloud(faults={"observe": {"mode": mode}})
                daemon.wait_until(lambda: reason in daemon.backend()["observe_error"], 10, reason)
        self.set_cloud(faults={}, state="running", since=time.time())
        daemon.wait_until(lambda: daemon.backend()["observe_error"] == "", 10, "a good observation")
        self.assertNotEqual(daemon.backend()["state"], "unknown")
        self.assertEqual(self.vm()["calls"]["starts"], 0)


if __name__ == "__main__":
    unittest.main()
