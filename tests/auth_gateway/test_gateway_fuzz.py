"""Property-based fuzz of docs/openapi.json against the gateway over HTTP: no request gets a 5xx.

The gateway is served by uvicorn on a free port with the real vault, satisfaction and audit
services behind it, authenticated with a real tenant API key, and a provider app and a connection
in place so that generated requests reach real data. Hypothesis runs derandomized with a small
budget per operation, in a worker thread while the services keep running in the event loop.
"""

import asyncio
from pathlib import Path

import hypothesis
import requests
import uvicorn
from fixtures.infra import free_port
from gateway_flow import connect, setup_app
from gateway_support import KEY_A, bearer
from schemathesis import GenerationMode, openapi
from schemathesis.checks import not_a_server_error

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
EXAMPLES_PER_MODE = 8


def fuzz(base_url: str) -> list[str]:
    """Fuzz every operation in both generation modes; returns the failures found."""
    schema = openapi.from_path(DOC)
    failures: list[str] = []
    http = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=EXAMPLES_PER_MODE,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                response = case.call(base_url=base_url, session=http, headers=bearer(KEY_A), timeout=15)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Exception as failure:  # collected, to report every operation at once
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {failure}")
    return failures


async def test_openapi_fuzz_finds_no_server_error(full_stack):
    await setup_app(full_stack)
    await connect(full_stack, "fuzz-user")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            full_stack.runtime.http_application(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the gateway did not start"
            await asyncio.sleep(0.01)
        failures = await asyncio.to_thread(fuzz, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving
    assert not failures, "\n\n".join(failures)
