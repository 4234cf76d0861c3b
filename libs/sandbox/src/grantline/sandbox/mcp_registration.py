"""How a sandbox MCP authorization server knows its clients: CIMD, DCR (RFC 7591), or pre-registered.

A client id that is a URL is a Client ID Metadata Document: the server fetches it (no redirects, a
size limit), and accepts it only when the document names itself as that client id, lists the
redirect URI, and claims no shared secret. Clients registered here (DCR or the control API) are bound
to one authorization server through `Client.profiles`, so a client id from server A is unknown at B.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from grantline.sandbox.common import sandbox_state
from grantline.sandbox.mcp_server import urls_of
from grantline.sandbox.mcp_state import CIMD_MAX_BYTES, McpUrls
from grantline.sandbox.state import Client, SandboxState

PUBLIC_AUTH_METHODS = frozenset({"none"})
AUTH_METHODS = frozenset({"none", "client_secret_post", "client_secret_basic"})
APPLICATION_TYPES = frozenset({"web", "native"})
_GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


class ClientError(Exception):
    """A client that cannot be used; `error` is the RFC 6749/7591 error code."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def error_json(exc: ClientError) -> JSONResponse:
    """An RFC 6749 error body; never carries a client secret."""
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="sandbox-mcp"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def is_metadata_document_id(client_id: str) -> bool:
    """Whether a client id is a URL (a Client ID Metadata Document) rather than an opaque id."""
    return client_id.startswith(("https://", "http://"))


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_document_url(client_id: str, *, allow_plain_http: bool) -> None:
    parts = urlsplit(client_id)
    # The draft wants https with a path; plain http is accepted for loopback hosts (tests, dev).
    plain_ok = parts.scheme == "http" and (allow_plain_http or _loopback(parts.hostname))
    if parts.scheme != "https" and not plain_ok:
        raise ClientError("invalid_client", "a client metadata document URL must be https")
    if parts.path in ("", "/") or parts.fragment or parts.username or parts.password:
        raise ClientError("invalid_client", "a client metadata document URL needs a path and no fragment")


async def _fetch_document(state: SandboxState, client_id: str) -> dict[str, Any]:
    try:
        response = await state.mcp.fetch_client_metadata(client_id)
    except httpx.HTTPError as exc:
        raise ClientError(
            "invalid_client", f"client metadata document unreachable ({type(exc).__name__})"
        ) from None
    if response.status_code != 200:
        raise ClientError("invalid_client", f"client metadata document answered {response.status_code}")
    if len(response.content) > CIMD_MAX_BYTES:
        raise ClientError("invalid_client", "client metadata document is too large")
    try:
        document = json.loads(response.content)
    except ValueError:
        raise ClientError("invalid_client", "client metadata document is not JSON") from None
    if not isinstance(document, dict):
        raise ClientError("invalid_client", "client metadata document is not a JSON object")
    return document


async def metadata_document_client(state: SandboxState, urls: McpUrls, client_id: str) -> Client:
    """Fetch and validate a Client ID Metadata Document; the client it describes is public."""
    if not state.mcp.switches_for(urls.server).cimd:
        raise ClientError("invalid_client", "this server does not accept client metadata documents")
    _check_document_url(client_id, allow_plain_http=state.mcp.allow_plain_http)
    document = await _fetch_document(state, client_id)
    if document.get("client_id") != client_id:
        raise ClientError("invalid_client", "the document's client_id is not the URL it was fetched from")
    if "client_secret" in document or document.get("token_endpoint_auth_method", "none") != "none":
        raise ClientError("invalid_client", "a client metadata document may not claim a shared secret")
    redirect_uris = document.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not all(isinstance(uri, str) for uri in redirect_uris):
        raise ClientError("invalid_client", "the document needs a redirect_uris list")
    return Client(client_id=client_id, client_secret="", redirect_uris=redirect_uris, profiles=[urls.as_key])


async def resolve_client(state: SandboxState, urls: McpUrls, client_id: str) -> Client:
    """The client behind an id at this authorization server (CIMD, DCR or pre-registered)."""
    if is_metadata_document_id(client_id):
        return await metadata_document_client(state, urls, client_id)
    client = state.clients.get(client_id)
    if client is None or client.profiles is None or urls.as_key not in client.profiles:
        raise ClientError("invalid_client", "unknown client_id at this authorization server")
    if state.mcp.forgot(urls.server, client_id):
        raise ClientError("invalid_client", "unknown client_id at this authorization server")
    return client


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        client_id, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ClientError("invalid_client", "malformed Basic credentials", 401) from None
    if not sep:
        raise ClientError("invalid_client", "malformed Basic credentials", 401)
    return client_id, secret


