"""Runner identities over their life: created -> connects at once; revoked -> its open connection is
closed within seconds and it cannot reconnect; wrong secrets and unknown ids are refused; with
runner-auth down the services still connect and runners do not. The secret is never logged.
"""

import asyncio
import logging
import os
import subprocess
import sys

import nats
import pytest
from fixtures.infra import free_port
from fixtures.secured_nats import IssuedRunner, runner_auth_environment
from fixtures.waiting import wait_for, wait_for_async

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.runner_identities import (
    SUBJECT_RUNNERS_CREATE,
    SUBJECT_RUNNERS_LIST,
    SUBJECT_RUNNERS_REVOKE,
    CreateRunnerRequest,
    ListRunnersRequest,
    RevokeRunnerRequest,
    RunnerCreated,
    RunnerList,
    RunnerRevoked,
)
from grantline.runtime.nats.request_reply import request


async def refused_to_connect(secured_nats, user: str, password: str) -> str:
    """The error a connection attempt as ``user`` ends with (it must end with one)."""

    async def quiet(error: Exception) -> None:
        pass

    with pytest.raises(Exception) as caught:
        nc = await nats.connect(
            secured_nats.url,
            user=user,
            password=password,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=5,
            error_cb=quiet,
        )
        await nc.close()
    return str(caught.value)


async def create_over_nats(gateway, tenant_id: str, name: str = "ci") -> RunnerCreated:
    reply = await request(
        gateway.nc, SUBJECT_RUNNERS_CREATE, CreateRunnerRequest(tenant_id=tenant_id, name=name), RunnerCreated
    )
    assert isinstance(reply, RunnerCreated), reply
    return reply


async def test_created_runner_connects_at_once(runner_auth, connect) -> None:
    gateway = await connect("auth-gateway")
    created = await create_over_nats(gateway, "tenant-a", name="build farm")
    assert created.runner.tenants == ["tenant-a"] and created.runner.name == "build farm"
    runner = await connect(IssuedRunner(created.runner.runner_id, created.secret.get_secret_value()))
    await runner.nc.publish("runs.requested.tenant-a", b"{}")
    await runner.nc.flush()
    assert runner.violations() == []


async def test_wrong_secret_unknown_runner_and_strangers_are_refused(runner_auth, secured_nats) -> None:
    issued = await runner_auth.issue(["tenant-a"])
    other = await runner_auth.issue(["tenant-a"])
    for user, password in (
        (issued.runner_id, "rns_not-the-secret"),
        (issued.runner_id, other.secret),  # another runner's secret
        (issued.runner_id, ""),
        ("rnr_00000000000000000000000000", issued.secret),  # no such runner
        ("runner", issued.secret),  # the old static user is gone
        ("anybody", "anything"),
    ):
        error = await refused_to_connect(secured_nats, user, password)
        assert "authorization violation" in error.lower() or "timeout" in error.lower(), (user, error)


async def test_revoked_runner_is_disconnected_within_seconds_and_cannot_reconnect(
    runner_auth, connect, secured_nats
) -> None:
    gateway = await connect("auth-gateway")
    created = await create_over_nats(gateway, "tenant-a")
    issued = IssuedRunner(created.runner.runner_id, created.secret.get_secret_value())
    runner = await connect(issued)
    second = await connect(issued)  # every open connection goes, not just one
    reply = await request(
        gateway.nc,
        SUBJECT_RUNNERS_REVOKE,
        RevokeRunnerRequest(tenant_id="tenant-a", runner_id=issued.runner_id),
        RunnerRevoked,
    )
    assert isinstance(reply, RunnerRevoked) and reply.runner.revoked_at is not None
    await wait_for_async(lambda: runner.nc.is_closed and second.nc.is_closed, timeout=5)
    error = await refused_to_connect(secured_nats, issued.runner_id, issued.secret)
    assert "authorization violation" in error.lower()


async def test_revocation_from_the_cli_is_enforced_by_the_sweep(runner_auth, connect, secured_nats) -> None:
    issued = await runner_auth.issue(["tenant-a"])
    runner = await connect(issued)
    await runner_auth.revoke(issued.runner_id)  # a database write only, as `grantline runners revoke`
    await wait_for_async(lambda: runner.nc.is_closed, timeout=5)
    assert (
        "authorization violation"
        in (await refused_to_connect(secured_nats, issued.runner_id, issued.secret)).lower()
    )


