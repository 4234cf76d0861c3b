"""POST /p/{profile}/revoke (RFC 7009), GET /p/{profile}/userinfo and Atlassian's accessible resources."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from grantline.sandbox.common import (
    SANDBOX_TEAM,
    Incoming,
    OAuthError,
    authenticate_client,
    begin,
    error_response,
    finish,
    github_user_id,
    slack_user_id,
)
from grantline.sandbox.state import Grant


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _invalid_token(description: str) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_token", "error_description": description},
        status_code=401,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def _revoke_slack_style(incoming: Incoming) -> Response:
    # Slack's auth.revoke: the token to revoke authenticates the call.
    token = _bearer(incoming.request) or str(incoming.body.get("token", ""))
    if not token or incoming.state.live_token(token, "access_token") is None:
        return JSONResponse({"ok": False, "error": "invalid_auth"})
    incoming.state.revoke_token(token)
    return JSONResponse({"ok": True, "revoked": True})


async def revoke(request: Request) -> Response:
    """RFC 7009 revocation: 200 for unknown tokens too; a refresh token takes its grant with it."""
    incoming = await begin(request, "revoke")
    if isinstance(incoming, Response):
        return incoming
    state, profile = incoming.state, incoming.profile
    if profile.revoke_with_bearer:
        return finish(incoming.entry, _revoke_slack_style(incoming))
    try:
        if profile.api_key_only:
            key = str(incoming.body.get("token", ""))
            state.revoke_token(key)
            return finish(incoming.entry, Response(status_code=200))
        client = authenticate_client(incoming)
        value = incoming.body.get("token")
        if not isinstance(value, str) or not value:
            raise OAuthError("invalid_request", "the token parameter is required")
        with state.lock:
            token = state.tokens.get(value)
            grant = state.grants.get(token.grant_id) if token else None
            if grant is not None and grant.client_id != client.client_id:
                raise OAuthError("unauthorized_client", "the token was issued to another client")
            if token is not None:
                state.revoke_token(value)
    except OAuthError as exc:
        return finish(incoming.entry, error_response(profile, exc))
    return finish(incoming.entry, Response(status_code=200))


def _identity(profile_name: str, grant: Grant) -> dict[str, Any]:
    subject = grant.subject
    email = f"{subject}@sandbox.grantline.test"
    if profile_name == "github":
        return {"id": github_user_id(subject), "login": subject, "name": subject.title(), "email": email}
    if profile_name in ("slack", "slack_mcp"):
        return {"ok": True, "user_id": slack_user_id(subject), "user": subject, "team": SANDBOX_TEAM}
    if profile_name == "atlassian":
        return {"account_id": f"557058:{uuid.uuid5(uuid.NAMESPACE_URL, subject)}", "email": email}
    identity: dict[str, Any] = {
        "sub": subject,
        "email": email,
        "name": subject.title(),
        "scope": " ".join(grant.scopes),
    }
    if grant.resource:
        identity["aud"] = grant.resource
    return identity


async def userinfo(request: Request) -> Response:
    """Who the token belongs to; revoked, rotated-away or expired tokens get 401 invalid_token."""
    incoming = await begin(request, "userinfo")
    if isinstance(incoming, Response):
        return incoming
    state, profile = incoming.state, incoming.profile
    if profile.api_key_only:
        key_value = request.headers.get("x-api-key") or _bearer(request) or ""
        with state.lock:
            key = state.api_keys.get(key_value)
            valid = key is not None and not key.revoked
        if not valid or key is None:
            return finish(incoming.entry, _invalid_token("unknown or revoked API key"))
        return finish(incoming.entry, JSONResponse({"sub": key.subject, "key_kind": "api_key"}))
    presented = _bearer(request)
    token = state.live_token(presented, "access_token") if presented else None
    if token is None:
        return finish(incoming.entry, _invalid_token("the access token is invalid, expired or revoked"))
    with state.lock:
        grant = state.grants[token.grant_id]
    return finish(incoming.entry, JSONResponse(_identity(profile.name, grant)))


def sandbox_sites(subject: str) -> list[dict[str, Any]]:
    """The two Atlassian sites every sandbox user's grant reaches: `<user>-site` (first) and `<user>-lab`."""
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{subject}-{suffix}.atlassian.net")),
            "url": f"https://{subject}-{suffix}.atlassian.net",
            "name": f"{subject}-{suffix}",
            "scopes": [],
        }
        for suffix in ("site", "lab")
    ]


async def accessible_resources(request: Request) -> Response:
    """Atlassian's GET /oauth/token/accessible-resources: the sites a token reaches."""
    incoming = await begin(request, "accessible_resources")
    if isinstance(incoming, Response):
        return incoming
    state, profile = incoming.state, incoming.profile
    presented = _bearer(request)
    token = state.live_token(presented, "access_token") if presented and profile.lists_sites else None
    if token is None:
        return finish(incoming.entry, _invalid_token("the access token is invalid, expired or revoked"))
    with state.lock:
        grant = state.grants[token.grant_id]
    sites = sandbox_sites(grant.subject)
    for site in sites:
        site["scopes"] = list(grant.scopes)
    return finish(incoming.entry, JSONResponse(sites))
