"""Ordering and idempotency of the app_user_connect mirror, and the per-connection row key."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantline.satisfaction.domain.mirror_rules import (
    ConnectionEvent,
    EventKind,
    Ignore,
    MirrorRow,
    apply_event,
    held_connections,
    provider_state,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
OWNER = "user:alice"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(
    event_id: str,
    kind: EventKind,
    minute: int,
    *,
    connection_id: str = "c1",
    scopes: frozenset[str] | None = None,
    missing: frozenset[str] | None = None,
    **extra: bool,
) -> ConnectionEvent:
    return ConnectionEvent(
        event_id=event_id,
        kind=kind,
        owner=OWNER,
        provider="google",
        connection_id=connection_id,
        occurred_at=at(minute),
        scopes=scopes,
        missing_scopes=missing,
        **extra,
    )


def fold(events: list[ConnectionEvent], row: MirrorRow | None = None) -> MirrorRow | None:
    for item in events:
        decision = apply_event(row, item)
        if isinstance(decision, MirrorRow):
            row = decision
    return row


def applied(row: MirrorRow | None, item: ConnectionEvent) -> MirrorRow:
    decision = apply_event(row, item)
    assert isinstance(decision, MirrorRow), decision
    return decision


def test_grant_creates_a_connected_row_stamped_with_event_time() -> None:
    row = applied(None, event("e1", "granted", 0, scopes=frozenset({"gmail.readonly"})))
    assert row.connected is True
    assert row.scopes == frozenset({"gmail.readonly"})
    assert (row.connected_at, row.last_grant_event_id) == (at(0), "e1")
    assert (row.updated_at, row.last_event_at, row.last_event_id) == (at(0), at(0), "e1")


def test_same_event_twice_changes_nothing() -> None:
    grant = event("e1", "granted", 0)
    row = applied(None, grant)
    assert apply_event(row, grant) == Ignore("duplicate")


def test_older_event_never_overwrites_newer_state() -> None:
    row = applied(applied(None, event("e1", "granted", 0)), event("e2", "revoked", 5))
    assert apply_event(row, event("e0", "refreshed", 3)) == Ignore("stale")
    assert apply_event(row, event("e0", "granted", -1)) == Ignore("stale")
    # Redelivery of an event applied before the latest one is a duplicate too, not a second application.
    assert apply_event(row, event("e1", "granted", 0)) == Ignore("duplicate")


def test_late_grant_after_revoke_of_an_unseen_connection_does_not_resurrect_it() -> None:
    row = applied(None, event("e2", "revoked", 5))
    assert row.connected is False
    assert row.connected_at is None
    late = applied(row, event("e1", "granted", 0, scopes=frozenset({"a"})))
    # Still revoked; only what the grant said is recorded, so the row matches in-order delivery.
    assert (late.connected, late.last_event_id) == (False, "e2")
    assert (late.scopes, late.connected_at) == (frozenset({"a"}), at(0))
    assert late == fold([event("e1", "granted", 0, scopes=frozenset({"a"})), event("e2", "revoked", 5)])


def test_ties_on_time_are_broken_by_event_id_in_any_delivery_order() -> None:
    grant = event("b-grant", "granted", 1)
    revoke = event("a-revoke", "revoked", 1)
    one = fold([grant, revoke])
    other = fold([revoke, grant])
    assert one == other
    assert one is not None
    assert one.connected is True  # "b-grant" > "a-revoke"
    assert one.last_event_id == "b-grant"


def test_refresh_keeps_scopes_and_connected_at_but_records_the_event() -> None:
    row = applied(None, event("e1", "granted", 0, scopes=frozenset({"a"})))
    refreshed = applied(row, event("e2", "refreshed", 10))
    assert refreshed.scopes == frozenset({"a"})
    assert (refreshed.connected_at, refreshed.updated_at) == (at(0), at(10))
    assert (refreshed.last_event_at, refreshed.last_event_id) == (at(10), "e2")


def test_reauth_required_then_reauthorization_reconnects_with_new_scopes() -> None:
    row = fold(
        [
            event("e1", "granted", 0, scopes=frozenset({"a"})),
            event("e2", "reauth_required", 5),
            event("e3", "granted", 9, scopes=frozenset({"a", "b"})),
        ]
    )
    assert row is not None
    assert row.connected is True
    assert row.scopes == frozenset({"a", "b"})
    assert (row.connected_at, row.updated_at) == (at(9), at(9))


def test_revoke_flips_updated_at_and_keeps_connected_at() -> None:
    row = fold([event("e1", "granted", 0), event("e2", "revoked", 7)])
    assert row is not None
    assert (row.connected, row.connected_at, row.updated_at) == (False, at(0), at(7))


def test_only_verified_revoking_webhooks_apply() -> None:
    row = applied(None, event("e1", "granted", 0))
    assert apply_event(row, event("w1", "webhook", 5, verified=False, signals_revocation=True)) == Ignore(
        "not_applicable"
    )
    assert apply_event(row, event("w2", "webhook", 5, signals_revocation=False)) == Ignore("not_applicable")
    revoked = applied(row, event("w3", "webhook", 5, signals_revocation=True))
    assert revoked.connected is False


def test_an_event_for_another_connection_is_a_caller_error() -> None:
    row = applied(None, event("e1", "granted", 0, connection_id="c1"))
    with pytest.raises(ValueError):
        apply_event(row, event("e2", "revoked", 1, connection_id="c2"))


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError):
        ConnectionEvent(
            event_id="e1",
            kind="granted",
            owner=OWNER,
            provider="google",
            connection_id="c1",
            occurred_at=datetime(2025, 1, 1),
        )


def test_revoking_the_non_default_account_leaves_the_user_connected() -> None:
    work = applied(None, event("e1", "granted", 0, connection_id="work"))
    personal = applied(None, event("e2", "granted", 5, connection_id="personal"))
    assert provider_state([work, personal]).connection_id == "personal"  # the newest is the default

    work = applied(work, event("e3", "revoked", 10, connection_id="work"))
    state = provider_state([work, personal])
    assert (state.connected, state.connection_id) == (True, "personal")

    personal = applied(personal, event("e4", "revoked", 11, connection_id="personal"))
    assert provider_state([work, personal]).connected is False


def test_revoking_the_default_account_falls_back_to_the_other() -> None:
    work = applied(None, event("e1", "granted", 0, connection_id="work"))
    personal = applied(None, event("e2", "granted", 5, connection_id="personal"))
    personal = applied(personal, event("e3", "revoked", 10, connection_id="personal"))
    state = provider_state([work, personal])
    assert (state.connected, state.connection_id, state.connected_at) == (True, "work", at(0))


def test_no_rows_means_not_connected() -> None:
    state = provider_state([])
    assert (state.connected, state.connection_id, state.connected_at) == (False, None, None)


def test_rows_become_report_inputs() -> None:
    user_row = applied(None, event("e1", "granted", 0, scopes=frozenset({"a"})))
    workspace_row = applied(
        None,
        ConnectionEvent(
            event_id="e2",
            kind="granted",
            owner="workspace",
            provider="salesforce",
            connection_id="ws",
            occurred_at=at(0),
        ),
    )
    held = held_connections([user_row, workspace_row])
    assert [(h.owner, h.provider, h.connection_id, h.scopes, h.connected) for h in held] == [
        ("user", "google", "c1", frozenset({"a"}), True),
        ("workspace", "salesforce", "ws", frozenset(), True),
    ]


KINDS: list[EventKind] = ["granted", "refreshed", "revoked", "reauth_required"]

events_strategy = st.lists(
    st.builds(
        lambda index, kind, minute, scope: event(
            f"e{index:03d}", kind, minute, scopes=frozenset({scope}) if kind == "granted" else None
        ),
        st.integers(0, 999),
        st.sampled_from(KINDS),
        st.integers(0, 5),  # few distinct minutes, so ties on time are common
        st.sampled_from(["a", "b", "c"]),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda item: item.event_id,
)


@given(events=events_strategy, data=st.data())
def test_any_delivery_order_with_duplicates_gives_the_same_row(
    events: list[ConnectionEvent], data: st.DataObject
) -> None:
    in_order = fold(sorted(events, key=lambda item: item.order_key))
    shuffled = data.draw(st.permutations(events))
    redelivered = data.draw(st.lists(st.sampled_from(events), max_size=6))
    assert fold([*shuffled, *redelivered]) == in_order
    latest = max(events, key=lambda item: item.order_key)
    assert in_order is not None
    assert in_order.last_event_id == latest.event_id
    assert in_order.connected == (latest.kind in ("granted", "refreshed"))
    grants = [item for item in events if item.kind == "granted"]
    if grants:
        newest_grant = max(grants, key=lambda item: item.order_key)
        assert (in_order.scopes, in_order.connected_at) == (newest_grant.scopes, newest_grant.occurred_at)
    else:
        assert (in_order.scopes, in_order.connected_at) == (frozenset(), None)


def test_a_step_up_mark_narrows_the_held_scopes_until_a_newer_grant() -> None:
    granted = applied(None, event("g1", "granted", 0, scopes=frozenset({"read", "write"})))
    marked = applied(granted, event("m1", "scopes_missing", 1, missing=frozenset({"write"})))
    assert marked.held_scopes == frozenset({"read"})
    assert (marked.connected, marked.last_event_id, marked.connected_at) == (True, "g1", at(0))
    (held,) = held_connections([marked])
    assert held.scopes == frozenset({"read"})
    # The re-authorization asked for the union: its grant says what is still missing (nothing).
    again = applied(
        marked, event("g2", "granted", 2, scopes=frozenset({"read", "write"}), missing=frozenset())
    )
    assert (again.held_scopes, again.missing_scopes) == (frozenset({"read", "write"}), frozenset())


def test_marks_older_than_the_newest_grant_or_mark_repeated_or_unseen_change_nothing() -> None:
    granted = applied(None, event("g1", "granted", 5, scopes=frozenset({"read"})))
    assert apply_event(granted, event("m0", "scopes_missing", 4, missing=frozenset({"read"}))) == Ignore(
        "stale"
    )
    marked = applied(granted, event("m1", "scopes_missing", 6, missing=frozenset({"read"})))
    assert apply_event(marked, event("m1", "scopes_missing", 6, missing=frozenset({"read"}))) == Ignore(
        "duplicate"
    )
    # A grant newer than the last grant but older than the mark (delivered late) keeps the mark.
    late = applied(marked, event("g2", "granted", 5, scopes=frozenset({"read"}), missing=frozenset()))
    assert (late.last_grant_event_id, late.missing_scopes) == ("g2", frozenset({"read"}))
    assert apply_event(None, event("m2", "scopes_missing", 7, missing=frozenset({"x"}))) == Ignore(
        "not_applicable"
    )


marks_strategy = st.lists(
    st.builds(
        lambda index, kind, minute, scope: event(
            f"e{index:03d}",
            kind,
            minute,
            scopes=frozenset({scope, "z"}) if kind == "granted" else None,
            missing=frozenset({scope}) if kind in ("granted", "scopes_missing") else None,
        ),
        st.integers(0, 999),
        st.sampled_from([*KINDS, "scopes_missing"]),
        st.integers(0, 5),
        st.sampled_from(["a", "b", "c"]),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda item: item.event_id,
)


@given(events=marks_strategy, data=st.data())
def test_marks_end_the_same_in_any_delivery_order_after_the_first_grant(
    events: list[ConnectionEvent], data: st.DataObject
) -> None:
    # The vault publishes a connection's grant before any mark of it: the first grant comes first.
    first = ConnectionEvent(
        event_id="first",
        kind="granted",
        owner=OWNER,
        provider="google",
        connection_id="c1",
        occurred_at=at(-1),
        scopes=frozenset({"z"}),
        missing_scopes=frozenset(),
    )
    in_order = fold([first, *sorted(events, key=lambda item: item.order_key)])
    shuffled = data.draw(st.permutations(events))
    redelivered = data.draw(st.lists(st.sampled_from(events), max_size=6))
    assert fold([first, *shuffled, *redelivered]) == in_order
    marking = [item for item in [first, *events] if item.kind in ("granted", "scopes_missing")]
    newest = max(marking, key=lambda item: item.order_key)
    assert in_order is not None and in_order.missing_scopes == newest.missing_scopes


def test_sharing_follows_the_newest_grant_or_sharing_change() -> None:
    from grantline.satisfaction.domain.mirror_records import EventExtras, MirrorRecord, apply_to_record

    def workspace_event(event_id: str, kind: EventKind, minute: int) -> ConnectionEvent:
        return event(event_id, kind, minute).model_copy(update={"owner": "workspace"})

    granted = apply_to_record(
        None, "t", workspace_event("g1", "granted", 0), EventExtras(shared_fallback=True)
    )
    assert isinstance(granted, MirrorRecord) and (granted.shared_fallback, granted.workspace_forced) == (
        True,
        False,
    )
    forced = apply_to_record(
        granted, "t", workspace_event("s1", "sharing_changed", 2), EventExtras(workspace_forced=True)
    )
    assert isinstance(forced, MirrorRecord)
    assert (forced.shared_fallback, forced.workspace_forced, forced.row) == (False, True, granted.row)
    # A grant older than the change (delivered late) leaves the flags; a repeat or an older change too.
    late = apply_to_record(
        forced, "t", workspace_event("g0", "granted", 1), EventExtras(shared_fallback=True)
    )
    assert isinstance(late, MirrorRecord) and late.workspace_forced and not late.shared_fallback
    again = workspace_event("s1", "sharing_changed", 2)
    assert apply_to_record(forced, "t", again, EventExtras()) == Ignore("duplicate")
    older = workspace_event("s0", "sharing_changed", 1)
    assert apply_to_record(forced, "t", older, EventExtras()) == Ignore("stale")
    assert apply_to_record(None, "t", older, EventExtras()) == Ignore("not_applicable")
    # A newer grant carries the app's flags again.
    newer = apply_to_record(
        forced, "t", workspace_event("g2", "granted", 3), EventExtras(shared_fallback=True)
    )
    assert isinstance(newer, MirrorRecord) and (newer.shared_fallback, newer.workspace_forced) == (
        True,
        False,
    )
