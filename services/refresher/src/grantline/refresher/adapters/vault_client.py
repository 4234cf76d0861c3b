"""Asks the vault to refresh a connection over NATS request-reply (``vault.refresh``)."""

from datetime import datetime

from nats.aio.client import Client

from grantline.contract.errors import ErrorReply
from grantline.contract.vault import SUBJECT_REFRESH, RefreshReply, RefreshRequest
from grantline.refresher.domain.outcomes import Outcome, classify_reply, unreachable
from grantline.runtime.nats.request_reply import RequestFailed, request


class VaultRefresher:
    """The one call the refresher makes: refresh this connection if it still expires that early."""

    def __init__(self, nc: Client, *, timeout: float) -> None:
        self._nc = nc
        self._timeout = timeout

    async def refresh(
        self, tenant_id: str, connection_id: str, only_if_expiring_before: datetime | None
    ) -> Outcome:
        """The classified outcome of one ``vault.refresh`` request."""
        message = RefreshRequest(
            tenant_id=tenant_id, connection_id=connection_id, only_if_expiring_before=only_if_expiring_before
        )
        try:
            reply: RefreshReply | ErrorReply = await request(
                self._nc, SUBJECT_REFRESH, message, RefreshReply, timeout=self._timeout
            )
        except RequestFailed as error:
            reason = "no_responders" if "NoResponders" in str(error) else "timeout"
            return unreachable(reason)
        return classify_reply(reply)
