"""NATS JWTs (nats-io/jwt v2: ``alg: ed25519-nkey``) for the auth callout, on top of nats-io's nkeys.

Why by hand: the PyPI packages for NATS JWT claims are not well kept. nats-jwt 0.2.2 calls itself
"not well-tested, development stage", and nats-callout 0.1.1 pins a beta of adaptix. The format is
small: a base64url header ``{"typ":"JWT","alg":"ed25519-nkey"}``, a base64url JSON payload, and an
Ed25519 signature over ``header.payload`` by the issuer's nkey; ``jti`` is the base32 SHA-512/256 of
the standard claims. The real nats-server accepting what this writes is the test (tests/security).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import Any

import nkeys
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
LIB_VERSION = 2
# The standard claims jwt v2 hashes (in this order, empty ones left out) to make the jti.
_STANDARD_CLAIMS = ("aud", "exp", "jti", "iat", "iss", "name", "nbf", "sub")


class JwtError(ValueError):
    """A token that is malformed, badly signed, expired or from the wrong issuer."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JwtError("not base64url") from None


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _jti(claims: dict[str, Any]) -> str:
    standard = {key: claims[key] for key in _STANDARD_CLAIMS if claims.get(key) not in (None, "", 0)}
    standard.pop("jti", None)
    digest = hashlib.new("sha512_256", _json(standard)).digest()
    return base64.b32encode(digest).rstrip(b"=").decode()


def encode(claims: dict[str, Any], signer: nkeys.KeyPair, *, claim_type: str) -> str:
    """A signed jwt v2 token: ``iss``, ``iat``, ``jti`` and ``nats.type``/``version`` filled in."""
    body = dict(claims)
    body["iss"] = signer.public_key.decode()
    body["iat"] = int(time.time())
    body["jti"] = _jti(body)
    body["nats"] = {**body.get("nats", {}), "type": claim_type, "version": LIB_VERSION}
    signing_input = f"{_b64(_json(HEADER))}.{_b64(_json(body))}"
    signature = signer.sign(signing_input.encode())
    return f"{signing_input}.{_b64(signature)}"


def public_key_bytes(public_nkey: str, *, prefix: int) -> bytes:
    """The raw Ed25519 key of a public nkey, checking its role prefix and CRC (nkeys has no decoder)."""
    try:
        raw = base64.b32decode(public_nkey + "=" * (-len(public_nkey) % 8))
    except (binascii.Error, ValueError):
        raise JwtError("not an nkey") from None
    if len(raw) != 35:
        raise JwtError("not a public nkey")
    payload, checksum = raw[:-2], raw[-2:]
    if nkeys.crc16_checksum(payload) != checksum:
        raise JwtError("nkey checksum mismatch")
    if payload[0] != prefix:
        raise JwtError("nkey of the wrong kind")
    return bytes(payload[1:])


def decode_verified(token: str, *, issuer_prefix: int, now: float | None = None) -> dict[str, Any]:
    """The claims of ``token`` once its header, signature (by its ``iss``) and times check out.

    The caller still decides whether ``iss`` is an issuer it trusts.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwtError("expected three parts")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        raise JwtError("header or payload is not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("header or payload is not an object")
    if str(header.get("typ", "")).upper() != "JWT" or str(header.get("alg", "")).lower() != HEADER["alg"]:
        raise JwtError("not an ed25519-nkey JWT")
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise JwtError("no issuer")
    # PyNaCl (libsodium), which nkeys signs with: the cryptography package would add 5 MB at rest.
    key = VerifyKey(public_key_bytes(issuer, prefix=issuer_prefix))
    try:
        key.verify(f"{parts[0]}.{parts[1]}".encode(), _unb64(parts[2]))
    except BadSignatureError:
        raise JwtError("bad signature") from None
    moment = time.time() if now is None else now
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires and moment > expires:
        raise JwtError("expired")
    not_before = claims.get("nbf")
    if isinstance(not_before, int | float) and not_before and not_before > moment:
        raise JwtError("not yet valid")
    return claims


def new_account_seed() -> str:
    """A fresh account nkey seed (``SA...``): the callout issuer key."""
    import secrets

    return nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_ACCOUNT).decode()


def key_pair(seed: str) -> nkeys.KeyPair:
    """The key pair of an nkey seed."""
    try:
        return nkeys.from_seed(seed.strip().encode())
    except Exception:  # nkeys raises its own errors (and binascii's) for a bad seed
        raise JwtError("not a valid nkey seed") from None
