"""`r2v generate`, `r2v tasks …` and `r2v download`: the client side, over the SDK.

The server is found through `--base-url` / `R2V_BASE_URL` and the key through `--api-key` /
`R2V_API_KEY`. `--json` prints the task object as the server sent it, for scripts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from r2v.client import Client, TaskObject

EXIT_TASK_FAILED = 1
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])

MODELS = {
    "standard": "seedance-2.0-reference-to-video",
    "fast": "seedance-2.0-fast-reference-to-video",
}


def connection_options(command: F) -> F:
    """--base-url and --api-key, falling back to R2V_BASE_URL and R2V_API_KEY."""
    command = click.option("--api-key", default=None, help="API key (default: $R2V_API_KEY).")(
        command
    )
    command = click.option(
        "--base-url", default=None, help="Server URL (default: $R2V_BASE_URL or :8000)."
    )(command)
    return command


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@contextmanager
def connected(base_url: str | None, api_key: str | None) -> Iterator[Client]:
    """A client, with SDK errors turned into messages and the documented exit codes."""
    from r2v.client import (
        APIConnectionError,
        APIError,
        Client,
        InternalServerError,
        TaskFailedError,
        WaitTimeout,
    )

    try:
        with Client(base_url, api_key) as client:
            yield client
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except TaskFailedError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_TASK_FAILED) from exc
    except (APIConnectionError, InternalServerError, WaitTimeout) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_UNAVAILABLE) from exc
    except APIError as exc:
        click.echo(f"error: {exc.message} ({exc.status} {exc.code})", err=True)
        raise SystemExit(EXIT_REFUSED) from exc


def show(task: TaskObject, as_json: bool) -> None:
    """Print a task: its JSON, or a line a person reads."""
    if as_json:
        click.echo(task.model_dump_json(exclude_none=True))
        return
    line = f"{task.id}  {task.status.value:<10} {task.progress:>3}%  {task.model}"
    if task.error is not None:
        line += f"  {task.error.code}: {task.error.message}"
    click.echo(line)


@click.command()
@click.argument("prompt")
@click.option("--image", "images", multiple=True, help="Image path or URL (repeatable).")
@click.option("--video", "videos", multiple=True, help="Video path or URL (repeatable).")
@click.option("--audio", "audios", multiple=True, help="Audio path or URL (repeatable).")
@click.option("--model", type=click.Choice(list(MODELS)), default="standard", show_default=True)
@click.option("--resolution", type=click.Choice(["480p", "720p"]), default=None)
@click.option(
    "--ratio",
    type=click.Choice(["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"]),
    default=None,
)
@click.option("--duration", type=int, default=None, help="Seconds, 4-15, or -1 (auto).")
@click.option("--seed", type=int, default=None)
@click.option("--no-audio", is_flag=True, help="A video without a soundtrack.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@json_option
@connection_options
def generate(
    prompt: str,
    images: tuple[str, ...],
    videos: tuple[str, ...],
    audios: tuple[str, ...],
    model: str,
    resolution: str | None,
    ratio: str | None,
    duration: int | None,
    seed: int | None,
    no_audio: bool,
    output: Path | None,
    as_json: bool,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Generate a video: upload local references, create, follow progress, download."""
    fields: dict[str, Any] = {
        "model": MODELS[model],
        "prompt": prompt,
        "resolution": resolution,
        "aspect_ratio": ratio,
        "duration": duration,
        "seed": seed,
        "generate_audio": False if no_audio else None,
    }
    with connected(base_url, api_key) as client:
        upload = client.files.url_of
        task = client.videos.create(
            image_urls=[upload(item) for item in images],
            video_urls=[upload(item) for item in videos],
            audio_urls=[upload(item) for item in audios],
            **{k: v for k, v in fields.items() if v is not None},
        )
        if not as_json:
            click.echo(f"task {task.id} created", err=True)
        done = follow(client, task, quiet=as_json)
        target = output or Path(f"{done.id}.mp4")
        client.download(done, target)
        if as_json:
            show(done, as_json)
        else:
            click.echo(str(target))


def follow(client: Client, task: TaskObject, *, quiet: bool) -> TaskObject:
    """Wait for the task with a live progress bar; Ctrl-C offers to cancel it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        transient=True,
        disable=quiet,
    )
    try:
        with bar:
            line = bar.add_task(task.status.value, total=100)

            def update(current: TaskObject) -> None:
                bar.update(line, completed=current.progress, description=current.status.value)

            return client.tasks.wait(task.id, on_progress=update)
    except KeyboardInterrupt:
        interactive = sys.stdin.isatty()
        if interactive and click.confirm(f"\ncancel task {task.id}?", default=True, err=True):
            client.tasks.cancel(task.id)
            click.echo(f"task {task.id} cancelled", err=True)
        else:
            click.echo(f"task {task.id} goes on: r2v tasks cancel {task.id}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None


@click.group()
def tasks() -> None:
    """Look at, list, cancel and wait for tasks."""


@tasks.command("get")
@click.argument("task_id")
@json_option
@connection_options
def tasks_get(task_id: str, as_json: bool, base_url: str | None, api_key: str | None) -> None:
    """Show a task."""
    with connected(base_url, api_key) as client:
        show(client.tasks.retrieve(task_id), as_json)


@tasks.command("list")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--after", default=None, help="The last id of the previous page.")
@click.option(
    "--status", type=click.Choice(["pending", "processing", "completed", "failed"]), default=None
)
@json_option
@connection_options
def tasks_list(
    limit: int,
    after: str | None,
    status: str | None,
    as_json: bool,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """List your tasks, newest first."""
    with connected(base_url, api_key) as client:
        page = client.tasks.list(limit=limit, after=after, status=status)
    if as_json:
        click.echo(page.model_dump_json(exclude_none=True))
        return
    for task in page.data:
        show(task, False)
    if page.has_more:
        click.echo(f"(more: r2v tasks list --after {page.last_id})", err=True)


@tasks.command("cancel")
@click.argument("task_id")
@json_option
@connection_options
def tasks_cancel(task_id: str, as_json: bool, base_url: str | None, api_key: str | None) -> None:
    """Cancel a pending or processing task."""
    with connected(base_url, api_key) as client:
        show(client.tasks.cancel(task_id), as_json)


@tasks.command("wait")
@click.argument("task_id")
@click.option("--timeout", type=float, default=1800.0, show_default=True, help="Seconds.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@json_option
@connection_options
def tasks_wait(
    task_id: str,
    timeout: float,
    output: Path | None,
    as_json: bool,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Wait for a task to end; exit 1 if it failed. `-o` also downloads the video."""
    with connected(base_url, api_key) as client:
        done = client.tasks.wait(task_id, timeout=timeout)
        if output is not None:
            client.download(done, output)
    show(done, as_json)


@click.command()
@click.argument("task_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@connection_options
def download(task_id: str, output: Path | None, base_url: str | None, api_key: str | None) -> None:
    """Download a completed task's video (default: <task id>.mp4)."""
    with connected(base_url, api_key) as client:
        task = client.tasks.retrieve(task_id)
        if task.status.value != "completed":
            click.echo(f"error: task {task_id} is {task.status.value}, not completed", err=True)
            raise SystemExit(EXIT_TASK_FAILED if task.status.value == "failed" else EXIT_REFUSED)
        target = client.download(task, output or Path(f"{task_id}.mp4"))
    click.echo(str(target))
