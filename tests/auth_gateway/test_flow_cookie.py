"""The flow cookie's attributes and what the callback reads of it (no I/O)."""

from starlette.requests import Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.flow_cookie import (
    binding_of,
    browser_value,
    presented_binding,
    set_flow_cookie,
)


def _request(scheme: str, cookie: str = "") -> Request:
    headers = [(b"host", b"gateway.example")] + ([(b"cookie", cookie.encode())] if cookie else [])
    return Request({"type": "http", "scheme": scheme, "path": "/", "headers": headers, "query_string": b""})


def test_over_https_the_cookie_is_host_prefixed_secure_httponly_lax_on_the_whole_site():
    response = Response()
    value = browser_value(_request("https"), "https://gateway.example")
    set_flow_cookie(_request("https"), response, value, "https://gateway.example")
    header = response.headers["set-cookie"]
    assert header.startswith(f"__Host-grantline_flow={value};")
    for attribute in ("HttpOnly", "Path=/;", "SameSite=lax", "Secure", "Max-Age=600"):
        assert attribute in header
    assert "Domain" not in header
    assert value not in binding_of(value) and len(binding_of(value)) == 64


def test_the_callback_reads_only_the_cookie_for_its_scheme_and_refuses_junk():
    value = browser_value(_request("https"), "https://gateway.example")
    held = _request("https", f"__Host-grantline_flow={value}")
    assert presented_binding(held, "https://gateway.example") == binding_of(value)
    assert browser_value(held, "https://gateway.example") == value  # one value for every flow it runs
    # Over https a cookie without the prefix could have been planted by a sibling domain: ignored.
    planted = _request("https", f"grantline_flow={value}")
    assert presented_binding(planted, "https://gateway.example") is None
    junk = _request("https", "__Host-grantline_flow=short")
    assert presented_binding(junk, "https://gateway.example") is None
    plain = _request("http", f"grantline_flow={value}")
    assert presented_binding(plain, "http://127.0.0.1:8080") == binding_of(value)
