"""Webhook deliveries already handled, keyed by (provider, app, delivery id) and by (provider, app,
body hash).

The body hash catches a replay whose delivery id was changed where the provider does not sign it
(GitHub's `X-GitHub-Delivery`). Both keys are per provider app (the one whose secret verified it): two
apps, of one tenant or of two, can be sent byte-identical bodies, and one's delivery is no replay of
the other's.

Every statement runs on psycopg directly (grantline.runtime.db.driver), hence its placeholders: the
gateway never loads SQLAlchemy (adapters/tables.py declares the table for the migrations only).
"""

from __future__ import annotations

from datetime import datetime

from grantline.runtime.db.driver import DriverConnection

_DELIVERY_SEEN = """
    SELECT delivery_id FROM gateway.webhook_deliveries
     WHERE provider = %(provider)s AND provider_app_id = %(provider_app_id)s
       AND (delivery_id = %(delivery_id)s OR body_sha256 = %(body_sha256)s)
    """


async def delivery_seen(
    conn: DriverConnection, provider: str, provider_app_id: str, delivery_id: str, body_sha256: str
) -> bool:
    """True when this delivery to this app (its id, or its signed body) was handled before."""
    params = {
        "provider": provider,
        "provider_app_id": provider_app_id,
        "delivery_id": delivery_id,
        "body_sha256": body_sha256,
    }
    return await (await conn.execute(_DELIVERY_SEEN, params)).fetchone() is not None


# No conflict target: a delivery is already recorded by its id (the key) or by its body (the unique
# index on the body hash), and either makes this one a replay.
_RECORD_DELIVERY = """
    INSERT INTO gateway.webhook_deliveries
           (provider, provider_app_id, delivery_id, tenant_id, kind, body_sha256)
    VALUES (%(provider)s, %(provider_app_id)s, %(delivery_id)s, %(tenant_id)s, %(kind)s, %(body_sha256)s)
    ON CONFLICT DO NOTHING
    RETURNING delivery_id
    """


async def record_delivery(
    conn: DriverConnection,
    *,
    provider: str,
    provider_app_id: str,
    delivery_id: str,
    body_sha256: str,
    tenant_id: str | None,
    kind: str | None,
) -> bool:
    """Remember a delivery; False when another request recorded it (or its body) first."""
    params = {
        "provider": provider,
        "provider_app_id": provider_app_id,
        "delivery_id": delivery_id,
        "body_sha256": body_sha256,
        "tenant_id": tenant_id,
        "kind": kind,
    }
    return await (await conn.execute(_RECORD_DELIVERY, params)).fetchone() is not None


# RETURNING, counted: in pipeline mode (runtime.driver_transaction) a result is there only once read.
_DELETE_OLD_DELIVERIES = """
    WITH forgotten AS (
        DELETE FROM gateway.webhook_deliveries WHERE received_at < %(before)s RETURNING 1
    )
    SELECT count(*) FROM forgotten
    """


async def delete_old_deliveries(conn: DriverConnection, *, before: datetime) -> int:
    """Forget deliveries older than every provider's replay window."""
    row = await (await conn.execute(_DELETE_OLD_DELIVERIES, {"before": before})).fetchone()
    return int(row[0]) if row is not None else 0
