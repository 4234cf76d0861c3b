"""The control API under /_sandbox: clients, API keys, faults, settings, recordings, counters.

JSON in, JSON out. It is how tests (and `grantline dev`) steer the sandbox from outside the
process; in-process tests may call the same SandboxState methods directly.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from grantline.sandbox.common import sandbox_state
from grantline.sandbox.faults import Fault
from grantline.sandbox.profiles import PROFILES
from grantline.sandbox.state import DEFAULT_SUBJECT, SandboxState

Handler = Callable[[Request], Awaitable[Response]]


def _problem(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise ValueError("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _guarded(handler: Callable[[Request, SandboxState], Awaitable[Response]]) -> Handler:
    async def endpoint(request: Request) -> Response:
        state = sandbox_state(request)
        if state.control_token is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.encode(), state.control_token.encode()
            ):
                return _problem("control API needs the sandbox control token", 401)
        try:
            return await handler(request, state)
        except ValueError as exc:
            return _problem(str(exc))

    return endpoint


async def health(request: Request, state: SandboxState) -> Response:
    return JSONResponse({"status": "ok", "profiles": list(PROFILES)})


async def create_client(request: Request, state: SandboxState) -> Response:
    data = await _json_object(request)
    unknown = sorted(set(data) - {"client_id", "client_secret", "redirect_uris", "profiles"})
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    for profile in data.get("profiles") or []:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}")
    client = state.register_client(
        data.get("client_id"),
        data.get("client_secret"),
        redirect_uris=data.get("redirect_uris"),
        profiles=data.get("profiles"),
    )
    return JSONResponse(dataclasses.asdict(client), status_code=201)


async def list_clients(request: Request, state: SandboxState) -> Response:
    with state.lock:
        return JSONResponse([dataclasses.asdict(client) for client in state.clients.values()])


async def delete_client(request: Request, state: SandboxState) -> Response:
    with state.lock:
        removed = state.clients.pop(request.path_params["client_id"], None)
    return Response(status_code=204 if removed else 404)


async def create_api_key(request: Request, state: SandboxState) -> Response:
    data = await _json_object(request)
    key = state.issue_api_key(str(data.get("subject") or DEFAULT_SUBJECT))
    return JSONResponse({"api_key": key.value, "subject": key.subject}, status_code=201)


async def add_fault(request: Request, state: SandboxState) -> Response:
    try:
        fault = Fault.model_validate(await _json_object(request))
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'fault'}: {e['msg']}" for e in exc.errors())
        raise ValueError(details) from None
    if fault.profile != "*" and fault.profile not in PROFILES:
        raise ValueError(f"unknown profile {fault.profile!r}")
    return JSONResponse(state.add_fault(fault).model_dump(), status_code=201)


async def list_faults(request: Request, state: SandboxState) -> Response:
    return JSONResponse([fault.model_dump() for fault in list(state.faults.faults)])


async def clear_faults(request: Request, state: SandboxState) -> Response:
    state.faults.clear()
    return Response(status_code=204)


async def delete_fault(request: Request, state: SandboxState) -> Response:
    return Response(status_code=204 if state.faults.remove(request.path_params["fault_id"]) else 404)


def _settings_view(state: SandboxState) -> dict[str, Any]:
    with state.lock:
        return {
            "defaults": dataclasses.asdict(state.default_settings),
            "profiles": {name: dataclasses.asdict(value) for name, value in state.profile_settings.items()},
            "canary": state.canary,
        }


async def get_settings(request: Request, state: SandboxState) -> Response:
    return JSONResponse(_settings_view(state))


async def put_settings(request: Request, state: SandboxState) -> Response:
    data = await _json_object(request)
    profile = data.pop("profile", None)
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    if "canary" in data:
        state.canary = data.pop("canary") or None
    if data:
        state.update_settings(profile, data)
    return JSONResponse(_settings_view(state))


async def list_requests(request: Request, state: SandboxState) -> Response:
    filters = {
        key: request.query_params[key]
        for key in ("profile", "endpoint", "grant_type")
        if key in request.query_params
    }
    with state.lock:
        entries = [
            dataclasses.asdict(entry)
            for entry in state.requests
            if all(getattr(entry, key) == value for key, value in filters.items())
        ]
    return JSONResponse(entries)


async def clear_requests(request: Request, state: SandboxState) -> Response:
    with state.lock:
        state.requests.clear()
        state.refresh_counts.clear()
        state.grant_counts.clear()
    return Response(status_code=204)


async def counters(request: Request, state: SandboxState) -> Response:
    with state.lock:
        return JSONResponse(
            {
                "refresh_grants_by_refresh_token": dict(state.refresh_counts),
                "token_requests_by_profile_and_grant": dict(state.grant_counts),
                "requests": len(state.requests),
                "grants": len(state.grants),
                "live_grants": sum(1 for grant in state.grants.values() if not grant.revoked),
            }
        )


async def token_status(request: Request, state: SandboxState) -> Response:
    value = request.path_params["token"]
    with state.lock:
        token = state.tokens.get(value)
        if token is None:
            return _problem("unknown token", 404)
        grant = state.grants[token.grant_id]
        active = state.live_token(value, token.kind) is not None
        return JSONResponse(
            {
                "kind": token.kind,
                "active": active,
                "revoked": token.revoked or grant.revoked,
                "rotated": token.rotated,
                "expires_at": token.expires_at,
                "grant_id": grant.id,
                "subject": grant.subject,
                "scopes": grant.scopes,
                "refresh_count": state.refresh_counts[value],
            }
        )


async def provider_side_revoke(request: Request, state: SandboxState) -> Response:
    """Simulate the user revoking access in the provider's own settings."""
    data = await _json_object(request)
    if "token" in data:
        return JSONResponse({"revoked": 1 if state.revoke_token(str(data["token"])) else 0})
    if "subject" in data:
        return JSONResponse({"revoked": state.revoke_subject(str(data["subject"]), data.get("profile"))})
    raise ValueError("give 'token' or 'subject' (optionally with 'profile')")


