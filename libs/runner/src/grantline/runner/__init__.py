"""Grantline's runner SDK: request runs, await admission, resolve tokens, hear revocations, finish.

``RunnerClient`` is the asyncio client; ``SyncRunnerClient`` the same with blocking methods. Both
speak Grantline's bus contract (``grantline.contract``) over NATS; see libs/runner/README.md.
"""

from grantline.contract.wire import RequestFailed
from grantline.runner.client import ResolveError, RunnerClient
from grantline.runner.sync import SyncRunnerClient
from grantline.runner.watched_runs import RunCancelled, RunOutcome

__all__ = [
    "RequestFailed",
    "ResolveError",
    "RunCancelled",
    "RunOutcome",
    "RunnerClient",
    "SyncRunnerClient",
]
