"""Designate (contract §4): zones and recordsets, with paging, filters and propagation.
"""
from __future__ import annotations

import dataclasses
import email.utils
import ipaddress
import re
import time
import urllib.parse
import uuid
from typing import Any, Callable

from .wire import ApiError, Request, Response, is_uuid, iso_micro, json_response, request_id
from .keystone import Token

# The first id is the one in the contract's sample (contract §4).
DEFAULT_ZONES = [
    {"id": "a86dba58-0043-4cc6-a1bb-69d5e86f3ca3", "name": "example.org.", "email": "joe@example.org"},
    {"id": "2150b1bf-dee2-4221-9d85-11f7886fb15f", "name": "sub.example.org.", "email": "joe@example.org"},
]
# Designate error types for injected faults (designate/exceptions.py; unknown types are 'unknown').
DESIGNATE_TYPES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                   409: "conflict", 413: "over_quota", 429: "over_quota", 503: "service_unavailable",
                   504: "timeout"}


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
DESIGNATE_ZONE_FILTERS = ("name", "type", "email", "status", "description", "ttl")
DESIGNATE_RECORDSET_FILTERS = ("name", "type", "ttl", "data", "status", "description")
DESIGNATE_PAGING = ("limit", "marker", "sort_key", "sort_dir")
RECORDSET_WRITABLE = ("name", "type", "ttl", "description", "records")
RECORDSET_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SRV", "SSHFP", "TXT", "SPF", "CAA", "CERT", "NAPTR")


class DesignateMixin:
    """FakeOpenStack's designate part; it shares the fake's state and lock (see __init__.py)."""

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
