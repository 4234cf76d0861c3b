"""The authorization server of a sandbox MCP server: RFC 8414 metadata, authorize, token, revoke.

It behaves as the MCP authorization profile asks of a server: PKCE S256 required, `resource`
required on authorize, token and refresh and equal to its MCP server's canonical URI, `iss` on every
authorization response (RFC 9207), refresh tokens rotated, and tokens whose audience is its own MCP
server only. The switches in McpSwitches break one of these at a time for the client's refusal tests.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from grantline.sandbox.common import finish, redirect_with, s256, sandbox_state
from grantline.sandbox.mcp_registration import (
    ClientError,
    authenticate_token_client,
    error_json,
    resolve_client,
)
from grantline.sandbox.mcp_server import urls_of
from grantline.sandbox.mcp_state import MCP_SCOPES, McpSwitches, McpUrls
from grantline.sandbox.profiles import split_scopes
from grantline.sandbox.state import (
    DEFAULT_SUBJECT,
    AuthorizationRequest,
    Grant,
    IssuedCode,
    RecordedRequest,
    SandboxState,
)

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CODE_TTL_SECONDS = 60.0


def _metadata(urls: McpUrls, switches: McpSwitches) -> dict[str, Any]:
    issuer = urls.issuer + "-elsewhere" if switches.wrong_issuer else urls.issuer
    document: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{urls.issuer}/authorize",
        "token_endpoint": f"{urls.issuer}/token",
        "revocation_endpoint": f"{urls.issuer}/revoke",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["plain"] if switches.no_s256 else ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "scopes_supported": list(MCP_SCOPES),
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": switches.cimd,
    }
    if switches.dcr:
        document["registration_endpoint"] = f"{urls.issuer}/register"
    return document


async def oauth_metadata(request: Request) -> Response:
    """RFC 8414 metadata at /.well-known/oauth-authorization-server/mcp/{server}/as."""
    urls = urls_of(request)
    switches = sandbox_state(request).mcp.switches_for(urls.server)
    if switches.oidc_only:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(_metadata(urls, switches))


async def openid_configuration(request: Request) -> Response:
    """OpenID discovery, at the path-inserted and the path-appended URLs."""
    urls = urls_of(request)
    document = _metadata(urls, sandbox_state(request).mcp.switches_for(urls.server))
    document |= {"subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}
    return JSONResponse(document)


def _record(
    state: SandboxState, urls: McpUrls, request: Request, endpoint: str, body: dict[str, str]
) -> RecordedRequest:
    grant_type = body.get("grant_type")
    return state.record(
        profile=urls.as_key,
        endpoint=endpoint,
        method=request.method,
        query=dict(request.query_params),
        headers=dict(request.headers),
        body=body or None,
        grant_type=grant_type,
    )


def _iss(urls: McpUrls, switches: McpSwitches) -> str:
    return "https://mix-up.sandbox.test/as" if switches.wrong_iss else urls.issuer


def _validate(query: Any, urls: McpUrls, switches: McpSwitches) -> tuple[list[str], str | None]:
    if query.get("response_type") != "code":
        raise ClientError("unsupported_response_type", "only response_type=code is supported")
    challenge = query.get("code_challenge")
    if not switches.no_s256:
        if not challenge or query.get("code_challenge_method") != "S256":
            raise ClientError("invalid_request", "PKCE with code_challenge_method=S256 is required")
        if not _CHALLENGE.fullmatch(challenge):
            raise ClientError("invalid_request", "code_challenge is not a base64url SHA-256 digest")
    if query.get("resource") != urls.resource:
        raise ClientError("invalid_target", f"resource must be {urls.resource}")
    scopes = split_scopes(query.get("scope"))
    unknown = [scope for scope in scopes if scope not in MCP_SCOPES]
    if unknown:
        raise ClientError("invalid_scope", f"unknown scope(s): {' '.join(unknown)}")
    return scopes, challenge


async def authorize(request: Request) -> Response:
    """The authorization endpoint (auto-approves as the sandbox user named by `sandbox_user`)."""
    state, urls = sandbox_state(request), urls_of(request)
    switches = state.mcp.switches_for(urls.server)
    query = request.query_params
    _record(state, urls, request, "authorize", {})
    try:
        client = await resolve_client(state, urls, query.get("client_id", ""))
    except ClientError as exc:
        return HTMLResponse(f"<!doctype html><h1>Error</h1><p>{exc.error}</p>", status_code=400)
    redirect_uri = query.get("redirect_uri", "")
    if client.redirect_uris is None or redirect_uri not in client.redirect_uris:
        return HTMLResponse("<!doctype html><h1>Error</h1><p>unregistered redirect_uri</p>", status_code=400)
    try:
        scopes, challenge = _validate(query, urls, switches)
    except ClientError as exc:
        params = {"error": exc.error, "error_description": exc.description, "iss": _iss(urls, switches)}
        if "state" in query:
            params["state"] = query["state"]
        return redirect_with(redirect_uri, params)
    auth = AuthorizationRequest(
        id=secrets.token_urlsafe(16),
        profile=urls.as_key,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=query.get("state"),
        code_challenge=challenge if challenge and query.get("code_challenge_method") == "S256" else None,
        resource=urls.resource,
        subject=query.get("sandbox_user") or DEFAULT_SUBJECT,
        offline=True,
    )
    code = IssuedCode(value=state.new_value("code"), request=auth, issued_at=state.clock())
    with state.lock:
        state.codes[code.value] = code
    params = {"code": code.value, "iss": _iss(urls, switches)}
    if auth.state is not None:
        params["state"] = auth.state
    return redirect_with(redirect_uri, params)


def _tokens(state: SandboxState, urls: McpUrls, grant: Grant) -> dict[str, Any]:
    lifetime = state.mcp.switches_for(urls.server).access_token_expires_in
    access = state.issue_token("access_token", grant, lifetime)
    refresh = state.issue_token("refresh_token", grant, None)
    return {
        "access_token": access.value,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "refresh_token": refresh.value,
        "scope": " ".join(grant.scopes),
    }


def _exchange_code(
    state: SandboxState, urls: McpUrls, client_id: str, body: dict[str, str]
) -> dict[str, Any]:
    with state.lock:
        code = state.codes.get(body.get("code", ""))
        if code is None or code.request.profile != urls.as_key:
            raise ClientError("invalid_grant", "unknown authorization code")
        if code.used:
            if code.grant_id:
                state.revoke_grant(code.grant_id)
            raise ClientError("invalid_grant", "authorization code was already used")
        code.used = True
        auth = code.request
        if state.clock() - code.issued_at > CODE_TTL_SECONDS:
            raise ClientError("invalid_grant", "authorization code expired")
        if auth.client_id != client_id or body.get("redirect_uri") != auth.redirect_uri:
            raise ClientError("invalid_grant", "code was issued to another client or redirect URI")
        verifier = body.get("code_verifier")
        if auth.code_challenge is not None and (not verifier or s256(verifier) != auth.code_challenge):
            raise ClientError("invalid_grant", "PKCE code_verifier does not match")
        if body.get("resource") != auth.resource:
            raise ClientError("invalid_target", "resource is required and must match the authorize request")
        grant = Grant(
            id="grant_" + secrets.token_hex(8),
            profile=urls.as_key,
            client_id=client_id,
            subject=auth.subject,
            scopes=auth.scopes,
            resource=auth.resource,
            offline=True,
        )
        state.grants[grant.id] = grant
        code.grant_id = grant.id
        return _tokens(state, urls, grant)


def _refresh(state: SandboxState, urls: McpUrls, client_id: str, body: dict[str, str]) -> dict[str, Any]:
    presented = body.get("refresh_token", "")
    with state.lock:
        state.refresh_counts[presented] += 1
        token = state.tokens.get(presented)
        grant = state.grants.get(token.grant_id) if token is not None else None
        if token is None or grant is None or token.kind != "refresh_token" or grant.profile != urls.as_key:
            raise ClientError("invalid_grant", "unknown refresh token")
        if token.rotated:
            state.revoke_grant(grant.id)  # reuse of a rotated refresh token looks like theft
            raise ClientError("invalid_grant", "refresh token was already used")
        if token.revoked or grant.revoked or grant.client_id != client_id:
            raise ClientError("invalid_grant", "refresh token was revoked or issued to another client")
        if body.get("resource") != grant.resource:
            raise ClientError("invalid_target", "resource is required and must match the grant")
        extra = set(split_scopes(body.get("scope"))) - set(grant.scopes)
        if extra:
            raise ClientError("invalid_scope", f"scope exceeds the grant: {' '.join(sorted(extra))}")
        token.rotated = True
        return _tokens(state, urls, grant)


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ClientError("invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def token(request: Request) -> Response:
    """authorization_code and refresh_token grants, both requiring `resource`."""
    state, urls = sandbox_state(request), urls_of(request)
    entry = None
    try:
        body = await _form(request)
        entry = _record(state, urls, request, "token", body)
        client_id = authenticate_token_client(state, urls, request, body)
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            payload = _exchange_code(state, urls, client_id, body)
        elif grant_type == "refresh_token":
            payload = _refresh(state, urls, client_id, body)
        else:
            raise ClientError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    except ClientError as exc:
        return _finished(entry, error_json(exc))
    return _finished(
        entry, JSONResponse(payload, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
    )


def _finished(entry: RecordedRequest | None, response: Response) -> Response:
    return finish(entry, response) if entry is not None else response


async def revoke(request: Request) -> Response:
    """RFC 7009: 200 for unknown tokens too; a refresh token takes its grant with it."""
    state, urls = sandbox_state(request), urls_of(request)
    try:
        body = await _form(request)
        _record(state, urls, request, "revoke", body)
        client_id = authenticate_token_client(state, urls, request, body)
        value = body.get("token", "")
        with state.lock:
            token = state.tokens.get(value)
            grant = state.grants.get(token.grant_id) if token is not None else None
            if grant is not None and (grant.profile != urls.as_key or grant.client_id != client_id):
                raise ClientError("unauthorized_client", "the token was issued to another client")
            if token is not None:
                state.revoke_token(value)
    except ClientError as exc:
        return error_json(exc)
    return Response(status_code=200)
