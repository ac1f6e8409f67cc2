"""Probing untrusted media in a child process, so a decoder crash or hang fails one task.

The child runs `python -m r2v.media.probe --deep PATH`, which decodes every frame, with a
time limit, an address-space limit, no core dumps and a bare environment; whatever it does,
the server only reads one line of JSON back. A file that decoded whole in the child is one
the renderer can decode in the server process.
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


class Prober:
    """Runs the probe command on a file and returns what it found."""

    def __init__(
        self, timeout_seconds: float = 30.0, memory_limit_bytes: int = MEMORY_LIMIT_BYTES
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.memory_limit_bytes = memory_limit_bytes

    def _limit_child(self) -> None:  # runs in the child between fork and exec
        limit = self.memory_limit_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def probe(self, path: Path) -> MediaInfo:
        """The file's MediaInfo, or `ReferenceInvalid` saying why it cannot be used."""
        try:
            done = subprocess.run(
                [sys.executable, "-m", "r2v.media.probe", "--deep", str(path)],
                capture_output=True,
                timeout=self.timeout_seconds,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
                preexec_fn=self._limit_child,
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
