"""The permission file, its loader and `grantline nats-config`: what compose and Kubernetes mount."""

import json
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner

from grantline.cli.main import app
from grantline.contract.audit import AuditAction
from grantline.contract.envelope import TenantScopedEvent
from grantline.contract.registry import EVENT_TYPES
from grantline.devstack.embedded import EmbeddedNats
from grantline.runner_auth.adapters.nats_jwt import key_pair, new_account_seed
from grantline.runtime.nats.consumers import DURABLE_CONSUMERS, consumers_of
from grantline.runtime.nats.permissions import (
    CALLOUT_ISSUER_ENV,
    KICK_USER,
    SERVICE_USERS,
    PermissionFileError,
    load_permissions,
    parse_permissions,
    subject_matches,
)
from grantline.runtime.nats.server_config import (
    bcrypt_passwords,
    client_environment,
    generate_passwords,
    load_or_create_passwords,
    password_env_name,
    render_authorization,
)
from grantline.runtime.nats.streams import stream_specs

REPO = Path(__file__).resolve().parents[2]
PERMISSION_FILE = REPO / "deploy" / "nats" / "permissions.yaml"


def may_publish(user, subject: str) -> bool:
    allowed = any(subject_matches(p, subject) for p in user.publish.allow)
    return allowed and not any(subject_matches(p, subject) for p in user.publish.deny)


def test_committed_auth_conf_is_rendered_from_the_permission_file() -> None:
    committed = (REPO / "deploy" / "nats" / "auth.conf").read_text()
    assert committed == render_authorization(load_permissions(PERMISSION_FILE)), (
        "deploy/nats/auth.conf is stale: run `grantline nats-config -o deploy/nats/auth.conf`"
    )


def test_every_event_has_exactly_its_owner_as_publisher() -> None:
    permissions = load_permissions(PERMISSION_FILE)
    owners = {
        "connections.granted": {"vault"},
        "connections.refreshed": {"vault"},
        "connections.revoked": {"vault"},
        "connections.reauth_required": {"vault"},
        "connections.scopes_missing": {"vault"},
        "connections.sharing_changed": {"vault"},
        "connections.expiring": {"refresher"},
        "connections.webhook": {"auth-gateway"},
        "connections.provider_defined": {"vault"},
        "connections.provider_removed": {"vault"},
        "connections.provider_enabled": {"vault"},
        # Runners are not static users: runner identities publish these, on their tenants' subjects
        # only (runs.requested.<tenant>; tests/security/test_runner_tenant_scope.py).
        "runs.requested.t1": set(),
        "runs.finished.t1": set(),
        "runs.admitted.t1": {"satisfaction"},
        "runs.held.t1": {"satisfaction"},
        "runs.connection_revoked.t1": {"satisfaction"},
    }
    subjects = {
        cls.subject_for("t1") if issubclass(cls, TenantScopedEvent) else cls.SUBJECT
        for cls in EVENT_TYPES.values()
        if not cls.SUBJECT.startswith("audit")
    }
    assert subjects == set(owners), "a new event needs an owner here and in permissions.yaml"
    for subject, owner in owners.items():
        publishers = {name for name, user in permissions.users.items() if may_publish(user, subject)}
        assert publishers == owner, subject


def test_audit_records_are_publishable_by_the_service_the_contract_names() -> None:
    permissions = load_permissions(PERMISSION_FILE)
    gateway_actions = {"connection.initiated", "webhook.received", "api_key.created", "api_key.revoked"}
    for name, value in vars(AuditAction).items():
        if name.startswith("_") or not isinstance(value, str):
            continue
        owner = "auth-gateway" if value in gateway_actions else "vault"
        if value == AuditAction.PROXY_CALL:
            owner = "proxy"
        publishers = {n for n, u in permissions.users.items() if may_publish(u, f"audit.{value}")}
        assert publishers == {owner}, value


def test_only_the_vault_serves_vault_subjects() -> None:
    permissions = load_permissions(PERMISSION_FILE)
    for name, user in permissions.users.items():
        can_serve = any(subject_matches(p, "vault.resolve.t1") for p in user.subscribe_allow())
        assert can_serve == (name == "vault"), name


