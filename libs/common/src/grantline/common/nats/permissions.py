"""NATS users and subject permissions, from the one permission file (``deploy/nats/permissions.yaml``).

The same file drives ``grantline dev`` (embedded NATS), docker-compose and Kubernetes: this module
loads and validates it, renders the nats-server accounts (``GRANTLINE`` with every static user and
JetStream, ``SYS`` with the one user that may close connections) and the ``auth_callout`` block that
hands every other client (the runners) to runner-auth, and gives each service the environment it
connects with (user, password, reply inbox prefix).

Passwords come from a mapping (plaintext or bcrypt hashes) or, for containers, as references to
environment variables of the nats-server process (``$GRANTLINE_NATS_PASSWORD_VAULT``), so a rendered
file holds no secret and can be committed or put in a ConfigMap.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

SERVICE_USERS = ("auth-gateway", "vault", "refresher", "satisfaction", "audit", "runner-auth")
CLIENT_USERS = ("audit-reader",)
# The one identity that may create and update streams and consumers: `grantline migrate` (the
# migration Job, `grantline dev`). No running service holds its credentials.
OPERATOR_USERS = ("operator",)
# The one user of the system account: runner-auth's, to find (CONNZ) and close (KICK) connections.
KICK_USER = "runner-auth-kick"
# The account of every Grantline user, static or issued by the auth callout (runners).
GRANTLINE_ACCOUNT = "GRANTLINE"
SYSTEM_ACCOUNT = "SYS"
# The environment variable a nats-server reads the callout issuer's public key from (unless the
# key is written into the rendered config).
CALLOUT_ISSUER_ENV = "GRANTLINE_NATS_CALLOUT_ISSUER"
PERMISSIONS_ENV = "GRANTLINE_NATS_PERMISSIONS_FILE"
# Where the container image keeps a copy of the file (see the Dockerfile).
IMAGE_PERMISSIONS_PATH = Path("/etc/grantline/nats-permissions.yaml")

# A subject: dot-separated tokens of printable non-space characters; `*` a whole token, `>` the last.
_TOKEN = re.compile(r"^[^\s.*>]+$")
_USER_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# Granted where a user may publish nothing at all (no one ever listens on it).
NOTHING_SUBJECT = "_GRANTLINE.nothing"


class PermissionFileError(ValueError):
    """The permission file is missing, malformed or inconsistent."""


def check_subject(subject: str) -> str:
    """Return ``subject`` if it is a valid NATS subject (wildcards allowed), else raise ValueError."""
    tokens = subject.split(".")
    for position, token in enumerate(tokens):
        if token == "*":
            continue
        if token == ">":
            if position != len(tokens) - 1:
                raise ValueError(f"'>' must be the last token: {subject!r}")
            continue
        if not _TOKEN.match(token):
            raise ValueError(f"invalid subject {subject!r}")
    return subject


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether the grant ``pattern`` (wildcards allowed) covers the concrete ``subject``."""
    wanted, given = pattern.split("."), subject.split(".")
    for position, token in enumerate(wanted):
        if token == ">":
            return len(given) > position
        if position >= len(given) or (token != "*" and token != given[position]):
            return False
    return len(wanted) == len(given)


# JetStream API requests that change streams or consumers (or delete stored messages): only the
# operator may send them. Probed with each stream's name and an arbitrary one, so a wildcard grant
# that would cover them (`$JS.API.>`, `$JS.API.STREAM.*.RUNS`) is caught too.
_MANAGEMENT_PROBES = (
    "$JS.API.STREAM.CREATE.{s}",
    "$JS.API.STREAM.UPDATE.{s}",
    "$JS.API.STREAM.DELETE.{s}",
    "$JS.API.STREAM.PURGE.{s}",
    "$JS.API.STREAM.MSG.DELETE.{s}",
    "$JS.API.CONSUMER.CREATE.{s}",
    "$JS.API.CONSUMER.CREATE.{s}.probe",
    "$JS.API.CONSUMER.CREATE.{s}.probe.probe.subject",
    "$JS.API.CONSUMER.DURABLE.CREATE.{s}.probe",
    "$JS.API.CONSUMER.DELETE.{s}.probe",
)
_PROBE_STREAMS = ("CONNECTIONS", "RUNS", "AUDIT", "PROBE")


def manages_jetstream(pattern: str) -> bool:
    """Whether a publish grant lets its holder create, change or delete streams, consumers or messages."""
    return any(
        subject_matches(pattern, probe.format(s=stream))
        for probe in _MANAGEMENT_PROBES
        for stream in _PROBE_STREAMS
    )


def _flatten(items: Iterable[Any]) -> list[str]:
    # YAML anchors let the file reuse a block of subjects as one list item; flatten those.
    flat: list[str] = []
    for item in items:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


