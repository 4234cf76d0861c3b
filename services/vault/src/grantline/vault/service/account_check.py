"""Whether a grant came from the account the flow expected (a login hint or an email domain)."""

from __future__ import annotations

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault import ExchangeRequest
from grantline.providers.token_response import TokenSet


def wrong_account(request: ExchangeRequest, tokens: TokenSet) -> ErrorReply | None:
    """The `wrong_account` refusal when the grant is not the expected account's, else None.

    The user is told which account granted (it is their own) and which was expected, so they can
    sign in as the right one: the case where a browser is signed in to a personal account.
    """
    if not (request.expected_account or request.expected_domain):
        return None
    account = tokens.account
    if account is None:
        return ErrorReply.of(
            ErrorCode.WRONG_ACCOUNT,
            f"{request.provider} did not say which account granted; it cannot be checked",
        )
    known = {value.casefold() for value in (account.id, account.name) if value}
    granted_as = account.name or account.id
    expected = request.expected_account
    if expected and expected.casefold() not in known:
        return ErrorReply.of(
            ErrorCode.WRONG_ACCOUNT,
            f"the grant came from {granted_as}, not {expected}: sign in to {request.provider} as {expected}"
            " and connect again",
        )
    domain = request.expected_domain
    if domain and not any(value.endswith("@" + domain.casefold()) for value in known):
        return ErrorReply.of(
            ErrorCode.WRONG_ACCOUNT,
            f"the grant came from {granted_as}, not an account of {domain}: sign in to {request.provider}"
            f" with your {domain} account and connect again",
        )
    return None
