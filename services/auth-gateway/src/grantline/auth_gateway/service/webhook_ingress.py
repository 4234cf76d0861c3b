"""Provider webhooks: the vault verifies (it holds the secrets); the gateway de-duplicates and acts.

A verified token-revocation event revokes the matching connections through the vault (reason
`provider`; for a platform app, in every tenant that used it), then the delivery is recorded with
a `connections.webhook` event and a `webhook.received` audit record per tenant concerned, in one
transaction. A delivery seen before is acknowledged with 200 and changes nothing; the revocations
themselves are idempotent, so a crash between them and the record only means the provider's retry
repeats harmless work.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from grantline.auth_gateway.adapters import webhook_store
from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.adapters.outbox import OUTBOX
from grantline.auth_gateway.service.problems import from_error_reply
from grantline.contract import vault, vault_admin
from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.connections import WebhookReceived
from grantline.contract.envelope import Event
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import write_events

# Headers a provider signature scheme may need; everything else (cookies, proxies' additions) stays here.
_FORWARDED_HEADER_PREFIXES = ("x-slack-", "x-hub-", "x-github-", "content-type", "user-agent", "x-goog-")
# A revocation already done (or of a connection gone) is not a failure of this delivery.
_ALREADY_DONE = {ErrorCode.REVOKED, ErrorCode.NOT_FOUND, ErrorCode.NOT_CONNECTED}


def body_digest(body: bytes) -> str:
    """SHA-256 (hex) of a verified body: a replay under a new, unsigned delivery id has the same one."""
    return hashlib.sha256(body).hexdigest()


def forwarded_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers the vault needs to verify a signature, lower-cased."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(_FORWARDED_HEADER_PREFIXES)}


class WebhookIngress:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def verify(
        self, provider: str, body: bytes, headers: dict[str, str], app_id: str | None = None
    ) -> vault_admin.WebhookVerdict:
        """The vault's verdict on a delivery (signature, timestamp window, what it means)."""
        return await self._bus.ask(
            vault_admin.SUBJECT_WEBHOOK_VERIFY,
            vault_admin.WebhookVerifyRequest(
                provider=provider, body=body, headers=forwarded_headers(headers), provider_app_id=app_id
            ),
            vault_admin.WebhookVerdict,
        )

    async def seen(
        self, conn: DriverConnection, provider: str, verdict: vault_admin.WebhookVerdict, body: bytes
    ) -> bool:
        """True when this delivery (by its id or its signed body) was handled before."""
        if not verdict.delivery_id:
            return False
        return await webhook_store.delivery_seen(
            conn, provider, verdict.provider_app_id or "", verdict.delivery_id, body_digest(body)
        )

    async def revoke_matching(
        self, verdict: vault_admin.WebhookVerdict
    ) -> list[vault_admin.WebhookConnection]:
        """Revoke the connections a token-revocation event names; returns those it affected."""
        if not verdict.revoked_tokens:
            return []
        revoked: list[vault_admin.WebhookConnection] = []
        for connection in verdict.connections:
            reply = await self._bus.ask_or_error(
                vault.SUBJECT_REVOKE,
                vault.RevokeRequest(
                    tenant_id=connection.tenant_id,
                    connection_id=connection.connection_id,
                    reason="provider",
                    actor="provider",
                ),
                vault.OkReply,
            )
            if isinstance(reply, ErrorReply) and reply.error.code not in _ALREADY_DONE:
                raise from_error_reply(reply)
            revoked.append(connection)
        return revoked

    async def record(
        self,
        conn: DriverConnection,
        provider: str,
        verdict: vault_admin.WebhookVerdict,
        body: bytes,
        affected: list[vault_admin.WebhookConnection],
    ) -> bool:
        """Remember the delivery and emit its events; False when a concurrent replay got there first.

        Each tenant concerned gets its own `connections.webhook` event and audit record, naming its
        connections only: the app's tenant (even when nothing matched), or for a platform app every
        tenant whose connections it revoked.
        """
        if verdict.delivery_id and not await webhook_store.record_delivery(
            conn,
            provider=provider,
            provider_app_id=verdict.provider_app_id or "",
            delivery_id=verdict.delivery_id,
            body_sha256=body_digest(body),
            tenant_id=verdict.tenant_id,
            kind=verdict.kind,
        ):
            return False
        by_tenant: dict[str, list[str]] = {verdict.tenant_id: []} if verdict.tenant_id else {}
        for connection in affected:
            by_tenant.setdefault(connection.tenant_id, []).append(connection.connection_id)
        kind = verdict.kind or "unknown"
        received_at = datetime.now(UTC)
        events: list[Event] = []
        for tenant_id, connection_ids in by_tenant.items():
            events += [
                WebhookReceived(
                    tenant_id=tenant_id,
                    provider=provider,
                    kind=kind,
                    account=verdict.account,
                    verified=True,
                    received_at=received_at,
                    connection_ids=connection_ids,
                ),
                AuditRecord(
                    tenant_id=tenant_id,
                    actor=f"provider:{provider}",
                    action=AuditAction.WEBHOOK_RECEIVED,
                    provider=provider,
                    detail={
                        "kind": kind,
                        "delivery_id": verdict.delivery_id,
                        "revoked_connections": connection_ids,
                    },
                ),
            ]
        await write_events(conn, OUTBOX, events)
        return True
