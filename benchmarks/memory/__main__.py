"""Memory per process of `grantline dev`: at rest, and while runners resolve tokens as fast as they can.

    uv run python -m benchmarks memory [--seconds 20] [--concurrency 64]

Starts `grantline dev` as a user does (its own embedded NATS and Postgres, every service its own
process) in a temporary directory, waits until it is ready and idle, and reads the resident set size
(RSS) of the supervisor (`grantline dev` itself) and of each service process. Then it connects a user
through the sandbox, has a run admitted and resolves that user's token from ``--concurrency`` tasks for
``--seconds`` seconds, sampling every process's RSS; the peak is reported. NATS and Postgres are shown
for scale (Postgres summed over its backends). Appends its figures to benchmarks/memory/README.md.

First it compiles the bytecode of the virtualenv and the workspace, plain and for -OO, as the image
does at build time: a module compiled from source at import leaves several MB of the compiler's garbage
in the heap (6 MB in the gateway), so a process reading no .pyc shows more than it holds in production.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
TARGETS_MB = {"supervisor": 40.0, "service": 80.0}
SERVICES = ("auth-gateway", "vault", "refresher", "satisfaction", "audit", "runner-auth", "notifier", "proxy")
SETTLE_SECONDS = 5.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _role(process: psutil.Process) -> str | None:
    """Which part of the stack a child of `grantline dev` is."""
    try:
        argv = process.cmdline()
        name = process.name()
    except psutil.Error:
        return None
    if "nats-server" in name:
        return "nats-server"
    if name.startswith("postgres") or (argv and argv[0].endswith("/postgres")):
        return "postgres"
    if "run" in argv and argv[-1] in SERVICES:
        return argv[-1]
    if "sandbox" in argv:
        return "sandbox"
    return None


def rss_by_role(supervisor: psutil.Process) -> dict[str, float]:
    """MB resident per role right now (Postgres summed over its processes)."""
    found: dict[str, float] = {"supervisor": supervisor.memory_info().rss / 2**20}
    for child in supervisor.children(recursive=True):
        role = _role(child)
        if role is None:
            continue
        try:
            rss = child.memory_info().rss / 2**20
        except psutil.Error:
            continue
        found[role] = found.get(role, 0.0) + rss
    return found


class Sampler(threading.Thread):
    """Keeps each role's highest RSS while the load runs."""

    def __init__(self, supervisor: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.supervisor = supervisor
        self.peak: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            for role, mb in rss_by_role(self.supervisor).items():
                self.peak[role] = max(self.peak.get(role, 0.0), mb)


async def resolve_load(info: dict[str, object], seconds: float, concurrency: int) -> int:
    """Resolve the connected user's token from ``concurrency`` tasks; returns how many succeeded."""
    from grantline.runner import RunnerClient

    runner = await RunnerClient.connect(
        str(info["nats_url"]), str(info["nats_user"]), str(info["nats_password"]), timeout=30
    )
    run_id = f"run-{uuid.uuid4()}"
    done = 0
    try:
        admitted = await runner.request_run(
            str(info["tenant_id"]), run_id, "bench@example.com", "memory-bench", requirements=["sandbox"]
        )
        assert type(admitted).__name__ == "RunAdmitted", admitted
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await runner.resolve(run_id, "sandbox", tool="bench")
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await runner.finish(run_id)
    finally:
        await runner.close()
    return done


def measure(seconds: float, concurrency: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="grantline-memory-"))
    data_dir = root / "grantline"
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRANTLINE_")}
    cli = [sys.executable, "-m", "grantline.cli.main"]
    output = (root / "dev-output.log").open("wb")
    dev = subprocess.Popen(
        [*cli, "dev", "--data-dir", str(data_dir), "--port", str(_free_port())],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        dev_json = data_dir / "dev.json"
        deadline = time.monotonic() + 180
        while not dev_json.exists():
            if dev.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"grantline dev did not start; see {root / 'dev-output.log'}")
            time.sleep(0.5)
        time.sleep(0.5)
        info = json.loads(dev_json.read_text())
        time.sleep(SETTLE_SECONDS)  # let start-up work (relays, first polls) finish
        supervisor = psutil.Process(dev.pid)
        at_rest = rss_by_role(supervisor)
        subprocess.run(
            [*cli, "dev", "connect", "bench@example.com", "sandbox", "--data-dir", str(data_dir)],
            env=env,
            check=True,
            capture_output=True,
        )
        sampler = Sampler(supervisor)
        sampler.start()
        started = time.monotonic()
        resolves = asyncio.run(resolve_load(info, seconds, concurrency))
        elapsed = time.monotonic() - started
        sampler.done.set()
        sampler.join()
        return {
            "at_rest": at_rest,
            "under_load": sampler.peak,
            "resolves": resolves,
            "rate": resolves / elapsed,
            "concurrency": concurrency,
            "seconds": seconds,
        }
    finally:
        dev.terminate()
        dev.wait(60)


def report(figures: dict[str, object]) -> str:
    at_rest: dict[str, float] = figures["at_rest"]  # type: ignore[assignment]
    peak: dict[str, float] = figures["under_load"]  # type: ignore[assignment]
    lines = [
        "| process | RSS at rest (MB) | peak RSS under resolve load (MB) | target (MB) |",
        "| --- | --- | --- | --- |",
    ]
    for role in ("supervisor", *SERVICES, "sandbox", "nats-server", "postgres"):
        if role not in at_rest:
            continue
        target = (
            TARGETS_MB["supervisor"]
            if role == "supervisor"
            else TARGETS_MB["service"]
            if role in SERVICES
            else None
        )
        shown_target = f"<= {target:.0f}" if target else "-"
        lines.append(f"| {role} | {at_rest[role]:.0f} | {peak.get(role, 0):.0f} | {shown_target} |")
    python = sum(v for k, v in at_rest.items() if k not in ("nats-server", "postgres"))
    lines.append("")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines.append(
        f"Python processes together at rest: {python:.0f} MB. Load: {figures['resolves']} resolves in "
        f"{figures['seconds']:.0f} s from {figures['concurrency']} tasks ({figures['rate']:.0f}/s). "
        f"Machine: {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end, {when}."
    )
    return "\n".join(lines)


def compile_bytecode() -> None:
    """Write the .pyc and .opt-2.pyc files that are missing or stale (what the image holds)."""
    root = HERE.parents[1]
    patterns = ("libs/*/src", "services/*/src", "cli/src")
    sources = [str(path) for pattern in patterns for path in root.glob(pattern)]
    site_packages = [path for path in sys.path if path.endswith("site-packages")]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "-o", "0", "-o", "2", *site_packages, *sources],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "memory per process").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--label", default="latest", help="the heading of this run's figures in the README")
    arguments = parser.parse_args()
    compile_bytecode()
    figures = measure(arguments.seconds, arguments.concurrency)
    text = report(figures)
    print(text)
    readme = HERE / "README.md"
    if readme.exists():
        readme.write_text(readme.read_text().rstrip() + f"\n\n### {arguments.label}\n\n{text}\n")


if __name__ == "__main__":
    main()
