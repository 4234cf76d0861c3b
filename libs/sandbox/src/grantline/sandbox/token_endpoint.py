"""POST /p/{profile}/token: authorization_code and refresh_token grants, shaped per profile."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import urlencode

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
    s256,
    slack_user_id,
)
from grantline.sandbox.profiles import Profile, split_scopes
from grantline.sandbox.state import Client, Grant, IssuedToken, SandboxState


def _lifetimes(state: SandboxState, profile: Profile) -> tuple[int | None, int | None]:
    settings = state.settings_for(profile.name)
    access = settings.expires_in if settings.expires_in is not None else profile.expires_in
    if profile.expires_in is None and settings.expires_in is None:
        access = None
    return access, settings.refresh_token_expires_in


def _token_fields(
    profile: Profile, grant: Grant, access: IssuedToken, refresh: IssuedToken | None, lifetime: int | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {"access_token": access.value, "token_type": "Bearer"}
    if lifetime is not None:
        fields["expires_in"] = lifetime
    if refresh is not None:
        fields["refresh_token"] = refresh.value
    if profile.scope_param != "none":
        # GitHub reports granted scopes comma-separated whatever the request used.
        separator = "," if profile.form_reply_unless_json_accepted else profile.scope_separator
        fields["scope"] = separator.join(grant.scopes)
    if profile.slack_envelope:
        fields["token_type"] = "user"
    elif profile.form_reply_unless_json_accepted:
        fields["token_type"] = "bearer"
    return fields


def _shape(profile: Profile, grant: Grant, fields: dict[str, Any], *, is_refresh: bool) -> dict[str, Any]:
    if profile.token_location == "authed_user" and not is_refresh:
        # Slack: the top level describes the app installation; the user's token is nested.
        return {
            "ok": True,
            "app_id": "A0SANDBOX",
            "authed_user": {"id": slack_user_id(grant.subject), **fields},
            "team": SANDBOX_TEAM,
            "enterprise": None,
            "is_enterprise_install": False,
        }
    if profile.slack_envelope:
        return {"ok": True, **fields, "user_id": slack_user_id(grant.subject), "team": SANDBOX_TEAM}
    return fields


def _reply(incoming: Incoming, payload: dict[str, Any]) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    accept = incoming.request.headers.get("accept", "")
    if incoming.profile.form_reply_unless_json_accepted and "json" not in accept:
        return Response(urlencode(payload), media_type="application/x-www-form-urlencoded", headers=headers)
    return JSONResponse(payload, headers=headers)


def _issue(
    state: SandboxState, profile: Profile, grant: Grant, *, with_refresh: bool
) -> tuple[dict[str, Any], str]:
    lifetime, refresh_lifetime = _lifetimes(state, profile)
    access = state.issue_token("access_token", grant, lifetime)
    refresh = state.issue_token("refresh_token", grant, refresh_lifetime) if with_refresh else None
    return _token_fields(profile, grant, access, refresh, lifetime), access.value


def _exchange_code(incoming: Incoming, client: Client) -> dict[str, Any]:
    state, profile, body = incoming.state, incoming.profile, incoming.body
    with state.lock:
        code = state.codes.get(str(body.get("code", "")))
        if code is None or code.request.profile != profile.name:
            raise OAuthError("invalid_grant", "unknown authorization code", about="code")
        if code.used:
            # RFC 6749 4.1.2: a replayed code revokes what it was exchanged for.
            if code.grant_id:
                state.revoke_grant(code.grant_id)
            raise OAuthError("invalid_grant", "authorization code was already used", about="code")
        code.used = True
        ttl = state.settings_for(profile.name).code_ttl_seconds
        if state.clock() - code.issued_at > ttl:
            raise OAuthError("invalid_grant", "authorization code expired", about="code")
        auth = code.request
        if auth.client_id != client.client_id:
            raise OAuthError("invalid_grant", "code was issued to another client", about="code")
        if body.get("redirect_uri") != auth.redirect_uri:
            raise OAuthError(
                "invalid_grant", "redirect_uri does not match the authorize request", about="code"
            )
        verifier = body.get("code_verifier")
        if auth.code_challenge is not None:
            if not isinstance(verifier, str) or s256(verifier) != auth.code_challenge:
                raise OAuthError("invalid_grant", "PKCE code_verifier does not match", about="code")
        elif verifier:
            raise OAuthError("invalid_grant", "code_verifier sent but no code_challenge was", about="code")
        resource = body.get("resource")
        if resource is not None and resource != auth.resource:
            raise OAuthError("invalid_target", "resource differs from the authorize request")
        grant = Grant(
            id="grant_" + secrets.token_hex(8),
            profile=profile.name,
            client_id=client.client_id,
            subject=auth.subject,
            scopes=auth.scopes,
            resource=auth.resource,
            offline=auth.offline,
        )
        state.grants[grant.id] = grant
        code.grant_id = grant.id
        with_refresh = profile.issues_refresh_token and (
            grant.offline or not profile.refresh_token_needs_offline
        )
        fields, _ = _issue(state, profile, grant, with_refresh=with_refresh)
        if profile.name == "google":
            fields["id_token"] = state.new_value("id_token")
        return _shape(profile, grant, fields, is_refresh=False)


def _refresh(incoming: Incoming, client: Client) -> dict[str, Any]:
    state, profile, body = incoming.state, incoming.profile, incoming.body
    presented = str(body.get("refresh_token", ""))
    with state.lock:
        state.refresh_counts[presented] += 1
        token = state.tokens.get(presented)
        if token is None or token.kind != "refresh_token":
            raise OAuthError("invalid_grant", "unknown refresh token", about="refresh_token")
        grant = state.grants[token.grant_id]
        if token.rotated and not _within_grace(state, profile, token):
            # Reuse of a rotated refresh token looks like theft: revoke the whole grant (RFC 9700 4.14.2).
            state.revoke_grant(grant.id)
            raise OAuthError("invalid_grant", "refresh token was already used", about="refresh_token")
        if token.revoked or grant.revoked:
            raise OAuthError("invalid_grant", "refresh token was revoked", about="refresh_token")
        if token.expires_at is not None and state.clock() >= token.expires_at:
            raise OAuthError("invalid_grant", "refresh token expired", about="refresh_token")
        if grant.client_id != client.client_id:
            raise OAuthError(
                "invalid_grant", "refresh token was issued to another client", about="refresh_token"
            )
        requested = body.get("scope")
        if requested is not None:
            if profile.rejects_scope:
                raise OAuthError("invalid_scope", "this server does not accept a scope parameter")
            extra = set(split_scopes(str(requested))) - set(grant.scopes)
            if extra:
                raise OAuthError("invalid_scope", f"scope exceeds the grant: {' '.join(sorted(extra))}")
        fields, _ = _issue(state, profile, grant, with_refresh=profile.rotating)
        if profile.rotating:
            if not token.rotated:
                token.rotated, token.rotated_at = True, state.clock()
        elif not profile.refresh_omits_refresh_token:
            fields["refresh_token"] = token.value
        return _shape(profile, grant, fields, is_refresh=True)


def _within_grace(state: SandboxState, profile: Profile, token: IssuedToken) -> bool:
    """A rotated refresh token presented again inside the profile's grace period (counted from its
    first use): accepted, as Okta and Auth0 do, for a client whose first answer was lost."""
    grace = profile.rotation_grace_seconds
    return bool(grace) and token.rotated_at is not None and state.clock() - token.rotated_at <= grace


async def token(request: Request) -> Response:
    """The token endpoint."""
    incoming = await begin(request, "token")
    if isinstance(incoming, Response):
        return incoming
    profile = incoming.profile
    try:
        if profile.api_key_only:
            raise OAuthError("unsupported_grant_type", "the api_key profile issues no OAuth tokens")
        if incoming.body_format != profile.body_format:
            expected = (
                "application/json" if profile.body_format == "json" else "application/x-www-form-urlencoded"
            )
            raise OAuthError("invalid_request", f"this server expects a {expected} body")
        client = authenticate_client(incoming)
        grant_type = incoming.body.get("grant_type")
        if grant_type == "authorization_code":
            payload = _exchange_code(incoming, client)
        elif grant_type == "refresh_token" and profile.issues_refresh_token:
            payload = _refresh(incoming, client)
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported here")
    except OAuthError as exc:
        return finish(incoming.entry, error_response(profile, exc))
    if incoming.answer_delay_ms:
        # The grant is done (a rotated refresh token is spent); only the answer is late.
        await asyncio.sleep(incoming.answer_delay_ms / 1000)
    return finish(incoming.entry, _reply(incoming, payload))
