"""Sandbox profiles: one per quirk of a real provider, mirrored by `catalogue/sandbox/*.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Scopes every OAuth profile knows; anything else is `invalid_scope`, as at a real provider.
KNOWN_SCOPES = frozenset({"profile", "read", "write", "offline_access"})


@dataclass(frozen=True, slots=True)
class Profile:
    """How one sandbox profile behaves at its authorize, token, revoke and userinfo endpoints."""

    name: str
    imitates: str
    client_auth: Literal["header", "body"] = "body"
    body_format: Literal["form", "json"] = "form"
    pkce: Literal["required", "supported", "none"] = "supported"
    scope_param: Literal["scope", "user_scope", "none"] = "scope"
    scope_separator: str = " "
    # Where the user token sits in the code-exchange response ("" = top level).
    token_location: str = ""
    expires_in: int | None = 3600
    issues_refresh_token: bool = True
    # Google: a refresh token only when the authorize request said access_type=offline.
    refresh_token_needs_offline: bool = False
    # Google: refresh responses carry no refresh_token; the old one stays valid.
    refresh_omits_refresh_token: bool = False
    # Every refresh returns a new refresh token; reuse of an old one is invalid_grant.
    rotating: bool = False
    # Rotating, but a rotated-away refresh token is still accepted this long after its use (Okta's
    # grace period, Auth0's reuse interval), so a client whose answer was lost may retry it.
    rotation_grace_seconds: int = 0
    # MCP servers in the Asana style: any scope parameter is refused, `resource` is mandatory.
    rejects_scope: bool = False
    requires_resource: bool = False
    # RFC 9207: send `iss` with the authorization response.
    sends_iss: bool = True
    # GitHub: errors come back as HTTP 200 with an `error` member, and replies are form-encoded
    # unless the client accepts JSON.
    errors_with_200: bool = False
    form_reply_unless_json_accepted: bool = False
    # Slack: errors are {"ok": false, "error": ...} with HTTP 200; revoke takes the token as Bearer.
    slack_envelope: bool = False
    revoke_with_bearer: bool = False
    api_key_only: bool = False
    # Scopes this profile knows besides KNOWN_SCOPES (Atlassian's read:jira-work, ...).
    extra_scopes: frozenset[str] = frozenset()
    # Atlassian: the token lists the sites it reaches at /oauth/token/accessible-resources.
    lists_sites: bool = False


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(name="standard", imitates="RFC 6749 with PKCE and RFC 9207"),
        Profile(
            name="slack",
            imitates="slack",
            scope_param="user_scope",
            scope_separator=",",
            token_location="authed_user",
            expires_in=43200,
            rotating=True,
            sends_iss=False,
            pkce="none",
            slack_envelope=True,
            revoke_with_bearer=True,
        ),
        Profile(
            name="slack_mcp",
            imitates="slack_mcp",
            scope_separator=",",
            expires_in=43200,
            rotating=True,
            sends_iss=False,
            pkce="required",
            slack_envelope=True,
        ),
        Profile(
            name="google",
            imitates="google",
            expires_in=3599,
            refresh_token_needs_offline=True,
            refresh_omits_refresh_token=True,
        ),
        Profile(
            name="github",
            imitates="github",
            expires_in=None,
            issues_refresh_token=False,
            pkce="none",
            sends_iss=False,
            errors_with_200=True,
            form_reply_unless_json_accepted=True,
        ),
        Profile(name="rotating", imitates="hubspot, asana", client_auth="header", rotating=True),
        Profile(
            name="rotating_grace",
            imitates="okta, auth0 (rotation with a reuse grace period)",
            client_auth="header",
            rotating=True,
            rotation_grace_seconds=30,
        ),
        Profile(
            name="pkce", imitates="airtable, canva", client_auth="header", body_format="json", pkce="required"
        ),
        Profile(
            name="mcp_scopeless",
            imitates="asana_mcp",
            scope_param="none",
            rejects_scope=True,
            requires_resource=True,
            rotating=True,
        ),
        Profile(name="api_key", imitates="API-key services", api_key_only=True, pkce="none"),
        Profile(
            name="atlassian",
            imitates="atlassian",
            body_format="json",
            pkce="none",
            sends_iss=False,
            rotating=True,
            refresh_token_needs_offline=True,
            extra_scopes=frozenset({"read:me", "read:jira-work", "write:jira-work", "read:jira-user"}),
            lists_sites=True,
        ),
    )
}


def split_scopes(value: str | None) -> list[str]:
    """Scopes from a request parameter, whatever separator the client used."""
    if not value:
        return []
    return [part for part in value.replace(",", " ").split(" ") if part]
