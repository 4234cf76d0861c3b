"""The proxy's pure rules: upstream URLs and hosts, headers, audit paths and excerpt redaction; and
the catalogue's `api` section."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from grantline.providers.catalogue import load_catalogue, parse_definition
from grantline.proxy.domain.audit_fields import audit_path, redact_text, redacted_headers, response_excerpt
from grantline.proxy.domain.upstream import (
    UpstreamRefused,
    build_target,
    downstream_headers,
    redirect_target,
    upstream_headers,
)

CATALOGUE = load_catalogue()


def test_templated_base_urls_and_other_hosts() -> None:
    shopify = CATALOGUE.get("shopify")
    target = build_target(shopify, {"shop": "my-store"}, "2024-10/products.json", "limit=5")
    assert target.url == "https://my-store.myshopify.com/admin/api/2024-10/products.json?limit=5"
    atlassian = CATALOGUE.get("atlassian")
    cloud = "1324a887-45db-1bf4-1e99-ef0ff456d421"
    assert build_target(atlassian, {"cloud_id": cloud}, "rest/api/3/myself", "").url == (
        f"https://api.atlassian.com/ex/jira/{cloud}/rest/api/3/myself"
    )
    google = CATALOGUE.get("google")
    gmail = build_target(google, {}, "gmail/v1/users/me/messages", "", host="gmail.googleapis.com")
    assert gmail.url == "https://gmail.googleapis.com/gmail/v1/users/me/messages"
    with pytest.raises(UpstreamRefused) as refused:
        build_target(google, {}, "x", "", host="evil.test")
    assert refused.value.code == "host_not_allowed"
    with pytest.raises(UpstreamRefused) as missing:
        build_target(shopify, {}, "x", "")
    assert missing.value.code == "connection_settings"
    with pytest.raises(UpstreamRefused) as bad_value:
        build_target(shopify, {"shop": "evil.test/x"}, "x", "")  # the setting's pattern refuses it
    assert bad_value.value.code == "connection_settings"


@pytest.mark.parametrize(
    "path", ["../x", "a/../../x", "a/./b", "%2e%2e/x", "a%2Fb", "a%5cb", "a\\b", "a b", ".."]
)
def test_paths_cannot_climb_out_of_the_base(path: str) -> None:
    cloud = "1324a887-45db-1bf4-1e99-ef0ff456d421"
    with pytest.raises(UpstreamRefused) as refused:
        build_target(CATALOGUE.get("atlassian"), {"cloud_id": cloud}, path, "")
    assert refused.value.code == "invalid_path"


def test_redirects_stay_on_the_providers_hosts() -> None:
    target = build_target(CATALOGUE.get("github"), {}, "repos/a/b/tarball", "")
    assert redirect_target(target.url, "/x", target.origins) == "https://api.github.com/x"
    assert redirect_target(target.url, "https://uploads.github.com/y", target.origins).endswith("/y")
    for location in (
        "https://codeload.github.com/a",
        "http://api.github.com/x",
        "https://api.github.com:8443/",
    ):
        with pytest.raises(UpstreamRefused):
            redirect_target(target.url, location, target.origins)


def test_headers_lose_credentials_cookies_and_hop_by_hop_fields() -> None:
    api = CATALOGUE.get("shopify").api
    assert api is not None
    sent = upstream_headers(
        [
            ("Authorization", "Bearer grant"),
            ("Cookie", "a=b"),
            ("Connection", "keep-alive, X-Drop"),
            ("X-Drop", "1"),
            ("Grantline-Tool", "t"),
            ("X-Shopify-Access-Token", "spoofed"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("Accept", "application/json"),
        ],
        api,
        "tok",
    )
    assert sent == {"Accept": "application/json", "X-Shopify-Access-Token": "tok"}
    back = downstream_headers(
        [("Set-Cookie", "s=1"), ("Transfer-Encoding", "chunked"), ("Link", "<a>"), ("Link", "<b>")]
    )
    assert back == [("Link", "<a>"), ("Link", "<b>")]


def test_audit_paths_keep_ids_and_drop_query_values() -> None:
    assert (
        audit_path("/repos/acme/app/issues/42", "state=open&q=password123")
        == "/repos/acme/app/issues/42?state=&q="
    )
    assert audit_path("/x", "") == "/x"


def test_excerpts_and_headers_are_redacted() -> None:
    token = "sbx_at_CANARY_abcdefghijklmnop"
    body = (
        b'{"id": 1, "access_token": "opaque-value-1", "refresh_token": "x", "note": "Bearer abcdefghijk", '
        b'"mine": "' + token.encode() + b'", "client_secret": "cut-off-mid-val'
    )
    text = response_excerpt(body, 4096, [token])
    for secret in ("opaque-value-1", token, "abcdefghijk", "cut-off-mid-val"):
        assert secret not in text
    assert '"id": 1' in text
    assert response_excerpt(b"x" * 100, 10) == "x" * 10
    headers = redacted_headers(
        [("Set-Cookie", "s=1"), ("X-Api-Token", "v"), ("Content-Type", "application/json")]
    )
    assert headers == {
        "set-cookie": "[redacted]",
        "x-api-token": "[redacted]",
        "content-type": "application/json",
    }
    assert redact_text("ghp_" + "a" * 36) == "[redacted]"


def _definition(**api: object) -> dict[str, object]:
    return {
        "id": "acme",
        "name": "Acme",
        "category": "testing",
        "auth": "oauth2",
        "oauth": {"authorize_url": "https://acme.test/a", "token_url": "https://acme.test/t"},
        "api": api,
    }


def test_the_api_section_is_validated() -> None:
    parse_definition(
        _definition(base_url="https://api.acme.test", token_header="X-Acme-Key", token_format="{token}")
    )
    for bad in (
        {"base_url": "https://{tenant}.acme.test"},  # undeclared template variable
        {"base_url": "https://api.acme.test", "token_format": "Bearer"},
        {"base_url": "https://api.acme.test", "token_header": "Host"},
        {"base_url": "https://api.acme.test", "headers": {"Cookie": "x"}},
        {"base_url": "https://api.acme.test", "check_path": "../me"},
    ):
        with pytest.raises((ValidationError, ValueError)):
            parse_definition(_definition(**bad))


def test_catalogue_providers_with_an_api_section() -> None:
    with_api = {d.id for d in CATALOGUE.providers() if d.api is not None}
    assert {"github", "google", "slack", "shopify", "atlassian"} <= with_api
    sandbox = load_catalogue(sandbox_url="http://127.0.0.1:1")
    assert {"sandbox", "sandbox_github", "sandbox_api_key"} <= {d.id for d in sandbox.providers() if d.api}
