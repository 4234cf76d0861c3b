"""Everything the sandbox remembers: clients, codes, grants, tokens, faults, settings, recordings.

One SandboxState backs one sandbox app. Tests may hold it directly (register clients, read
counters, advance the clock) instead of going through the control API. A lock guards every
mutation because a test may share the state with a uvicorn server running in another thread.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from grantline.sandbox.faults import Fault, FaultBook
from grantline.sandbox.mcp_state import McpSandbox

TokenKind = Literal["access_token", "refresh_token", "code", "api_key", "id_token", "client_secret"]
_PREFIXES: dict[TokenKind, str] = {
    "access_token": "sbx_at_",
    "refresh_token": "sbx_rt_",
    "code": "sbx_code_",
    "api_key": "sbx_key_",
    "id_token": "sbx_id_",
    "client_secret": "sbx_cs_",
}
DEFAULT_SUBJECT = "sandbox-user"


@dataclass
class Client:
    """A registered OAuth client. `redirect_uris=None` accepts any redirect URI (still bound per code)."""

    client_id: str
    client_secret: str
    redirect_uris: list[str] | None = None
    profiles: list[str] | None = None


@dataclass
class AuthorizationRequest:
    """A validated authorize request, kept until the user decides (or auto-approval)."""

    id: str
    profile: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    code_challenge: str | None
    resource: str | None
    subject: str
    offline: bool


@dataclass
class Grant:
    """One user's authorization of one client; every token issued from it belongs to it."""

    id: str
    profile: str
    client_id: str
    subject: str
    scopes: list[str]
    resource: str | None
    offline: bool
    revoked: bool = False


@dataclass
class IssuedCode:
    value: str
    request: AuthorizationRequest
    issued_at: float
    used: bool = False
    grant_id: str | None = None


@dataclass
class IssuedToken:
    value: str
    kind: TokenKind
    grant_id: str
    issued_at: float
    expires_at: float | None
    revoked: bool = False
    # A refresh token that was exchanged for a new one (rotating profiles), and when.
    rotated: bool = False
    rotated_at: float | None = None


@dataclass
class ApiKey:
    value: str
    subject: str
    revoked: bool = False


@dataclass
class ProfileSettings:
    """Per-profile knobs (the control API's PUT /_sandbox/settings)."""

    expires_in: int | None = None
    refresh_token_expires_in: int | None = None
    code_ttl_seconds: float = 60.0
    consent: bool = False


@dataclass
class RecordedRequest:
    """One request the sandbox received, recorded in full (it is the test's own server)."""

    id: int
    at: float
    profile: str
    endpoint: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None
    grant_type: str | None
    status: int | None = None
    fault: str | None = None


