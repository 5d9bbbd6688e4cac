"""The conformance adapter for Exoscale (`provider: exoscale`), against tests/fakes/fake_exoscale.py.

One instance "gpu-box" whose guest answers HTTP on a free port of 127.0.0.1 while it runs. The fake
verifies every request's EXO2-HMAC-SHA256 signature; the marker secret is the API secret, written
to the secrets file's [exoscale] section. The actions are the fake's own counts of start and stop
calls it accepted with an Operation. The faults are the fake's: a start operation that fails with
a reason and a message, a start that never finishes, dropped connections (down), and every
request refused with 403 "Invalid request signature" (credentials refused).
"""
import os

from fake_exoscale import FakeExoscale
from harness import free_port
from provider import Provider

INSTANCE_NAME = "gpu-box"
API_KEY = "EXOconformance000000000000"


class Adapter(Provider):
    name = "exoscale"
    credentials_refused_text = "credentials"
    unreachable_text = None

    def start(self, workdir, awake, timings):
        self.timings = timings
        self.guest_port = free_port()
        self.fake = FakeExoscale({
            "api_key": API_KEY, "api_secret": self.marker_secret,
            "timings": {"start_seconds": timings.wake_seconds, "stop_seconds": timings.sleep_seconds,
                        "boot_seconds": 0.05, "reboot_seconds": timings.wake_seconds},
        })
        self.fake.start()
        self.instance_id = self.fake.add_instance(INSTANCE_NAME, state="running" if awake else "stopped",
                                                  public_ip="127.0.0.1", serve_http_port=self.guest_port)
        if awake:
            self.fake.wait_for_instance(self.instance_id, lambda i: i["_fake"]["guest_listening"], timeout=5)
        # The credentials live beside the config, never in the state directory the suite scans.
        self.secrets_path = os.path.join(workdir, "exoscale-secrets.ini")
        with open(self.secrets_path, "w", encoding="utf-8") as file:
            file.write(f"[exoscale]\napi_key = {API_KEY}\napi_secret = {self.marker_secret}\n")
        os.chmod(self.secrets_path, 0o600)

    def stop(self):
        if getattr(self, "fake", None):
            self.fake.stop()

    def top_yaml(self):
        return (f"secrets_file: {self.secrets_path}\n"
                f"exoscale:\n  api_url: {self.fake.api_url}\n  zone: ch-gva-2\n"
                f"  api_timeout_seconds: {self.timings.api_timeout_seconds}\n")

    def backend_yaml(self):
        return f"provider: exoscale\ninstance_name: {INSTANCE_NAME}\nport: {self.guest_port}\n"

    def wake_actions(self):
        return self.fake.action_counts(self.instance_id)["start"]

    def sleep_actions(self):
        return self.fake.action_counts(self.instance_id)["stop"]

    def vm_awake(self):
        return self.fake.instance(self.instance_id)["state"] == "running"

    def fail_next_wake(self, message):
        self.fake.fail_start(reason="unavailable", message=message, times=1, instance_id=self.instance_id)
        return message

    def stall_next_wake(self):
        self.fake.hang("start", times=1, instance_id=self.instance_id)

    def set_reachable(self, reachable):
        if reachable:
            self.fake.clear_faults()
        else:
            # Every API request has its connection dropped; the instance keeps its state.
            self.fake.add_fault(drop=True, times=None)

    def set_credentials_accepted(self, accepted):
        self.fake.configure(refuse_credentials=not accepted)
