"""What every sandbox OAuth endpoint does first: find the profile, read the body, record, apply faults."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from grantline.sandbox.faults import apply_fault
from grantline.sandbox.profiles import PROFILES, Profile
from grantline.sandbox.state import Client, RecordedRequest, SandboxState

# Slack and GitHub name their errors differently from RFC 6749; the sandbox speaks their dialect.
_SLACK_ERRORS = {
    ("invalid_grant", "code"): "invalid_code",
    ("invalid_grant", "refresh_token"): "invalid_refresh_token",
    ("invalid_client", None): "invalid_client_id",
}
_GITHUB_ERRORS = {
    ("invalid_grant", "code"): "bad_verification_code",
    ("invalid_grant", "refresh_token"): "bad_refresh_token",
    ("invalid_client", None): "incorrect_client_credentials",
}


class OAuthError(Exception):
    """An RFC 6749 error the handler wants to answer with; `about` is "code" or "refresh_token"."""

    def __init__(self, error: str, description: str, *, status: int = 400, about: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.about = about


@dataclass
class Incoming:
    """A request after the common steps."""

    request: Request
    profile: Profile
    body: dict[str, Any]
    body_format: str | None
    entry: RecordedRequest
    state: SandboxState
    # A fault that lets the endpoint act, then holds the answer back this long.
    answer_delay_ms: int = 0


def sandbox_state(request: Request) -> SandboxState:
    """The SandboxState the app was created with."""
    state: SandboxState = request.app.state.sandbox
    return state


async def _read_body(request: Request) -> tuple[dict[str, Any], str | None]:
    if request.method not in ("POST", "PUT", "DELETE"):
        return {}, None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        raw = await request.body()
        if not raw:
            return {}, "json"
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise OAuthError("invalid_request", "body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise OAuthError("invalid_request", "JSON body must be an object")
        return parsed, "json"
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}, "form"
    return {}, None


async def begin(request: Request, endpoint: str) -> Incoming | Response:
    """Profile lookup, body parsing, recording and fault switches; a Response means "answer this"."""
    state = sandbox_state(request)
    profile = PROFILES.get(request.path_params["profile"])
    if profile is None:
        known = ", ".join(PROFILES)
        return JSONResponse(
            {"error": "not_found", "error_description": f"profiles: {known}"}, status_code=404
        )
    try:
        body, body_format = await _read_body(request)
    except OAuthError as exc:
        body, body_format = {}, None
        entry = _record(state, request, profile, endpoint, {})
        return finish(entry, error_response(profile, exc))
    entry = _record(state, request, profile, endpoint, body)
    fault = state.faults.take(endpoint, profile.name, entry.grant_type)
    if fault is not None:
        entry.fault = fault.id
        if fault.answer_late:
            return Incoming(request, profile, body, body_format, entry, state, fault.delay_ms)
        faulted = await apply_fault(fault)
        if faulted is not None:
            return finish(entry, faulted)
    return Incoming(request, profile, body, body_format, entry, state)


def _record(
    state: SandboxState, request: Request, profile: Profile, endpoint: str, body: dict[str, Any]
) -> RecordedRequest:
    grant_type = body.get("grant_type")
    return state.record(
        profile=profile.name,
        endpoint=endpoint,
        method=request.method,
        query=dict(request.query_params),
        headers=dict(request.headers),
        body=body or None,
        grant_type=grant_type if isinstance(grant_type, str) else None,
    )


def redirect_with(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    """A 302 back to the client, the parameters appended to any query the redirect URI has."""
    parts = urlsplit(redirect_uri)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)


def finish(entry: RecordedRequest, response: Response) -> Response:
    """Note the status in the recording and pass the response through."""
    entry.status = response.status_code
    return response


def error_response(profile: Profile, exc: OAuthError) -> Response:
    """An error body in the dialect of the provider the profile imitates."""
    headers = {"Cache-Control": "no-store"}
    key = (exc.error, exc.about if exc.error == "invalid_grant" else None)
    if profile.slack_envelope:
        return JSONResponse({"ok": False, "error": _SLACK_ERRORS.get(key, exc.error)}, headers=headers)
    body = {"error": exc.error, "error_description": exc.description}
    if profile.errors_with_200:
        body["error"] = _GITHUB_ERRORS.get(key, exc.error)
        return JSONResponse(body, headers=headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="sandbox"'
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401)
    return client_id, secret


def authenticate_client(incoming: Incoming) -> Client:
    """The calling client, authenticated the way this profile requires (header or body)."""
    profile, body = incoming.profile, incoming.body
    basic = _basic_credentials(incoming.request)
    if profile.client_auth == "header":
        if basic is None:
            raise OAuthError(
                "invalid_client", "this server expects HTTP Basic client authentication", status=401
            )
        if "client_secret" in body:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        client_id, secret = basic
    else:
        if basic is not None:
            raise OAuthError(
                "invalid_client", "this server expects client_secret in the request body", status=401
            )
        client_id, secret = str(body.get("client_id", "")), str(body.get("client_secret", ""))
    client = incoming.state.clients.get(client_id)
    if client is None or not hmac.compare_digest(client.client_secret.encode(), secret.encode()):
        raise OAuthError("invalid_client", "unknown client or wrong secret", status=401)
    if client.profiles is not None and profile.name not in client.profiles:
        raise OAuthError("unauthorized_client", f"client is not registered for profile {profile.name!r}")
    return client


def s256(verifier: str) -> str:
    """RFC 7636 S256 transformation."""
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def slack_user_id(subject: str) -> str:
    """A stable Slack-looking user id for a sandbox subject."""
    return "U" + hashlib.sha256(subject.encode()).hexdigest()[:10].upper()


def github_user_id(subject: str) -> int:
    """A stable numeric id, as GitHub's /user returns."""
    return int(hashlib.sha256(subject.encode()).hexdigest()[:8], 16)


SANDBOX_TEAM = {"id": "T0SANDBOX", "name": "Sandbox Team"}
