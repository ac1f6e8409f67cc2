"""The `r2v` command: `serve` runs the server, `keys` manages API keys.

Heavy imports (the server, the engines) happen inside the commands, so `r2v --help` is fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

import r2v

EXIT_USAGE = 2


def _settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from r2v.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"R2V_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise click.UsageError(f"invalid settings: {problems}") from exc


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: $R2V_DATA_DIR or ./r2v-data).",
)


@click.group()
@click.version_option(r2v.__version__, prog_name="r2v")
def main() -> None:
    """r2v: a self-hosted Seedance 2.0 reference-to-video server."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
@data_dir_option
@click.option("--workers", type=int, default=None, help="Render threads (default 1; 0: API only).")
def serve(host: str | None, port: int | None, data_dir: Path | None, workers: int | None) -> None:
    """Run the API server with embedded workers (SQLite and local disk by default)."""
    import uvicorn

    from r2v.bootstrap import build_app, build_runtime

    settings = _settings(host=host, port=port, data_dir=data_dir, workers=workers)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    runtime = build_runtime(settings)
    created = runtime.ensure_key()
    if created is not None:
        click.echo(
            "No API key existed, so one was created. It is shown only this once; keep it:\n"
            f"\n    {created.secret}\n\n"
            "Send it as 'Authorization: Bearer <key>'. More keys: "
            f"r2v keys create --data-dir {settings.data_dir}"
        )
    click.echo(
        f"r2v {r2v.__version__} on http://{settings.host}:{settings.port} "
        f"(data in {settings.data_dir.resolve()}, {settings.workers} worker(s))"
    )
    try:
        uvicorn.run(
            build_app(runtime),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=settings.log_level == "debug",
        )
    finally:
        runtime.close()


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@data_dir_option
def keys_create(name: str, data_dir: Path | None) -> None:
    """Create a key; the key itself is printed once, as the last line."""
    from r2v.bootstrap import key_service

    service, database = key_service(_settings(data_dir=data_dir))
    try:
        created = service.create(name)
    finally:
        database.dispose()
    click.echo(f"Created {created.key.id} ({created.key.name}). It is not shown again:")
    click.echo(created.secret)


@keys.command("list")
@data_dir_option
def keys_list(data_dir: Path | None) -> None:
    """List keys (never the keys themselves)."""
    import datetime

    from r2v.bootstrap import key_service

    service, database = key_service(_settings(data_dir=data_dir))
    try:
        found = service.list()
    finally:
        database.dispose()
    click.echo(f"{'ID':<18} {'NAME':<20} {'PREFIX':<12} {'CREATED':<20} STATUS")
    for key in found:
        created = datetime.datetime.fromtimestamp(key.created_at).strftime("%Y-%m-%d %H:%M:%S")
        status = "revoked" if key.revoked_at else "active"
        click.echo(f"{key.id:<18} {key.name:<20} {key.prefix + '…':<12} {created:<20} {status}")


@keys.command("revoke")
@click.argument("key")
@data_dir_option
def keys_revoke(key: str, data_dir: Path | None) -> None:
    """Revoke the key with this id (or every active key with this name)."""
    from r2v.bootstrap import key_service

    service, database = key_service(_settings(data_dir=data_dir))
    try:
        revoked = service.revoke(key)
    finally:
        database.dispose()
    if not revoked:
        click.echo(f"no active key {key!r}; see `r2v keys list`", err=True)
        raise SystemExit(1)
    click.echo(f"revoked {key}")


if __name__ == "__main__":
    main()
