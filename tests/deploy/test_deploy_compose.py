"""docker-compose.yml: the structure a laptop relies on (there is no Docker engine in CI)."""

import asyncio
import inspect
import shutil
import subprocess
from importlib import import_module
from pathlib import Path

import nats
import pytest
import yaml

from grantline.auth_gateway.entrypoints.ui.ui_settings import UiSettings
from grantline.cli.services import ROLES
from grantline.devstack.embedded import EmbeddedNats
from grantline.devstack.tls_certificates import TlsFiles
from grantline.runtime.nats.permissions import CALLOUT_ISSUER_ENV, load_permissions
from grantline.runtime.nats.server_config import password_env_name
from grantline.runtime.nats.tls import client_ssl_context
from grantline.runtime.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def settings_class(module: str) -> type[ServiceSettings]:
    settings_module = import_module(f"grantline.{module}.settings")
    found = [
        cls
        for cls in vars(settings_module).values()
        if inspect.isclass(cls) and issubclass(cls, ServiceSettings) and cls is not ServiceSettings
    ]
    assert len(found) == 1, f"expected one settings class in grantline.{module}.settings"
    return found[0]


def env_names(settings: type[ServiceSettings]) -> set[str]:
    names = {"GRANTLINE_" + name.upper() for name in settings.model_fields}
    if settings.__module__ == "grantline.auth_gateway.settings":
        # The gateway's browser pages read their own settings class beside it.
        names |= {"GRANTLINE_" + name.upper() for name in UiSettings.model_fields}
    return names


def test_every_role_and_the_infrastructure_is_there() -> None:
    assert set(SERVICES) == {*ROLES, "nats", "postgres", "migrate", "sandbox"}


@pytest.mark.parametrize("name", [*ROLES, "sandbox", "migrate"])
def test_grantline_containers_have_image_command_and_hardening(name: str) -> None:
    service = SERVICES[name]
    assert service["image"].startswith("${GRANTLINE_IMAGE")
    assert service["command"], name
    assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]
    assert service["cap_drop"] == ["ALL"] and service["user"] == "10001:10001"
    if name == "migrate":
        assert service["command"] == ["migrate"] and service["restart"] == "no"
    else:
        assert "urlopen" in " ".join(service["healthcheck"]["test"])


