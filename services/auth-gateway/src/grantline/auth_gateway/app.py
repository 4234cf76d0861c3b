"""Wiring of the auth gateway: one runtime serving the public HTTP API."""

from datetime import timedelta

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.adapters.outbox import OUTBOX
from grantline.auth_gateway.entrypoints.connect_link_responder import connect_link_responder
from grantline.auth_gateway.entrypoints.housekeeping import housekeeping
from grantline.auth_gateway.entrypoints.http.api import create_api
from grantline.auth_gateway.entrypoints.http.body_limits import BodyLimits, RequestBodyLimitMiddleware
from grantline.auth_gateway.entrypoints.ui.mount import mount_ui, own_return_to
from grantline.auth_gateway.service.catalogue import TenantCatalogue
from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.oauth_flow import OAuthFlow
from grantline.auth_gateway.service.rate_limits import RateLimits
from grantline.auth_gateway.settings import GatewaySettings
from grantline.providers.catalogue import load_catalogue
from grantline.runtime.service_runtime import ServiceRuntime


def create_runtime(settings: GatewaySettings | None = None) -> ServiceRuntime:
    """Build the auth gateway runtime."""
    settings = settings or GatewaySettings()
    api = create_api()
    runtime = ServiceRuntime(settings, outbox=OUTBOX, http_app=api)
    bus = Bus(lambda: runtime.nats, timeout=settings.bus_timeout_seconds)
    catalogue = TenantCatalogue(
        load_catalogue(settings.provider_dirs, sandbox_url=settings.sandbox_url),
        bus,
        allow_private_urls=settings.allow_private_provider_urls,
    )
    gateway = api.state.gateway = Gateway(
        runtime=runtime,
        settings=settings,
        bus=bus,
        catalogue=catalogue,
        flow=OAuthFlow(
            bus=bus,
            catalogue=catalogue,
            redirect_uri=settings.redirect_uri,
            own_return_to=own_return_to(settings.public_url),
            public_url=settings.public_url,
            mcp_rediscover_after=timedelta(seconds=settings.mcp_rediscover_after_seconds),
        ),
        limits=RateLimits.from_settings(settings),
    )
    mount_ui(api, environment=settings.environment)
    api.add_middleware(
        RequestBodyLimitMiddleware,
        limits=BodyLimits(
            api=settings.api_max_body_bytes,
            ui_form=settings.ui_form_max_body_bytes,
            webhook=settings.webhook_max_body_bytes,
        ),
    )
    runtime.add_background_task(housekeeping(runtime, bus))
    # gateway.connect_link.<tenant>: the links of held runs (satisfaction) and of runners' requests.
    links = connect_link_responder(gateway)
    runtime.serve_requests(links)
    return runtime
