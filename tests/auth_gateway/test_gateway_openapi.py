"""The checked-in OpenAPI document is the one the code produces."""

import json
from pathlib import Path

from grantline.auth_gateway.entrypoints.http.api import openapi_document

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_checked_in_openapi_is_current():
    current = json.loads(json.dumps(openapi_document()))
    regenerate = "uv run python -m grantline.auth_gateway.entrypoints.http.api > docs/openapi.json"
    assert json.loads(DOC.read_text()) == current, f"docs/openapi.json is stale: {regenerate}"


def test_every_v1_path_of_the_design_is_served():
    paths = openapi_document()["paths"]
    for path in (
        "/v1/providers",
        "/v1/provider-apps/{provider}",
        "/v1/connect-sessions",
        "/v1/connections/initiate",
        "/v1/oauth/callback",
        "/v1/oauth/token",
        "/v1/connections/api-key",
        "/v1/connections",
        "/v1/connections/{connection_id}",
        "/v1/satisfaction/check",
        "/v1/webhooks/{provider}",
        "/v1/audit",
    ):
        assert path in paths, path


async def test_the_served_document_is_the_checked_in_one() -> None:
    # Served from the file, not generated: the gateway runs under -OO, without the docstrings FastAPI
    # would write its descriptions from.
    import httpx

    from grantline.auth_gateway.entrypoints.http.api import OPENAPI_FILE, create_api

    transport = httpx.ASGITransport(app=create_api())
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        served = await client.get("/openapi.json")
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    assert served.content == OPENAPI_FILE.read_bytes()
    assert DOC.resolve() == OPENAPI_FILE.resolve()  # docs/openapi.json is a link to it
