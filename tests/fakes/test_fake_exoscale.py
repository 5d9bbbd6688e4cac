"""The fake Exoscale's own tests: it must keep to the contract (api-contracts.md §5) that the
integration and conformance tests rely on. Standard library only; a few seconds."""
import http.client
import json
import os
import socket
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_exoscale import FakeExoscale, sign  # noqa: E402

VECTOR_KEY = "EXOxxxxxxxxxxxxxxxxxxxxxxxx"
VECTOR_SECRET = "X" * 43
VECTOR_EXPIRES = 3376684800
VECTOR_INSTANCE = "85664334-0fd5-47bd-94a1-b4f40b1d2eb7"
FAST = {"start_seconds": 0.2, "stop_seconds": 0.2, "boot_seconds": 0.1, "reboot_seconds": 0.2}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, fake, key=None, secret=None):
        self.fake = fake
        self.key = key or fake.api_key
        self.secret = secret or fake.api_secret

    def call(self, method, path, body=b"", authorization=None, content_type="application/json", query=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=5)
        target = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        headers = {"Authorization": authorization or sign(self.key, self.secret, method, path, body, query)}
        if body:
            headers["Content-Type"] = content_type
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        status, text = response.status, response.read()
        connection.close()
        return status, json.loads(text) if text else None


