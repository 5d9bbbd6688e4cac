"""Issue 17: GET /api/events/stream, Server-Sent Events for dashboards (README "Event stream").

Through the real binary with a simulated backend: a wrong or missing token gets 401; an admin's
stream receives the live events (id = seq, event = action, data = the JSON record) and heartbeat
comments; a reconnect with Last-Event-ID replays exactly what came after it; past
events.stream_max_clients the next stream gets 503.
"""
import http.client
import json
import re
import time
import unittest

from harness import ADMIN, CONTROL_TOKEN, Unshelver, free_port, sim_config
from prom_check import check


class Stream:
    """An open GET /api/events/stream, read line by line."""

    def __init__(self, port, headers):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.connection.request("GET", "/api/events/stream", headers={"Accept": "text/event-stream", **headers})
        self.response = self.connection.getresponse()
        self.status = self.response.status

    def events(self, count, heartbeats=None):
        """The next `count` events as (id, event, record); heartbeat comments are counted."""
        found, fields = [], {}
        while len(found) < count:
            line = self.response.readline().decode()
            if not line:
                raise AssertionError(f"the stream ended after {found}")
            line = line.rstrip("\n")
            if line.startswith(":"):
                if heartbeats is not None:
                    heartbeats.append(line)
            elif line == "":
                if fields:
                    found.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
            else:
                name, _, value = line.partition(": ")
                fields[name] = value
        return found

    def close(self):
        # The response holds its own reference to the socket: both must let go for it to close.
        self.response.close()
        self.connection.close()


class EventStreamTest(unittest.TestCase):
    def setUp(self):
        port = free_port()
        self.daemon = Unshelver(port=port)
        with open(self.daemon.config_path, "w") as config:
            config.write(sim_config(self.daemon.workdir + "/state", port, idle_seconds=60, extra_top="""
events:
  stream_max_clients: 2
  stream_heartbeat_seconds: 0.2
"""))
        self.daemon.start()
        self.streams = []

    def tearDown(self):
        for stream in self.streams:
            stream.close()
        self.daemon.stop()

    def open(self, headers):
        stream = Stream(self.daemon.port, headers)
        self.streams.append(stream)
        return stream

    def test_token_gate(self):
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            stream = self.open(headers)
            self.assertEqual(stream.status, 401, headers)
            stream.close()
        # The control session cookie opens it too, as it opens the other admin APIs.
        visitor, form_token = self.daemon.visitor_form("/control/login")
        code, headers, body = self.daemon.request(
            "POST", "/control/login",
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html",
             "Cookie": f"unshelver_visitor={visitor}"},
            f"form_token={form_token}&token={CONTROL_TOKEN}".encode())
        self.assertEqual(code, 303, body)
        session = re.search(r"unshelver_session=([^;]+)", headers.get("Set-Cookie", ""))
        self.assertIsNotNone(session, headers)
        stream = self.open({"Cookie": f"unshelver_session={session.group(1)}"})
        self.assertEqual(stream.status, 200)

    def test_live_events_heartbeats_resume_and_the_bound(self):
        # The first look at the cloud is recorded after the start: not part of what follows.
        self.daemon.wait_until(lambda: self.daemon.status()["events"]["last_seq"] >= 1, 5, "observed_asleep")
        first = self.open(ADMIN)
        self.assertEqual(first.status, 200)
        self.assertTrue(first.response.getheader("Content-Type").startswith("text/event-stream"))
        self.assertIsNone(first.response.getheader("Content-Length"))
        self.assertIn(self.daemon.wake()[0], (200, 202))
        heartbeats = []
        live = first.events(3, heartbeats)
        self.assertEqual([event for _, event, _ in live],
                         ["unshelve_requested", "cloud_running", "unshelve_complete"])
        for seq, event, record in live:
            self.assertEqual(record["seq"], seq)
            self.assertEqual(record["action"], event)
            self.assertEqual(record["backend"], "gpu")
        self.assertEqual([seq for seq, _, _ in live], list(range(live[0][0], live[0][0] + 3)))
        time.sleep(0.5)
        self.assertIn(self.daemon.shelve()[0], (200, 202))
        more = first.events(2, heartbeats)
        self.assertTrue(heartbeats, "heartbeat comments while the stream was quiet")

        # A second stream resumes after the first event: the rest comes again, in order.
        second = self.open({**ADMIN, "Last-Event-ID": str(live[0][0])})
        self.assertEqual(second.status, 200)
        replayed = second.events(4)
        self.assertEqual([seq for seq, _, _ in replayed], [seq for seq, _, _ in live[1:] + more])

        # Two are open: the third is refused.
        third = self.open(ADMIN)
        self.assertEqual(third.status, 503)
        self.assertIsNotNone(third.response.getheader("Retry-After"))
        third.close()

        # One leaves: a new one fits again.
        first.close()
        self.daemon.wait_until(lambda: self.open(ADMIN).status == 200, 5, "a stream after one left")

        bad = self.open({**ADMIN, "Last-Event-ID": "not-a-number"})
        self.assertIn(bad.status, (400, 503))

        streams = self.daemon.status()["events"]["streams"]
        self.assertGreaterEqual(streams["refused_full"], 1)
        self.assertEqual(streams["max_clients"], 2)
        code, _, metrics = self.daemon.request("GET", "/metrics", admin=True)
        self.assertEqual(code, 200)
        self.assertIn("unshelver_event_streams_open ", metrics.decode())
        self.assertEqual(check(metrics.decode()), [])


if __name__ == "__main__":
    unittest.main()
