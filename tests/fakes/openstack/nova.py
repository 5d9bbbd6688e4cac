"""Nova (contract §2): servers, microversions, actions and their task-state timelines, instance
actions, and the guest OS whose HTTP port opens once a server has booted.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import ipaddress
import json
import re
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Callable

from .wire import (
    ApiError, Request, Response, TrackingServer, iso_micro, iso_z, json_response, read_request_body,
    request_id, write_response,
)
from .keystone import DEFAULT_USER, Token

if TYPE_CHECKING:
    from . import FakeOpenStack

DEFAULT_STEP_SECONDS = 0.2
MIN_MICROVERSION = (2, 1)
# contract §2: "The maximum at this snapshot is 2.104".
DEFAULT_MAX_MICROVERSION = "2.104"
COMPUTE_HOST = "fake-compute-1"
CONDUCTOR_HOST = "fake-conductor-1"
NO_VALID_HOST_MESSAGE = "No valid host was found. There are not enough hosts available."
DEFAULT_SPAWN_ERROR_MESSAGE = "Unexpected error while unshelving the instance (fake spawn_error)"

# Nova's power_state integers (contract §2).
POWER_NOSTATE, POWER_RUNNING, POWER_PAUSED, POWER_SHUTDOWN, POWER_CRASHED, POWER_SUSPENDED = 0, 1, 3, 4, 6, 7
DEFAULT_POWER = {"active": POWER_RUNNING, "stopped": POWER_SHUTDOWN, "shelved": POWER_SHUTDOWN,
                 "shelved_offloaded": POWER_NOSTATE, "suspended": POWER_SUSPENDED, "paused": POWER_PAUSED,
                 "error": POWER_NOSTATE, "building": POWER_NOSTATE, "rescued": POWER_RUNNING}

# nova/api/openstack/common.py::_STATE_MAP (contract §2): status from (vm_state, task_state).
_REBOOT = {"rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
           "rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT",
           "reboot_started_hard": "HARD_REBOOT"}
_RESIZE = {"resize_prep": "RESIZE", "resize_migrating": "RESIZE", "resize_migrated": "RESIZE",
           "resize_finish": "RESIZE"}
_REBUILD = {"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD"}
STATE_MAP: dict[str, dict[str | None, str]] = {
    "active": {"default": "ACTIVE", **_REBOOT, "updating_password": "PASSWORD", **_REBUILD,
               "migrating": "MIGRATING", **_RESIZE},
    "building": {"default": "BUILD"},
    "stopped": {"default": "SHUTOFF", **_RESIZE, **_REBUILD},
    "resized": {"default": "VERIFY_RESIZE", "resize_reverting": "REVERT_RESIZE"},
    "paused": {"default": "PAUSED", "migrating": "MIGRATING"},
    "suspended": {"default": "SUSPENDED"},
    "rescued": {"default": "RESCUE"},
    "error": {"default": "ERROR", **_REBUILD},
    "deleted": {"default": "DELETED"},
    "soft-delete": {"default": "SOFT_DELETED"},
    "shelved": {"default": "SHELVED"},
    "shelved_offloaded": {"default": "SHELVED_OFFLOADED"},
}
STATUS_TO_VM_STATE = {"ACTIVE": "active", "SHUTOFF": "stopped", "SHELVED": "shelved",
                      "SHELVED_OFFLOADED": "shelved_offloaded", "SUSPENDED": "suspended",
                      "PAUSED": "paused", "ERROR": "error", "BUILD": "building", "RESCUE": "rescued"}


def nova_status(vm_state: str, task_state: str | None) -> str:
    """Nova's status_from_state(): unknown vm_states give UNKNOWN, as upstream does."""
    task_map = STATE_MAP.get(vm_state, {"default": "UNKNOWN"})
    return task_map.get(task_state, task_map["default"])


# Nova fault names by status (contract §2, nova/api/openstack/wsgi.py::Fault).
NOVA_FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
                    405: "badMethod", 409: "conflictingRequest", 413: "overLimit", 429: "overLimit",
                    501: "notImplemented", 503: "serviceUnavailable"}
# webob's explanations, which Nova uses as the fault message when nothing more specific exists.
WEBOB_EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed or otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method specified is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    413: "The body of your request was too large for this server.",
    429: "The client has sent too many requests in a given amount of time.",
    500: "The server has either erred or is incapable of performing the requested operation.",
    501: "The server has not implemented the requested method.",
    502: "Bad gateway.",
    503: "The server is currently unavailable. Please try again at a later time.",
    504: "The gateway has timed out.",
}


def parse_version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def version_text(version: tuple[int, int]) -> str:
    return "%d.%d" % version


def nova_fault(status: int, message: str | None = None, retry_after: Any = None,
               headers: list[tuple[str, str]] | None = None) -> Response:
    """{"<faultName>": {"code", "message"}} (contract §2, wsgi.py::Fault); overLimit adds retryAfter."""
    name = NOVA_FAULT_NAMES.get(status, "computeFault")
    inner: dict[str, Any] = {"code": status, "message": message or WEBOB_EXPLANATIONS.get(status, "")}
    extra = list(headers or [])
    if retry_after is not None:
        extra.append(("Retry-After", str(retry_after)))
        if status in (413, 429):
            inner["retryAfter"] = str(retry_after)
    return json_response(status, {name: inner}, extra)


