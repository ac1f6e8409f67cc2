"""Probing untrusted media in a child process, so a decoder crash or hang fails one task.

The child runs `python -m r2v.media.probe PATH` with a time limit, an address-space limit
and an empty environment; whatever it does, the server only reads one line of JSON back.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from r2v.errors import ReferenceInvalid
from r2v.media.probe import MediaInfo

MEMORY_LIMIT_BYTES = 2 * 1024**3


def _limit_child() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Prober:
    """Runs the probe command on a file and returns what it found."""

    def __init__(self, timeout_seconds: float = 30.0) -> None:
        self.timeout_seconds = timeout_seconds

    def probe(self, path: Path) -> MediaInfo:
        """The file's MediaInfo, or `ReferenceInvalid` saying why it cannot be used."""
        try:
            done = subprocess.run(
                [sys.executable, "-m", "r2v.media.probe", str(path)],
                capture_output=True,
                timeout=self.timeout_seconds,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
                preexec_fn=_limit_child,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ReferenceInvalid(
                f"reading the file took longer than {self.timeout_seconds:.0f} s: "
                "send a smaller or simpler file"
            ) from exc
        lines = done.stdout.decode(errors="replace").strip().splitlines()
        if done.returncode in (0, 1) and lines:
            try:
                data = json.loads(lines[-1])
                if "error" not in data:
                    return MediaInfo.from_json(lines[-1])
            except (ValueError, TypeError):
                pass
            else:
                raise ReferenceInvalid(str(data["error"]))
        raise ReferenceInvalid(
            "the file could not be decoded (the decoder stopped with "
            f"{_describe_exit(done.returncode)}): send an intact file"
        )


def _describe_exit(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"
