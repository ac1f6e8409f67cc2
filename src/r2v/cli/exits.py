"""Exit codes, and the one place where the errors a user can cause become one line.

A mistake in a command, a setting or the environment ends in a single `error: …` line that
says what is wrong and what to do, and a documented code; never in a traceback. An error
not named here is a bug, and keeps its traceback.
"""

from __future__ import annotations

from typing import IO, Any

import click

EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 done, 1 the task failed, 2 wrong usage, 3 the server refused the "
    "request (4xx), 4 the server could not be reached or failed, 130 interrupted."
)
SERVER_EXIT_CODES_HELP = (
    "Exit codes: 0 stopped, 2 a flag, a setting or the environment is wrong (the message "
    "says which), 4 the database cannot be reached, 130 interrupted while starting."
)


class Failure(click.ClickException):
    """Ends the command with `error: <message>` on stderr and `exit_code`: wrong usage."""

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:  # noqa: ARG002 - always stderr
        click.echo(f"error: {self.format_message()}", err=True)


class TaskFailed(Failure):
    exit_code = EXIT_TASK_FAILED


class Refused(Failure):
    """The server refused the request (4xx)."""

    exit_code = EXIT_REFUSED


class Unavailable(Failure):
    """The server (for `serve` and `worker`, the database) could not be reached or failed."""

    exit_code = EXIT_UNAVAILABLE


class Interrupted(Failure):
    exit_code = EXIT_INTERRUPTED


class Group(click.Group):
    """The `r2v` group: its commands end in one line and a documented code on the errors a
    user can cause (settings the install cannot honour, a database that does not answer,
    Ctrl-C while starting)."""

    def invoke(self, ctx: click.Context) -> Any:
        from r2v.errors import ConfigurationError, ServiceUnavailable

        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            raise Failure(exc.message) from exc
        except ServiceUnavailable as exc:
            raise Unavailable(exc.message) from exc
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None
