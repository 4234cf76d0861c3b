"""``grantline audit tail``: the AUDIT stream read as the ``audit-reader`` NATS user.

That user may do nothing but read AUDIT through its own durable consumer ``audit-export``
(docs/nats-security.md): the tail holds no service credential and cannot publish, so it cannot forge
or remove a record. Credentials come from the environment (as for any NATS client of Grantline), or,
on a developer's machine, from what ``grantline dev`` keeps under its data directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

READER = "audit-reader"
CONSUMER = "audit-export"
QUIET_SECONDS = 1.0  # without --follow: stop once the stream has had nothing more for this long


@dataclass
class AuditReader:
    nats_url: str
    options: dict[str, Any] = field(default_factory=dict)

    async def tail(
        self, *, count: int, follow: bool, user: str | None, as_json: bool, echo: Callable[[str], Any]
    ) -> int:
        """Print records as they come; returns how many were shown."""
        import nats
        from nats.errors import TimeoutError as FetchTimeout

        nc = await nats.connect(self.nats_url, connect_timeout=5, allow_reconnect=follow, **self.options)
        shown = 0
        try:
            js = nc.jetstream(timeout=10)
            subscription = await js.pull_subscribe("audit.>", durable=CONSUMER, stream="AUDIT")
            while count == 0 or shown < count:
                try:
                    batch = await subscription.fetch(
                        min(100, count - shown) if count else 100, timeout=QUIET_SECONDS
                    )
                except (FetchTimeout, TimeoutError):  # nats-py raises either when nothing came
                    if follow:
                        continue
                    break
                for message in batch:
                    record = json.loads(message.data)
                    if user is None or record.get("user_id") == user:
                        echo(json.dumps(record, sort_keys=True) if as_json else _line(record))
                        shown += 1
                    await message.ack()
        finally:
            await nc.close()
        return shown


def _line(record: dict[str, Any]) -> str:
    about = " ".join(
        f"{key}={record[key]}"
        for key in ("user_id", "provider", "connection_id", "run_id", "tool")
        if record.get(key)
    )
    return f"{record.get('occurred_at', '-')}  {record['action']:<24} {record.get('outcome', '-'):<8} {about}"


def reader_from_environment(nats_url: str | None, data_dir: str) -> AuditReader:
    """The audit reader's connection: GRANTLINE_NATS_* when set, else the dev stack's files."""
    user = os.environ.get("GRANTLINE_NATS_USER")
    if user:
        if user != READER:
            typer.echo(f"error: audit tail reads as {READER}, not {user}", err=True)
            raise typer.Exit(2)
        if not nats_url:
            typer.echo("error: set GRANTLINE_NATS_URL or pass --nats-url", err=True)
            raise typer.Exit(2)
        options = {
            "user": user,
            "password": os.environ.get("GRANTLINE_NATS_PASSWORD", ""),
            "inbox_prefix": os.environ.get("GRANTLINE_NATS_INBOX_PREFIX", f"_INBOX.{READER}"),
        }
        return AuditReader(nats_url, {**options, **_tls(_environment_tls())})
    from grantline.cli.api_client import read_dev_json

    info = read_dev_json(data_dir)
    options = {}
    users_file = Path(data_dir) / "nats-users.json"
    if users_file.exists():  # NATS runs with the permission file: connect as the reader
        password = json.loads(users_file.read_text())[READER]
        options = {"user": READER, "password": password, "inbox_prefix": f"_INBOX.{READER}"}
    return AuditReader(nats_url or str(info["nats_url"]), {**options, **_tls(info.get("nats_tls") or {})})


def _environment_tls() -> dict[str, str]:
    names = {"ca_file": "CA_FILE", "cert_file": "CERT_FILE", "key_file": "KEY_FILE"}
    found = {key: os.environ.get(f"GRANTLINE_NATS_TLS_{name}") for key, name in names.items()}
    return {key: value for key, value in found.items() if value}


def _tls(files: dict[str, str]) -> dict[str, Any]:
    if not files.get("ca_file"):
        return {}
    from grantline.runtime.nats.tls import client_ssl_context

    context = client_ssl_context(
        Path(files["ca_file"]),
        Path(files["cert_file"]) if files.get("cert_file") else None,
        Path(files["key_file"]) if files.get("key_file") else None,
    )
    return {"tls": context, "tls_handshake_first": True}
