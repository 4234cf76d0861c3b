"""The three health routes as Starlette routes, for a service that serves an HTTP API of its own."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from grantline.runtime.health import HEALTH_PATHS, Readiness, health_answer


def health_routes(service: str, readiness: Readiness) -> list[Route]:
    """``/healthz``, ``/readyz`` and ``/metrics`` (left out of the API's schema)."""

    async def answer(request: Request) -> Response:
        found = await health_answer(request.url.path, service, readiness)
        assert found is not None  # only the three paths are routed here
        return Response(found.body, status_code=found.status, media_type=found.content_type)

    return [Route(path, answer, include_in_schema=False) for path in HEALTH_PATHS]
