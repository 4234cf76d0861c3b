"""The run grant: what a run's tool calls may obtain, as satisfaction signed it at admission.

A run grant is a JWT (RFC 7519) signed with EdDSA over Ed25519 (RFC 8037), so any JOSE tool can
inspect it. Its claims:

| claim | meaning |
| --- | --- |
| ``iss`` | ``grantline-satisfaction`` |
| ``aud`` | ``grantline`` (the vault and the proxy accept it) |
| ``sub`` | the acting user |
| ``tid`` | the tenant |
| ``run`` / ``app`` | the run and its app |
| ``prv`` | ``{provider: [scopes]}``: the providers the run's requirements name; ``[]``: scopes not limited |
| ``test`` | an ``is_test`` run |
| ``tls`` | optional ``{provider: [tool names]}``: the MCP tools the run may call (absent: all) |
| ``iat`` / ``exp`` / ``jti`` | issued at, expiry, grant id |

This module is the contract (claim names and their model); signing and verification live in
``grantline.runtime.run_grants``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

GRANT_ISSUER = "grantline-satisfaction"
GRANT_AUDIENCE = "grantline"


@dataclass(frozen=True, slots=True)
class RunGrant:
    """The verified claims of a run grant."""

    grant_id: str
    tenant_id: str
    run_id: str
    user_id: str
    app_id: str
    providers: Mapping[str, tuple[str, ...]]
    is_test: bool
    issued_at: datetime
    expires_at: datetime
    # MCP servers whose tools the run may call only by these names (the proxy enforces it).
    tools: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def covers(self, provider: str) -> bool:
        """True when the run may obtain a token for ``provider``."""
        return provider in self.providers

    def scopes_beyond(self, provider: str, scopes: Iterable[str]) -> list[str]:
        """The requested scopes the grant does not allow for ``provider`` (none when it names none)."""
        allowed = self.providers.get(provider, ())
        if not allowed:
            return []
        return [scope for scope in scopes if scope not in allowed]

    def allows_tool(self, provider: str, tool: str) -> bool:
        """Whether the run may call MCP tool ``tool`` of ``provider`` (any, unless the grant narrows)."""
        allowed = self.tools.get(provider)
        return allowed is None or tool in allowed

    def claims(self) -> dict[str, object]:
        """The JWT claims of this grant."""
        claims: dict[str, object] = {
            "iss": GRANT_ISSUER,
            "aud": GRANT_AUDIENCE,
            "sub": self.user_id,
            "tid": self.tenant_id,
            "run": self.run_id,
            "app": self.app_id,
            "prv": {provider: list(scopes) for provider, scopes in self.providers.items()},
            "test": self.is_test,
            "iat": int(self.issued_at.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            "jti": self.grant_id,
        }
        if self.tools:
            claims["tls"] = {provider: list(names) for provider, names in self.tools.items()}
        return claims

    @classmethod
    def from_claims(cls, claims: Mapping[str, object]) -> RunGrant:
        """A grant from verified claims; raises ``ValueError`` when one is missing or malformed."""
        providers = claims.get("prv")
        if not isinstance(providers, dict) or not all(
            isinstance(p, str) and isinstance(s, list) and all(isinstance(x, str) for x in s)
            for p, s in providers.items()
        ):
            raise ValueError("prv must map providers to lists of scopes")
        values = {name: claims.get(name) for name in ("jti", "tid", "run", "sub", "app")}
        if not all(isinstance(value, str) and value for value in values.values()):
            raise ValueError("jti, tid, run, sub and app must be non-empty strings")
        tools = claims.get("tls", {})
        if not isinstance(tools, dict) or not all(
            isinstance(p, str) and isinstance(t, list) and all(isinstance(x, str) for x in t)
            for p, t in tools.items()
        ):
            raise ValueError("tls must map providers to lists of tool names")
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int) or not isinstance(expires, int):
            raise ValueError("iat and exp must be integers")
        return cls(
            grant_id=str(values["jti"]),
            tenant_id=str(values["tid"]),
            run_id=str(values["run"]),
            user_id=str(values["sub"]),
            app_id=str(values["app"]),
            providers={provider: tuple(scopes) for provider, scopes in providers.items()},
            is_test=bool(claims.get("test", False)),
            issued_at=datetime.fromtimestamp(issued, UTC),
            expires_at=datetime.fromtimestamp(expires, UTC),
            tools={provider: tuple(names) for provider, names in tools.items()},
        )


def unverified_claims(grant: str) -> dict[str, object]:
    """The claims of a grant WITHOUT checking its signature: for a runner that needs its tenant or
    expiry, never for a decision (the vault and the proxy verify)."""
    try:
        payload = grant.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as error:
        raise ValueError("not a run grant") from error
    if not isinstance(claims, dict):
        raise ValueError("not a run grant")
    return claims
