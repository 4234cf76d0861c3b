"""Signing and verifying run grants (PyJWT, EdDSA over Ed25519); the claims are in contract/run_grants.py.

Satisfaction holds the signing keys, the vault and the proxy only the public ones, both as JWK sets
(RFC 7517) whose keys carry ids. Rotation without downtime: publish the new public key to every
verifier, then make it the signer's active key, then drop the old public key once every grant it
signed has expired (docs/runners.md).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm
from pydantic import SecretStr

from grantline.contract.run_grants import GRANT_AUDIENCE, GRANT_ISSUER, RunGrant
from grantline.runtime.settings import KeySetError

ALGORITHM = "EdDSA"


class GrantRejected(Exception):
    """A grant that does not verify; ``reason`` is safe to tell the caller (it holds no claim value)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_key_set(name: str, *, file: Path | None, value: SecretStr | None) -> dict[str, Any] | None:
    """A JWK set from a mounted file (preferred) or a variable; None when neither is set."""
    if file is not None:
        try:
            text = Path(file).read_text()
        except OSError as error:
            raise KeySetError(f"{name}: cannot read {file} ({error.strerror})") from None
    elif value is not None:
        text = value.get_secret_value()
    else:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        raise KeySetError(f'{name} is not JSON (a JWK set: {{"keys": [...]}})') from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise KeySetError(f"{name} must be a JWK set with at least one key")
    return document


def required_key_set(
    name: str, *, file: Path | None, value: SecretStr | None, missing: str
) -> dict[str, Any]:
    """Like ``load_key_set``, but a service that cannot work without the set says so (``missing``)."""
    document = load_key_set(name, file=file, value=value)
    if document is None:
        raise KeySetError(missing)
    return document


def _ed25519_keys(document: Mapping[str, Any], name: str, *, private: bool) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for entry in document["keys"]:
        kid = entry.get("kid") if isinstance(entry, dict) else None
        if not isinstance(kid, str) or not kid:
            raise KeySetError(f"{name}: every key needs a kid")
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            raise KeySetError(f"{name}: key {kid} is not an Ed25519 (OKP) key")
        try:
            key = OKPAlgorithm.from_jwk(entry)
        except (jwt.InvalidKeyError, ValueError, TypeError):
            raise KeySetError(f"{name}: key {kid} cannot be read") from None
        if private and not isinstance(key, Ed25519PrivateKey):
            raise KeySetError(f"{name}: key {kid} has no private part")
        keys[kid] = key.public_key() if not private and isinstance(key, Ed25519PrivateKey) else key
    return keys


def new_signing_key(kid: str) -> dict[str, Any]:
    """A fresh Ed25519 private JWK with ``kid``."""
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate(), as_dict=True)
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def public_key_set(private_set: Mapping[str, Any]) -> dict[str, Any]:
    """The public JWK set of a private one (what the vault and the proxy are given)."""
    return {"keys": [{k: v for k, v in key.items() if k != "d"} for key in private_set["keys"]]}


class RunGrantSigner:
    """Issues run grants with the active key of a private JWK set."""

    def __init__(self, key_set: Mapping[str, Any], *, active_kid: str | None, ttl_seconds: int) -> None:
        keys = _ed25519_keys(key_set, "run grant signing keys", private=True)
        self._kid = active_kid or str(key_set["keys"][0]["kid"])
        if self._kid not in keys:
            raise KeySetError(f"run grant signing keys: no key with the active kid {self._kid}")
        self._key = keys[self._kid]
        self._ttl = timedelta(seconds=ttl_seconds)

    def issue(
        self,
        *,
        tenant_id: str,
        run_id: str,
        user_id: str,
        app_id: str,
        providers: Mapping[str, tuple[str, ...]],
        is_test: bool,
        now: datetime | None = None,
        tools: Mapping[str, tuple[str, ...]] | None = None,
    ) -> str:
        """A signed grant for an admitted run."""
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        grant = RunGrant(
            grant_id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            run_id=run_id,
            user_id=user_id,
            app_id=app_id,
            providers=providers,
            is_test=is_test,
            issued_at=issued,
            expires_at=issued + self._ttl,
            tools=dict(tools or {}),
        )
        return jwt.encode(grant.claims(), self._key, algorithm=ALGORITHM, headers={"kid": self._kid})


class RunGrantVerifier:
    """Verifies grants against a public JWK set; a grant seen before is not verified again.

    A run's tool calls present the same grant many times; a verified grant is remembered (by its
    exact bytes, so an altered one is verified afresh and fails) until it expires.
    """

    def __init__(
        self,
        key_set: Mapping[str, Any],
        *,
        max_lifetime_seconds: int,
        leeway_seconds: int = 5,
        cache_size: int = 65_536,
    ) -> None:
        self._keys = _ed25519_keys(key_set, "run grant verification keys", private=False)
        self._max_lifetime = max_lifetime_seconds
        self._leeway = leeway_seconds
        self._cache: OrderedDict[str, tuple[RunGrant, float]] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str, *, now: float | None = None) -> RunGrant:
        """The grant's claims; raises ``GrantRejected`` for anything that is not a valid, current grant."""
        moment = time.time() if now is None else now
        cached = self._cache.get(token)
        if cached is not None:
            grant, expires = cached
            if moment > expires + self._leeway:
                del self._cache[token]
                raise GrantRejected("the run grant has expired")
            return grant
        grant = self._verify(token, moment)
        self._cache[token] = (grant, grant.expires_at.timestamp())
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return grant

    def _verify(self, token: str, moment: float) -> RunGrant:
        key: Ed25519PublicKey | None = self._keys.get(_key_id(token))

        if key is None:
            raise GrantRejected("the run grant is signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=GRANT_AUDIENCE,
                issuer=GRANT_ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "jti", "sub", "iss", "aud"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise GrantRejected("the run grant has expired") from None
        except jwt.InvalidSignatureError:
            raise GrantRejected("the run grant's signature does not verify") from None
        except jwt.InvalidTokenError as error:
            raise GrantRejected(f"the run grant is invalid ({type(error).__name__})") from None
        try:
            grant = RunGrant.from_claims(claims)
        except ValueError as error:
            raise GrantRejected(f"the run grant is malformed: {error}") from None
        lifetime = (grant.expires_at - grant.issued_at).total_seconds()
        if lifetime > self._max_lifetime or grant.issued_at.timestamp() > moment + self._leeway:
            raise GrantRejected("the run grant's lifetime is longer than this service accepts")
        return grant


def _key_id(token: str) -> str:
    """The ``kid`` of a JWT's header, only to pick the key: PyJWT then parses and checks the whole
    token strictly. Reading it here costs a fifth of ``jwt.get_unverified_header`` (which validates
    every character), a tenth of a verification."""
    header = token.split(".", 1)[0]
    try:
        kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid")
    except (ValueError, AttributeError):
        raise GrantRejected("the run grant is not a JWT") from None
    if not isinstance(kid, str):
        raise GrantRejected("the run grant is signed with an unknown key")
    return kid
