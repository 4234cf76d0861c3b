"""Satisfaction benchmark: ``uv run python -m benchmarks.satisfaction [--quick]``.

Starts embedded NATS and Postgres, migrates, COPYs 100,000 users x 10 connections into the mirror, runs
``grantline run satisfaction`` as its own process, then measures from this process:

1. ``runs.requested`` -> ``runs.admitted`` latency (p50, p99) with runs published open-loop at a fixed rate;
2. the ``satisfaction.check`` rate with concurrent callers;
3. ``connections.revoked`` -> ``runs.connection_revoked`` latency for in-flight runs that resolved it.

Prints the figures and writes them to ``benchmarks/satisfaction/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import time
from pathlib import Path

import nats

from benchmarks.process_cpu import CpuSample, sample
from benchmarks.satisfaction import measurements as m
from benchmarks.satisfaction.setup import (
    PROVIDERS,
    Servers,
    embedded_servers,
    load_mirror,
    migrate,
    service_process,
    wait_until_serving,
)

README = Path(__file__).with_name("README.md")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[250.0, 500.0, 1000.0], help="runs per second"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each admission phase")
    parser.add_argument("--check-seconds", type=float, default=5.0)
    parser.add_argument("--check-concurrency", type=int, default=32)
    parser.add_argument("--revocations", type=int, default=500)
    parser.add_argument("--revocation-rate", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=8, help="service handler concurrency per consumer")
    parser.add_argument("--quick", action="store_true", help="small and short: a smoke run, figures not kept")
    args = parser.parse_args()
    if args.quick:
        args.users, args.rates, args.seconds = 2_000, [200.0], 3.0
        args.check_seconds, args.revocations = 2.0, 100
    return args


def _cpu_line(before: CpuSample, after: CpuSample, messages: int, what: str) -> str:
    """``  CPU per run: service 0.52 ms, postgres 0.31 ms, ...`` for a report line."""
    per_message = before.per_item(after, messages, unit=1e3)
    return f"  CPU per {what}: " + ", ".join(f"{part} {ms:.2f} ms" for part, ms in per_message.items())


def _load() -> str:
    return "load average " + ", ".join(f"{value:.1f}" for value in os.getloadavg())


async def measure(servers: Servers, args: argparse.Namespace, service_pid: int) -> list[str]:
    await wait_until_serving(servers.nats_url)
    nc = await nats.connect(servers.nats_url)
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        print(line)

    try:
        warm = await m.admission(nc, users=args.users, rate=200, seconds=2, prefix="warm")
        print("warm-up:", warm.line("admission"))
        for rate in args.rates:
            before = sample("service", service_pid)
            result = await m.admission(
                nc, users=args.users, rate=rate, seconds=args.seconds, prefix=f"r{int(rate)}"
            )
            after = sample("service", service_pid)
            what = f"runs.requested -> runs.admitted at {rate:,.0f} runs/s for {args.seconds:.0f} s"
            report(f"{result.line(what)} ({_load()})")
            report(_cpu_line(before, after, result.sent, "run"))
        before = sample("service", service_pid)
        per_second, checks = await m.check_rate(
            nc, users=args.users, seconds=args.check_seconds, concurrency=args.check_concurrency
        )
        after = sample("service", service_pid)
        report(
            f"satisfaction.check: {per_second:,.0f} checks/s"
            f" with {args.check_concurrency} concurrent callers;"
            f" p50 {checks.percentile(50) * 1000:.1f} ms, p99 {checks.percentile(99) * 1000:.1f} ms"
            f" ({_load()})"
        )
        report(_cpu_line(before, after, len(checks.samples), "check"))
        users = random.sample(range(args.users), args.revocations)
        in_flight = await m.admission(nc, users=args.users, rate=500, seconds=0, prefix="rev", chosen=users)
        print("in-flight runs admitted:", in_flight.line("admission"))
        runs = [(f"rev-{i}", user, i % len(PROVIDERS)) for i, user in enumerate(users)]
        await m.resolutions(nc, servers.database_url, runs)
        before = sample("service", service_pid)
        revoked = await m.revocation(nc, runs, args.revocation_rate)
        after = sample("service", service_pid)
        what = (
            f"connections.revoked -> runs.connection_revoked, {args.revocations} in-flight runs,"
            f" revocations at {args.revocation_rate:,.0f}/s"
        )
        report(f"{revoked.line(what)} ({_load()})")
        report(_cpu_line(before, after, revoked.sent, "revocation"))
    finally:
        await nc.close()
    return lines


def write_readme(args: argparse.Namespace, lines: list[str], load_seconds: float) -> None:
    machine = (
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()},"
        f" Python {platform.python_version()}"
    )
    text = f"""# Satisfaction benchmark

