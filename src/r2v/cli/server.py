"""`r2v serve`, `r2v worker` and `r2v keys …`: running the server and managing its API keys.

Start-up checks what a newcomer gets wrong (settings, a taken port, the data dir, the
database, a missing extra) before a key is made, the banner printed or a worker started, and
says it in one line (see `exits.py`).
"""

from __future__ import annotations

import datetime
import errno
import logging
import os
import re
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import r2v
from r2v import logs
from r2v.cli.exits import SERVER_EXIT_CODES_HELP, Failure

if TYPE_CHECKING:
    from r2v.bootstrap import Runtime
    from r2v.settings import Settings
    from r2v.tasks.keys import CreatedKey, KeyService

log = logging.getLogger("r2v")


def load_settings(**flags: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given (`--data-dir`
    is `data_dir=`); a value that is not valid is named as the user wrote it, by its flag or
    its variable.

    Every file the server writes from here on (the database, results, uploads, workspaces)
    is its user's alone.
    """
    os.umask(0o077)
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from r2v.settings import Settings, variable_of

    given = {k: v for k, v in flags.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = error["loc"]
            name = location[0]
            where = f"--{name.replace('_', '-')}" if name in given else variable_of(location)
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise Failure("; ".join(problems) + ": fix or unset it") from exc
    except SettingsError as exc:  # a JSON value that does not parse
        field = re.search(r'field "(\w+)"', str(exc))
        variable = f"R2V_{field.group(1).upper()}" if field else "an R2V_"
        raise Failure(f"{variable}… holds a value that is not valid JSON: fix or unset it") from exc


def warn_unknown_variables() -> None:
    """Log each `R2V_…` variable no setting reads (a typo, say), with the nearest real one."""
    from r2v.settings import unknown_variables

    for warning in unknown_variables():
        log.warning("%s", warning)


def ready_data_dir(settings: Settings, flag_given: bool) -> None:
    """Create the data directory; fail in one line when it cannot be created or written."""
    path = settings.data_dir
    if flag_given:
        where = "--data-dir"
    elif "data_dir" in settings.model_fields_set:
        where = "R2V_DATA_DIR"
    else:
        where = "--data-dir (or R2V_DATA_DIR)"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=path, prefix=".r2v-probe-").close()
    except OSError as exc:
        made = "written" if path.is_dir() else "created"
        raise Failure(
            f"the data directory {path} cannot be {made} ({exc.strerror}): choose another "
            f"with {where}"
        ) from exc


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` for the API, or a one-line `Failure` saying why not."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            message = (
                f"{host}:{port} is already in use (another r2v serve?): stop what listens "
                "there, or choose another port with --port (or R2V_PORT)"
            )
        elif exc.errno == errno.EACCES:
            message = (
                f"listening on {host}:{port} needs privileges: choose a port above 1023 "
                "with --port (or R2V_PORT)"
            )
        else:
            message = (
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose an address "
                "of this machine with --host (or R2V_HOST)"
            )
        raise Failure(message) from exc
    return sock


def serve_metrics(settings: Settings, runtime: Runtime) -> None:
    """Serve /metrics and /readyz on `R2V_METRICS_PORT`, apart from the API, when it is set."""
    if settings.metrics_port is None:
        return
    from r2v.metrics import serve

    try:
        serve(runtime.metrics, settings.host, settings.metrics_port, ready=runtime.ready)
    except OSError as exc:
        raise Failure(
            f"R2V_METRICS_PORT={settings.metrics_port} cannot be listened on at "
            f"{settings.host} ({exc.strerror or exc}): choose a free port"
        ) from exc


@contextmanager
def started(settings: Settings, engines: list[str] | None = None) -> Iterator[Runtime]:
    """The runtime with its engines loaded and its metrics served, closed on the way out."""
    from r2v.bootstrap import build_runtime

    runtime = build_runtime(settings, engines=engines)
    try:
        runtime.load_engines()
        serve_metrics(settings, runtime)
        yield runtime
    finally:
        runtime.close()


def banner(settings: Settings, created: CreatedKey | None) -> None:
    """Say where the server listens and keeps its data, and show the key made at start-up
    (`created`, when one was).

    Plain lines, or under `R2V_LOG_FORMAT=json` one JSON log line each. On stdout either
    way and whatever the log level: the key is shown only this once.
    """
    from sqlalchemy.engine import make_url

    data = settings.data_dir.resolve()
    # scale-out keeps nothing in the data dir: name the database (never its password) and
    # the bucket instead
    tasks = (
        make_url(settings.database_url).render_as_string(hide_password=True)
        if settings.database_url
        else str(data / "r2v.db")
    )
    files = f"s3://{settings.s3_bucket}/{settings.s3_prefix}" if settings.storage == "s3" else None
    local = not settings.database_url and files is None
    where = f"data in {data}" if local else f"tasks in {tasks}, files in {files or data}"
    url = f"http://{settings.host}:{settings.port}"
    started = f"r2v {r2v.__version__} on {url} ({where}, {settings.workers} worker(s))"
    more = "r2v keys create" + ("" if settings.database_url else f" --data-dir {settings.data_dir}")
    if settings.log_format == "json":
        if created is not None:
            message = (
                "no API key existed, so one was created; it is shown only this once: keep it "
                f"(more keys: {more})"
            )
            secrets = {"api_key": created.secret, "webhook_secret": created.webhook_secret}
            click.echo(logs.json_line("r2v", message, **secrets))
        facts = {"url": url, "tasks": tasks, "files": files or str(data)}
        click.echo(logs.json_line("r2v", started, **facts, workers=settings.workers))
    else:
        if created is not None:
            click.echo(
                "No API key existed, so one was created. It is shown only this once; keep it:\n"
                f"\n    {created.secret}\n\n"
                "Send it as 'Authorization: Bearer <key>'. Its webhooks are signed with "
                f"{created.webhook_secret}\nMore keys: {more}"
            )
        click.echo(started)
    sys.stdout.flush()  # the key must reach a log file or pipe before the server runs


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: $R2V_DATA_DIR or ./r2v-data).",
)


@click.command(epilog=SERVER_EXIT_CODES_HELP)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port to listen on (default 8000)."
)
@data_dir_option
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=None,
    help="Render threads (default 1; 0: API only).",
)
def serve(host: str | None, port: int | None, data_dir: Path | None, workers: int | None) -> None:
    """Run the API server with embedded workers (SQLite and local disk by default)."""
    import uvicorn

    from r2v.api.connections import http_protocol
    from r2v.bootstrap import build_app

    settings = load_settings(host=host, port=port, data_dir=data_dir, workers=workers)
    logs.configure(settings.log_level, settings.log_format)
    warn_unknown_variables()
    # the port first: a second `r2v serve` stops here, before it prints or creates anything
    listener = listen(settings.host, settings.port)
    ready_data_dir(settings, data_dir is not None)
    with started(settings) as runtime:
        banner(settings, runtime.ensure_key())
        config = uvicorn.Config(
            build_app(runtime),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # keep the logging set up above (text or JSON)
            access_log=False,  # the app logs every request itself (`r2v.access`)
            # uvicorn's HTTP protocol, closing clients too slow to send a request
            http=http_protocol(
                header_timeout_seconds=settings.header_timeout_seconds,
                min_body_bytes_per_second=settings.min_body_bytes_per_second,
            ),
        )
        try:  # on the socket bound above, so no other process can take the port meanwhile
            uvicorn.Server(config).run(sockets=[listener])
        except KeyboardInterrupt:
            pass  # uvicorn hands Ctrl-C back once it has stopped: a normal end


@click.command(epilog=SERVER_EXIT_CODES_HELP)
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
    settings = load_settings(workers=concurrency, data_dir=data_dir)
    logs.configure(settings.log_level, settings.log_format)
    warn_unknown_variables()
    ready_data_dir(settings, data_dir is not None)
    chosen = [name.strip() for name in engines.split(",") if name.strip()] if engines else None
    with started(settings, chosen) as runtime:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_args: stop.set())
        runtime.start()
        log.info(
            "worker ready: %d slot(s), models %s", concurrency, ", ".join(runtime.served_models)
        )
        stop.wait()
        log.info("stopping: finishing or handing back the tasks in hand")
        runtime.stop(grace=settings.shutdown_grace_seconds)


@click.group()
def keys() -> None:
    """Create, list, update and revoke API keys."""


@contextmanager
def key_service(data_dir: Path | None, *, creating: bool = False) -> Iterator[KeyService]:
    """The keys of the database the settings name. Where that is SQLite in a data dir that
    does not exist yet, `keys create` says where it makes one; the other commands stop."""
    from r2v.bootstrap import open_keys

    settings = load_settings(data_dir=data_dir)
    if settings.database_url is None:
        where = settings.data_dir.resolve()
        if not settings.data_dir.exists():
            if not creating:
                raise Failure(
                    f"no data directory at {where}, so no keys: pass the --data-dir "
                    "(or R2V_DATA_DIR) the server uses"
                )
            click.echo(
                f"no data directory at {where}: creating one there; a server running with "
                "another --data-dir (or R2V_DATA_DIR) will not know this key",
                err=True,
            )
        ready_data_dir(settings, data_dir is not None)
    with open_keys(settings) as service:
        yield service


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
    with key_service(data_dir, creating=True) as service:
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
    with key_service(data_dir) as service:
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
    with key_service(data_dir) as service:
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
    with key_service(data_dir) as service:
        revoked = service.revoke(key)
    if not revoked:
        click.echo(f"no active key {key!r}; see `r2v keys list`", err=True)
        raise SystemExit(1)
    click.echo(f"revoked {key}")
