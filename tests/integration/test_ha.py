"""Two (or three) controllers sharing one backend through etcd (issue 19): the real binary, a private
3-member etcd (/usr/bin/etcd) and the fake OpenStack, through ha_rig.py.

Focused tests first (lease 5 s, poll 0.2 s): one leader, wishes and held requests at the follower,
the follower's activity, kill -9, SIGSTOP past the lease, etcd paused, SIGTERM. Then the chaos
test: seeded rounds of wake, held requests and idle shelve while a random fault hits at a random
moment, each checked for exactly one unshelve and one shelve at the fake, every event once, held
requests answered and the backend converged.

    cd tests/integration && UNSHELVER_BIN=../../build/unshelver python3 -m unittest -v test_ha
    UNSHELVER_HA_CHAOS_ROUNDS=30 UNSHELVER_HA_CHAOS_SEED=1234 ... python3 -m unittest -v test_ha.HaChaosTest
"""
import collections
import os
import random
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from etcd_cluster import ETCD, EtcdCluster  # noqa: E402
from ha_rig import BACKEND, HaRig, HeldRequest  # noqa: E402
from harness import require_peer  # noqa: E402

HAVE_ETCD = ETCD if os.access(ETCD, os.X_OK) else None
TTL = 5  # lease_ttl_seconds of the focused tests


def count(records, action):
    return sum(1 for record in records if record.get("action") == action)


@require_peer(HAVE_ETCD, "etcd")
class HaTestCase(unittest.TestCase):
    """One etcd cluster for the class; a fresh rig (own prefix, fake cloud, controllers) per test."""

    @classmethod
    def setUpClass(cls):
        cls.etcd_dir = tempfile.mkdtemp(prefix="unshelver-ha-etcd-")
        cls.cluster = EtcdCluster(3, cls.etcd_dir)
        cls.cluster.wait_healthy(30)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def rig(self, controllers=2, **options):
        self.cluster.resume_all()
        rig = HaRig(controllers, cluster=self.cluster, **options)
        self.addCleanup(rig.close)
        return rig

    def wake_to_ready(self, rig, at=None):
        leader = rig.leader()
        code, _, body = (at or leader).wake()
        self.assertIn(code, (200, 202), body)
        rig.wait_state("ready", 20)
        return leader


