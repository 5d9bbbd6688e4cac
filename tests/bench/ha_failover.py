#!/usr/bin/env python3
"""Failover time of two controllers on etcd with the default lease (10 s; issue 19's target: 15 s).

    python3 tests/bench/ha_failover.py build/unshelver [--rounds N]

A private 3-member etcd, the fake OpenStack and two controllers (tests/integration/ha_rig.py).
Per round, with the backend asleep: kill -9 the leader and at once ask the follower for a wake
(the public button); measured from the kill to the fake's unshelve action and to "ready" at the
follower. The baseline, in the same run: the same wake at the leader with no failover. Prints
median and max; never fails (scripts/bench runs every tests/bench/*.py).

Python standard library only.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    os.environ["UNSHELVER_BIN"] = os.path.abspath(args.binary)
    os.environ.setdefault("UNSHELVER_SOURCE_DIR", os.path.join(HERE, "..", ".."))
    from ha_rig import HaRig  # after UNSHELVER_BIN is set: the harness reads it at import

    if not os.access("/usr/bin/etcd", os.X_OK):
        print("ha_failover: /usr/bin/etcd is not installed (scripts/setup test-tools); skipped")
        return 0
    # The default lease (lease_ttl_seconds unset) and poll (1 s); a short idle timeout so that
    # each round starts asleep again soon.
    rig = HaRig(2, lease_ttl=None, poll=1, idle_seconds=3)
    failover_action, failover_ready, baseline_action, baseline_ready, took_over = [], [], [], [], []
    try:
        rig.leader(30)
        rig.wait_state("asleep", 30)
        for number in range(args.rounds):
            # Baseline: a wake at the leader, nobody dies.
            leader = rig.leader(40)
            before = len(rig.actions("unshelve"))
            started = time.monotonic()
            leader.public_wake()
            rig.wait(lambda: len(rig.actions("unshelve")) > before, 30, "the unshelve", interval=0.02)
            baseline_action.append(time.monotonic() - started)
            rig.wait(lambda: leader.state() == "ready", 30, "ready", interval=0.02)
            baseline_ready.append(time.monotonic() - started)
            rig.wait_state("asleep", 60)
            # Failover: kill -9 the leader, wake at the follower at once.
            leader = rig.leader(40)
            follower = rig.followers(leader)[0]
            before = len(rig.actions("unshelve"))
            killed = time.monotonic()
            leader.kill9()
            follower.public_wake()
            rig.wait(follower.leading, 60, "the follower leads", interval=0.02)
            took_over.append(time.monotonic() - killed)
            rig.wait(lambda: len(rig.actions("unshelve")) > before, 60, "the unshelve", interval=0.02)
            failover_action.append(time.monotonic() - killed)
            rig.wait(lambda: follower.state() == "ready", 60, "ready", interval=0.02)
            failover_ready.append(time.monotonic() - killed)
            print(f"round {number}: lead after {took_over[-1]:.2f} s, unshelve after {failover_action[-1]:.2f} s, "
                  f"ready after {failover_ready[-1]:.2f} s (baseline {baseline_action[-1]:.2f} / "
                  f"{baseline_ready[-1]:.2f} s)", flush=True)
            rig.wait_state("asleep", 60, everywhere=False)
            leader.start()
            rig.wait_state("asleep", 60)
    except AssertionError as error:
        print(f"ha_failover: stopped early: {str(error)[:1500]}")
    finally:
        rig.close()

    def line(name, values):
        if not values:
            return f"{name:<34} no rounds"
        return f"{name:<34} median {statistics.median(values):6.2f} s   max {max(values):6.2f} s   ({len(values)} rounds)"

    print("HA failover, default lease (10 s), 2 controllers, 3-member etcd; target <= 15 s")
    print(line("kill -9 -> follower leads", took_over))
    print(line("kill -9 -> unshelve at the cloud", failover_action))
    print(line("kill -9 -> ready at the follower", failover_ready))
    print(line("baseline wake -> unshelve", baseline_action))
    print(line("baseline wake -> ready", baseline_ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
