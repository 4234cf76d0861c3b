"""A tool's provider API call, made with the user's token: the proxy's one use case.

Order: verify the run grant (cached by the verifier), refuse a finished run or a revoked
connection known from events, check the grant names the provider, get the token (briefly cached,
else `vault.resolve`), build the upstream URL from the catalogue's `api` section, send (following
redirects only to the provider's own hosts), and on a 401 report it to the vault: the first report
refreshes the connection and the call is retried once when that is safe (idempotent method, or a
body small enough to have been kept); a 401 after the refresh is reported again and the vault
decides whether the connection is dead. The answer streams back (streaming.py), which also writes
the audit record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiohttp

from grantline.contract.run_grants import RunGrant
from grantline.providers.catalogue import Catalogue, UnknownProviderError
from grantline.providers.definition import ProviderDefinition
from grantline.proxy.adapters.upstream_client import UpstreamClient, UpstreamUnavailable
from grantline.proxy.adapters.vault_client import Resolved, VaultClient, VaultRefused
from grantline.proxy.domain.upstream import (
    REDIRECT_STATUSES,
    Target,
    UpstreamRefused,
    build_target,
    redirect_target,
    upstream_headers,
)
from grantline.proxy.service.calls import VAULT_STATUS, Answer, CallRequest, Problem
from grantline.proxy.service.mcp_proxy import McpProxy
from grantline.proxy.service.run_state import ResolvedToken, RunState
from grantline.proxy.service.streaming import CallAudit, Streamer
from grantline.proxy.settings import ProxySettings
from grantline.runtime.run_grants import GrantRejected, RunGrantVerifier

log = logging.getLogger(__name__)

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_REFUSED_STATUS = {
    "no_api": 404,
    "invalid_path": 400,
    "host_not_allowed": 403,
    "connection_settings": 409,
    "redirect_refused": 502,
}
Body = bytes | AsyncIterator[bytes] | None


class ProxyService:
    """Serves proxied calls; one per replica."""

    def __init__(
        self,
        settings: ProxySettings,
        catalogue: Catalogue,
        grants: RunGrantVerifier,
        vault: VaultClient,
        upstream: UpstreamClient,
        state: RunState,
        streamer: Streamer,
    ) -> None:
        self._settings = settings
        self._catalogue = catalogue
        self._grants = grants
        self._vault = vault
        self._upstream = upstream
        self._state = state
        self._streamer = streamer
        self._reports: set[asyncio.Task[object]] = set()
        self._mcp_proxy = McpProxy(self, streamer)

    async def call(self, request: CallRequest) -> Answer:
        """The provider's answer to the tool's call; raises ``Problem`` when there is none."""
        started = time.perf_counter()
        try:
            grant = self._grants.verify(request.grant)
        except GrantRejected as rejected:
            # Nothing in an unverified grant can be trusted: no tenant to audit it under.
            log.info("proxy call refused: %s", rejected.reason, extra={"provider": request.provider[:128]})
            raise Problem(401, "grant_invalid", rejected.reason) from None
        audit = CallAudit(grant=grant, request=request, provider=request.provider, started=started)
        try:
            return await self._call(grant, request, audit)
        except Problem as problem:
            self._streamer.record_problem(audit, problem)
            raise

    async def _call(self, grant: RunGrant, request: CallRequest, audit: CallAudit) -> Answer:
        run = (grant.tenant_id, grant.run_id)
        if self._state.is_finished(run):
            raise Problem(403, "run_finished", "the run has finished; its grant is spent")
        definition = self._definition(request.provider)
        provider = audit.provider = definition.id
        if not grant.covers(provider):
            raise Problem(403, "forbidden", f"the run grant does not cover {provider}")
        if request.kind == "mcp":
            return await self._mcp(grant, request, audit, definition)
        api = definition.api
        if api is None:
            raise Problem(404, "no_api", f"{provider} has no api section: the proxy cannot call it")
        if request.content_length is not None and request.content_length > api.max_request_bytes:
            raise Problem(
                413, "request_too_large", f"{provider} calls take at most {api.max_request_bytes} bytes"
            )
        body = await self._body(request, api.max_request_bytes)
        token = await self._token(grant, request, provider)
        audit.connection_id = token.connection_id
        if self._state.is_revoked(run, token.connection_id):
            raise Problem(403, "revoked", "the connection was revoked during this run")
        target = self._target(definition, token, request)
        response = await self._send(request.method, target, request.headers, token, body)
        if response.status == 401:
            response = await self._after_401(grant, request, provider, target, token, body, response, audit)
        return await self._streamer.answer(response, audit, token, api.max_response_bytes)

    async def _mcp(
        self, grant: RunGrant, request: CallRequest, audit: CallAudit, definition: ProviderDefinition
    ) -> Answer:
        """One streamable-HTTP exchange with the provider's MCP server (mcp_proxy.py)."""
        return await self._mcp_proxy.exchange(grant, request, audit, definition)

    @property
    def state(self) -> RunState:
        """The replica's run state (revocations, token cache)."""
        return self._state

    @property
    def allow_http(self) -> bool:
        """Whether plain-http provider URLs are allowed (the sandbox, in development)."""
        return self._settings.allow_private_provider_urls

    async def token_for(self, grant: RunGrant, request: CallRequest, provider: str) -> ResolvedToken:
        """The user's token for the call (cached briefly, else from the vault)."""
        return await self._token(grant, request, provider)

    async def send(
        self, method: str, target: Target, incoming: list[tuple[str, str]], token: ResolvedToken, body: Body
    ) -> aiohttp.ClientResponse:
        """Send the call upstream (redirects only to the provider's hosts)."""
        return await self._send(method, target, incoming, token, body)

    async def after_401(
        self,
        grant: RunGrant,
        request: CallRequest,
        provider: str,
        target: Target,
        token: ResolvedToken,
        body: Body,
        response: aiohttp.ClientResponse,
        audit: CallAudit,
    ) -> aiohttp.ClientResponse:
        """Report a refused token and retry once with the refreshed one when the call can be resent."""
        return await self._after_401(grant, request, provider, target, token, body, response, audit)

    def _definition(self, provider_or_app: str) -> ProviderDefinition:
        try:
            return self._catalogue.provider_for_app(provider_or_app)
        except UnknownProviderError:
            raise Problem(
                404, "unknown_provider", f"no provider {provider_or_app!r} in the catalogue"
            ) from None

    async def _body(self, request: CallRequest, limit: int) -> Body:
        """The request body: kept whole when small and of known length (so a retry can resend it),
        else streamed with the size limit enforced as it flows."""
        if request.method in ("GET", "HEAD", "OPTIONS") and not request.content_length:
            return None
        length = request.content_length
        if length is not None and length <= self._settings.replayable_body_bytes:
            chunks = [chunk async for chunk in request.body]
            data = b"".join(chunks)
            if len(data) > limit:
                raise Problem(413, "request_too_large", f"calls take at most {limit} bytes")
            return data
        return _limited(request.body, limit)

    async def _token(self, grant: RunGrant, request: CallRequest, provider: str) -> ResolvedToken:
        cached = self._state.cached(request.grant, _cache_key(request, provider))
        if cached is not None:
            return cached
        reply = await self._vault.resolve(
            grant.tenant_id, request.grant, provider, request.tool, request.connection_id
        )
        return self._remember(grant, request, provider, reply)

    def _remember(
        self, grant: RunGrant, request: CallRequest, provider: str, reply: Resolved | VaultRefused
    ) -> ResolvedToken:
        if isinstance(reply, VaultRefused):
            status = VAULT_STATUS.get(reply.code, 502)
            raise Problem(status, reply.code, reply.message, retry_after=reply.retry_after_seconds)
        return self._state.remember(
            request.grant,
            _cache_key(request, provider),
            token=reply.token.get_secret_value(),
            connection_id=reply.connection_id,
            settings=reply.settings,
            run=(grant.tenant_id, grant.run_id),
            expires_in=reply.expires_in,
        )

    def _target(self, definition: ProviderDefinition, token: ResolvedToken, request: CallRequest) -> Target:
        try:
            return build_target(
                definition,
                token.settings,
                request.path,
                request.query,
                host=request.host,
                allow_http=self._settings.allow_private_provider_urls,
            )
        except UpstreamRefused as refused:
            raise Problem(_REFUSED_STATUS.get(refused.code, 400), refused.code, refused.message) from None

    async def _send(
        self, method: str, target: Target, incoming: list[tuple[str, str]], token: ResolvedToken, body: Body
    ) -> aiohttp.ClientResponse:
        """Send, following redirects to the provider's own hosts only."""
        headers = upstream_headers(incoming, target.api, token.token.get_secret_value())
        url = target.url
        for _hop in range(self._settings.max_redirects + 1):
            try:
                response = await self._upstream.send(
                    method, url, headers, body, timeout=target.api.timeout_seconds
                )
            except UpstreamUnavailable as error:
                raise Problem(
                    502, "upstream_unavailable", f"the provider could not be reached ({error})"
                ) from None
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            response.release()
            try:
                url = redirect_target(url, location, target.origins)
            except UpstreamRefused as refused:
                raise Problem(502, refused.code, refused.message) from None
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            elif body is not None and not isinstance(body, bytes):
                raise Problem(502, "redirect_refused", "the provider redirected a streamed body")
        raise Problem(502, "too_many_redirects", "the provider redirected too many times")

    async def _after_401(
        self,
        grant: RunGrant,
        request: CallRequest,
        provider: str,
        target: Target,
        token: ResolvedToken,
        body: Body,
        response: aiohttp.ClientResponse,
        audit: CallAudit,
    ) -> aiohttp.ClientResponse:
        """Report the refused token; retry once with the refreshed one when the call can be resent."""
        self._state.forget_token(request.grant, _cache_key(request, provider))
        replayable = body is None or isinstance(body, bytes)
        if not (replayable and (request.method in _IDEMPOTENT or isinstance(body, bytes))):
            # The body is gone: pass the 401 on, but let the vault refresh for the next call.
            self._background_report(grant, request, provider, token.connection_id)
            return response
        response.release()
        reply = await self._vault.report(
            grant.tenant_id, request.grant, provider, request.tool, token.connection_id, after_refresh=False
        )
        fresh = self._remember(grant, request, provider, reply)
        audit.retried = True
        audit.connection_id = fresh.connection_id
        retried = await self._send(request.method, target, request.headers, fresh, body)
        if retried.status != 401:
            return retried
        self._state.forget_token(request.grant, _cache_key(request, provider))
        verdict = await self._vault.report(
            grant.tenant_id, request.grant, provider, request.tool, fresh.connection_id, after_refresh=True
        )
        if isinstance(verdict, VaultRefused) and verdict.code == "reauth_required":
            retried.release()
            raise Problem(409, "reauth_required", verdict.message)
        return retried

    async def report_insufficient_scope(
        self, grant: RunGrant, request: CallRequest, provider: str, connection_id: str, scopes: list[str]
    ) -> None:
        """A server answered 403 `insufficient_scope`: the vault marks the scopes the connection lacks
        (the user's next re-authorization asks for them; satisfaction and held runs see them)."""
        if scopes:
            await self._vault.report(
                grant.tenant_id,
                request.grant,
                provider,
                request.tool,
                connection_id,
                insufficient_scope=scopes,
            )

    def _background_report(
        self, grant: RunGrant, request: CallRequest, provider: str, connection_id: str
    ) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(
            self._vault.report(
                grant.tenant_id, request.grant, provider, request.tool, connection_id, after_refresh=False
            )
        )
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)


def _cache_key(request: CallRequest, provider: str) -> str:
    """Tokens are cached per grant and provider, and per connection when the call names one."""
    return provider if request.connection_id is None else f"{provider}\x00{request.connection_id}"


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, failing once more than ``limit`` bytes went through."""
    sent = 0
    async for chunk in chunks:
        sent += len(chunk)
        if sent > limit:
            raise Problem(413, "request_too_large", f"calls take at most {limit} bytes")
        yield chunk
