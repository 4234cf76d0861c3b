"""docker-compose.yml: the structure a laptop relies on (there is no Docker engine in CI)."""

import inspect
from importlib import import_module
from pathlib import Path

import pytest
import yaml

from grantline.cli.services import ROLES
from grantline.common.nats.permissions import CALLOUT_ISSUER_ENV, load_permissions, password_env_name
from grantline.common.settings import ServiceSettings

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
    return {"GRANTLINE_" + name.upper() for name in settings.model_fields}


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
    assert vault["secrets"] == ["master_keyring"]
    assert COMPOSE["secrets"]["master_keyring"]["file"].startswith("./deploy/compose/secrets/")
    assert (REPO / "deploy" / "compose" / ".gitignore").read_text().strip() == "secrets/"
