"""A provider definition's account path must not reflect response data (a token) back to the tenant.

The external account (`account.id_path` / `name_path`) is shown in API answers, events and the audit
log. A tenant defines its own providers, so before this a definition could point the path at the
access token, or at a field holding a copy of it, and read the token back as "the account".
"""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from grantline.providers.catalogue import load_catalogue
from grantline.providers.definition import AccountIdentity
from grantline.providers.token_response import account_from_userinfo, parse_token_response

TOKEN = "at_CANARY_" + "x" * 40


@pytest.mark.parametrize(
    "path",
    ["access_token", "data.refresh_token", "client_secret", "code", "id_token", "api_key", "user.password"],
)
def test_an_account_path_naming_a_secret_field_is_refused(path: str) -> None:
    with pytest.raises(ValidationError, match="may not name a secret field"):
        AccountIdentity(source="token_response", id_path=path)
    with pytest.raises(ValidationError, match="may not name a secret field"):
        AccountIdentity(source="userinfo", id_path="id", name_path=path)


def test_an_account_value_that_is_a_secret_or_not_an_identifier_is_dropped() -> None:
    github = load_catalogue().get("github")  # userinfo: id_path "id", name_path "login"
    # A field holding a copy of the token, a whole document, a multi-line or overlong value: no account.
    body = {"id": TOKEN, "login": "octocat", "access_token": TOKEN}
    assert account_from_userinfo(github, body) is None
    assert account_from_userinfo(github, {"id": {"nested": TOKEN}, "login": "o"}) is None
    assert account_from_userinfo(github, {"id": "1\n2", "login": "o"}) is None
    assert account_from_userinfo(github, {"id": "9" * 300, "login": "o"}) is None
    named = account_from_userinfo(github, {"id": 583231, "login": TOKEN, "token": TOKEN})
    assert named is not None and named.id == "583231" and named.name is None
    # The ordinary case is unchanged.
    plain = account_from_userinfo(github, {"id": 583231, "login": "octocat"})
    assert plain is not None and (plain.id, plain.name) == ("583231", "octocat")


def test_a_token_response_account_never_carries_the_token() -> None:
    definition = load_catalogue().get("slack")  # account from the token response: authed_user.id
    path = definition.account.id_path  # type: ignore[union-attr]
    body: dict[str, object] = {"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600}
    cursor = body
    parts = path.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})  # type: ignore[assignment]
    cursor[parts[-1]] = TOKEN  # the provider (or a hostile definition's server) echoes the token there
    tokens = parse_token_response(definition, body, now=datetime.now(UTC))
    assert tokens.account is None or TOKEN not in (tokens.account.id, tokens.account.name)
