"""The secrets rule at the gateway: a canary the sandbox puts in every code, token, key and client
secret appears in no HTTP response body or header of the gateway (redirects included), no log
record, no span, no event, and no column of the gateway's tables."""

import logging

import httpx
import pytest
from fixtures.waiting import wait_for_async
from gateway_flow import (
    RETURN_TO,
    authorize,
    callback,
    count,
    query,
    setup_app,
    start,
    stream_events,
)
from gateway_support import CLIENT_ID, KEY_A, REDIRECT_URI, bearer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from grantline.auth_gateway.adapters.tables import outbox
from grantline.runtime.telemetry.span_export import recording_provider, redacted_span
from grantline.sandbox import Fault

CANARY = "CANARYgw7x"


async def gateway_column_values(stack) -> list[str]:
    """Every text, bytea, JSON and array value of every table in the gateway's schema."""
    async with stack.runtime.sessions() as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'gateway' "
                    "AND data_type IN ('text', 'character varying', 'bytea', 'jsonb', 'ARRAY')"
                )
            )
        ).all()
        values = []
        for table, column, data_type in columns:
            cast = "encode(\"{c}\", 'escape')" if data_type == "bytea" else '"{c}"::text'
            rows = await session.execute(text(f'SELECT {cast.format(c=column)} FROM gateway."{table}"'))
            values.extend(value for (value,) in rows if value)
    return values


async def test_canary_never_leaves_the_gateway(stack, caplog: pytest.LogCaptureFixture):
    spans = InMemorySpanExporter()
    recording_provider("gateway-test").add_span_processor(SimpleSpanProcessor(spans))
    caplog.set_level(logging.DEBUG)
    # A runtime started earlier in the session quiets httpx to WARNING (configure_logging): undo that
    # here, so this test sees every record whatever ran before it.
    caplog.set_level(logging.DEBUG, logger="httpx")
    responses: list[str] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        responses.append(f"{response.status_code} {response.headers!r} {response.text}")

    stack.client.event_hooks["response"].append(keep)
    stack.sandbox.canary = CANARY
    secret = f"sbx_secret_{CANARY}_0123456789"
    stack.sandbox.register_client(CLIENT_ID, secret, redirect_uris=[REDIRECT_URI])
    await setup_app(stack, client_secret=secret, webhook_secret=f"whsec_{CANARY}")

    # Connect through the callback; re-authorize through POST /v1/oauth/token.
    started = await start(stack, "carol")
    callback_url = await authorize(stack, started["authorize_url"])
    assert CANARY in callback_url  # the sandbox really puts the canary in its codes
    assert (await callback(stack, callback_url))["status"] == "connected"
    assert (await callback(stack, callback_url))["error"] == "used_state"  # a replayed code
    again = await start(stack, "carol", scopes=["write"], connection_id=started["connection_id"])
    code = query(await authorize(stack, again["authorize_url"]))
    exchanged = await stack.client.post(
        "/v1/oauth/token",
        headers=bearer(KEY_A),
        json={"code": code["code"], "state": code["state"], "iss": code["iss"]},
    )
    assert exchanged.status_code == 200, exchanged.text

    # A provider failing the exchange, and a code it refuses.
    stack.sandbox.add_fault(Fault(endpoint="token", status=503, times=2))
    failed = await start(stack, "carol")
    assert (await callback(stack, await authorize(stack, failed["authorize_url"])))["status"] == "error"
    refused = await start(stack, "carol")
    bogus = query(await authorize(stack, refused["authorize_url"]))
    refused_reply = await stack.client.post(
        "/v1/oauth/token",
        headers=bearer(KEY_A),
        json={"code": f"sbx_code_{CANARY}_never_issued", "state": bogus["state"]},
    )
    assert refused_reply.status_code >= 400

    # An API-key connection, listing, reading, revoking.
    api_key = stack.sandbox.issue_api_key("carol").value
    assert CANARY in api_key
    stored = await stack.client.post(
        "/v1/connections/api-key",
        headers=bearer(KEY_A),
        json={"user_id": "carol", "provider": "sandbox_api_key", "fields": {"api_key": api_key}},
    )
    assert stored.status_code in (200, 201), stored.text
    assert (await stack.client.get("/v1/connections?user_id=carol", headers=bearer(KEY_A))).status_code == 200
    path = f"/v1/connections/{started['connection_id']}"
    assert (await stack.client.get(path, headers=bearer(KEY_A))).status_code == 200
    assert (await stack.client.delete(path, headers=bearer(KEY_A))).status_code == 200
    assert (await stack.client.get("/v1/provider-apps/sandbox", headers=bearer(KEY_A))).status_code == 200
    await wait_for_async(lambda: count_is_zero(stack))

    assert responses and RETURN_TO in str(responses)  # the redirects were seen
    assert not [r for r in responses if CANARY in r]
    # The test's own client logs the callback URL it calls (with the code): that line is not the gateway's.
    ours = [r for r in caplog.records if r.name == "httpx" and "http://gateway.test/" in r.getMessage()]
    assert ours  # the log capture sees every record, DEBUG included
    leaked = [
        r
        for r in caplog.records
        if r not in ours and (CANARY in r.getMessage() or CANARY in repr(r.__dict__))
    ]
    assert not leaked, [r.getMessage() for r in leaked]
    # What leaves the process is what the configured exporter sends: spans after redaction.
    exported = [redacted_span(s).to_json() for s in spans.get_finished_spans()]
    assert exported and not [s for s in exported if CANARY in s], [s for s in exported if CANARY in s]
    assert not [v for v in await gateway_column_values(stack) if CANARY in v]
    events = [str(e) for stream in ("CONNECTIONS", "AUDIT") for e in await stream_events(stack, stream)]
    assert events and not [e for e in events if CANARY in e]


async def count_is_zero(stack) -> bool:
    return await count(stack, outbox) == 0
