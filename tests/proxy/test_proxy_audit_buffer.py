"""The proxy's audit records survive a JetStream that does not acknowledge them: they stay buffered
and go out once it does (the proxy has no outbox; this buffer is what keeps "loses nothing")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import nats
import pytest
from fixtures.messaging import delete_all_streams

from grantline.contract.audit import AuditRecord
from grantline.proxy.adapters.audit_publisher import SUBJECT, AuditPublisher, call_record_json
from grantline.runtime.record_buffer import RecordsKept


def _record(run: str) -> tuple[uuid.UUID, bytes]:
    event_id = uuid.uuid4()
    return event_id, call_record_json(
        event_id=event_id,
        occurred_at=datetime.now(UTC),
        tenant_id="tenant-a",
        user_id="alice",
        app_id="app-1",
        run_id=run,
        tool="t",
        provider="sandbox",
        connection_id="conn_1",
        outcome="success",
        detail={"method": "GET", "path": "/items", "status": 200},
    )


async def test_records_wait_for_an_acknowledgement_and_are_stored_once(bare_nats_url: str) -> None:
    nc = await nats.connect(bare_nats_url)
    try:
        publisher = AuditPublisher(lambda: nc, interval_seconds=0.05, max_records=10, max_buffered=100)
        for index in range(3):
            publisher.add_call(*_record(f"run-{index}"))
        with pytest.raises(RecordsKept, match="kept for the next flush"):
            await publisher.flush()  # no AUDIT stream: nothing acknowledges them
        assert len(publisher) == 3
        await delete_all_streams(bare_nats_url, then_declare=True)
        assert await publisher.flush() == 3
        assert len(publisher) == 0
        js = nc.jetstream()
        info = await js.stream_info("AUDIT")
        stored = [
            AuditRecord.model_validate_json((await js.get_msg("AUDIT", seq)).data or b"")
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
        assert sorted(r.run_id or "" for r in stored if r.action == "proxy.call") == [
            "run-0",
            "run-1",
            "run-2",
        ]
        assert all(r.actor == "user:alice" and r.connection_id == "conn_1" for r in stored)
        assert SUBJECT == "audit.proxy.call"
    finally:
        await nc.close()
