"""How the provider's redirect back can be refused, in words safe to put in the browser's address bar.

A refused callback carries only our own codes (and the destination its state named), and a
provider's error is passed on only when it is one of the standard OAuth codes: nothing the
provider or an attacker chose reaches the page the browser returns to.
"""

from __future__ import annotations

# OAuth error codes a provider may send back (RFC 6749 section 4.1.2.1); anything else is reported
# as `provider_error` so no provider-chosen text reaches the browser's address bar.
_PROVIDER_ERRORS = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "consent_required",
        "login_required",
        "interaction_required",
    }
)


class FlowRefused(Exception):
    """The callback cannot proceed; `return_to` is set when the state was ours and still says where."""

    def __init__(self, code: str, return_to: str | None = None, connection_id: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.return_to = return_to
        self.connection_id = connection_id


def provider_error_code(error: str) -> str:
    """The OAuth error a provider sent, if it is a standard one; else `provider_error`."""
    return error if error in _PROVIDER_ERRORS else "provider_error"
