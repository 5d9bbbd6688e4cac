"""A protocol-faithful fake OpenStack (Keystone, Nova, Swift, Designate) on one local port.

With the config key `swift_own_port: true`, Swift listens on a second port of its own instead
(the catalog's object-store endpoints point there), and swift_down()/swift_up() close and reopen
that listener, so that a client sees Swift refuse connections while the rest of the cloud works.

Python 3.11 standard library only. Integration tests drive the real unshelver binary against it;
it also runs standalone:

    python3 tests/fakes/fake_openstack.py --port 0 [--config fake.json] [--port-file F]

Every wire format here follows /work/shared/research/api-contracts.md ("the contract"); comments
cite its sections as "contract §N". Where the contract is silent, the behaviour follows the
upstream source it names, and the comment says so. README.md next to this file lists the URL
layout, the config keys and the control API.

Design notes:
- One lock guards all state. Handlers take it for their whole (short) critical section and never
  sleep while holding it; injected delays sleep outside it.
- Nova's task-state timelines are evaluated lazily from the monotonic clock (every handler first
  applies the steps that are due), and a background ticker applies them too, so that the guest
  HTTP listener of a server opens and closes on time even when nobody polls.
- Secrets never reach the request log: no X-Auth-Token / X-Subject-Token values and no Keystone
  bodies are stored, only flags (authenticated, auth_method).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import email.utils
import hashlib
import http
import ipaddress
import json
import mimetypes
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
DEFAULT_USER = {"id": "u-demo-0001", "name": "demo", "password": "demo-password-123", "domain_id": "default"}
DEFAULT_PROJECT = {"id": "p-demo-0001", "name": "demo", "domain_id": "default"}
DEFAULT_APP_CRED = {"id": "ac-0001", "name": "monitoring", "secret": "ac-secret-xyz",
                    "user_id": "u-demo-0001", "project_id": "p-demo-0001"}
DEFAULT_ROLES = [{"id": "r-member-0001", "name": "member"}, {"id": "r-reader-0001", "name": "reader"}]
# The first id is the one in the contract's sample (contract §4).
DEFAULT_ZONES = [
    {"id": "a86dba58-0043-4cc6-a1bb-69d5e86f3ca3", "name": "example.org.", "email": "joe@example.org"},
    {"id": "2150b1bf-dee2-4221-9d85-11f7886fb15f", "name": "sub.example.org.", "email": "joe@example.org"},
]
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
# swift/common/swob.py RESPONSE_REASONS (contract §3): (title, explanation) for HTML error bodies.
SWOB_REASONS = {
    400: ("Bad Request", "The server could not comply with the request since it is either malformed "
                         "or otherwise incorrect."),
    401: ("Unauthorized", "This server could not verify that you are authorized to access the document "
                          "you requested."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method is not allowed for this resource."),
    408: ("Request Timeout", "The server has waited too long for the request to be sent by the client."),
    409: ("Conflict", "There was a conflict when trying to complete your request."),
    411: ("Length Required", "Content-Length header required."),
    412: ("Precondition Failed", "A precondition for this request was not met."),
    413: ("Request Entity Too Large", "The body of your request was too large for this server."),
    422: ("Unprocessable Entity", "Unable to process the contained instructions"),
    429: ("Too Many Backend Requests", "The server is incapable of performing the requested operation due "
                                      "to too many requests. Slow down."),
    500: ("Internal Error", "The server has either erred or is incapable of performing the requested "
                            "operation."),
    502: ("Bad Gateway", "Bad gateway."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at a later time."),
    504: ("Gateway Timeout", "A timeout has occurred speaking to a backend server."),
    507: ("Insufficient Storage", "There was not enough space to save the resource. Drive: sdb1"),
}
# Keystone's default messages per status (keystone/exception.py message_format of the base classes).
KEYSTONE_MESSAGES = {
    400: "The server could not comply with the request since it is either malformed or otherwise "
         "incorrect. The client is assumed to be in error.",
    401: "The request you have made requires authentication.",
    403: "You are not authorized to perform the requested action.",
    404: "The resource could not be found.",
    409: "Conflict occurred attempting to store data.",
    500: "An unexpected error prevented the server from fulfilling your request.",
}
# Designate error types for injected faults (designate/exceptions.py; unknown types are 'unknown').
DESIGNATE_TYPES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                   409: "conflict", 413: "over_quota", 429: "over_quota", 503: "service_unavailable",
                   504: "timeout"}

# Request headers copied into the request log (never X-Auth-Token).
LOGGED_REQUEST_HEADERS = ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version", "Content-Type",
                          "Content-Length", "Transfer-Encoding", "Accept", "User-Agent", "If-None-Match",
                          "ETag", "X-Delete-After", "X-Delete-At", "Expect", "Connection")
# Response headers copied into the request log (never X-Subject-Token).
LOGGED_RESPONSE_HEADERS = ("X-Openstack-Request-Id", "OpenStack-API-Version", "X-OpenStack-Nova-API-Version",
                           "Retry-After", "Location", "WWW-Authenticate", "Content-Type", "Etag")

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def iso_z(ts: float) -> str:
    """Nova's utils.isotime(): seconds and a Z (server created/updated, fault created)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def iso_micro(ts: float) -> str:
    """A naive datetime's isoformat() with microseconds (Nova actions, Designate times)."""
    micro = int(round((ts - int(ts)) * 1_000_000)) % 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ts))) + ".%06d" % micro


def iso_micro_z(ts: float) -> str:
    """Keystone's expires_at/issued_at: ISO 8601 with microseconds and Z (contract §1)."""
    return iso_micro(ts) + "Z"


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def request_id() -> str:
    return "req-" + str(uuid.uuid4())


def swift_trans_id() -> str:
    """Swift's tx<21 hex>-<hex timestamp> transaction id (contract §3 example)."""
    return "tx" + secrets.token_hex(11)[:21] + "-%010x" % int(time.time())


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def parse_version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def version_text(version: tuple[int, int]) -> str:
    return "%d.%d" % version


