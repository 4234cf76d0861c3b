# ruff: noqa: F811 - the fixtures are imported from secured_gateway_stack, then requested by name
"""Attack 1 end to end: a tenant defines an API-key provider whose field pattern backtracks
catastrophically and stores a value built to make it stall; the gateway answers at once (RE2), and a
pattern RE2 cannot run is refused when the definition is saved."""

import time

from secured_gateway_stack import KEY_A, _provider_servers, bearer, secured_stack  # noqa: F401 - fixtures

PROVIDER = "acme_keyed"


def _definition(pattern: str) -> dict:
    return {
        "id": PROVIDER,
        "name": "Acme (API key)",
        "category": "testing",
        "auth": "api_key",
        "api_key": {"fields": [{"id": "api_key", "label": "API key", "pattern": pattern}]},
    }


async def test_a_backtracking_field_pattern_does_not_stall_the_gateway(secured_stack):
    stack = secured_stack
    defined = await stack.client.post("/v1/providers", headers=bearer(KEY_A), json=_definition("(a+)+b"))
    assert defined.status_code == 201, defined.text
    started = time.perf_counter()
    # Python's `re` takes about ten seconds to refuse this value; RE2 microseconds.
    stored = await stack.client.post(
        "/v1/connections/api-key",
        headers=bearer(KEY_A),
        json={"user_id": "alice", "provider": PROVIDER, "fields": {"api_key": "a" * 28}},
    )
    assert time.perf_counter() - started < 2.0
    assert stored.status_code in (400, 422), stored.text
    assert "expected format" in stored.text


async def test_a_pattern_re2_cannot_run_is_refused_when_defined(secured_stack):
    stack = secured_stack
    refused = await stack.client.post("/v1/providers", headers=bearer(KEY_A), json=_definition(r"(a)\1"))
    assert refused.status_code in (400, 422), refused.text
    assert "RE2 syntax" in refused.text
    listed = await stack.client.get("/v1/providers", headers=bearer(KEY_A))
    assert PROVIDER not in {p["id"] for p in listed.json()["providers"]}
