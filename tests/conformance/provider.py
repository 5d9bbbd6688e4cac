"""The adapter interface of the conformance suite: what one cloud provider must give the suite.

An adapter (tests/conformance/provider_<name>.py, a subclass of Provider named `Adapter`) owns the
cloud side of one test: it starts that provider's fake cloud (or configures the simulated one),
writes the provider's part of Unshelver's config, counts the wake and sleep actions that reached
the cloud, and injects the faults the scenarios need. The suite (suite.py) owns the rest: the
daemon (tests/integration/harness.py's Unshelver), the generic part of the config, the scenarios
and every assertion. README.md beside this file explains the whole.

Words used below:
- "the VM": the one machine the backend named "gpu" stands for.
- "asleep": the VM is in the provider's configured sleep state (shelved, stopped, suspended...) and
  its backend refuses connections. "awake": the VM runs and its backend answers HTTP 200 on the
  address Unshelver is told (by the config or by the cloud's own observation).
- "a wake action" / "a sleep action": one request that reached the cloud and that the cloud
  ACCEPTED (it started, or would have started, a transition): Nova's unshelve (or os-start) answered
  202, Exoscale's start operation created, the command provider's wake command run to exit 0. A
  request the cloud refused (401, 5xx, a connection refused) is not an action. The count is taken
  at the cloud (the fake's own log or the simulated cloud's record), never from Unshelver's words.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Timings:
    """The timing hints for one test, in seconds. The adapter makes its cloud follow them as
    closely as it can (a fake's step durations, the sim's phase durations); they are small so the
    whole suite stays well under a minute per provider."""

    # How long the cloud takes for a wake (from the accepted action until the VM runs) and for a
    # sleep. The restart scenario asks for a longer wake so that the daemon can be restarted in the
    # middle of it.
    wake_seconds: float = 0.3
    sleep_seconds: float = 0.3
    # The longest any one API call of the provider may take before Unshelver gives up on it (the
    # provider's own timeout keys, e.g. openstack.api_timeout_seconds), kept small so that an
    # unreachable cloud is noticed within a second or two.
    api_timeout_seconds: float = 1.0


class ScenarioUnsupported(Exception):
    """Raised by a fault hook that this provider's cloud cannot produce. The suite turns it into a
    test failure unless the scenario is listed in the adapter's `unsupported` with a reason."""


class Provider:
    """The base class of every adapter. One instance serves one test: the suite creates it, calls
    start(), builds and starts the daemon, runs the scenario, stops the daemon and calls stop()."""

    # The provider's name, as in `conformance.<name>` and `buttons[].provider`.
    name = "base"

    # Scenarios this provider truly cannot support, each with the reason: {"scenario name": "why"}.
    # The scenario names are those of suite.SCENARIOS ("credentials_refused", ...). A listed
    # scenario is reported as skipped with that reason; every other scenario must pass. Aim for an
    # empty dict.
    unsupported = {}

    # A secret the adapter put where Unshelver reads its credentials (the config file, the secrets
    # file or the daemon's environment): the suite checks, after every scenario, that it never
    # appears in the daemon's output, in any file of its state directory (state files, the event
    # log) or in /api/status. At least 16 characters, unlikely to occur by chance.
    marker_secret = "conformance-marker-do-not-print-0f3c9a"

    # What the visible reason must contain when the cloud refuses the credentials, and when it
    # cannot be reached (a case-insensitive substring of /api/status's error or observe_error for
    # the backend). None: any non-empty reason will do.
    credentials_refused_text = None
    unreachable_text = None

    def start(self, workdir, awake, timings):
        """Starts this test's cloud: a fake on 127.0.0.1 (free ports only), or whatever the
        provider needs, in `workdir` (a fresh temporary directory, also the daemon's: keep your
        files beside the config, never in workdir/state, which the suite scans for the marker).
        `awake`: the VM runs and its backend answers HTTP when the daemon starts, else it is asleep.
        `timings`: a Timings. Returns nothing; raise to fail the test."""
        raise NotImplementedError

    def stop(self):
        """Stops everything start() started (the suite calls it even when the test failed, after
        the daemon stopped). Must not raise if start() failed half way."""
        raise NotImplementedError

    def backend_yaml(self):
        """The provider's lines of the button "gpu" as YAML text, without indentation, e.g.
        "provider: sim\\nsim:\\n  wake_seconds: 0.3\\n". The suite indents them under `- id: gpu`
        and adds id, label, idle_timeout_seconds, unshelve_timeout_minutes and health itself; do not
        repeat those keys."""
        raise NotImplementedError

    def top_yaml(self):
        """Top-level sections the provider needs (e.g. `openstack:` with its auth), as YAML text
        without indentation, or "". The suite writes app, listen, state_dir, log_level and buttons
        itself."""
        return ""

    def env(self):
        """Variables to add to the daemon's environment (credentials kept out of the config, the
        PATH of a fake CLI...): a dict, {} for none."""
        return {}

    def wake_actions(self):
        """The wake actions that reached the cloud since start() (see "a wake action" above), also
        across restarts of the daemon."""
        raise NotImplementedError

    def sleep_actions(self):
        """The sleep actions that reached the cloud since start(), as wake_actions()."""
        raise NotImplementedError

    def vm_awake(self):
        """True when the cloud itself shows the VM running (not starting, not stopped), for the
        suite to check that Unshelver's view matches the cloud's."""
        raise NotImplementedError

    # Fault hooks. Each changes the cloud while the daemon runs; the suite calls them between its
    # own steps. A hook that cannot be done raises ScenarioUnsupported.

    def fail_next_wake(self, message):
        """The next wake action is accepted, then the transition fails and the VM is asleep again,
        with `message` as the cloud's reason (like Nova's "No valid host was found"). Later wakes
        succeed. Returns the text that the visible reason must contain (normally `message`; a
        provider whose cloud words its failures itself returns its own words)."""
        raise ScenarioUnsupported("fail_next_wake")

    def stall_next_wake(self):
        """The next wake action is accepted and its transition never finishes: the cloud shows the
        VM starting for as long as the test runs. Later wakes are not affected."""
        raise ScenarioUnsupported("stall_next_wake")

    def set_reachable(self, reachable):
        """False: every API call from now on fails as a cloud that is down fails (connections
        refused or reset, timeouts or 5xx; the provider's choice), without reaching the VM. True:
        the cloud answers again, the VM as it was."""
        raise ScenarioUnsupported("set_reachable")

    def set_credentials_accepted(self, accepted):
        """False: the cloud refuses Unshelver's credentials from now on (401/403, or the command's
        own "not authorized" failure), also for credentials it had accepted before (tokens already
        issued expire). True: it accepts them again."""
        raise ScenarioUnsupported("set_credentials_accepted")