@dataclasses.dataclass
class Request:
    """One HTTP request as the services see it (body already read, routing filled in)."""

    method: str
    path: str
    query: str
    headers: Any  # email.message.Message (case-insensitive get)
    body: bytes
    body_framed: bool  # Content-Length or Transfer-Encoding was present
    received: float
    prefix: str = ""
    service: str | None = None
    interface: str | None = None
    region: str | None = None
    rest: str = ""
    authenticated: bool = False
    note: dict = dataclasses.field(default_factory=dict)
    listener: str = "main"  # "main", or "swift" for Swift's own port (swift_own_port)

    @property
    def params(self) -> list[tuple[str, str]]:
        return urllib.parse.parse_qsl(self.query, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    content_length: int | None = None  # for HEAD: the length the GET would have had
    drop: str | None = None  # "close" (FIN) or "reset" (RST): no response at all

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = b"" if obj is None else json.dumps(obj).encode()
    return Response(status, body, [("Content-Type", "application/json")] + list(headers or []))


def keystone_error(status: int, message: str | None = None, title: str | None = None,
                   headers: list[tuple[str, str]] | None = None) -> Response:
    """Keystone's one error format (contract §1, render_exception)."""
    title = title or http.HTTPStatus(status).phrase
    message = message or KEYSTONE_MESSAGES.get(status, title)
    return json_response(status, {"error": {"code": status, "title": title, "message": message}}, headers)


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


def swift_error(status: int, body: str | None = None, headers: list[tuple[str, str]] | None = None) -> Response:
    """swob's default HTML body, or a plain text body when Swift gives one (contract §3)."""
    if body is None:
        title, explanation = SWOB_REASONS.get(status, (http.HTTPStatus(status).phrase, ""))
        text = "<html><h1>%s</h1><p>%s</p></html>" % (title, explanation)
        content_type = "text/html; charset=UTF-8"
    else:
        text, content_type = body, "text/plain; charset=UTF-8"
    return Response(status, text.encode(), [("Content-Type", content_type)] + list(headers or []))


def designate_error(status: int, error_type: str, message: str | None, rid: str,
                    errors: Any = None, extra_headers: list[tuple[str, str]] | None = None) -> Response:
    """designate/api/middleware.py::FaultWrapperMiddleware body (contract §4)."""
    body: dict[str, Any] = {"code": status, "type": error_type}
    if message is not None:
        body["message"] = message
    if errors is not None:
        body["errors"] = errors
    body["request_id"] = rid
    return json_response(status, body, [("X-Openstack-Request-Id", rid)] + list(extra_headers or []))


class ApiError(Exception):
    """Raised inside a service handler to answer with a ready-made error response."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


# --------------------------------------------------------------------------------------------
# State records
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Token:
    user: dict
    project: dict | None
    methods: list[str]
    issued: float
    expires: float
    roles: list[dict]
    app_cred: dict | None = None
    audit_id: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(16)[:22])
    revoked: bool = False

    def valid(self) -> bool:
        return not self.revoked and time.time() < self.expires


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


@dataclasses.dataclass
class SwiftObject:
    data: bytes
    etag: str
    content_type: str
    last_modified: float
    meta: dict
    delete_at: float | None = None


@dataclasses.dataclass
class Zone:
    id: str
    name: str
    email: str
    ttl: int
    serial: int
    project_id: str
    created_at: float
    description: str | None = None
    type: str = "PRIMARY"
    status: str = "ACTIVE"
    action: str = "NONE"
    version: int = 1
    updated_at: float | None = None
    order: int = 0  # insertion order: the tie-breaker after the sort key


@dataclasses.dataclass
class RecordSet:
    id: str
    zone_id: str
    zone_name: str
    name: str
    type: str
    ttl: int | None
    records: list[str]
    project_id: str
    created_at: float
    description: str | None = None
    status: str = "ACTIVE"
    action: str = "NONE"
    version: int = 1
    updated_at: float | None = None
    managed: bool = False
    pending_until: float | None = None  # monotonic; None while PENDING means "forever"
    order: int = 0  # insertion order: the tie-breaker after the sort key


@dataclasses.dataclass
class Fault:
    """One injected fault (see FakeOpenStack.add_fault)."""

    id: int
    method: str | None
    path_regex: str | None
    status: int | None
    times: int | None
    delay_seconds: float
    drop: bool | str
    retry_after: Any
    body: Any
    service: str | None
    hits: int = 0

    def matches(self, request: Request) -> bool:
        if self.method and self.method.upper() != request.method:
            return False
        if self.service and self.service != request.service:
            return False
        if self.path_regex and not re.search(self.path_regex, request.path):
            return False
        return True

    def describe(self) -> dict:
        return {"id": self.id, "method": self.method, "path_regex": self.path_regex, "status": self.status,
                "times": self.times, "delay_seconds": self.delay_seconds, "drop": self.drop,
                "retry_after": self.retry_after, "service": self.service, "hits": self.hits}


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class TrackingServer(ThreadingHTTPServer):
    """A threading HTTP server that can cut its open keep-alive connections on stop."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler):
        self.open_connections: set[socket.socket] = set()
        self.reset_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def mark_for_reset(self, connection: socket.socket) -> None:
        """The connection ends with an RST: SO_LINGER 0 and no shutdown(SHUT_WR), whose FIN would
        otherwise reach the client first."""
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self.connections_lock:
            self.reset_connections.add(connection)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.open_connections.discard(request)
            reset = request in self.reset_connections
            self.reset_connections.discard(request)
        if reset:
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # Clients hanging up (and our own drop/close on stop) are normal here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


def read_request_body(handler: BaseHTTPRequestHandler) -> tuple[bytes, bool]:
    """Reads a Content-Length or chunked body; returns (body, framed)."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            line = handler.rfile.readline(65537)
            if not line:
                raise ValueError("connection closed inside a chunked body")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks), True
            chunk = handler.rfile.read(size)
            if len(chunk) < size:
                raise ValueError("connection closed inside a chunk")
            chunks.append(chunk)
            handler.rfile.readline(65537)
    length = handler.headers.get("Content-Length")
    if length is None:
        return b"", False
    expected = int(length)
    body = handler.rfile.read(expected)
    if len(body) < expected:
        # The client hung up inside its body. Swift's proxy answers 499 (client disconnect) to
        # nobody and stores nothing; the fake does not hand a truncated body to a service either.
        raise ValueError("connection closed inside the body")
    return body, True


class ApiHandler(BaseHTTPRequestHandler):
    """Reads each request, hands it to the FakeOpenStack and writes (or drops) the answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeOpenStack/1.0"
    timeout = 120

    def log_message(self, *args):
        pass

    def handle_any(self):
        fake: FakeOpenStack = self.server.fake
        try:
            body, framed = read_request_body(self)
        except (ValueError, OSError):
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        request = Request(self.command, url.path, url.query, self.headers, body, framed, time.time(),
                          listener=getattr(self.server, "listener", "main"))
        response = fake.dispatch(request)
        if response.drop:
            if response.drop == "reset":
                self.server.mark_for_reset(self.connection)
            self.close_connection = True
            return
        write_response(self, response, self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


def write_response(handler: BaseHTTPRequestHandler, response: Response, head: bool) -> None:
    handler.send_response(response.status)
    for name, value in response.headers:
        handler.send_header(name, value)
    length = response.content_length if response.content_length is not None else len(response.body)
    handler.send_header("Content-Length", str(length))
    handler.end_headers()
    if not head and response.status not in (204, 304):
        handler.wfile.write(response.body)


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
        fake: FakeOpenStack = self.server.fake
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


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------

# (path prefix, interface, region, services allowed there). Longest prefixes first.
INTERFACE_PREFIXES = [
    ("/internal", "internal", "RegionOne", ("identity", "compute", "object-store", "dns")),
    ("/admin", "admin", "RegionOne", ("identity", "compute", "object-store", "dns")),
    ("/r2", "public", "RegionTwo", ("compute",)),
    ("", "public", "RegionOne", ("identity", "compute", "object-store", "dns")),
]
SERVICE_PREFIXES = [("/identity", "identity"), ("/compute/v2.1", "compute"),
                    ("/object-store/v1", "object-store"), ("/dns", "dns")]
CATALOG_NAMES = {"identity": "keystone", "compute": "nova", "object-store": "swift", "dns": "designate"}

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
DESIGNATE_ZONE_FILTERS = ("name", "type", "email", "status", "description", "ttl")
DESIGNATE_RECORDSET_FILTERS = ("name", "type", "ttl", "data", "status", "description")
DESIGNATE_PAGING = ("limit", "marker", "sort_key", "sort_dir")
RECORDSET_WRITABLE = ("name", "type", "ttl", "description", "records")
RECORDSET_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SRV", "SSHFP", "TXT", "SPF", "CAA", "CERT", "NAPTR")

# Settings that may also change at runtime (configure(), POST /_fake/config), with defaults.
SETTINGS_DEFAULTS: dict[str, Any] = {
    "token_lifetime_seconds": 3600.0,  # contract §1: Keystone's default [token] expiration
    "timings": {},  # task_state -> seconds in that state; "default" for the rest
    "time_scale": 1.0,  # multiplies every step, boot and propagation duration
    "show_event_details": True,  # event "details" at >= 2.84 (false: nova's default non-admin policy)
    "shelved_offload_time": 0.0,  # nova's option: 0 offload at once, < 0 never, > 0 after N seconds
    "boot_seconds": 0.0,  # guest boot time before serve_http_port answers (per server overridable)
    "max_microversion": DEFAULT_MAX_MICROVERSION,
    "designate_propagation_seconds": 0.3,  # PENDING -> ACTIVE; null: PENDING forever
    "designate_default_limit": 20,  # designate's default page size
    "compute_url_with_project_id": False,  # catalog compute URL ends with /{project_id}
    "allow_unshelve_to_host": False,  # policy unshelve_to_host (admin-only upstream)
}
# Config keys that shape the initial state (read on start and on reset()).
STATE_KEYS = ("domains", "users", "projects", "application_credentials", "roles", "servers", "unshelve_fault",
              "swift_containers", "zones")
# Config keys that shape the listeners (read once, at construction).
LISTENER_KEYS = ("swift_own_port",)
# Swift's path prefix on its own port: http://127.0.0.1:SWIFTPORT/v1/AUTH_<project_id>.
SWIFT_OWN_PREFIX = "/v1"


class FakeOpenStack:
    """Keystone, Nova, Swift and Designate behind one 127.0.0.1 port, plus a control API.

    See README.md for the config keys; `config` may be None for all defaults.
    """

    def __init__(self, config: dict | None = None):
        self.config = copy.deepcopy(config or {})
        self._lock = threading.RLock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._httpd: TrackingServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._ticker_thread: threading.Thread | None = None
        self._guests: dict[str, GuestListener] = {}
        self._guest_errors: dict[str, str] = {}
        self.url = ""
        self.port = 0
        # Swift on its own port (swift_own_port): the listener, its thread and its fixed port.
        self.swift_own_port = bool(self.config.get("swift_own_port", False))
        self._swift_listener_lock = threading.Lock()
        self._swift_httpd: TrackingServer | None = None
        self._swift_thread: threading.Thread | None = None
        self.swift_port: int | None = None
        unknown = sorted(set(self.config) - set(SETTINGS_DEFAULTS) - set(STATE_KEYS) - set(LISTENER_KEYS))
        if unknown:
            raise ValueError(f"unknown config keys: {unknown}")
        self._apply_settings(SETTINGS_DEFAULTS)
        self._apply_settings(self.config)
        self._reset_state_locked()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, port: int = 0, swift_port: int = 0) -> "FakeOpenStack":
        """Binds 127.0.0.1:port (0 = a free port) and serves in background daemon threads. With
        swift_own_port, Swift also listens on 127.0.0.1:swift_port (0 = a free port)."""
        self._httpd = TrackingServer(("127.0.0.1", port), ApiHandler)
        self._httpd.fake = self
        self._httpd.listener = "main"
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if self.swift_own_port:
            self.swift_port = swift_port
            try:
                self._open_swift_listener()
            except OSError:
                self._httpd.server_close()
                raise
        self._serve_thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                              name="fake-openstack", daemon=True)
        self._serve_thread.start()
        self._ticker_thread = threading.Thread(target=self._ticker, name="fake-openstack-ticker", daemon=True)
        self._ticker_thread.start()
        return self

    def stop(self) -> None:
        """Stops serving, cuts open connections and closes every guest listener."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wakeup.set()
        if self._ticker_thread:
            self._ticker_thread.join(timeout=5)
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
        self._close_swift_listener()
        for server_id in list(self._guests):
            self._guests.pop(server_id).close()

    def __enter__(self) -> "FakeOpenStack":
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def auth_url(self) -> str:
        return self.url + "/identity/v3"

    # ---- Swift on its own port ----------------------------------------------------------------

    @property
    def swift_url(self) -> str:
        """Swift's public base URL, without the account: `url + "/object-store/v1"`, or
        `http://127.0.0.1:SWIFTPORT/v1` with swift_own_port."""
        if self.swift_own_port:
            return f"http://127.0.0.1:{self.swift_port}{SWIFT_OWN_PREFIX}"
        return self.url + "/object-store/v1"

    def swift_is_up(self) -> bool:
        """True while Swift's own listener is open (always True in the one-port layout once started)."""
        if not self.swift_own_port:
            return self._httpd is not None and not self._stopping.is_set()
        with self._swift_listener_lock:
            return self._swift_httpd is not None

    def _open_swift_listener(self) -> None:
        with self._swift_listener_lock:
            if self._swift_httpd is not None:
                return
            httpd = TrackingServer(("127.0.0.1", self.swift_port or 0), ApiHandler)
            httpd.fake = self
            httpd.listener = "swift"
            self.swift_port = httpd.server_address[1]
            thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"fake-swift-{self.swift_port}", daemon=True)
            thread.start()
            self._swift_httpd, self._swift_thread = httpd, thread

    def _close_swift_listener(self) -> None:
        with self._swift_listener_lock:
            httpd, thread = self._swift_httpd, self._swift_thread
            self._swift_httpd = self._swift_thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()  # from here on, connecting is refused
        httpd.close_connections()  # and open keep-alive connections are cut
        if thread is not None:
            thread.join(timeout=2)

    def _require_swift_own_port(self) -> None:
        if not self.swift_own_port:
            raise RuntimeError("swift_down()/swift_up() need the config key swift_own_port: true")
        if self._httpd is None or self._stopping.is_set():
            raise RuntimeError("the fake is not running")

    def swift_down(self) -> None:
        """Closes Swift's own listener and cuts its open connections: clients get connection
        refused (or a reset/EOF on a connection that was open) until swift_up(). Keystone, Nova,
        Designate and the control API keep working. The objects are kept. Idempotent."""
        self._require_swift_own_port()
        self._close_swift_listener()

    def swift_up(self) -> None:
        """Listens again on the same Swift port (OSError if something else took it). Idempotent."""
        self._require_swift_own_port()
        self._open_swift_listener()

    # ---- configuration and reset --------------------------------------------------------------

    def _apply_settings(self, settings: dict) -> None:
        """Copies the runtime settings present in `settings` onto the instance, converted."""
        for key, value in settings.items():
            if key not in SETTINGS_DEFAULTS:
                continue
            if key == "max_microversion":
                value = parse_version(str(value))
            elif key == "timings":
                value = {str(k): float(v) for k, v in (value or {}).items()}
            elif key == "designate_propagation_seconds":
                value = None if value is None else float(value)
            elif key in ("show_event_details", "compute_url_with_project_id", "allow_unshelve_to_host"):
                value = bool(value)
            elif key == "designate_default_limit":
                value = int(value)
            else:
                value = float(value)
            setattr(self, key, value)

    def configure(self, **settings: Any) -> None:
        """Changes runtime settings (any key of SETTINGS_DEFAULTS) while the fake runs."""
        unknown = sorted(set(settings) - set(SETTINGS_DEFAULTS))
        if unknown:
            raise ValueError(f"not runtime settings: {unknown}")
        with self._lock:
            self.config.update(copy.deepcopy(settings))
            self._apply_settings(settings)
        self._wakeup.set()

    def reset(self) -> None:
        """Back to the configured initial state: servers, objects, zones, tokens, faults and the log
        (and Swift's own listener up again, with swift_own_port)."""
        with self._lock:
            self._apply_settings(SETTINGS_DEFAULTS)
            self._apply_settings(self.config)
            self._reset_state_locked()
        if self.swift_own_port and self._httpd is not None and not self._stopping.is_set():
            self._open_swift_listener()
        self._wakeup.set()

    def _reset_state_locked(self) -> None:
        config = self.config
        self._domains = [dict(d) for d in config.get("domains", [DEFAULT_DOMAIN])]
        self._users = [dict(u) for u in config.get("users", [DEFAULT_USER])]
        self._projects = [dict(p) for p in config.get("projects", [DEFAULT_PROJECT])]
        self._app_creds = [dict(a) for a in config.get("application_credentials", [DEFAULT_APP_CRED])]
        self._roles = [dict(r) for r in config.get("roles", DEFAULT_ROLES)]
        self._tokens: dict[str, Token] = {}
        self._auth_count = 0
        self._auth_failures = 0
        self._log: list[dict] = []
        self._log_seq = 0
        self._faults: list[Fault] = []
        self._fault_seq = 0
        self._global_unshelve_fault = self._normalize_unshelve_fault(config.get("unshelve_fault"))
        self._servers: dict[str, Server] = {}
        self._address_seq = 10
        for spec in config.get("servers", []):
            self._add_server_locked(dict(spec))
        self._swift: dict[str, dict[str, dict[str, SwiftObject]]] = {}
        self._swift_created: dict[tuple[str, str], float] = {}
        self._swift_put_counts: dict[tuple[str, str, str], int] = {}
        for container in config.get("swift_containers", []):
            self._swift.setdefault(self.default_project_id, {})[container] = {}
        self._zones: dict[str, Zone] = {}
        self._recordsets: dict[str, RecordSet] = {}
        self._designate_seq = 0
        for spec in config.get("zones", DEFAULT_ZONES):
            self._add_zone_locked(dict(spec))

    @property
    def default_project_id(self) -> str:
        return self._projects[0]["id"]

    # ---- the request log ---------------------------------------------------------------------

    def requests(self, service: str | None = None, method: str | None = None, path_regex: str | None = None,
                 status: int | None = None) -> list[dict]:
        """Logged requests, oldest first, filtered by service (catalog type or "guest"), method,
        a regex searched in the path, and status."""
        with self._lock:
            entries = [copy.deepcopy(e) for e in self._log]
        return [e for e in entries
                if (service is None or e["service"] == service)
                and (method is None or e["method"] == method.upper())
                and (path_regex is None or re.search(path_regex, e["path"]))
                and (status is None or e["status"] == status)]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, request: Request, response: Response | None, fault: Fault | None) -> None:
        entry = {
            "seq": 0, "time": request.received, "method": request.method, "path": request.path,
            "query": request.query, "service": request.service, "interface": request.interface,
            "region": request.region, "prefix": request.prefix,
            "status": None if response is None or response.drop else response.status,
            "dropped": bool(response is not None and response.drop),
            "request_headers": {h: request.headers[h] for h in LOGGED_REQUEST_HEADERS if request.headers.get(h)},
            "response_headers": {},
            "token_sent": bool(request.headers.get("X-Auth-Token")),
            "authenticated": request.authenticated,
            "listener": request.listener,
            "fault": fault.id if fault else None,
            "duration": time.time() - request.received,
        }
        if response is not None and not response.drop:
            entry["response_headers"] = {h: response.header(h) for h in LOGGED_RESPONSE_HEADERS
                                         if response.header(h) is not None}
            entry["request_id"] = response.header("X-Openstack-Request-Id")
        entry.update(request.note)
        with self._lock:
            self._log_seq += 1
            entry["seq"] = self._log_seq
            self._log.append(entry)

    def record_guest_request(self, server_id: str, port: int, method: str, path: str, query: str) -> None:
        with self._lock:
            self._log_seq += 1
            self._log.append({"seq": self._log_seq, "time": time.time(), "method": method, "path": path,
                              "query": query, "service": "guest", "server_id": server_id, "port": port,
                              "status": 200, "authenticated": False, "dropped": False})

    # ---- dispatch ---------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        """Routes one request: control API, injected faults, then the service."""
        if request.listener == "main" and (request.path == "/_fake" or request.path.startswith("/_fake/")):
            try:
                return self._control(request)
            except ApiError as error:
                return error.response
            except (ValueError, KeyError, TypeError) as error:
                return json_response(400, {"error": f"{type(error).__name__}: {error}"})
        self._route(request)
        fault = self._take_fault(request)
        response = None
        if fault is not None:
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.drop:
                response = Response(0, drop="reset" if fault.drop == "reset" else "close")
            elif fault.status:
                response = self._fault_response(request, fault)
        if response is None:
            try:
                response = self._serve(request)
            except ApiError as error:
                response = error.response
            except Exception:  # noqa: BLE001 - a fake must answer, and say why on stderr
                traceback.print_exc()
                response = self._service_error(request, 500, None)
        self._record(request, response, fault)
        return response

    def _route(self, request: Request) -> None:
        if request.listener == "swift":
            # Swift's own port serves Swift only, under /v1 (one URL for every interface).
            path = request.path
            if path == SWIFT_OWN_PREFIX or path.startswith(SWIFT_OWN_PREFIX + "/"):
                request.prefix = SWIFT_OWN_PREFIX
                request.service, request.interface, request.region = "object-store", "public", "RegionOne"
                request.rest = path[len(SWIFT_OWN_PREFIX):]
            return
        for iface_prefix, interface, region, allowed in INTERFACE_PREFIXES:
            if iface_prefix and not request.path.startswith(iface_prefix + "/"):
                continue
            remainder = request.path[len(iface_prefix):]
            for service_prefix, service in SERVICE_PREFIXES:
                if service == "object-store" and self.swift_own_port:
                    continue  # Swift lives on its own port then; /object-store here is a 404
                if service in allowed and (remainder == service_prefix or remainder.startswith(service_prefix + "/")):
                    request.prefix = iface_prefix + service_prefix
                    request.service, request.interface, request.region = service, interface, region
                    request.rest = remainder[len(service_prefix):]
                    return
            if iface_prefix:
                return

    def _serve(self, request: Request) -> Response:
        handlers = {"identity": self._keystone, "compute": self._nova, "object-store": self._swift_api,
                    "dns": self._designate}
        if request.service is None:
            return json_response(404, {"error": "no such service", "path": request.path})
        return handlers[request.service](request)

    def _service_error(self, request: Request, status: int, message: str | None, retry_after: Any = None,
                       body: Any = None) -> Response:
        """An error in the format of the service the request went to (or `body` verbatim: a dict
        or list as JSON, bytes or text as they are), with that service's request-id headers."""
        extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
        rid = request_id()
        if request.service == "object-store":
            tid = swift_trans_id()
            ids = [("X-Trans-Id", tid), ("X-Openstack-Request-Id", tid)]
        elif request.service == "compute":
            ids = [("X-Openstack-Request-Id", rid), ("X-Compute-Request-Id", rid)]
        else:
            ids = [("X-Openstack-Request-Id", rid)]
        if body is not None:
            if isinstance(body, (dict, list)):
                raw, content_type = json.dumps(body).encode(), "application/json"
            else:
                raw = body if isinstance(body, bytes) else str(body).encode()
                content_type = "text/html; charset=UTF-8" if request.service == "object-store" else "text/plain"
            return Response(status, raw, [("Content-Type", content_type)] + extra + ids)
        if request.service == "compute":
            return nova_fault(status, message, retry_after, ids)
        if request.service == "object-store":
            return swift_error(status, None, extra + ids)
        if request.service == "dns":
            return designate_error(status, DESIGNATE_TYPES.get(status, "unknown"),
                                   message or WEBOB_EXPLANATIONS.get(status), rid, extra_headers=extra)
        return keystone_error(status, message, headers=extra + ids)

    # ---- fault injection ----------------------------------------------------------------------

    def add_fault(self, method: str | None = None, path_regex: str | None = None, status: int | None = None,
                  times: int | None = 1, delay_seconds: float = 0, drop: bool | str = False,
                  retry_after: Any = None, body: Any = None, service: str | None = None) -> int:
        """The next `times` matching requests (None = all of them) get `status` in the service's own
        error format, after `delay_seconds`; or only the delay, then the normal answer; or, with
        `drop` (True/"close" or "reset"), no answer at all. Returns the fault's id."""
        if status is None and not drop and not delay_seconds:
            raise ValueError("a fault needs a status, a delay or drop")
        with self._lock:
            self._fault_seq += 1
            fault = Fault(self._fault_seq, method, path_regex, int(status) if status else None,
                          None if times is None else int(times), float(delay_seconds), drop, retry_after, body,
                          service)
            self._faults.append(fault)
            return fault.id

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, request: Request, fault: Fault) -> Response:
        response = self._service_error(request, fault.status, None, fault.retry_after, fault.body)
        if fault.status == 401:
            response.headers.append(("WWW-Authenticate", self._www_authenticate()))
        return response

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
    # Keystone (contract §1)
    # ==========================================================================================

    def _www_authenticate(self) -> str:
        return f'Keystone uri="{self.url}/identity"'

    def _unauthorized_keystone_style(self, extra: list[tuple[str, str]]) -> Response:
        """keystonemiddleware's 401 for Nova and Designate: Keystone body + WWW-Authenticate (§1)."""
        return keystone_error(401, headers=[("WWW-Authenticate", self._www_authenticate())] + extra)

    def _token_for(self, request: Request) -> Token | None:
        """The request's token if it is valid and project-scoped (keystonemiddleware rejects others)."""
        value = request.headers.get("X-Auth-Token")
        with self._lock:
            token = self._tokens.get(value) if value else None
            if token is None or not token.valid() or token.project is None:
                return None
        request.authenticated = True
        return token

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid at once (services answer 401, contract §1)."""
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    @property
    def auth_count(self) -> int:
        """Tokens issued (successful POST /v3/auth/tokens)."""
        with self._lock:
            return self._auth_count

    @property
    def auth_failures(self) -> int:
        with self._lock:
            return self._auth_failures

    def valid_token_count(self) -> int:
        with self._lock:
            return sum(1 for t in self._tokens.values() if t.valid())

    def _keystone(self, request: Request) -> Response:
        rid = request_id()
        extra = [("X-Openstack-Request-Id", rid)]
        rest = request.rest
        if rest in ("", "/") and request.method in ("GET", "HEAD"):
            return json_response(300, {"versions": {"values": [self._identity_version()]}}, extra)
        if rest in ("/v3", "/v3/") and request.method in ("GET", "HEAD"):
            return json_response(200, {"version": self._identity_version()}, extra)
        if rest == "/v3/auth/tokens":
            if request.method == "POST":
                return self._issue_token(request, extra)
            if request.method in ("GET", "HEAD", "DELETE"):
                return self._token_subject(request, extra)
            return keystone_error(405, "The method is not allowed for the requested URL.", headers=extra)
        return keystone_error(404, headers=extra)

    def _identity_version(self) -> dict:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": self.url + "/identity/v3/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.identity-v3+json"}]}

    def _token_subject(self, request: Request, extra: list) -> Response:
        """GET (validate) / DELETE (revoke) a token named by X-Subject-Token."""
        if self._token_for(request) is None:
            return self._unauthorized_keystone_style(extra)
        subject = request.headers.get("X-Subject-Token", "")
        with self._lock:
            token = self._tokens.get(subject)
            if token is None or not token.valid():
                return keystone_error(404, "Could not find token.", headers=extra)
            if request.method == "DELETE":
                token.revoked = True
                return Response(204, b"", extra)
            body = self._token_body(token, include_catalog="nocatalog" not in dict(request.params))
        return json_response(200, body, extra + [("X-Subject-Token", subject)])

    def _issue_token(self, request: Request, extra: list) -> Response:
        request.note["auth_method"] = None
        try:
            body = request.json()
            identity = body["auth"]["identity"]
            methods = identity["methods"]
            if not isinstance(methods, list) or not methods:
                raise KeyError("methods")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            # keystone.exception.ValidationError's wording ("Expecting to find %(attribute)s in %(target)s").
            attribute = error.args[0] if isinstance(error, KeyError) else "auth"
            return keystone_error(400, f"Expecting to find {attribute} in auth. The server could not comply with "
                                       "the request since it is either malformed or otherwise incorrect. The "
                                       "client is assumed to be in error.", headers=extra)
        auth = body["auth"]
        request.note["auth_method"] = ",".join(str(m) for m in methods)
        unsupported = [m for m in methods if m not in ("password", "application_credential")]
        with self._lock:
            if unsupported:
                return self._auth_failed(extra, "Attempted to authenticate with an unsupported method.")
            if "application_credential" in methods:
                # keystone/auth/core.py: scope is refused before the credential is even looked at.
                if auth.get("scope"):
                    return self._auth_failed(extra, "Error authenticating with application credential: "
                                                    "Application credentials cannot request a scope.")
                result = self._authenticate_app_cred(identity.get("application_credential"), request)
            else:
                result = self._authenticate_password(identity.get("password"), auth.get("scope"), request)
            if isinstance(result, Response):
                result.headers += extra
                return result
            token_id = secrets.token_hex(32)
            self._tokens[token_id] = result
            self._auth_count += 1
            body = self._token_body(result, include_catalog="nocatalog" not in dict(request.params))
        return json_response(201, body, extra + [("X-Subject-Token", token_id), ("Vary", "X-Auth-Token")])

    def _auth_failed(self, extra: list, message: str | None = None) -> Response:
        self._auth_failures += 1
        return keystone_error(401, message, headers=extra + [("WWW-Authenticate", self._www_authenticate())])

    def _find_domain(self, ref: Any) -> dict | None:
        if not isinstance(ref, dict):
            return None
        for domain in self._domains:
            if ("id" in ref and ref["id"] == domain["id"]) or ("id" not in ref and ref.get("name") == domain["name"]):
                return domain
        return None

    def _find_user(self, ref: Any) -> dict | None | Response:
        """A user by id, or by name + domain (a name without a domain is a 400, as in Keystone)."""
        if not isinstance(ref, dict):
            return keystone_error(400, "Expecting to find user in password.")
        if "id" in ref:
            return next((u for u in self._users if u["id"] == ref["id"]), None)
        if "name" not in ref:
            return keystone_error(400, "Expecting to find id or name in user.")
        if "domain" not in ref:
            return keystone_error(400, "Expecting to find domain in user. The server could not comply with the "
                                       "request since it is either malformed or otherwise incorrect. The client "
                                       "is assumed to be in error.")
        domain = self._find_domain(ref["domain"])
        if domain is None:
            return None
        return next((u for u in self._users
                     if u["name"] == ref["name"] and u.get("domain_id", "default") == domain["id"]), None)

    def _authenticate_password(self, password: Any, scope: Any, request: Request) -> Token | Response:
        if not isinstance(password, dict):
            return keystone_error(400, "Expecting to find password in identity.")
        user = self._find_user(password.get("user"))
        if isinstance(user, Response):
            return user
        user_ref = password.get("user") or {}
        request.note["auth_user"] = user_ref.get("name") or user_ref.get("id")
        if user is None or not isinstance(user_ref.get("password"), str) or \
                not secrets.compare_digest(user_ref["password"], user["password"]):
            # Keystone raises Unauthorized('Invalid username or password'), shown generically (§1).
            return self._auth_failed([])
        project = None
        if scope:
            if not isinstance(scope, dict) or "project" not in scope:
                return self._auth_failed([])  # domain/system scope: not offered by this fake
            project_ref = scope["project"]
            request.note["auth_scope"] = project_ref.get("name") or project_ref.get("id")
            if "id" in project_ref:
                project = next((p for p in self._projects if p["id"] == project_ref["id"]), None)
            else:
                if "domain" not in project_ref:
                    return keystone_error(400, "Expecting to find domain in project. The server could not comply "
                                               "with the request since it is either malformed or otherwise "
                                               "incorrect. The client is assumed to be in error.")
                domain = self._find_domain(project_ref["domain"])
                project = next((p for p in self._projects if domain and p["name"] == project_ref.get("name")
                                and p.get("domain_id", "default") == domain["id"]), None)
            if project is None or project["id"] not in user.get("projects", [p["id"] for p in self._projects]):
                return self._auth_failed([])
        now = time.time()
        return Token(user, project, ["password"], now, now + self.token_lifetime_seconds, self._roles)

    def _authenticate_app_cred(self, ref: Any, request: Request) -> Token | Response:
        if not isinstance(ref, dict) or "secret" not in ref:
            return keystone_error(400, "Expecting to find secret in application_credential.")
        if "id" in ref:
            cred = next((a for a in self._app_creds if a["id"] == ref["id"]), None)
            request.note["auth_user"] = ref["id"]
        else:
            if "name" not in ref or "user" not in ref:
                # The user is required when the credential is given by name (§1b).
                return keystone_error(400, "Expecting to find user in application_credential.")
            user = self._find_user(ref["user"])
            if isinstance(user, Response):
                return user
            request.note["auth_user"] = ref["name"]
            cred = next((a for a in self._app_creds if user and a["name"] == ref["name"]
                         and a["user_id"] == user["id"]), None)
        if cred is None or not secrets.compare_digest(str(ref["secret"]), cred["secret"]):
            return self._auth_failed([])
        user = next(u for u in self._users if u["id"] == cred["user_id"])
        project = next(p for p in self._projects if p["id"] == cred["project_id"])
        now = time.time()
        return Token(user, project, ["application_credential"], now, now + self.token_lifetime_seconds,
                     cred.get("roles", self._roles),
                     {"id": cred["id"], "name": cred["name"], "restricted": not cred.get("unrestricted", False)})

    def _domain_ref(self, domain_id: str) -> dict:
        domain = next((d for d in self._domains if d["id"] == domain_id), {"id": domain_id, "name": domain_id})
        return {"id": domain["id"], "name": domain["name"]}

    def _token_body(self, token: Token, include_catalog: bool) -> dict:
        """The token body of contract §1 (samples/auth/responses/project-scoped-password.json)."""
        body: dict[str, Any] = {
            "methods": token.methods,
            "expires_at": iso_micro_z(token.expires),
            "issued_at": iso_micro_z(token.issued),
            "audit_ids": [token.audit_id],
            "user": {"domain": self._domain_ref(token.user.get("domain_id", "default")), "id": token.user["id"],
                     "name": token.user["name"], "password_expires_at": None},
        }
        if token.project is not None:
            body["is_domain"] = False
            body["project"] = {"domain": self._domain_ref(token.project.get("domain_id", "default")),
                               "id": token.project["id"], "name": token.project["name"]}
            body["roles"] = [{"id": r["id"], "name": r["name"]} for r in token.roles]
            if include_catalog:
                body["catalog"] = self.catalog(token.project["id"])
        if token.app_cred is not None:
            body["application_credential"] = dict(token.app_cred)
        return {"token": body}

    def catalog(self, project_id: str | None = None) -> list[dict]:
        """The service catalog a token for `project_id` carries (contract §1: identity, compute,
        object-store, dns; public/internal/admin in RegionOne, and compute public in RegionTwo)."""
        project_id = project_id or self.default_project_id
        suffix = {"identity": "", "compute": f"/{project_id}" if self.compute_url_with_project_id else "",
                  "object-store": f"/AUTH_{project_id}", "dns": ""}
        catalog = []
        for service_prefix, service in SERVICE_PREFIXES:
            endpoints = []
            for iface_prefix, interface, region, allowed in reversed(INTERFACE_PREFIXES):
                if service not in allowed:
                    continue
                url = self.url + iface_prefix + service_prefix + suffix[service]
                if service == "object-store" and self.swift_own_port:
                    url = self.swift_url + suffix[service]  # one URL for public, internal and admin
                endpoints.append({"id": uuid.uuid5(uuid.NAMESPACE_URL, f"{interface}|{region}|{service}").hex,
                                  "interface": interface, "region": region, "region_id": region, "url": url})
            catalog.append({"type": service, "name": CATALOG_NAMES[service],
                            "id": uuid.uuid5(uuid.NAMESPACE_URL, service).hex, "endpoints": endpoints})
        return catalog

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
        if detail:
            items = [self._server_view(s, version, request.prefix) for s in servers]
        else:
            items = [{"id": s.id, "links": self._server_links(s, request.prefix), "name": s.name} for s in servers]
        return json_response(200, {"servers": items})

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

    # ==========================================================================================
    # Swift (contract §3)
    # ==========================================================================================

    def swift_objects(self, container: str, project_id: str | None = None) -> dict[str, bytes]:
        """name -> bytes of every object in the container (an empty dict if it does not exist)."""
        with self._lock:
            objects = self._swift.get(project_id or self.default_project_id, {}).get(container, {})
            return {name: obj.data for name, obj in objects.items() if not self._swift_expired(obj)}

    def swift_put_count(self, container: str, name: str, project_id: str | None = None) -> int:
        """How many successful object PUTs this name got (survives deletes and overwrites)."""
        with self._lock:
            return self._swift_put_counts.get((project_id or self.default_project_id, container, name), 0)

    def swift_containers(self, project_id: str | None = None) -> list[str]:
        with self._lock:
            return sorted(self._swift.get(project_id or self.default_project_id, {}))

    def swift_object_info(self, container: str, name: str, project_id: str | None = None) -> dict | None:
        """Size, unquoted etag, content type, metadata, delete-at and PUT count of one object."""
        project = project_id or self.default_project_id
        with self._lock:
            obj = self._swift.get(project, {}).get(container, {}).get(name)
            if obj is None or self._swift_expired(obj):
                return None
            return {"bytes": len(obj.data), "etag": obj.etag, "content_type": obj.content_type,
                    "meta": dict(obj.meta), "delete_at": obj.delete_at,
                    "put_count": self._swift_put_counts.get((project, container, name), 0)}

    @staticmethod
    def _swift_expired(obj: SwiftObject) -> bool:
        return obj.delete_at is not None and time.time() >= obj.delete_at

    def _swift_api(self, request: Request) -> Response:
        tid = swift_trans_id()
        ids = [("X-Trans-Id", tid), ("X-Openstack-Request-Id", tid)]
        try:
            response = self._swift_route(request)
        except ApiError as error:
            response = error.response
        response.headers += ids
        return response

    def _swift_route(self, request: Request) -> Response:
        parts = request.rest.lstrip("/").split("/", 2)
        account = parts[0] if parts and parts[0] else None
        if account is None:
            return swift_error(404)
        token = self._token_for(request)
        if token is None:
            # delay_auth_decision=True: swob's 401 HTML, plus keystonemiddleware's header (§1).
            return swift_error(401, headers=[("WWW-Authenticate", self._www_authenticate())])
        if account != f"AUTH_{token.project['id']}":
            return swift_error(403)  # keystoneauth: a known user on someone else's account
        container = urllib.parse.unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        obj = urllib.parse.unquote(parts[2]) if len(parts) > 2 and parts[2] else None
        project = token.project["id"]
        with self._lock:
            if container is None:
                return self._swift_account(request, project)
            if obj is None:
                return self._swift_container(request, project, container)
            return self._swift_object(request, project, container, obj)

    def _swift_listing(self, request: Request, names: list[tuple[str, dict]]) -> Response:
        prefix = request.param("prefix") or ""
        marker = request.param("marker") or ""
        end_marker = request.param("end_marker")
        limit = int(request.param("limit") or 10000)
        items = [(n, info) for n, info in sorted(names) if n.startswith(prefix) and n > marker
                 and (end_marker is None or n < end_marker)][:limit]
        wants_json = request.param("format") == "json" or "application/json" in (request.headers.get("Accept") or "")
        if wants_json:
            return Response(200, json.dumps([dict(info, name=n) for n, info in items]).encode(),
                            [("Content-Type", "application/json; charset=utf-8")])
        if not items:
            return Response(204, b"", [("Content-Type", "text/plain; charset=utf-8")])
        return Response(200, "".join(n + "\n" for n, _ in items).encode(),
                        [("Content-Type", "text/plain; charset=utf-8")])

    def _swift_account(self, request: Request, project: str) -> Response:
        containers = self._swift.get(project, {})
        if request.method in ("GET", "HEAD"):
            names = [(name, {"count": len(objs), "bytes": sum(len(o.data) for o in objs.values())})
                     for name, objs in containers.items()]
            response = self._swift_listing(request, names) if request.method == "GET" else Response(204)
            response.headers += [("X-Account-Container-Count", str(len(containers)))]
            return response
        return swift_error(405)

    def _swift_container(self, request: Request, project: str, container: str) -> Response:
        containers = self._swift.setdefault(project, {})
        if request.method == "PUT":
            # 201 when new, 202 when it exists (contract §3).
            status = 202 if container in containers else 201
            containers.setdefault(container, {})
            self._swift_created.setdefault((project, container), time.time())
            return Response(status, b"", [("Content-Type", "text/html; charset=UTF-8")])
        if container not in containers:
            return swift_error(404)
        objects = {n: o for n, o in containers[container].items() if not self._swift_expired(o)}
        stats = [("X-Container-Object-Count", str(len(objects))),
                 ("X-Container-Bytes-Used", str(sum(len(o.data) for o in objects.values()))),
                 ("X-Timestamp", "%.5f" % self._swift_created.get((project, container), time.time()))]
        if request.method == "GET":
            response = self._swift_listing(request, [
                (n, {"hash": o.etag, "last_modified": iso_micro(o.last_modified), "bytes": len(o.data),
                     "content_type": o.content_type}) for n, o in objects.items()])
            response.headers += stats
            return response
        if request.method == "HEAD":
            return Response(204, b"", [("Content-Type", "text/plain; charset=utf-8")] + stats)
        if request.method == "DELETE":
            if objects:
                return swift_error(409)
            del containers[container]
            return Response(204)
        return swift_error(405)

    def _swift_object(self, request: Request, project: str, container: str, name: str) -> Response:
        containers = self._swift.setdefault(project, {})
        if container not in containers:
            # container_info not successful -> HTTPNotFound (contract §3).
            return swift_error(404)
        objects = containers[container]
        current = objects.get(name)
        if current is not None and self._swift_expired(current):
            del objects[name]
            current = None
        if request.method == "PUT":
            return self._swift_put(request, project, container, name, objects, current)
        if request.method in ("GET", "HEAD"):
            if current is None:
                return swift_error(404)
            headers = [("Content-Type", current.content_type), ("Etag", f'"{current.etag}"'),
                       ("Last-Modified", http_date(current.last_modified)), ("Accept-Ranges", "bytes"),
                       ("X-Timestamp", "%.5f" % current.last_modified)]
            headers += [(f"X-Object-Meta-{k}", v) for k, v in current.meta.items()]
            if current.delete_at is not None:
                headers.append(("X-Delete-At", str(int(current.delete_at))))
            return Response(200, current.data, headers, content_length=len(current.data))
        if request.method == "DELETE":
            if current is None:
                return swift_error(404)
            del objects[name]
            return Response(204, b"", [("Content-Type", "text/html; charset=UTF-8")])
        return swift_error(405)

    def _swift_put(self, request: Request, project: str, container: str, name: str,
                   objects: dict[str, SwiftObject], current: SwiftObject | None) -> Response:
        headers = request.headers
        if not request.body_framed:
            return swift_error(411)
        if_none_match = headers.get("If-None-Match")
        if if_none_match is not None and if_none_match.strip() != "*":
            return swift_error(400, "If-None-Match only supports *")
        delete_at = None
        if headers.get("X-Delete-After") is not None:
            try:
                after = int(headers["X-Delete-After"])
            except ValueError:
                return swift_error(400, "Non-integer X-Delete-After")
            if after <= 0:
                return swift_error(400, "X-Delete-After in past")
            delete_at = time.time() + after
        elif headers.get("X-Delete-At") is not None:
            try:
                delete_at = float(int(headers["X-Delete-At"]))
            except ValueError:
                return swift_error(400, "Non-integer X-Delete-At")
            if delete_at <= time.time():
                return swift_error(400, "X-Delete-At in past")
        if if_none_match is not None and current is not None:
            return swift_error(412)
        etag = hashlib.md5(request.body).hexdigest()
        sent_etag = headers.get("ETag")
        if sent_etag is not None and sent_etag.strip().strip('"').lower() != etag:
            return swift_error(422)
        content_type = headers.get("Content-Type") or mimetypes.guess_type(name)[0] or "application/octet-stream"
        meta = {k[len("X-Object-Meta-"):]: v for k, v in headers.items() if k.lower().startswith("x-object-meta-")}
        now = time.time()
        objects[name] = SwiftObject(request.body, etag, content_type, now, meta, delete_at)
        key = (project, container, name)
        self._swift_put_counts[key] = self._swift_put_counts.get(key, 0) + 1
        request.note["bytes"] = len(request.body)
        # 201 with an unquoted Etag, always, overwrites included (contract §3).
        return Response(201, b"", [("Last-Modified", http_date(now)), ("Etag", etag),
                                   ("Content-Type", "text/html; charset=UTF-8")])

    # ==========================================================================================
    # Designate (contract §4)
    # ==========================================================================================

    def _add_zone_locked(self, spec: dict) -> Zone:
        now = time.time()
        name = spec["name"] if spec["name"].endswith(".") else spec["name"] + "."
        zone = Zone(id=spec.get("id") or str(uuid.uuid4()), name=name,
                    email=spec.get("email", f"hostmaster@{name.rstrip('.')}"), ttl=int(spec.get("ttl", 3600)),
                    serial=int(now), project_id=spec.get("project_id") or self.default_project_id,
                    created_at=now - 86400, description=spec.get("description"), type=spec.get("type", "PRIMARY"),
                    status=spec.get("status", "ACTIVE"), order=self._next_order())
        self._zones[zone.id] = zone
        for rtype, records in (("SOA", [f"ns1.fake-designate.test. {zone.email.replace('@', '.')}. {zone.serial} "
                                        "3588 600 86400 3600"]),
                               ("NS", ["ns1.fake-designate.test."])):
            rs = RecordSet(str(uuid.uuid4()), zone.id, zone.name, zone.name, rtype, None, records, zone.project_id,
                           zone.created_at, managed=True, order=self._next_order())
            self._recordsets[rs.id] = rs
        return zone

    def _next_order(self) -> int:
        self._designate_seq += 1
        return self._designate_seq

    def zone_id(self, name: str) -> str:
        with self._lock:
            return next(z.id for z in self._zones.values() if z.name == name)

    def recordsets(self, zone: str | None = None, include_managed: bool = False) -> list[dict]:
        """Recordsets (by zone name or id, or all), as the API renders them; SOA/NS left out
        unless include_managed."""
        with self._lock:
            self._advance_locked()
            result = []
            for rs in self._recordsets.values():
                if zone is not None and zone not in (rs.zone_id, rs.zone_name):
                    continue
                if rs.managed and not include_managed:
                    continue
                result.append(self._recordset_view(rs, "/dns"))
            return result

    def _propagate_locked(self, recordset: RecordSet) -> None:
        """The pool manager finished: PENDING -> ACTIVE (or gone, for a delete)."""
        zone = self._zones.get(recordset.zone_id)
        if recordset.action == "DELETE":
            self._recordsets.pop(recordset.id, None)
        else:
            recordset.status, recordset.action, recordset.pending_until = "ACTIVE", "NONE", None
        if zone and not any(r.status == "PENDING" for r in self._recordsets.values() if r.zone_id == zone.id):
            zone.status, zone.action = "ACTIVE", "NONE"

    def _designate(self, request: Request) -> Response:
        rid = request_id()
        rest = request.rest
        if rest in ("", "/") and request.method in ("GET", "HEAD"):
            return json_response(200, {"versions": [{"id": "v2", "status": "CURRENT", "links": [
                {"href": f"{self.url}{request.prefix}/v2", "rel": "self"}]}]}, [("X-Openstack-Request-Id", rid)])
        token = self._token_for(request)
        if token is None:
            return self._unauthorized_keystone_style([("X-Openstack-Request-Id", rid)])
        parts = rest.strip("/").split("/")
        try:
            with self._lock:
                self._advance_locked()
                response = self._designate_route(request, token, parts, rid)
        except ApiError as error:
            return error.response
        response.headers.append(("X-Openstack-Request-Id", rid))
        return response

    def _designate_route(self, request: Request, token: Token, parts: list[str], rid: str) -> Response:
        method = request.method
        project = token.project["id"]
        not_found = designate_error(404, "not_found", "The resource could not be found.", rid)
        if len(parts) < 2 or parts[0] != "v2":
            return not_found
        if parts[1] == "zones":
            if len(parts) == 2:
                return self._designate_list_zones(request, project, rid) if method == "GET" else self._bad_method(rid)
            zone = self._designate_zone(parts[2], project, rid)
            if len(parts) == 3:
                return json_response(200, self._zone_view(zone, request.prefix)) if method == "GET" \
                    else self._bad_method(rid)
            if parts[3] != "recordsets" or len(parts) > 5:
                return not_found
            if len(parts) == 4:
                if method == "GET":
                    return self._designate_list_recordsets(request, project, rid, zone)
                if method == "POST":
                    return self._designate_create(request, zone, rid)
                return self._bad_method(rid)
            recordset = self._designate_recordset(parts[4], zone.id, project, rid)
            if method == "GET":
                return json_response(200, self._recordset_view(recordset, request.prefix))
            if method == "PUT":
                return self._designate_update(request, recordset, rid)
            if method == "DELETE":
                return self._designate_delete(request, recordset, rid)
            return self._bad_method(rid)
        if parts[1] == "recordsets":
            if len(parts) == 2 and method == "GET":
                return self._designate_list_recordsets(request, project, rid, None)
            if len(parts) == 3 and method == "GET":
                return json_response(200, self._recordset_view(
                    self._designate_recordset(parts[2], None, project, rid), request.prefix))
            return self._bad_method(rid) if len(parts) <= 3 else not_found
        return not_found

    @staticmethod
    def _bad_method(rid: str) -> Response:
        return designate_error(405, "method_not_allowed", "The method is not allowed for this resource.", rid)

    def _designate_zone(self, zone_id: str, project: str, rid: str) -> Zone:
        if not is_uuid(zone_id):
            raise ApiError(designate_error(400, "invalid_uuid", f"Invalid UUID {zone_id}", rid))
        zone = self._zones.get(zone_id)
        if zone is None or zone.project_id != project:
            raise ApiError(designate_error(404, "zone_not_found", "Could not find Zone", rid))
        return zone

    def _designate_recordset(self, rs_id: str, zone_id: str | None, project: str, rid: str) -> RecordSet:
        if not is_uuid(rs_id):
            raise ApiError(designate_error(400, "invalid_uuid", f"Invalid UUID {rs_id}", rid))
        rs = self._recordsets.get(rs_id)
        if rs is None or rs.project_id != project or (zone_id is not None and rs.zone_id != zone_id):
            raise ApiError(designate_error(404, "recordset_not_found", "Could not find RecordSet", rid))
        return rs

    def _designate_filters(self, request: Request, accepted: tuple[str, ...], rid: str) -> dict[str, str]:
        """rest.py::_apply_filter_params: unknown keys -> 400 Invalid filters; repeats -> Duplicate."""
        seen: dict[str, str] = {}
        invalid, duplicate = [], []
        for key, value in request.params:
            if key in DESIGNATE_PAGING:
                continue
            if key not in accepted:
                invalid.append(key)
            elif key in seen:
                duplicate.append(key)
            seen[key] = value
        if invalid:
            raise ApiError(designate_error(400, "bad_request", "Invalid filters " + ", ".join(invalid), rid))
        if duplicate:
            raise ApiError(designate_error(400, "bad_request", "Duplicate filters " + ", ".join(duplicate), rid))
        return {k: v for k, v in seen.items() if k in accepted}

    @staticmethod
    def _filter_match(pattern: str, value: Any) -> bool:
        """designate's criterion: '*' becomes SQL '%' and then LIKE applies ('_' = any one char);
        otherwise equality. Case-insensitive, like MySQL's default collation."""
        text = "" if value is None else str(value)
        like = pattern.replace("*", "%")
        if "%" not in like:
            return text.lower() == pattern.lower()
        regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in like)
        return re.fullmatch(regex, text, re.IGNORECASE | re.DOTALL) is not None

    def _designate_page(self, request: Request, items: list[Any], rid: str, collection: str,
                        render: Callable[[Any], dict]) -> Response:
        """Sorting and limit/marker paging; links.next when the page is full (designate's rule)."""
        sort_key = request.param("sort_key", "created_at")
        sort_dir = request.param("sort_dir", "asc")
        if sort_dir not in ("asc", "desc"):
            raise ApiError(designate_error(400, "invalid_sort_dir", "Invalid sort direction", rid))
        if sort_key not in ("created_at", "id", "updated_at", "name", "type", "ttl", "status", "serial", "zone_id",
                            "tenant_id"):
            raise ApiError(designate_error(400, "invalid_sort_key", "Invalid sort key", rid))
        attribute = "project_id" if sort_key == "tenant_id" else sort_key

        def sort_value(item: Any) -> tuple:
            value = getattr(item, attribute, None)
            return (value is not None, value if value is not None else 0, item.order)
        items = sorted(items, key=sort_value, reverse=sort_dir == "desc")
        raw_limit = request.param("limit")
        if raw_limit is None:
            limit = self.designate_default_limit
        elif raw_limit == "max":
            limit = 1000
        elif not raw_limit.isdigit():
            raise ApiError(designate_error(400, "invalid_limit", "limit should be an integer", rid))
        else:
            limit = int(raw_limit)
            if limit <= 0:
                raise ApiError(designate_error(400, "invalid_limit", "limit should be larger than 0", rid))
        total = len(items)
        marker = request.param("marker")
        if marker is not None:
            index = next((i for i, item in enumerate(items) if item.id == marker), None)
            if index is None:
                raise ApiError(designate_error(400, "marker_not_found", f"Marker {marker} could not be found", rid))
            items = items[index + 1:]
        page = items[:limit]
        self_link = f"{self.url}{request.path}" + (f"?{request.query}" if request.query else "")
        links = {"self": self_link}
        if page and len(page) == limit:
            params = [(k, v) for k, v in request.params if k not in ("marker", "limit")]
            params += [("limit", str(limit)), ("marker", page[-1].id)]
            links["next"] = f"{self.url}{request.path}?{urllib.parse.urlencode(params)}"
        return json_response(200, {collection: [render(item) for item in page], "links": links,
                                   "metadata": {"total_count": total}})

    def _designate_list_zones(self, request: Request, project: str, rid: str) -> Response:
        filters = self._designate_filters(request, DESIGNATE_ZONE_FILTERS, rid)
        zones = [z for z in self._zones.values() if z.project_id == project
                 and all(self._filter_match(v, getattr(z, k)) for k, v in filters.items())]
        return self._designate_page(request, zones, rid, "zones", lambda z: self._zone_view(z, request.prefix))

    def _designate_list_recordsets(self, request: Request, project: str, rid: str, zone: Zone | None) -> Response:
        filters = self._designate_filters(request, DESIGNATE_RECORDSET_FILTERS, rid)

        def matches(rs: RecordSet) -> bool:
            for key, value in filters.items():
                if key == "data":
                    if not any(self._filter_match(value, record) for record in rs.records):
                        return False
                elif not self._filter_match(value, getattr(rs, key)):
                    return False
            return True
        items = [rs for rs in self._recordsets.values() if rs.project_id == project
                 and (zone is None or rs.zone_id == zone.id) and matches(rs)]
        return self._designate_page(request, items, rid, "recordsets",
                                    lambda r: self._recordset_view(r, request.prefix))

    def _zone_view(self, zone: Zone, prefix: str) -> dict:
        return {"id": zone.id, "pool_id": "794ccc2c-d751-44fe-b57f-8894c9f5c842", "project_id": zone.project_id,
                "name": zone.name, "email": zone.email, "description": zone.description, "ttl": zone.ttl,
                "serial": zone.serial, "status": zone.status, "action": zone.action, "version": zone.version,
                "attributes": {}, "type": zone.type, "masters": [], "transferred_at": None, "shared": False,
                "created_at": iso_micro(zone.created_at),
                "updated_at": iso_micro(zone.updated_at) if zone.updated_at else None,
                "links": {"self": f"{self.url}{prefix}/v2/zones/{zone.id}"}}

    def _recordset_view(self, rs: RecordSet, prefix: str) -> dict:
        """The recordset body of contract §4 (samples/recordsets/create-recordset-*.json)."""
        return {"id": rs.id, "zone_id": rs.zone_id, "zone_name": rs.zone_name, "name": rs.name, "type": rs.type,
                "ttl": rs.ttl, "records": list(rs.records), "status": rs.status, "action": rs.action,
                "version": rs.version, "description": rs.description, "created_at": iso_micro(rs.created_at),
                "updated_at": iso_micro(rs.updated_at) if rs.updated_at else None, "project_id": rs.project_id,
                "links": {"self": f"{self.url}{prefix}/v2/zones/{rs.zone_id}/recordsets/{rs.id}"}}

    def _invalid_object(self, rid: str, path: str, message: str, validator: str, value: Any) -> ApiError:
        """400 invalid_object with an errors list (contract §4; designate ValidationErrorList)."""
        return ApiError(designate_error(400, "invalid_object", "Provided object does not match schema", rid, {
            "errors": [{"path": [path], "message": message, "validator": validator, "validator_value": value}]}))

    def _validate_recordset_body(self, body: Any, rid: str, creating: bool) -> dict:
        if not isinstance(body, dict):
            raise ApiError(designate_error(400, "invalid_object", "Provided object is not valid.", rid))
        extra = [k for k in body if k not in RECORDSET_WRITABLE]
        if extra:
            raise ApiError(designate_error(400, "invalid_object", f"Provided object does not match schema.  Keys "
                                                                  f"{extra} are not valid for recordset", rid))
        if creating:
            for key in ("name", "type"):
                if not isinstance(body.get(key), str) or not body[key]:
                    raise self._invalid_object(rid, key, f"'{key}' is a required property", "required", [key])
        name = body.get("name")
        if name is not None:
            if not name.endswith("."):
                # HostField: "Host name {value} does not end with a dot" (contract §4).
                raise self._invalid_object(rid, "name", f"Host name {name} does not end with a dot", "name", name)
            if not re.fullmatch(r"(?:(?:\*|(?!-)[A-Za-z0-9_-]{1,63}(?<!-))\.)+", name) or len(name) > 254:
                raise self._invalid_object(rid, "name", f"Host name {name} is not match", "name", name)
        ttl = body.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 2147483647):
            raise self._invalid_object(rid, "ttl", f"{ttl!r} is not valid for ttl", "ttl", ttl)
        records = body.get("records", [] if creating else None)
        if records is not None and (not isinstance(records, list) or not all(isinstance(r, str) for r in records)):
            raise self._invalid_object(rid, "records", "records must be a list of strings", "type", "array")
        return body

    def _validate_records(self, rtype: str, records: list[str], rid: str) -> None:
        for index, record in enumerate(records):
            ok = True
            try:
                if rtype == "A":
                    ipaddress.IPv4Address(record)
                elif rtype == "AAAA":
                    ipaddress.IPv6Address(record)
                elif rtype in ("CNAME", "NS", "PTR"):
                    ok = record.endswith(".")
                elif rtype == "MX":
                    priority, _, host = record.partition(" ")
                    ok = priority.isdigit() and host.endswith(".")
            except ValueError:
                ok = False
            if not ok:
                raise ApiError(designate_error(400, "invalid_object", "Provided object does not match schema", rid, {
                    "errors": [{"path": ["records", index], "message": f"{record!r} is not a valid {rtype} record",
                                "validator": "format", "validator_value": rtype}]}))

    def _mark_pending(self, rs: RecordSet, zone: Zone, action: str, now: float) -> None:
        rs.status, rs.action = "PENDING", action
        delay = self.designate_propagation_seconds
        rs.pending_until = None if delay is None else time.monotonic() + delay * self.time_scale
        zone.status, zone.action, zone.serial = "PENDING", "UPDATE", max(zone.serial + 1, int(now))
        zone.updated_at = now
        self._wakeup.set()

    def _designate_create(self, request: Request, zone: Zone, rid: str) -> Response:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(designate_error(400, "invalid_json", "Invalid JSON", rid))
        request.note["body"] = body
        body = self._validate_recordset_body(body, rid, creating=True)
        name, rtype = body["name"], body["type"]
        if rtype not in RECORDSET_TYPES:
            raise self._invalid_object(rid, "type", f"'{rtype}' is not one of the allowed types", "enum", rtype)
        self._validate_records(rtype, body.get("records") or [], rid)
        lower_name, lower_zone = name.lower(), zone.name.lower()
        if lower_name != lower_zone and not lower_name.endswith("." + lower_zone):
            raise ApiError(designate_error(400, "invalid_recordset_location",
                                           "RecordSet is not contained within it's parent zone", rid))
        for child in self._zones.values():
            child_name = child.name.lower()
            if child.project_id == zone.project_id and child.id != zone.id and child_name.endswith("." + lower_zone) \
                    and (lower_name == child_name or lower_name.endswith("." + child_name)):
                raise ApiError(designate_error(400, "invalid_recordset_location",
                                               f"RecordSet belongs in a child zone: {child.name}", rid))
        if any(rs.zone_id == zone.id and rs.name.lower() == lower_name and rs.type == rtype
               for rs in self._recordsets.values()):
            raise ApiError(designate_error(409, "duplicate_recordset", "Duplicate RecordSet", rid))
        now = time.time()
        rs = RecordSet(str(uuid.uuid4()), zone.id, zone.name, name, rtype, body.get("ttl"),
                       list(body.get("records") or []), zone.project_id, now, body.get("description"),
                       order=self._next_order())
        self._recordsets[rs.id] = rs
        self._mark_pending(rs, zone, "CREATE", now)
        view = self._recordset_view(rs, request.prefix)
        # 202 while PENDING, else 201, with Location = the self link (contract §4).
        return json_response(202 if rs.status == "PENDING" else 201, view, [("Location", view["links"]["self"])])

    def _designate_update(self, request: Request, rs: RecordSet, rid: str) -> Response:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(designate_error(400, "invalid_json", "Invalid JSON", rid))
        request.note["body"] = body
        body = self._validate_recordset_body(body, rid, creating=False)
        changed_immutable = [k for k in ("name", "type") if k in body and str(body[k]) != getattr(rs, k)]
        if changed_immutable:
            raise ApiError(designate_error(400, "invalid_object", "Provided object does not match schema.  Keys "
                                                                  f"{changed_immutable} are not valid for recordset",
                                           rid))
        if rs.managed:
            raise ApiError(designate_error(403, "bad_request", "Managed records may not be updated", rid))
        if "records" in body:
            self._validate_records(rs.type, body["records"], rid)
            rs.records = list(body["records"])
        if "ttl" in body:
            rs.ttl = body["ttl"]
        if "description" in body:
            rs.description = body["description"]
        now = time.time()
        rs.version += 1
        rs.updated_at = now
        self._mark_pending(rs, self._zones[rs.zone_id], "UPDATE", now)
        # 202 while PENDING, else 200 (contract §4).
        return json_response(202 if rs.status == "PENDING" else 200, self._recordset_view(rs, request.prefix))

    def _designate_delete(self, request: Request, rs: RecordSet, rid: str) -> Response:
        if rs.managed:
            raise ApiError(designate_error(403, "bad_request", "Managed records may not be deleted", rid))
        now = time.time()
        rs.updated_at = now
        self._mark_pending(rs, self._zones[rs.zone_id], "DELETE", now)
        return json_response(202, self._recordset_view(rs, request.prefix))

    # ==========================================================================================
    # Control API (/_fake/...)
    # ==========================================================================================

    def _control(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")[1:]
        method = request.method
        body = request.json() if request.body else {}
        if parts == ["requests"]:
            if method == "DELETE":
                self.clear_requests()
                return json_response(200, {"cleared": True})
            status = request.param("status")
            return json_response(200, {"requests": self.requests(request.param("service"), request.param("method"),
                                                                 request.param("path_regex"),
                                                                 int(status) if status else None)})
        if parts == ["expire_tokens"] and method == "POST":
            self.expire_tokens()
            return json_response(200, {"expired": True})
        if parts == ["reset"] and method == "POST":
            self.reset()
            return json_response(200, {"reset": True})
        if parts == ["state"] and method == "GET":
            return json_response(200, {"url": self.url, "auth_url": self.auth_url, "auth_count": self.auth_count,
                                       "auth_failures": self.auth_failures, "valid_tokens": self.valid_token_count(),
                                       "faults": self.faults(), "swift_url": self.swift_url,
                                       "swift_port": self.swift_port, "swift_up": self.swift_is_up()})
        if parts in (["swift_down"], ["swift_up"]) and method == "POST":
            try:
                self.swift_down() if parts == ["swift_down"] else self.swift_up()
            except RuntimeError as error:
                return json_response(409, {"error": str(error)})
            return json_response(200, {"swift_up": self.swift_is_up()})
        if parts == ["config"] and method == "POST":
            self.configure(**body)
            return json_response(200, {"configured": sorted(body)})
        if parts == ["faults"]:
            if method == "POST":
                return json_response(201, {"id": self.add_fault(**body)})
            if method == "DELETE":
                self.clear_faults()
                return json_response(200, {"cleared": True})
            return json_response(200, {"faults": self.faults()})
        if parts == ["unshelve_fault"]:
            if method == "DELETE":
                self.clear_unshelve_faults()
            else:
                self.set_unshelve_fault(**body)
            return json_response(200, {"ok": True})
        if parts and parts[0] == "servers":
            return self._control_servers(request, parts, body)
        if len(parts) == 2 and parts[0] == "swift" and method == "GET":
            project = request.param("project_id")
            with self._lock:
                names = list(self.swift_objects(parts[1], project))
            return json_response(200, {"objects": {n: self.swift_object_info(parts[1], n, project) for n in names}})
        if parts == ["recordsets"] and method == "GET":
            return json_response(200, {"recordsets": self.recordsets(request.param("zone"),
                                                                     request.param("include_managed") == "true")})
        return json_response(404, {"error": f"no control endpoint {method} {request.path}"})

    def _control_servers(self, request: Request, parts: list[str], body: dict) -> Response:
        method = request.method
        if len(parts) == 1:
            if method == "POST":
                name = body.pop("name")
                return json_response(201, {"id": self.add_server(name, **body)})
            return json_response(200, {"servers": self.servers()})
        server_id = parts[1]
        with self._lock:
            if server_id not in self._servers:
                return json_response(404, {"error": f"no server {server_id}"})
        if len(parts) == 2 and method == "GET":
            return json_response(200, {"server": self.server(server_id)})
        if len(parts) == 3 and parts[2] == "state" and method == "POST":
            return json_response(200, {"server": self.set_server_state(server_id, **body)})
        if len(parts) == 3 and parts[2] == "actions" and method == "GET":
            return json_response(200, {"instanceActions": self.instance_actions(server_id)})
        if len(parts) == 3 and parts[2] == "unshelve_fault":
            if method == "DELETE":
                self.clear_unshelve_faults(server_id)
            else:
                self.set_unshelve_fault(server_id=server_id, **body)
            return json_response(200, {"ok": True})
        return json_response(404, {"error": f"no control endpoint {method} {request.path}"})


# --------------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A protocol-faithful fake OpenStack on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    parser.add_argument("--config", help="JSON config file (see README.md)")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--swift-port", type=int, default=None,
                        help="serve Swift on its own port (0: a free one), as the config key swift_own_port does")
    args = parser.parse_args(argv)
    config = None
    if args.config:
        with open(args.config, encoding="utf-8") as config_file:
            config = json.load(config_file)
    if args.swift_port is not None:
        config = dict(config or {}, swift_own_port=True)
    fake = FakeOpenStack(config).start(args.port, args.swift_port or 0)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.port_file:
        temporary = args.port_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as port_file:
            port_file.write(f"{fake.port}\n")
        os.replace(temporary, args.port_file)  # readers never see a half-written file
    print(fake.url, flush=True)
    while not stop.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
