"""The envelope every event carries, and the base class of every message."""

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


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
    tenant_id: str = Field(min_length=1, max_length=128)

    @field_validator("occurred_at")
    @classmethod
    def _must_be_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        return value.astimezone(UTC)

    def subject(self) -> str:
        """The subject this event is published on."""
        return self.SUBJECT
