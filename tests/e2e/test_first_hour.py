"""The README's first hour, run from the README's own text, then the admin CLI against the same stack.

The walk-through's commands are the ```` ```sh first-hour ```` blocks of README.md: the first starts
`grantline dev` (exactly as written, from the checkout, with GRANTLINE_DEV_DATA_DIR and
GRANTLINE_DEV_PORT keeping it off a developer's own `.grantline` and port 8080), the others run in one
shell, in order, as a newcomer would type them. Changing the README changes the test; a command that
stops working fails it.

The CLI tests then use that stack (a real gateway, NATS with the permission file, Postgres): tables
and `--json`, where the URL and key come from, one-line errors for refused input, and no secret (the
API key, a client secret given on stdin) in anything the CLI prints.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_dev_stack import DevStackProcess, running
from fixtures.infra import free_port, server_directory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHECKOUT = Path(__file__).resolve().parents[2]
README = CHECKOUT / "README.md"
BLOCK = re.compile(r"^```sh first-hour\n(.*?)^```", re.MULTILINE | re.DOTALL)


def first_hour_blocks(text: str) -> list[list[str]]:
    """The command lines of each walk-through block (comments and blank lines left out)."""
    blocks = []
    for body in BLOCK.findall(text):
        lines = [line.strip() for line in body.splitlines()]
        blocks.append([line for line in lines if line and not line.startswith("#")])
    return blocks


@pytest.fixture(scope="module")
def walk() -> list[list[str]]:
    blocks = first_hour_blocks(README.read_text())
    assert len(blocks) >= 5, "README.md lost its first-hour walk-through"
    assert blocks[0] == ["./bin/grantline dev"], blocks[0]
    return blocks


@pytest.fixture(scope="module")
def first_hour_stack(walk: list[list[str]]) -> Iterator[DevStackProcess]:
    """`grantline dev` started by the README's first block, from the checkout."""
    with server_directory("first-hour") as root:
        stack = DevStackProcess(
            data_dir=root / "grantline", api_port=free_port(), shell_command=walk[0][0], cwd=CHECKOUT
        )
        yield from running(stack)


def test_the_readme_walk_through_runs_as_written(
    walk: list[list[str]], first_hour_stack: DevStackProcess
) -> None:
    info = first_hour_stack.info
    # Ready as promised: the sandbox app is set up and dev.json says so (without its secret).
    assert info["sandbox_app"] == {
        "provider": "sandbox",
        "client_id": "grantline-dev",
        "scopes": ["profile", "read"],
    }
    assert "provider app ready: sandbox" in first_hour_stack.output()
    script = "\n".join(["set -euo pipefail", "set -x", *(line for block in walk[1:] for line in block)])
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=CHECKOUT,
        env=first_hour_stack.environment(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    said = result.stdout
    assert result.returncode == 0, f"{said}\n{result.stderr}"
    connected = re.search(r"^connected ada@example.com to sandbox: connection (\S+)$", said, re.MULTILINE)
    assert connected, said
    connection_id = connected.group(1)
    assert re.search(r"^run run-\S+ admitted$", said, re.MULTILINE), said
    assert f"token resolved for ada@example.com (connection {connection_id}" in said
    assert "the sandbox says the token belongs to sandbox-user" in said
    for action in ("connection.initiated", "connection.granted", "token.resolved"):
        assert re.search(rf"\s{re.escape(action)}\s+success\s.*connection_id={connection_id}", said), action
    assert f"connection {connection_id} revoked" in said
    assert re.search(r"^status\s+revoked$", said, re.MULTILINE), said
    # The key is printed by `grantline dev` only, on purpose; no walk command shows it again.
    assert str(info["api_key"]) not in said + result.stderr


# -- the admin CLI ---------------------------------------------------------------------------------------


def grantline(
    stack: DevStackProcess, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**stack.environment(), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "grantline.cli.main", *args],
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


def test_cli_lists_providers_as_a_table_or_json(first_hour_stack: DevStackProcess) -> None:
    providers = ok_json(grantline(first_hour_stack, "providers", "list", "--json"))
    sandbox = next(p for p in providers if p["id"] == "sandbox")
    assert sandbox["auth"] == "oauth2" and sandbox["apps"], sandbox
    table = grantline(first_hour_stack, "providers", "list", "--category", sandbox["category"])
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "CATEGORY", "AUTH", "ENABLED", "SCOPES"]
    assert any(row.split()[0] == "sandbox" for row in rows)


