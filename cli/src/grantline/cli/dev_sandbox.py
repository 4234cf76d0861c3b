"""The dev tenant's sandbox provider app, made ready by ``grantline dev`` so the first connect works.

Without it a newcomer's first call fails with ``provider_app_missing``. The sandbox forgets its clients
when it stops, so every start registers the client again, with the same id and the secret kept (0600)
under the data directory, and gives it to Grantline through the public API as any platform would.
Runs in the supervisor, which imports no HTTP client library: the standard library's is enough here.
"""

import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path

from grantline.cli.dev_credentials import write_private

SANDBOX_PROVIDER = "sandbox"
SANDBOX_CLIENT_ID = "grantline-dev"
SANDBOX_SCOPES = ["profile", "read"]


def _sandbox_client_secret(root: Path) -> str:
    path = root / "sandbox-client-secret"
    if not path.exists():
        write_private(path, "sbx_dev_" + secrets.token_urlsafe(32))
    return path.read_text().strip()


# Both calls are idempotent (the same client and app every time), so a stack still warming up on a busy
# machine (the gateway answering 503 because the vault did not answer in time) is simply asked again.
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_SECONDS = 60.0


def _send(method: str, url: str, body: dict[str, object], headers: dict[str, str] | None = None) -> None:
    request = urllib.request.Request(  # noqa: S310 - loopback URLs of the stack this process started
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    deadline = time.monotonic() + RETRY_SECONDS
    delay = 0.5
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                response.read()
            return
        except urllib.error.HTTPError as error:
            if error.code not in RETRY_STATUSES or time.monotonic() + delay > deadline:
                raise
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def ensure_sandbox_app(root: Path, api_url: str, api_key: str, sandbox_url: str) -> dict[str, object]:
    """Register the dev client at the sandbox and set it as the dev tenant's ``sandbox`` provider app.

    Returns what dev.json says about it (never the client secret).
    """
    client_secret = _sandbox_client_secret(root)
    _send(
        "POST",
        f"{sandbox_url}/_sandbox/clients",
        {
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": client_secret,
            "redirect_uris": [f"{api_url}/v1/oauth/callback"],
        },
    )
    _send(
        "PUT",
        f"{api_url}/v1/provider-apps/{SANDBOX_PROVIDER}",
        {"client_id": SANDBOX_CLIENT_ID, "client_secret": client_secret, "scopes": SANDBOX_SCOPES},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    return {"provider": SANDBOX_PROVIDER, "client_id": SANDBOX_CLIENT_ID, "scopes": SANDBOX_SCOPES}
