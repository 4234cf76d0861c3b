"""What a caller may ask of a new authorization-code flow, checked before any state is stored.

A request the provider cannot honour (too many or malformed scopes, a hint it takes no parameter
for, narrowing where grants only add up, settings outside the definition's patterns) is refused
here with the reason, rather than sending the user to the provider and failing after the grant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grantline.auth_gateway.service.problems import Problem, invalid
from grantline.providers.authorize import SettingsError, resolve_settings
from grantline.providers.definition import ProviderDefinition

_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6749 scope-token
MAX_SCOPES = 100


@dataclass(frozen=True)
class InitiateInput:
    provider: str
    return_to: str
    user_id: str | None = None
    workspace: bool = False
    scopes: list[str] | None = None
    connection_id: str | None = None
    name: str | None = None
    # This connection's own settings, over the provider app's (a second shop, another site).
    settings: dict[str, str] = field(default_factory=dict)
    # The account or email domain to grant as (providers with hint parameters only).
    login_hint: str | None = None
    domain_hint: str | None = None
    # Re-authorize `connection_id` with exactly `scopes` (fewer than it has), where the provider allows.
    narrow: bool = False
    # The tenant's named provider app (its own OAuth client) for a new connection; None: the default.
    provider_app: str | None = None


def checked_scopes(scopes: list[str]) -> list[str]:
    split = [part for scope in scopes for part in scope.split()]
    if len(split) > MAX_SCOPES:
        raise invalid(f"at most {MAX_SCOPES} scopes")
    bad = [scope for scope in split if not _SCOPE.fullmatch(scope)]
    if bad:
        raise invalid("scopes must be non-empty OAuth scope tokens")
    return list(dict.fromkeys(split))


def connection_settings(
    definition: ProviderDefinition, app_settings: dict[str, str], own: dict[str, str]
) -> dict[str, str]:
    # The app's settings are checked when saved: a failure there is the tenant's configuration, one
    # in the connection's own settings is this request's input.
    try:
        resolve_settings(definition, app_settings)
    except SettingsError as error:
        raise Problem(409, "provider_app_misconfigured", str(error)) from None
    try:
        return resolve_settings(definition, {**app_settings, **own})
    except SettingsError as error:
        raise Problem(422, "invalid_settings", str(error)) from None


def narrowed_scopes(definition: ProviderDefinition, requested: list[str] | None) -> list[str]:
    # Most providers add a re-authorization's scopes to the earlier grant: asking for fewer takes
    # nothing away there, so narrowing is offered only where the catalogue says it works.
    if not (definition.oauth and definition.oauth.scopes.narrowable):
        raise invalid(
            f"provider {definition.id!r} keeps earlier grants; revoke and connect again with fewer scopes"
        )
    if not requested:
        raise invalid("narrow needs the scopes to keep")
    return requested


def check_hints(definition: ProviderDefinition, request: InitiateInput) -> None:
    # A hint the provider cannot take would be silently dropped, and the check after the grant
    # would then refuse whoever the user happened to be signed in as.
    oauth = definition.oauth
    if request.login_hint and not (oauth and oauth.login_hint_param):
        raise invalid(f"provider {definition.id!r} takes no login hint")
    if request.domain_hint and not (oauth and oauth.domain_hint_param):
        raise invalid(f"provider {definition.id!r} takes no domain hint")