async def get_mcp_switches(request: Request, state: SandboxState) -> Response:
    switches = state.mcp.switches_for(request.path_params["server"])
    return JSONResponse(dataclasses.asdict(switches))


async def put_mcp_switches(request: Request, state: SandboxState) -> Response:
    """Change an MCP server's switches (cimd, dcr, prm_path_only, oidc_only, wrong_issuer, ...)."""
    updated = state.mcp.set_switches(request.path_params["server"], **await _json_object(request))
    return JSONResponse(dataclasses.asdict(updated))


async def reset(request: Request, state: SandboxState) -> Response:
    data = await _json_object(request)
    state.reset(keep_clients=bool(data.get("keep_clients", True)))
    return Response(status_code=204)


CONTROL_ROUTES = [
    Route("/_sandbox/health", _guarded(health), methods=["GET"]),
    Route("/_sandbox/clients", _guarded(create_client), methods=["POST"]),
    Route("/_sandbox/clients", _guarded(list_clients), methods=["GET"]),
    Route("/_sandbox/clients/{client_id}", _guarded(delete_client), methods=["DELETE"]),
    Route("/_sandbox/api-keys", _guarded(create_api_key), methods=["POST"]),
    Route("/_sandbox/faults", _guarded(add_fault), methods=["POST"]),
    Route("/_sandbox/faults", _guarded(list_faults), methods=["GET"]),
    Route("/_sandbox/faults", _guarded(clear_faults), methods=["DELETE"]),
    Route("/_sandbox/faults/{fault_id}", _guarded(delete_fault), methods=["DELETE"]),
    Route("/_sandbox/settings", _guarded(get_settings), methods=["GET"]),
    Route("/_sandbox/settings", _guarded(put_settings), methods=["PUT"]),
    Route("/_sandbox/requests", _guarded(list_requests), methods=["GET"]),
    Route("/_sandbox/requests", _guarded(clear_requests), methods=["DELETE"]),
    Route("/_sandbox/counters", _guarded(counters), methods=["GET"]),
    Route("/_sandbox/tokens/{token}", _guarded(token_status), methods=["GET"]),
    Route("/_sandbox/revoke", _guarded(provider_side_revoke), methods=["POST"]),
    Route("/_sandbox/mcp/{server}", _guarded(get_mcp_switches), methods=["GET"]),
    Route("/_sandbox/mcp/{server}", _guarded(put_mcp_switches), methods=["PUT"]),
    Route("/_sandbox/reset", _guarded(reset), methods=["POST"]),
]
