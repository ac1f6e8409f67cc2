"""`r2v serve` and `r2v keys …`: running the server and managing its API keys."""

from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

import r2v
from r2v import logs


def load_settings(**overrides: Any) -> Any:
    """Settings from the environment, overridden by the flags that were given.

    Every file the server writes from here on (the database, results, uploads, workspaces)
    is its user's alone.
    """
    os.umask(0o077)
    from pydantic import ValidationError

    from r2v.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"R2V_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise click.UsageError(f"invalid settings: {problems}") from exc


def serve_metrics(settings: Any, runtime: Any) -> None:
    """Serve /metrics on `R2V_METRICS_PORT`, apart from the API, when it is set."""
    if settings.metrics_port is None:
        return
    from prometheus_client import start_http_server

    start_http_server(settings.metrics_port, addr=settings.host, registry=runtime.metrics.registry)


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: $R2V_DATA_DIR or ./r2v-data).",
)


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
@data_dir_option
@click.option("--workers", type=int, default=None, help="Render threads (default 1; 0: API only).")
def serve(host: str | None, port: int | None, data_dir: Path | None, workers: int | None) -> None:
    """Run the API server with embedded workers (SQLite and local disk by default)."""
    import uvicorn

    from r2v.api.connections import http_protocol
    from r2v.bootstrap import build_app, build_runtime
    from r2v.errors import ConfigurationError

    settings = load_settings(host=host, port=port, data_dir=data_dir, workers=workers)
    logs.configure(settings.log_level, settings.log_format)
    try:
        runtime = build_runtime(settings)
        runtime.load_engines()
    except ConfigurationError as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from exc
    serve_metrics(settings, runtime)
    created = runtime.ensure_key()
    if created is not None:
        click.echo(
            "No API key existed, so one was created. It is shown only this once; keep it:\n"
            f"\n    {created.secret}\n\n"
            "Send it as 'Authorization: Bearer <key>'. Its webhooks are signed with "
            f"{created.webhook_secret}\nMore keys: r2v keys create --data-dir {settings.data_dir}"
        )
    click.echo(
        f"r2v {r2v.__version__} on http://{settings.host}:{settings.port} "
        f"(data in {settings.data_dir.resolve()}, {settings.workers} worker(s))"
    )
    sys.stdout.flush()  # the key must reach a log file or pipe before the server runs
    try:
        uvicorn.run(
            build_app(runtime),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # keep the logging set up above (text or JSON)
            access_log=settings.log_level == "debug",
            # uvicorn's HTTP protocol, closing clients too slow to send a request
            http=http_protocol(
                header_timeout_seconds=settings.header_timeout_seconds,
                min_body_bytes_per_second=settings.min_body_bytes_per_second,
            ),
        )
    finally:
        runtime.close()


@click.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Tasks rendered at once.",
)
@click.option(
    "--engines",
    default=None,
    help="Only render models these engines serve, e.g. `diffusers` (comma-separated).",
)
@data_dir_option
def worker(concurrency: int, engines: str | None, data_dir: Path | None) -> None:
    """Run a worker with no HTTP server: claim, render and complete tasks.

    SIGTERM (or Ctrl-C) stops claiming, lets the task in hand finish for
    R2V_SHUTDOWN_GRACE_SECONDS, then hands it back to the queue.
    """
    from r2v.bootstrap import build_runtime
    from r2v.errors import ConfigurationError

    settings = load_settings(workers=concurrency, data_dir=data_dir)
    logs.configure(settings.log_level, settings.log_format)
    chosen = [name.strip() for name in engines.split(",") if name.strip()] if engines else None
    try:
        runtime = build_runtime(settings, engines=chosen)
        runtime.load_engines()
    except ConfigurationError as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from exc
    serve_metrics(settings, runtime)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    runtime.start()
    logging.getLogger("r2v").info(
        "worker ready: %d slot(s), models %s", concurrency, ", ".join(runtime.served_models)
    )
    stop.wait()
    logging.getLogger("r2v").info("stopping: finishing or handing back the tasks in hand")
    runtime.stop(grace=settings.shutdown_grace_seconds)
    runtime.close()


@click.group()
def keys() -> None:
    """Create, list, update and revoke API keys."""


rate_option = click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Tasks the key may create a minute (default: R2V_RATE_LIMIT_PER_MINUTE).",
)
unfinished_option = click.option(
    "--max-unfinished",
    type=click.IntRange(min=1),
    default=None,
    help="Pending and processing tasks the key may have (default: R2V_MAX_UNFINISHED_TASKS).",
)


@keys.command("create")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@rate_option
@unfinished_option
@data_dir_option
def keys_create(
    name: str, rate_limit: int | None, max_unfinished: int | None, data_dir: Path | None
) -> None:
    """Create a key; the key itself is printed once, as the last line."""
    from r2v.bootstrap import open_keys

    with open_keys(load_settings(data_dir=data_dir)) as service:
        created = service.create(name, rate_per_minute=rate_limit, max_unfinished=max_unfinished)
    click.echo(f"Created {created.key.id} ({created.key.name}).")
    click.echo(f"Webhook signing secret (Standard Webhooks): {created.webhook_secret}")
    click.echo("The key is not shown again:")
    click.echo(created.secret)


@keys.command("update")
@click.argument("key_id")
@rate_option
@unfinished_option
@data_dir_option
def keys_update(
    key_id: str, rate_limit: int | None, max_unfinished: int | None, data_dir: Path | None
) -> None:
    """Set a key's own limits."""
    from r2v.bootstrap import open_keys

    with open_keys(load_settings(data_dir=data_dir)) as service:
        found = service.update_limits(
            key_id, rate_per_minute=rate_limit, max_unfinished=max_unfinished
        )
    if not found:
        click.echo(f"no key {key_id!r}; see `r2v keys list`", err=True)
        raise SystemExit(1)
    click.echo(f"updated {key_id}")


@keys.command("list")
@data_dir_option
def keys_list(data_dir: Path | None) -> None:
    """List keys and their limits (never the keys themselves)."""
    from r2v.bootstrap import open_keys

    with open_keys(load_settings(data_dir=data_dir)) as service:
        found = [(key, service.limits(key)) for key in service.list()]
    click.echo(f"{'ID':<18} {'NAME':<16} {'PREFIX':<12} {'CREATED':<20} {'LIMITS':<18} STATUS")
    for key, limits in found:
        created = datetime.datetime.fromtimestamp(key.created_at).strftime("%Y-%m-%d %H:%M:%S")
        status = "revoked" if key.revoked_at else "active"
        rate = f"{limits.rate_per_minute}/min {limits.max_unfinished} open"
        click.echo(
            f"{key.id:<18} {key.name:<16} {key.prefix + '…':<12} {created:<20} {rate:<18} {status}"
        )


@keys.command("revoke")
@click.argument("key")
@data_dir_option
def keys_revoke(key: str, data_dir: Path | None) -> None:
    """Revoke the key with this id (or every active key with this name)."""
    from r2v.bootstrap import open_keys

    with open_keys(load_settings(data_dir=data_dir)) as service:
        revoked = service.revoke(key)
    if not revoked:
        click.echo(f"no active key {key!r}; see `r2v keys list`", err=True)
        raise SystemExit(1)
    click.echo(f"revoked {key}")
