"""Operators' platform apps: one OAuth client per catalogue provider that every tenant may use.

A tenant without its own provider app connects through the platform's (a verified app, say); a
tenant's own app always takes precedence. The rows live in ``vault.provider_apps`` under the owner
``_platform``, which no bus message can name (tenant ids never start with an underscore), so no
tenant, gateway or runner can read, change or resolve through them: only the operator's command
(``grantline platform-apps``) writes them, straight to Postgres with the vault's keyring. The client
secret is sealed with the platform's own data key, bound to the platform, the app and the provider.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from grantline.providers.authorize import resolve_settings
from grantline.providers.catalogue import Catalogue
from grantline.runtime.db.driver import DriverConnection
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters.data_key_store import DataKeyStore
from grantline.vault.adapters.provider_app_repository import PLATFORM
from grantline.vault.domain import SealContext, SecretField
from grantline.vault.service.sealing import seal_value


class PlatformAppError(ValueError):
    """The platform app cannot be stored as asked (unknown provider, API keys, bad settings)."""


async def put_platform_app(
    conn: DriverConnection,
    keys: DataKeyStore,
    catalogue: Catalogue,
    *,
    provider: str,
    client_id: str,
    client_secret: SecretStr | None,
    webhook_secret: SecretStr | None = None,
    scopes: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
    enabled: bool = True,
) -> str:
    """Create or update the platform app of a catalogue provider; returns its id.

    ``webhook_secret`` (Slack's signing secret, GitHub's webhook secret) lets the provider's
    revocation webhooks reach ``/v1/webhooks/{provider}/{app id}``; None keeps the stored one.
    """
    definition = catalogue.find(provider)
    if definition is None:
        raise PlatformAppError(f"{provider!r} is not a catalogue provider")
    if definition.oauth is None:
        raise PlatformAppError(f"{provider!r} uses API keys; it has no OAuth client")
    try:
        resolved = resolve_settings(definition, dict(settings or {}))
    except ValueError as error:
        raise PlatformAppError(str(error)) from None
    existing = await app_rows.get(conn, PLATFORM, provider, for_update=True)
    if existing is None and client_secret is None:
        raise PlatformAppError("a new platform app needs its client secret")
    app_id = existing.id if existing is not None else f"pa_{secrets.token_hex(12)}"
    values: dict[str, object] = {
        "client_id": client_id,
        "scopes": list(dict.fromkeys(scopes)),
        "settings": resolved,
        "allow_workspace_fallback": False,
        "enabled": enabled,
    }
    new_secrets = [secret for secret in (client_secret, webhook_secret) if secret is not None]
    if new_secrets:
        key = await keys.reserve(conn, PLATFORM, encryptions=len(new_secrets))
        context = SealContext.for_provider_app(PLATFORM, app_id, provider=provider)
        if client_secret is not None:
            values["client_secret"] = seal_value(key, context, client_secret)
        if webhook_secret is not None:
            # As for a tenant's app: the API_KEY field keeps it apart from the client secret.
            values["webhook_secret"] = seal_value(
                key, context.with_field(SecretField.API_KEY), webhook_secret
            )
    if existing is None:
        await app_rows.insert(conn, {"id": app_id, "tenant_id": PLATFORM, "provider": provider, **values})
    else:
        await app_rows.update_row(conn, app_id, values)
    return app_id


@dataclass(frozen=True)
class PlatformAppView:
    """A platform app as the operator sees it (never a secret)."""

    app_id: str
    provider: str
    client_id: str
    enabled: bool
    has_webhook_secret: bool

    @property
    def webhook_path(self) -> str:
        """Where the provider's webhooks for this app go (the gateway's per-app URL)."""
        return f"/v1/webhooks/{self.provider}/{self.app_id}"


async def list_platform_apps(conn: DriverConnection) -> list[PlatformAppView]:
    """Every platform app."""
    return [
        PlatformAppView(row.id, row.provider, row.client_id, row.enabled, row.webhook_secret is not None)
        for row in await app_rows.list_for_tenant(conn, PLATFORM)
    ]