def test_cli_sets_lists_and_deletes_a_provider_app_without_showing_its_secret(
    first_hour_stack: DevStackProcess,
) -> None:
    stack = first_hour_stack
    secret = "CANARYcli" + secrets.token_hex(12)
    outputs: list[str] = []

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = grantline(stack, *args, stdin=stdin)
        outputs.append(result.stdout + result.stderr)
        return result

    saved = run(
        "apps", "set", "sandbox_github", "--client-id", "cli-client", "--client-secret-stdin",
        "--scope", "read:user", stdin=secret + "\n",
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.strip() == "provider app sandbox_github saved (cli-client, with a client secret)"
    apps = {app["provider"]: app for app in ok_json(run("apps", "list", "--json"))}
    assert apps["sandbox_github"]["has_client_secret"] is True
    assert apps["sandbox_github"]["scopes"] == ["read:user"]
    # Set again without a secret: the stored one is kept.
    kept = ok_json(run("apps", "set", "sandbox_github", "--client-id", "cli-client-2", "--json"))
    assert kept["client_id"] == "cli-client-2" and kept["has_client_secret"] is True
    table = run("apps", "list")
    assert re.search(r"^sandbox_github\s+-\s+cli-client-2\s+yes\s", table.stdout, re.MULTILINE), table.stdout
    # A named app: one more OAuth client for the provider (a second shop's).
    named = run("apps", "set", "sandbox_github", "--name", "shop-b", "--client-id", "cli-shop-b")
    assert (
        named.stdout.strip()
        == "provider app sandbox_github shop-b saved (cli-shop-b, without a client secret)"
    )
    table = run("apps", "list")
    assert re.search(r"^sandbox_github\s+shop-b\s+cli-shop-b\s+no\s", table.stdout, re.MULTILINE), (
        table.stdout
    )
    # --setting beside --name: the app keeps its name (the setting's name once took its place).
    sited = run(
        "apps", "set", "sandbox_atlassian", "--name", "site-b", "--client-id", "cli-site-b",
        "--setting", "site_url=https://b.atlassian.net", "--json",
    )  # fmt: skip
    assert ok_json(sited)["name"] == "site-b", sited.stdout
    assert ok_json(sited)["settings"] == {"site_url": "https://b.atlassian.net"}
    deleted = run("apps", "delete", "sandbox_github", "--name", "shop-b")
    assert deleted.stdout.strip() == "provider app sandbox_github shop-b disabled; 0 connection(s) revoked"
    deleted = run("apps", "delete", "sandbox_github")
    assert deleted.stdout.strip() == "provider app sandbox_github disabled; 0 connection(s) revoked"
    assert not any(secret in output for output in outputs)
    assert not any(str(stack.info["api_key"]) in output for output in outputs)


def test_cli_mints_a_connect_link_through_a_named_app(first_hour_stack: DevStackProcess) -> None:
    stack = first_hour_stack
    app = grantline(stack, "apps", "set", "sandbox", "--name", "link-app", "--client-id", "cli-link-app")
    assert app.returncode == 0, app.stderr
    link = ok_json(
        grantline(
            stack, "connections", "link", "ada@example.com", "--provider", "sandbox",
            "--app", "sandbox=link-app", "--expires-in", "600", "--json",
        )
    )  # fmt: skip
    assert link["connect_url"].startswith(f"{stack.info['api_url']}/connect?connect_session=")
    plain = grantline(stack, "connections", "link", "ada@example.com")
    assert plain.returncode == 0 and plain.stdout.startswith(f"{stack.info['api_url']}/connect?"), plain
    one_line_error(
        grantline(stack, "connections", "link", "ada@example.com", "--app", "sandbox=no-such-app"),
        "no provider app 'no-such-app'",
    )
    bad = grantline(stack, "connections", "link", "ada@example.com", "--app", "sandbox")
    assert bad.returncode == 2 and "is not NAME=VALUE" in bad.stderr


def test_cli_refuses_bad_input_in_one_line(first_hour_stack: DevStackProcess) -> None:
    stack = first_hour_stack
    one_line_error(grantline(stack, "connections", "show", "no-such-connection"), "(not_found)")
    one_line_error(grantline(stack, "connections", "revoke", "no-such-connection"), "(not_found)")
    one_line_error(
        grantline(stack, "apps", "set", "no-such-provider", "--client-id", "x"), "no-such-provider"
    )
    bad_setting = grantline(stack, "apps", "set", "sandbox", "--client-id", "x", "--setting", "novalue")
    assert bad_setting.returncode == 2 and "is not NAME=VALUE" in bad_setting.stderr
    # Nothing changed: the sandbox app is still the one `grantline dev` set up.
    listed = ok_json(grantline(stack, "apps", "list", "--json"))
    apps = {app["provider"]: app for app in listed if app["name"] is None}
    assert apps["sandbox"]["client_id"] == "grantline-dev"


def test_cli_takes_the_api_from_flags_or_environment(
    first_hour_stack: DevStackProcess, tmp_path: Path
) -> None:
    stack = first_hour_stack
    elsewhere = {"GRANTLINE_DEV_DATA_DIR": str(tmp_path)}  # no dev.json there
    missing = grantline(stack, "apps", "list", env=elsewhere)
    assert missing.returncode == 2 and "dev.json does not exist" in missing.stderr, missing.stderr
    api = {"GRANTLINE_API_URL": str(stack.info["api_url"]), "GRANTLINE_API_KEY": str(stack.info["api_key"])}
    listed = ok_json(grantline(stack, "apps", "list", "--json", env={**elsewhere, **api}))
    assert "sandbox" in {app["provider"] for app in listed}
    wrong_key = "glk_dev_" + secrets.token_urlsafe(32)
    refused = grantline(stack, "apps", "list", "--api-key", wrong_key, env={**elsewhere, **api})
    one_line_error(refused, "(unauthorized)")
    assert wrong_key not in refused.stderr


def test_audit_tail_reads_as_the_audit_reader(first_hour_stack: DevStackProcess) -> None:
    stack = first_hour_stack
    changed = grantline(stack, "apps", "set", "sandbox", "--client-id", "grantline-dev", "--scope", "read")
    assert changed.returncode == 0, changed.stderr
    tail = grantline(stack, "audit", "tail", "--json")
    assert tail.returncode == 0, tail.stderr
    records = [json.loads(line) for line in tail.stdout.splitlines()]
    assert any(r["action"] == "provider_app.changed" and r["provider"] == "sandbox" for r in records), records
    assert all(r["tenant_id"] == stack.info["tenant_id"] for r in records)
    # Another user's NATS identity is refused: the tail reads only as the audit reader.
    as_vault = grantline(stack, "audit", "tail", env={"GRANTLINE_NATS_USER": "vault"})
    assert as_vault.returncode == 2 and "reads as audit-reader" in as_vault.stderr


def test_admin_commands_need_no_service_settings() -> None:
    """The admin groups need none of the services' settings: `--help` works in a bare environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRANTLINE_")}
    for group in ("providers", "apps", "connections", "audit"):
        shown = subprocess.run(
            [sys.executable, "-m", "grantline.cli.main", group, "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
