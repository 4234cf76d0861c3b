"""`vault.webhooks.verify`: check a provider webhook with the secrets only the vault holds.

Each provider app (a tenant's, or the operator's platform app) has its own signing secret (Slack,
GitHub) or client id (Google RISC audience). A delivery to the app's own URL is checked against that
app's secret only; on the deprecated per-provider URL, the secret that verifies the body tells which
app it is for. The verdict names the app, its tenant (none for a platform app) and the affected
connections (those of the named accounts made with that app, in every tenant for a platform app),
never a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from grantline.contract.vault_admin import WebhookConnection, WebhookVerdict, WebhookVerifyRequest
from grantline.providers.webhooks import (
    VerifiedWebhook,
    WebhookRejection,
    WebhookVerificationError,
    verify_github_webhook,
    verify_google_risc_webhook,
    verify_slack_webhook,
)
from grantline.runtime.db.driver import DriverConnection
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters.provider_app_repository import PLATFORM, StoredProviderApp
from grantline.vault.adapters.provider_client import ProviderUnavailable
from grantline.vault.domain import DecryptionError, SealContext, SecretField
from grantline.vault.service.context import UnknownProvider, VaultContext
from grantline.vault.service.sealing import open_value

log = logging.getLogger(__name__)
_HMAC_SCHEMES: dict[str, Callable[..., VerifiedWebhook]] = {
    "slack_v0": verify_slack_webhook,
    "github_hmac_sha256": verify_github_webhook,
}


class RiscKeys:
    """Google's RISC signing keys, fetched from the configured URL and reused for a while."""

    def __init__(self, ctx: VaultContext) -> None:
        self._ctx = ctx
        self._jwks: dict[str, Any] | None = None
        self._fetched_at = 0.0

    async def get(self, *, refetch: bool = False) -> dict[str, Any]:
        """The JWKS document (refetched after its lifetime, or now when `refetch`).

        A caller refetches once per delivery whose `kid` is unknown (Google rotated its keys); the
        per-address webhook rate limit of the gateway bounds how often that can happen.
        """
        settings = self._ctx.settings
        expired = time.monotonic() - self._fetched_at > settings.risc_jwks_ttl_seconds
        if refetch or self._jwks is None or expired:
            jwks = await self._ctx.providers.fetch_json(settings.risc_jwks_url)
            if not isinstance(jwks, dict):
                raise ProviderUnavailable("the RISC signing keys are not a JSON object")
            self._jwks = jwks
            self._fetched_at = time.monotonic()
        return self._jwks


async def _verify_risc(
    risc: RiscKeys, request: WebhookVerifyRequest, apps: Sequence[StoredProviderApp], now: datetime
) -> tuple[VerifiedWebhook | None, StoredProviderApp | None, str]:
    """The verified token and the app whose client id it is for, or the last reason; the JWKS is
    refetched once on an unknown `kid` (Google rotated its keys since the cached copy)."""
    jwks = await risc.get()
    last_reason = WebhookRejection.NOT_CONFIGURED.value
    refetched = False
    for app in apps:
        while True:
            try:
                verified = verify_google_risc_webhook(
                    request.body, request.headers, jwks=jwks, client_ids=[app.client_id], now=now
                )
            except WebhookVerificationError as error:
                last_reason = error.reason.value
                if error.reason is WebhookRejection.UNKNOWN_KEY and not refetched:
                    jwks, refetched = await risc.get(refetch=True), True
                    continue
                break
            return verified, app, last_reason
    return None, None, last_reason


def affected_accounts(verified: VerifiedWebhook) -> list[str]:
    """The account ids a verified webhook names, in the form connections store them.

    A connection's account is the catalogue's `account.id_path`; GitHub's is the numeric user id,
    while its revocation event names the login first: the sender's id must count too.
    """
    accounts = list(verified.accounts) or ([verified.account] if verified.account else [])
    subject_id = verified.subject.get("id")
    if subject_id and subject_id not in accounts:
        accounts.append(subject_id)
    return accounts


