"""The process every service runs in: connections, subscribers, the outbox relay, HTTP.

A service's ``app.py`` builds a ``ServiceRuntime``, registers its request responders
(``serve_requests``), its consumers and other background tasks, and hands it to the CLI
(``grantline run <service>``) or to a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from nats.aio.client import Client

from grantline.runtime.health import NotReady, Readiness
from grantline.runtime.heap import release_freed_heap
from grantline.runtime.nats.connection import connect_nats, connect_options
from grantline.runtime.nats.consumers import ConsumerSpec
from grantline.runtime.nats.declaration import undeclared
from grantline.runtime.nats.streams import stream_specs
from grantline.runtime.settings import ServiceSettings
from grantline.runtime.telemetry.logging import configure_logging
from grantline.runtime.telemetry.tracing import configure_tracing

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
    from starlette.types import ASGIApp

    from grantline.runtime.asgi_server import HttpServer
    from grantline.runtime.db.database import Database
    from grantline.runtime.db.driver import DriverConnection
    from grantline.runtime.outbox_relay import OutboxLocation, OutboxRelay

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


class NatsSubscription(Protocol):
    """A request subscription on nats-py (``RequestSubscription`` and the like)."""

    async def start(self, nc: Client) -> None: ...

    async def stop(self) -> None: ...


async def _retry_until(what: str, attempt: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> Any:
    """Keep trying a start-up dependency: a pod may start before NATS or Postgres is up."""
    delay = 0.2
    while True:
        try:
            return await attempt()
        except Exception as error:
            if stop.is_set():
                raise
            extra = {"dependency": what, "error": type(error).__name__}
            if isinstance(error, ssl.SSLError):
                # A refused certificate does not heal by waiting: say why (OpenSSL's reason holds no secret).
                extra["detail"] = str(error)
            log.warning("waiting for dependency", extra=extra)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 5.0)


# Longer than a responder takes to answer what it holds, so one that finishes in time is never cut short.
STOP_STEP_SECONDS = 15.0


async def _stop_step(step: str, awaitable: Awaitable[Any]) -> None:
    """Await one shutdown step, but not past ``STOP_STEP_SECONDS``; its failure never stops the rest."""
    try:
        await asyncio.wait_for(awaitable, timeout=STOP_STEP_SECONDS)
    except TimeoutError:
        log.warning(
            "shutdown step did not finish in time", extra={"step": step, "seconds": STOP_STEP_SECONDS}
        )
    except Exception as error:
        log.warning("shutdown step failed", extra={"step": step, "error": type(error).__name__})


class StartUpError(RuntimeError):
    """The service cannot start, for a reason the operator can fix; the message is one sentence."""


def bind_http_socket(host: str, port: int) -> socket.socket:
    """The HTTP port, bound before anything connects: a taken port is said at once, in one sentence."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartUpError(
            f"cannot listen on {host}:{port} ({error.strerror}); stop what uses it or set GRANTLINE_HTTP_PORT"
        ) from None
    sock.set_inheritable(True)
    return sock


