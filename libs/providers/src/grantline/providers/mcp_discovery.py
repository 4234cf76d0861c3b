"""The MCP authorization profile as a client, the pure part: URLs to try, documents to check, the
definition to keep. The vault does the fetching (through its guarded HTTP client) and calls these.

Order of discovery (MCP authorization, revision 2025-11-25 and later):
1. Probe the server; a 401 carries `WWW-Authenticate: Bearer resource_metadata=..., scope=...`.
2. Protected Resource Metadata (RFC 9728): the URL from the challenge, else the well-known URL with
   the server's path inserted, else the well-known URL at the root.
3. Authorization Server metadata of the first listed issuer: for an issuer with a path, RFC 8414
   path-inserted, OpenID path-inserted, OpenID path-appended; without a path, RFC 8414 then OpenID.
   The document's `issuer` must be exactly the issuer it was fetched for (RFC 8414 section 3.3).
4. Registration: a pre-registered client when the tenant gave one, else a Client ID Metadata
   Document when the server advertises support, else Dynamic Client Registration (RFC 7591).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from grantline.providers.definition import McpRegistration

DiscoveryStep = Literal[
    "server_url", "probe", "resource_metadata", "authorization_server_metadata", "registration", "definition"
]
# RFC 6750 section 3 challenge parameters: name="quoted value" or name=token.
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")
MAX_SCOPES = 100
# The application type Grantline registers as: a server-side web application with an https callback.
APPLICATION_TYPE = "web"


class McpDiscoveryError(ValueError):
    """Discovery or registration failed at `step`; the message is safe to show the tenant."""

    def __init__(self, step: DiscoveryStep, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


def parse_bearer_challenge(header: str | None) -> dict[str, str]:
    """The parameters of the Bearer challenge in a `WWW-Authenticate` value ({} when there is none)."""
    if not header:
        return {}
    start = header.lower().find("bearer")
    if start < 0:
        return {}
    params: dict[str, str] = {}
    for match in _CHALLENGE_PARAM.finditer(header[start + len("bearer") :]):
        name, quoted, bare = match.group(1).lower(), match.group(2), match.group(3)
        params.setdefault(name, re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare)
    return params


def scopes_from(value: str | None) -> list[str]:
    """Space-separated scope tokens, de-duplicated; malformed tokens are dropped."""
    if not value:
        return []
    tokens = [token for token in value.split() if _SCOPE_TOKEN.fullmatch(token)]
    return list(dict.fromkeys(tokens))[:MAX_SCOPES]


def canonical_server_uri(url: str) -> str:
    """The canonical MCP server URI (RFC 8707 / MCP): lower-case scheme and host, no fragment or query."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
        raise McpDiscoveryError("server_url", "the MCP server URL must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise McpDiscoveryError("server_url", "the MCP server URL may not carry credentials")
    netloc = parts.hostname.lower() + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, "", ""))


def _well_known(url: str, name: str, *, appended: bool = False) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if appended:
        return urlunsplit((parts.scheme, parts.netloc, f"{path}/.well-known/{name}", "", ""))
    return urlunsplit((parts.scheme, parts.netloc, f"/.well-known/{name}{path}", "", ""))


def resource_metadata_urls(server_uri: str, challenge: Mapping[str, str]) -> list[str]:
    """Where to look for Protected Resource Metadata, in the specification's order."""
    urls = []
    if challenge.get("resource_metadata"):
        urls.append(challenge["resource_metadata"])
    urls.append(_well_known(server_uri, "oauth-protected-resource"))
    root = urlunsplit((*urlsplit(server_uri)[:2], "/.well-known/oauth-protected-resource", "", ""))
    urls.append(root)
    return list(dict.fromkeys(urls))


def authorization_server_metadata_urls(issuer: str) -> list[str]:
    """Where to look for an issuer's metadata: RFC 8414 first, then OpenID discovery."""
    if urlsplit(issuer).path.strip("/"):
        return [
            _well_known(issuer, "oauth-authorization-server"),
            _well_known(issuer, "openid-configuration"),
            _well_known(issuer, "openid-configuration", appended=True),
        ]
    return [_well_known(issuer, "oauth-authorization-server"), _well_known(issuer, "openid-configuration")]


@dataclass(frozen=True)
class ProtectedResource:
    """What RFC 9728 metadata says about the MCP server."""

    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...]
    metadata_url: str


def check_resource_metadata(document: Any, server_uri: str, metadata_url: str) -> ProtectedResource:
    """Validate Protected Resource Metadata for the server it was looked up for."""
    if not isinstance(document, dict):
        raise McpDiscoveryError("resource_metadata", "the protected resource metadata is not a JSON object")
    resource = document.get("resource")
    if not isinstance(resource, str) or canonical_server_uri(resource).rstrip("/") != server_uri.rstrip("/"):
        # RFC 9728 section 3.3: metadata for another resource must not be used (impersonation).
        raise McpDiscoveryError("resource_metadata", "the metadata describes a different resource")
    servers = document.get("authorization_servers")
    if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
        raise McpDiscoveryError("resource_metadata", "the metadata lists no authorization server")
    scopes = document.get("scopes_supported")
    supported = (
        scopes_from(" ".join(s for s in scopes if isinstance(s, str))) if isinstance(scopes, list) else []
    )
    return ProtectedResource(server_uri, tuple(servers), tuple(supported), metadata_url)


