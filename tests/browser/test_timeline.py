"""Browser tests of the control page's timelines (timeline_test.mjs) in headless Chromium: the
daemon, the foreign origin and the driver as test_browser.py starts them. Screenshots go to
$UNSHELVER_ARTIFACTS/browser/timeline/.

    cd tests/browser && UNSHELVER_BIN=../../build/unshelver python3 -m unittest -v test_timeline
"""
import datetime
import json
import os
import unittest

import test_browser

DRIVER = os.path.join(test_browser.HERE, "timeline_test.mjs")
SEEDED_WAKES = 6  # timeline_test.mjs expects as many


def iso(at):
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seeded_log():
    """The event log of the six days before the daemon starts: a wake a day (60 s, 90 s, ...),
    three hours awake each, and a failed wake, which is not counted."""
    now = datetime.datetime.now(datetime.timezone.utc)
    records = []

    def add(at, action, from_state, to_state):
        seq = len(records) + 1
        records.append({"seq": seq, "id": f"seeded-{seq:06d}", "ts": iso(at), "backend": "gpu",
                        "action": action, "actor": "seed", "from": from_state, "to": to_state, "detail": ""})

    add(now - datetime.timedelta(days=6, hours=12), "observed_asleep", "unknown", "asleep")
    for day in range(SEEDED_WAKES):
        requested = now - datetime.timedelta(days=SEEDED_WAKES - day, hours=-2)
        add(requested, "unshelve_requested", "asleep", "waking")
        add(requested + datetime.timedelta(seconds=10), "cloud_running", "waking", "booting")
        add(requested + datetime.timedelta(seconds=60 + 30 * day), "unshelve_complete", "booting", "ready")
        add(requested + datetime.timedelta(hours=3), "shelve_requested", "ready", "sleeping")
        add(requested + datetime.timedelta(hours=3, seconds=30), "shelve_complete", "sleeping", "asleep")
    failed = now - datetime.timedelta(hours=10)
    add(failed, "unshelve_requested", "asleep", "waking")
    add(failed + datetime.timedelta(seconds=5), "workflow_failed", "waking", "error")
    add(failed + datetime.timedelta(minutes=20), "observed_asleep", "unknown", "asleep")
    return "".join(json.dumps(record) + "\n" for record in records)


class TimelineTest(test_browser.BrowserDriverCase):
    ARTIFACTS_SUBDIR = "timeline"

    def prepare_state(self, state_dir):
        # The daemon seeds its wake history from the log's end at start-up.
        os.makedirs(state_dir, exist_ok=True)
        with open(os.path.join(state_dir, "events.jsonl"), "w") as log:
            log.write(seeded_log())

    def test_timeline_in_headless_chromium(self):
        self.run_driver(DRIVER)


if __name__ == "__main__":
    unittest.main()
