#!/usr/bin/env python3
"""A scripted cloud CLI for the command provider's tests (Python stdlib only).

    fake_cloud_cli.py wake|sleep|observe|init [key=value ...]

It keeps to Unshelver's command contract (README "Any cloud through commands"): wake and sleep
request a change and exit 0 (accepted), 75 (busy) or another status with a message on stderr;
observe prints one JSON object {"state", "address", "message"}. The VM lives in a JSON file named
by the FAKE_CLOUD_STATE environment variable, which the test (or `init`) writes and reads:

    state            stopped | starting | running | stopping | error
    since            when the current transition began (Unix time)
    start_seconds    how long `starting` lasts before `running` (default 1)
    stop_seconds     how long `stopping` lasts before `stopped` (default 1)
    address          what observe prints as the address while the VM runs ("127.0.0.1:PORT")
    stuck            true: a transition that began never finishes
    wake_fails_with  a message: the next wake is accepted, then the VM goes to `error` with it
                     (once: the message is cleared when it is used)
    require_env      {NAME: value}: each command checks its environment first and exits 1 with
                     "AuthFailure: credentials refused" when one is missing or wrong (the
                     values are never printed; so a test passes a secret marker)
    faults           {"wake"|"sleep"|"observe": {"mode": M, "message": TEXT, "times": N}}: the
                     next N calls (all, without `times`) misbehave instead of acting:
                       hang     sleeps for an hour (the caller's timeout must kill it)
                       crash    kills itself with SIGKILL
                       garbage  prints an HTML error page on stdout and exits 0
                       several  (observe) prints two JSON objects
                       flood    prints a megabyte on stdout and exits 0
                       fail     prints TEXT on stderr and exits 1
                       busy     prints TEXT on stderr and exits 75
                       leak     prints the required secrets on stderr and exits 1 (to show
                                that Unshelver scrubs them from what it quotes)
    calls            counted by the fake: {"wake": n, "sleep": n, "observe": n} for every call,
                     "wake_accepted" / "sleep_accepted" for the wakes and sleeps that exited 0
                     (the conformance suite's "actions"), and "starts" / "stops" for the calls
                     that changed the VM's state, so a test can show that one wake sent exactly
                     one action

`init key=value ...` writes a fresh stopped VM (values are JSON when they parse as JSON).
Every read-modify-write holds an exclusive lock on FILE.lock, so a test may read while a command runs.
"""
import fcntl
import json
import os
import signal
import sys
import time

BUSY = 75


def load(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return fresh()


def fresh():
    return {"state": "stopped", "since": time.time(), "start_seconds": 1, "stop_seconds": 1,
            "address": "", "stuck": False, "wake_fails_with": "", "require_env": {}, "faults": {},
            "calls": {"wake": 0, "sleep": 0, "observe": 0, "starts": 0, "stops": 0}}


def save(path, vm):
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(vm, handle, indent=1)
    os.replace(temporary, path)


def advance(vm, now):
    """Finishes a transition whose time has come."""
    if vm.get("stuck"):
        return
    elapsed = now - vm.get("since", now)
    if vm["state"] == "starting" and elapsed >= vm.get("start_seconds", 1):
        if vm.get("wake_fails_with"):
            vm["state"] = "error"
            vm["message"] = vm.pop("wake_fails_with")
        else:
            vm["state"] = "running"
        vm["since"] = now
    elif vm["state"] == "stopping" and elapsed >= vm.get("stop_seconds", 1):
        vm["state"] = "stopped"
        vm["since"] = now


def take_fault(vm, command):
    faults = vm.setdefault("faults", {})
    fault = faults.get(command)
    if not fault:
        return None
    if "times" in fault:
        fault["times"] -= 1
        if fault["times"] <= 0:
            del faults[command]
    return fault


def misbehave(fault, vm):
    """Acts out a fault; returns the exit status, or does not return at all."""
    mode = fault.get("mode")
    message = fault.get("message", "")
    if mode == "hang":
        time.sleep(3600)
        return 0
    if mode == "crash":
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "garbage":
        print("<html><body><h1>502 Bad Gateway</h1></body></html>")
        return 0
    if mode == "several":
        print(json.dumps({"state": "running"}))
        print(json.dumps({"state": "stopped"}))
        return 0
    if mode == "flood":
        sys.stdout.write("x" * (1 << 20))
        return 0
    if mode == "fail":
        print(message or "An error occurred (InvalidInstanceID.NotFound)", file=sys.stderr)
        return 1
    if mode == "busy":
        print(message or "the cloud is busy, try again", file=sys.stderr)
        return BUSY
    if mode == "leak":
        print("debug: credentials " + " ".join(os.environ.get(name, "") for name in vm.get("require_env", {})),
              file=sys.stderr)
        return 1
    print(f"fake_cloud_cli: unknown fault mode {mode!r}", file=sys.stderr)
    return 2


def credentials_refused(vm):
    for name, value in vm.get("require_env", {}).items():
        if os.environ.get(name) != value:
            return True
    return False


def act(vm, command, now):
    """The command's effect on the VM; returns (exit status, stdout text, stderr text)."""
    state = vm["state"]
    if command == "observe":
        answer = {"state": state}
        if state == "running" and vm.get("address"):
            answer["address"] = vm["address"]
        if state == "error" and vm.get("message"):
            answer["message"] = vm["message"]
        return 0, json.dumps(answer) + "\n", ""
    if command == "wake":
        if state in ("running", "starting"):
            return 0, "", ""
        if state == "stopping":
            return BUSY, "", "IncorrectInstanceState: the instance is stopping\n"
        vm["state"] = "starting"
        vm["since"] = now
        vm.pop("message", None)
        vm["calls"]["starts"] += 1
        return 0, "", ""
    if state in ("stopped", "stopping"):
        return 0, "", ""
    if state == "starting":
        return BUSY, "", "IncorrectInstanceState: the instance is starting\n"
    vm["state"] = "stopping"
    vm["since"] = now
    vm["calls"]["stops"] += 1
    return 0, "", ""


def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv):
    if len(argv) < 2 or argv[1] not in ("wake", "sleep", "observe", "init"):
        print("usage: fake_cloud_cli.py wake|sleep|observe|init [key=value ...]", file=sys.stderr)
        return 2
    path = os.environ.get("FAKE_CLOUD_STATE")
    if not path:
        print("fake_cloud_cli: FAKE_CLOUD_STATE is not set", file=sys.stderr)
        return 2
    command = argv[1]
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if command == "init":
            vm = fresh()
            for pair in argv[2:]:
                key, _, value = pair.partition("=")
                vm[key] = parse_value(value)
            save(path, vm)
            return 0
        vm = load(path)
        now = time.time()
        vm.setdefault("calls", {}).setdefault(command, 0)
        vm["calls"][command] += 1
        advance(vm, now)
        fault = take_fault(vm, command)
        if fault is None and credentials_refused(vm):
            save(path, vm)
            print("AuthFailure: credentials refused", file=sys.stderr)
            return 1
        if fault is None:
            status, output, errors = act(vm, command, now)
            if status == 0 and command != "observe":
                calls = vm["calls"]
                calls[command + "_accepted"] = calls.get(command + "_accepted", 0) + 1
        save(path, vm)
    # The lock is released before misbehaving, so that a hanging call blocks nobody.
    if fault is not None:
        return misbehave(fault, vm)
    sys.stdout.write(output)
    sys.stderr.write(errors)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
