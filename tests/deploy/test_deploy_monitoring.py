"""The alert rules and the Grafana dashboard in deploy/monitoring only use metrics the services export.

promtool is not on PyPI or npm, so the rules are checked for shape here: a PrometheusRule with
groups of rules, each alert with an expression over exported metrics (balanced brackets, known
label names), a severity, a summary and a runbook link to a section of docs/operations.md. Where
`promtool` is on the PATH it checks the rules too.
"""

import json
import re
import shutil
import subprocess
from importlib import import_module
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
OPERATIONS = REPO / "docs" / "operations.md"
# Every module that registers a Prometheus metric (grep prometheus_client in libs/ and services/).
METRIC_MODULES = (
    "grantline.runtime.telemetry.metrics",
    "grantline.refresher.adapters.metrics",
    "grantline.vault.adapters.audit_buffer",
    "grantline.proxy.adapters.audit_publisher",
)
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
METRIC_NAME = re.compile(r"\bgrantline_[a-z_]+\b")


def exported() -> dict[str, set[str]]:
    """Every series name Grantline exports, with the label names it carries."""
    for module in METRIC_MODULES:
        import_module(module)
    names: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # the registry has no public list of collectors
        for family in collector.describe() if hasattr(collector, "describe") else []:
            if not family.name.startswith("grantline_"):
                continue
            labels = set(getattr(collector, "_labelnames", ()))
            for suffix in SUFFIXES.get(family.type, ("",)):
                names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors of a Markdown document."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^a-z0-9 -]", "", title).replace(" ", "-"))
    return found


def rules() -> list[dict]:
    document = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def check_expression(expr: str, known: dict[str, set[str]]) -> None:
    stack = []
    for char in expr:
        if char in "([{":
            stack.append(char)
        elif char in ")]}":
            assert stack and "([{"[")]}".index(char)] == stack.pop(), f"unbalanced {expr!r}"
    assert not stack, f"unbalanced {expr!r}"
    metrics = METRIC_NAME.findall(expr)
    assert metrics, f"no Grantline metric in {expr!r}"
    for metric in metrics:
        assert metric in known, f"{metric} is not exported (known: {sorted(known)})"
    for selector in re.findall(r"grantline_[a-z_]+\{([^}]*)\}", expr):
        for label in re.findall(r"([a-z_]+)\s*=~?", selector):
            assert any(label in known[m] for m in metrics), f"label {label!r} unknown in {expr!r}"


def test_every_alert_is_complete_and_uses_exported_metrics() -> None:
    known = exported()
    assert "grantline_dependency_up" in known and "grantline_refresh_lag_seconds_bucket" in known
    sections = anchors(OPERATIONS.read_text())
    alerts = rules()
    assert len({rule["alert"] for rule in alerts}) == len(alerts), "alert names must be unique"
    for rule in alerts:
        check_expression(rule["expr"], known)
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md" and anchor in sections, rule["annotations"]["runbook"]


def test_dashboard_panels_query_exported_metrics() -> None:
    known = exported()
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource"}
    shown = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            check_expression(target["expr"], known)
            shown.update(METRIC_NAME.findall(target["expr"]))
    # Every exported family is on the dashboard.
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in known}
    assert {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in shown} == families


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (not on PyPI or npm); the shape tests above stand in")
    spec = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())["spec"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
