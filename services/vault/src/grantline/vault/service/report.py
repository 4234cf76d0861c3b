"""`vault.report.<tenant>`: a provider answered 401 to a token the vault resolved.

(A report of kind `insufficient_scope` is a step-up: `service/step_up.py`.)

The reporter (the tool-call proxy, or a runner) presents the run grant, so it learns nothing a
resolve would not tell it, and names the connection. A report about a connection the grant would no
longer resolve to (replaced, or another user's) changes nothing: the answer is a fresh resolve.

- First report: refresh the connection once, even though its stored expiry says the token is good
  (providers end tokens early: password change, admin action, clock skew), and answer the new token
  for one retry. A report shortly after another forced refresh of the same connection does not
  refresh again, so reporters cannot make the vault hammer a provider's token endpoint.
- Report after the refresh (the new token was refused too): ask the provider whether the token is
  alive (the catalogue's `api.check_path`, else userinfo). Refused there too: the connection is dead
  and becomes `reauth_required` (events as after a refused refresh). Alive: the call itself was not
  allowed (a resource the user cannot see); the answer says so and nothing changes.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict

from pydantic import SecretStr

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.registry import encode_message
from grantline.contract.run_grants import RunGrant
from grantline.contract.vault import ReportRequest, ResolveRequest
from grantline.vault.adapters.provider_client import ProviderUnavailable
from grantline.vault.adapters.resolve_reader import DatabaseUnavailable
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.refresh import Refresher
from grantline.vault.service.resolve import ResolveService
from grantline.vault.service.step_up import StepUpService

log = logging.getLogger(__name__)

# Forced refreshes remembered per replica (connection id -> when), to refuse refresh storms.
_REMEMBERED = 10_000


class ReportService:
    """Serves report requests from raw bytes to raw reply bytes."""

    def __init__(
        self, ctx: VaultContext, resolve: ResolveService, refresher: Refresher, step_up: StepUpService
    ) -> None:
        self._ctx = ctx
        self._resolve = resolve
        self._refresher = refresher
        self._step_up = step_up
        self._forced: OrderedDict[str, float] = OrderedDict()
        self._min_interval = ctx.settings.report_refresh_min_interval_seconds

    async def handle(self, data: bytes, subject: str) -> tuple[bytes, str]:
        """Reply bytes for a report that came on ``subject``, and an outcome label for metrics."""
        admitted = self._resolve.admit(ReportRequest, data, subject)
        if not isinstance(admitted, tuple):
            return admitted.reply, admitted.outcome
        grant, report = admitted
        if report.kind == "insufficient_scope":
            return await self._step_up.record(grant, report)
        resolve = ResolveRequest(
            grant=report.grant,
            provider=report.provider,
            app=report.app,
            tool=report.tool,
            scopes=report.scopes,
        )
        try:
            current = await self._resolve.current_connection(grant, resolve)
            if current is None or current.id != report.connection_id or current.auth_kind == "api_key":
                # Not the connection this grant resolves to (or a key, which no refresh renews).
                return await self._resolve.resolve(grant, resolve)
            if not report.after_refresh:
                if self._may_force(current.id):
                    await self._refresher.refresh(grant.tenant_id, current.id, force=True)
                return await self._resolve.resolve(grant, resolve)
            return await self._check(grant, resolve, current.id, current.settings)
        except DatabaseUnavailable as error:
            return encode_message(ErrorReply.of(ErrorCode.INTERNAL, str(error))), "failed"

    def _may_force(self, connection_id: str) -> bool:
        now = time.monotonic()
        last = self._forced.get(connection_id)
        if last is not None and now - last < self._min_interval:
            return False
        self._forced[connection_id] = now
        self._forced.move_to_end(connection_id)
        if len(self._forced) > _REMEMBERED:
            self._forced.popitem(last=False)
        return True

    async def _check(
        self, grant: RunGrant, resolve: ResolveRequest, connection_id: str, settings: dict[str, str]
    ) -> tuple[bytes, str]:
        reply, outcome = await self._resolve.resolve(grant, resolve)
        if outcome != "ok":
            return reply, outcome
        token = SecretStr(json.loads(reply)["access_token"])
        provider = self._ctx.provider_for(resolve.provider or resolve.app or "")
        try:
            alive = await self._ctx.providers.token_alive(self._ctx.definition(provider), token, settings)
        except (ProviderUnavailable, UnknownProvider) as error:
            log.warning("token check failed", extra={"provider": provider, "error": type(error).__name__})
            alive = None
        if alive is False:
            await self._refresher.mark_dead(grant.tenant_id, connection_id, "provider_refused_token")
            message = f"{provider} refuses this connection's tokens; the user must re-authorize"
            return encode_message(ErrorReply.of(ErrorCode.REAUTH_REQUIRED, message)), "error_reply"
        message = (
            f"{provider} refused the call although the connection works"
            if alive
            else f"{provider} refused the call and the connection could not be checked"
        )
        return encode_message(ErrorReply.of(ErrorCode.FORBIDDEN, message)), "error_reply"
