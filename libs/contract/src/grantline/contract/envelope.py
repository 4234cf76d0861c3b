"""The envelope every event carries, and the base class of every message."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


# Tenant ids are NATS subject tokens (tenant-scoped subjects end with the tenant id), so they carry no
# dot, wildcard or white space. The gateway makes UUIDs. A leading underscore is reserved: the vault
# keeps operators' platform apps under `_platform`, which no message can therefore name.
TENANT_ID_PATTERN = r"^[A-Za-z0-9-][A-Za-z0-9_-]{0,127}$"
# A request's tenant and provider: an empty or megabyte-long id is refused as invalid_request before
# any lookup (issue 19, item 6).
TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN)]
ProviderId = Annotated[str, Field(min_length=1, max_length=128)]
# A tenant's named provider app (its own OAuth client beside the provider's default one, e.g. for a
# second shop). It never starts with an underscore: no name can address the `_platform` owner's apps.
PROVIDER_APP_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
ProviderAppName = Annotated[str, Field(pattern=PROVIDER_APP_NAME_PATTERN)]


def new_event_id() -> uuid.UUID:
    """Return a new random event id (also the JetStream ``Nats-Msg-Id``)."""
    return uuid.uuid4()


class Message(BaseModel):
    """Base of every message on the bus: frozen, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(Message):
    """An event: a fact that happened, published once through a service's outbox.

    Subclasses fix ``type`` with a ``Literal`` and set ``SUBJECT``; the subject an event is published on
    is derived from the class (and for audit records from the action), never chosen by a caller.
    """

    # Events may gain fields in later versions; consumers of an older build must not reject them.
    model_config = ConfigDict(frozen=True, extra="ignore")

    SUBJECT: ClassVar[str]

    id: uuid.UUID = Field(default_factory=new_event_id)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=utc_now)
    tenant_id: str = Field(min_length=1, max_length=128, pattern=TENANT_ID_PATTERN)

    @field_validator("occurred_at")
    @classmethod
    def _must_be_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        return value.astimezone(UTC)

    def subject(self) -> str:
        """The subject this event is published on."""
        return self.SUBJECT


class TenantScopedEvent(Event):
    """An event a runner may see: published on ``<SUBJECT>.<tenant_id>``.

    NATS permissions can then give a runner its own tenants' subjects only, and a consumer checks
    that the subject an event arrived on is the one its tenant determines (see ``consuming.py``).
    """

    def subject(self) -> str:
        """``<SUBJECT>.<tenant_id>``."""
        return f"{self.SUBJECT}.{self.tenant_id}"

    @classmethod
    def subject_for(cls, tenant_id: str) -> str:
        """The subject of this event type for one tenant."""
        return f"{cls.SUBJECT}.{tenant_id}"

    @classmethod
    def every_tenant(cls) -> str:
        """The subject filter matching this event type for every tenant."""
        return f"{cls.SUBJECT}.*"


def tenant_scoped(subject: str, tenant_id: str) -> str:
    """A request subject of one tenant: ``<subject>.<tenant_id>`` (``vault.resolve.<tenant>``)."""
    return f"{subject}.{tenant_id}"


def tenant_of(subject: str) -> str:
    """The tenant a tenant-scoped subject names (its last token)."""
    return subject.rsplit(".", 1)[-1]
