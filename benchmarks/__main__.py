"""Run every benchmark, one after the other: ``uv run python -m benchmarks [name ...]``.

Options after a single name go to that benchmark (``python -m benchmarks memory --label "..."`` is
``python -m benchmarks.memory --label "..."``).

Each benchmark starts its own embedded NATS and Postgres, prints its figures and rewrites its own
``benchmarks/<name>/README.md``. Run them on an otherwise idle machine: they share its cores with
everything else that runs.
"""

import subprocess
import sys
import time

BENCHMARKS = ("resolve", "refresh", "satisfaction", "audit", "proxy", "memory")


def main(arguments: list[str]) -> int:
    """Run the named benchmarks (all when none are named); returns the number that failed."""
    first_option = next(
        (i for i, argument in enumerate(arguments) if argument.startswith("-")), len(arguments)
    )
    names, options = arguments[:first_option], arguments[first_option:]
    if options and len(names) != 1:
        print("options go to one benchmark: name it alone before them", file=sys.stderr)
        return 2
    failed = 0
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        print(f"== benchmarks.{name}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *options])
        print(f"== benchmarks.{name}: exit {code} after {time.monotonic() - started:.0f}s", flush=True)
        failed += code != 0
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
