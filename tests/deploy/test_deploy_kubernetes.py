"""Every Kustomize overlay renders, validates against the Kubernetes schemas (offline), and keeps the
security properties the platform relies on (issue 9: probes, resources, PDBs, HPAs, network policies).
"""

import inspect
import shutil
import subprocess
import sys
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from grantline.auth_gateway.entrypoints.ui.ui_settings import UiSettings
from grantline.cli.services import ROLES
from grantline.runtime.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("dev", "production")
# The oldest Kubernetes version we promise (every API used is stable since 1.23; newer ones keep them).
KUBERNETES_VERSIONS = ("1.29.0",)
# Custom resources the schemas do not cover (checked structurally below instead).
CUSTOM_GROUPS = ("external-secrets.io/", "cert-manager.io/")
CERT_MANAGER = ("cert-manager/ca", "cert-manager/nats-server")
# Settings read beside a service's own class (the gateway's browser pages).
PAGE_SETTINGS: dict[str, list[type]] = {"auth_gateway": [UiSettings]}
SCALED_SERVICES = ("auth-gateway", "vault", "refresher", "satisfaction", "audit", "notifier", "proxy")


def kubectl() -> str:
    bundled = Path(sys.executable).parent / "kubectl"
    if bundled.is_file():
        return str(bundled)
    return shutil.which("kubectl") or "/usr/bin/kubectl"


