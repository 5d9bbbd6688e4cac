"""HTTP values and plumbing shared by every service of the fake: requests, responses, the log
format, the threaded server that can cut connections, and small helpers.
"""
from __future__ import annotations

import dataclasses
import email.utils
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import FakeOpenStack


# Request headers copied into the request log (never X-Auth-Token).
LOGGED_REQUEST_HEADERS = ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version", "Content-Type",
                          "Content-Length", "Transfer-Encoding", "Accept", "User-Agent", "If-None-Match",
                          "ETag", "X-Delete-After", "X-Delete-At", "Expect", "Connection")
# Response headers copied into the request log (never X-Subject-Token).
LOGGED_RESPONSE_HEADERS = ("X-Openstack-Request-Id", "OpenStack-API-Version", "X-OpenStack-Nova-API-Version",
                           "Retry-After", "Location", "WWW-Authenticate", "Content-Type", "Etag")


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


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


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


class ApiError(Exception):
    """Raised inside a service handler to answer with a ready-made error response."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


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
        fake: "FakeOpenStack" = self.server.fake
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
