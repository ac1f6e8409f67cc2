"""The `r2v` command: the server side (`serve`, `worker`, `keys`) and the client side
(`generate`, `tasks`, `download`).

Heavy imports (the server, the engines) happen inside the commands, so `r2v --help` is fast.
Exit codes scripts can rely on: 0 done; 1 the task failed; 2 wrong usage (a flag, a setting,
a file that is not there); 3 the server refused the request (4xx); 4 the server (or, for
`serve` and `worker`, the database) could not be reached or failed (5xx, timeout);
130 interrupted. `exits.py` turns the errors a user can cause into one line and that code.
"""

from __future__ import annotations

import click

import r2v
from r2v.cli.client import download, generate, tasks
from r2v.cli.exits import Group
from r2v.cli.server import keys, serve, worker


@click.group(cls=Group)
@click.version_option(r2v.__version__, prog_name="r2v")
def main() -> None:
    """r2v: a self-hosted Seedance 2.0 reference-to-video server, and its client."""


for command in (serve, worker, keys, generate, tasks, download):
    main.add_command(command)

__all__ = ["main"]
