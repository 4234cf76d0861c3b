"""``grantline dev``: every service on one machine (DESIGN section 7).

Starts embedded NATS and Postgres under the data directory unless ``GRANTLINE_NATS_URL`` and
``GRANTLINE_DATABASE_URL`` are set, migrates, creates the ``dev`` tenant, serves the sandbox provider,
runs each service as its own process (as in Kubernetes), waits until all are ready, writes
``dev.json`` and prints how to reach the API. Ctrl-C or SIGTERM stops everything cleanly.

With ``--tls`` the embedded NATS speaks only TLS, with a CA generated under the data directory; with
``--mutual-tls`` every client must also present a certificate of that CA. Services get the CA (and the
client certificate) through ``GRANTLINE_NATS_TLS_*``; ``dev.json`` says where the files are.

This process (the supervisor) lives as long as the stack, so it imports no service and none of the
service runtime: the steps that need them run once each in a child process (dev_setup.py), and
``grantline dev`` execs a fresh interpreter for it (main.py) instead of keeping the whole CLI loaded.
"""

import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from grantline.cli.dev_credentials import master_keyring, ui_session_secret
from grantline.cli.dev_sandbox import ensure_sandbox_app
from grantline.cli.dev_stack import DevStack, NatsTlsMode
from grantline.cli.dev_start_up import StartUpFailure, check_data_dir, explain, record_traceback
from grantline.cli.services import ROLES


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` on loopback."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _say(text: str) -> None:
    """Print, unless our output is gone (a closed terminal must not keep us from stopping)."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def _dev_api_key(data_dir: Path, environ: dict[str, str]) -> str:
    if environ.get("GRANTLINE_DEV_API_KEY"):
        return environ["GRANTLINE_DEV_API_KEY"]
    previous = data_dir / "dev.json"
    if previous.exists():
        try:
            return str(json.loads(previous.read_text())["api_key"])
        except (ValueError, KeyError):
            pass
    return "glk_dev_" + secrets.token_urlsafe(32)


def run_dev(
    *, data_dir: str, api_port: int, environ: dict[str, str], nats_tls: NatsTlsMode | None = None
) -> int:
    """Run the whole stack until interrupted; returns the exit code.

    A start-up failure ends in one sentence on stderr (the traceback in logs/dev.log) and exit code 1
    (2 for a taken port or an unusable data directory, found before anything starts).
    """
    started = time.monotonic()
    root = Path(data_dir).resolve()
    if not port_is_free(api_port):
        print(
            f"error: port {api_port} is taken by another program; stop it or choose another with --port",
            file=sys.stderr,
        )
        return 2
    try:
        check_data_dir(root)
    except StartUpFailure as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 2
    stack = DevStack(root, api_port, environ, nats_tls=nats_tls)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: stop_requested.set())
    print("Starting Grantline (development)", flush=True)
    try:
        _start(stack, started)
        while not stop_requested.wait(0.5):
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    print(
                        f"error: {name} exited with {process.returncode}; see {stack.log_path(name)}",
                        file=sys.stderr,
                    )
                    return 1
        return 0
    except Exception as error:
        log = record_traceback(root, stack.stage)
        print(f"error: {explain(error, stack.stage, log)}", file=sys.stderr)
        return 1
    finally:
        _say("Stopping Grantline...")
        stack.stop()
        _say("Stopped.")


def _start(stack: DevStack, started: float) -> None:
    """Everything up to "ready": infrastructure, migrations, tenant, processes, dev.json."""
    root, api_port, environ = stack.data_dir, stack.api_port, stack.environ
    stack.stage = "starting the embedded NATS and Postgres"
    nats_url, database_url = stack.start_infrastructure()
    stack.stage = "migrating the database, declaring the streams and creating the dev tenant"
    api_key = _dev_api_key(root, environ)
    finished = stack.finish_setup(nats_url, database_url, api_key)
    database_url, tenant_id = str(finished["database_url"]), str(finished["tenant_id"])
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    api_url = f"http://127.0.0.1:{api_port}"
    base_env = {
        **environ,
        "GRANTLINE_NATS_URL": nats_url,
        "GRANTLINE_DATABASE_URL": database_url,
        "GRANTLINE_ENVIRONMENT": "development",
        "GRANTLINE_ALLOW_PRIVATE_PROVIDER_URLS": "true",
        "GRANTLINE_SANDBOX_URL": sandbox_url,
        "GRANTLINE_PUBLIC_URL": api_url,
        "GRANTLINE_LOG_FORMAT": environ.get("GRANTLINE_LOG_FORMAT", "json"),
        "GRANTLINE_MASTER_KEYRING_FILE": str(master_keyring(root)),
        "GRANTLINE_UI_SESSION_SECRET": ui_session_secret(root),
        **stack.nats_tls_environment(),
    }
    stack.stage = "starting the services"
    health: dict[str, str] = {}
    proxy_url = ""
    stack.spawn("sandbox", ["sandbox", "--port", str(sandbox_port)], base_env)
    health["sandbox"] = f"{sandbox_url}/_sandbox/health"
    for name in ROLES:
        if name == "runner-auth" and not stack.prepared["auth_config"]:
            # A NATS server of the developer's own has no auth callout for runner-auth to answer:
            # runners use that server's own credentials (docs/nats-security.md sets the callout up).
            print("  runner-auth  not started: the NATS server is yours, without Grantline's auth callout")
            continue
        port = api_port if name == "auth-gateway" else free_port()
        env = {**base_env, "GRANTLINE_HTTP_PORT": str(port), "GRANTLINE_SERVICE_NAME": name}
        env.update(stack.environment_of(name))
        stack.spawn(name, ["run", name], env)
        health[name] = f"http://127.0.0.1:{port}/readyz"
        if name == "proxy":
            proxy_url = f"http://127.0.0.1:{port}"
    problems = stack.wait_ready(health)
    if problems:
        raise StartUpFailure("; ".join(problems))
    stack.stage = "setting up the sandbox provider app"
    sandbox_app = ensure_sandbox_app(root, api_url, api_key, sandbox_url)
    info = {
        "api_url": api_url,
        "api_key": api_key,
        "tenant_id": tenant_id,
        "nats_url": nats_url,
        "database_url": database_url,
        "sandbox_url": sandbox_url,
        "sandbox_app": sandbox_app,
        # A sandbox MCP server to add by URL (POST /v1/mcp-servers); any name under /mcp/ works.
        "sandbox_mcp_server_url": f"{sandbox_url}/mcp/demo/mcp",
        "proxy_url": proxy_url,
        "services": health,
        "logs": str(root / "logs"),
        **stack.nats_tls_info(),
    }
    # What an app runner needs to connect (DESIGN section 7): a runner identity of the dev tenant.
    info.update(finished["runner"])
    stack.stage = "writing dev.json"
    dev_json = root / "dev.json"
    dev_json.write_text(json.dumps(info, indent=2) + "\n")
    os.chmod(dev_json, 0o600)
    print(f"\nGrantline is ready in {time.monotonic() - started:.1f}s", flush=True)
    print(f"  API          {api_url}  (docs: {api_url}/docs)")
    # The local dev tenant's key, shown to the developer who just started the stack on their own machine
    # (it is in dev.json too): the terminal is its intended destination, not a log.
    print(f"  API key      {api_key}")  # nosemgrep: secret-named-value-in-output
    print(f"  tenant       {tenant_id}")
    print(f"  NATS         {nats_url}")
    print(f"  Postgres     {database_url}")
    print(f"  sandbox      {sandbox_url}  (provider app ready: {sandbox_app['provider']})")
    print(f"  MCP server   {sandbox_url}/mcp/demo/mcp  (add it: POST /v1/mcp-servers, see docs/mcp.md)")
    print(f"  proxy        {proxy_url}  (tools call providers with a run grant, see docs/proxy.md)")
    print(f"  written to   {dev_json}; logs in {root / 'logs'}")
    print("Connect a user:  grantline dev connect USER sandbox")
    print("Press Ctrl-C to stop.", flush=True)
    stack.stage = "running"


def main() -> None:
    """``python -m grantline.cli.dev``: what ``grantline dev`` execs (arguments as that command's)."""
    import argparse

    parser = argparse.ArgumentParser(prog="grantline dev")
    parser.add_argument("--data-dir", default=".grantline")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--nats-tls", choices=["server", "mutual"], default=None)
    arguments = parser.parse_args()
    code = run_dev(
        data_dir=arguments.data_dir,
        api_port=arguments.port,
        environ=dict(os.environ),
        nats_tls=arguments.nats_tls,
    )
    sys.exit(code)


if __name__ == "__main__":
    main()
