"""Token responses in the shapes providers document, and the requests that produce them."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from grantline.providers.catalogue import load_catalogue
from grantline.providers.token_response import (
    TokenResponseError,
    account_from_userinfo,
    build_revocation_request,
    build_token_request,
    build_userinfo_request,
    parse_token_response,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def secret(value):
    return value.get_secret_value() if value is not None else None


def test_slack_user_token_is_read_from_authed_user(catalogue):
    body = {
        "ok": True,
        "access_token": "xoxb-bot-token",
        "token_type": "bot",
        "scope": "commands",
        "bot_user_id": "U0BOT",
        "app_id": "A0APP",
        "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
        "authed_user": {
            "id": "U1234",
            "scope": "channels:read,chat:write",
            "access_token": "xoxp-user-token",
            "token_type": "user",
        },
    }
    tokens = parse_token_response(catalogue.get("slack"), body, now=NOW)
    assert secret(tokens.access_token) == "xoxp-user-token"
    assert tokens.scopes == ("channels:read", "chat:write")
    assert tokens.token_type == "user"
    assert tokens.account.id == "U1234" and tokens.account.name == "Slack Softball Team"
    assert tokens.expires_at is None  # no rotation: Slack tokens do not expire
    assert tokens.refresh_token is None


def test_slack_rotating_refresh_reads_the_top_level(catalogue):
    definition = catalogue.get("slack")
    first = parse_token_response(
        definition,
        {
            "ok": True,
            "authed_user": {
                "id": "U1",
                "access_token": "xoxe.xoxp-1",
                "refresh_token": "xoxe-1-a",
                "expires_in": 43200,
                "scope": "chat:write",
            },
        },
        now=NOW,
    )
    assert first.expires_at == NOW + timedelta(seconds=43200)
    refreshed = parse_token_response(
        definition,
        {
            "ok": True,
            "access_token": "xoxe.xoxp-2",
            "refresh_token": "xoxe-1-b",
            "expires_in": 43200,
            "token_type": "user",
        },
        now=NOW,
        previous=first,
    )
    assert secret(refreshed.access_token) == "xoxe.xoxp-2"
    assert refreshed.refresh_token_rotated
    assert refreshed.account.id == "U1"  # kept from the grant


def test_slack_errors_arrive_with_http_200(catalogue):
    with pytest.raises(TokenResponseError) as caught:
        parse_token_response(catalogue.get("slack"), {"ok": False, "error": "invalid_code"}, now=NOW)
    assert caught.value.error == "invalid_code"


def test_slack_mcp_token_is_top_level(catalogue):
    body = {
        "ok": True,
        "access_token": "xoxp-mcp",
        "token_type": "user",
        "scope": "search:read.public,chat:write",
        "user_id": "U77",
        "team": {"id": "T1", "name": "Team"},
        "refresh_token": "xoxe-r",
        "expires_in": 43200,
    }
    tokens = parse_token_response(catalogue.get("slack_mcp"), body, now=NOW)
    assert secret(tokens.access_token) == "xoxp-mcp"
    assert tokens.account.id == "U77"
    assert tokens.scopes == ("search:read.public", "chat:write")


def test_google_refresh_without_refresh_token_keeps_the_old_one(catalogue):
    definition = catalogue.get("google")
    granted = parse_token_response(
        definition,
        {
            "access_token": "ya29.a",
            "expires_in": 3599,
            "refresh_token": "1//rt",
            "scope": "openid email",
            "token_type": "Bearer",
            "id_token": "eyJ.x.y",
        },
        now=NOW,
    )
    assert secret(granted.id_token) == "eyJ.x.y"
    later = NOW + timedelta(hours=1)
    refreshed = parse_token_response(
        definition,
        {"access_token": "ya29.b", "expires_in": 3599, "scope": "openid email", "token_type": "Bearer"},
        now=later,
        previous=granted,
    )
    assert secret(refreshed.refresh_token) == "1//rt"
    assert not refreshed.refresh_token_rotated
    assert refreshed.expires_at == later + timedelta(seconds=3599)


def test_github_tokens_never_expire(catalogue):
    tokens = parse_token_response(
        catalogue.get("github"),
        {"access_token": "gho_abc", "scope": "repo,gist", "token_type": "bearer"},
        now=NOW,
    )
    assert tokens.expires_at is None and tokens.refresh_token is None
    assert tokens.scopes == ("repo", "gist")


@pytest.mark.parametrize("provider", ["hubspot", "asana"])
def test_rotating_providers_report_rotation(catalogue, provider):
    definition = catalogue.get(provider)
    assert definition.refresh.rotating
    first = parse_token_response(
        definition, {"access_token": "a1", "refresh_token": "r1", "expires_in": 1800}, now=NOW
    )
    second = parse_token_response(
        definition, {"access_token": "a2", "refresh_token": "r2", "expires_in": 1800}, now=NOW, previous=first
    )
    assert secret(second.refresh_token) == "r2" and second.refresh_token_rotated


def test_hubspot_reports_hub_and_scopes_list(catalogue):
    body = {
        "token_type": "bearer",
        "refresh_token": "na1-rt",
        "hub_id": 62515,
        "scopes": ["oauth", "crm.objects.contacts.read"],
        "access_token": "AAA",
        "expires_in": 1800,
    }
    tokens = parse_token_response(catalogue.get("hubspot"), body, now=NOW)
    assert tokens.account.id == "62515"
    assert tokens.scopes == ("oauth", "crm.objects.contacts.read")
    assert tokens.extra["hub_id"] == "62515"
    assert "refresh_token" not in tokens.extra and "access_token" not in tokens.extra


def test_asana_identity_from_data(catalogue):
    body = {
        "access_token": "0/abc",
        "expires_in": 3600,
        "token_type": "bearer",
        "refresh_token": "1/r",
        "data": {"id": 4673218951, "gid": "4673218951", "name": "Greg", "email": "greg@example.com"},
    }
    tokens = parse_token_response(catalogue.get("asana"), body, now=NOW)
    assert tokens.account.id == "4673218951" and tokens.account.name == "greg@example.com"


def test_default_lifetime_applies_when_expires_in_is_missing(catalogue):
    tokens = parse_token_response(
        catalogue.get("salesforce"),
        {"access_token": "00D!x", "instance_url": "https://na1.salesforce.com"},
        now=NOW,
    )
    assert tokens.expires_at == NOW + timedelta(seconds=7200)
    assert tokens.extra["instance_url"] == "https://na1.salesforce.com"


def test_microsoft_refresh_token_lifetime_is_known(catalogue):
    tokens = parse_token_response(
        catalogue.get("microsoft"),
        {"access_token": "eyJ", "refresh_token": "M.r", "expires_in": 3600},
        now=NOW,
    )
    assert tokens.refresh_token_expires_at == NOW + timedelta(days=90)


def test_notion_identity_from_owner(catalogue):
    body = {
        "access_token": "ntn_x",
        "token_type": "bearer",
        "bot_id": "b",
        "workspace_name": "Acme",
        "owner": {"type": "user", "user": {"id": "user-1", "object": "user"}},
    }
    tokens = parse_token_response(catalogue.get("notion"), body, now=NOW)
    assert tokens.account.id == "user-1" and tokens.account.name == "Acme"


def test_scopes_fall_back_to_the_request(catalogue):
    tokens = parse_token_response(
        catalogue.get("discord"),
        {"access_token": "d", "expires_in": 604800},
        now=NOW,
        requested_scopes=["identify"],
    )
    assert tokens.scopes == ("identify",)


def test_errors_expose_the_code_but_not_secrets(catalogue):
    with pytest.raises(TokenResponseError) as caught:
        parse_token_response(
            catalogue.get("google"),
            {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
            now=NOW,
        )
    assert caught.value.error == "invalid_grant" and caught.value.is_invalid_grant
    assert "invalid_grant" in str(caught.value)
    with pytest.raises(TokenResponseError, match="no access_token at authed_user"):
        parse_token_response(catalogue.get("slack"), {"ok": True, "refresh_token": "xoxe-secret"}, now=NOW)


def test_token_set_repr_hides_tokens(catalogue):
    tokens = parse_token_response(
        catalogue.get("discord"), {"access_token": "very-secret", "refresh_token": "also-secret"}, now=NOW
    )
    assert "very-secret" not in repr(tokens) and "also-secret" not in repr(tokens)
    assert "very-secret" not in tokens.model_dump_json()


def test_code_exchange_request_with_body_client_auth(catalogue):
    url, headers, body, body_format = build_token_request(
        catalogue.get("google"),
        "authorization_code",
        client_id="cid",
        client_secret="csecret",
        code="4/abc",
        redirect_uri="https://cb",
        code_verifier="v" * 43,
    )
    assert url == "https://oauth2.googleapis.com/token"
    assert body == {
        "grant_type": "authorization_code",
        "code": "4/abc",
        "redirect_uri": "https://cb",
        "code_verifier": "v" * 43,
        "client_id": "cid",
        "client_secret": "csecret",
    }
    assert body_format == "form" and headers["Accept"] == "application/json"


def test_notion_uses_basic_auth_and_json(catalogue):
    request = build_token_request(
        catalogue.get("notion"),
        "authorization_code",
        client_id="cid",
        client_secret="sec",
        code="c",
        redirect_uri="https://cb",
    )
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"cid:sec").decode()
    assert request.body_format == "json" and "client_secret" not in request.body
    assert "sec" not in repr(request)
    json.dumps(request.body)


def test_refresh_request_and_figma_refresh_endpoint(catalogue):
    request = build_token_request(
        catalogue.get("figma"), "refresh_token", client_id="cid", client_secret="s", refresh_token="rt"
    )
    assert request.url == "https://api.figma.com/v1/oauth/refresh"
    assert request.body["refresh_token"] == "rt"


def test_templated_token_url_and_token_params(catalogue):
    request = build_token_request(
        catalogue.get("shopify"),
        "authorization_code",
        client_id="c",
        client_secret="s",
        code="x",
        redirect_uri="https://cb",
        settings={"shop": "my-store"},
    )
    assert request.url == "https://my-store.myshopify.com/admin/oauth/access_token"
    asana_mcp = build_token_request(
        catalogue.get("asana_mcp"), "refresh_token", client_id="c", client_secret="s", refresh_token="r"
    )
    assert asana_mcp.body["resource"] == "https://mcp.asana.com/v2"


def test_revocation_requests(catalogue):
    google = build_revocation_request(
        catalogue.get("google"), token="rt", token_type_hint="refresh_token", client_id="c", client_secret="s"
    )
    assert google.url == "https://oauth2.googleapis.com/revoke" and google.body["token"] == "rt"
    assert "token_type_hint" not in google.body
    gitlab = build_revocation_request(
        catalogue.get("gitlab"), token="rt", token_type_hint="refresh_token", client_id="c", client_secret="s"
    )
    assert gitlab.body["token_type_hint"] == "refresh_token"
    github = build_revocation_request(
        catalogue.get("github"), token="gho", token_type_hint=None, client_id="abc", client_secret="s"
    )
    assert github.method == "DELETE" and github.url == "https://api.github.com/applications/abc/grant"
    assert github.body == {"access_token": "gho"} and github.headers["Authorization"].startswith("Basic ")
    slack = build_revocation_request(
        catalogue.get("slack"), token="xoxp", token_type_hint=None, client_id="c", client_secret="s"
    )
    assert slack.headers["Authorization"] == "Bearer xoxp" and slack.body is None
    assert (
        build_revocation_request(
            catalogue.get("hubspot"), token="t", token_type_hint=None, client_id="c", client_secret="s"
        )
        is None
    )


def test_userinfo_request_and_account(catalogue):
    github = catalogue.get("github")
    request = build_userinfo_request(github, "gho_x")
    assert request.method == "GET" and request.headers["Authorization"] == "Bearer gho_x"
    account = account_from_userinfo(github, {"id": 583231, "login": "octocat"})
    assert account.id == "583231" and account.name == "octocat"