# Grants a service holds on the JetStream API besides its own consumers, and why.
JETSTREAM_EXTRAS = {
    # `grantline satisfaction rebuild` replays CONNECTIONS message by message (it may create no consumer).
    "satisfaction": {"$JS.API.STREAM.MSG.GET.CONNECTIONS"},
    # Each runner identity's consumer of outcomes: created when it connects, deleted when revoked.
    "runner-auth": {
        "$JS.API.CONSUMER.CREATE.RUNNER_OUTCOMES.*",
        "$JS.API.CONSUMER.DELETE.RUNNER_OUTCOMES.*",
    },
}


def test_each_services_jetstream_grants_are_exactly_its_declared_consumers() -> None:
    # One declaration (grantline.runtime.nats.consumers) and the file agree: INFO, MSG.NEXT and ACK on
    # the consumers a service owns, a look at the streams (readiness), and nothing else.
    permissions = load_permissions(PERMISSION_FILE)
    stream_info = {f"$JS.API.STREAM.INFO.{spec.name}" for spec in stream_specs()}
    for name in SERVICE_USERS:
        expected = set(stream_info) | JETSTREAM_EXTRAS.get(name, set())
        for spec in consumers_of(name):
            stream, durable = spec.stream.name, spec.durable
            expected |= {
                f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            }
        granted = {p for p in permissions.user(name).publish.allow if p.startswith("$JS")}
        assert granted == expected, name
    assert {spec.owner for spec in DURABLE_CONSUMERS} <= set(SERVICE_USERS)


def test_only_the_operator_may_manage_jetstream() -> None:
    permissions = load_permissions(PERMISSION_FILE)
    probes = [
        "$JS.API.STREAM.CREATE.RUNS",
        "$JS.API.STREAM.UPDATE.AUDIT",
        "$JS.API.CONSUMER.DURABLE.CREATE.CONNECTIONS.anything",
    ]
    for name, user in permissions.users.items():
        managers = [probe for probe in probes if may_publish(user, probe)]
        assert bool(managers) == (name == "operator"), name
    assert permissions.user("operator").kind == "operator"
    # No one, the operator included, may delete or purge a stream.
    for subject in ("$JS.API.STREAM.DELETE.AUDIT", "$JS.API.STREAM.PURGE.CONNECTIONS"):
        assert not any(may_publish(user, subject) for user in permissions.users.values()), subject


@pytest.mark.parametrize(
    "grant",
    ["$JS.API.STREAM.UPDATE.RUNS", "$JS.API.>", "$JS.API.STREAM.*.AUDIT", "$JS.API.CONSUMER.CREATE.>"],
)
def test_the_loader_refuses_a_service_that_could_manage_jetstream(grant: str) -> None:
    text = PERMISSION_FILE.read_text().replace(
        '        - "connections.expiring"\n', f'        - "connections.expiring"\n        - "{grant}"\n', 1
    )
    assert grant in text
    with pytest.raises(PermissionFileError, match="refresher may not manage streams or consumers"):
        parse_permissions(text)


def test_invalid_permission_files_are_refused_with_a_clear_error() -> None:
    with pytest.raises(PermissionFileError, match="users missing"):
        parse_permissions("version: 1\nusers:\n  vault: {kind: service}\n")
    text = PERMISSION_FILE.read_text().replace('"vault.refresh"', '"vault.>.refresh"')
    with pytest.raises(PermissionFileError, match="last token"):
        parse_permissions(text)
    with pytest.raises(PermissionFileError, match="not valid YAML"):
        parse_permissions("users: [")


def test_passwords_file_is_private_and_stable(tmp_path) -> None:
    permissions = load_permissions(PERMISSION_FILE)
    path = tmp_path / "nats-users.json"
    first = load_or_create_passwords(path, permissions)
    assert set(first) == set(permissions.users)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_passwords(path, permissions) == first


