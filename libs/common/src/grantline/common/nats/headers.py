"""Message headers: de-duplication id, event type and W3C trace context."""

from collections.abc import Mapping

from grantline.common.contract.envelope import Event
from grantline.common.telemetry.tracing import inject_context

MSG_ID = "Nats-Msg-Id"
EVENT_TYPE = "Grantline-Type"
TENANT = "Grantline-Tenant"


def event_headers(event: Event, trace_headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers for publishing ``event``: its id as ``Nats-Msg-Id`` so JetStream drops duplicates."""
    headers = {MSG_ID: str(event.id), EVENT_TYPE: event.type, TENANT: event.tenant_id}
    if trace_headers is None:
        inject_context(headers)
    else:
        headers.update(trace_headers)
    return headers
