"""Swift (contract §3): accounts, containers and objects, optionally on a port of their own that a test
can close and reopen.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http
import json
import mimetypes
import secrets
import threading
import time
import urllib.parse

from .wire import ApiError, ApiHandler, Request, Response, TrackingServer, http_date, iso_micro

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


def swift_trans_id() -> str:
    """Swift's tx<21 hex>-<hex timestamp> transaction id (contract §3 example)."""
    return "tx" + secrets.token_hex(11)[:21] + "-%010x" % int(time.time())


def swift_error(status: int, body: str | None = None, headers: list[tuple[str, str]] | None = None) -> Response:
    """swob's default HTML body, or a plain text body when Swift gives one (contract §3)."""
    if body is None:
        title, explanation = SWOB_REASONS.get(status, (http.HTTPStatus(status).phrase, ""))
        text = "<html><h1>%s</h1><p>%s</p></html>" % (title, explanation)
        content_type = "text/html; charset=UTF-8"
    else:
        text, content_type = body, "text/plain; charset=UTF-8"
    return Response(status, text.encode(), [("Content-Type", content_type)] + list(headers or []))


@dataclasses.dataclass
class SwiftObject:
    data: bytes
    etag: str
    content_type: str
    last_modified: float
    meta: dict
    delete_at: float | None = None
# Swift's path prefix on its own port: http://127.0.0.1:SWIFTPORT/v1/AUTH_<project_id>.
SWIFT_OWN_PREFIX = "/v1"


class SwiftMixin:
    """FakeOpenStack's swift part; it shares the fake's state and lock (see __init__.py)."""

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
