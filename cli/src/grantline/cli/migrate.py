"""``grantline migrate``: apply every service's migrations (each in its own schema), then declare the
JetStream streams and durable consumers with the operator's NATS identity.

Services never create streams or consumers (their NATS users may not: deploy/nats/permissions.yaml);
this is the one place that does, run by the migration Job before the services roll out and by
``grantline dev``.
"""

import logging

import nats.errors
from pydantic import Field

from grantline.cli.services import ROLES
from grantline.runtime.db.migrations import upgrade
from grantline.runtime.nats.connection import connect_nats
from grantline.runtime.nats.consumers import durable_consumers
from grantline.runtime.nats.declaration import DeclarationError, declare_jetstream
from grantline.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


class MigrateSettings(ServiceSettings):
    """What ``grantline migrate`` reads: the operator's NATS credentials and the streams' tuning."""

    service_name: str = "migrate"
    # The AUDIT stream keeps records this long (the audit service's own retention cut reads the same).
    audit_retention_days: int = Field(default=365, ge=1)
    # How long the ledger's consumer waits for an ack before redelivering (part of its declaration).
    audit_ingest_ack_wait_seconds: float = Field(default=60.0, gt=0)


class NatsDeclarationFailed(RuntimeError):
    """The streams and consumers could not be declared; the message says what to fix."""


def migrate_all(database_url: str, services: list[str] | None = None) -> None:
    """Bring every (or the named) service's schema to the newest revision."""
    for name in services or list(ROLES):
        migrations = ROLES[name].migrations()
        if migrations is not None:
            upgrade(migrations, database_url)


async def declare_nats(settings: MigrateSettings) -> None:
    """Create or update the streams and durable consumers, connected as ``settings.nats_user``."""
    try:
        nc = await connect_nats(settings, name="grantline-migrate")
    except Exception as error:
        raise NatsDeclarationFailed(f"cannot connect to NATS at {settings.nats_url}: {error}") from None
    try:
        await declare_jetstream(
            nc.jetstream(timeout=5.0),
            audit_retention_days=settings.audit_retention_days,
            replicas=settings.nats_stream_replicas,
            consumers=durable_consumers(audit_ingest_ack_wait_seconds=settings.audit_ingest_ack_wait_seconds),
        )
    except DeclarationError as error:
        raise NatsDeclarationFailed(str(error)) from None
    except nats.errors.TimeoutError:
        # A refused JetStream API request gets no answer at all.
        raise NatsDeclarationFailed(
            f"NATS did not answer the JetStream API as user {settings.nats_user or '(none)'}: streams and "
            "consumers are declared with the operator identity (GRANTLINE_NATS_USER=operator, its password "
            "and GRANTLINE_NATS_INBOX_PREFIX=_INBOX.operator); see docs/nats-security.md"
        ) from None
    finally:
        await nc.close()