@cache
def render(path: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(path: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in render(path) if o["kind"] == kind}


def settings_fields(module: str) -> set[str]:
    settings_module = import_module(f"grantline.{module}.settings")
    classes = [
        c for c in vars(settings_module).values() if inspect.isclass(c) and issubclass(c, ServiceSettings)
    ]
    classes += PAGE_SETTINGS.get(module, [])
    return {"GRANTLINE_" + f.upper() for c in classes for f in c.model_fields}


@pytest.mark.parametrize("path", [*(f"overlays/{o}" for o in OVERLAYS), "nats", *CERT_MANAGER])
def test_renders_and_validates_against_the_kubernetes_schemas(path: str) -> None:
    rendered = render(path)
    assert rendered
    for obj in rendered:
        if obj["kind"] == "ExternalSecret":
            assert obj["spec"]["target"]["name"] == obj["metadata"]["name"]
            continue
        if obj["kind"] == "Certificate":
            assert obj["spec"]["secretName"] == obj["metadata"]["name"]
            assert obj["spec"]["issuerRef"]["kind"] == "ClusterIssuer"
            continue
        if obj["apiVersion"].startswith(CUSTOM_GROUPS):
            assert obj["kind"] == "ClusterIssuer", obj["kind"]
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_hardened_and_bounded(overlay: str) -> None:
    path = f"overlays/{overlay}"
    workloads = [*objects(path, "Deployment").values(), *objects(path, "Job").values()]
    assert len(workloads) >= 6
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes["tmp"], name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp"}, name
            if workload["kind"] == "Deployment":
                assert "livenessProbe" in container and "readinessProbe" in container, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_runs_its_role_with_probes_pdb_and_hpa(overlay: str) -> None:
    path = f"overlays/{overlay}"
    deployments = objects(path, "Deployment")
    pdbs = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in objects(path, "PodDisruptionBudget").values()
    }
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in objects(path, "HorizontalPodAutoscaler").values()}
    for name in ROLES:
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["run", name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert name in pdbs
    assert set(hpas) == set(SCALED_SERVICES)
    for hpa in hpas.values():
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_environment_names_are_settings_fields_and_secrets_exist(overlay: str) -> None:
    path = f"overlays/{overlay}"
    config = next(iter(objects(path, "ConfigMap").values()))
    assert set(config["data"]) <= settings_fields("vault") | settings_fields("auth_gateway")
    secrets = set(objects(path, "Secret")) | set(objects(path, "ExternalSecret"))
    for name, deployment in objects(path, "Deployment").items():
        if name not in ROLES:
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        known = settings_fields(ROLES[name].module)
        for variable in container["env"]:
            assert variable["name"] in known, f"{name}: {variable['name']}"
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] in secrets, f"{name}: no Secret {ref['name']}"
        env = {v["name"]: v for v in container["env"]}
        assert env["GRANTLINE_NATS_USER"]["value"] == name
        assert env["GRANTLINE_NATS_INBOX_PREFIX"]["value"] == f"_INBOX.{name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_master_keyring_is_a_mounted_secret_file_for_the_vault_only(overlay: str) -> None:
    deployments = objects(f"overlays/{overlay}", "Deployment")
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        keyring_volumes = [
            v
            for v in pod["volumes"]
            if v.get("secret", {}).get("secretName", "").startswith("grantline-master-keyring")
        ]
        assert bool(keyring_volumes) == (name == "vault"), name
    vault = deployments["vault"]["spec"]["template"]["spec"]["containers"][0]
    env = {v["name"]: v for v in vault["env"]}
    mount = next(m for m in vault["volumeMounts"] if m["name"] == "master-keyring")
    assert env["GRANTLINE_MASTER_KEYRING_FILE"]["value"].startswith(mount["mountPath"] + "/")
    assert mount["readOnly"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_run_grant_signing_keys_reach_satisfaction_only_and_the_vault_verifies(overlay: str) -> None:
    path = f"overlays/{overlay}"
    secrets = set(objects(path, "Secret")) | set(objects(path, "ExternalSecret"))
    mounted: dict[str, set[str]] = {}
    for name, deployment in objects(path, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        mounted[name] = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        container = pod["containers"][0]
        env = {v["name"]: v.get("value", "") for v in container.get("env", [])}
        for variable, volume in (
            ("GRANTLINE_RUN_GRANT_SIGNING_KEYS_FILE", "run-grant-signing"),
            ("GRANTLINE_RUN_GRANT_VERIFICATION_KEYS_FILE", "run-grant-verification"),
        ):
            if variable in env:
                mount = next(m for m in container["volumeMounts"] if m["name"] == volume)
                assert env[variable].startswith(mount["mountPath"] + "/") and mount["readOnly"] is True
    signing = {
        name
        for name, found in mounted.items()
        if any(s.startswith("grantline-run-grant-signing") for s in found)
    }
    verifying = {
        name
        for name, found in mounted.items()
        if any(s.startswith("grantline-run-grant-verification") for s in found)
    }
    assert signing == {"satisfaction"} and verifying == {"vault", "proxy"}
    assert {s for s in secrets if s.startswith("grantline-run-grant-")} >= {
        s for found in mounted.values() for s in found if s.startswith("grantline-run-grant-")
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_only_the_vault_the_notifier_and_the_proxy_reach_the_internet(overlay: str) -> None:
    policies = objects(f"overlays/{overlay}", "NetworkPolicy")
    default_deny = policies["grantline-default-deny"]
    assert default_deny["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "grantline"}
    assert set(default_deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in default_deny["spec"] and "egress" not in default_deny["spec"]
    internet = {}
    for name, policy in policies.items():
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                block = peer.get("ipBlock")
                if block and block["cidr"] == "0.0.0.0/0":
                    internet[name] = (policy["spec"]["podSelector"], block)
    # The vault and the proxy call providers, the notifier tenants' webhook endpoints: public addresses only.
    assert sorted(internet) == ["notifier-egress-internet", "proxy-egress-internet", "vault-egress-internet"]
    for service in ("vault", "notifier", "proxy"):
        selector, block = internet[f"{service}-egress-internet"]
        assert selector == {"matchLabels": {"app.kubernetes.io/name": service}}
        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(block["except"])
    # Only the gateway and the proxy (tools outside the cluster) accept traffic from the ingress controller.
    from_controller = [
        p["spec"]["podSelector"]
        for p in policies.values()
        for rule in p["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "ingress-nginx"
    ]
    assert sorted(s["matchLabels"]["app.kubernetes.io/name"] for s in from_controller) == [
        "auth-gateway",
        "proxy",
    ]
    # Every Grantline pod carries the label the default-deny policy selects.
    for kind in ("Deployment", "Job"):
        for name, workload in objects(f"overlays/{overlay}", kind).items():
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert labels.get("app.kubernetes.io/part-of") == "grantline", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_the_public_api_to_the_gateway_only(overlay: str) -> None:
    (ingress,) = objects(f"overlays/{overlay}", "Ingress").values()
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"auth-gateway"}
    if overlay == "production":
        assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]


def test_migration_job_runs_before_rollout() -> None:
    for overlay in OVERLAYS:
        (job,) = objects(f"overlays/{overlay}", "Job").values()
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
        assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_migration_job_holds_the_nats_operator_password(overlay: str) -> None:
    # Streams and consumers are declared by `grantline migrate` as the operator; no service may.
    (job,) = objects(f"overlays/{overlay}", "Job").values()
    env = {v["name"]: v for v in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GRANTLINE_NATS_USER"]["value"] == "operator"
    assert env["GRANTLINE_NATS_INBOX_PREFIX"]["value"] == "_INBOX.operator"
    secret = env["GRANTLINE_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
    assert secret.startswith("grantline-nats-operator")
    secrets = set(objects(f"overlays/{overlay}", "Secret")) | set(
        objects(f"overlays/{overlay}", "ExternalSecret")
    )
    assert secret in secrets
    for name, deployment in objects(f"overlays/{overlay}", "Deployment").items():
        assert "grantline-nats-operator" not in str(deployment), name


def test_production_runs_streams_with_three_replicas_and_no_secret_values() -> None:
    (config,) = objects("overlays/production", "ConfigMap").values()
    assert config["data"]["GRANTLINE_NATS_STREAM_REPLICAS"] == "3"
    assert objects("overlays/production", "Secret") == {}
    targets = {e["spec"]["target"]["name"] for e in objects("overlays/production", "ExternalSecret").values()}
    assert {"grantline-database", "grantline-master-keyring"} <= targets
    assert {f"grantline-nats-{name}" for name in ROLES} | {"grantline-nats-operator"} <= targets


def test_nats_config_map_carries_the_rendered_permissions() -> None:
    (config_map,) = objects("nats", "ConfigMap").values()
    assert config_map["metadata"] == {"name": "grantline-nats-auth", "namespace": "nats"}
    assert config_map["data"]["auth.conf"] == (DEPLOY / "nats" / "auth.conf").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_reaches_nats_over_mutual_tls_with_its_own_certificate(overlay: str) -> None:
    path = f"overlays/{overlay}"
    (config,) = objects(path, "ConfigMap").values()
    data = config["data"]
    assert data["GRANTLINE_NATS_URL"].startswith("tls://")
    tls_files = [data[f"GRANTLINE_NATS_TLS_{k}_FILE"] for k in ("CA", "CERT", "KEY")]
    assert [Path(f).name for f in tls_files] == ["ca.crt", "tls.crt", "tls.key"]  # cert-manager's keys
    certificates = objects(path, "Certificate")
    workloads = {**objects(path, "Deployment"), **objects(path, "Job")}
    for name, workload in workloads.items():
        if name not in ROLES and name != "grantline-migrate":
            continue  # the sandbox does not talk to NATS
        pod = workload["spec"]["template"]["spec"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "nats-tls"]
        assert mount["readOnly"] is True and {str(Path(f).parent) for f in tls_files} == {mount["mountPath"]}
        (volume,) = [v for v in pod["volumes"] if v["name"] == "nats-tls"]
        secret = volume["secret"]["secretName"]
        assert secret == f"grantline-nats-tls-{name.removeprefix('grantline-')}", name
        certificate = certificates[secret]["spec"]
        assert certificate["usages"] == ["digital signature", "client auth"], secret
        assert certificate["issuerRef"]["name"] == "grantline-nats-ca"


def test_nats_serves_tls_with_the_server_certificate_and_verifies_clients() -> None:
    values = yaml.safe_load((DEPLOY / "nats" / "helm-values.yaml").read_text())
    client_tls, route_tls = values["config"]["nats"]["tls"], values["config"]["cluster"]["tls"]
    (server_certificate,) = objects("cert-manager/nats-server", "Certificate").values()
    for tls in (client_tls, route_tls):
        assert tls["enabled"] is True and tls["secretName"] == server_certificate["spec"]["secretName"]
        assert tls["merge"]["verify"] is True and tls["merge"]["ca_file"].endswith("/ca.crt")
    assert client_tls["merge"]["handshake_first"] == "2s"  # Grantline's clients start TLS first
    assert server_certificate["metadata"]["namespace"] == "nats"
    (config,) = objects("overlays/production", "ConfigMap").values()
    host = config["data"]["GRANTLINE_NATS_URL"].removeprefix("tls://").rsplit(":", 1)[0]
    assert host in server_certificate["spec"]["dnsNames"]
    assert "*.nats-headless.nats.svc.cluster.local" in server_certificate["spec"]["dnsNames"]  # routes
    (ca,) = objects("cert-manager/ca", "Certificate").values()
    issuers = objects("cert-manager/ca", "ClusterIssuer")
    assert (
        ca["spec"]["isCA"] is True
        and issuers["grantline-nats-ca"]["spec"]["ca"]["secretName"] == (ca["spec"]["secretName"])
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_gateway_replica_reads_one_shared_ui_session_secret(overlay: str) -> None:
    # Two replicas with a random key each would sign a browser out whenever it reaches the other one.
    gateway = objects(f"overlays/{overlay}", "Deployment")["auth-gateway"]
    env = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    secret = env["GRANTLINE_UI_SESSION_SECRET"]["valueFrom"]["secretKeyRef"]
    path = f"overlays/{overlay}"
    held = set(objects(path, "Secret")) | set(objects(path, "ExternalSecret"))
    assert secret["name"] in held and secret["name"].startswith("grantline-ui-session")
