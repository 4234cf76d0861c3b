"""Fault switches: make an endpoint slow, fail, rate-limit or answer garbage, on purpose."""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import JSONResponse, Response

Endpoint = Literal["authorize", "token", "revoke", "userinfo"]
ENDPOINTS: tuple[Endpoint, ...] = ("authorize", "token", "revoke", "userinfo")
# A body that claims to be JSON and is not: what a crashing proxy or a truncated reply looks like.
MALFORMED_BODY = b'{"access_token": "sbx_at_truncated'


class Fault(BaseModel):
    """One switch. `times=None` keeps it on until removed; a delay alone slows a normal answer."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    endpoint: Endpoint | Literal["*"] = "*"
    profile: str = "*"
    # Only token requests of this grant type (e.g. refresh_token) trip the switch.
    grant_type: str | None = None
    delay_ms: int = Field(default=0, ge=0, le=120_000)
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: int | None = Field(default=None, ge=0)
    malformed: bool = False
    # The delay runs after the endpoint acted (a code or refresh token is spent, new tokens exist):
    # the answer is late, as from a provider that committed and then stalled (token endpoint only).
    answer_late: bool = False
    times: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _does_something(self) -> Fault:
        if not (self.delay_ms or self.status or self.malformed):
            raise ValueError("a fault needs delay_ms, status or malformed")
        if self.status and self.malformed:
            raise ValueError("choose status or malformed, not both")
        if self.retry_after is not None and self.status is None:
            raise ValueError("retry_after goes with a status (usually 429)")
        if self.answer_late and (self.status or self.malformed or not self.delay_ms):
            raise ValueError("answer_late is a delay alone (no status, not malformed)")
        return self

    def matches(self, endpoint: str, profile: str, grant_type: str | None) -> bool:
        """Whether a request at this endpoint/profile/grant trips the switch."""
        return (
            self.endpoint in ("*", endpoint)
            and self.profile in ("*", profile)
            and (self.grant_type is None or self.grant_type == grant_type)
        )


@dataclass
class FaultBook:
    """The installed faults, consulted in installation order."""

    faults: list[Fault] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> Fault:
        """Install a fault; returns it with its id."""
        with self._lock:
            installed = fault.model_copy(update={"id": fault.id or f"fault-{next(self._ids)}"})
            self.faults.append(installed)
            return installed

    def remove(self, fault_id: str) -> bool:
        """Uninstall one fault; False when there was none with that id."""
        with self._lock:
            before = len(self.faults)
            self.faults = [fault for fault in self.faults if fault.id != fault_id]
            return len(self.faults) != before

    def clear(self) -> None:
        """Uninstall every fault."""
        with self._lock:
            self.faults.clear()

    def take(self, endpoint: str, profile: str, grant_type: str | None) -> Fault | None:
        """The first matching fault, consuming one of its `times`."""
        with self._lock:
            for index, fault in enumerate(self.faults):
                if fault.matches(endpoint, profile, grant_type):
                    if fault.times is not None:
                        remaining = fault.times - 1
                        if remaining:
                            self.faults[index] = fault.model_copy(update={"times": remaining})
                        else:
                            del self.faults[index]
                    return fault
            return None


async def apply_fault(fault: Fault) -> Response | None:
    """Wait as the fault says, then return the failure response (None: carry on normally)."""
    if fault.delay_ms:
        await asyncio.sleep(fault.delay_ms / 1000)
    if fault.malformed:
        return Response(MALFORMED_BODY, status_code=200, media_type="application/json")
    if fault.status is not None:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        error = "rate_limited" if fault.status == 429 else "temporarily_unavailable"
        return JSONResponse({"error": error, "fault": fault.id}, status_code=fault.status, headers=headers)
    return None