Run: `uv run python -m benchmarks.satisfaction` (about two minutes; `--quick` for a smoke run).

## What is measured, and how

- Embedded NATS (JetStream, file storage) and embedded Postgres (durable: fsync and synchronous commit
  on, as in production) on this machine; the satisfaction
  migrations; the `app_user_connect` mirror bulk-loaded with COPY: {args.users:,} users x {len(PROVIDERS)}
  connections = {args.users * len(PROVIDERS):,} rows (loaded in {load_seconds:.1f} s).
- The service runs as `grantline run satisfaction` in its own process with its default consumer
  settings (batched pull loops). The load generator is this process.
- Admission: `runs.requested` events for random users, published open-loop into the RUNS stream at a
  fixed rate (each run needs `github`, the `email` category and `slack`; all satisfied). Latency is from
  just before the publish to the receipt of the run's `runs.admitted` on a core subscription: it
  includes the JetStream store, the pull consumer, the batch's transaction (inbox and locks, mirror read,
  runs and outbox rows), the outbox relay and the publication of the answer. A 2 s warm-up at 200 runs/s
  is not counted. The load generator publishes with core NATS publishes (JetStream stores them; every
  answer proves its request arrived) and pauses its own garbage collector while it measures; with
  `BENCH_JS_PUBLISH=1` it waits for a JetStream acknowledgement per request instead, which costs it
  ~0.3 ms of CPU per run on the cores the system shares with it. After the bulk load a `CHECKPOINT`
  writes the load's WAL out, so that checkpoint does not land inside a measured phase.
- CPU per message: the CPU seconds (user + system) each process spent during a phase divided by the
  messages of the phase: the service, Postgres (all its processes), NATS, and the load generator. On a
  shared machine these transfer; wall-clock latency does not.
- Checks: {args.check_concurrency} callers send `satisfaction.check` back to back for
  {args.check_seconds:.0f} s.
- Revocation: {args.revocations} in-flight runs each resolve one connection (the vault's `token.resolved`
  audit records); then each connection is revoked (`connections.revoked`, {args.revocation_rate:.0f}/s) and
  the latency to the run's `runs.connection_revoked` is taken.

## Figures

Machine: {machine}; NATS, Postgres, the service and the load generator share these cores (the load
average at the end of each phase is given; above ~2, other work shared the machine).

"""
    text += "\n".join(line if line.startswith("  ") else f"- {line}" for line in lines) + "\n"
    text += """
Targets: p99 under 20 ms at 1,000 runs/s; revocation reaching in-flight runs within 100 ms p99.
"""
    # The hand-written reading of the figures is kept across runs.
    previous = README.read_text() if README.exists() else ""
    marker = "## Reading these figures"
    if marker in previous:
        text += "\n" + previous[previous.index(marker) :]
    README.write_text(text)


def main() -> None:
    args = parse_args()
    with embedded_servers() as servers:
        migrate(servers.database_url)
        started = time.perf_counter()
        load_mirror(servers.database_url, args.users)
        load_seconds = time.perf_counter() - started
        print(f"mirror loaded: {args.users * len(PROVIDERS):,} rows in {load_seconds:.1f} s")
        with service_process(servers, args.workers) as service:
            lines = asyncio.run(measure(servers, args, service.pid))
    if not args.quick:
        write_readme(args, lines, load_seconds)
        print(f"written to {README}")


if __name__ == "__main__":
    main()
