"""GET /p/{profile}/authorize and the consent decision: validate, then approve (or show consent)."""

from __future__ import annotations

import html
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from grantline.sandbox.common import Incoming, begin, finish, redirect_with, sandbox_state
from grantline.sandbox.profiles import KNOWN_SCOPES, PROFILES, Profile, split_scopes
from grantline.sandbox.state import DEFAULT_SUBJECT, AuthorizationRequest, IssuedCode, SandboxState

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class _RedirectError(Exception):
    """An error reported to the client by redirecting back (RFC 6749 4.1.2.1)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _error_page(message: str, status: int = 400) -> HTMLResponse:
    # Bad client_id or redirect_uri: never redirect to an unverified URI; show the error instead.
    title = "<!doctype html><title>Sandbox authorization error</title><h1>Error</h1>"
    body = f"{title}<p>{html.escape(message)}</p>"
    return HTMLResponse(body, status_code=status)


def issuer(state: SandboxState, request: Request, profile: Profile) -> str:
    """The `iss` value for a profile (RFC 9207)."""
    base = (state.public_url or str(request.base_url)).rstrip("/")
    return f"{base}/p/{profile.name}"


def _response_params(state: SandboxState, request: Request, auth: AuthorizationRequest) -> dict[str, str]:
    params: dict[str, str] = {}
    if auth.state is not None:
        params["state"] = auth.state
    if PROFILES[auth.profile].sends_iss:
        params["iss"] = issuer(state, request, PROFILES[auth.profile])
    return params


def _validate(incoming: Incoming, client_redirect: str) -> AuthorizationRequest:
    query = incoming.request.query_params
    profile = incoming.profile
    if query.get("response_type") != "code":
        raise _RedirectError("unsupported_response_type", "only response_type=code is supported")
    if profile.rejects_scope and ("scope" in query or "user_scope" in query):
        raise _RedirectError("invalid_scope", "this server does not accept a scope parameter")
    scopes = split_scopes(query.get(profile.scope_param)) if profile.scope_param != "none" else []
    unknown = [scope for scope in scopes if scope not in KNOWN_SCOPES | profile.extra_scopes]
    if unknown:
        raise _RedirectError("invalid_scope", f"unknown scope(s): {' '.join(unknown)}")
    challenge = query.get("code_challenge") if profile.pkce != "none" else None
    if profile.pkce == "required" and not challenge:
        raise _RedirectError("invalid_request", "code_challenge is required (PKCE S256)")
    if challenge:
        if query.get("code_challenge_method") != "S256":
            raise _RedirectError("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.fullmatch(challenge):
            raise _RedirectError("invalid_request", "code_challenge is not a base64url SHA-256 digest")
    resource = query.get("resource")
    if profile.requires_resource and not resource:
        raise _RedirectError("invalid_target", "the resource parameter is required")
    return AuthorizationRequest(
        id=secrets.token_urlsafe(16),
        profile=profile.name,
        client_id=query["client_id"],
        redirect_uri=client_redirect,
        scopes=scopes,
        state=query.get("state"),
        code_challenge=challenge,
        resource=resource,
        subject=query.get("sandbox_user") or DEFAULT_SUBJECT,
        offline=query.get("access_type") == "offline" or "offline_access" in scopes,
    )


def _approve(state: SandboxState, request: Request, auth: AuthorizationRequest) -> RedirectResponse:
    code = IssuedCode(value=state.new_value("code"), request=auth, issued_at=state.clock())
    with state.lock:
        state.codes[code.value] = code
    return redirect_with(auth.redirect_uri, {"code": code.value, **_response_params(state, request, auth)})


def _consent_page(profile: Profile, auth: AuthorizationRequest) -> HTMLResponse:
    scopes = "".join(f"<li>{html.escape(scope)}</li>" for scope in auth.scopes) or "<li>(no scopes)</li>"
    action = f"/p/{profile.name}/authorize/decision"
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Sandbox consent</title></head>
<body>
<h1>Authorize {html.escape(auth.client_id)}</h1>
<p>Signed in to the sandbox ({html.escape(profile.name)}) as <b>{html.escape(auth.subject)}</b>.</p>
<p>The application asks for:</p><ul>{scopes}</ul>
<form method="post" action="{html.escape(action)}">
<input type="hidden" name="request_id" value="{html.escape(auth.id)}">
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>"""
    return HTMLResponse(body)


async def authorize(request: Request) -> Response:
    """The authorization endpoint: auto-approves unless consent is asked for."""
    incoming = await begin(request, "authorize")
    if isinstance(incoming, Response):
        return incoming
    state, profile, entry = incoming.state, incoming.profile, incoming.entry
    if profile.api_key_only:
        return finish(entry, _error_page("the api_key profile has no OAuth flow", status=404))
    query = request.query_params
    client = state.clients.get(query.get("client_id", ""))
    if client is None:
        return finish(entry, _error_page("unknown client_id"))
    redirect_uri = query.get("redirect_uri", "")
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        return finish(entry, _error_page("redirect_uri must be an absolute http(s) URL"))
    if client.redirect_uris is not None and redirect_uri not in client.redirect_uris:
        return finish(entry, _error_page("redirect_uri is not registered for this client"))
    try:
        auth = _validate(incoming, redirect_uri)
    except _RedirectError as exc:
        params = {"error": exc.error, "error_description": exc.description}
        if "state" in query:
            params["state"] = query["state"]
        if profile.sends_iss:
            params["iss"] = issuer(state, request, profile)
        return finish(entry, redirect_with(redirect_uri, params))
    if query.get("consent") == "1" or state.settings_for(profile.name).consent:
        with state.lock:
            state.pending[auth.id] = auth
        return finish(entry, _consent_page(profile, auth))
    return finish(entry, _approve(state, request, auth))


async def decide(request: Request) -> Response:
    """The consent form's target: Approve issues a code, Deny redirects with access_denied."""
    state = sandbox_state(request)
    form = await request.form()
    request_id, decision = form.get("request_id"), form.get("decision")
    with state.lock:
        auth = state.pending.pop(request_id, None) if isinstance(request_id, str) else None
    if auth is None or auth.profile != request.path_params["profile"]:
        return _error_page("this consent request is unknown or already decided")
    if decision == "approve":
        return _approve(state, request, auth)
    params = {"error": "access_denied", "error_description": "the user denied the request"}
    return redirect_with(auth.redirect_uri, {**params, **_response_params(state, request, auth)})
