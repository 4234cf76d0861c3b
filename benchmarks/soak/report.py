"""The soak's table (Markdown, printed and written into the README between two markers)."""

from __future__ import annotations

import os
import platform
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- soak-results -->", "<!-- /soak-results -->"
# A process whose RSS (median of the last quarter vs. the second quarter) grew more than this is a trend.
RSS_GROWTH_LIMIT_PERCENT = 25.0


def render_table(result: dict[str, Any], minutes: float, seed: int) -> tuple[str, bool]:
    """The Markdown report and whether the soak passed."""
    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {minutes:g} min of load (`--seed {seed}`), "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average at the end "
        f"{os.getloadavg()[0]:.1f}.",
        "",
        "| flow | operations | per second | p50 s | p99 s | failed inside a fault window | failed outside |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    covering = result["covering"]
    for flow, outcomes in sorted(result["flows"].items()):
        seconds = sorted(o.seconds for o in outcomes if not o.error) or [0.0]
        inside = sum(1 for o in outcomes if o.error and covering(o.started))
        outside = sum(1 for o in outcomes if o.error and not covering(o.started))
        p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
        lines.append(
            f"| {flow} | {len(outcomes)} | {len(outcomes) / result['ran_for']:.1f} | "
            f"{statistics.median(seconds):.3f} | {p99:.3f} | {inside} | {outside} |"
        )
    lines.append(
        f"| refresh (background, provider's count) | {result['refresh_grants']} | "
        f"{result['refresh_grants'] / result['ran_for']:.1f} | | | | |"
    )
    lines += [
        "",
        "| fault | injected | recovery (all services ready) mean / max s | what |",
        "| --- | ---: | ---: | --- |",
    ]
    by_kind: dict[str, list[Any]] = defaultdict(list)
    for record in result["faults"]:
        by_kind[record.kind].append(record)
    for kind, records in sorted(by_kind.items()):
        recoveries = [r.recovery_seconds for r in records]
        details = "; ".join(sorted({r.detail for r in records}))
        mean, worst = statistics.mean(recoveries), max(recoveries)
        lines.append(f"| {kind} | {len(records)} | {mean:.1f} / {worst:.1f} | {details} |")
    lines += [
        "",
        "| process (Postgres: postmaster + backends, shared memory counted in each) "
        "| RSS after warm-up MB | RSS at the end MB | growth |",
        "| --- | ---: | ---: | ---: |",
    ]
    grew = []
    for name, trend in result["memory"].items():
        if trend is None:
            lines.append(f"| {name} | restarted by a fault: no pid lived through half the run | | |")
            continue
        start, end, growth = trend
        lines.append(f"| {name} | {start:.0f} | {end:.0f} | {growth:+.0f}% |")
        if growth > RSS_GROWTH_LIMIT_PERCENT:
            grew.append(name)
    lines += ["", "| closing check | result | detail |", "| --- | --- | --- |"]
    for name, (ok, detail) in result["checks"].items():
        lines.append(f"| {name} | {'pass' if ok else 'FAIL'} | {detail} |")
    outside = result["errors_outside"]
    lines += [
        f"| errors outside fault windows | {'pass' if not outside else 'FAIL'} | {len(outside)} |",
        f"| RSS without a growth trend (< {RSS_GROWTH_LIMIT_PERCENT:.0f}%) | "
        f"{'pass' if not grew else 'FAIL'} | "
        f"{', '.join(grew) or 'every process'} |",
        f"| lost / duplicated | {'pass' if not (result['lost'] or result['duplicated']) else 'FAIL'} | "
        f"{result['lost']} / {result['duplicated']} |",
        f"| revocations heard by the in-flight run | | {result['revocations_heard']} |",
    ]
    for outcome in outside[:10]:
        at = outcome.started - result["began"]
        lines.append(f"\n- outside a window: {outcome.flow} at +{at:.0f}s: {outcome.error}")
    passed = (
        all(ok for ok, _ in result["checks"].values())
        and not outside
        and not grew
        and not result["lost"]
        and not result["duplicated"]
    )
    return "\n".join(lines), passed


def write_readme(table: str) -> None:
    text = README.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