async def verify_webhook(ctx: VaultContext, risc: RiscKeys, request: WebhookVerifyRequest) -> WebhookVerdict:
    """Try the secret of each app of the provider (only the URL's app on a per-app URL); the first
    that verifies names the app, hence the tenant or the platform."""
    try:
        definition = ctx.definition(request.provider)
    except UnknownProvider:
        return WebhookVerdict(verified=False, reason="unknown_provider")
    now = datetime.now(UTC)
    async with ctx.transaction() as conn:
        apps = await app_rows.enabled_for_provider(conn, request.provider)
        if request.provider_app_id is not None:
            # The per-app URL: one secret to try, not one per tenant.
            apps = [app for app in apps if app.id == request.provider_app_id]
        if not apps:
            return WebhookVerdict(verified=False, reason=WebhookRejection.NOT_CONFIGURED.value)
        verified: VerifiedWebhook | None = None
        # The app whose secret (or client id) verified the delivery: it says which tenant (or the
        # platform), and which connections the event can be about.
        verifier: StoredProviderApp | None = None
        last_reason = WebhookRejection.NOT_CONFIGURED.value
        security_event = request.provider == "google" or definition.webhook_scheme == "google_risc"
        if security_event:
            try:
                verified, verifier, last_reason = await _verify_risc(risc, request, apps, now)
            except ProviderUnavailable:
                return WebhookVerdict(verified=False, reason="jwks_unavailable")
            if verified is None:
                return WebhookVerdict(verified=False, reason=last_reason, scheme="google_risc")
        else:
            verify = _HMAC_SCHEMES.get(definition.webhook_scheme or "")
            if verify is None:
                return WebhookVerdict(verified=False, reason="unsupported_scheme")
            for app in apps:
                if app.webhook_secret is None:
                    continue
                key = await ctx.keys.for_opening(conn, app.tenant_id)
                context = SealContext.for_provider_app(
                    app.tenant_id, app.id, provider=request.provider, field=SecretField.API_KEY
                )
                try:
                    secret = open_value(
                        key, context, app.webhook_secret, accept_unbound=ctx.accept_unbound_seals
                    )
                except DecryptionError as error:
                    # One tenant's unopenable row must not stop the others' webhooks.
                    log.error(
                        "webhook secret does not open",
                        extra={"provider_app_id": app.id, "reason": error.reason},
                    )
                    continue
                assert secret is not None
                try:
                    verified = verify(request.body, request.headers, secret, now=now)
                except WebhookVerificationError as error:
                    last_reason = error.reason.value
                    continue
                verifier = app
                break
        if verified is None or verifier is None:
            return WebhookVerdict(verified=False, reason=last_reason)
        holders = [verifier]
        if security_event:
            # A security event token names a client id, which is public: another tenant may have
            # registered an app with the same one (without its secret, so no working connection).
            # The event is about the client, so every app holding it counts; otherwise such an app,
            # tried first on the per-provider URL, would keep the owner's connections from being revoked.
            holders = [app for app in apps if app.client_id == verifier.client_id]
        connections = await _connections_named(
            ctx, conn, request.provider, affected_accounts(verified), apps=holders
        )
    platform = verifier.tenant_id == PLATFORM
    return WebhookVerdict(
        verified=True,
        tenant_id=None if platform else verifier.tenant_id,
        provider_app_id=verifier.id,
        kind=verified.kind.value,
        delivery_id=verified.delivery_id,
        account=verified.account,
        revoked_tokens=verified.revoked_tokens,
        connections=connections,
        challenge=verified.challenge,
    )


async def _connections_named(
    ctx: VaultContext,
    conn: DriverConnection,
    provider: str,
    accounts: Sequence[str],
    *,
    apps: Sequence[StoredProviderApp],
) -> list[WebhookConnection]:
    """The live connections of ``accounts`` made with the apps the delivery is about.

    Only that app's: a user who removes one of a tenant's apps at the provider still holds valid
    grants to its other apps, and those connections keep working (API-key connections name no app:
    an OAuth app's revocation says nothing of a key). A tenant's app has its tenant's connections; a
    platform app has connections in every tenant that uses it, and the provider's grant it revoked
    was the one grant they all shared. Account digests are keyed per tenant, so each tenant's are
    computed with its own key.
    """
    found: list[WebhookConnection] = []
    if not accounts:
        return found
    for app in apps:
        platform = app.tenant_id == PLATFORM
        tenants = await connection_rows.tenants_using_app(conn, app.id) if platform else [app.tenant_id]
        for tenant_id in tenants:
            keys = await ctx.keys.for_opening(conn, tenant_id)
            digests = [keys.account_digest(provider, account) for account in accounts]
            ids = await connection_rows.by_accounts(
                conn, tenant_id, provider, accounts, digests, provider_app_id=app.id
            )
            found += [
                WebhookConnection(tenant_id=tenant_id, connection_id=connection_id) for connection_id in ids
            ]
    return found
