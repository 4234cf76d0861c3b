"""`grantline runners create|list|revoke` against the real registry (runner-auth's tables)."""

import json

from typer.testing import CliRunner

from grantline.cli.main import app


def invoke(database_url: str, *args: str):
    return CliRunner().invoke(app, ["runners", *args], env={"GRANTLINE_DATABASE_URL": database_url})


def test_create_list_revoke(database_url) -> None:
    created = invoke(database_url, "create", "--tenant", "tenant-a", "--tenant", "tenant-b", "--name", "farm")
    assert created.exit_code == 0, created.output
    snippet = json.loads(created.stdout)
    assert snippet["nats_user"].startswith("rnr_") and snippet["nats_password"].startswith("rns_")
    assert snippet["nats_inbox_prefix"] == f"_INBOX.{snippet['nats_user']}"
    platform = json.loads(invoke(database_url, "create", "--platform-wide").stdout)

    listed = json.loads(invoke(database_url, "list", "--json").stdout)
    assert [(r["runner_id"], r["tenants"], r["platform_wide"]) for r in listed] == [
        (snippet["nats_user"], ["tenant-a", "tenant-b"], False),
        (platform["nats_user"], [], True),
    ]
    table = invoke(database_url, "list").stdout
    assert "platform-wide" in table and "tenant-a,tenant-b" in table
    assert snippet["nats_password"] not in table + json.dumps(listed)

    assert invoke(database_url, "revoke", snippet["nats_user"]).exit_code == 0
    assert [r["runner_id"] for r in json.loads(invoke(database_url, "list", "--json").stdout)] == [
        platform["nats_user"]
    ]
    revoked = json.loads(invoke(database_url, "list", "--json", "--all").stdout)[0]
    assert revoked["revoked_at"] is not None


def test_bad_input_is_refused_and_writes_nothing(database_url) -> None:
    for args in (("create",), ("create", "--tenant", "a", "--platform-wide"), ("create", "--tenant", "a.b")):
        result = invoke(database_url, *args)
        assert result.exit_code in (1, 2), (args, result.output)
    missing = invoke(database_url, "revoke", "rnr_000000000000000000000000")
    assert missing.exit_code == 1 and "no runner" in missing.output
    assert json.loads(invoke(database_url, "list", "--json", "--all").stdout) == []


def test_issuer_key_prints_a_matching_pair() -> None:
    from grantline.runner_auth.adapters.nats_jwt import key_pair

    result = CliRunner().invoke(app, ["runners", "issuer-key"])
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in result.stdout.splitlines())
    seed, public = values["GRANTLINE_RUNNER_AUTH_ISSUER_SEED"], values["GRANTLINE_NATS_CALLOUT_ISSUER"]
    assert seed.startswith("SA") and public.startswith("A")
    assert key_pair(seed).public_key.decode() == public
