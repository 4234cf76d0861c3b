"""A service's stop finishes even when one of its steps hangs, and the log names the step.

A hung close once held a test's teardown past its timeout; in a pod it would outlive the grace period
and end in SIGKILL with nothing said about why.
"""

import asyncio
import logging

import pytest
from delivery_harness import settings

from grantline.runtime import service_runtime
from grantline.runtime.service_runtime import ServiceRuntime


async def test_a_hanging_stop_hook_is_left_and_the_rest_still_closes(
    nats_url: str, database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_runtime, "STOP_STEP_SECONDS", 0.5)
    runtime = ServiceRuntime(settings("stopper", nats_url, database_url), uses_database=False)
    closed_after: list[str] = []

    async def never_returns() -> None:
        await asyncio.Event().wait()

    async def closes() -> None:
        closed_after.append("closed")

    runtime.on_stop(closes)  # stop hooks run in reverse: this one after the hanging one
    runtime.on_stop(never_returns)
    await runtime.start()
    assert runtime.nc is not None and runtime.nc.is_connected
    caplog.set_level(logging.WARNING, logger="grantline.runtime.service_runtime")

    await asyncio.wait_for(runtime.stop(), timeout=10)

    assert closed_after == ["closed"]
    assert runtime.nc.is_closed
    hung = [r for r in caplog.records if r.getMessage() == "shutdown step did not finish in time"]
    assert [getattr(r, "step", "") for r in hung] == [never_returns.__qualname__]
