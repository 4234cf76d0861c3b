"""What every gateway use case needs, built once in app.py and shared by the API and the pages."""

from __future__ import annotations

from dataclasses import dataclass

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.catalogue import TenantCatalogue
from grantline.auth_gateway.service.oauth_flow import OAuthFlow
from grantline.auth_gateway.service.rate_limits import RateLimits
from grantline.auth_gateway.settings import GatewaySettings
from grantline.runtime.service_runtime import ServiceRuntime


@dataclass
class Gateway:
    """The runtime (Postgres connections and transactions), settings, the bus to the other services,
    the catalogue, the OAuth flow and the rate limits.

    Use cases that write take the connection of the entrypoint's unit of work
    (`runtime.driver_transaction()`); those that only read Postgres before asking another service
    read on `runtime.single_statement(wake_relay=False)` (nothing to commit).
    """

    runtime: ServiceRuntime
    settings: GatewaySettings
    bus: Bus
    catalogue: TenantCatalogue
    flow: OAuthFlow
    limits: RateLimits
