"""`vault.report.<tenant>` with `kind: insufficient_scope`: a server needs more scope (step-up).

A server (an MCP server, or any API) answered a call made with a resolved token with `403` and
`WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`. The reporter (a runner or the
tool-call proxy) presents the run grant, like a resolve, names the connection and the scopes the
challenge named. The vault marks the scopes the connection lacks (`missing_scopes`, shown with the
connection) and answers `missing_scopes` naming them; the user re-authorizes the same connection with
them (incremental: the union is asked for), and that clears the mark.

A challenge names every scope the call needs; those the connection does not hold are marked. When the
connection holds them all by the vault's record, the server's word beats the record (an authorization
server may grant less than asked without saying so) and all of them are marked: a fresh token from the
same grant would be refused again. Each new mark is told to satisfaction
(`connections.scopes_missing`, with the connection's scopes less the missing ones), so requirements
naming those scopes stop being satisfied and runs needing them are held until the user re-authorizes.

A report can only mark the connection the grant resolves to now, only with scopes the grant allows,
and only well-formed scope tokens: a hostile reporter can make a user's connection ask for those scopes
on the next re-authorization (and hold that user's runs needing them until then), and nothing else.
"""

from __future__ import annotations

import re

from grantline.contract.connections import ScopesMissing
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.registry import encode_message
from grantline.contract.run_grants import RunGrant
from grantline.contract.vault import ReportRequest, ResolveRequest
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.domain.connection_rules import union_scopes
from grantline.vault.service.context import VaultContext
from grantline.vault.service.records import emit
from grantline.vault.service.resolve import ResolveService

_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6749 scope-token


class StepUpService:
    """The step-up kind of `vault.report.<tenant>` (``ReportService`` hands such reports here)."""

    def __init__(self, ctx: VaultContext, resolve: ResolveService) -> None:
        self._ctx = ctx
        self._resolve = resolve

    async def record(self, grant: RunGrant, report: ReportRequest) -> tuple[bytes, str]:
        """Mark the scopes the connection lacks; answer `missing_scopes` (or a fresh token if none)."""
        resolve = _resolve_request(report)
        bad = [scope for scope in report.scopes if not _SCOPE.fullmatch(scope)]
        if bad or not report.scopes:
            reply = ErrorReply.of(
                ErrorCode.INVALID_REQUEST, "scopes must be the OAuth scope tokens the server named"
            )
            return encode_message(reply), "rejected"
        provider = self._ctx.provider_for(report.provider or report.app or "")
        if not grant.covers(provider):
            reply = ErrorReply.of(ErrorCode.FORBIDDEN, f"the run grant does not cover {provider}")
            return encode_message(reply), "error_reply"
        beyond = grant.scopes_beyond(provider, report.scopes)
        if beyond:
            reply = ErrorReply.of(
                ErrorCode.FORBIDDEN, f"the run grant does not allow scope(s): {' '.join(beyond)}"
            )
            return encode_message(reply), "error_reply"
        current = await self._resolve.current_connection(grant, resolve)
        if current is None or current.id != report.connection_id or current.auth_kind == "api_key":
            # Not the connection this grant resolves to (replaced, or another user's): change nothing.
            return await self._resolve.resolve(grant, resolve)
        named = list(dict.fromkeys(report.scopes))
        # A challenge names every scope the call needs: those the connection lacks are missing. When it
        # holds them all by the record, the token was refused anyway: the record is wrong (the server
        # granted less than asked without saying so) and all of them are missing.
        missing = [scope for scope in named if scope not in current.held_scopes] or named
        async with self._ctx.transaction() as conn:
            row = await connection_rows.get(conn, grant.tenant_id, current.id, for_update=True)
            if row is not None and not set(missing) <= set(row.missing_scopes or []):
                marked = union_scopes(row.missing_scopes or [], missing)
                await connection_rows.update_row(conn, current.id, {"missing_scopes": marked})
                await emit(
                    self._ctx,
                    conn,
                    ScopesMissing(
                        tenant_id=row.tenant_id,
                        connection_id=row.id,
                        owner=row.owner,
                        provider=row.provider,
                        scopes=[scope for scope in row.scopes or [] if scope not in marked],
                        missing_scopes=marked,
                    ),
                )
        message = (
            f"the connection lacks scope(s): {' '.join(missing)}; the user must re-authorize connection"
            f" {current.id} with them"
        )
        return encode_message(ErrorReply.of(ErrorCode.MISSING_SCOPES, message)), "error_reply"


def _resolve_request(report: ReportRequest) -> ResolveRequest:
    # The scopes of a step-up report are what the server wants, not what the resolve needs.
    return ResolveRequest(grant=report.grant, provider=report.provider, app=report.app, tool=report.tool)
