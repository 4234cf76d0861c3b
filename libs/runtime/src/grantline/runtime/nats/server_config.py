"""The nats-server side of the permission file: users' passwords and the rendered authorization config.

Only the tools that set a server up use this (`grantline nats-config`, `grantline dev`, the test
fixtures); a running service needs none of it. Passwords come from a mapping (plaintext or bcrypt
hashes) or, for containers, as references to environment variables of the nats-server process
(``$GRANTLINE_NATS_PASSWORD_VAULT``), so a rendered file holds no secret.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import SecretStr

from grantline.runtime.nats.permissions import (
    CALLOUT_ISSUER_ENV,
    GRANTLINE_ACCOUNT,
    NOTHING_SUBJECT,
    SYSTEM_ACCOUNT,
    NatsUser,
    PermissionFile,
    PermissionFileError,
)

# -- passwords --------------------------------------------------------------------------------------


def password_env_name(user: str) -> str:
    """The variable a nats-server process reads ``user``'s password from (``$GRANTLINE_NATS_PASSWORD_X``)."""
    return "GRANTLINE_NATS_PASSWORD_" + user.upper().replace("-", "_")


def generate_passwords(permissions: PermissionFile) -> dict[str, str]:
    """A fresh random password (256 bits) for every user."""
    return {name: new_password() for name in permissions.users}


def new_password() -> str:
    """A random NATS password that nats-server reads back as a string from an environment variable.

    nats-server parses a variable's value as a config token, so a value that starts with a digit or
    `-` (``1w...`` reads as a duration, ``12...`` as a number) breaks start-up. A fixed letter prefix
    and hex avoid every such reading.
    """
    return "p" + secrets.token_hex(24)


def load_or_create_passwords(path: Path, permissions: PermissionFile) -> dict[str, str]:
    """Per-user passwords kept in a 0600 JSON file: created on first use, completed for new users."""
    stored: dict[str, str] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
        except ValueError:
            loaded = {}
        if isinstance(loaded, dict):
            stored = {str(k): str(v) for k, v in loaded.items()}
    fresh = generate_passwords(permissions)
    passwords = {name: stored.get(name) or fresh[name] for name in permissions.users}
    if passwords != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create with 0600 from the start: the file must never be readable by others, even briefly.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(passwords, handle, indent=2)
    os.chmod(path, 0o600)
    return passwords


def bcrypt_passwords(passwords: Mapping[str, str], *, rounds: int = 11) -> dict[str, str]:
    """bcrypt hashes of ``passwords`` for the server config (needs the optional ``bcrypt`` package)."""
    try:
        import bcrypt
    except ImportError:
        raise PermissionFileError("bcrypt hashing needs the 'bcrypt' package (pip install bcrypt)") from None
    salt_rounds = bcrypt.gensalt(rounds)
    return {
        name: bcrypt.hashpw(value.encode(), salt_rounds).decode().replace("$2b$", "$2a$", 1)
        for name, value in passwords.items()
    }


# -- rendering --------------------------------------------------------------------------------------


def _quoted(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid nats-server config string


def _subject_list(name: str, subjects: list[str], indent: str) -> list[str]:
    return [f"{indent}{name}: [", *(f"{indent}  {_quoted(s)}" for s in subjects), f"{indent}]"]


def _rules_block(kind: str, rules_allow: Iterable[str], rules_deny: Iterable[str], indent: str) -> list[str]:
    allow, deny = list(rules_allow), list(rules_deny)
    inner = indent + "  "
    # A missing allow list means "allow everything" to nats-server: an empty one must say "nothing".
    lines = [f"{indent}{kind}: {{", *_subject_list("allow", allow or [NOTHING_SUBJECT], inner)]
    if deny:
        lines += _subject_list("deny", deny, inner)
    lines.append(f"{indent}}}")
    return lines


def _user_block(user: NatsUser, password: str, indent: str) -> list[str]:
    inner, rules = indent + "  ", indent + "    "
    lines = [
        f"{indent}{{",
        f"{inner}user: {_quoted(user.name)}",
        f"{inner}password: {password}",
        f"{inner}permissions: {{",
        *_rules_block("publish", user.publish.allow, user.publish.deny, rules),
        *_rules_block("subscribe", user.subscribe_allow(), user.subscribe.deny, rules),
    ]
    if user.allow_responses:
        lines.append(f"{rules}allow_responses: true")
    return [*lines, f"{inner}}}", f"{indent}}}"]


def render_authorization(
    permissions: PermissionFile,
    passwords: Mapping[str, str | SecretStr] | None = None,
    *,
    users: Iterable[str] | None = None,
    callout_issuer: str | None = None,
) -> str:
    """The nats-server accounts, system account and ``authorization { auth_callout }`` for ``users``.

    Each password is taken from ``passwords`` (plaintext or a bcrypt hash); without a mapping it is a
    reference to the nats-server process's environment variable (``password_env_name``). The callout
    issuer (an account public nkey) is written as given, else read from ``$GRANTLINE_NATS_CALLOUT_ISSUER``.
    """
    names = list(users) if users is not None else list(permissions.users)

    def password_of(name: str) -> str:
        if passwords is None:
            return "$" + password_env_name(name)
        if name not in passwords:
            raise PermissionFileError(f"no password given for NATS user {name!r}")
        value = passwords[name]
        return _quoted(value.get_secret_value() if isinstance(value, SecretStr) else value)

    def account_users(account: str) -> list[str]:
        lines = ["    users = ["]
        for name in names:
            user = permissions.user(name)
            if user.account == account:
                lines += _user_block(user, password_of(name), " " * 6)
        return [*lines, "    ]"]

    if callout_issuer is not None and not re.fullmatch(r"A[A-Z2-7]{55}", callout_issuer):
        raise PermissionFileError("the callout issuer must be an account public nkey (A..., 56 characters)")
    issuer = _quoted(callout_issuer) if callout_issuer is not None else "$" + CALLOUT_ISSUER_ENV
    lines = [
        "# Generated from deploy/nats/permissions.yaml by `grantline nats-config`; do not edit.",
        "accounts {",
        f"  {GRANTLINE_ACCOUNT} {{",
        "    jetstream: enabled",
        *account_users("grantline"),
        "  }",
        f"  {SYSTEM_ACCOUNT} {{",
        *account_users("system"),
        "  }",
        "}",
        f"system_account: {SYSTEM_ACCOUNT}",
        "authorization {",
        "  # A client that is none of the users above is handed to runner-auth (a runner id and secret):",
        "  # it answers with a user JWT, signed by the issuer key, for the GRANTLINE account.",
        "  auth_callout {",
        f"    issuer: {issuer}",
        f"    account: {GRANTLINE_ACCOUNT}",
        *_subject_list("auth_users", names, "    "),
        "  }",
        "}",
        "",
    ]
    return "\n".join(lines)


# -- client side ------------------------------------------------------------------------------------


def client_environment(permissions: PermissionFile, user: str, password: str) -> dict[str, str]:
    """The ``GRANTLINE_NATS_*`` variables a process needs to connect as ``user``."""
    return {
        "GRANTLINE_NATS_USER": user,
        "GRANTLINE_NATS_PASSWORD": password,
        "GRANTLINE_NATS_INBOX_PREFIX": permissions.user(user).inbox_prefix,
    }


def client_credentials(permissions: PermissionFile, user: str, password: str) -> dict[str, str]:
    """What a NATS client needs besides the URL (for ``dev.json``): user, password and inbox prefix."""
    return {"user": user, "password": password, "inbox_prefix": permissions.user(user).inbox_prefix}
