"""The import rules of pyproject.toml's [tool.importlinter] hold (services apart, thin gateway pages)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--config", "pyproject.toml", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # The rule issue 22 added: a page calls the use cases, never a `/v1` route.
    assert "Gateway pages never import the HTTP routes: both call the use cases in service/ KEPT" in report
    assert "A service never imports another service (shared code goes to libs/) KEPT" in report
