"""Injected faults: an HTTP status, delay or dropped connection for requests that match.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from .wire import Request, Response


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


class FaultsMixin:
    """FakeOpenStack's faults part; it shares the fake's state and lock (see __init__.py)."""

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
