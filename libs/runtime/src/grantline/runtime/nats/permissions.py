"""NATS users and subject permissions, from the one permission file (``deploy/nats/permissions.yaml``).

The same file drives ``grantline dev`` (embedded NATS), docker-compose and Kubernetes: this module
loads and validates it (each user's publish and subscribe rules, the accounts, the JetStream
management only the operator may do). ``server_config`` renders it for nats-server (the
``GRANTLINE`` and ``SYS`` accounts, the ``auth_callout`` block that hands runners to runner-auth) and
gives each service the environment it connects with.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grantline.contract.runner_identities import RUNNER_OUTCOMES_STREAM

SERVICE_USERS = ("auth-gateway", "vault", "refresher", "satisfaction", "audit", "runner-auth", "notifier")
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
_PROBE_STREAMS = ("CONNECTIONS", "RUNS", "AUDIT", "RUNNER_OUTCOMES", "PROBE")
# The one exception (deploy/nats/permissions.yaml): runner-auth creates and deletes the per-runner
# consumers on RUNNER_OUTCOMES, by name; nothing on another stream, nothing on the stream itself.
RUNNER_CONSUMER_KEEPER = "runner-auth"
RUNNER_CONSUMER_GRANTS = frozenset(
    {
        f"$JS.API.CONSUMER.CREATE.{RUNNER_OUTCOMES_STREAM}.*",
        f"$JS.API.CONSUMER.DELETE.{RUNNER_OUTCOMES_STREAM}.*",
    }
)


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
            excepted = RUNNER_CONSUMER_GRANTS if self.name == RUNNER_CONSUMER_KEEPER else frozenset()
            managing = [p for p in self.publish.allow if manages_jetstream(p) and p not in excepted]
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
