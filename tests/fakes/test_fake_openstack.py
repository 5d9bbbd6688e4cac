"""Checks fake_openstack against the API contract (/work/shared/research/api-contracts.md).

    cd tests/fakes && python3 -m unittest -v test_fake_openstack

Standard library only (urllib, http.client, sockets). Section numbers refer to the contract.
"""
import datetime
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_openstack import FakeOpenStack  # noqa: E402

PASSWORD_AUTH = {"auth": {
    "identity": {"methods": ["password"],
                 "password": {"user": {"name": "demo", "domain": {"name": "Default"},
                                       "password": "demo-password-123"}}},
    "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}
APP_CRED_AUTH = {"auth": {"identity": {"methods": ["application_credential"],
                                       "application_credential": {"id": "ac-0001", "secret": "ac-secret-xyz"}}}}
FAST = {"timings": {"default": 0.15}, "designate_propagation_seconds": 0.3}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(method, url, body=None, headers=None, timeout=5):
    """Returns (status, headers, body bytes); JSON-encodes dict/list bodies."""
    headers = dict(headers or {})
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class FakeTestCase(unittest.TestCase):
    config = FAST

    def setUp(self):
        self.fake = FakeOpenStack(self.config).start()
        self.addCleanup(self.fake.stop)
        self._token = None

    def token(self):
        if self._token is None:
            status, headers, _ = call("POST", self.fake.auth_url + "/auth/tokens", PASSWORD_AUTH)
            self.assertEqual(status, 201)
            self._token = headers["X-Subject-Token"]
        return self._token

    def nova(self, method, path, body=None, version=None, prefix="/compute/v2.1", headers=None):
        headers = dict(headers or {}, **{"X-Auth-Token": self.token()})
        if version:
            headers["OpenStack-API-Version"] = f"compute {version}"
        return call(method, self.fake.url + prefix + path, body, headers)

    def nova_json(self, method, path, body=None, version=None, expect=200):
        status, _, raw = self.nova(method, path, body, version)
        self.assertEqual(status, expect, raw)
        return json.loads(raw) if raw else None

    def server_state(self, server_id):
        server = self.nova_json("GET", f"/servers/{server_id}")["server"]
        return server["status"], server["OS-EXT-STS:task_state"]

    def watch(self, server_id, until, timeout=5):
        """Polls GET /servers/{id} every 10 ms; returns the distinct (status, task_state) seen."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.server_state(server_id)
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == until:
                return seen
            time.sleep(0.01)
        self.fail(f"never reached {until}; saw {seen}")

    def action(self, server_id, body, version=None):
        return self.nova("POST", f"/servers/{server_id}/action", body, version)

    def swift(self, method, path, body=None, headers=None):
        account = "/object-store/v1/AUTH_p-demo-0001"
        return call(method, self.fake.url + account + path, body, dict(headers or {}, **{"X-Auth-Token": self.token()}))

    def dns(self, method, path, body=None):
        return call(method, self.fake.url + "/dns" + path, body, {"X-Auth-Token": self.token()})

    def dns_json(self, method, path, body=None, expect=200):
        status, headers, raw = self.dns(method, path, body)
        self.assertEqual(status, expect, raw)
        return json.loads(raw)


class KeystoneTest(FakeTestCase):
    """Contract §1."""

    def test_password_auth_returns_201_subject_token_and_contract_body(self):
        status, headers, raw = call("POST", self.fake.auth_url + "/auth/tokens", PASSWORD_AUTH)
        self.assertEqual(status, 201)
        self.assertRegex(headers["X-Subject-Token"], r"^[0-9a-f]{64}$")
        token = json.loads(raw)["token"]
        self.assertEqual(token["methods"], ["password"])
        self.assertRegex(token["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertRegex(token["issued_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertEqual(token["project"]["id"], "p-demo-0001")
        self.assertEqual(token["project"]["domain"], {"id": "default", "name": "Default"})
        self.assertEqual(token["user"]["name"], "demo")
        self.assertIsNone(token["user"]["password_expires_at"])
        self.assertTrue(token["roles"])
        types = {entry["type"]: entry for entry in token["catalog"]}
        self.assertEqual(set(types), {"compute", "object-store", "dns", "identity"})
        compute = {(e["interface"], e["region_id"]): e["url"] for e in types["compute"]["endpoints"]}
        self.assertEqual(compute[("public", "RegionOne")], self.fake.url + "/compute/v2.1")
        self.assertEqual(compute[("internal", "RegionOne")], self.fake.url + "/internal/compute/v2.1")
        self.assertEqual(compute[("admin", "RegionOne")], self.fake.url + "/admin/compute/v2.1")
        self.assertEqual(compute[("public", "RegionTwo")], self.fake.url + "/r2/compute/v2.1")
        swift = [e["url"] for e in types["object-store"]["endpoints"] if e["interface"] == "public"]
        self.assertEqual(swift, [self.fake.url + "/object-store/v1/AUTH_p-demo-0001"])
        self.assertEqual(self.fake.auth_count, 1)

    def test_password_by_ids_and_nocatalog(self):
        body = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"id": "u-demo-0001", "password": "demo-password-123"}}},
            "scope": {"project": {"id": "p-demo-0001"}}}}
        status, _, raw = call("POST", self.fake.auth_url + "/auth/tokens?nocatalog", body)
        self.assertEqual(status, 201)
        self.assertNotIn("catalog", json.loads(raw)["token"])

    def test_application_credential_by_id_and_by_name(self):
        status, headers, raw = call("POST", self.fake.auth_url + "/auth/tokens", APP_CRED_AUTH)
        self.assertEqual(status, 201, raw)
        token = json.loads(raw)["token"]
        self.assertEqual(token["methods"], ["application_credential"])
        self.assertEqual(token["application_credential"], {"id": "ac-0001", "name": "monitoring", "restricted": True})
        self.assertEqual(token["project"]["id"], "p-demo-0001")
        by_name = {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
            "name": "monitoring", "secret": "ac-secret-xyz", "user": {"name": "demo", "domain": {"name": "Default"}}}}}}
        self.assertEqual(call("POST", self.fake.auth_url + "/auth/tokens", by_name)[0], 201)
        self.assertEqual(self.fake.auth_count, 2)

    def test_application_credential_with_scope_is_refused_like_keystone(self):
        body = json.loads(json.dumps(APP_CRED_AUTH))
        body["auth"]["scope"] = {"project": {"id": "p-demo-0001"}}
        status, headers, raw = call("POST", self.fake.auth_url + "/auth/tokens", body)
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(raw), {"error": {"code": 401, "title": "Unauthorized", "message":
                         "Error authenticating with application credential: Application credentials cannot "
                         "request a scope."}})
        self.assertEqual(headers["WWW-Authenticate"], f'Keystone uri="{self.fake.url}/identity"')

    def test_bad_password_is_401_with_the_generic_body(self):
        body = json.loads(json.dumps(PASSWORD_AUTH))
        body["auth"]["identity"]["password"]["user"]["password"] = "wrong"
        status, headers, raw = call("POST", self.fake.auth_url + "/auth/tokens", body)
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(raw), {"error": {"code": 401, "title": "Unauthorized",
                                                     "message": "The request you have made requires authentication."}})
        self.assertIn("WWW-Authenticate", headers)
        self.assertEqual(self.fake.auth_count, 0)
        self.assertEqual(self.fake.auth_failures, 1)

    def test_user_name_without_domain_is_400(self):
        body = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": "demo", "password": "demo-password-123"}}}}}
        status, _, raw = call("POST", self.fake.auth_url + "/auth/tokens", body)
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(raw)["error"]["code"], 400)

    def test_the_log_keeps_no_secrets(self):
        self.token()
        call("POST", self.fake.auth_url + "/auth/tokens", APP_CRED_AUTH)
        self.nova("GET", "/servers")
        dump = json.dumps(self.fake.requests()) + call("GET", self.fake.url + "/_fake/requests")[2].decode()
        for secret in ("demo-password-123", "ac-secret-xyz", self.token()):
            self.assertNotIn(secret, dump)
        keystone = self.fake.requests(service="identity")
        self.assertEqual([e["auth_method"] for e in keystone], ["password", "application_credential"])
        self.assertTrue(self.fake.requests(service="compute")[0]["authenticated"])

    def test_expired_tokens_get_401_from_every_service_in_its_format(self):
        self.assertEqual(self.nova("GET", "/servers")[0], 200)
        self.fake.expire_tokens()
        status, headers, raw = self.nova("GET", "/servers")
        self.assertEqual(status, 401)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(raw)["error"]["message"], "The request you have made requires authentication.")
        self.assertEqual(headers["WWW-Authenticate"], f'Keystone uri="{self.fake.url}/identity"')
        self.assertRegex(headers["X-Openstack-Request-Id"], r"^req-[0-9a-f-]{36}$")
        status, headers, raw = self.dns("GET", "/v2/zones")
        self.assertEqual((status, json.loads(raw)["error"]["code"]), (401, 401))
        self.assertIn("WWW-Authenticate", headers)
        status, headers, raw = self.swift("GET", "/")
        self.assertEqual(status, 401)
        self.assertEqual(raw.decode(), "<html><h1>Unauthorized</h1><p>This server could not verify that you are "
                                       "authorized to access the document you requested.</p></html>")
        self.assertIn("WWW-Authenticate", headers)
        self.assertFalse(self.fake.requests(service="compute")[-1]["authenticated"])
        # A new token works again.
        self._token = None
        self.assertEqual(self.nova("GET", "/servers")[0], 200)
        self.assertEqual(self.fake.auth_count, 2)

    def test_token_lifetime_is_configurable(self):
        self.fake.configure(token_lifetime_seconds=0.4)
        status, headers, raw = call("POST", self.fake.auth_url + "/auth/tokens", PASSWORD_AUTH)
        token = json.loads(raw)["token"]
        lifetime = (datetime.datetime.fromisoformat(token["expires_at"].rstrip("Z"))
                    - datetime.datetime.fromisoformat(token["issued_at"].rstrip("Z"))).total_seconds()
        self.assertAlmostEqual(lifetime, 0.4, places=3)
        self._token = headers["X-Subject-Token"]
        self.assertEqual(self.nova("GET", "/servers")[0], 200)
        time.sleep(0.5)
        self.assertEqual(self.nova("GET", "/servers")[0], 401)


class NovaTest(FakeTestCase):
    """Contract §2 and the addendum."""

    def test_name_is_a_regex_and_lists_follow_the_contract(self):
        for name in ("gpu", "gpu-big", "cpu"):
            self.fake.add_server(name)
        names = sorted(s["name"] for s in self.nova_json("GET", "/servers?name=gpu")["servers"])
        self.assertEqual(names, ["gpu", "gpu-big"])
        self.assertEqual([s["name"] for s in self.nova_json("GET", "/servers?name=%5Egpu%24")["servers"]], ["gpu"])
        self.assertEqual(self.nova_json("GET", "/servers?name=nothing"), {"servers": []})
        item = self.nova_json("GET", "/servers?name=cpu")["servers"][0]
        self.assertEqual(set(item), {"id", "links", "name"})
        self.assertEqual([link["rel"] for link in item["links"]], ["self", "bookmark"])
        detail = self.nova_json("GET", "/servers/detail?name=cpu")["servers"][0]
        self.assertEqual(detail["status"], "SHELVED_OFFLOADED")

    def test_server_lists_page_with_limit_marker_and_next_links(self):
        ids = {self.fake.add_server(f"vm{i}") for i in range(5)}
        self.fake.configure(nova_max_limit=3)
        first = self.nova_json("GET", "/servers/detail")
        self.assertEqual(len(first["servers"]), 3)  # no limit: [api] max_limit
        seen = []
        body = self.nova_json("GET", "/servers/detail?limit=2")
        while True:
            seen += [s["id"] for s in body["servers"]]
            links = [link for link in body.get("servers_links", []) if link["rel"] == "next"]
            if not links:
                break
            href = links[0]["href"]
            self.assertTrue(href.startswith(self.fake.url + "/compute/v2.1/servers/detail?"), href)
            self.assertIn("limit=2", href)
            body = self.nova_json("GET", "/servers/detail?" + href.split("?", 1)[1])
        self.assertEqual(len(seen), 5)
        self.assertEqual(set(seen), ids)  # every server once, in a stable order
        self.assertEqual(len(self.nova_json("GET", "/servers?limit=10")["servers"]), 3)  # capped
        self.nova_json("GET", "/servers/detail?marker=nope", expect=400)
        self.nova_json("GET", "/servers/detail?limit=x", expect=400)
        # Each list call is in the request log, for tests that count them.
        self.assertGreaterEqual(len(self.fake.requests(service="compute", path_regex=r"/servers/detail$")), 5)

    def test_server_body_and_404(self):
        server_id = self.fake.add_server("web", vm_state="active", addresses={
            "private": ["10.0.0.7", {"addr": "203.0.113.9", "type": "floating"}, "fd00::7"]})
        server = self.nova_json("GET", f"/servers/{server_id}")["server"]
        self.assertEqual((server["status"], server["OS-EXT-STS:vm_state"]), ("ACTIVE", "active"))
        self.assertIsNone(server["OS-EXT-STS:task_state"])
        self.assertEqual(server["OS-EXT-STS:power_state"], 1)
        self.assertRegex(server["updated"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        addresses = server["addresses"]["private"]
        self.assertEqual([(a["addr"], a["OS-EXT-IPS:type"], a["version"]) for a in addresses],
                         [("10.0.0.7", "fixed", 4), ("203.0.113.9", "floating", 4), ("fd00::7", "fixed", 6)])
        self.assertIn("OS-EXT-IPS-MAC:mac_addr", addresses[0])
        self.assertNotIn("fault", server)
        status, headers, raw = self.nova("GET", "/servers/0e44cc9c-e052-415d-afbf-469b0d384170")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(raw), {"itemNotFound": {
            "code": 404, "message": "Instance 0e44cc9c-e052-415d-afbf-469b0d384170 could not be found."}})
        self.assertTrue(headers["X-Openstack-Request-Id"].startswith("req-"))

    def test_microversion_headers(self):
        status, headers, _ = self.nova("GET", "/servers", version="2.91")
        self.assertEqual((status, headers["OpenStack-API-Version"], headers["X-OpenStack-Nova-API-Version"]),
                         (200, "compute 2.91", "2.91"))
        self.assertIn("OpenStack-API-Version", headers["Vary"])
        self.assertEqual(self.nova("GET", "/servers")[1]["OpenStack-API-Version"], "compute 2.1")
        self.assertEqual(self.nova("GET", "/servers", version="latest")[1]["X-OpenStack-Nova-API-Version"], "2.104")
        legacy = self.nova("GET", "/servers", headers={"X-OpenStack-Nova-API-Version": "2.60"})
        self.assertEqual(legacy[1]["OpenStack-API-Version"], "compute 2.60")
        status, _, raw = self.nova("GET", "/servers", version="2.x")
        self.assertEqual(status, 400)
        self.assertIn("badRequest", json.loads(raw))
        status, _, raw = self.nova("GET", "/servers", version="2.999")
        self.assertEqual(status, 406)
        self.assertEqual(json.loads(raw)["computeFault"]["message"],
                         "Version 2.999 is not supported by the API. Minimum is 2.1 and maximum is 2.104.")

    def test_shelve_visits_every_task_state(self):
        server_id = self.fake.add_server("gpu", vm_state="active")
        status, headers, raw = self.action(server_id, {"shelve": None})
        self.assertEqual((status, raw), (202, b""))
        self.assertRegex(headers["X-Openstack-Request-Id"], r"^req-[0-9a-f-]{36}$")
        seen = self.watch(server_id, ("SHELVED_OFFLOADED", None))
        self.assertEqual(seen, [("ACTIVE", "shelving"), ("ACTIVE", "shelving_image_pending_upload"),
                                ("ACTIVE", "shelving_image_uploading"), ("SHELVED", "shelving_offloading"),
                                ("SHELVED_OFFLOADED", None)])
        server = self.nova_json("GET", f"/servers/{server_id}")["server"]
        self.assertEqual((server["OS-EXT-STS:vm_state"], server["OS-EXT-STS:power_state"]), ("shelved_offloaded", 0))
        actions = self.nova_json("GET", f"/servers/{server_id}/os-instance-actions")["instanceActions"]
        self.assertEqual([(a["action"], a["request_id"], a["message"]) for a in actions],
                         [("shelve", headers["X-Openstack-Request-Id"], None)])

    def test_unshelve_visits_every_task_state(self):
        server_id = self.fake.add_server("gpu")
        self.assertEqual(self.action(server_id, {"unshelve": None})[0], 202)
        seen = self.watch(server_id, ("ACTIVE", None))
        self.assertEqual(seen, [("SHELVED_OFFLOADED", "unshelving"), ("SHELVED_OFFLOADED", "spawning"),
                                ("ACTIVE", None)])
        self.assertEqual(self.nova_json("GET", f"/servers/{server_id}")["server"]["OS-EXT-STS:power_state"], 1)

    def test_stop_start_suspend_resume(self):
        server_id = self.fake.add_server("gpu", vm_state="active")
        self.assertEqual(self.action(server_id, {"os-stop": None})[0], 202)
        self.assertEqual(self.watch(server_id, ("SHUTOFF", None)), [("ACTIVE", "powering-off"), ("SHUTOFF", None)])
        self.assertEqual(self.fake.server(server_id)["OS-EXT-STS:power_state"], 4)
        self.assertEqual(self.action(server_id, {"os-start": None})[0], 202)
        self.assertEqual(self.watch(server_id, ("ACTIVE", None)), [("SHUTOFF", "powering-on"), ("ACTIVE", None)])
        self.assertEqual(self.action(server_id, {"suspend": None})[0], 202)
        self.assertEqual(self.watch(server_id, ("SUSPENDED", None)), [("ACTIVE", "suspending"), ("SUSPENDED", None)])
        self.assertEqual(self.fake.server(server_id)["OS-EXT-STS:power_state"], 7)
        self.assertEqual(self.action(server_id, {"resume": None})[0], 202)
        self.assertEqual(self.watch(server_id, ("ACTIVE", None)), [("SUSPENDED", "resuming"), ("ACTIVE", None)])
        actions = [a["action"] for a in self.nova_json("GET", f"/servers/{server_id}/os-instance-actions")[
            "instanceActions"]]
        self.assertEqual(actions, ["resume", "suspend", "start", "stop"])  # newest first

    def test_conflicts_and_bad_actions(self):
        server_id = self.fake.add_server("gpu", vm_state="active")
        status, _, raw = self.action(server_id, {"unshelve": None})
        self.assertEqual(status, 409)
        self.assertEqual(json.loads(raw), {"conflictingRequest": {"code": 409, "message":
                         f"Cannot 'unshelve' instance {server_id} while it is in vm_state active"}})
        self.assertEqual(self.action(server_id, {"shelve": None})[0], 202)
        status, _, raw = self.action(server_id, {"shelve": None})
        self.assertEqual(json.loads(raw)["conflictingRequest"]["message"],
                         f"Cannot 'shelve' instance {server_id} while it is in task_state shelving")
        status, _, raw = self.action(server_id, {"reboot-ish": None})
        self.assertEqual((status, json.loads(raw)), (400, {"badRequest": {
            "code": 400, "message": "There is no such action: reboot-ish"}}))
        status, _, raw = self.action(server_id, {"os-start": None})
        self.assertIn("while it is in vm_state active", json.loads(raw)["conflictingRequest"]["message"])

    def test_unshelve_bodies_by_microversion(self):
        server_id = self.fake.add_server("gpu", vm_state="shelved")
        self.assertEqual(self.action(server_id, {"unshelve": {}}, "2.77")[0], 400)
        status, _, raw = self.action(server_id, {"unshelve": {"availability_zone": "az1"}}, "2.77")
        self.assertEqual(status, 409)  # az needs SHELVED_OFFLOADED
        self.assertEqual(self.action(server_id, {"unshelve": {"availability_zone": None}}, "2.77")[0], 400)
        self.assertEqual(self.action(server_id, {"unshelve": {"host": "h1"}}, "2.91")[0], 403)  # admin policy
        self.assertEqual(self.action(server_id, {"unshelve": {}}, "2.60")[0], 202)  # before 2.77: ignored
        offloaded = self.fake.add_server("gpu2")
        self.assertEqual(self.action(offloaded, {"unshelve": {"availability_zone": None}}, "2.91")[0], 202)

    def test_no_valid_host_looks_like_nova(self):
        server_id = self.fake.add_server("gpu")
        self.fake.set_unshelve_fault("no_valid_host", times=1)
        status, headers, _ = self.action(server_id, {"unshelve": None})
        rid = headers["X-Openstack-Request-Id"]
        seen = self.watch(server_id, ("SHELVED_OFFLOADED", None))
        self.assertEqual(seen, [("SHELVED_OFFLOADED", "unshelving"), ("SHELVED_OFFLOADED", None)])
        server = self.nova_json("GET", f"/servers/{server_id}")["server"]
        self.assertNotIn("fault", server)
        self.assertEqual(server["OS-EXT-STS:vm_state"], "shelved_offloaded")
        listed = self.nova_json("GET", f"/servers/{server_id}/os-instance-actions", version="2.58")["instanceActions"]
        self.assertEqual((listed[0]["action"], listed[0]["message"], listed[0]["request_id"]),
                         ("unshelve", "Error", rid))
        self.assertIn("updated_at", listed[0])
        self.assertNotIn("updated_at", self.nova_json("GET", f"/servers/{server_id}/os-instance-actions")[
            "instanceActions"][0])
        shown = self.nova_json("GET", f"/servers/{server_id}/os-instance-actions/{rid}", version="2.84")
        event = shown["instanceAction"]["events"][0]
        self.assertEqual((event["event"], event["result"]), ("schedule_instances", "Error"))
        self.assertEqual(event["details"], "No valid host was found. There are not enough hosts available.")
        self.assertIsNotNone(event["finish_time"])
        self.assertNotIn("traceback", event)
        at_283 = self.nova_json("GET", f"/servers/{server_id}/os-instance-actions/{rid}", version="2.83")
        self.assertNotIn("details", at_283["instanceAction"]["events"][0])
        at_250 = self.nova_json("GET", f"/servers/{server_id}/os-instance-actions/{rid}", version="2.50")
        self.assertNotIn("events", at_250["instanceAction"])
        self.fake.configure(show_event_details=False)
        hidden = self.nova_json("GET", f"/servers/{server_id}/os-instance-actions/{rid}", version="2.84")
        self.assertEqual(hidden["instanceAction"]["events"][0]["result"], "Error")
        self.assertNotIn("details", hidden["instanceAction"]["events"][0])
        status, _, raw = self.nova("GET", f"/servers/{server_id}/os-instance-actions/req-nope")
        self.assertEqual((status, json.loads(raw)["itemNotFound"]["message"]), (404, "Action req-nope not found"))
        # times=1: the next unshelve works.
        self.assertEqual(self.action(server_id, {"unshelve": None})[0], 202)
        self.watch(server_id, ("ACTIVE", None))

    def test_spawn_error_and_never_finish(self):
        broken = self.fake.add_server("broken")
        self.fake.set_unshelve_fault("spawn_error", server_id=broken)
        self.action(broken, {"unshelve": None})
        seen = self.watch(broken, ("ERROR", None))
        self.assertEqual(seen[-2:], [("SHELVED_OFFLOADED", "spawning"), ("ERROR", None)])
        fault = self.nova_json("GET", f"/servers/{broken}")["server"]["fault"]
        self.assertEqual(fault["code"], 500)
        self.assertRegex(fault["created"], r"Z$")
        self.assertTrue(fault["message"])
        stuck = self.fake.add_server("stuck", unshelve_fault={"kind": "never_finish"})
        self.action(stuck, {"unshelve": None})
        time.sleep(0.6)
        self.assertEqual(self.server_state(stuck), ("SHELVED_OFFLOADED", "unshelving"))
        self.assertEqual(self.action(stuck, {"unshelve": None})[0], 409)

    def test_serve_http_port_opens_on_active_and_closes_on_stop(self):
        port = free_port()
        server_id = self.fake.add_server("web", vm_state="stopped", serve_http_port=port, boot_seconds=0.3)
        self.assertFalse(self.fake.guest_listening(server_id))
        self.action(server_id, {"os-start": None})
        self.watch(server_id, ("ACTIVE", None))
        active_at = time.monotonic()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        deadline = time.monotonic() + 3
        while not self.fake.guest_listening(server_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(time.monotonic() - active_at, 0.25)  # boot_seconds
        status, _, body = call("GET", f"http://127.0.0.1:{port}/health")
        self.assertEqual((status, body), (200, b"ok"))
        self.assertEqual(call("POST", f"http://127.0.0.1:{port}/anything", b"x")[0], 200)
        self.assertEqual([e["path"] for e in self.fake.requests(service="guest")], ["/health", "/anything"])
        self.action(server_id, {"os-stop": None})
        self.watch(server_id, ("SHUTOFF", None))
        deadline = time.monotonic() + 3
        while self.fake.guest_listening(server_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()

    def test_interface_and_region_prefixes_work_and_are_logged(self):
        server_id = self.fake.add_server("gpu")
        for prefix in ("/internal/compute/v2.1", "/admin/compute/v2.1", "/r2/compute/v2.1"):
            self.assertEqual(self.nova("GET", f"/servers/{server_id}", prefix=prefix)[0], 200)
        logged = [(e["prefix"], e["interface"], e["region"]) for e in self.fake.requests(service="compute")]
        self.assertEqual(logged, [("/internal/compute/v2.1", "internal", "RegionOne"),
                                  ("/admin/compute/v2.1", "admin", "RegionOne"),
                                  ("/r2/compute/v2.1", "public", "RegionTwo")])
        self.assertEqual(call("GET", self.fake.url + "/r2/dns/v2/zones")[0], 404)  # RegionTwo: compute only

    def test_project_id_in_the_compute_url(self):
        self.fake.configure(compute_url_with_project_id=True)
        server_id = self.fake.add_server("gpu")
        status, _, raw = call("POST", self.fake.auth_url + "/auth/tokens", PASSWORD_AUTH)
        urls = [e["url"] for s in json.loads(raw)["token"]["catalog"] if s["type"] == "compute"
                for e in s["endpoints"] if e["interface"] == "public" and e["region_id"] == "RegionOne"]
        self.assertEqual(urls, [self.fake.url + "/compute/v2.1/p-demo-0001"])
        self.assertEqual(self.nova("GET", f"/p-demo-0001/servers/{server_id}")[0], 200)

    def test_forced_state_through_the_control_api(self):
        port = free_port()
        server_id = self.fake.add_server("gpu", vm_state="active", serve_http_port=port)
        deadline = time.monotonic() + 2
        while not self.fake.guest_listening(server_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertTrue(self.fake.guest_listening(server_id))
        status, _, raw = call("POST", f"{self.fake.url}/_fake/servers/{server_id}/state", {"vm_state": "stopped"})
        self.assertEqual((status, json.loads(raw)["server"]["status"]), (200, "SHUTOFF"))
        deadline = time.monotonic() + 2
        while self.fake.guest_listening(server_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertFalse(self.fake.guest_listening(server_id))
        self.assertEqual(self.server_state(server_id), ("SHUTOFF", None))


class SwiftTest(FakeTestCase):
    """Contract §3."""

    def raw_put_without_length(self, path):
        with socket.create_connection(("127.0.0.1", self.fake.port), timeout=5) as conn:
            conn.sendall(f"PUT /object-store/v1/AUTH_p-demo-0001{path} HTTP/1.1\r\nHost: x\r\n"
                         f"X-Auth-Token: {self.token()}\r\nConnection: close\r\n\r\n".encode())
            return conn.recv(65536).decode()

    def test_containers_objects_and_listings(self):
        self.assertEqual(self.swift("PUT", "/events", b"")[0], 201)
        status, headers, _ = self.swift("PUT", "/events", b"")
        self.assertEqual(status, 202)
        self.assertEqual(headers["X-Trans-Id"], headers["X-Openstack-Request-Id"])
        status, headers, raw = self.swift("PUT", "/events/2024/a.json", b'{"a":1}',
                                          {"Content-Type": "application/json"})
        self.assertEqual((status, raw), (201, b""))
        self.assertEqual(headers["Etag"], hashlib.md5(b'{"a":1}').hexdigest())  # unquoted
        # No Content-Type: Swift guesses it from the name (http.client sends none, urllib would).
        connection = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=5)
        connection.request("PUT", "/object-store/v1/AUTH_p-demo-0001/events/2025/b.txt", b"bee",
                           {"X-Auth-Token": self.token(), "ETag": hashlib.md5(b"bee").hexdigest()})
        self.assertEqual(connection.getresponse().status, 201)
        connection.close()
        status, headers, body = self.swift("GET", "/events/2025/b.txt")
        self.assertEqual((status, body, headers["Content-Type"]), (200, b"bee", "text/plain"))
        self.assertEqual(headers["Etag"], '"%s"' % hashlib.md5(b"bee").hexdigest())  # GET: quoted, like swob
        status, headers, body = self.swift("HEAD", "/events/2025/b.txt")
        self.assertEqual((status, headers["Content-Length"], body), (200, "3", b""))
        self.assertEqual(self.swift("GET", "/events")[2], b"2024/a.json\n2025/b.txt\n")
        listing = json.loads(self.swift("GET", "/events?format=json&prefix=2025/")[2])
        self.assertEqual([(o["name"], o["bytes"]) for o in listing], [("2025/b.txt", 3)])
        self.assertEqual(self.swift("GET", "/events?prefix=zzz")[0], 204)
        self.assertEqual(self.swift("DELETE", "/events/2025/b.txt")[0], 204)
        self.assertEqual(self.swift("GET", "/events/2025/b.txt")[0], 404)
        self.assertEqual(self.fake.swift_objects("events"), {"2024/a.json": b'{"a":1}'})
        self.assertEqual(self.fake.swift_put_count("events", "2024/a.json"), 1)
        self.assertEqual(self.fake.swift_put_count("events", "2025/b.txt"), 1)

    def test_put_errors(self):
        status, _, body = self.swift("PUT", "/nope/x", b"1")
        self.assertEqual((status, body),
                         (404, b"<html><h1>Not Found</h1><p>The resource could not be found.</p></html>"))
        self.swift("PUT", "/c", b"")
        self.assertEqual(self.swift("PUT", "/c/x", b"1", {"If-None-Match": "*"})[0], 201)
        status, _, body = self.swift("PUT", "/c/x", b"2", {"If-None-Match": "*"})
        self.assertEqual((status, body), (412, b"<html><h1>Precondition Failed</h1><p>A precondition for this "
                                                b"request was not met.</p></html>"))
        self.assertEqual(self.fake.swift_objects("c"), {"x": b"1"})
        self.assertEqual(self.fake.swift_put_count("c", "x"), 1)
        status, _, body = self.swift("PUT", "/c/y", b"1", {"If-None-Match": "abc"})
        self.assertEqual((status, body), (400, b"If-None-Match only supports *"))
        self.assertEqual(self.swift("PUT", "/c/y", b"1", {"ETag": "0" * 32})[0], 422)
        self.assertEqual(self.swift("PUT", "/c/y", b"1", {"X-Delete-After": "soon"})[2], b"Non-integer X-Delete-After")
        self.assertEqual(self.swift("PUT", "/c/y", b"1", {"X-Delete-After": "0"})[2], b"X-Delete-After in past")
        self.assertTrue(self.raw_put_without_length("/c/z").startswith("HTTP/1.1 411"))
        self.assertEqual(self.fake.swift_objects("c"), {"x": b"1"})

    def test_other_account_is_403(self):
        status, _, body = call("GET", self.fake.url + "/object-store/v1/AUTH_someone-else/c",
                               headers={"X-Auth-Token": self.token()})
        self.assertEqual((status, body), (403, b"<html><h1>Forbidden</h1><p>Access was denied to this "
                                               b"resource.</p></html>"))


    def test_a_body_cut_short_stores_nothing(self):
        """A client that hangs up inside its body (Content-Length not reached) stores nothing, as
        Swift's proxy does (499); a retry of the same object is then a first PUT."""
        self.assertEqual(self.swift("PUT", "/c", b"")[0], 201)
        with socket.create_connection(("127.0.0.1", self.fake.port), timeout=5) as conn:
            conn.sendall(f"PUT /object-store/v1/AUTH_p-demo-0001/c/cut HTTP/1.1\r\nHost: x\r\n"
                         f"X-Auth-Token: {self.token()}\r\nContent-Length: 100\r\n\r\n{{\"half\":".encode())
        time.sleep(0.3)  # the handler has seen the hang-up by now (nothing to wait for: it logs nothing)
        self.assertEqual(self.fake.requests(service="object-store", path_regex="/c/cut$"), [])
        self.assertEqual(self.fake.swift_objects("c"), {})
        self.assertEqual(self.fake.swift_put_count("c", "cut"), 0)
        self.assertEqual(self.swift("PUT", "/c/cut", b'{"whole":1}', {"If-None-Match": "*"})[0], 201)


class SwiftOwnPortTest(FakeTestCase):
    """swift_own_port: Swift on a listener of its own, which swift_down()/swift_up() close and reopen."""

    config = dict(FAST, swift_own_port=True)

    def own(self, method, path, body=None, headers=None):
        url = f"http://127.0.0.1:{self.fake.swift_port}/v1/AUTH_p-demo-0001" + path
        return call(method, url, body, dict(headers or {}, **{"X-Auth-Token": self.token()}))

    def test_catalog_points_every_interface_at_the_own_port(self):
        self.assertIsNotNone(self.fake.swift_port)
        self.assertNotEqual(self.fake.swift_port, self.fake.port)
        self.assertEqual(self.fake.swift_url, f"http://127.0.0.1:{self.fake.swift_port}/v1")
        status, _, raw = call("POST", self.fake.auth_url + "/auth/tokens", PASSWORD_AUTH)
        catalog = {s["type"]: s for s in json.loads(raw)["token"]["catalog"]}
        swift = {e["interface"]: e["url"] for e in catalog["object-store"]["endpoints"]}
        expected = f"http://127.0.0.1:{self.fake.swift_port}/v1/AUTH_p-demo-0001"
        self.assertEqual(swift, {"public": expected, "internal": expected, "admin": expected})
        self.assertEqual({e["region_id"] for e in catalog["object-store"]["endpoints"]}, {"RegionOne"})
        # The other services stay on the main port.
        compute = [e["url"] for e in catalog["compute"]["endpoints"] if e["interface"] == "public"]
        self.assertIn(self.fake.url + "/compute/v2.1", compute)
        self.assertEqual(self.fake.catalog(), json.loads(raw)["token"]["catalog"])

    def test_swift_answers_on_its_port_only(self):
        self.assertEqual(self.own("PUT", "/events", b"")[0], 201)
        status, headers, raw = self.own("PUT", "/events/2026/a.json", b'{"a":1}',
                                        {"Content-Type": "application/json", "If-None-Match": "*"})
        self.assertEqual((status, headers["Etag"]), (201, hashlib.md5(b'{"a":1}').hexdigest()))
        self.assertEqual(self.own("PUT", "/events/2026/a.json", b'{"a":1}', {"If-None-Match": "*"})[0], 412)
        self.assertEqual(self.own("GET", "/events")[2], b"2026/a.json\n")
        self.assertEqual(self.fake.swift_objects("events"), {"2026/a.json": b'{"a":1}'})
        self.assertEqual(self.fake.swift_put_count("events", "2026/a.json"), 1)
        # The main port no longer serves Swift, under any interface prefix.
        for prefix in ("/object-store/v1", "/internal/object-store/v1"):
            status, _, _ = call("GET", f"{self.fake.url}{prefix}/AUTH_p-demo-0001/events",
                                headers={"X-Auth-Token": self.token()})
            self.assertEqual(status, 404, prefix)
        # Nor does the Swift port serve the others or the control API.
        self.assertEqual(call("GET", f"http://127.0.0.1:{self.fake.swift_port}/compute/v2.1/servers",
                              headers={"X-Auth-Token": self.token()})[0], 404)
        self.assertEqual(call("GET", f"http://127.0.0.1:{self.fake.swift_port}/_fake/state")[0], 404)
        entry = self.fake.requests(service="object-store", method="PUT", status=201)[-1]
        self.assertEqual((entry["listener"], entry["prefix"], entry["interface"], entry["region"]),
                         ("swift", "/v1", "public", "RegionOne"))
        self.assertEqual(entry["request_headers"]["If-None-Match"], "*")
        self.assertEqual(self.fake.requests(service="identity")[-1]["listener"], "main")

    def test_tokens_and_faults_apply_on_the_own_port(self):
        self.own("PUT", "/c", b"")
        self.fake.add_fault(service="object-store", status=503, times=None)
        status, headers, body = self.own("PUT", "/c/x", b"1")
        self.assertEqual((status, headers["Content-Type"]), (503, "text/html; charset=UTF-8"))
        self.assertTrue(body.startswith(b"<html><h1>Service Unavailable</h1>"))
        self.assertEqual(self.fake.swift_objects("c"), {})
        self.fake.clear_faults()
        self.assertEqual(self.own("PUT", "/c/x", b"1")[0], 201)
        self.fake.expire_tokens()
        status, headers, _ = self.own("PUT", "/c/y", b"1")
        self.assertEqual(status, 401)
        self.assertEqual(headers["WWW-Authenticate"], f'Keystone uri="{self.fake.url}/identity"')

    def test_swift_down_refuses_and_cuts_then_up_serves_the_same_port_again(self):
        self.own("PUT", "/c", b"")
        port = self.fake.swift_port
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # an open keep-alive connection
        kept.request("PUT", "/v1/AUTH_p-demo-0001/c/one", b"1", {"X-Auth-Token": self.token()})
        response = kept.getresponse()
        response.read()
        self.assertEqual(response.status, 201)
        self.assertTrue(self.fake.swift_is_up())
        self.fake.swift_down()
        self.fake.swift_down()  # idempotent
        self.assertFalse(self.fake.swift_is_up())
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            kept.request("PUT", "/v1/AUTH_p-demo-0001/c/two", b"2", {"X-Auth-Token": self.token()})
            kept.getresponse().read()
        kept.close()
        # Keystone and the control API keep working while Swift is down.
        self.assertEqual(call("POST", self.fake.auth_url + "/auth/tokens", PASSWORD_AUTH)[0], 201)
        self.assertFalse(json.loads(call("GET", self.fake.url + "/_fake/state")[2])["swift_up"])
        self.fake.swift_up()
        self.fake.swift_up()  # idempotent
        self.assertEqual(self.fake.swift_port, port)
        self.assertTrue(self.fake.swift_is_up())
        self.assertEqual(self.own("PUT", "/c/two", b"2")[0], 201)
        self.assertEqual(self.fake.swift_objects("c"), {"one": b"1", "two": b"2"})  # objects survive
        self.assertEqual(self.fake.swift_put_count("c", "two"), 1)

    def test_control_api_and_reset(self):
        port = self.fake.swift_port
        self.assertEqual(call("POST", self.fake.url + "/_fake/swift_down", b"")[0], 200)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        state = json.loads(call("GET", self.fake.url + "/_fake/state")[2])
        self.assertEqual((state["swift_port"], state["swift_up"], state["swift_url"]),
                         (port, False, f"http://127.0.0.1:{port}/v1"))
        status, _, raw = call("POST", self.fake.url + "/_fake/swift_up", b"")
        self.assertEqual((status, json.loads(raw)), (200, {"swift_up": True}))
        self.assertEqual(self.own("PUT", "/c", b"")[0], 201)
        self.fake.swift_down()
        self.fake.reset()  # back to the initial state: Swift listening, no containers, no tokens
        self._token = None
        self.assertTrue(self.fake.swift_is_up())
        self.assertEqual(self.fake.swift_containers(), [])
        self.assertEqual(self.own("GET", "/c")[0], 404)

    def test_stop_closes_the_swift_port(self):
        port = self.fake.swift_port
        self.fake.stop()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def test_one_port_layout_is_the_default(self):
        with FakeOpenStack(FAST) as fake:
            self.assertIsNone(fake.swift_port)
            self.assertEqual(fake.swift_url, fake.url + "/object-store/v1")
            with self.assertRaises(RuntimeError):
                fake.swift_down()
            self.assertEqual(call("POST", fake.url + "/_fake/swift_down", b"")[0], 409)
        with self.assertRaises(ValueError):
            FakeOpenStack({"swift_own_prot": True})
        with self.assertRaises(ValueError):
            self.fake.configure(swift_own_port=False)  # a listener key, not a runtime setting


class DesignateTest(FakeTestCase):
    """Contract §4."""

    def setUp(self):
        super().setUp()
        self.zone = self.fake.zone_id("example.org.")
        self.base = f"/v2/zones/{self.zone}/recordsets"

    def test_zone_listing_filters_and_pagination(self):
        body = self.dns_json("GET", "/v2/zones?name=example.org.")
        self.assertEqual([z["name"] for z in body["zones"]], ["example.org."])
        self.assertEqual(body["metadata"], {"total_count": 1})
        self.assertEqual(body["zones"][0]["id"], "a86dba58-0043-4cc6-a1bb-69d5e86f3ca3")
        wildcard = self.dns_json("GET", "/v2/zones?name=*.example.org.")
        self.assertEqual([z["name"] for z in wildcard["zones"]], ["sub.example.org."])
        status, _, raw = self.dns("GET", "/v2/zones?colour=red")
        error = json.loads(raw)
        self.assertEqual((status, error["code"], error["type"], error["message"]),
                         (400, 400, "bad_request", "Invalid filters colour"))
        self.assertTrue(error["request_id"].startswith("req-"))
        first = self.dns_json("GET", "/v2/zones?limit=1")
        self.assertEqual((len(first["zones"]), first["metadata"]["total_count"]), (1, 2))
        next_url = first["links"]["next"]
        self.assertIn("marker=" + first["zones"][0]["id"], next_url)
        status, _, raw = call("GET", next_url, headers={"X-Auth-Token": self.token()})
        second = json.loads(raw)
        self.assertEqual([z["name"] for z in second["zones"]], ["sub.example.org."])
        self.assertNotIn("next", self.dns_json("GET", "/v2/zones")["links"])
        status, _, raw = self.dns("GET", "/v2/zones/7f2d1c44-2f2e-4b0b-8a4e-aaaaaaaaaaaa")
        self.assertEqual((status, json.loads(raw)["type"], json.loads(raw)["message"]),
                         (404, "zone_not_found", "Could not find Zone"))

    def test_create_pending_then_active_and_errors(self):
        status, headers, raw = self.dns("POST", self.base, {"name": "www.example.org.", "type": "A", "ttl": 3600,
                                                            "records": ["10.1.0.2"], "description": "optional"})
        created = json.loads(raw)
        self.assertEqual((status, created["status"], created["action"], created["version"]), (202, "PENDING",
                                                                                                 "CREATE", 1))
        self.assertEqual(headers["Location"], created["links"]["self"])
        self.assertEqual((created["zone_name"], created["records"], created["updated_at"]),
                         ("example.org.", ["10.1.0.2"], None))
        self.assertRegex(created["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
        time.sleep(0.4)
        self.assertEqual(self.dns_json("GET", f"{self.base}/{created['id']}")["status"], "ACTIVE")
        status, _, raw = self.dns("POST", self.base, {"name": "www.example.org.", "type": "A", "records": ["10.1.0.3"]})
        self.assertEqual((status, json.loads(raw)["type"], json.loads(raw)["message"]),
                         (409, "duplicate_recordset", "Duplicate RecordSet"))
        status, _, raw = self.dns("POST", self.base, {"name": "www.example.org", "type": "A", "records": ["10.1.0.3"]})
        error = json.loads(raw)
        self.assertEqual((status, error["type"]), (400, "invalid_object"))
        self.assertIn("does not end with a dot", error["errors"]["errors"][0]["message"])
        status, _, raw = self.dns("POST", self.base, {"name": "www.example.com.", "type": "A", "records": ["10.1.0.3"]})
        self.assertEqual((status, json.loads(raw)["type"], json.loads(raw)["message"]),
                         (400, "invalid_recordset_location", "RecordSet is not contained within it's parent zone"))
        status, _, raw = self.dns("POST", self.base, {"name": "a.sub.example.org.", "type": "A",
                                                      "records": ["10.1.0.3"]})
        self.assertEqual((status, json.loads(raw)["type"]), (400, "invalid_recordset_location"))
        self.assertEqual(self.dns("POST", self.base, {"name": "v.example.org.", "type": "A",
                                                      "records": ["10.1.0.300"]})[0], 400)

    def test_update_filters_and_cross_zone_listing(self):
        created = self.dns_json("POST", self.base, {"name": "app.example.org.", "type": "A", "records": ["10.0.0.1"]},
                                expect=202)
        updated = self.dns_json("PUT", f"{self.base}/{created['id']}", {"records": ["10.0.0.1", "10.0.0.2"],
                                                                        "ttl": None}, expect=202)
        self.assertEqual((updated["status"], updated["action"], updated["version"], updated["records"]),
                         ("PENDING", "UPDATE", 2, ["10.0.0.1", "10.0.0.2"]))
        self.assertIsNotNone(updated["updated_at"])
        status, _, raw = self.dns("PUT", f"{self.base}/{created['id']}", {"name": "other.example.org."})
        self.assertEqual((status, json.loads(raw)["type"]), (400, "invalid_object"))
        deadline = time.monotonic() + 3
        while self.dns_json("GET", f"{self.base}/{created['id']}")["status"] != "ACTIVE":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        found = self.dns_json("GET", f"{self.base}?name=app.example.org.&type=A")["recordsets"]
        self.assertEqual([r["id"] for r in found], [created["id"]])
        self.assertEqual(self.dns_json("GET", f"{self.base}?data=10.0.0.2")["metadata"]["total_count"], 1)
        everywhere = self.dns_json("GET", "/v2/recordsets?type=A")["recordsets"]
        self.assertEqual([r["name"] for r in everywhere], ["app.example.org."])
        status, _, raw = self.dns("GET", f"{self.base}?zone=x")
        self.assertEqual(json.loads(raw)["message"], "Invalid filters zone")
        status, _, raw = self.dns("GET", f"{self.base}/9b2d1c44-2f2e-4b0b-8a4e-aaaaaaaaaaaa")
        self.assertEqual((status, json.loads(raw)["type"]), (404, "recordset_not_found"))
        self.assertEqual([r["name"] for r in self.fake.recordsets("example.org.")], ["app.example.org."])


class FaultTest(FakeTestCase):
    """Generic fault injection."""

    def test_503_once_then_ok(self):
        self.token()
        self.fake.add_fault(method="GET", path_regex=r"/servers$", status=503)
        status, headers, raw = self.nova("GET", "/servers")
        self.assertEqual((status, json.loads(raw)), (503, {"serviceUnavailable": {
            "code": 503, "message": "The server is currently unavailable. Please try again at a later time."}}))
        self.assertTrue(headers["X-Openstack-Request-Id"].startswith("req-"))
        self.assertEqual(self.nova("GET", "/servers")[0], 200)
        self.assertEqual([e["status"] for e in self.fake.requests(service="compute")], [503, 200])

    def test_429_with_retry_after(self):
        self.token()
        self.fake.add_fault(path_regex="/servers", status=429, retry_after=7, times=None)
        for _ in range(2):
            status, headers, raw = self.nova("GET", "/servers")
            self.assertEqual((status, headers["Retry-After"]), (429, "7"))
            self.assertEqual(json.loads(raw)["overLimit"]["retryAfter"], "7")
        self.fake.clear_faults()
        self.assertEqual(self.nova("GET", "/servers")[0], 200)

    def test_faults_use_each_services_error_format(self):
        self.token()
        self.fake.add_fault(service="object-store", status=503)
        status, headers, body = self.swift("GET", "/x")
        self.assertEqual((status, headers["Content-Type"]), (503, "text/html; charset=UTF-8"))
        self.assertTrue(body.startswith(b"<html><h1>Service Unavailable</h1>"))
        self.fake.add_fault(service="dns", status=503)
        error = json.loads(self.dns("GET", "/v2/zones")[2])
        self.assertEqual((error["code"], error["type"]), (503, "service_unavailable"))
        self.fake.add_fault(service="identity", status=500)
        status, _, raw = call("POST", self.fake.auth_url + "/auth/tokens", PASSWORD_AUTH)
        self.assertEqual((status, json.loads(raw)["error"]["code"]), (500, 500))

    def test_drop_and_delay(self):
        self.token()
        self.fake.add_fault(path_regex="/servers", drop=True)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
            self.nova("GET", "/servers")
        self.assertTrue(self.fake.requests(service="compute")[-1]["dropped"])
        self.fake.add_fault(path_regex="/servers", drop="reset")
        with self.assertRaises(ConnectionResetError):
            connection = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=5)
            connection.request("GET", "/compute/v2.1/servers", headers={"X-Auth-Token": self.token()})
            connection.getresponse()
        self.fake.add_fault(path_regex="/servers", delay_seconds=0.4)
        started = time.monotonic()
        self.assertEqual(self.nova("GET", "/servers")[0], 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.4)

    def test_control_api(self):
        token = self.token()
        status, _, raw = call("POST", self.fake.url + "/_fake/faults", {"path_regex": "/servers", "status": 503})
        self.assertEqual(status, 201)
        self.assertEqual(call("DELETE", self.fake.url + "/_fake/faults")[0], 200)
        self.assertEqual(self.nova("GET", "/servers")[0], 200)
        status, _, raw = call("POST", self.fake.url + "/_fake/servers", {"name": "ctl", "vm_state": "active"})
        server_id = json.loads(raw)["id"]
        self.assertEqual(json.loads(call("GET", f"{self.fake.url}/_fake/servers/{server_id}")[2])["server"]["status"],
                         "ACTIVE")
        entries = json.loads(call("GET", self.fake.url + "/_fake/requests?service=compute")[2])["requests"]
        self.assertEqual([e["status"] for e in entries], [200])
        call("POST", self.fake.url + "/_fake/expire_tokens", b"")
        self.assertEqual(call("GET", self.fake.url + "/compute/v2.1/servers", headers={"X-Auth-Token": token})[0], 401)
        self.assertEqual(call("POST", self.fake.url + "/_fake/reset", b"")[0], 200)
        self.assertEqual(self.fake.requests(), [])
        self.assertEqual(self.fake.auth_count, 0)


class StandaloneTest(unittest.TestCase):
    def test_runs_prints_url_and_stops_on_sigterm(self):
        here = os.path.dirname(os.path.abspath(__file__))
        port_file = os.path.join(here, f".port-{os.getpid()}")
        self.addCleanup(lambda: os.path.exists(port_file) and os.remove(port_file))
        process = subprocess.Popen([sys.executable, os.path.join(here, "fake_openstack.py"), "--port", "0",
                                    "--port-file", port_file], stdout=subprocess.PIPE, text=True)
        try:
            url = process.stdout.readline().strip()
            self.assertRegex(url, r"^http://127\.0\.0\.1:\d+$")
            with open(port_file) as handle:
                self.assertEqual(url.rsplit(":", 1)[1], handle.read().strip())
            status, _, _ = call("POST", url + "/identity/v3/auth/tokens", PASSWORD_AUTH)
            self.assertEqual(status, 201)
            process.send_signal(signal.SIGTERM)
            self.assertEqual(process.wait(timeout=5), 0)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()

    def test_swift_port_option(self):
        here = os.path.dirname(os.path.abspath(__file__))
        swift_port = free_port()
        process = subprocess.Popen([sys.executable, os.path.join(here, "fake_openstack.py"), "--port", "0",
                                    "--swift-port", str(swift_port)], stdout=subprocess.PIPE, text=True)
        try:
            url = process.stdout.readline().strip()
            state = json.loads(call("GET", url + "/_fake/state")[2])
            self.assertEqual((state["swift_port"], state["swift_url"]),
                             (swift_port, f"http://127.0.0.1:{swift_port}/v1"))
            process.send_signal(signal.SIGTERM)
            self.assertEqual(process.wait(timeout=5), 0)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()


if __name__ == "__main__":
    unittest.main()
