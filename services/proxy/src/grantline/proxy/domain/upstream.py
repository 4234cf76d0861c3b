"""Where a proxied call goes and which headers travel: pure rules, no I/O.

The upstream URL is the provider's `api.base_url` (templated from the connection's settings) plus
the tool's path. The path may not climb out of the base path (`..`, or encoded slashes and dots
that a provider would decode), since on a templated base such as Atlassian's `/ex/jira/{cloud_id}`
that would reach another site. Only the origins of the base URL and of `api.hosts` are reachable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from grantline.providers.api_spec import ApiSpec
from grantline.providers.authorize import SettingsError, render_template, template_values
from grantline.providers.definition import ProviderDefinition

# RFC 9110 section 7.6.1 hop-by-hop fields, plus what a proxy must never forward.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Never sent upstream: the grant (Authorization), the tool's cookies, what the client library sets
# for its own hop, and the proxy's own control headers (grantline-*).
_DROPPED_REQUEST = HOP_BY_HOP | {"authorization", "cookie", "host", "content-length", "forwarded", "expect"}
# Never sent back: provider cookies (a tool has no session at the provider) and hop-by-hop fields.
_DROPPED_RESPONSE = HOP_BY_HOP | {"set-cookie", "set-cookie2"}
_UNSAFE_PATH = re.compile(r"(^|/)\.{1,2}(/|$)|%2[eEfF]|%5[cC]|\\|[\x00-\x20\x7f]")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class UpstreamRefused(Exception):
    """The call cannot be sent as asked; ``code`` is the problem code, the message is safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of an absolute URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


@dataclass(frozen=True, slots=True)
class Target:
    """The first upstream URL of a call, and every origin the call may reach (redirects included)."""

    url: str
    origins: frozenset[Origin]
    api: ApiSpec


def build_target(
    definition: ProviderDefinition,
    settings: Mapping[str, str],
    path: str,
    query: str,
    *,
    host: str | None = None,
    allow_http: bool = False,
) -> Target:
    """The upstream URL for ``path`` (and raw ``query``), on ``host`` when the tool picks one of the
    provider's other hosts; raises ``UpstreamRefused``."""
    api = definition.api
    if api is None:
        raise UpstreamRefused("no_api", f"{definition.id} has no api section: the proxy cannot call it")
    if _UNSAFE_PATH.search(path):
        raise UpstreamRefused("invalid_path", "the path may not contain dot segments or encoded separators")
    try:
        values = template_values(definition, settings)
        base = render_template(api.base_url, values).rstrip("/")
        extra = [render_template(h, values) for h in api.hosts]
    except SettingsError:
        raise UpstreamRefused(
            "connection_settings", "the connection lacks the settings its API needs"
        ) from None
    base_origin = origin_of(base)
    if base_origin[0] != "https" and not allow_http:
        raise UpstreamRefused("no_api", f"{definition.id}'s API base URL is not https")
    origins = {base_origin, *((base_origin[0], name.lower(), base_origin[2]) for name in extra)}
    if host is not None:
        wanted = host.lower()
        if wanted not in {name.lower() for name in extra}:
            raise UpstreamRefused("host_not_allowed", f"{host} is not one of {definition.id}'s API hosts")
        base = f"{base_origin[0]}://{wanted}"
    url = f"{base}/{path.lstrip('/')}" if path else base
    return Target(url + (f"?{query}" if query else ""), frozenset(origins), api)


def build_mcp_target(
    definition: ProviderDefinition, settings: Mapping[str, str], *, allow_http: bool = False
) -> Target:
    """The remote MCP server of an `mcp_oauth` provider (its `mcp_server_url`), token as a bearer."""
    if definition.mcp_server_url is None:
        raise UpstreamRefused("no_mcp_server", f"{definition.id} is not a remote MCP server")
    try:
        url = render_template(definition.mcp_server_url, template_values(definition, settings))
    except SettingsError:
        raise UpstreamRefused(
            "connection_settings", "the connection lacks the settings its server needs"
        ) from None
    origin = origin_of(url)
    if origin[0] != "https" and not allow_http:
        raise UpstreamRefused("no_mcp_server", f"{definition.id}'s MCP server URL is not https")
    return Target(url, frozenset({origin}), definition.api or ApiSpec(base_url=url, timeout_seconds=60))


def redirect_target(current: str, location: str, origins: Iterable[Origin]) -> str:
    """The absolute URL of a redirect; raises ``UpstreamRefused`` for one off the provider's hosts."""
    target = urljoin(current, location)
    if origin_of(target) not in set(origins):
        raise UpstreamRefused("redirect_refused", "the provider redirected to a host outside its API")
    return target


def upstream_headers(incoming: Iterable[tuple[str, str]], api: ApiSpec, token: str) -> dict[str, str]:
    """The headers sent upstream: the tool's minus credentials and hop-by-hop ones, the provider's
    fixed headers, and the token where the provider takes it."""
    connection_listed: set[str] = set()
    kept: dict[str, str] = {}
    for name, value in incoming:
        lower = name.lower()
        if lower == "connection":
            connection_listed.update(part.strip().lower() for part in value.split(","))
        if lower in _DROPPED_REQUEST or lower.startswith(("grantline-", "x-forwarded-")):
            continue
        if lower == api.token_header.lower():
            continue
        kept[name] = value
    for name in connection_listed:
        kept = {k: v for k, v in kept.items() if k.lower() != name}
    kept.update(api.headers)
    kept[api.token_header] = api.token_format.replace("{token}", token)
    return kept


def downstream_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The provider's response headers that go back to the tool (no cookies, no hop-by-hop)."""
    return [(name, value) for name, value in upstream if name.lower() not in _DROPPED_RESPONSE]