async def test_tenant_sees_and_revokes_only_its_own_runners(runner_auth, connect) -> None:
    gateway = await connect("auth-gateway")
    own = await create_over_nats(gateway, "tenant-a")
    foreign = await create_over_nats(gateway, "tenant-b")
    shared = await runner_auth.issue(["tenant-a", "tenant-b"])
    platform = await runner_auth.issue(None)
    listed = await request(
        gateway.nc, SUBJECT_RUNNERS_LIST, ListRunnersRequest(tenant_id="tenant-a"), RunnerList
    )
    assert isinstance(listed, RunnerList)
    assert [r.runner_id for r in listed.runners] == [own.runner.runner_id]
    for runner_id in (
        foreign.runner.runner_id,
        shared.runner_id,
        platform.runner_id,
        "rnr_nonsense0000000000000000",
    ):
        reply = await request(
            gateway.nc,
            SUBJECT_RUNNERS_REVOKE,
            RevokeRunnerRequest(tenant_id="tenant-a", runner_id=runner_id),
            RunnerRevoked,
        )
        assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.NOT_FOUND
    still = await request(
        gateway.nc, SUBJECT_RUNNERS_LIST, ListRunnersRequest(tenant_id="tenant-b"), RunnerList
    )
    assert isinstance(still, RunnerList) and [r.runner_id for r in still.runners] == [
        foreign.runner.runner_id
    ]
    # A tenant id that is not a subject token is refused before anything is written.
    bad = await request(
        gateway.nc,
        SUBJECT_RUNNERS_CREATE,
        CreateRunnerRequest.model_construct(tenant_id="a.b", name="", actor="api"),
        RunnerCreated,
    )
    assert isinstance(bad, ErrorReply) and bad.error.code == ErrorCode.INVALID_REQUEST


async def test_with_runner_auth_down_services_connect_and_runners_do_not(
    runner_auth, connect, secured_nats
) -> None:
    issued = await runner_auth.issue(["tenant-a"])
    await runner_auth.stop()
    for user in (
        "auth-gateway",
        "vault",
        "refresher",
        "satisfaction",
        "audit",
        "audit-reader",
        "runner-auth",
    ):
        conn = await connect(user)
        assert conn.nc.is_connected, user
    error = await refused_to_connect(secured_nats, issued.runner_id, issued.secret)
    assert "authorization violation" in error.lower() or "timeout" in error.lower()


async def test_runner_secret_is_never_logged(runner_auth, connect, secured_nats, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = await connect("auth-gateway")
    created = await create_over_nats(gateway, "tenant-a")
    secret = created.secret.get_secret_value()
    issued = IssuedRunner(created.runner.runner_id, secret)
    await connect(issued)
    await refused_to_connect(secured_nats, issued.runner_id, secret + "x")
    await request(
        gateway.nc,
        SUBJECT_RUNNERS_REVOKE,
        RevokeRunnerRequest(tenant_id="tenant-a", runner_id=issued.runner_id),
        RunnerRevoked,
    )
    await refused_to_connect(secured_nats, issued.runner_id, secret)
    assert "runner connection refused" in caplog.text
    assert secret not in caplog.text and secret[4:] not in caplog.text
    assert secret not in secured_nats.server.log_file.read_text()


async def test_runner_secret_is_not_in_the_service_log(secured_nats, database_url, connect, tmp_path) -> None:
    # runner-auth as its own process, as `grantline run runner-auth` runs in a pod, logging JSON.
    port = free_port()
    log_path = tmp_path / "runner-auth.log"
    env = {
        **os.environ,
        **runner_auth_environment(secured_nats, database_url),
        "GRANTLINE_HTTP_PORT": str(port),
        "GRANTLINE_LOG_LEVEL": "DEBUG",
        "GRANTLINE_LOG_FORMAT": "json",
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "grantline.cli.main", "run", "runner-auth"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:

        def started() -> bool:
            assert process.poll() is None, log_path.read_text()
            return '"msg": "service started"' in log_path.read_text()

        await asyncio.to_thread(wait_for, started, 30)
        gateway = await connect("auth-gateway")
        created = await create_over_nats(gateway, "tenant-a")
        secret = created.secret.get_secret_value()
        runner = await connect(IssuedRunner(created.runner.runner_id, secret))
        await refused_to_connect(secured_nats, created.runner.runner_id, "rns_wrong-" + secret[4:])
        await request(
            gateway.nc,
            SUBJECT_RUNNERS_REVOKE,
            RevokeRunnerRequest(tenant_id="tenant-a", runner_id=created.runner.runner_id),
            RunnerRevoked,
        )
        await wait_for_async(lambda: runner.nc.is_closed, timeout=5)
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(
                f"runner-auth did not stop on SIGTERM:\n{log_path.read_text()[-3000:]}"
            ) from None
    text = log_path.read_text()
    assert "runner connection refused" in text and "runner connections closed" in text
    assert secret not in text and secret[4:] not in text
