"""Keystone (contract §1): password and application-credential authentication, tokens and the
service catalog.
"""
from __future__ import annotations

import dataclasses
import http
import secrets
import time
import uuid
from typing import Any

from .wire import Request, Response, iso_micro_z, json_response, request_id


DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
DEFAULT_USER = {"id": "u-demo-0001", "name": "demo", "password": "demo-password-123", "domain_id": "default"}
DEFAULT_PROJECT = {"id": "p-demo-0001", "name": "demo", "domain_id": "default"}
DEFAULT_APP_CRED = {"id": "ac-0001", "name": "monitoring", "secret": "ac-secret-xyz",
                    "user_id": "u-demo-0001", "project_id": "p-demo-0001"}
DEFAULT_ROLES = [{"id": "r-member-0001", "name": "member"}, {"id": "r-reader-0001", "name": "reader"}]
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


def keystone_error(status: int, message: str | None = None, title: str | None = None,
                   headers: list[tuple[str, str]] | None = None) -> Response:
    """Keystone's one error format (contract §1, render_exception)."""
    title = title or http.HTTPStatus(status).phrase
    message = message or KEYSTONE_MESSAGES.get(status, title)
    return json_response(status, {"error": {"code": status, "title": title, "message": message}}, headers)


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


class KeystoneMixin:
    """FakeOpenStack's keystone part; it shares the fake's state and lock (see __init__.py)."""

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
