"""Finished videos and uploads on local disk, under the data dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from r2v.tasks.ports import BlobLocation


class LocalBlobStore:
    """A `BlobStore` keeping each object as a file below `root`; keys are relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"blob key {key!r} points outside the store")
        return path

    def put(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.move(str(source), partial)
        # rename is atomic: a reader sees the whole file or none
        os.replace(partial, target)

    def locate(self, key: str) -> BlobLocation | None:
        path = self._path(key)
        return BlobLocation(path=path) if path.is_file() else None

    def download(self, key: str, dest: Path) -> bool:
        path = self._path(key)
        if not path.is_file():
            return False
        try:
            dest.hardlink_to(path)  # same disk: no copy at all
        except OSError:
            shutil.copyfile(path, dest)
        return True

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # drop the per-task directory once it is empty
        parent = path.parent
        if parent != self.root.resolve() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()

    def share(self, key: str, seconds: int) -> str | None:  # noqa: ARG002
        return None  # local files are served by the API, behind its signed links

    def check(self) -> None:
        with tempfile.NamedTemporaryFile(dir=self.root):
            pass  # the directory exists and is writable
