"""Tool code calling provider APIs through Grantline's tool-call proxy, with one line of httpx.

The tool never holds the user's token: it sends the run grant (from `runs.admitted`, renewed with
`satisfaction.renew_grant`) to the proxy, which checks it, gets the token from the vault and calls
the provider (docs/proxy.md). It needs httpx: install `grantline-runner[proxy]`.

    from grantline.runner.proxy import proxy_client

    async with proxy_client(PROXY, "github", grant=lambda: run.grant, tool="list-repos") as github:
        repos = (await github.get("/user/repos")).json()
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from urllib.parse import quote

import httpx

ERROR_HEADER = "Grantline-Error"
GrantSource = str | Callable[[], str]


def proxy_url(proxy: str, provider: str, path: str = "") -> str:
    """The proxy URL of ``path`` on ``provider``'s API (``path`` as the provider documents it)."""
    base = f"{proxy.rstrip('/')}/v1/proxy/{quote(provider, safe='')}"
    return f"{base}/{path.lstrip('/')}" if path else base


class GrantAuth(httpx.Auth):
    """Sends the run grant as the bearer credential (the current one, when given a callable that
    returns the latest renewed grant) and, for the audit record, the tool's name."""

    def __init__(self, grant: GrantSource, *, tool: str | None = None, host: str | None = None) -> None:
        self._grant = grant
        self._tool = tool
        self._host = host

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the headers; the proxy answers a bad grant with 401 and `Grantline-Error`."""
        grant = self._grant() if callable(self._grant) else self._grant
        request.headers["Authorization"] = f"Bearer {grant}"
        if self._tool:
            request.headers["Grantline-Tool"] = self._tool
        if self._host:
            request.headers["Grantline-Upstream-Host"] = self._host
        yield request


def proxy_client(
    proxy: str,
    provider: str,
    *,
    grant: GrantSource,
    tool: str | None = None,
    host: str | None = None,
    **options: object,
) -> httpx.AsyncClient:
    """An httpx client whose relative URLs are paths of ``provider``'s API, sent through the proxy.

    ``host`` picks another of the provider's API hosts (``gmail.googleapis.com``); ``options`` go to
    ``httpx.AsyncClient`` (timeouts, limits). Redirects are the proxy's business: they are followed
    there, only to the provider's own hosts.
    """
    return httpx.AsyncClient(
        base_url=proxy_url(proxy, provider) + "/",
        auth=GrantAuth(grant, tool=tool, host=host),
        follow_redirects=False,
        **options,  # type: ignore[arg-type]
    )


class ProxyRefused(Exception):
    """The proxy itself refused or could not make the call (not the provider's answer)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


def raise_for_proxy_error(response: httpx.Response) -> httpx.Response:
    """Raise ``ProxyRefused`` for the proxy's own errors (they carry `Grantline-Error`); a provider's
    error answer is returned as is, for the tool to read."""
    code = response.headers.get(ERROR_HEADER)
    if code is not None:
        detail = ""
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(response.json().get("detail", ""))
        raise ProxyRefused(response.status_code, code, detail)
    return response