class SignatureTest(unittest.TestCase):
    def setUp(self):
        self.fake = FakeExoscale({"api_key": VECTOR_KEY, "api_secret": VECTOR_SECRET, "timings": FAST}).start()
        self.addCleanup(self.fake.stop)
        self.fake.add_instance("gpu", id=VECTOR_INSTANCE, state="stopped")
        self.client = Client(self.fake)

    def header(self, signature, signed_args=""):
        return (f"EXO2-HMAC-SHA256 credential={VECTOR_KEY}" + (f",signed-query-args={signed_args}" if signed_args else "")
                + f",expires={VECTOR_EXPIRES},signature={signature}")

    def test_accepts_the_contracts_four_test_vectors(self):
        status, _ = self.client.call("GET", "/v2/zone", authorization=self.header(
            "Ntbq/p0HVmA3Zg1HHY+Lq1vjFGi7HeMrrgXDS5jRNlY="))
        self.assertEqual(status, 200)
        status, _ = self.client.call("GET", "/v2/zone", query={"k1": "v1", "k2": "v2"}, authorization=self.header(
            "iqOBz13+44L5j0uJclE8hmUhQQcvtCSoPEOXYK6liqY=", "k1;k2"))
        self.assertEqual(status, 200)
        status, operation = self.client.call("PUT", f"/v2/instance/{VECTOR_INSTANCE}:start", b"{}",
                                             authorization=self.header("NLBX/U+Iulls9loQV6mBTxHnNDVXXVvEevLz8X+qYNU="))
        self.assertEqual(status, 200, operation)
        self.assertEqual(operation["state"], "pending")
        self.fake.wait_for_instance(VECTOR_INSTANCE, lambda i: i["state"] == "running")
        status, _ = self.client.call("PUT", f"/v2/instance/{VECTOR_INSTANCE}:stop",
                                     authorization=self.header("lsoIOlegdWdI0sIiSZrygQCnUxe2+x5NbIXI1a4j+8s="))
        self.assertEqual(status, 200)
        self.assertEqual(self.fake.action_counts(VECTOR_INSTANCE), {"start": 1, "stop": 1, "reboot": 0})

    def test_sign_helper_reproduces_the_vectors(self):
        self.assertEqual(sign(VECTOR_KEY, VECTOR_SECRET, "GET", "/v2/zone", expires=VECTOR_EXPIRES),
                         self.header("Ntbq/p0HVmA3Zg1HHY+Lq1vjFGi7HeMrrgXDS5jRNlY="))

    def test_refuses_wrong_malformed_missing_and_expired_signatures(self):
        good = sign(VECTOR_KEY, VECTOR_SECRET, "GET", "/v2/instance")
        refused = [
            None,  # replaced by "no header" below
            good.replace("signature=", "signature=A"),
            sign(VECTOR_KEY, "Y" * 43, "GET", "/v2/instance"),  # wrong secret
            sign("EXOotherkey0000000000000000", VECTOR_SECRET, "GET", "/v2/instance"),  # unknown key
            sign(VECTOR_KEY, VECTOR_SECRET, "GET", "/v2/zone"),  # signed for another path
            sign(VECTOR_KEY, VECTOR_SECRET, "GET", "/v2/instance", expires=int(time.time()) - 5),  # expired
            good.replace("EXO2-HMAC-SHA256", "AWS4-HMAC-SHA256"),
            good.replace(",expires=", ",expires=x"),
            "EXO2-HMAC-SHA256 " + ",".join(reversed(good.split(" ", 1)[1].split(","))),  # parts out of order
        ]
        connection = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=5)
        connection.request("GET", "/v2/instance")
        response = connection.getresponse()
        self.assertEqual(response.status, 403)
        self.assertEqual(json.loads(response.read())["message"], "Invalid request signature")
        connection.close()
        for header in refused[1:]:
            status, body = self.client.call("GET", "/v2/instance", authorization=header)
            self.assertEqual(status, 403, header)
            self.assertIn("signature", body["message"])
        self.assertEqual(self.client.call("GET", "/v2/instance", authorization=good)[0], 200)

    def test_the_body_is_signed(self):
        header = sign(VECTOR_KEY, VECTOR_SECRET, "PUT", f"/v2/instance/{VECTOR_INSTANCE}:start", b"{}")
        status, _ = self.client.call("PUT", f"/v2/instance/{VECTOR_INSTANCE}:start",
                                     b'{"rescue-profile":"netboot"}', authorization=header)
        self.assertEqual(status, 403)
        self.assertEqual(self.fake.action_counts(VECTOR_INSTANCE)["start"], 0)

    def test_credentials_refused_on_demand(self):
        self.fake.configure(refuse_credentials=True)
        self.assertEqual(self.client.call("GET", "/v2/instance")[0], 403)
        self.fake.configure(refuse_credentials=False)
        self.assertEqual(self.client.call("GET", "/v2/instance")[0], 200)

    def test_expiry_is_checked_against_the_injected_clock(self):
        fake = FakeExoscale({"api_key": VECTOR_KEY, "api_secret": VECTOR_SECRET}, clock=lambda: VECTOR_EXPIRES + 1)
        fake.start()
        self.addCleanup(fake.stop)
        status, body = Client(fake).call("GET", "/v2/zone", authorization=self.header(
            "Ntbq/p0HVmA3Zg1HHY+Lq1vjFGi7HeMrrgXDS5jRNlY="))
        self.assertEqual((status, body["message"]), (403, "Request signature expired"))


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.fake = FakeExoscale({"timings": FAST}).start()
        self.addCleanup(self.fake.stop)
        self.guest_port = free_port()
        self.id = self.fake.add_instance("gpu", public_ip="127.0.0.1", serve_http_port=self.guest_port)
        self.client = Client(self.fake)

    def guest_answers(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.guest_port}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def test_start_runs_through_starting_to_running_and_opens_the_guest(self):
        status, instance = self.client.call("GET", f"/v2/instance/{self.id}")
        self.assertEqual((status, instance["state"], instance["public-ip"]), (200, "stopped", "127.0.0.1"))
        self.assertFalse(self.guest_answers())
        status, operation = self.client.call("PUT", f"/v2/instance/{self.id}:start", b"{}")
        self.assertEqual((status, operation["state"]), (200, "pending"))
        self.assertEqual(operation["reference"], {"id": self.id, "link": f"/v2/instance/{self.id}",
                                                  "command": "get-instance"})
        self.assertEqual(self.client.call("GET", f"/v2/instance/{self.id}")[1]["state"], "starting")
        self.fake.wait_for_instance(self.id, lambda i: i["_fake"]["guest_listening"])
        self.assertTrue(self.guest_answers())
        self.assertEqual(self.client.call("GET", f"/v2/operation/{operation['id']}")[1]["state"], "success")
        listed = self.client.call("GET", "/v2/instance")[1]["instances"]
        self.assertEqual([(i["id"], i["state"]) for i in listed], [(self.id, "running")])

        status, operation = self.client.call("PUT", f"/v2/instance/{self.id}:stop")
        self.assertEqual(status, 200)
        self.assertEqual(self.client.call("GET", f"/v2/instance/{self.id}")[1]["state"], "stopping")
        self.assertFalse(self.guest_answers())
        self.fake.wait_for_instance(self.id, lambda i: i["state"] == "stopped")
        self.assertEqual(self.client.call("GET", f"/v2/operation/{operation['id']}")[1]["state"], "success")

    def test_start_requires_a_json_body_and_a_fitting_state(self):
        self.assertEqual(self.client.call("PUT", f"/v2/instance/{self.id}:start")[0], 400)
        self.assertEqual(self.client.call("PUT", f"/v2/instance/{self.id}:start", b"{}", content_type="text/plain")[0], 415)
        self.assertEqual(self.client.call("PUT", f"/v2/instance/{self.id}:stop")[0], 409)
        self.assertEqual(self.client.call("PUT", f"/v2/instance/{self.id}:reboot")[0], 409)
        self.assertEqual(self.fake.action_counts(self.id), {"start": 0, "stop": 0, "reboot": 0})
        self.assertEqual(self.client.call("GET", "/v2/instance/no-such-id")[0], 404)
        self.assertEqual(self.client.call("GET", "/v2/operation/no-such-id")[0], 404)

    def test_a_failed_start_reports_reason_and_message(self):
        self.fake.fail_start(reason="unavailable", message="no GPU left in ch-gva-2")
        status, operation = self.client.call("PUT", f"/v2/instance/{self.id}:start", b"{}")
        self.assertEqual((status, operation["state"]), (200, "pending"))
        self.fake.wait_for_instance(self.id, lambda i: i["state"] == "stopped" and not i["_fake"]["transition"])
        final = self.client.call("GET", f"/v2/operation/{operation['id']}")[1]
        self.assertEqual((final["state"], final["reason"], final["message"]),
                         ("failure", "unavailable", "no GPU left in ch-gva-2"))
        # One-shot: the next start succeeds.
        self.client.call("PUT", f"/v2/instance/{self.id}:start", b"{}")
        self.fake.wait_for_instance(self.id, lambda i: i["state"] == "running")

    def test_a_stop_that_never_finishes(self):
        self.fake.set_instance_state(self.id, "running")
        self.fake.hang("stop")
        status, operation = self.client.call("PUT", f"/v2/instance/{self.id}:stop")
        self.assertEqual(status, 200)
        time.sleep(FAST["stop_seconds"] * 3)
        self.assertEqual(self.fake.instance(self.id)["state"], "stopping")
        self.assertEqual(self.client.call("GET", f"/v2/operation/{operation['id']}")[1]["state"], "pending")

    def test_reboot(self):
        self.fake.set_instance_state(self.id, "running")
        status, _ = self.client.call("PUT", f"/v2/instance/{self.id}:reboot")
        self.assertEqual(status, 200)
        self.fake.wait_for_instance(self.id, lambda i: i["state"] == "running")
        self.assertEqual(self.fake.action_counts(self.id)["reboot"], 1)

    def test_injected_faults(self):
        self.fake.add_fault(method="GET", path_regex=r"/v2/instance/", status=503, times=1)
        self.fake.add_fault(method="GET", path_regex=r"/v2/instance/", status=429, retry_after=2, times=1)
        status, body = self.client.call("GET", f"/v2/instance/{self.id}")
        self.assertEqual((status, body["message"]), (503, "Endpoint template temporarily unavailable"))
        self.assertEqual(self.client.call("GET", f"/v2/instance/{self.id}")[0], 429)
        self.assertEqual(self.client.call("GET", f"/v2/instance/{self.id}")[0], 200)
        self.fake.add_fault(path_regex=r"/v2/instance$", drop=True, times=1)
        with self.assertRaises((http.client.HTTPException, OSError)):
            self.client.call("GET", "/v2/instance")
        self.fake.add_fault(path_regex=r"/v2/instance$", delay_seconds=0.3, status=500, times=1)
        started = time.monotonic()
        self.assertEqual(self.client.call("GET", "/v2/instance")[0], 500)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        self.assertEqual([f["hits"] for f in self.fake.faults()], [1, 1, 1, 1])

    def test_zones_in_the_path(self):
        other = self.fake.add_instance("gpu", zone="de-fra-1")
        path = "/de-fra-1/v2/instance"
        listed = self.client.call("GET", path)[1]["instances"]
        self.assertEqual([i["id"] for i in listed], [other])
        self.assertEqual(self.client.call("GET", f"/de-fra-1/v2/instance/{self.id}")[0], 404)
        self.assertEqual(self.fake.requests(path_regex="de-fra-1")[0]["zone"], "de-fra-1")

    def test_command_line_prints_its_url_and_serves(self):
        import subprocess
        process = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "fake_exoscale.py"),
                                    "--port", "0"], stdout=subprocess.PIPE, text=True)
        try:
            url = process.stdout.readline().strip()
            self.assertTrue(url.startswith("http://127.0.0.1:"), url)
            with urllib.request.urlopen(url + "/_fake/state", timeout=5) as response:
                self.assertEqual(json.loads(response.read())["instances"], [])
        finally:
            process.terminate()
            self.assertEqual(process.wait(timeout=5), 0)
            process.stdout.close()


if __name__ == "__main__":
    unittest.main()