@dataclasses.dataclass
class ActionEvent:
    event: str
    start_time: float
    host: str
    finish_time: float | None = None
    result: str | None = None
    traceback: str | None = None
    details: str | None = None

    def finish(self, at: float, result: str = "Success", details: str | None = None,
               traceback_text: str | None = None) -> None:
        self.finish_time, self.result, self.details, self.traceback = at, result, details, traceback_text


@dataclasses.dataclass
class InstanceAction:
    action: str
    request_id: str
    user_id: str
    project_id: str
    start_time: float
    updated_at: float
    message: str | None = None
    events: list[ActionEvent] = dataclasses.field(default_factory=list)

    def begin_event(self, name: str, at: float, host: str) -> ActionEvent:
        event = ActionEvent(name, at, host)
        self.events.append(event)
        self.updated_at = at
        return event

    def finish_event(self, event: ActionEvent, at: float, result: str = "Success", details: str | None = None,
                     traceback_text: str | None = None) -> None:
        event.finish(at, result, details, traceback_text)
        self.updated_at = at
        if result == "Error":
            # nova's action_event_finish marks the whole action "Error" (contract addendum).
            self.message = "Error"


@dataclasses.dataclass
class Server:
    id: str
    name: str
    project_id: str
    user_id: str
    vm_state: str
    task_state: str | None
    power_state: int
    addresses: dict
    created: float
    updated: float
    launched_at: float | None = None
    fault: dict | None = None
    metadata: dict = dataclasses.field(default_factory=dict)
    image_id: str = "70a599e0-31e7-49b7-b260-868f441e862b"
    flavor: dict = dataclasses.field(default_factory=lambda: {
        "id": "gpu.small", "original_name": "gpu.small", "vcpus": 4, "ram": 16384, "disk": 40,
        "ephemeral": 0, "swap": 0, "extra_specs": {}})
    volume_backed: bool = False
    serve_http_port: int | None = None
    boot_seconds: float | None = None
    timings: dict = dataclasses.field(default_factory=dict)
    unshelve_fault: dict | None = None
    actions: list[InstanceAction] = dataclasses.field(default_factory=list)
    # Timeline: the one pending step (monotonic due time and the function to run then).
    next_at: float | None = None
    next_fn: Callable[[float], None] | None = None
    # The guest OS: running or not, and when its HTTP service comes up (monotonic).
    guest_running: bool = False
    guest_ready_at: float | None = None

    @property
    def status(self) -> str:
        return nova_status(self.vm_state, self.task_state)

    @property
    def host(self) -> str | None:
        return None if self.vm_state in ("shelved_offloaded",) else COMPUTE_HOST


class GuestHandler(BaseHTTPRequestHandler):
    """The application inside a fake VM: 200 "ok" to everything, /health included."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeGuest/1.0"
    timeout = 60

    def log_message(self, *args):
        pass

    def handle_any(self):
        try:
            read_request_body(self)
        except (ValueError, OSError):
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        fake: "FakeOpenStack" = self.server.fake
        fake.record_guest_request(self.server.server_id, self.server.server_address[1], self.command,
                                  url.path, url.query)
        write_response(self, Response(200, b"ok", [("Content-Type", "text/plain")]), self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


class GuestListener:
    """Listens on 127.0.0.1:port while the fake server's guest is up; closing refuses connections."""

    def __init__(self, fake: "FakeOpenStack", server_id: str, port: int):
        self.httpd = TrackingServer(("127.0.0.1", port), GuestHandler)
        self.httpd.fake = fake
        self.httpd.server_id = server_id
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"guest-{port}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.close_connections()
        self.thread.join(timeout=2)

# Nova server actions (contract §2 and nova/compute/api.py check_instance_state):
# body key -> (instance action name, conflict action name, allowed vm_states).
NOVA_ACTIONS = {
    "shelve": ("shelve", "shelve", ("active", "stopped", "paused", "suspended")),
    "shelveOffload": ("shelveOffload", "shelveOffload", ("shelved",)),
    "unshelve": ("unshelve", "unshelve", ("shelved", "shelved_offloaded")),
    "os-start": ("start", "start", ("stopped",)),
    "os-stop": ("stop", "stop", ("active", "rescued", "error")),
    "suspend": ("suspend", "suspend", ("active",)),
    "resume": ("resume", "resume", ("suspended",)),
    "pause": ("pause", "pause", ("active",)),
    "unpause": ("unpause", "unpause", ("paused",)),
}
# One-step actions: body key -> (task_state, final vm_state, final power_state, event, guest after).
SIMPLE_ACTIONS = {
    "os-stop": ("powering-off", "stopped", POWER_SHUTDOWN, "compute_stop_instance", "stop"),
    "os-start": ("powering-on", "active", POWER_RUNNING, "compute_start_instance", "boot"),
    "suspend": ("suspending", "suspended", POWER_SUSPENDED, "compute_suspend_instance", "stop"),
    "resume": ("resuming", "active", POWER_RUNNING, "compute_resume_instance", "resume"),
    "pause": ("pausing", "paused", POWER_PAUSED, "compute_pause_instance", "stop"),
    "unpause": ("unpausing", "active", POWER_RUNNING, "compute_unpause_instance", "resume"),
}
UNSHELVE_FAULT_KINDS = ("no_valid_host", "spawn_error", "never_finish")


