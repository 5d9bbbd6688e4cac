"""The conformance adapter for the command provider (`provider: command`), against the scripted
cloud CLI tests/fakes/fake_cloud_cli.py.

The VM lives in the fake's state file beside the config; its guest is an HTTP server on a free
port of 127.0.0.1 that this adapter runs only while the fake shows the VM running (so an asleep
VM refuses connections, as a shelved one does). The actions are the fake's own counts of wake and
sleep commands that exited 0. The marker secret reaches the commands only through
pass_environment, and the fake refuses to act without it.

Faults, as a wrapper around a real CLI would report them (README "Any cloud through commands"):
down is exit 75 with the CLI's connection error (busy: Unshelver observes and tries again);
refused credentials are exit 1 with "AuthFailure: credentials refused".
"""
import fcntl
import http.server
import json
import os
import subprocess
import sys
import threading
import time

from harness import free_port
from provider import Provider

CLI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes", "fake_cloud_cli.py")
SECRET_VARIABLE = "FAKE_CLOUD_SECRET"
UNREACHABLE = "Could not connect to the endpoint URL"


class _Guest(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"guest\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Adapter(Provider):
    name = "command"
    credentials_refused_text = "credentials refused"
    unreachable_text = UNREACHABLE

    def start(self, workdir, awake, timings):
        self.state = os.path.join(workdir, "fake-cloud.json")
        self.guest_port = free_port()
        self.guest = None
        self.stopping = threading.Event()
        subprocess.run([sys.executable, CLI, "init", f"start_seconds={timings.wake_seconds}",
                        f"stop_seconds={timings.sleep_seconds}", f'address="127.0.0.1:{self.guest_port}"',
                        f"state={json.dumps('running' if awake else 'stopped')}",
                        f"require_env={json.dumps({SECRET_VARIABLE: self.marker_secret})}"],
                       env={"FAKE_CLOUD_STATE": self.state}, check=True)
        self.timeout = max(timings.api_timeout_seconds, 1.0)
        self.watcher = threading.Thread(target=self._follow_the_vm, daemon=True)
        self.watcher.start()

    def stop(self):
        if getattr(self, "stopping", None):
            self.stopping.set()
            self.watcher.join(5)
        self._serve(False)

    def backend_yaml(self):
        def argv(command):
            return json.dumps([sys.executable, CLI, command])

        return (f"provider: command\nport: {self.guest_port}\ncommand:\n"
                f"  wake: {argv('wake')}\n  sleep: {argv('sleep')}\n  observe: {argv('observe')}\n"
                f"  timeout_seconds: {self.timeout * 3}\n"
                f"  environment: [\"FAKE_CLOUD_STATE={self.state}\"]\n"
                f"  pass_environment: [{SECRET_VARIABLE}]\n")

    def env(self):
        return {SECRET_VARIABLE: self.marker_secret}

    def _vm(self):
        with open(self.state + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(self.state) as handle:
                return json.load(handle)

    def _change(self, change):
        with open(self.state + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(self.state) as handle:
                vm = json.load(handle)
            change(vm)
            with open(self.state + ".tmp", "w") as handle:
                json.dump(vm, handle)
            os.replace(self.state + ".tmp", self.state)

    def _runs(self, vm):
        """Whether the VM runs now, as the fake would say at its next call (it moves on lazily)."""
        if vm["state"] == "running":
            return True
        return (vm["state"] == "starting" and not vm.get("stuck") and not vm.get("wake_fails_with")
                and time.time() - vm["since"] >= vm.get("start_seconds", 1))

    def _serve(self, wanted):
        if wanted and self.guest is None:
            self.guest = http.server.ThreadingHTTPServer(("127.0.0.1", self.guest_port), _Guest)
            threading.Thread(target=self.guest.serve_forever, daemon=True).start()
        elif not wanted and getattr(self, "guest", None) is not None:
            self.guest.shutdown()
            self.guest.server_close()
            self.guest = None

    def _follow_the_vm(self):
        while not self.stopping.wait(0.05):
            try:
                self._serve(self._runs(self._vm()))
            except (OSError, ValueError):
                pass

    def _calls(self, name):
        return self._vm().get("calls", {}).get(name, 0)

    def wake_actions(self):
        return self._calls("wake_accepted")

    def sleep_actions(self):
        return self._calls("sleep_accepted")

    def vm_awake(self):
        return self._runs(self._vm())

    def fail_next_wake(self, message):
        self._change(lambda vm: vm.update(wake_fails_with=message))
        return message

    def stall_next_wake(self):
        self._change(lambda vm: vm.update(stuck=True))

    def set_reachable(self, reachable):
        down = {"mode": "busy", "message": UNREACHABLE + ' "https://ec2.eu-central-1.amazonaws.com/"'}
        faults = {} if reachable else {"wake": down, "sleep": down, "observe": down}
        self._change(lambda vm: vm.update(faults=faults))

    def set_credentials_accepted(self, accepted):
        expected = self.marker_secret if accepted else "another-secret-than-the-one-unshelver-has"
        self._change(lambda vm: vm.update(require_env={SECRET_VARIABLE: expected}))
