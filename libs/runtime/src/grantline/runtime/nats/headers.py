"""Message headers: de-duplication id, event type and tenant (``grantline.contract.wire``), and the
W3C trace context."""

from collections.abc import Mapping

from grantline.contract import wire
from grantline.contract.envelope import Event
from grantline.contract.wire import EVENT_TYPE, MSG_ID, TENANT
from grantline.runtime.telemetry.tracing import inject_context

__all__ = ["EVENT_TYPE", "MSG_ID", "TENANT", "event_headers"]


def event_headers(event: Event, trace_headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers for publishing ``event``: its id as ``Nats-Msg-Id`` so JetStream drops duplicates."""
    headers = wire.event_headers(event)
    if trace_headers is None:
        inject_context(headers)
    else:
        headers.update(trace_headers)
    return headers