def test_cli_renders_env_references_and_bcrypt(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["nats-config", "--file", str(PERMISSION_FILE), "--user", "vault"])
    assert result.exit_code == 0, result.output
    assert f"password: ${password_env_name('vault')}" in result.output
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"vault": "sekret-vault-password"}))
    out = tmp_path / "auth.conf"
    result = runner.invoke(
        app, ["nats-config", "--user", "vault", "--passwords", str(passwords), "--bcrypt", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "sekret-vault-password" not in out.read_text()
    assert '"$2a$' in out.read_text()
    result = runner.invoke(app, ["nats-config", "--user", "nobody"])
    assert result.exit_code == 2 and "no NATS user 'nobody'" in result.output


async def test_env_referenced_and_bcrypt_passwords_work_on_nats_server(tmp_path, monkeypatch) -> None:
    # compose/Kubernetes: the committed file, passwords from the server's environment; the vault's
    # password given as a bcrypt hash instead (both forms in one server).
    permissions = load_permissions(PERMISSION_FILE)
    passwords = generate_passwords(permissions)
    for name, value in passwords.items():
        monkeypatch.setenv(password_env_name(name), value)
    monkeypatch.setenv(CALLOUT_ISSUER_ENV, key_pair(new_account_seed()).public_key.decode())
    (vault_hash,) = bcrypt_passwords({"vault": passwords["vault"]}, rounds=4).values()
    config = tmp_path / "auth.conf"
    rendered = render_authorization(permissions)
    reference = f"password: ${password_env_name('vault')}"
    assert reference in rendered and f"issuer: ${CALLOUT_ISSUER_ENV}" in rendered
    config.write_text(rendered.replace(reference, f"password: {json.dumps(vault_hash)}"))
    server = EmbeddedNats(tmp_path / "data", config_file=config)
    server.start()
    try:
        for name in (*SERVICE_USERS, KICK_USER):
            env = client_environment(permissions, name, passwords[name])
            nc = await nats.connect(
                server.url,
                user=env["GRANTLINE_NATS_USER"],
                password=env["GRANTLINE_NATS_PASSWORD"],
                inbox_prefix=env["GRANTLINE_NATS_INBOX_PREFIX"],
                allow_reconnect=False,
            )
            await nc.close()
    finally:
        server.stop()


def test_accounts_system_user_and_callout_are_rendered() -> None:
    permissions = load_permissions(PERMISSION_FILE)
    assert "runner" not in permissions.users  # runners come from the auth callout
    assert [n for n, u in permissions.users.items() if u.account == "system"] == [KICK_USER]
    kick = permissions.user(KICK_USER)
    assert kick.publish.allow == ("$SYS.REQ.SERVER.PING.CONNZ", "$SYS.REQ.SERVER.*.KICK")
    assert kick.subscribe_allow() == ("_INBOX.runner-auth-kick.>",)
    public_key = key_pair(new_account_seed()).public_key.decode()
    rendered = render_authorization(permissions, callout_issuer=public_key)
    assert f'issuer: "{public_key}"' in rendered and "account: GRANTLINE" in rendered
    assert "system_account: SYS" in rendered and "jetstream: enabled" in rendered
    auth_users = rendered.split("auth_users: [", 1)[1].split("]", 1)[0]
    assert {line.strip().strip('"') for line in auth_users.split()} == set(permissions.users)
    with pytest.raises(PermissionFileError, match="account public nkey"):
        render_authorization(permissions, callout_issuer="UABC")
    text = PERMISSION_FILE.read_text().replace("    account: system\n", "")
    with pytest.raises(PermissionFileError, match="system account holds exactly one user"):
        parse_permissions(text)


def test_cli_writes_the_callout_issuer_and_lists_its_variable() -> None:
    public_key = key_pair(new_account_seed()).public_key.decode()
    result = CliRunner().invoke(app, ["nats-config", "--callout-issuer", public_key])
    assert result.exit_code == 0, result.output
    assert f'issuer: "{public_key}"' in result.output
    listed = CliRunner().invoke(app, ["nats-config", "--list-env"])
    assert CALLOUT_ISSUER_ENV in listed.output and password_env_name(KICK_USER) in listed.output
