"""Answering the NATS auth callout: a runner id and secret in, a signed user JWT (or a refusal) out.

The server sends an authorization request JWT signed by its own nkey, naming the user nkey it
generated for this connection and the CONNECT options (user, password). The answer is an
authorization response JWT for that user nkey and server, signed by the callout issuer (the account
key named in the server's ``auth_callout { issuer }``), holding either a user JWT that places the
connection in the GRANTLINE account with the runner's permissions, or an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nkeys

from grantline.contract.runner_identities import runner_permissions
from grantline.runner_auth.adapters.nats_jwt import JwtError, decode_verified, encode
from grantline.runner_auth.domain.callout_decision import REFUSED, decide, shape_refusal
from grantline.runner_auth.domain.runner import Runner
from grantline.runtime.nats.permissions import GRANTLINE_ACCOUNT

log = logging.getLogger(__name__)

REQUEST_AUDIENCE = "nats-authorization-request"
# jwt v2 before 2.5 called the request type "authorization"; nats-server 2.10+ sends the newer name.
REQUEST_TYPES = ("authorization_request", "authorization")

LookupRunner = Callable[[str], Awaitable[Runner | None]]
# Called for each runner let in, before the answer goes back: declares its consumer of outcomes.
OnAuthorised = Callable[[Runner], Awaitable[None]]


@dataclass(frozen=True)
class CalloutRequest:
    server_id: str
    user_nkey: str
    user: str
    password: str
    client_host: str


class BadCalloutRequest(ValueError):
    """Not a request this server's callout should answer (forged, stale, or for another issuer)."""


def read_request(token: str, *, issuer_public_key: str) -> CalloutRequest:
    """The verified request: signed by the server key it names, for our issuer, not expired."""
    try:
        claims = decode_verified(token, issuer_prefix=nkeys.PREFIX_BYTE_SERVER)
    except JwtError as error:
        raise BadCalloutRequest(f"request JWT rejected: {error}") from None
    nats: dict[str, Any] = claims.get("nats") or {}
    server = nats.get("server_id") or {}
    if claims.get("aud") != REQUEST_AUDIENCE or nats.get("type") not in REQUEST_TYPES:
        raise BadCalloutRequest("not an authorization request")
    if claims.get("sub") != issuer_public_key:
        raise BadCalloutRequest("request is for another callout issuer")
    # The request is signed by the server's own key, which is also its id: a request claiming one
    # server but signed by another is forged.
    if server.get("id") != claims.get("iss"):
        raise BadCalloutRequest("request not signed by the server it names")
    user_nkey = nats.get("user_nkey")
    if not isinstance(user_nkey, str) or not user_nkey.startswith("U"):
        raise BadCalloutRequest("request names no user nkey")
    options = nats.get("connect_opts") or {}
    client = nats.get("client_info") or {}
    return CalloutRequest(
        server_id=str(server["id"]),
        user_nkey=user_nkey,
        user=str(options.get("user") or ""),
        password=str(options.get("pass") or ""),
        client_host=str(client.get("host") or ""),
    )


class CalloutAuthorizer:
    """Turns verified callout requests into signed responses."""

    def __init__(
        self,
        issuer: nkeys.KeyPair,
        *,
        lookup: LookupRunner,
        user_jwt_ttl_seconds: int,
        on_authorised: OnAuthorised | None = None,
    ) -> None:
        self._issuer = issuer
        self._issuer_public = issuer.public_key.decode()
        self._lookup = lookup
        self._ttl = user_jwt_ttl_seconds
        self._on_authorised = on_authorised

    @property
    def issuer_public_key(self) -> str:
        return self._issuer_public

    async def answer(self, token: str) -> bytes | None:
        """The response JWT, or None when the request itself is not to be trusted (no answer)."""
        try:
            request = read_request(token, issuer_public_key=self._issuer_public)
        except BadCalloutRequest as error:
            log.warning("auth callout request ignored", extra={"reason": str(error)})
            return None
        refusal = shape_refusal(request.user, request.password)
        runner: Runner | None = None
        if refusal is None:
            runner = await self._lookup(request.user)
            refusal = decide(runner, request.password)
        if refusal is not None or runner is None:
            log.info(
                "runner connection refused",
                extra={
                    "runner_id": request.user[:100],
                    "reason": refusal.reason if refusal else "unknown runner",
                    "client_host": request.client_host,
                },
            )
            return self._response(request, error=REFUSED)
        log.info("runner connection authorised", extra={"runner_id": runner.runner_id})
        if self._on_authorised is not None:
            try:
                await self._on_authorised(runner)
            except Exception as error:
                # The runner still connects: it hears outcomes live, but not those of a reconnect gap.
                log.warning(
                    "runner's outcome consumer not declared",
                    extra={"runner_id": runner.runner_id, "error": type(error).__name__},
                )
        return self._response(request, user_jwt=self._user_jwt(request, runner))

    def _user_jwt(self, request: CalloutRequest, runner: Runner) -> str:
        permissions = runner_permissions(runner.runner_id, runner.tenants)
        claims = {
            "sub": request.user_nkey,
            # The account to place the user in (server-config mode reads it from the audience).
            "aud": GRANTLINE_ACCOUNT,
            # Shown as the connection's user in CONNZ, which is how revocation finds it.
            "name": runner.runner_id,
            "exp": int(time.time()) + self._ttl,
            "nats": {
                "pub": {"allow": list(permissions.publish)},
                "sub": {"allow": list(permissions.subscribe)},
                "subs": -1,
                "data": -1,
                "payload": -1,
            },
        }
        return encode(claims, self._issuer, claim_type="user")

    def _response(self, request: CalloutRequest, *, user_jwt: str = "", error: str = "") -> bytes:
        nats: dict[str, Any] = {"jwt": user_jwt} if user_jwt else {"error": error}
        claims = {"sub": request.user_nkey, "aud": request.server_id, "nats": nats}
        return encode(claims, self._issuer, claim_type="authorization_response").encode()
