"""The container image definition: lint it, and check what the platform relies on."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    return str(found) if found.is_file() else (shutil.which("hadolint") or "hadolint")


def test_dockerfile_lints_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "warning", "--format", "tty", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_final_stage_runs_grantline_as_a_numeric_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    final = text.rsplit("\nFROM ", 1)[1]
    assert 'ENTRYPOINT ["grantline"]' in final
    assert 'CMD ["run", "auth-gateway"]' in final
    assert "ARG UID=10001" in final and "USER ${UID}:${UID}" in final
    # Nothing in the final stage installs packages or compilers.
    assert "apt-get" not in final and "pip install" not in final
    assert "uv sync --frozen --no-dev" in text


def test_the_image_holds_bytecode_for_services_under_dash_OO() -> None:
    # The final filesystem is read-only: bytecode missing there is compiled again at every start.
    builder = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[0]
    assert "UV_COMPILE_BYTECODE=1" in builder  # plain .pyc, for the CLI
    assert "-m compileall -q -j 0 -o 2 /opt/venv/lib" in builder  # *.opt-2.pyc, for python -OO


def test_the_dependency_layer_copies_every_workspace_members_metadata() -> None:
    # `uv sync --frozen --no-install-workspace` resolves the whole workspace from the pyproject files
    # copied before it: a member left out (the notifier once was) fails the image build, which
    # cannot run here.
    copies = {line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("COPY ")}
    members = sorted(p.parent for p in REPO.glob("*/*/pyproject.toml") if p.parts[-3] in ("libs", "services"))
    for member in [*members, REPO / "cli"]:
        relative = member.relative_to(REPO)
        assert f"{relative}/pyproject.toml" in copies, (
            f"the Dockerfile does not copy {relative}/pyproject.toml"
        )
        if "readme" in (member / "pyproject.toml").read_text():
            assert f"{relative}/README.md" in copies, f"{relative}'s metadata names its README.md"


def test_dockerignore_keeps_the_build_context_to_sources() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[0].startswith("#") and "**" in ignore
    for needed in ("!uv.lock", "!pyproject.toml", "!deploy/nats/permissions.yaml"):
        assert needed in ignore
