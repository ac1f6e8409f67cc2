"""`r2v generate`, `r2v tasks …` and `r2v download`: the client side, over the SDK.

The server is found through `--base-url` / `R2V_BASE_URL` and the key through `--api-key` /
`R2V_API_KEY`. `--json` prints the task object as the server sent it, for scripts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from r2v.cli.exits import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    Failure,
    Refused,
    TaskFailed,
    Unavailable,
)

if TYPE_CHECKING:
    from pydantic import ValidationError

    from r2v.client import Client, TaskObject
    from r2v.protocol import StoryboardShot

F = TypeVar("F", bound=Callable[..., Any])

MODELS = {
    "standard": "seedance-2.0-reference-to-video",
    "fast": "seedance-2.0-fast-reference-to-video",
}
DEFAULT_BASE_URL = "http://127.0.0.1:8000"  # the SDK's own default, which a test holds equal

# The create fields as the command line spells them, for messages about them.
OPTION_OF = {
    "prompt": "PROMPT",
    "image_urls": "--image",
    "video_urls": "--video",
    "audio_urls": "--audio",
    "resolution": "--resolution",
    "aspect_ratio": "--ratio",
    "duration": "--duration",
    "seed": "--seed",
    "generate_audio": "--no-audio",
}


def connection_options(command: F) -> F:
    """--base-url and --api-key, falling back to R2V_BASE_URL and R2V_API_KEY."""
    command = click.option(
        "--api-key",
        envvar="R2V_API_KEY",
        show_envvar=True,
        default=None,
        help="API key: the one `r2v serve` printed, or one from `r2v keys create`.",
    )(command)
    command = click.option(
        "--base-url",
        envvar="R2V_BASE_URL",
        show_envvar=True,
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="The server's URL.",
    )(command)
    return command


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def output_option(help_text: str) -> Callable[[F], F]:
    """-o/--output: where the video goes."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=help_text,
    )


def writable_target(output: Path) -> None:
    """Fail before any work when the video could not be written to `output`."""
    folder = output.parent
    if not folder.is_dir():
        raise Failure(
            f"-o {output}: the directory {folder} does not exist: create it first, or choose "
            "another path"
        )
    if not os.access(folder, os.W_OK):
        raise Failure(f"-o {output}: the directory {folder} is not writable: choose another path")


def is_path(reference: str) -> bool:
    """Whether a reference names a local file to upload (else a URL or an `asset://` id)."""
    return "://" not in reference


def local_references(option: str, references: tuple[str, ...]) -> None:
    """Fail before any work when a reference that is not a URL names no file."""
    for reference in references:
        if is_path(reference) and not Path(reference).is_file():
            raise Failure(
                f"{option} {reference}: no such file: give the path of an existing file, or "
                "an http(s):// URL"
            )


def refused_locally(exc: ValidationError) -> Failure:
    """A create the SDK checked before sending, as one line naming the options."""
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "request"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{OPTION_OF.get(field, field)}: {message}")
    return Failure("; ".join(problems))


@contextmanager
def connected(base_url: str, api_key: str | None) -> Iterator[Client]:
    """A client, with SDK errors turned into messages and the documented exit codes."""
    from pydantic import ValidationError

    from r2v.client import (
        APIConnectionError,
        APIError,
        Client,
        InternalServerError,
        TaskFailedError,
        WaitTimeout,
    )

    if not base_url.startswith(("http://", "https://")):
        raise Failure(
            f"--base-url {base_url} is not an http(s) URL: write it as http://HOST:PORT "
            "(or set R2V_BASE_URL so)"
        )
    if not api_key:
        raise Failure(
            "no API key: pass --api-key or set R2V_API_KEY (`r2v serve` prints one on its "
            "first start; `r2v keys create` makes more)"
        )
    try:
        with Client(base_url, api_key) as client:
            yield client
    except ValidationError as exc:  # a create checked locally, before it is sent
        raise refused_locally(exc) from exc
    except TaskFailedError as exc:
        raise TaskFailed(str(exc)) from exc
    except (APIConnectionError, InternalServerError, WaitTimeout) as exc:
        raise Unavailable(str(exc)) from exc
    except APIError as exc:
        raise Refused(f"{exc.message} ({exc.status} {exc.code})") from exc


