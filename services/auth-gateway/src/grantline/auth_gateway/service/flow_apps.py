"""Which provider app (OAuth client) a flow uses; apart from provider_apps.py, which the views import."""

from __future__ import annotations

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.problems import Problem
from grantline.contract import vault_admin


async def app_for_flow(
    bus: Bus, tenant_id: str, provider: str, name: str | None
) -> vault_admin.ProviderAppInfo:
    """The enabled app a flow uses: the tenant's app named ``name``; without one, the tenant's default
    app, else the operator's platform app. A 409 problem says what to configure."""
    try:
        app = await bus.ask(
            vault_admin.SUBJECT_PROVIDER_APP_GET,
            vault_admin.ProviderAppRef(tenant_id=tenant_id, provider=provider, or_platform=True, name=name),
            vault_admin.ProviderAppInfo,
        )
    except Problem as problem:
        if problem.status == 404 and name is not None:
            # Another tenant's app of that name is as unknown as one that never existed.
            raise Problem(404, "not_found", f"no provider app named {name!r} for {provider!r}") from None
        if problem.status == 404:
            raise Problem(
                409,
                "provider_app_missing",
                f"configure a provider app first: PUT /v1/provider-apps/{provider}",
            ) from None
        raise
    if not app.enabled:
        named = f" named {name!r}" if name is not None else ""
        raise Problem(409, "provider_app_disabled", f"the provider app{named} for {provider!r} is disabled")
    return app
