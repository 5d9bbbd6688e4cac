"""The conformance adapter for the simulated cloud (`provider: sim`, sidecar/backend/sim_provider.h).

The sim runs inside the daemon, so its "cloud side" is two files beside the config:
- the VM file (`sim.persist: true` keeps it in state_dir/sim-gpu.json): the VM's phase, when its
  transition ends, and the wake and sleep actions it accepted. The VM survives a restart of the
  daemon as a real cloud's VM does, and the counts are read from there, never from the log.
- the faults file (`sim.faults_file`), which the sim reads at every call: the hooks below write it.

The sim has no credentials of its own: the marker secret is the daemon's session key
(UNSHELVER_SECRET_KEY, a secret it reads and uses). Refused credentials are the sim answering 401.
"""
import json
import os

from provider import Provider


class Adapter(Provider):
    name = "sim"
    credentials_refused_text = "credentials"
    unreachable_text = "cannot reach"

    def start(self, workdir, awake, timings):
        self.workdir = workdir
        self.timings = timings
        self.awake = awake
        self.faults_path = os.path.join(workdir, "sim-faults.json")
        self.vm_path = os.path.join(workdir, "state", "sim-gpu.json")
        self.faults = {}
        self.write_faults()

    def stop(self):
        pass

    def backend_yaml(self):
        return (f"provider: sim\nsim:\n"
                f"  wake_seconds: {self.timings.wake_seconds}\n"
                f"  boot_seconds: 0.1\n"
                f"  sleep_seconds: {self.timings.sleep_seconds}\n"
                f"  start_awake: {'true' if self.awake else 'false'}\n"
                f"  persist: true\n"
                f"  faults_file: {self.faults_path}\n")

    def env(self):
        return {"UNSHELVER_SECRET_KEY": self.marker_secret}

    def vm(self):
        try:
            with open(self.vm_path) as file:
                return json.load(file)
        except FileNotFoundError:
            return {}

    def wake_actions(self):
        return self.vm().get("wake_actions", 0)

    def sleep_actions(self):
        return self.vm().get("sleep_actions", 0)

    def vm_awake(self):
        vm = self.vm()
        return vm.get("phase", "running" if self.awake else "stopped") == "running"

    def write_faults(self):
        # The sim counts fail_wakes and stall_wakes from the moment the file's content changes;
        # a sequence number makes every write a change.
        self.faults["sequence"] = self.faults.get("sequence", 0) + 1
        temporary = self.faults_path + ".tmp"
        with open(temporary, "w") as file:
            json.dump(self.faults, file)
        os.replace(temporary, self.faults_path)

    def fail_next_wake(self, message):
        self.faults.update(fail_wakes=1, failure_message=message)
        self.faults.pop("stall_wakes", None)
        self.write_faults()
        return message

    def stall_next_wake(self):
        self.faults.update(stall_wakes=1)
        self.faults.pop("fail_wakes", None)
        self.write_faults()

    def set_reachable(self, reachable):
        self.faults["unreachable"] = not reachable
        self.write_faults()

    def set_credentials_accepted(self, accepted):
        self.faults["refuse_credentials"] = not accepted
        self.write_faults()