class HaFocusedTest(HaTestCase):
    def test_one_leader_and_the_other_follows_showing_it(self):
        rig = self.rig()
        leader = rig.leader()
        follower = rig.followers(leader)[0]
        rig.wait(lambda: all(sorted(c.status()["ha"]["controllers"]) == ["c0", "c1"] for c in rig.live()), 5,
                 "both controllers see both instance keys")
        status = follower.status()["ha"]
        self.assertEqual(status["backends"][BACKEND]["leader"], leader.name)
        self.assertFalse(status["backends"][BACKEND]["leading"])
        self.assertNotIn("fencing_token", status["backends"][BACKEND])
        self.assertTrue(status["etcd"]["reachable"])
        self.assertTrue(status["lease"]["held"])
        self.assertEqual(status["lease"]["ttl_seconds"], TTL)
        self.assertGreater(leader.status()["ha"]["backends"][BACKEND]["fencing_token"], 0)
        self.assertEqual({k: follower.backend()["ha"][k] for k in ("leader", "leading")},
                         {"leader": leader.name, "leading": False})
        # Both show the same (mirrored) state; the first look at the cloud was the leader's.
        self.assertEqual(rig.states(), {"c0": "asleep", "c1": "asleep"})
        events, duplicates = rig.events()
        self.assertEqual(duplicates, [])
        leading = [e for e in events if e["action"] == "ha_leading"]
        self.assertEqual([e["controller"] for e in leading], [leader.name])

    def test_a_wake_at_the_follower_is_carried_out_once_by_the_leader(self):
        rig = self.rig()
        leader = rig.leader()
        follower = rig.followers(leader)[0]
        code, _, body = follower.public_wake()
        self.assertLess(code, 400, body)
        rig.wait_state("ready", 20)
        time.sleep(1)  # anything doubled would show by now
        self.assertEqual(rig.action_names(), ["unshelve"])
        events, duplicates = rig.events()
        self.assertEqual(duplicates, [])
        requested = [e for e in events if e["action"] == "unshelve_requested"]
        self.assertEqual(len(requested), 1, requested)
        self.assertEqual(requested[0]["controller"], leader.name, "the leader carries the wish out and records it")
        self.assertEqual(follower.status()["ha"]["wishes"]["sent"], 1)
        self.assertEqual(leader.status()["ha"]["wishes"]["applied"], 1)

    def test_a_request_held_at_the_follower_is_released_when_ready(self):
        rig = self.rig()
        leader = rig.leader()
        follower = rig.followers(leader)[0]
        started = time.monotonic()
        status, headers, body = follower.gate(timeout=30)
        self.assertEqual(status, 204, body)
        self.assertLess(time.monotonic() - started, 15)
        self.assertEqual(follower.state(), "ready")
        self.assertEqual(rig.action_names(), ["unshelve"])
        self.assertEqual(follower.backend()["gate"]["released"], 1)

    def test_activity_seen_only_by_the_follower_keeps_the_backend_awake(self):
        rig = self.rig(idle_seconds=3)
        leader = self.wake_to_ready(rig)
        follower = rig.followers(leader)[0]
        # 9 s of use through the follower's Caddy only: three idle timeouts.
        until = time.monotonic() + 9
        while time.monotonic() < until:
            follower.write_access_line()
            time.sleep(0.5)
            self.assertEqual(leader.state(), "ready", rig.describe())
        self.assertEqual(rig.action_names(), ["unshelve"])
        self.assertGreater(leader.backend()["last_activity"], "")
        # Then nothing: the leader shelves once, an idle timeout after the follower's last line.
        rig.wait_state("asleep", 20)
        self.assertEqual(rig.action_names(), ["unshelve", "shelve"])

    def test_kill9_of_the_leader_the_follower_takes_over_without_a_fresh_idle_window(self):
        rig = self.rig(idle_seconds=14)
        leader = self.wake_to_ready(rig)
        follower = rig.followers(leader)[0]
        rig.wait(lambda: follower.backend()["idle_deadline"] == leader.backend()["idle_deadline"], 5,
                 "the follower mirrors the idle deadline")
        deadline = leader.backend()["idle_deadline"]
        killed = time.monotonic()
        leader.kill9()
        rig.wait(follower.leading, TTL + 5, "the follower leads")
        took = time.monotonic() - killed
        self.assertLess(took, TTL + 4)
        # The new leader looks at the cloud and probes the guest again (booting, then ready) before
        # it trusts the snapshot; neither restarts the idle window.
        follower.daemon.wait_for_state("ready", 5)
        self.assertEqual(follower.backend()["idle_deadline"], deadline, "the idle window goes on, it does not restart")
        self.assertEqual(rig.action_names(), ["unshelve"], "no second wake")
        follower.daemon.wait_for_state("asleep", 20)
        self.assertEqual(rig.action_names(), ["unshelve", "shelve"])
        events, duplicates = rig.events()
        self.assertEqual(duplicates, [])
        self.assertEqual(count(events, "unshelve_requested"), 1)
        self.assertEqual(count(events, "shelve_requested"), 1)

    def test_a_leader_stopped_past_its_lease_steps_down_and_sends_nothing(self):
        rig = self.rig(idle_seconds=5)
        leader = self.wake_to_ready(rig)
        follower = rig.followers(leader)[0]
        leader.sigstop()
        # Past the lease, and past the idle deadline: the stale leader wakes up wanting to shelve.
        rig.wait(follower.leading, TTL + 5, "the follower leads")
        time.sleep(4)
        leader.sigcont()
        rig.wait(lambda: not leader.leading() and leader.shown_leader() == follower.name, 5,
                 "the old leader steps down and shows the new one")
        rig.wait_state("asleep", 20)
        time.sleep(1.5)
        self.assertEqual(rig.action_names(), ["unshelve", "shelve"], "one shelve, by the new leader")
        shelves = rig.actions("shelve")
        self.assertEqual(len(shelves), 1)
        events, duplicates = rig.events()
        self.assertEqual(duplicates, [])
        self.assertEqual(count(events, "shelve_requested"), 1, [e for e in events if e["action"] == "shelve_requested"])
        stepped = [e for e in events if e["action"] == "ha_stepped_down" and e["controller"] == leader.name]
        self.assertTrue(stepped, events)
        # The pages say who leads now.
        self.assertEqual({k: leader.backend()["ha"][k] for k in ("leader", "leading")},
                         {"leader": follower.name, "leading": False})
        code, _, page = leader.daemon.request("GET", "/control", {"Accept": "text/html"}, admin=True)
        self.assertEqual(code, 200)
        self.assertIn(follower.name.encode(), page)

    def test_etcd_paused_nothing_acts_then_it_converges_without_a_double_action(self):
        rig = self.rig()
        leader = rig.leader()
        follower = rig.followers(leader)[0]
        self.cluster.pause_all()
        try:
            rig.wait(lambda: all(not c.status()["ha"]["etcd"]["reachable"] for c in rig.live()), 10,
                     "every controller says etcd does not answer")
            self.assertIn("etcd does not answer", follower.status()["ha"]["summary"])
            # Wishes made meanwhile: at the follower (cannot reach the leader) and at the leader.
            follower.public_wake()
            leader.wake()
            time.sleep(TTL + 1)
            self.assertEqual(rig.action_names(), [], "no cloud action by anyone while etcd is away")
            self.assertFalse(leader.status()["ha"]["lease"]["held"])
        finally:
            self.cluster.resume_all()
        rig.wait(lambda: all(c.status()["ha"]["etcd"]["reachable"] for c in rig.live()), 15, "etcd answers again")
        rig.leader(20)
        # The leader's own wish was recorded before etcd went away or is carried out now; either way
        # the backend ends in one state with at most one action, never two.
        time.sleep(3)
        names = rig.action_names()
        self.assertLessEqual(names.count("unshelve"), 1, names)
        self.assertEqual(names.count("shelve"), 0, names)
        if names:
            rig.wait_state("ready", 20)

    def test_sigterm_of_the_leader_hands_over_within_a_poll(self):
        rig = self.rig()
        leader = rig.leader()
        follower = rig.followers(leader)[0]
        started = time.monotonic()
        leader.terminate()
        rig.wait(follower.leading, 5, "the follower leads", interval=0.02)
        took = time.monotonic() - started
        # The lease is revoked at SIGTERM: one poll (0.2 s), a campaign, and SIGTERM's own shutdown.
        self.assertLess(took, 2.0)
        print(f"\n  SIGTERM hand-over took {took:.2f} s", file=sys.stderr)