def authenticate_token_client(
    state: SandboxState, urls: McpUrls, request: Request, body: dict[str, str]
) -> str:
    """The client id calling the token or revocation endpoint, its secret checked when it has one."""
    basic = _basic(request)
    client_id, secret = (
        basic if basic is not None else (body.get("client_id", ""), body.get("client_secret", ""))
    )
    if not client_id:
        raise ClientError("invalid_client", "client_id is required", 401)
    if is_metadata_document_id(client_id):
        if secret:
            raise ClientError("invalid_client", "a metadata-document client has no secret", 401)
        return client_id  # public: codes and refresh tokens are bound to the id (and PKCE)
    client = state.clients.get(client_id)
    if (
        client is None
        or client.profiles is None
        or urls.as_key not in client.profiles
        or state.mcp.forgot(urls.server, client.client_id)
    ):
        raise ClientError("invalid_client", "unknown client at this authorization server", 401)
    if client.client_secret and not hmac.compare_digest(client.client_secret.encode(), secret.encode()):
        raise ClientError("invalid_client", "wrong client secret", 401)
    return client.client_id


def _registration_metadata(
    data: dict[str, Any], *, allow_plain_http: bool
) -> tuple[list[str], str, str, list[str]]:
    redirect_uris = data.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        raise ClientError("invalid_redirect_uri", "redirect_uris is required")
    for uri in redirect_uris:
        if not isinstance(uri, str) or urlsplit(uri).scheme not in ("http", "https") or "#" in uri:
            raise ClientError("invalid_redirect_uri", "every redirect URI must be an absolute http(s) URL")
    application_type = data.get("application_type", "web")
    if application_type not in APPLICATION_TYPES:
        raise ClientError("invalid_client_metadata", "application_type must be web or native")
    if (
        application_type == "web"
        and not allow_plain_http
        and any(
            urlsplit(uri).scheme != "https" and not _loopback(urlsplit(uri).hostname) for uri in redirect_uris
        )
    ):
        raise ClientError("invalid_redirect_uri", "a web client's redirect URIs must be https")
    method = data.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientError(
            "invalid_client_metadata", f"token_endpoint_auth_method {method!r} is not supported"
        )
    grant_types = data.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not set(grant_types) <= _GRANT_TYPES:
        raise ClientError(
            "invalid_client_metadata", "grant_types may be authorization_code and refresh_token"
        )
    return redirect_uris, application_type, method, grant_types


async def register(request: Request) -> Response:
    """RFC 7591 Dynamic Client Registration (when the server's `dcr` switch is on)."""
    state, urls = sandbox_state(request), urls_of(request)
    if not state.mcp.switches_for(urls.server).dcr:
        return Response(status_code=404)
    try:
        data = json.loads(await request.body() or b"null")
        if not isinstance(data, dict):
            raise ClientError("invalid_client_metadata", "the body must be a JSON object")
        redirect_uris, application_type, method, grant_types = _registration_metadata(
            data, allow_plain_http=state.mcp.allow_plain_http
        )
    except ValueError:
        return error_json(ClientError("invalid_client_metadata", "the body is not JSON"))
    except ClientError as exc:
        return error_json(exc)
    state.record(
        profile=urls.as_key,
        endpoint="register",
        method="POST",
        query={},
        headers=dict(request.headers),
        body=data,
        grant_type=None,
    )
    secret = "" if method in PUBLIC_AUTH_METHODS else state.new_value("client_secret")
    client = state.register_client(
        "sbx_dcr_" + secrets.token_hex(8), secret or None, redirect_uris=redirect_uris, profiles=[urls.as_key]
    )
    if not secret:
        client.client_secret = ""  # register_client generates one when given None; a public client has none
    with state.mcp.lock:
        state.mcp.registered_epochs[client.client_id] = state.mcp.switches_for(urls.server).registration_epoch
    reply: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(time.time()),
        "redirect_uris": redirect_uris,
        "application_type": application_type,
        "token_endpoint_auth_method": method,
        "grant_types": grant_types,
        "response_types": ["code"],
    }
    if secret:
        reply |= {"client_secret": secret, "client_secret_expires_at": 0}
    for name in ("client_name", "logo_uri", "client_uri", "scope"):
        if isinstance(data.get(name), str):
            reply[name] = data[name]
    return JSONResponse(reply, status_code=201, headers={"Cache-Control": "no-store"})