class NovaMixin:
    """FakeOpenStack's nova part; it shares the fake's state and lock (see __init__.py)."""

    # ---- timelines --------------------------------------------------------------------------

    def _wall(self, mono: float) -> float:
        return time.time() - (time.monotonic() - mono)

    def _step_seconds(self, server: Server, task_state: str) -> float:
        seconds = server.timings.get(task_state, self.timings.get(task_state, self.timings.get(
            "default", DEFAULT_STEP_SECONDS)))
        return float(seconds) * self.time_scale

    def _schedule(self, server: Server, due: float | None, fn: Callable[[float], None] | None) -> None:
        server.next_at, server.next_fn = due, fn
        self._wakeup.set()

    def _enter(self, server: Server, task_state: str, at: float, then: Callable[[float], None] | None) -> None:
        """Puts the server in `task_state` at `at`; `then(end)` runs when that step's time is up
        (never, when `then` is None)."""
        server.task_state = task_state
        server.updated = self._wall(at)
        self._schedule(server, at + self._step_seconds(server, task_state) if then else None, then)

    def _advance_locked(self) -> None:
        """Applies every timeline step that is due (servers, Designate propagation)."""
        now = time.monotonic()
        for server in list(self._servers.values()):
            while server.next_fn is not None and server.next_at is not None and server.next_at <= now:
                fn, at = server.next_fn, server.next_at
                server.next_fn = server.next_at = None
                fn(at)
        for recordset in list(self._recordsets.values()):
            if recordset.status == "PENDING" and recordset.pending_until is not None and recordset.pending_until <= now:
                self._propagate_locked(recordset)

    def _next_deadline_locked(self) -> float | None:
        deadlines = [s.next_at for s in self._servers.values() if s.next_fn is not None and s.next_at is not None]
        deadlines += [s.guest_ready_at for s in self._servers.values()
                      if s.guest_running and s.serve_http_port and s.guest_ready_at is not None
                      and s.id not in self._guests and s.id not in self._guest_errors]
        deadlines += [r.pending_until for r in self._recordsets.values()
                      if r.status == "PENDING" and r.pending_until is not None]
        return min(deadlines) if deadlines else None

    def _ticker(self) -> None:
        """Applies due steps and opens/closes guest listeners even when nobody polls."""
        while not self._stopping.is_set():
            with self._lock:
                self._advance_locked()
                wanted = {s.id: s.serve_http_port for s in self._servers.values()
                          if s.serve_http_port and s.guest_running and s.guest_ready_at is not None
                          and s.guest_ready_at <= time.monotonic()}
                deadline = self._next_deadline_locked()
            self._sync_guests(wanted)
            timeout = 0.25 if deadline is None else min(0.25, max(0.0, deadline - time.monotonic()))
            self._wakeup.wait(timeout)
            self._wakeup.clear()

    def _sync_guests(self, wanted: dict[str, int]) -> None:
        for server_id in [sid for sid in self._guests if sid not in wanted]:
            self._guests[server_id].close()  # closed before guest_listening() turns false
            del self._guests[server_id]
        for server_id, port in wanted.items():
            if server_id not in self._guests and server_id not in self._guest_errors:
                try:
                    self._guests[server_id] = GuestListener(self, server_id, port)
                except OSError as error:
                    self._guest_errors[server_id] = f"cannot listen on 127.0.0.1:{port}: {error}"
                    print(f"fake_openstack: {self._guest_errors[server_id]}", file=sys.stderr)
        for server_id in [sid for sid in self._guest_errors if sid not in wanted]:
            del self._guest_errors[server_id]

    def guest_listening(self, server_id: str) -> bool:
        """True while the server's guest HTTP listener is open."""
        return server_id in self._guests

    # ---- the guest OS -------------------------------------------------------------------------

    def _guest_up(self, server: Server, at: float, boot: bool) -> None:
        boot_seconds = server.boot_seconds if server.boot_seconds is not None else self.boot_seconds
        server.guest_running = True
        server.guest_ready_at = at + (boot_seconds * self.time_scale if boot else 0.0)
        self._wakeup.set()

    def _guest_down(self, server: Server) -> None:
        server.guest_running = False
        server.guest_ready_at = None
        self._wakeup.set()

    # ==========================================================================================
    # Nova (contract §2 and the addendum)
    # ==========================================================================================

    def add_server(self, name: str, id: str | None = None, vm_state: str = "shelved_offloaded",
                   addresses: dict | None = None, serve_http_port: int | None = None, **options: Any) -> str:
        """Adds a server and returns its id. Options: task_state, power_state, boot_seconds,
        timings, unshelve_fault, volume_backed, project_id, user_id, metadata, flavor, image_id."""
        spec = dict(options, name=name, id=id, vm_state=vm_state, addresses=addresses,
                    serve_http_port=serve_http_port)
        with self._lock:
            server = self._add_server_locked(spec)
        self._wakeup.set()
        return server.id

    def _add_server_locked(self, spec: dict) -> Server:
        vm_state = spec.get("vm_state") or STATUS_TO_VM_STATE.get(str(spec.get("status", "")).upper(),
                                                                   "shelved_offloaded")
        server_id = spec.get("id") or str(uuid.uuid4())
        now = time.time()
        self._address_seq += 1
        addresses = spec.get("addresses")
        if addresses is None:
            addresses = {"private": [f"10.0.0.{self._address_seq % 250 + 2}"]}
        owner = next((u for u in self._users), DEFAULT_USER)
        server = Server(
            id=server_id, name=spec["name"], project_id=spec.get("project_id") or self.default_project_id,
            user_id=spec.get("user_id") or owner["id"], vm_state=vm_state, task_state=spec.get("task_state"),
            power_state=int(spec.get("power_state", DEFAULT_POWER.get(vm_state, POWER_NOSTATE))),
            addresses=self._normalize_addresses(addresses, self._address_seq), created=now - 86400, updated=now,
            launched_at=now - 3600 if vm_state == "active" else None, metadata=dict(spec.get("metadata") or {}),
            volume_backed=bool(spec.get("volume_backed", False)),
            serve_http_port=int(spec["serve_http_port"]) if spec.get("serve_http_port") else None,
            boot_seconds=None if spec.get("boot_seconds") is None else float(spec["boot_seconds"]),
            timings=dict(spec.get("timings") or {}),
            unshelve_fault=self._normalize_unshelve_fault(spec.get("unshelve_fault")),
        )
        if spec.get("flavor"):
            server.flavor.update(spec["flavor"])
        if spec.get("image_id"):
            server.image_id = spec["image_id"]
        if vm_state == "error":
            server.fault = {"code": 500, "message": spec.get("fault_message", DEFAULT_SPAWN_ERROR_MESSAGE),
                            "created": now}
        if vm_state == "active" and server.power_state == POWER_RUNNING and server.task_state is None:
            self._guest_up(server, time.monotonic(), boot=False)
        self._servers[server_id] = server
        return server

    @staticmethod
    def _normalize_addresses(addresses: dict, seq: int) -> dict:
        """Accepts Nova's own format or shorthand ("10.0.0.5" / {"addr", "type"}) per network."""
        result = {}
        for network, entries in addresses.items():
            normalized = []
            for index, entry in enumerate(entries):
                if isinstance(entry, str):
                    entry = {"addr": entry}
                addr = entry["addr"]
                normalized.append({
                    "addr": addr,
                    "OS-EXT-IPS-MAC:mac_addr": entry.get("OS-EXT-IPS-MAC:mac_addr", entry.get(
                        "mac", "fa:16:3e:%02x:%02x:%02x" % (seq % 256, index % 256, len(result) % 256))),
                    "OS-EXT-IPS:type": entry.get("OS-EXT-IPS:type", entry.get("type", "fixed")),
                    "version": entry.get("version", ipaddress.ip_address(addr).version),
                })
            result[network] = normalized
        return result

    def server(self, server_id: str) -> dict:
        """The server as GET /servers/{id} shows it at the maximum microversion, plus fake-only
        keys under "_fake" (guest listener, pending step)."""
        with self._lock:
            self._advance_locked()
            server = self._servers[server_id]
            view = self._server_view(server, self.max_microversion, "/compute/v2.1")
            view["_fake"] = {"guest_running": server.guest_running, "serve_http_port": server.serve_http_port,
                             "guest_listening": server_id in self._guests,
                             "guest_error": self._guest_errors.get(server_id),
                             "step_pending": server.next_fn is not None}
            return view

    def servers(self) -> list[dict]:
        with self._lock:
            ids = list(self._servers)
        return [self.server(server_id) for server_id in ids]

    def set_server_state(self, server_id: str, vm_state: str | None = None, task_state: str | None = None,
                         power_state: int | None = None) -> dict:
        """Forces a state "outside Unshelver" (e.g. someone stopped the VM): sets vm_state (and its
        usual power_state unless given) and task_state (default null), and cancels any pending
        step. The guest runs afterwards iff vm_state is active with power_state RUNNING."""
        with self._lock:
            self._advance_locked()
            server = self._servers[server_id]
            if vm_state is not None:
                server.vm_state = vm_state
                server.power_state = DEFAULT_POWER.get(vm_state, POWER_NOSTATE)
                if vm_state != "error":
                    server.fault = None
            server.task_state = task_state
            if power_state is not None:
                server.power_state = int(power_state)
            server.updated = time.time()
            self._schedule(server, None, None)
            running = server.vm_state == "active" and server.power_state == POWER_RUNNING
            if running and not server.guest_running:
                self._guest_up(server, time.monotonic(), boot=True)
            elif not running and server.guest_running:
                self._guest_down(server)
        return self.server(server_id)

    @staticmethod
    def _normalize_unshelve_fault(spec: Any) -> dict | None:
        if not spec:
            return None
        if isinstance(spec, str):
            spec = {"kind": spec}
        kind = spec.get("kind")
        if kind not in UNSHELVE_FAULT_KINDS:
            raise ValueError(f"unshelve fault kind must be one of {UNSHELVE_FAULT_KINDS}, not {kind!r}")
        at = spec.get("at", "unshelving")
        if at not in ("unshelving", "spawning"):
            raise ValueError("unshelve fault 'at' must be 'unshelving' or 'spawning'")
        times = spec.get("times")
        return {"kind": kind, "times": None if times is None else int(times), "at": at,
                "message": spec.get("message")}

    def set_unshelve_fault(self, kind: str, times: int | None = None, server_id: str | None = None,
                           at: str = "unshelving", message: str | None = None) -> None:
        """Makes the next `times` unshelves (None = all) fail: no_valid_host, spawn_error or
        never_finish (stuck in `at`: "unshelving" or "spawning"); per server or global."""
        fault = self._normalize_unshelve_fault({"kind": kind, "times": times, "at": at, "message": message})
        with self._lock:
            if server_id is None:
                self._global_unshelve_fault = fault
            else:
                self._servers[server_id].unshelve_fault = fault

    def clear_unshelve_faults(self, server_id: str | None = None) -> None:
        with self._lock:
            if server_id is None:
                self._global_unshelve_fault = None
                for server in self._servers.values():
                    server.unshelve_fault = None
            else:
                self._servers[server_id].unshelve_fault = None

    def _take_unshelve_fault(self, server: Server) -> dict | None:
        holder_is_server = server.unshelve_fault is not None
        fault = server.unshelve_fault if holder_is_server else self._global_unshelve_fault
        if fault is None:
            return None
        taken = dict(fault)
        if fault["times"] is not None:
            fault["times"] -= 1
            if fault["times"] <= 0:
                if holder_is_server:
                    server.unshelve_fault = None
                else:
                    self._global_unshelve_fault = None
        return taken

    def instance_actions(self, server_id: str) -> list[dict]:
        """Every instance action of the server, newest first, with all event fields."""
        with self._lock:
            self._advance_locked()
            server = self._servers[server_id]
            return [self._action_view(server, a, self.max_microversion, with_events=True, details=True,
                                      traceback_too=True) for a in reversed(server.actions)]

    def wait_for_server(self, server_id: str, predicate: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        """Polls server() every 10 ms until predicate(view) is true; returns the view."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.server(server_id)
            if predicate(view):
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"server {server_id} did not reach the expected state; last: "
                                   f"{view['status']}/{view['OS-EXT-STS:task_state']}")
            time.sleep(0.01)

    # ---- Nova HTTP ----------------------------------------------------------------------------

    def _nova(self, request: Request) -> Response:
        rid = request_id()
        ids = [("X-Openstack-Request-Id", rid), ("X-Compute-Request-Id", rid)]  # every Nova answer (§2)
        rest = request.rest
        if rest in ("", "/") and request.method in ("GET", "HEAD"):
            return json_response(200, {"version": self._compute_version(request)}, ids)
        token = self._token_for(request)
        if token is None:
            # keystonemiddleware answers before Nova: Keystone body, no microversion headers (§1).
            return self._unauthorized_keystone_style(ids)
        version, error = self._nova_microversion(request)
        if error is not None:
            error.headers += ids
            return error
        request.note["microversion"] = version_text(version)
        echo = [("OpenStack-API-Version", f"compute {version_text(version)}"),
                ("X-OpenStack-Nova-API-Version", version_text(version)),
                ("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")]
        try:
            response = self._nova_route(request, token, version, rest, rid)
        except ApiError as error_response:
            response = error_response.response
        response.headers += ids + echo
        return response

    def _compute_version(self, request: Request) -> dict:
        return {"id": "v2.1", "status": "CURRENT", "version": version_text(self.max_microversion),
                "min_version": version_text(MIN_MICROVERSION), "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": self.url + request.prefix + "/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2.1"}]}

    def _nova_microversion(self, request: Request) -> tuple[tuple[int, int] | None, Response | None]:
        """OpenStack-API-Version: compute X.Y first, then the legacy header; none means 2.1 (§2)."""
        raw = None
        for part in (request.headers.get("OpenStack-API-Version") or "").split(","):
            bits = part.split()
            if len(bits) == 2 and bits[0].lower() == "compute":
                raw = bits[1]
        if raw is None:
            raw = request.headers.get("X-OpenStack-Nova-API-Version")
        if raw is None:
            return MIN_MICROVERSION, None
        raw = raw.strip()
        if raw.lower() == "latest":
            return self.max_microversion, None
        if not re.fullmatch(r"([1-9]\d*)\.([1-9]\d*|0)", raw):
            return None, nova_fault(400, f"API Version String {raw} is of invalid format. Must be of format "
                                         "MajorNum.MinorNum.")
        version = parse_version(raw)
        if not MIN_MICROVERSION <= version <= self.max_microversion:
            return None, nova_fault(406, f"Version {raw} is not supported by the API. Minimum is "
                                         f"{version_text(MIN_MICROVERSION)} and maximum is "
                                         f"{version_text(self.max_microversion)}.")
        return version, None

    def _nova_route(self, request: Request, token: Token, version: tuple[int, int], rest: str,
                    rid: str) -> Response:
        parts = [urllib.parse.unquote(p) for p in rest.strip("/").split("/")] if rest.strip("/") else []
        if parts and parts[0] == token.project["id"]:
            parts = parts[1:]  # "some clouds add /{project_id}" (§2)
        method = request.method
        if not parts or parts[0] != "servers":
            raise ApiError(nova_fault(404, "The resource could not be found."))
        with self._lock:
            self._advance_locked()
            if len(parts) == 1 or (len(parts) == 2 and parts[1] == "detail"):
                if method != "GET":
                    raise ApiError(nova_fault(405 if len(parts) == 2 else 501,
                                              None if len(parts) == 2 else "The fake does not create servers."))
                return self._nova_list(request, token, version, detail=len(parts) == 2)
            server = self._servers.get(parts[1])
            if server is None or server.project_id != token.project["id"]:
                raise ApiError(nova_fault(404, f"Instance {parts[1]} could not be found."))
            if len(parts) == 2:
                if method != "GET":
                    raise ApiError(nova_fault(405))
                return json_response(200, {"server": self._server_view(server, version, request.prefix)})
            if len(parts) == 3 and parts[2] == "action":
                if method != "POST":
                    raise ApiError(nova_fault(405))
                return self._nova_action(request, token, version, server, rid)
            if parts[2] == "os-instance-actions" and len(parts) in (3, 4):
                if method != "GET":
                    raise ApiError(nova_fault(405))
                if len(parts) == 3:
                    keys_version = version
                    actions = [self._action_view(server, a, keys_version, with_events=False, details=False)
                               for a in reversed(server.actions)]
                    return json_response(200, {"instanceActions": actions})
                action = next((a for a in server.actions if a.request_id == parts[3]), None)
                if action is None:
                    raise ApiError(nova_fault(404, f"Action {parts[3]} not found"))
                # Events for the owner from 2.51; details from 2.84 when the policy shows them
                # (instance_actions.py and the contract addendum).
                view = self._action_view(server, action, version, with_events=version >= (2, 51),
                                         details=self.show_event_details and version >= (2, 84))
                return json_response(200, {"instanceAction": view})
        raise ApiError(nova_fault(404, "The resource could not be found."))

    def _nova_list(self, request: Request, token: Token, version: tuple[int, int], detail: bool) -> Response:
        name_regex = request.param("name")
        status = request.param("status")
        servers = [s for s in self._servers.values() if s.project_id == token.project["id"]]
        if name_regex is not None:
            # Nova's name filter is a regular expression matched anywhere (§2, re.search).
            try:
                pattern = re.compile(name_regex)
                servers = [s for s in servers if pattern.search(s.name)]
            except re.error:
                servers = []
        if status is not None:
            servers = [s for s in servers if s.status == status.upper()]
        servers.sort(key=lambda s: s.created, reverse=True)
        # Paging as nova/api/openstack/common.py does it: `limit` (at most [api] max_limit, which is
        # also the default), `marker` the id of the last server of the previous page (400 when
        # unknown), and a rel="next" link whenever a page is full.
        raw_limit = request.param("limit")
        try:
            limit = self.nova_max_limit if raw_limit is None else int(raw_limit)
        except ValueError:
            raise ApiError(nova_fault(400, "limit param must be an integer")) from None
        if limit < 0:
            raise ApiError(nova_fault(400, "limit param must be positive"))
        limit = min(limit, self.nova_max_limit)
        marker = request.param("marker")
        if marker is not None:
            index = next((i for i, s in enumerate(servers) if s.id == marker), None)
            if index is None:
                raise ApiError(nova_fault(400, f"marker [{marker}] not found"))
            servers = servers[index + 1:]
        page = servers[:limit]
        if detail:
            items = [self._server_view(s, version, request.prefix) for s in page]
        else:
            items = [{"id": s.id, "links": self._server_links(s, request.prefix), "name": s.name} for s in page]
        body: dict[str, Any] = {"servers": items}
        if page and len(page) == limit:
            params = [(k, v) for k, v in request.params if k not in ("limit", "marker")]
            params += [("limit", str(limit)), ("marker", page[-1].id)]
            path = request.path
            body["servers_links"] = [{"rel": "next",
                                      "href": f"{self.url}{path}?{urllib.parse.urlencode(params)}"}]
        return json_response(200, body)

    def _server_links(self, server: Server, prefix: str) -> list[dict]:
        bookmark_prefix = prefix[: -len("/v2.1")] if prefix.endswith("/v2.1") else prefix
        return [{"href": f"{self.url}{prefix}/{server.project_id}/servers/{server.id}"
                 if self.compute_url_with_project_id else f"{self.url}{prefix}/servers/{server.id}", "rel": "self"},
                {"href": f"{self.url}{bookmark_prefix}/servers/{server.id}", "rel": "bookmark"}]

    def _server_view(self, server: Server, version: tuple[int, int], prefix: str) -> dict:
        """GET /servers/{id} body (contract §2, doc/api_samples/servers/server-get-resp.json)."""
        host = server.host
        host_id = hashlib.sha224((server.project_id + host).encode()).hexdigest() if host else ""
        if version >= (2, 47):
            flavor = {k: server.flavor[k] for k in ("vcpus", "ram", "disk", "ephemeral", "swap", "original_name",
                                                    "extra_specs")}
        else:
            flavor = {"id": server.flavor["id"], "links": [
                {"href": f"{self.url}/compute/flavors/{server.flavor['id']}", "rel": "bookmark"}]}
        view: dict[str, Any] = {
            "id": server.id, "name": server.name, "status": server.status,
            "tenant_id": server.project_id, "user_id": server.user_id, "metadata": dict(server.metadata),
            "hostId": host_id,
            "image": {"id": server.image_id, "links": [
                {"href": f"{self.url}/compute/images/{server.image_id}", "rel": "bookmark"}]},
            "flavor": flavor, "created": iso_z(server.created), "updated": iso_z(server.updated),
            "addresses": copy.deepcopy(server.addresses), "accessIPv4": "", "accessIPv6": "",
            "links": self._server_links(server, prefix), "OS-DCF:diskConfig": "MANUAL", "progress": 0,
            "OS-EXT-AZ:availability_zone": "nova", "config_drive": "", "key_name": None,
            "OS-SRV-USG:launched_at": iso_micro(server.launched_at) if server.launched_at else None,
            "OS-SRV-USG:terminated_at": None, "security_groups": [{"name": "default"}],
            "OS-EXT-STS:task_state": server.task_state, "OS-EXT-STS:vm_state": server.vm_state,
            "OS-EXT-STS:power_state": server.power_state, "os-extended-volumes:volumes_attached": [],
        }
        if version >= (2, 9):
            view["locked"] = False
        if server.vm_state == "error" and server.fault:
            # views/servers.py: details only for admins or non-500 faults; this fake answers the owner.
            view["fault"] = {"code": server.fault["code"], "created": iso_z(server.fault["created"]),
                             "message": server.fault["message"]}
        return view

    def _action_view(self, server: Server, action: InstanceAction, version: tuple[int, int], with_events: bool,
                     details: bool, traceback_too: bool = False) -> dict:
        """instance_actions.py ACTION_KEYS(_V258) and EVENT_KEYS, as the server's owner sees them."""
        view: dict[str, Any] = {"action": action.action, "instance_uuid": server.id,
                                "request_id": action.request_id, "user_id": action.user_id,
                                "project_id": action.project_id, "start_time": iso_micro(action.start_time),
                                "message": action.message}
        if version >= (2, 58):
            view["updated_at"] = iso_micro(action.updated_at)
        if with_events:
            events = []
            for event in action.events:
                item: dict[str, Any] = {"event": event.event, "start_time": iso_micro(event.start_time),
                                        "finish_time": iso_micro(event.finish_time) if event.finish_time else None,
                                        "result": event.result}
                if traceback_too:
                    item["traceback"] = event.traceback
                if version >= (2, 62):
                    item["hostId"] = hashlib.sha224((action.project_id + event.host).encode()).hexdigest()
                if details:
                    item["details"] = event.details
                events.append(item)
            view["events"] = events
        return view

    def _nova_action(self, request: Request, token: Token, version: tuple[int, int], server: Server,
                     rid: str) -> Response:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(nova_fault(400, "Malformed request body"))
        if not isinstance(body, dict) or len(body) != 1:
            raise ApiError(nova_fault(400, "Malformed request body"))
        key, value = next(iter(body.items()))
        request.note["action"] = key
        request.note["action_body"] = body
        if key not in NOVA_ACTIONS:
            raise ApiError(nova_fault(400, f"There is no such action: {key}"))
        action_name, conflict_name, allowed = NOVA_ACTIONS[key]
        unshelve_args = self._unshelve_args(value, version) if key == "unshelve" else {}
        if "host" in unshelve_args and not self.allow_unshelve_to_host:
            raise ApiError(nova_fault(403, "Policy doesn't allow os_compute_api:os-shelve:unshelve_to_host to be "
                                           "performed."))
        # check_instance_state: vm_state first, then task_state must be None (§2).
        if server.vm_state not in allowed:
            raise ApiError(self._conflict(conflict_name, server, "vm_state", server.vm_state))
        if server.task_state is not None:
            raise ApiError(self._conflict(conflict_name, server, "task_state", server.task_state))
        if unshelve_args and server.vm_state != "shelved_offloaded":
            raise ApiError(nova_fault(409, f"The unshelve action on a server with availability_zone or host "
                                           f"with status {server.status} is not supported. The server status "
                                           "must be SHELVED_OFFLOADED."))
        now_mono = time.monotonic()
        now = self._wall(now_mono)
        action = InstanceAction(action_name, rid, token.user["id"], token.project["id"], now, now)
        server.actions.append(action)
        if key == "shelve":
            self._flow_shelve(server, action, now_mono)
        elif key == "shelveOffload":
            self._flow_offload(server, action, now_mono)
        elif key == "unshelve":
            self._flow_unshelve(server, action, now_mono, self._take_unshelve_fault(server))
        else:
            self._flow_simple(server, action, now_mono, SIMPLE_ACTIONS[key])
        return Response(202, b"", [])

    def _unshelve_args(self, value: Any, version: tuple[int, int]) -> dict:
        """The unshelve body rules by microversion (contract §2, servers-action-shelve.inc)."""
        if version < (2, 77) or value is None:
            return {}

        def invalid() -> ApiError:
            return ApiError(nova_fault(400, f"Invalid input for field/attribute unshelve. Value: "
                                            f"{json.dumps(value)}. {json.dumps(value)} is not valid under any "
                                            "of the given schemas"))
        if not isinstance(value, dict) or not value:
            raise invalid()
        if version < (2, 91):
            if set(value) != {"availability_zone"} or not isinstance(value["availability_zone"], str):
                raise invalid()
            return dict(value)
        if not set(value) <= {"availability_zone", "host"}:
            raise invalid()
        if "availability_zone" in value and not isinstance(value["availability_zone"], (str, type(None))):
            raise invalid()
        if "host" in value and not isinstance(value["host"], str):
            raise invalid()
        return dict(value)

    @staticmethod
    def _conflict(action: str, server: Server, attr: str, state: Any) -> Response:
        """raise_http_conflict_for_instance_invalid_state's message (contract §2)."""
        return nova_fault(409, f"Cannot '{action}' instance {server.id} while it is in {attr} {state}")

    # ---- Nova timelines (contract §2 tables) --------------------------------------------------

    def _flow_shelve(self, server: Server, action: InstanceAction, at: float) -> None:
        """shelving -> (image steps) -> shelved [-> shelving_offloading -> shelved_offloaded]."""
        event = action.begin_event("compute_shelve_instance", self._wall(at), COMPUTE_HOST)

        def offload_done(t: float) -> None:
            server.vm_state, server.task_state, server.power_state = "shelved_offloaded", None, POWER_NOSTATE
            server.updated = self._wall(t)

        def offloaded(t: float) -> None:
            offload_done(t)
            action.finish_event(event, self._wall(t))

        def shelved(t: float) -> None:
            server.vm_state, server.power_state = "shelved", POWER_SHUTDOWN
            if self.shelved_offload_time == 0:
                self._enter(server, "shelving_offloading", t, offloaded)
                return
            server.task_state, server.updated = None, self._wall(t)
            action.finish_event(event, self._wall(t))
            if self.shelved_offload_time > 0:
                # Nova's periodic task offloads later, passing through shelving_offloading; any
                # accepted action (e.g. unshelve) replaces this pending step, as upstream.
                self._schedule(server, t + self.shelved_offload_time * self.time_scale,
                               lambda t2: self._enter(server, "shelving_offloading", t2, offload_done))

        def powered_off(t: float) -> None:
            # _shelve_instance powers the guest off before the snapshot; status stays ACTIVE.
            self._guest_down(server)
            if server.volume_backed:
                offloaded(t)  # volume-backed: straight to shelve-offload (contract §2 variants)
                return
            self._enter(server, "shelving_image_pending_upload", t,
                        lambda t2: self._enter(server, "shelving_image_uploading", t2, shelved))

        self._enter(server, "shelving", at, powered_off)

    def _flow_offload(self, server: Server, action: InstanceAction, at: float) -> None:
        event = action.begin_event("compute_shelve_offload_instance", self._wall(at), COMPUTE_HOST)

        def offloaded(t: float) -> None:
            server.vm_state, server.task_state, server.power_state = "shelved_offloaded", None, POWER_NOSTATE
            server.updated = self._wall(t)
            action.finish_event(event, self._wall(t))

        self._enter(server, "shelving_offloading", at, offloaded)

    def _flow_unshelve(self, server: Server, action: InstanceAction, at: float, fault: dict | None) -> None:
        """unshelving (conductor schedules) -> spawning (compute) -> active; or the injected fault."""
        kind = fault["kind"] if fault else None
        stuck_at = fault["at"] if kind == "never_finish" else None
        scheduling = action.begin_event("schedule_instances", self._wall(at), CONDUCTOR_HOST)

        def spawned(t: float, spawn_event: ActionEvent) -> None:
            wall = self._wall(t)
            if kind == "spawn_error":
                message = fault.get("message") or DEFAULT_SPAWN_ERROR_MESSAGE
                action.finish_event(spawn_event, wall, "Error", message,
                                    f"Traceback (most recent call last):\n  ...\nRuntimeError: {message}\n")
                server.vm_state, server.task_state, server.power_state = "error", None, POWER_NOSTATE
                server.fault = {"code": 500, "message": message, "created": wall}
                server.updated = wall
                return
            action.finish_event(spawn_event, wall)
            server.vm_state, server.task_state, server.power_state = "active", None, POWER_RUNNING
            server.launched_at = server.updated = wall
            self._guest_up(server, t, boot=True)

        def scheduled(t: float) -> None:
            wall = self._wall(t)
            if kind == "no_valid_host":
                # Contract addendum: back to task_state null, vm_state unchanged, no fault; the action
                # says "Error" and the schedule_instances event carries the details.
                action.finish_event(scheduling, wall, "Error", fault.get("message") or NO_VALID_HOST_MESSAGE,
                                    "Traceback (most recent call last):\n  ...\nnova.exception.NoValidHost: "
                                    + NO_VALID_HOST_MESSAGE + "\n")
                server.task_state, server.updated = None, wall
                return
            action.finish_event(scheduling, wall)
            spawn_event = action.begin_event("compute_unshelve_instance", wall, COMPUTE_HOST)
            then = None if stuck_at == "spawning" else (lambda t2: spawned(t2, spawn_event))
            self._enter(server, "spawning", t, then)

        self._enter(server, "unshelving", at, None if stuck_at == "unshelving" else scheduled)

    def _flow_simple(self, server: Server, action: InstanceAction, at: float, spec: tuple) -> None:
        task_state, final_vm, final_power, event_name, guest = spec
        event = action.begin_event(event_name, self._wall(at), COMPUTE_HOST)

        def done(t: float) -> None:
            server.vm_state, server.task_state, server.power_state = final_vm, None, final_power
            server.updated = self._wall(t)
            if final_vm == "stopped":
                server.fault = None
            action.finish_event(event, self._wall(t))
            if guest == "stop":
                self._guest_down(server)
            else:
                self._guest_up(server, t, boot=(guest == "boot"))

        self._enter(server, task_state, at, done)
