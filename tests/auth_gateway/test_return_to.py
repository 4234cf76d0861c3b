"""return_to allow-listing: a table of good and evil URLs, and outcome parameters."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from grantline.auth_gateway.domain.return_to import (
    ReturnToError,
    check_return_to,
    registered_origin,
    with_outcome,
)

ALLOW = [
    "https://app.example.com",
    "https://portal.example.com/settings/connections",
    "http://localhost:3000",
    "https://bücher.example/konto/",
    "https://[2001:db8::1]:8443/cb",
]

GOOD = [
    # (given, canonical form returned)
    ("https://app.example.com", "https://app.example.com"),
    ("https://app.example.com/", "https://app.example.com/"),
    ("https://app.example.com/done?tab=1#top", "https://app.example.com/done?tab=1#top"),
    ("HTTPS://APP.Example.COM/Done", "https://app.example.com/Done"),  # host is case-insensitive, path is not
    ("https://app.example.com:443/x", "https://app.example.com/x"),  # default port is the same origin
    ("https://portal.example.com/settings/connections", "https://portal.example.com/settings/connections"),
    ("https://portal.example.com/settings/connections/", "https://portal.example.com/settings/connections/"),
    (
        "https://portal.example.com/settings/connections/google?x=1",
        "https://portal.example.com/settings/connections/google?x=1",
    ),
    ("http://localhost:3000/after", "http://localhost:3000/after"),
    ("https://xn--bcher-kva.example/konto/1", "https://xn--bcher-kva.example/konto/1"),  # IDNA either way
    ("https://BÜCHER.example/konto", "https://xn--bcher-kva.example/konto"),
    ("https://app.example.com/caf%C3%A9", "https://app.example.com/caf%C3%A9"),
    (
        "https://app.example.com/café",
        "https://app.example.com/caf%C3%A9",
    ),  # re-encoded for the Location header
    ("https://[2001:db8:0::1]:8443/cb/x", "https://[2001:db8::1]:8443/cb/x"),
]

EVIL = [
    ("https://evil.example.com/", "allow-list"),
    ("https://app.example.com.evil.com/", "allow-list"),
    ("https://evilapp.example.com/", "allow-list"),
    ("https://app.example.com@evil.com/", "user information"),
    ("https://evil.com@app.example.com/", "user information"),
    ("https://app.example.com:443@evil.com/", "user information"),
    ("https://user:pass@app.example.com/", "user information"),
    ("https://evil.com\\@app.example.com/", "backslash"),
    ("https://app.example.com\\.evil.com/", "backslash"),
    ("https:\\\\evil.com", "backslash"),
    ("//evil.com/", "protocol-relative"),
    ("//app.example.com/", "protocol-relative"),
    ("/relative/path", "http or https"),
    ("javascript:alert(document.domain)", "http or https"),
    ("JavaScript://app.example.com/%0aalert(1)", "http or https"),
    ("data:text/html,<script>alert(1)</script>", "http or https"),
    ("ftp://app.example.com/", "http or https"),
    ("https:evil.com", "no host"),
    ("https:///evil.com", "no host"),
    ("https://app.example.com/\r\nSet-Cookie: a=b", "whitespace or control"),
    ("https://app.example.com/%0d%0a", None),  # encoded CR/LF stays encoded: allowed, see below
    ("https://app.example.com\n.evil.com/", "whitespace or control"),
    ("java\tscript:alert(1)", "whitespace or control"),
    (" https://app.example.com/", "whitespace or control"),
    ("https://app.example.com/\x00", "whitespace or control"),
    ("http://app.example.com/", "allow-list"),  # scheme is part of the origin
    ("https://app.example.com:8443/", "allow-list"),  # so is the port
    ("https://app.example.com:99999/", "invalid port"),
    ("https://app.example.com:abc/", "invalid port"),
    ("https://portal.example.com/settings/connectionsX", "allow-list"),  # not a segment boundary
    ("https://portal.example.com/settings", "allow-list"),  # above the prefix
    ("https://portal.example.com/", "allow-list"),
    ("https://portal.example.com/settings/connections/../../admin", "dot segments"),
    ("https://portal.example.com/settings/connections/%2e%2e/%2E%2E/admin", "dot segments"),
    ("https://portal.example.com/settings/connections%2f..%2fadmin", "encoded slashes"),
    ("https://app.example.com./", "end with a dot"),
    ("https://%61pp.example.com/", "domain name"),
    ("https://[::1/", "not a valid URL"),
    ("https://app.example.com/" + "a" * 2100, "longer than"),
    ("", "empty"),
]


@pytest.mark.parametrize(("url", "expected"), GOOD)
def test_allowed_return_to(url: str, expected: str) -> None:
    assert check_return_to(url, ALLOW) == expected


@pytest.mark.parametrize(("url", "why"), [case for case in EVIL if case[1] is not None])
def test_refused_return_to(url: str, why: str) -> None:
    with pytest.raises(ReturnToError, match=why):
        check_return_to(url, ALLOW)


def test_encoded_crlf_stays_encoded() -> None:
    # Percent-encoded bytes cannot split a header; they must come back still encoded.
    assert check_return_to("https://app.example.com/%0d%0a", ALLOW) == "https://app.example.com/%0d%0a"


def test_empty_allow_list_refuses_everything() -> None:
    with pytest.raises(ReturnToError, match="allow-list"):
        check_return_to("https://app.example.com/", [])


@pytest.mark.parametrize(
    "entry",
    ["javascript:alert(1)", "//app.example.com", "https://a@app.example.com", "https://app.example.com/?x=1"],
)
def test_broken_allow_list_entries_are_reported(entry: str) -> None:
    with pytest.raises(ReturnToError, match="allow-list entry"):
        check_return_to("https://app.example.com/", [entry])


def test_allow_list_entry_with_trailing_slash_is_a_prefix() -> None:
    assert (
        check_return_to("https://x.example.com/a/b", ["https://x.example.com/a/"])
        == "https://x.example.com/a/b"
    )
    with pytest.raises(ReturnToError):
        check_return_to("https://x.example.com/ab", ["https://x.example.com/a/"])


# --- with_outcome ---------------------------------------------------------------------------


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_with_outcome_appends_params() -> None:
    url = with_outcome(
        "https://app.example.com/done", status="connected", connection_id="conn-1", provider="google"
    )
    assert url == "https://app.example.com/done?status=connected&connection_id=conn-1&provider=google"


def test_with_outcome_preserves_existing_params_and_fragment() -> None:
    url = with_outcome(
        "https://app.example.com/done?tab=2&empty=#section", status="error", error="access_denied"
    )
    assert query_of(url) == [("tab", "2"), ("empty", ""), ("status", "error"), ("error", "access_denied")]
    assert urlsplit(url).fragment == "section"


def test_with_outcome_replaces_a_preset_outcome() -> None:
    url = with_outcome("https://app.example.com/?status=connected&x=1", status="error", error="expired_state")
    assert query_of(url) == [("x", "1"), ("status", "error"), ("error", "expired_state")]


def test_with_outcome_skips_none_and_encodes_values() -> None:
    url = with_outcome("https://app.example.com/", status="error", connection_id=None, error="a b&c=d")
    assert query_of(url) == [("status", "error"), ("error", "a b&c=d")]
    assert "connection_id" not in url


def test_checked_then_decorated_url_stays_allowed() -> None:
    url = with_outcome(
        check_return_to("https://portal.example.com/settings/connections/x?y=1", ALLOW), status="ok"
    )
    assert check_return_to(url, ALLOW) == url


def test_the_returned_url_is_the_one_that_was_checked() -> None:
    # IDNA 2003 maps "ß" to "ss" where browsers (UTS 46) keep it; returning the rebuilt ASCII host
    # means the browser goes where we checked, whatever mapping it would have applied itself.
    assert check_return_to("https://faß.example/x", ["https://fass.example"]) == "https://fass.example/x"


# -- the connect widget's opener origin ------------------------------------------------------------------

REGISTERED = ["https://app.example.com/settings", "http://127.0.0.1:*"]


@pytest.mark.parametrize(
    ("origin", "canonical"),
    [
        ("https://app.example.com", "https://app.example.com"),  # the entry's path does not matter
        ("https://APP.example.com:443", "https://app.example.com"),
        ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
    ],
)
def test_a_registered_origin_is_given_back_in_canonical_form(origin: str, canonical: str) -> None:
    assert registered_origin(origin, REGISTERED) == canonical


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://app.example.com",  # another scheme
        "https://app.example.com:8443",  # another port
        "https://app.example.com.evil.com",
        "https://app.example.com/settings",  # not an origin
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "null",
        "*",
        "",
    ],
)
def test_anything_else_is_not_a_registered_origin(origin: str) -> None:
    with pytest.raises(ReturnToError):
        registered_origin(origin, REGISTERED)