def show(task: TaskObject, as_json: bool) -> None:
    """Print a task: its JSON, or a line a person reads."""
    if as_json:
        click.echo(task.model_dump_json(exclude_none=True))
        return
    line = f"{task.id}  {task.status.value:<10} {task.progress:>3}%  {task.model}"
    if task.error is not None:
        line += f"  {task.error.code}: {task.error.message}"
    click.echo(line)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("prompt")
@click.option("--image", "images", multiple=True, help="Image path or URL (repeatable).")
@click.option("--video", "videos", multiple=True, help="Video path or URL (repeatable).")
@click.option("--audio", "audios", multiple=True, help="Audio path or URL (repeatable).")
@click.option(
    "--model",
    type=click.Choice(list(MODELS)),
    default="standard",
    show_default=True,
    help="Seedance 2.0 or Seedance 2.0 fast.",
)
@click.option(
    "--resolution",
    type=click.Choice(["480p", "720p"]),
    default=None,
    help="Output height (default 720p).",
)
@click.option(
    "--ratio",
    type=click.Choice(["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"]),
    default=None,
    help="Aspect ratio (default: adaptive, following the references).",
)
@click.option("--duration", type=int, default=None, help="Seconds, 4-15, or -1 (auto); default 5.")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="The same seed and inputs give the same video (default: a random one).",
)
@click.option("--no-audio", is_flag=True, help="A video without a soundtrack.")
@output_option("Where the video goes (default: <task id>.mp4; with --json, no download).")
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
    base_url: str,
    api_key: str | None,
) -> None:
    """Generate a video: upload local references, create, follow progress, download.

    Ctrl-C offers to cancel the task (without a terminal it leaves it running and prints
    the command that cancels it).
    """
    for option, references in (("--image", images), ("--video", videos), ("--audio", audios)):
        local_references(option, references)
    if output is not None:
        writable_target(output)
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

        def upload(reference: str) -> str:
            return client.files.upload(reference).url if is_path(reference) else reference

        task = client.videos.create(
            image_urls=[upload(item) for item in images],
            video_urls=[upload(item) for item in videos],
            audio_urls=[upload(item) for item in audios],
            **{k: v for k, v in fields.items() if v is not None},
        )
        try:  # from here on, Ctrl-C is about this task
            if not as_json:
                click.echo(f"task {task.id} created", err=True)
            done = follow(client, task, quiet=as_json)
        except KeyboardInterrupt:
            interrupted(client, task)
        if as_json:
            if output is not None:
                client.download(done, output)
            show(done, as_json)
        else:
            target = client.download(done, output or Path(f"{done.id}.mp4"))
            click.echo(str(target))


