"""The project's licence: the Apache-2.0 text at the root, and the same SPDX id in every package."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_licence_file_is_the_apache_2_text() -> None:
    words = (ROOT / "LICENSE").read_text().split()
    # The full text (its nine sections and the appendix), not a pointer to it.
    assert words[:5] == ["Apache", "License", "Version", "2.0,", "January"]
    assert "END OF TERMS AND CONDITIONS" in " ".join(words)
    assert "9. Accepting Warranty or Additional Liability." in " ".join(words)
    assert len(words) > 1500


def test_every_package_declares_apache_2() -> None:
    projects = [
        path
        for path in ROOT.glob("**/pyproject.toml")
        if not {".venv", ".tools", "node_modules"} & set(path.relative_to(ROOT).parts)
    ]
    assert len(projects) >= 13
    undeclared = [
        str(path.relative_to(ROOT))
        for path in projects
        if tomllib.loads(path.read_text())["project"].get("license") != "Apache-2.0"
    ]
    assert undeclared == []