@pytest.mark.parametrize("name", list(ROLES))
def test_services_run_their_role_after_migrations_with_readyz(name: str) -> None:
    service = SERVICES[name]
    assert service["command"] == ["run", name]
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert service["depends_on"]["nats"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", list(ROLES))
def test_environment_names_are_settings_fields(name: str) -> None:
    known = env_names(settings_class(ROLES[name].module))
    unknown = set(SERVICES[name]["environment"]) - known
    assert not unknown, f"{name}: not settings fields: {sorted(unknown)}"


def test_migrate_and_sandbox_environment_names_are_common_settings() -> None:
    for name in ("migrate", "sandbox"):
        assert set(SERVICES[name]["environment"]) <= env_names(ServiceSettings), name


@pytest.mark.parametrize("name", list(ROLES))
def test_each_service_connects_as_its_own_nats_user(name: str) -> None:
    permissions = load_permissions(REPO / "deploy" / "nats" / "permissions.yaml")
    env = SERVICES[name]["environment"]
    assert env["GRANTLINE_NATS_USER"] == name
    assert env["GRANTLINE_NATS_PASSWORD"] == "${" + password_env_name(name) + "}"
    assert env["GRANTLINE_NATS_INBOX_PREFIX"] == permissions.user(name).inbox_prefix


def test_only_migrate_connects_as_the_operator() -> None:
    # Streams and consumers are declared by `grantline migrate` alone; no service holds that password.
    env = SERVICES["migrate"]["environment"]
    assert env["GRANTLINE_NATS_USER"] == "operator"
    assert env["GRANTLINE_NATS_PASSWORD"] == "${" + password_env_name("operator") + "}"
    assert env["GRANTLINE_NATS_INBOX_PREFIX"] == "_INBOX.operator"
    assert SERVICES["migrate"]["depends_on"]["nats"]["condition"] == "service_healthy"
    holders = {
        name
        for name, service in SERVICES.items()
        if name != "nats" and password_env_name("operator") in str(service.get("environment", {}))
    }
    assert holders == {"migrate"}


def test_nats_gets_every_users_password_and_the_rendered_config() -> None:
    permissions = load_permissions(REPO / "deploy" / "nats" / "permissions.yaml")
    nats = SERVICES["nats"]
    # Every user's password, and the auth-callout issuer's public key (runner-auth holds the seed).
    assert set(nats["environment"]) == {
        *(password_env_name(user) for user in permissions.users),
        CALLOUT_ISSUER_ENV,
    }
    runner_auth = SERVICES["runner-auth"]["environment"]
    assert runner_auth["GRANTLINE_RUNNER_AUTH_ISSUER_SEED"].startswith("${GRANTLINE_RUNNER_AUTH_ISSUER_SEED")
    mounts = " ".join(nats["volumes"])
    assert "./deploy/nats/auth.conf:" in mounts and "./deploy/nats/nats-server.conf:" in mounts
    assert "js-enabled-only" in " ".join(nats["healthcheck"]["test"])


def test_master_keyring_is_a_mounted_secret_not_an_environment_value() -> None:
    vault = SERVICES["vault"]
    assert vault["environment"]["GRANTLINE_MASTER_KEYRING_FILE"] == "/run/secrets/master_keyring"
    assert "GRANTLINE_MASTER_KEYRING" not in vault["environment"]
    assert vault["secrets"][:2] == ["master_keyring", "run_grant_verification"]
    assert COMPOSE["secrets"]["master_keyring"]["file"].startswith("./deploy/compose/secrets/")
    assert (REPO / "deploy" / "compose" / ".gitignore").read_text().strip() == "secrets/"


def test_run_grant_keys_reach_satisfaction_private_and_the_vault_public_only() -> None:
    satisfaction, vault = SERVICES["satisfaction"], SERVICES["vault"]
    assert satisfaction["secrets"][0] == "run_grant_signing"
    assert (
        satisfaction["environment"]["GRANTLINE_RUN_GRANT_SIGNING_KEYS_FILE"]
        == "/run/secrets/run_grant_signing"
    )
    assert (
        vault["environment"]["GRANTLINE_RUN_GRANT_VERIFICATION_KEYS_FILE"]
        == "/run/secrets/run_grant_verification"
    )
    assert "run_grant_signing" not in vault["secrets"]
    for name in ("run_grant_signing", "run_grant_verification"):
        assert COMPOSE["secrets"][name]["file"].startswith("./deploy/compose/secrets/")


@pytest.mark.parametrize("name", [*ROLES, "migrate"])
def test_every_grantline_container_reaches_nats_over_mutual_tls(name: str) -> None:
    env = SERVICES[name]["environment"]
    assert env["GRANTLINE_NATS_URL"] == "tls://nats:4222"
    entries = [{"source": e, "target": e} if isinstance(e, str) else e for e in SERVICES[name]["secrets"]]
    secrets = {entry["target"]: entry["source"] for entry in entries}
    key = name.replace("-", "_")
    assert secrets["nats_ca"] == "nats_ca"
    assert secrets["nats_client_cert"] == f"nats_cert_{key}"
    assert secrets["nats_client_key"] == f"nats_key_{key}"
    assert env["GRANTLINE_NATS_TLS_CA_FILE"] == "/run/secrets/nats_ca"
    assert env["GRANTLINE_NATS_TLS_CERT_FILE"] == "/run/secrets/nats_client_cert"
    assert env["GRANTLINE_NATS_TLS_KEY_FILE"] == "/run/secrets/nats_client_key"
    tls_dir = "./deploy/compose/secrets/nats-tls/"
    assert COMPOSE["secrets"][f"nats_cert_{key}"]["file"] == f"{tls_dir}{name}.pem"
    assert COMPOSE["secrets"][f"nats_key_{key}"]["file"] == f"{tls_dir}{name}-key.pem"


def test_nats_requires_tls_with_client_certificates() -> None:
    mounts = " ".join(SERVICES["nats"]["volumes"])
    for name in ("ca.pem", "server.pem", "server-key.pem"):
        assert f"./deploy/compose/secrets/nats-tls/{name}:/etc/nats/tls/{name}:ro" in mounts
    config = (REPO / "deploy" / "nats" / "nats-server.conf").read_text()
    block = config[config.index("tls {") : config.index("}", config.index("tls {"))]
    assert "verify: true" in block and 'handshake_first: "2s"' in block


@pytest.mark.skipif(shutil.which("openssl") is None, reason="deploy/compose/init.sh needs openssl")
def test_init_sh_issues_certificates_that_give_mutual_tls(tmp_path: Path) -> None:
    """The certificates init.sh writes really work: a nats-server with them admits the vault's."""
    (tmp_path / "deploy" / "compose" / "secrets").mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "compose" / "init.sh", tmp_path / "deploy" / "compose" / "init.sh")
    # The callout issuer pair needs `grantline` (uv or the image); a copy outside the checkout has
    # neither, so it is given, as a second run of init.sh finds it.
    (tmp_path / "deploy" / "compose" / "secrets" / "compose.env").write_text(
        "GRANTLINE_RUNNER_AUTH_ISSUER_SEED=SAexample\nGRANTLINE_NATS_CALLOUT_ISSUER=Aexample\n"
    )
    subprocess.run(["sh", str(tmp_path / "deploy/compose/init.sh")], check=True, capture_output=True)
    tls = tmp_path / "deploy" / "compose" / "secrets" / "nats-tls"
    assert (tls / "ca-key.pem").stat().st_mode & 0o077 == 0
    files = TlsFiles(
        tls, tls / "ca.pem", tls / "ca-key.pem", tls / "server.pem", tls / "server-key.pem",
        tls / "vault.pem", tls / "vault-key.pem",
    )  # fmt: skip
    server = EmbeddedNats(tmp_path / "nats", tls=files, verify_clients=True)
    server.start()
    try:

        async def connect() -> None:
            context = client_ssl_context(files.ca_file, files.client_cert_file, files.client_key_file)
            nc = await nats.connect(
                server.url, tls=context, tls_handshake_first=True, tls_hostname="nats", allow_reconnect=False
            )
            await nc.close()

        asyncio.run(connect())
    finally:
        server.stop()


def test_the_gateway_gets_the_ui_session_secret_init_sh_generates() -> None:
    env = SERVICES["auth-gateway"]["environment"]
    assert env["GRANTLINE_UI_SESSION_SECRET"] == "${GRANTLINE_UI_SESSION_SECRET}"
    assert "GRANTLINE_UI_SESSION_SECRET" in (REPO / "deploy" / "compose" / "init.sh").read_text()
