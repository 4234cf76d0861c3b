"""`grantline dev` sets the sandbox app up through the public API, and asks again while the stack warms up.

CI once saw the gateway answer 503 (the vault had not answered in time on a loaded machine) and the
whole start-up end there. A real HTTP server here plays that gateway.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fixtures.http_servers import serving

from grantline.cli import dev_sandbox


class _Gateway(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[str] = []

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen.append(self.path)
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def gateway() -> Iterator[str]:
    _Gateway.seen = []
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)) as url:
        yield url


def test_a_gateway_still_warming_up_is_asked_again(gateway: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev_sandbox.time, "sleep", lambda seconds: None)
    _Gateway.answers = [503, 504]
    dev_sandbox._send("PUT", f"{gateway}/v1/provider-apps/sandbox", {"client_id": "grantline-dev"})
    assert _Gateway.seen == ["/v1/provider-apps/sandbox"] * 3


def test_a_refusal_is_not_retried(gateway: str) -> None:
    _Gateway.answers = [401]
    with pytest.raises(urllib.error.HTTPError) as refused:
        dev_sandbox._send("PUT", f"{gateway}/v1/provider-apps/sandbox", {"client_id": "grantline-dev"})
    assert refused.value.code == 401 and len(_Gateway.seen) == 1


def test_it_gives_up_after_its_deadline(gateway: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev_sandbox, "RETRY_SECONDS", 0.0)
    _Gateway.answers = [503, 503]
    with pytest.raises(urllib.error.HTTPError) as unavailable:
        dev_sandbox._send("PUT", f"{gateway}/v1/provider-apps/sandbox", {"client_id": "grantline-dev"})
    assert unavailable.value.code == 503 and len(_Gateway.seen) == 1
