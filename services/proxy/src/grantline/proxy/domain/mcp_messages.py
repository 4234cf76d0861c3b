"""Reading the JSON-RPC messages an MCP client sends, for the grant's tool list and the audit record.

Only what the proxy needs is read: the id, the method and, for `tools/call`, the tool's name. A body
that is not a JSON-RPC request (a batch, a notification, a response) passes through unread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

# The largest JSON-RPC message the proxy reads to check (and forward); tool arguments are small.
MAX_MCP_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class McpRequest:
    """One JSON-RPC request: its id, method and (for tools/call) tool name."""

    id: object
    method: str
    tool: str | None


def read_request(body: bytes) -> McpRequest | None:
    """The request in ``body``, or None for anything else (batch, notification, not JSON)."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("method"), str) or "id" not in message:
        return None
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    tool = name if message["method"] == "tools/call" and isinstance(name, str) else None
    if message["method"] == "tools/call" and tool is None:
        tool = ""
    return McpRequest(message["id"], message["method"], tool)


def filtered_tools_list(body: bytes, allowed: Callable[[str], bool]) -> bytes | None:
    """A `tools/list` result without the tools the grant does not allow (None: not such a result)."""
    try:
        message = json.loads(body)
        tools = message["result"]["tools"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(tools, list):
        return None
    message["result"]["tools"] = [t for t in tools if isinstance(t, dict) and allowed(str(t.get("name")))]
    return json.dumps(message).encode()


def error_response(jsonrpc_id: object, code: str, message: str) -> bytes:
    """A JSON-RPC error answering ``jsonrpc_id``, with the Grantline code in ``data``."""
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": jsonrpc_id,
            "error": {"code": -32001, "message": message, "data": {"grantline_error": code}},
        }
    ).encode()