class SubjectRules(BaseModel):
    """Allow and deny lists for one direction (publish or subscribe)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @field_validator("allow", "deny", mode="before")
    @classmethod
    def _flatten_and_check(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list of subjects")
        subjects = _flatten(value)
        for subject in subjects:
            if not isinstance(subject, str):
                raise ValueError(f"a subject must be a string, got {subject!r}")
            check_subject(subject)
        return tuple(dict.fromkeys(subjects))  # de-duplicated, order kept


class NatsUser(BaseModel):
    """One NATS user: a Grantline service, a client (runner, audit reader) or the operator (migrate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    kind: Literal["service", "client", "operator"]
    # "system": a user of the NATS system account (only the kick user); everyone else is in GRANTLINE.
    account: Literal["grantline", "system"] = "grantline"
    inbox_prefix: str = ""
    allow_responses: bool = False
    publish: SubjectRules = SubjectRules()
    subscribe: SubjectRules = SubjectRules()

    @model_validator(mode="after")
    def _default_inbox(self) -> NatsUser:
        if not _USER_NAME.match(self.name):
            raise ValueError(f"invalid user name {self.name!r}")
        if not self.inbox_prefix:
            object.__setattr__(self, "inbox_prefix", f"_INBOX.{self.name}")
        if "*" in self.inbox_prefix or ">" in self.inbox_prefix:
            raise ValueError(f"inbox prefix of {self.name} must not contain wildcards")
        check_subject(self.inbox_prefix)
        if self.kind == "service":
            managing = [p for p in self.publish.allow if manages_jetstream(p)]
            if managing:
                raise ValueError(
                    f"service user {self.name} may not manage streams or consumers (only the operator "
                    f"may): {', '.join(managing)}"
                )
        return self

    @property
    def inbox_subject(self) -> str:
        """The subscription grant that covers this user's reply inboxes."""
        return f"{self.inbox_prefix}.>"

    def subscribe_allow(self) -> tuple[str, ...]:
        """Subscribe allow list including the user's own reply inboxes."""
        return tuple(dict.fromkeys((*self.subscribe.allow, self.inbox_subject)))


class PermissionFile(BaseModel):
    """The validated permission file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    users: dict[str, NatsUser] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_users(self) -> PermissionFile:
        missing = [
            name
            for name in (*SERVICE_USERS, *CLIENT_USERS, *OPERATOR_USERS, KICK_USER)
            if name not in self.users
        ]
        if missing:
            raise ValueError(f"users missing from the permission file: {', '.join(missing)}")
        system = [name for name, user in self.users.items() if user.account == "system"]
        if system != [KICK_USER]:
            raise ValueError(f"the system account holds exactly one user, {KICK_USER!r}; found {system}")
        prefixes = [user.inbox_prefix for user in self.users.values()]
        for prefix in prefixes:
            overlapping = [p for p in prefixes if p != prefix and p.startswith(prefix + ".")]
            if overlapping or prefixes.count(prefix) > 1:
                raise ValueError(f"inbox prefix {prefix!r} overlaps another user's")
        return self

    def user(self, name: str) -> NatsUser:
        """The user called ``name``."""
        try:
            return self.users[name]
        except KeyError:
            raise PermissionFileError(f"no NATS user {name!r} in the permission file") from None


def parse_permissions(text: str, *, source: str = "<string>") -> PermissionFile:
    """Parse and validate the permission file's YAML text."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PermissionFileError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise PermissionFileError(f"{source}: expected a mapping at the top level")
    # Top-level keys starting with "x-" hold YAML anchors only.
    data = {key: value for key, value in raw.items() if not str(key).startswith("x-")}
    users = data.get("users")
    if isinstance(users, dict):
        data["users"] = {
            name: {"name": name, **(spec or {})} if isinstance(spec, dict | type(None)) else spec
            for name, spec in users.items()
        }
    try:
        return PermissionFile.model_validate(data)
    except ValueError as error:
        raise PermissionFileError(f"{source}: {error}") from None


def default_permissions_path() -> Path:
    """The permission file: ``$GRANTLINE_NATS_PERMISSIONS_FILE``, the checkout's, or the image's copy."""
    configured = os.environ.get(PERMISSIONS_ENV)
    if configured:
        return Path(configured)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "deploy" / "nats" / "permissions.yaml"
        if candidate.is_file():
            return candidate
    return IMAGE_PERMISSIONS_PATH


def load_permissions(path: Path | None = None) -> PermissionFile:
    """Load and validate the permission file (the default one when ``path`` is None)."""
    path = path or default_permissions_path()
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise PermissionFileError(f"cannot read the NATS permission file {path}: {error}") from None
    return parse_permissions(text, source=str(path))


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