class ServiceRuntime:
    """Owns one service's connections and lifecycle."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        outbox: OutboxLocation | None = None,
        http_app: ASGIApp | None = None,
        uses_database: bool = True,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        # A stateless service (the proxy) has none: it neither waits for Postgres nor reports on it.
        self.database: Database | None = None
        if uses_database:
            # Imported here, not at the top: SQLAlchemy and psycopg are about 25 MB at rest, which a
            # stateless service (the proxy) has no use for (benchmarks/memory).
            from grantline.runtime.db.database import Database

            self.database = Database(settings)
        # Unusable TLS settings, or clear text in production, fail here in one sentence (NatsTlsError)
        # instead of being retried at start as if NATS were down.
        connect_options(settings)
        self.nc: Client | None = None
        self._responders: list[NatsSubscription] = []
        self.outbox = outbox
        self.relay: OutboxRelay | None = None
        self._http_app = http_app
        # The durable consumers this service binds to (``bind_consumer``); created by `grantline migrate`.
        self._consumers: list[ConsumerSpec] = []
        self._tasks: list[BackgroundTask] = []
        self._running: list[asyncio.Task[None]] = []
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._stop = asyncio.Event()
        checks: dict[str, Callable[[], Awaitable[bool]]] = {
            "nats": self._nats_ready,
            "postgres": self._postgres_ready,
            "jetstream": self._jetstream_ready,
        }
        if not uses_database:
            del checks["postgres"]
        self.readiness = Readiness(self.name, checks)
        self.http_port: int | None = None

    # -- wiring -------------------------------------------------------------------------------------

    def add_background_task(self, task: BackgroundTask) -> None:
        """Run ``task`` for the life of the service (it must return when cancelled)."""
        self._tasks.append(task)

    def on_start(self, hook: Hook) -> Hook:
        """Run ``hook`` after connections are up and before subscribers start."""
        self._on_start.append(hook)
        return hook

    def bind_consumer(self, consumer: ConsumerSpec) -> None:
        """Declare that this service reads ``consumer``: start-up and readiness wait until it exists."""
        if consumer not in self._consumers:
            self._consumers.append(consumer)

    def on_stop(self, hook: Hook) -> Hook:
        """Run ``hook`` while stopping, before connections close."""
        self._on_stop.append(hook)
        return hook

    def serve_requests(self, *subscriptions: NatsSubscription) -> None:
        """Answer these request subjects while the service runs: started after the ``on_start`` hooks
        (so no request comes before the service is ready for it), stopped before the ``on_stop``
        hooks (so none still runs when they close what it uses)."""
        self._responders.extend(subscriptions)

    def _database(self) -> Database:
        if self.database is None:
            raise RuntimeError(f"{self.name} was built with uses_database=False")
        return self.database

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (a service that keeps state only)."""
        return self._database().engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions that are not units of work of their own (reads; a caller that commits itself)."""
        return self._database().sessions

    @asynccontextmanager
    async def transaction(self, *, wake_relay: bool = True) -> AsyncIterator[AsyncSession]:
        """One unit of work for an entrypoint: commit at the end, then wake the outbox relay.

        Pass ``wake_relay=False`` for frequent transactions that never write an event (claims,
        schedule updates): waking the relay after each would make it query an empty outbox as often.
        """
        async with self._database().transaction() as session:
            yield session
        if wake_relay and self.relay is not None:
            self.relay.wake()

    @asynccontextmanager
    async def driver_transaction(self, *, wake_relay: bool = True) -> AsyncIterator[DriverConnection]:
        """``transaction`` on a bare psycopg connection, for loops where SQLAlchemy's cost shows.

        Statements use psycopg's placeholders (see ``grantline.runtime.db.driver``); the block's work
        commits when it ends and rolls back if it raises.
        """
        async with self._database().driver_transaction() as connection:
            yield connection
        if wake_relay and self.relay is not None:
            self.relay.wake()

    @asynccontextmanager
    async def single_statement(self, *, wake_relay: bool = True) -> AsyncIterator[DriverConnection]:
        """A psycopg connection in autocommit mode, for a unit of work that is one statement.

        Cheaper than ``driver_transaction`` when the work fits one statement (several writes in
        data-modifying CTEs commit atomically as one statement); see ``grantline.runtime.db.driver``.
        """
        async with self._database().single_statements() as connection:
            yield connection
        if wake_relay and self.relay is not None:
            self.relay.wake()

    @property
    def nats(self) -> Client:
        """The raw nats-py connection (available once started)."""
        assert self.nc is not None, "service not started"
        return self.nc

    # -- readiness ----------------------------------------------------------------------------------

    async def _nats_ready(self) -> bool:
        return bool(self.nc is not None and self.nc.is_connected)

    async def _jetstream_ready(self) -> bool:
        if self.nc is None or not self.nc.is_connected:
            return False
        problems = await undeclared(self.nc.jetstream(timeout=1.0), stream_specs(), self._consumers)
        if problems:
            raise NotReady("; ".join(problems))
        return True

    async def _wait_for_jetstream(self) -> None:
        # Streams and consumers are `grantline migrate`'s to create (the service's NATS user may not):
        # a service started before it waits, not ready, and says what is missing.
        delay, said = 0.2, ""
        while True:
            problems = await undeclared(self.nats.jetstream(timeout=2.0), stream_specs(), self._consumers)
            if not problems:
                return
            if "; ".join(problems) != said:
                said = "; ".join(problems)
                log.error("waiting for `grantline migrate`: %s", said, extra={"service": self.name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            if self._stop.is_set():
                raise RuntimeError(f"{self.name} stopped before JetStream was declared: {said}")
            delay = min(delay * 2, 5.0)

    async def _postgres_ready(self) -> bool:
        return await self._database().ready()

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, wait for the streams and consumers, start subscribers, the relay and background tasks."""
        if self.database is not None:
            await _retry_until("postgres", self._postgres_ready, self._stop)
        self.nc = await _retry_until("nats", lambda: connect_nats(self.settings), self._stop)
        await _retry_until("jetstream", self._wait_for_jetstream, self._stop)
        if self.outbox is not None:
            from grantline.runtime.outbox_relay import OutboxRelay  # psycopg's: see __init__

            self.relay = OutboxRelay(
                service=self.name, database_url=self.settings.database_url, outbox=self.outbox, nats=self.nc
            )
            self._tasks.insert(0, self.relay.run)
        for hook in self._on_start:
            await hook()
        for responder in self._responders:
            await responder.start(self.nc)
        # Subscriptions reach NATS when the connection's writer next runs: flush, so that once
        # start() returns a request to this service finds its responder (without this a caller
        # racing the start-up got "no responders"). The flush covers them because connect_options
        # installed grantline.nats_fixes (nats-py's own PING could overtake them).
        await self.nc.flush()
        for task in self._tasks:
            self._running.append(asyncio.create_task(self._guard(task), name=f"{self.name}:{task}"))
        log.info("service started", extra={"service": self.name})

    async def _serve_http(self, listening: socket.socket) -> HttpServer:
        if self._http_app is None:
            from grantline.runtime.health_server import HealthServer

            health = HealthServer(self.name, self.readiness)
            await health.start(listening)
            return health
        from grantline.runtime.asgi_server import AsgiServer

        return await AsgiServer.start(self.http_application(), listening)

    async def _guard(self, task: BackgroundTask) -> None:
        # A background task that crashes is restarted: one bad iteration must not stop refreshing.
        while not self._stop.is_set():
            try:
                await task()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task failed; restarting", extra={"task": str(task)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=1.0)

    async def stop(self) -> None:
        """Stop accepting work, finish what is in hand, close connections.

        Each step has a deadline: a step that hangs (a peer that never answers a close) is logged by
        name and left, so the process still exits within its grace period and closes the rest.
        """
        self._stop.set()
        if self.relay is not None:
            self.relay.stop()
        # All at once: each stops taking requests, then answers those it holds.
        await _stop_step("responders", asyncio.gather(*(responder.stop() for responder in self._responders)))
        for hook in reversed(self._on_stop):
            await _stop_step(getattr(hook, "__qualname__", "on_stop hook"), hook())
        for running in self._running:
            running.cancel()
        await _stop_step("background tasks", asyncio.gather(*self._running, return_exceptions=True))
        self._running.clear()
        if self.nc is not None:
            await _stop_step("nats drain", self.nc.drain())
        if self.database is not None:
            await _stop_step("driver pool", self.database.close_driver_pool())
            await _stop_step("database engine", self.database.dispose_engine())
        log.info("service stopped", extra={"service": self.name})

    def http_application(self) -> ASGIApp:
        """The service's HTTP app: its own routes (if any) plus health and metrics."""
        # Loaded only here: a service without an API of its own is served by health_server instead.
        from starlette.applications import Starlette

        from grantline.runtime.health_routes import health_routes
        from grantline.runtime.telemetry.http import TracingMiddleware

        routes = health_routes(self.name, self.readiness)
        app: ASGIApp
        if self._http_app is None:
            app = Starlette(routes=routes)
        elif hasattr(getattr(self._http_app, "router", None), "routes"):
            self._http_app.router.routes[0:0] = routes  # type: ignore[attr-defined]
            app = self._http_app
        else:
            outer = Starlette(routes=routes)
            outer.mount("/", self._http_app)
            app = outer
        return TracingMiddleware(app, service=self.name)

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT: start, serve HTTP, then stop cleanly."""
        settings = self.settings
        configure_logging(self.name, level=settings.log_level, fmt=settings.log_format)
        configure_tracing(
            self.name, otlp_endpoint=settings.otel_exporter_endpoint, console=settings.otel_console
        )
        listening = bind_http_socket(settings.http_host, settings.http_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        http = await self._serve_http(listening)
        try:
            await self.start()
            # What start-up built (catalogue, models, compiled SQL, metadata) lives as long as the
            # process: moving it out of the cyclic collector's sight keeps full collections short,
            # which showed as latency spikes on the hot paths. What it freed goes back to the system.
            gc.collect()
            gc.freeze()
            release_freed_heap()
            await self._stop.wait()
        finally:
            # HTTP stops taking requests first; those in flight finish while the runtime stops.
            http.stop_accepting()
            await self.stop()
            await http.wait_closed()