@dataclass
class SandboxState:
    """In-memory state of a sandbox provider; safe to share between threads."""

    canary: str | None = None
    # Used for `iss`; defaults to the URL the request came in on.
    public_url: str | None = None
    # Protects the control API when set (Bearer token); the OAuth endpoints never need it.
    control_token: str | None = None
    clock: Callable[[], float] = time.time
    clients: dict[str, Client] = field(default_factory=dict)
    pending: dict[str, AuthorizationRequest] = field(default_factory=dict)
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    faults: FaultBook = field(default_factory=FaultBook)
    default_settings: ProfileSettings = field(default_factory=ProfileSettings)
    profile_settings: dict[str, ProfileSettings] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    # The MCP servers under /mcp/{server}/ (their switches; their clients, codes and tokens live above).
    mcp: McpSandbox = field(default_factory=McpSandbox)
    refresh_counts: Counter[str] = field(default_factory=Counter)
    grant_counts: Counter[str] = field(default_factory=Counter)
    # Records of the small REST API (rest_api.py), per subject: {subject: {item id: item}}.
    api_items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # --- clients and keys -------------------------------------------------------------------

    def register_client(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        redirect_uris: list[str] | None = None,
        profiles: list[str] | None = None,
    ) -> Client:
        """Register (or replace) an OAuth client; ids and secrets are generated when omitted."""
        client = Client(
            client_id=client_id or "sbx_client_" + secrets.token_hex(8),
            client_secret=client_secret or "sbx_secret_" + secrets.token_urlsafe(24),
            redirect_uris=redirect_uris,
            profiles=profiles,
        )
        with self.lock:
            self.clients[client.client_id] = client
        return client

    def issue_api_key(self, subject: str = DEFAULT_SUBJECT) -> ApiKey:
        """A new API key for the api_key profile."""
        key = ApiKey(value=self.new_value("api_key"), subject=subject)
        with self.lock:
            self.api_keys[key.value] = key
        return key

    # --- values and settings -------------------------------------------------------------------

    def new_value(self, kind: TokenKind) -> str:
        """A distinct random value with a recognisable prefix (and the canary, when set)."""
        canary = f"{self.canary}_" if self.canary else ""
        return f"{_PREFIXES[kind]}{canary}{secrets.token_urlsafe(24)}"

    def settings_for(self, profile: str) -> ProfileSettings:
        """The effective settings of a profile (its overrides, else the defaults)."""
        with self.lock:
            return self.profile_settings.get(profile, self.default_settings)

    def update_settings(self, profile: str | None, changes: dict[str, Any]) -> ProfileSettings:
        """Change settings for one profile (or the defaults when profile is None)."""
        allowed = set(ProfileSettings.__dataclass_fields__)
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        with self.lock:
            current = self.default_settings if profile is None else self.settings_for(profile)
            updated = ProfileSettings(**{**current.__dict__, **changes})
            if profile is None:
                self.default_settings = updated
            else:
                self.profile_settings[profile] = updated
            return updated

    # --- grants and tokens ----------------------------------------------------------------------

    def issue_token(self, kind: TokenKind, grant: Grant, lifetime: float | None) -> IssuedToken:
        """Create and remember a token of the grant."""
        now = self.clock()
        token = IssuedToken(
            value=self.new_value(kind),
            kind=kind,
            grant_id=grant.id,
            issued_at=now,
            expires_at=now + lifetime if lifetime is not None else None,
        )
        with self.lock:
            self.tokens[token.value] = token
        return token

    def live_token(self, value: str, kind: TokenKind) -> IssuedToken | None:
        """The token if it exists, is of that kind, and is neither revoked, rotated nor expired."""
        with self.lock:
            token = self.tokens.get(value)
            if token is None or token.kind != kind or token.revoked or token.rotated:
                return None
            grant = self.grants.get(token.grant_id)
            if grant is None or grant.revoked:
                return None
            if token.expires_at is not None and self.clock() >= token.expires_at:
                return None
            return token

    def revoke_grant(self, grant_id: str) -> None:
        """Revoke a grant and every token issued from it."""
        with self.lock:
            grant = self.grants.get(grant_id)
            if grant is not None:
                grant.revoked = True
            for token in self.tokens.values():
                if token.grant_id == grant_id:
                    token.revoked = True

    def revoke_token(self, value: str) -> bool:
        """Revoke as RFC 7009 does: a refresh token takes its grant with it. False if unknown."""
        with self.lock:
            token = self.tokens.get(value)
            if token is not None:
                if token.kind == "refresh_token":
                    self.revoke_grant(token.grant_id)
                else:
                    token.revoked = True
                return True
            key = self.api_keys.get(value)
            if key is not None:
                key.revoked = True
                return True
            return False

    def revoke_subject(self, subject: str, profile: str | None = None) -> int:
        """Revoke every grant of a user (the user revoking access at the provider); returns how many."""
        with self.lock:
            matching = [
                grant.id
                for grant in self.grants.values()
                if grant.subject == subject and not grant.revoked and profile in (None, grant.profile)
            ]
            for grant_id in matching:
                self.revoke_grant(grant_id)
            return len(matching)

    # --- recording ------------------------------------------------------------------------------

    def record(self, **fields: Any) -> RecordedRequest:
        """Append a received request to the recording."""
        with self.lock:
            entry = RecordedRequest(id=len(self.requests) + 1, at=self.clock(), **fields)
            self.requests.append(entry)
            if entry.endpoint == "token" and entry.grant_type:
                self.grant_counts[f"{entry.profile}:{entry.grant_type}"] += 1
            return entry

    def refresh_count(self, refresh_token: str) -> int:
        """How many refresh grants were attempted with this refresh token."""
        with self.lock:
            return self.refresh_counts[refresh_token]

    def reset(self, *, keep_clients: bool = True) -> None:
        """Forget everything (optionally keeping registered clients)."""
        with self.lock:
            clients = dict(self.clients) if keep_clients else {}
            for name in ("pending", "codes", "grants", "tokens", "api_keys", "profile_settings", "api_items"):
                getattr(self, name).clear()
            self.clients = clients
            self.faults = FaultBook()
            self.mcp.reset()
            self.default_settings = ProfileSettings()
            self.requests.clear()
            self.refresh_counts.clear()
            self.grant_counts.clear()

    def add_fault(self, fault: Fault) -> Fault:
        """Install a fault switch."""
        with self.lock:
            return self.faults.add(fault)
