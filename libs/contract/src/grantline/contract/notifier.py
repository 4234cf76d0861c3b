"""Requests the notifier serves: a tenant's webhook endpoints and their deliveries (the gateway asks).

Deliveries follow Standard Webhooks: headers ``webhook-id`` (the delivery id, the same on every retry,
so a receiver de-duplicates on it), ``webhook-timestamp`` and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` with the endpoint's secret).
"""

from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr

from grantline.contract.envelope import TENANT_ID_PATTERN, Message

SUBJECT_ENDPOINT_CREATE = "notifier.endpoints.create"
SUBJECT_ENDPOINT_LIST = "notifier.endpoints.list"
SUBJECT_ENDPOINT_DELETE = "notifier.endpoints.delete"
SUBJECT_DELIVERY_LIST = "notifier.deliveries.list"

# The connection lifecycle events a tenant may subscribe an endpoint to.
NotificationType = Literal[
    "connection.granted",
    "connection.refresh_failed",
    "connection.reauth_required",
    "connection.revoked",
    "connection.expiring",
]
NOTIFICATION_TYPES: tuple[str, ...] = NotificationType.__args__  # type: ignore[attr-defined]
DeliveryStatus = Literal["pending", "succeeded", "failed"]

TenantId = Field(min_length=1, max_length=128, pattern=TENANT_ID_PATTERN)
EndpointId = Field(min_length=1, max_length=64, pattern=r"^ep_[a-z0-9]{1,60}$")


class EndpointInfo(Message):
    """An endpoint as the tenant sees it: never its secret."""

    endpoint_id: str
    url: str
    description: str
    event_types: list[NotificationType]
    created_at: datetime


class CreateEndpointRequest(Message):
    tenant_id: str = TenantId
    url: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=500)
    # Empty: every type.
    event_types: list[NotificationType] = Field(default=[], max_length=len(NOTIFICATION_TYPES))


class EndpointCreated(Message):
    """The new endpoint and its signing secret (``whsec_...``): the only time the secret is shown."""

    endpoint: EndpointInfo
    secret: SecretStr


class ListEndpointsRequest(Message):
    tenant_id: str = TenantId


class EndpointList(Message):
    endpoints: list[EndpointInfo]


class DeleteEndpointRequest(Message):
    tenant_id: str = TenantId
    endpoint_id: str = EndpointId


class EndpointDeleted(Message):
    endpoint_id: str


class ListDeliveriesRequest(Message):
    tenant_id: str = TenantId
    endpoint_id: str | None = Field(default=None, max_length=64, pattern=r"^ep_[a-z0-9]{1,60}$")
    status: DeliveryStatus | None = None
    limit: int = Field(default=50, ge=1, le=200)


class DeliveryInfo(Message):
    """One notification to one endpoint and where its delivery stands."""

    delivery_id: str
    endpoint_id: str
    event_type: NotificationType
    connection_id: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class DeliveryList(Message):
    deliveries: list[DeliveryInfo]