class Round:
    """One chaos round's plan, drawn from the seeded generator."""

    FAULTS = ("kill9_leader", "sigstop_leader", "kill_etcd_member", "etcd_down_20s", "none")

    def __init__(self, rng, number):
        self.number = number
        self.fault = rng.choice(self.FAULTS[:-1]) if number > 0 or rng.random() < 0.9 else "none"
        self.moment = round(rng.uniform(0, 6), 2)  # seconds after the wake
        self.public_wake = rng.random() < 0.5
        self.held = rng.randint(1, 3)
        self.member = rng.randrange(3)


@require_peer(HAVE_ETCD, "etcd")
class HaChaosTest(unittest.TestCase):
    IDLE = 4
    STOP_SECONDS = TTL + 3  # SIGSTOP for longer than the lease
    ETCD_DOWN_SECONDS = 20

    def test_chaos_rounds(self):
        rounds = int(os.environ.get("UNSHELVER_HA_CHAOS_ROUNDS", "3"))
        seed = int(os.environ.get("UNSHELVER_HA_CHAOS_SEED") or random.SystemRandom().randrange(1 << 31))
        print(f"\nHA chaos: seed {seed}, {rounds} rounds (replay: UNSHELVER_HA_CHAOS_SEED={seed})", flush=True)
        rng = random.Random(seed)
        # The hold ends before etcd comes back from 20 s away, so those rounds meet the gate's
        # documented answer to a hold that ran out (README "The gate", gate_expired in
        # web/gate_routes.cc: 503 + Retry-After + x-should-retry: true), which SDKs retry.
        rig = HaRig(3, lease_ttl=TTL, idle_seconds=self.IDLE, hold_max_seconds=10)
        self.addCleanup(rig.close)
        rig.leader(30)
        rig.wait_state("asleep", 20)
        failures = []
        faults = collections.Counter()
        for number in range(rounds):
            plan = Round(rng, number)
            faults[plan.fault] += 1
            try:
                result = self.round(rig, rng, plan)
                print(f"  seed {seed} round {number}: fault {plan.fault} at +{plan.moment:.2f} s, "
                      f"wake by {'button' if plan.public_wake else 'gate'}, {plan.held} held: {result}", flush=True)
            except AssertionError as error:
                failures.append((number, plan.fault, str(error)))
                print(f"  seed {seed} round {number}: fault {plan.fault} at +{plan.moment:.2f} s: FAILED: "
                      f"{str(error)[:2000]}", flush=True)
                self.restore(rig)
                try:
                    rig.wait_state("asleep", 60)
                except AssertionError:
                    break  # the rig cannot recover: stop here
        print(f"HA chaos: seed {seed}, {rounds} rounds, faults {dict(faults)}, {len(failures)} failed", flush=True)
        self.assertEqual(failures, [], f"seed {seed}")

    def restore(self, rig):
        for controller in rig.controllers:
            if controller.stopped:
                controller.sigcont()
            if not controller.alive():
                controller.start()
        rig.cluster.resume_all()
        for i, process in enumerate(rig.cluster.processes):
            if process is None or process.poll() is not None:
                rig.cluster.restart(i)
        rig.cluster.wait_healthy(30)
        rig.leader(30)

    def round(self, rig, rng, plan):
        before_ids = {e["id"] for e in rig.events()[0]}
        before_actions = len(rig.actions())
        leader = rig.leader(30)
        rig.wait_state("asleep", 30)
        woken = time.monotonic()
        if plan.public_wake:
            source = rng.choice(rig.live())
            code, _, body = source.public_wake()
            assert code < 400, (code, body[:300])
        held = rig.held(rng, plan.held, deadline=120, hold_timeout=60)
        # The fault, at its moment.
        time.sleep(max(0.0, woken + plan.moment - time.monotonic()))
        victim = rig.leaders()[0] if rig.leaders() else leader
        fault_at = time.monotonic()
        if plan.fault == "kill9_leader":
            victim.kill9()
        elif plan.fault == "sigstop_leader":
            victim.sigstop()
            time.sleep(self.STOP_SECONDS)
            victim.sigcont()
        elif plan.fault == "kill_etcd_member":
            rig.cluster.kill(plan.member)
        elif plan.fault == "etcd_down_20s":
            rig.cluster.pause_all()
            time.sleep(self.ETCD_DOWN_SECONDS)
            rig.cluster.resume_all()
        for request in held:
            request.join(130)
        # Every held request got through, after at most the documented refusal or a controller
        # that did not answer (Caddy asks the next one).
        for request in held:
            assert request.passed, f"a held request did not get through: {request.attempts}\n{rig.describe()}"
            assert not request.failures(), f"a held request got an undocumented answer: {request.attempts}"
        refusals = sum(len(r.refusals()) for r in held)
        rig.wait_state("asleep", 90, everywhere=False)
        if plan.fault in ("kill9_leader", "kill_etcd_member"):
            self.restore(rig)
        rig.wait_state("asleep", 30)
        time.sleep(1)  # a late double action would show by now
        actions = [a.get("action") for a in rig.actions()[before_actions:]]
        events, duplicates = rig.events()
        new = [e for e in events if e["id"] not in before_ids]
        assert duplicates == [], f"an event id twice: {duplicates}"
        keyed = collections.Counter((e.get("backend"), e.get("action"), e.get("ts")) for e in new)
        assert all(n == 1 for n in keyed.values()), f"a record twice: {[k for k, n in keyed.items() if n > 1]}"
        # Exactly one cloud action per decided wake or shelve. Normally one of each; a request held
        # at a controller frozen by SIGSTOP is answered only after SIGCONT, when the backend may
        # already have been shelved, and then rightly wakes it again: a second decided cycle.
        cycles = count(new, "unshelve_requested")
        decided = [(e["controller"], e["action"]) for e in new if e["action"] in ("unshelve_requested", "shelve_requested")]
        assert actions == ["unshelve", "shelve"] * cycles and cycles >= 1, \
            f"cloud actions {actions} for decisions {decided}\n{rig.describe()}"
        # One decision per cloud action: a leader decides (and records) a wake or shelve only right
        # after etcd confirmed its lead, so one cut off from etcd records none that it cannot carry
        # out (seed 143197586, rounds 22 and 24, found this before the confirmation existed).
        assert count(new, "shelve_requested") == cycles and count(new, "unshelve_requested") == cycles, \
            f"decisions {decided} for {cycles} cycle(s)"
        # A second cycle is right only when a held request came late: one held at a controller whose
        # view was stale (frozen by SIGSTOP, or cut off from etcd while the leader carried on), or
        # re-sent after its controller died, can arrive after the idle rule shelved the backend (the
        # rig's idle timeout, 4 s, is shorter than a takeover or an outage) and wakes it again. Each
        # such wake is still one decision and one action (checked above).
        late = sum(1 for request in held if len(request.attempts) > 1)
        stale_views = plan.fault in ("sigstop_leader", "etcd_down_20s")
        assert cycles == 1 or stale_views or cycles - 1 <= late, \
            f"{cycles} cycles, but no held request came late: {decided}; held {[r.attempts for r in held]}"
        server = rig.fake.server(rig.server_id)
        assert server["status"] == "SHELVED_OFFLOADED", server["status"]
        assert set(rig.states().values()) == {"asleep"}, rig.states()
        return (f"actions {actions} ({cycles} decided cycle(s)), fault +{fault_at - woken:.2f} s, held ok "
                f"({refusals} documented refusals), events {collections.Counter(e['action'] for e in new).most_common(6)}")


if __name__ == "__main__":
    unittest.main()
