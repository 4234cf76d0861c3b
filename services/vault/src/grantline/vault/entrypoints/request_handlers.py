"""Every `vault.*` subject but resolve, in queue groups shared by the replicas.

Each subject has its own responder (``RequestSubscription``); refresh gets its own in-flight bound
(``refresh_workers``) because it comes in bursts of hundreds a second when a fleet of tokens comes
due, the rest share ``request_workers``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from grantline.contract import vault, vault_admin
from grantline.contract.errors import ErrorReply
from grantline.runtime.nats.request_reply import RequestSubscription, serving
from grantline.vault.service import connections_admin, mcp_servers, provider_apps, tenant_providers
from grantline.vault.service.context import VaultContext
from grantline.vault.service.exchange import exchange
from grantline.vault.service.refresh import Refresher
from grantline.vault.service.revocation import revoke_connection
from grantline.vault.service.webhooks import RiscKeys, verify_webhook


def refresh_responder(ctx: VaultContext, refresher: Refresher) -> RequestSubscription:
    """`vault.refresh`: started and stopped with the runtime (app.py)."""

    async def refresh(request: vault.RefreshRequest) -> BaseModel:
        outcome = await refresher.refresh(
            request.tenant_id,
            request.connection_id,
            force=request.only_if_expiring_before is None,
            only_if_expiring_before=request.only_if_expiring_before,
        )
        if outcome.error is not None:
            return outcome.error
        return vault.RefreshReply(
            connection_id=outcome.connection_id, expires_at=outcome.expires_at, refreshed=outcome.refreshed
        )

    return serving(
        "vault",
        vault.SUBJECT_REFRESH,
        vault.RefreshRequest,
        refresh,
        max_in_flight=ctx.settings.refresh_workers,
    )


def request_responders(ctx: VaultContext) -> list[RequestSubscription]:
    """The responders of every other `vault.*` subject (app.py has the runtime serve them)."""
    workers = ctx.settings.request_workers
    risc = RiscKeys(ctx)

    def bind(
        handler: Callable[[VaultContext, Any], Awaitable[BaseModel | ErrorReply]],
    ) -> Callable[[Any], Awaitable[BaseModel]]:
        async def handle(request: Any) -> BaseModel:
            return await handler(ctx, request)

        return handle

    async def webhook(request: vault_admin.WebhookVerifyRequest) -> BaseModel:
        return await verify_webhook(ctx, risc, request)

    subjects: list[tuple[str, type[BaseModel], Callable[[Any], Awaitable[BaseModel]]]] = [
        (vault.SUBJECT_EXCHANGE, vault.ExchangeRequest, bind(exchange)),
        (vault.SUBJECT_REVOKE, vault.RevokeRequest, bind(revoke_connection)),
        (
            vault_admin.SUBJECT_PROVIDER_APP_PUT,
            vault_admin.PutProviderAppRequest,
            bind(provider_apps.put_app),
        ),
        (vault_admin.SUBJECT_PROVIDER_APP_GET, vault_admin.ProviderAppRef, bind(provider_apps.get_app)),
        (vault_admin.SUBJECT_PROVIDER_APP_LIST, vault_admin.ProviderAppRef, bind(provider_apps.list_apps)),
        (
            vault_admin.SUBJECT_PROVIDER_APP_DELETE,
            vault_admin.ProviderAppDeleteRequest,
            bind(provider_apps.delete_app),
        ),
        (
            vault_admin.SUBJECT_CONNECTION_API_KEY,
            vault_admin.StoreApiKeyRequest,
            bind(connections_admin.store_api_key),
        ),
        (
            vault_admin.SUBJECT_CONNECTION_LIST,
            vault_admin.ListConnectionsRequest,
            bind(connections_admin.list_connections),
        ),
        (
            vault_admin.SUBJECT_CONNECTION_GET,
            vault_admin.ConnectionRef,
            bind(connections_admin.get_connection),
        ),
        (
            vault_admin.SUBJECT_CONNECTION_SET_DEFAULT,
            vault_admin.ConnectionRef,
            bind(connections_admin.set_default),
        ),
        (
            vault_admin.SUBJECT_CONNECTION_REMOVE,
            vault_admin.ConnectionRef,
            bind(connections_admin.remove_revoked),
        ),
        (vault_admin.SUBJECT_WEBHOOK_VERIFY, vault_admin.WebhookVerifyRequest, webhook),
        (
            vault_admin.SUBJECT_MCP_SERVER_ADD,
            vault_admin.AddMcpServerRequest,
            bind(mcp_servers.add_mcp_server),
        ),
        (
            vault_admin.SUBJECT_TENANT_PROVIDER_PUT,
            vault_admin.PutTenantProviderRequest,
            bind(tenant_providers.put_provider),
        ),
        (
            vault_admin.SUBJECT_TENANT_PROVIDER_GET,
            vault_admin.TenantProviderRef,
            bind(tenant_providers.get_provider),
        ),
        (
            vault_admin.SUBJECT_TENANT_PROVIDER_LIST,
            vault_admin.TenantProviderListRequest,
            bind(tenant_providers.list_providers),
        ),
        (
            vault_admin.SUBJECT_TENANT_PROVIDER_DELETE,
            vault_admin.TenantProviderRef,
            bind(tenant_providers.delete_provider),
        ),
        (
            vault_admin.SUBJECT_TENANT_PROVIDER_ENABLE,
            vault_admin.SetProviderEnabledRequest,
            bind(tenant_providers.set_enabled),
        ),
    ]
    return [
        serving("vault", subject, model, handle, max_in_flight=workers) for subject, model, handle in subjects
    ]
