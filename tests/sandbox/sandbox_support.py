"""Helpers shared by the sandbox tests; a distinct module name so it never shadows another conftest."""

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx

from grantline.providers.authorize import build_authorize_url, code_challenge_s256, new_code_verifier
from grantline.providers.token_response import build_token_request, parse_token_response

SANDBOX_URL = "http://sandbox.test"
REDIRECT_URI = "https://grantline.test/v1/oauth/callback"
CLIENT_ID = "grantline-dev"
CLIENT_SECRET = "sbx-secret-for-tests"


class FakeClock:
    """A clock tests move forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def query_of(response: httpx.Response) -> dict[str, str]:
    """The query of a redirect's Location, one value per key."""
    assert response.status_code == 302, response.text
    return {key: values[0] for key, values in parse_qs(urlsplit(response.headers["location"]).query).items()}


@dataclass
class Flow:
    """Drives the sandbox with the same library calls the gateway and the vault make."""

    http: httpx.AsyncClient
    catalogue: object

    def definition(self, provider: str):
        return self.catalogue.get(provider)  # type: ignore[attr-defined]

    async def authorize(self, provider: str, *, scopes=None, pkce=True, extra: str = "", verifier=None):
        definition = self.definition(provider)
        verifier = verifier or new_code_verifier()
        challenge = code_challenge_s256(verifier) if pkce and definition.oauth.pkce != "none" else None
        url = build_authorize_url(
            definition,
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT_URI,
            scopes=scopes,
            state="st-1",
            code_challenge=challenge,
        )
        response = await self.http.get(url + extra)
        return response, verifier if challenge else None

    async def send(self, request):
        url, headers, body, body_format = request
        if body_format == "json":
            return await self.http.post(url, headers=headers, json=body)
        return await self.http.post(url, headers=headers, data=body)

    async def exchange(self, provider: str, code: str, verifier: str | None, **overrides):
        request = build_token_request(
            self.definition(provider),
            "authorization_code",
            client_id=CLIENT_ID,
            client_secret=overrides.pop("client_secret", CLIENT_SECRET),
            code=code,
            redirect_uri=overrides.pop("redirect_uri", REDIRECT_URI),
            code_verifier=verifier,
        )
        return await self.send(request)

    async def refresh(self, provider: str, refresh_token: str):
        request = build_token_request(
            self.definition(provider),
            "refresh_token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token=refresh_token,
        )
        return await self.send(request)

    async def connect(self, provider: str, *, scopes=None, extra: str = ""):
        """Authorize, exchange, parse: the TokenSet a vault would store."""
        response, verifier = await self.authorize(provider, scopes=scopes, extra=extra)
        code = query_of(response)["code"]
        reply = await self.exchange(provider, code, verifier)
        assert reply.status_code == 200, reply.text
        return parse_token_response(
            self.definition(provider), reply.json(), now=datetime.now(UTC), requested_scopes=scopes
        )
