"""Probing untrusted media in a child process, so a decoder crash or hang fails one task.

The child runs the probe of `r2v.media.probe --deep PATH`, which decodes every frame, with a
time limit, an address-space limit and no core dumps (set by the child on itself, before it
imports a decoder) and a bare environment; whatever it does,
the server only reads one line of JSON back. A file that decoded whole in the child is one
the renderer can decode in the server process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from r2v.errors import ReferenceInvalid
from r2v.media.probe import MediaInfo

MEMORY_LIMIT_BYTES = 2 * 1024**3
_CHILD = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
from r2v.media.probe import main
raise SystemExit(main(["--deep", sys.argv[2]]))
"""


class Prober:
    """Runs the probe command on a file and returns what it found."""

    def __init__(
        self, timeout_seconds: float = 30.0, memory_limit_bytes: int = MEMORY_LIMIT_BYTES
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.memory_limit_bytes = memory_limit_bytes

    def probe(self, path: Path) -> MediaInfo:
        """The file's MediaInfo, or `ReferenceInvalid` saying why it cannot be used."""
        try:
            # The child limits itself before it imports a decoder: code run between fork
            # and exec (preexec_fn) is unsafe in a threaded server.
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(self.memory_limit_bytes), str(path)],
                capture_output=True,
                timeout=self.timeout_seconds,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
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
