"""The conformance adapter for OpenStack (`provider: openstack`), against tests/fakes/fake_openstack.py.

One server "gpu-box" whose guest answers HTTP on a free port of 127.0.0.1 while it is ACTIVE. The
actions are counted in the fake's request log: Nova's server actions answered 202 (unshelve or
os-start wake, shelve or os-stop sleep). The marker secret is the Keystone password.
"""
from fake_openstack import FakeOpenStack
from harness import free_port
from provider import Provider

SERVER_NAME = "gpu-box"
WAKE_ACTIONS = ("unshelve", "os-start")
SLEEP_ACTIONS = ("shelve", "shelveOffload", "os-stop")


class Adapter(Provider):
    name = "openstack"
    credentials_refused_text = "credentials"
    unreachable_text = None

    def start(self, workdir, awake, timings):
        self.timings = timings
        self.guest_port = free_port()
        self.fake = FakeOpenStack({
            "users": [{"id": "u-demo-0001", "name": "demo", "password": self.marker_secret, "domain_id": "default"}],
            # A wake goes through unshelving (scheduling) and spawning; a sleep through shelving and
            # offloading: the hints are spread over them.
            "timings": {"default": 0.05, "unshelving": timings.wake_seconds, "shelving": timings.sleep_seconds},
        })
        self.fake.start()
        self.server_id = self.fake.add_server(
            SERVER_NAME, vm_state="active" if awake else "shelved_offloaded",
            addresses={"private": [{"addr": "127.0.0.1", "version": 4, "OS-EXT-IPS:type": "fixed"}]},
            serve_http_port=self.guest_port)

    def stop(self):
        if getattr(self, "fake", None):
            self.fake.stop()

    def top_yaml(self):
        return (f"openstack:\n  auth_url: {self.fake.auth_url}\n  username: demo\n"
                f"  password: {self.marker_secret}\n  project_name: demo\n  user_domain_name: Default\n"
                f"  project_domain_name: Default\n  region_name: RegionOne\n"
                f"  api_timeout_seconds: {self.timings.api_timeout_seconds}\n")

    def backend_yaml(self):
        return f"provider: openstack\ninstance_name: {SERVER_NAME}\nport: {self.guest_port}\n"

    def _actions(self, names):
        entries = self.fake.requests(service="compute", method="POST", path_regex=r"/servers/[^/]+/action$",
                                     status=202)
        return sum(1 for entry in entries if entry.get("action") in names)

    def wake_actions(self):
        return self._actions(WAKE_ACTIONS)

    def sleep_actions(self):
        return self._actions(SLEEP_ACTIONS)

    def vm_awake(self):
        server = self.fake.server(self.server_id)
        return server["status"] == "ACTIVE" and server.get("OS-EXT-STS:task_state") is None

    def fail_next_wake(self, message):
        self.fake.set_unshelve_fault("no_valid_host", times=1, server_id=self.server_id, message=message)
        return message

    def stall_next_wake(self):
        self.fake.set_unshelve_fault("never_finish", times=1, server_id=self.server_id)

    def set_reachable(self, reachable):
        if reachable:
            self.fake.clear_faults()
        else:
            # Every request to the cloud's API, Keystone included, has its connection reset.
            self.fake.add_fault(drop="reset", times=None)

    def set_credentials_accepted(self, accepted):
        if accepted:
            self.fake.clear_faults()
        else:
            # Keystone refuses the password from now on, and the tokens it gave are no longer valid.
            self.fake.add_fault(method="POST", path_regex=r"/identity/v3/auth/tokens$", status=401, times=None)
            self.fake.expire_tokens()
