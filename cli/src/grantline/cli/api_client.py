"""Where the admin commands find Grantline's public API, and how they call it.

The URL and key come from flags, then ``GRANTLINE_API_URL`` / ``GRANTLINE_API_KEY``, then the
``dev.json`` that ``grantline dev`` wrote under its data directory (``.grantline`` by default). A refused
call ends in one line naming the API's problem (its ``title``/``detail``), never the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import SecretStr

if TYPE_CHECKING:
    import httpx

ApiUrlOption = typer.Option(
    None, "--api-url", envvar="GRANTLINE_API_URL", help="the public API (default: dev.json's)"
)
ApiKeyOption = typer.Option(
    None,
    "--api-key",
    envvar="GRANTLINE_API_KEY",
    help="a tenant API key (default: dev.json's)",
    show_default=False,
)
DataDirOption = typer.Option(
    ".grantline", "--data-dir", envvar="GRANTLINE_DEV_DATA_DIR", help="where `grantline dev` wrote dev.json"
)
JsonOption = typer.Option(False, "--json", help="print the API's JSON instead of a table")


def read_dev_json(data_dir: str) -> dict[str, Any]:
    """``dev.json`` of a running ``grantline dev``, or a one-line exit saying how to get one."""
    path = Path(data_dir) / "dev.json"
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        typer.echo(
            f"error: {path} does not exist; start `grantline dev` or pass --api-url and --api-key", err=True
        )
    except (OSError, ValueError) as error:
        typer.echo(f"error: cannot read {path}: {error}", err=True)
    raise typer.Exit(2)


@dataclass(frozen=True)
class ApiTarget:
    url: str
    key: SecretStr

    def client(self) -> httpx.Client:
        import httpx

        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.key.get_secret_value()}"},
            timeout=30,
        )


def api_target(api_url: str | None, api_key: str | None, data_dir: str) -> ApiTarget:
    """The API to call: flags or environment first, ``dev.json`` for what they leave out."""
    if not (api_url and api_key):
        info = read_dev_json(data_dir)
        api_url = api_url or str(info["api_url"])
        api_key = api_key or str(info["api_key"])
    return ApiTarget(api_url.rstrip("/"), SecretStr(api_key))


def call(target: ApiTarget, method: str, path: str, **kwargs: Any) -> Any:
    """One API call; its JSON body, or exit 1 with the problem the API described."""
    import httpx

    try:
        with target.client() as client:
            response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        typer.echo(
            f"error: cannot reach the API at {target.url} ({type(error).__name__}); is it running?", err=True
        )
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        typer.echo(f"error: {method} {path}: {problem_text(response)}", err=True)
        raise typer.Exit(1)
    return response.json() if response.content else None


def problem_text(response: httpx.Response) -> str:
    """The sentence of an RFC 9457 problem response (or the status line when the body is not one)."""
    try:
        problem = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(problem, dict):
        return f"HTTP {response.status_code}"
    title = str(problem.get("title") or f"HTTP {response.status_code}")
    detail = problem.get("detail")
    code = problem.get("code")
    text = f"{title}: {detail}" if detail and detail != title else title
    return f"{text} ({code})" if code else text


def print_rows(rows: list[dict[str, Any]], columns: list[str], *, empty: str) -> None:
    """A plain table: one header line, one line per row, columns as wide as their widest value."""
    if not rows:
        typer.echo(empty)
        return
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    typer.echo(
        "  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True)).rstrip()
    )
    for line in cells:
        typer.echo("  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip())


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "-"
    return str(value)
