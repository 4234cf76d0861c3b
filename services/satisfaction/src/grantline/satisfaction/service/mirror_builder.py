"""Building the mirror in memory from a sequence of ``connections.*`` events (the rebuild's core).

It applies the same rules as the live consumer (``apply_to_record``), so the result is the mirror the
live service converges to; it performs no I/O.
"""

from __future__ import annotations

from grantline.contract.connections import WebhookReceived
from grantline.contract.envelope import Event
from grantline.satisfaction.domain.mirror_records import (
    MirrorRecord,
    apply_to_record,
    event_extras,
    to_mirror_event,
    webhook_mirror_events,
)
from grantline.satisfaction.domain.mirror_rules import Ignore

RecordKey = tuple[str, str, str, str]


class MirrorBuilder:
    """Records by key, plus the keys changed since ``take_changed`` was last called."""

    def __init__(self) -> None:
        self.records: dict[RecordKey, MirrorRecord] = {}
        self._changed: set[RecordKey] = set()

    def apply(self, event: Event) -> None:
        """Apply one event from the CONNECTIONS stream."""
        if isinstance(event, WebhookReceived):
            matched = self._webhook_matches(event)
            for webhook_event in webhook_mirror_events(event, matched):
                key = (
                    event.tenant_id,
                    webhook_event.owner,
                    webhook_event.provider,
                    webhook_event.connection_id,
                )
                self._store(apply_to_record(self.records[key], event.tenant_id, webhook_event))
            return
        mirror_event = to_mirror_event(event)
        if mirror_event is None:
            return
        key = (event.tenant_id, mirror_event.owner, mirror_event.provider, mirror_event.connection_id)
        self._store(
            apply_to_record(self.records.get(key), event.tenant_id, mirror_event, event_extras(event))
        )

    def take_changed(self) -> list[MirrorRecord]:
        """The records changed since the last call (and forget them)."""
        changed = [self.records[key] for key in sorted(self._changed)]
        self._changed.clear()
        return changed

    def _store(self, updated: MirrorRecord | Ignore) -> None:
        if isinstance(updated, Ignore):
            return
        self.records[updated.key] = updated
        self._changed.add(updated.key)

    def _webhook_matches(self, event: WebhookReceived) -> list[MirrorRecord]:
        # The same matching as the live consumer: the gateway's connection ids, else the account.
        wanted = set(event.connection_ids)
        return [
            record
            for record in self.records.values()
            if record.tenant_id == event.tenant_id
            and (
                record.row.connection_id in wanted
                or (
                    event.account
                    and record.row.provider == event.provider
                    and record.account == event.account
                )
            )
        ]