def follow(client: Client, task: TaskObject, *, quiet: bool) -> TaskObject:
    """Wait for the task with a live progress bar (on stderr, and only on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    )
    with bar:
        line = bar.add_task(task.status.value, total=100)

        def update(current: TaskObject) -> None:
            bar.update(line, completed=current.progress, description=current.status.value)

        return client.tasks.wait(task.id, on_progress=update)


def interrupted(client: Client, task: TaskObject) -> NoReturn:
    """After Ctrl-C: cancel the task if the user says so at a terminal, else say how to;
    exit 130 either way. A second Ctrl-C at the question means "leave it running"."""
    try:
        if sys.stdin.isatty() and click.confirm(
            f"\ncancel task {task.id}?", default=True, err=True
        ):
            client.tasks.cancel(task.id)
            click.echo(f"task {task.id} cancelled", err=True)
            raise SystemExit(EXIT_INTERRUPTED)
    except (click.Abort, KeyboardInterrupt):
        click.echo(err=True)  # end the question's line
    click.echo(f"task {task.id} goes on: r2v tasks cancel {task.id}", err=True)
    raise SystemExit(EXIT_INTERRUPTED)


@click.group()
def tasks() -> None:
    """Look at, list, cancel and wait for tasks."""


@tasks.command("get")
@click.argument("task_id")
@json_option
@connection_options
def tasks_get(task_id: str, as_json: bool, base_url: str, api_key: str | None) -> None:
    """Show a task."""
    with connected(base_url, api_key) as client:
        task = client.tasks.retrieve(task_id)
        show(task, as_json)
        if not as_json:
            for line in storyboard_lines(task):
                click.echo(line)


def storyboard_lines(task: TaskObject) -> list[str]:
    """A finished task's storyboard as a table (time, picture, camera, the grade and weather
    when there are any, the sounds that start in the shot), then its warnings; nothing for a
    task without them."""
    info = task.task_info
    lines: list[str] = []
    if info.storyboard is not None and info.storyboard.shots:
        shots = info.storyboard.shots
        sounds: list[list[str]] = [[] for _ in shots]
        for cue in info.storyboard.sounds:
            # a cue belongs to the shot it starts with (a clip's sound starts as its shot
            # dissolves in, a little before the cut)
            number = min(range(len(shots)), key=lambda n: abs(shots[n].start - cue.start))
            how = [cue.role] + (["loops"] if cue.loops else [])
            if cue.end < shots[-1].end:
                how.append(f"to {cue.end:.2f} s")
            sounds[number].append(f"{cue.plays} ({', '.join(how)})")
        # a look column (grade and weather, "night rain") only when some shot has one
        looks = [" ".join(part for part in (shot.grade, shot.weather) if part) for shot in shots]
        rows = [
            (f"{shot.start:.2f}-{shot.end:.2f} s", shot.shows, _camera(shot),
             *([look] if any(looks) else []), "; ".join(heard))
            for shot, look, heard in zip(shots, looks, sounds, strict=True)
        ]  # fmt: skip
        header = ("time", "shows", "camera", *(["look"] if any(looks) else []), "sound")
        widths = [max(len(row[n]) for row in [header, *rows]) for n in range(len(header) - 1)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  " + "  ".join([*cells, row[-1]]).rstrip())
    lines += [f"  warning: {warning}" for warning in info.warnings or ()]
    return lines


def _camera(shot: StoryboardShot) -> str:
    """The shot's camera, and a clip's speed when it is not played as filmed."""
    if shot.clip_speed is None or shot.clip_speed == 1.0:
        return shot.camera
    return f"{shot.camera} at {shot.clip_speed:g}x"


@tasks.command("list")
@click.option(
    "--limit", type=click.IntRange(1, 100), default=20, show_default=True, help="Tasks a page."
)
@click.option("--after", default=None, help="The last id of the previous page.")
@click.option(
    "--status",
    type=click.Choice(["pending", "processing", "completed", "failed"]),
    default=None,
    help="Only the tasks in this state.",
)
@json_option
@connection_options
def tasks_list(
    limit: int,
    after: str | None,
    status: str | None,
    as_json: bool,
    base_url: str,
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
        same = (f" --status {status}" if status else "") + (
            f" --limit {limit}" if limit != 20 else ""
        )
        click.echo(f"(more: r2v tasks list --after {page.last_id}{same})", err=True)


@tasks.command("cancel")
@click.argument("task_id")
@json_option
@connection_options
def tasks_cancel(task_id: str, as_json: bool, base_url: str, api_key: str | None) -> None:
    """Cancel a pending or processing task."""
    with connected(base_url, api_key) as client:
        show(client.tasks.cancel(task_id), as_json)


@tasks.command("wait")
@click.argument("task_id")
@click.option("--timeout", type=float, default=1800.0, show_default=True, help="Seconds.")
@output_option("Also download the video, to this file.")
@json_option
@connection_options
def tasks_wait(
    task_id: str,
    timeout: float,
    output: Path | None,
    as_json: bool,
    base_url: str,
    api_key: str | None,
) -> None:
    """Wait for a task to end; exit 1 if it failed. `-o` also downloads the video."""
    if output is not None:
        writable_target(output)
    with connected(base_url, api_key) as client:
        done = client.tasks.wait(task_id, timeout=timeout)
        if output is not None:
            client.download(done, output)
    show(done, as_json)


@click.command()
@click.argument("task_id")
@output_option("Where the video goes (default: <task id>.mp4).")
@connection_options
def download(task_id: str, output: Path | None, base_url: str, api_key: str | None) -> None:
    """Download a completed task's video."""
    target = output or Path(f"{task_id}.mp4")
    writable_target(target)
    with connected(base_url, api_key) as client:
        task = client.tasks.retrieve(task_id)
        if task.status.value != "completed":
            failure = TaskFailed if task.status.value == "failed" else Refused
            raise failure(f"task {task_id} is {task.status.value}, not completed")
        target = client.download(task, target)
    click.echo(str(target))