@dataclass(frozen=True)
class AuthorizationServer:
    """The parts of an authorization server's metadata the flow uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None
    registration_endpoint: str | None
    scopes_supported: tuple[str, ...]
    sends_iss: bool
    client_id_metadata_documents: bool
    token_endpoint_auth_methods: tuple[str, ...]


def check_authorization_server_metadata(document: Any, issuer: str) -> AuthorizationServer:
    """Validate metadata fetched for `issuer`: same issuer, PKCE S256, the endpoints the flow needs."""
    step: DiscoveryStep = "authorization_server_metadata"
    if not isinstance(document, dict):
        raise McpDiscoveryError(step, "the authorization server metadata is not a JSON object")
    if document.get("issuer") != issuer:
        raise McpDiscoveryError(step, "issuer mismatch: the metadata names another issuer than its URL")
    methods = document.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        raise McpDiscoveryError(step, "the authorization server does not support PKCE S256")
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint"):
        value = document.get(name)
        if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
            raise McpDiscoveryError(step, f"the metadata has no usable {name}")
        endpoints[name] = value
    optional = {
        name: value if isinstance(value := document.get(name), str) else None
        for name in ("revocation_endpoint", "registration_endpoint")
    }
    scopes = document.get("scopes_supported")
    auth_methods = document.get("token_endpoint_auth_methods_supported")
    return AuthorizationServer(
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        revocation_endpoint=optional["revocation_endpoint"],
        registration_endpoint=optional["registration_endpoint"],
        scopes_supported=tuple(scopes_from(" ".join(s for s in scopes if isinstance(s, str))))
        if isinstance(scopes, list)
        else (),
        sends_iss=document.get("authorization_response_iss_parameter_supported") is True,
        client_id_metadata_documents=document.get("client_id_metadata_document_supported") is True,
        token_endpoint_auth_methods=tuple(m for m in auth_methods if isinstance(m, str))
        if isinstance(auth_methods, list)
        else ("client_secret_basic",),
    )


def every_discovered_url(resource: ProtectedResource, server: AuthorizationServer) -> list[str]:
    """Every URL discovery produced, for the caller's address checks (SSRF) before any is used."""
    urls = [resource.metadata_url, server.authorization_endpoint, server.token_endpoint]
    urls += [url for url in (server.revocation_endpoint, server.registration_endpoint) if url]
    return urls


def choose_registration(server: AuthorizationServer, *, preregistered: bool) -> McpRegistration:
    """Pre-registered when the tenant gave a client, else a metadata document, else DCR."""
    if preregistered:
        return "preregistered"
    if server.client_id_metadata_documents:
        return "client_metadata_document"
    if server.registration_endpoint:
        return "dynamic"
    raise McpDiscoveryError(
        "registration",
        "the server supports neither client metadata documents nor dynamic registration;"
        " give a pre-registered client_id",
    )


def challenge_scopes(challenge: Mapping[str, str], resource: ProtectedResource) -> list[str]:
    """Scopes to ask for: the challenge's `scope`, else the resource's `scopes_supported`, else none."""
    return scopes_from(challenge.get("scope")) or list(resource.scopes_supported)


def client_metadata_document(
    client_id: str, *, redirect_uri: str, client_name: str, logo_uri: str | None = None
) -> dict[str, Any]:
    """The Client ID Metadata Document Grantline publishes at `client_id` (a public client)."""
    document: dict[str, Any] = {
        "client_id": client_id,
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": APPLICATION_TYPE,
    }
    if logo_uri:
        document["logo_uri"] = logo_uri
    return document


def registration_request(
    server: AuthorizationServer, *, redirect_uri: str, client_name: str
) -> dict[str, Any]:
    """An RFC 7591 registration request: a confidential web client when the server takes secrets."""
    method = "client_secret_post" if "client_secret_post" in server.token_endpoint_auth_methods else "none"
    return {
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": APPLICATION_TYPE,
    }


def provider_id_for(name: str | None, server_uri: str) -> str:
    """A provider id for an MCP server: `mcp_` and a slug of its name, else of its host and path."""
    parts = urlsplit(server_uri)
    source = name or f"{parts.hostname}{parts.path}"
    slug = re.sub(r"[^a-z0-9]+", "_", source.lower()).strip("_")
    return ("mcp_" + slug)[:64].rstrip("_") or "mcp_server"


def mcp_definition(
    *,
    provider_id: str,
    name: str,
    resource: ProtectedResource,
    server: AuthorizationServer,
    registration: McpRegistration,
    scopes: Sequence[str],
    client_auth: Literal["header", "body"] = "body",
    discovered_at: str | None = None,
) -> dict[str, Any]:
    """The provider definition (catalogue schema) a discovered MCP server is kept as."""
    available = list(dict.fromkeys([*scopes, *resource.scopes_supported, *server.scopes_supported]))
    oauth: dict[str, Any] = {
        "authorize_url": server.authorization_endpoint,
        "token_url": server.token_endpoint,
        "pkce": "required",
        "client_auth": client_auth,
        "authorize_params": {"resource": resource.resource},
        "token_params": {"resource": resource.resource},
        "scopes": {"default": list(scopes), "available": {scope: scope for scope in available}},
    }
    if server.sends_iss:
        oauth["issuer"] = server.issuer
    if server.revocation_endpoint:
        oauth["revoke"] = {"url": server.revocation_endpoint, "client_auth": client_auth}
    return {
        "id": provider_id,
        "name": name,
        "category": "mcp",
        "auth": "mcp_oauth",
        "description": f"Remote MCP server at {resource.resource}",
        "mcp_server_url": resource.resource,
        "mcp": {
            "resource": resource.resource,
            "issuer": server.issuer,
            "resource_metadata_url": resource.metadata_url,
            "registration": registration,
            "scopes_supported": list(available),
            "discovered_at": discovered_at,
        },
        "oauth": oauth,
        "refresh": {"rotating": True},
    }
