"""A protocol-faithful fake OpenStack (Keystone, Nova, Swift, Designate) on one local port.

Layout: this module is the router (FakeOpenStack: lifecycle, configuration, the request log,
dispatch by path prefix, the control API and main()); each service is a mixin in a module of its
own (keystone.py, nova.py, swift.py, designate.py) and so are injected faults (faults.py); wire.py
holds the HTTP values and plumbing they share. The mixins share the fake's state and its one
lock. Everything imports it as tests/fakes/fake_openstack.py, which also runs it standalone.

With the config key `swift_own_port: true`, Swift listens on a second port of its own instead
(the catalog's object-store endpoints point there), and swift_down()/swift_up() close and reopen
that listener, so that a client sees Swift refuse connections while the rest of the cloud works.

Python 3.11 standard library only. Integration tests drive the real unshelver binary against it;
it also runs standalone:

    python3 tests/fakes/fake_openstack.py --port 0 [--config fake.json] [--port-file F]

Every wire format here follows /work/shared/research/api-contracts.md ("the contract"); comments
cite its sections as "contract §N". Where the contract is silent, the behaviour follows the
upstream source it names, and the comment says so. tests/fakes/README.md lists the URL
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
import json
import os
import re
import signal
import threading
import time
import traceback
from typing import Any

from .wire import (
    ApiError, ApiHandler, LOGGED_REQUEST_HEADERS, LOGGED_RESPONSE_HEADERS, Request, Response,
    TrackingServer, json_response, request_id,
)
from .faults import Fault, FaultsMixin
from .keystone import (
    DEFAULT_APP_CRED, DEFAULT_DOMAIN, DEFAULT_PROJECT, DEFAULT_ROLES, DEFAULT_USER, INTERFACE_PREFIXES,
    KeystoneMixin, SERVICE_PREFIXES, Token, keystone_error,
)
from .nova import (
    DEFAULT_MAX_MICROVERSION, GuestListener, NovaMixin, Server, WEBOB_EXPLANATIONS, nova_fault,
    parse_version,
)
from .swift import SWIFT_OWN_PREFIX, SwiftMixin, SwiftObject, swift_error, swift_trans_id
from .designate import DEFAULT_ZONES, DESIGNATE_TYPES, DesignateMixin, RecordSet, Zone, designate_error

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
    "nova_max_limit": 1000,  # nova's [api] max_limit: the largest page of a server list
    "compute_url_with_project_id": False,  # catalog compute URL ends with /{project_id}
    "allow_unshelve_to_host": False,  # policy unshelve_to_host (admin-only upstream)
}
# Config keys that shape the initial state (read on start and on reset()).
STATE_KEYS = ("domains", "users", "projects", "application_credentials", "roles", "servers", "unshelve_fault",
              "swift_containers", "zones")
# Config keys that shape the listeners (read once, at construction).
LISTENER_KEYS = ("swift_own_port",)


class FakeOpenStack(FaultsMixin, KeystoneMixin, NovaMixin, SwiftMixin, DesignateMixin):
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
            elif key in ("designate_default_limit", "nova_max_limit"):
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
