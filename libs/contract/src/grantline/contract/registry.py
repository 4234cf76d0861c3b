"""One union of every event, keyed on ``type``, and the encode/decode helpers the bus uses."""

from typing import Annotated

from pydantic import BaseModel, Field, TypeAdapter

from grantline.contract.audit import AuditRecord
from grantline.contract.connections import (
    ConnectionExpiring,
    ConnectionGranted,
    ConnectionRevoked,
    ProviderEnablementChanged,
    ReauthRequired,
    ScopesMissing,
    SharingChanged,
    TenantProviderDefined,
    TenantProviderRemoved,
    TokenRefreshed,
    WebhookReceived,
)
from grantline.contract.envelope import Event
from grantline.contract.runs import (
    RunAdmitted,
    RunConnectionRevoked,
    RunFinished,
    RunHeld,
    RunRequested,
)

AnyEvent = Annotated[
    ConnectionGranted
    | TokenRefreshed
    | ConnectionRevoked
    | ReauthRequired
    | ScopesMissing
    | SharingChanged
    | ConnectionExpiring
    | WebhookReceived
    | TenantProviderDefined
    | TenantProviderRemoved
    | ProviderEnablementChanged
    | RunRequested
    | RunAdmitted
    | RunHeld
    | RunFinished
    | RunConnectionRevoked
    | AuditRecord,
    Field(discriminator="type"),
]

ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        ConnectionGranted,
        TokenRefreshed,
        ConnectionRevoked,
        ReauthRequired,
        ScopesMissing,
        SharingChanged,
        ConnectionExpiring,
        WebhookReceived,
        TenantProviderDefined,
        TenantProviderRemoved,
        ProviderEnablementChanged,
        RunRequested,
        RunAdmitted,
        RunHeld,
        RunFinished,
        RunConnectionRevoked,
        AuditRecord,
    )
}


def decode_event(data: bytes | str) -> Event:
    """Parse any event from its JSON form; raises ``pydantic.ValidationError`` when malformed."""
    return ANY_EVENT.validate_json(data)  # type: ignore[return-value]


def encode_message(message: BaseModel) -> bytes:
    """The JSON bytes of a message as it travels on the bus."""
    return message.model_dump_json().encode()


def event_subject(event: Event) -> str:
    """The subject an event is published on."""
    return event.subject()
