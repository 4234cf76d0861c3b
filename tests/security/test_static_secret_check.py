"""Issue 19, item 13: a static check fails the suite when code logs, prints or raises with a value whose
name or type marks it as a secret. The rules are tools/semgrep/secrets-in-output.yml; semgrep runs offline
(local rules, no metrics, no version check). It is not a workspace dependency because it pins older
opentelemetry/protobuf/click than the services use: it runs from `semgrep` on PATH or through `uvx` at a
pinned version, and the test skips (saying why) only when neither can start."""

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "tools" / "semgrep" / "secrets-in-output.yml"
SEMGREP_VERSION = "1.187.0"
SCANNED = ["libs", "services", "cli"]
OFFLINE = ["--metrics=off", "--disable-version-check", "--config", str(RULES)]


@cache
def semgrep_command() -> tuple[str, ...] | None:
    """The first way to start semgrep that answers --version, or None."""
    candidates: list[tuple[str, ...]] = []
    if shutil.which("semgrep"):
        candidates.append(("semgrep",))
    # `./bin/test` bootstraps uv into the checkout's .tools/ when it is not on PATH (as in CI).
    checkout_tools = Path(__file__).resolve().parents[2] / ".tools" / "bin"
    for uv in ("uvx", "uv"):
        found = shutil.which(uv) or shutil.which(uv, path=str(checkout_tools))
        if found:
            prefix = (found,) if uv == "uvx" else (found, "tool", "run")
            candidates.append((*prefix, "--from", f"semgrep=={SEMGREP_VERSION}", "semgrep"))
    for command in candidates:
        try:
            probe = subprocess.run(
                [*command, "--version", "--disable-version-check"],
                capture_output=True,
                text=True,
                timeout=180,
                env=_env(),
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return command
    return None


def _env() -> dict[str, str]:
    return {**os.environ, "SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"}


def scan(*targets: Path | str, cwd: Path = REPO) -> list[dict]:
    command = semgrep_command()
    if command is None:
        pytest.skip(
            f"semgrep cannot start: neither `semgrep` on PATH nor `uvx --from semgrep=={SEMGREP_VERSION}` "
            "works here (uvx needs PyPI once to fill its cache). Install it with `uv tool install "
            f"semgrep=={SEMGREP_VERSION}` to run this check."
        )
    done = subprocess.run(
        [*command, "scan", *OFFLINE, "--json", "--quiet", *map(str, targets)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=_env(),
    )
    assert done.returncode in (0, 1), f"semgrep failed ({done.returncode}): {done.stderr[-2000:]}"
    report = json.loads(done.stdout)
    assert not report["errors"], report["errors"]
    return report["results"]


def test_no_secret_reaches_a_log_line_print_or_exception_message():
    findings = scan(*SCANNED)
    described = [f"{f['path']}:{f['start']['line']}: {f['extra']['lines'].strip()}" for f in findings]
    assert not findings, "secret-looking values in output (fix, or allow with a reason):\n" + "\n".join(
        described
    )


PLANTED = """
import logging

log = logging.getLogger(__name__)


def leaks(access_token, settings, runner_secret, grant, client, nkey_seed, password, private_key_pem):
    log.info("refreshed with %s", access_token)                       # FLAG
    log.warning(f"bad secret {settings.client_secret}")               # FLAG
    logging.error("runner %s", runner_secret)                          # FLAG
    print("grant", grant)                                              # FLAG
    raise ValueError(f"cannot use {settings.api_key}")                 # FLAG
    log.debug("seed=" + nkey_seed)                                     # FLAG
    log.exception("login failed for %s", password)                     # FLAG
    raise RuntimeError(private_key_pem)                                # FLAG
    log.info("key %s", settings.signing_key.get_secret_value())        # FLAG
    print(client.token.reveal())                                       # FLAG


def fine(token_id, settings, grant_kid, api_key_fingerprint, refresh_token_expires_at, tenant_id):
    log.info("revoked token %s", token_id)
    log.info("grant signed with kid %s", grant_kid)
    log.info("key %s", api_key_fingerprint)
    log.info("expires %s", refresh_token_expires_at)
    raise ValueError(f"unknown tenant {tenant_id} at {settings.token_url}")
    headers = {"Authorization": settings.api_key.get_secret_value()}
"""


def test_the_rules_catch_planted_leaks_and_spare_their_metadata(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(PLANTED)
    expected = {n for n, line in enumerate(PLANTED.splitlines(), start=1) if line.endswith("# FLAG")}

    flagged = {f["start"]["line"] for f in scan(planted.name, cwd=tmp_path)}

    missed, wrong = sorted(expected - flagged), sorted(flagged - expected)
    assert flagged == expected, f"missed lines {missed}, wrongly flagged lines {wrong}"
