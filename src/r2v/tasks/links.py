"""Signed result links: an HMAC over the path and the expiry, checked when the link is used.

Links are signed afresh on every read of a task and never stored. The signature covers the
exact path, so a link for one task cannot be bent to another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from r2v.errors import LinkExpired, LinkInvalid

RESULT_PATH = "/results/{task_id}/video.mp4"
LAST_FRAME_PATH = "/results/{task_id}/last_frame.png"
SHARED_FILE_PATH = "/files/{file_id}/content"
CALLBACK_PATH = "/v1/upstream/ark/callback/{token}"


def result_path(task_id: str) -> str:
    """The server-relative path of a task's video."""
    return RESULT_PATH.format(task_id=task_id)


def last_frame_path(task_id: str) -> str:
    """The server-relative path of the PNG of a task's last frame."""
    return LAST_FRAME_PATH.format(task_id=task_id)


def callback_path(token: str) -> str:
    """The server-relative path an upstream calls back at about one task."""
    return CALLBACK_PATH.format(token=token)


def _same(expected: str, given: str) -> bool:
    # bytes: compare_digest refuses str with non-ASCII characters, which strangers can send
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def shared_file_path(file_id: str) -> str:
    """The server-relative path of an upload shared with an upstream by a signed link."""
    return SHARED_FILE_PATH.format(file_id=file_id)


class LinkSigner:
    """Signs and verifies `<path>?expires=<unix seconds>&signature=<mac>`."""

    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        if len(secret) < 16:
            raise ValueError("the link secret must be at least 16 bytes")
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def _mac(self, path: str, expires: int) -> str:
        message = f"{path}\n{expires}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, path: str, now: float) -> str:
        """The path with its query string, valid for `ttl_seconds` from `now`."""
        return self.sign_until(path, int(now) + self.ttl_seconds)

    def sign_until(self, path: str, expires: int) -> str:
        """The path with its query string, valid until the unix time `expires`."""
        return f"{path}?{urlencode({'expires': expires, 'signature': self._mac(path, expires)})}"

    def callback_token(self, task_id: str) -> str:
        """The unguessable token of a task's upstream callback URL: the id and its HMAC."""
        # a message no link path can be: links sign "/<path>\n<expires>"
        return f"{task_id}.{self._mac('upstream-callback:' + task_id, 0)}"

    def task_of_callback(self, token: str) -> str | None:
        """The task a callback token was made for, or None when it is not one of ours."""
        task_id, _dot, _mac = token.rpartition(".")
        if not task_id or not _same(self.callback_token(task_id), token):
            return None
        return task_id

    def verify(self, path: str, expires: str | None, signature: str | None, now: float) -> None:
        """Raise `LinkInvalid` for a missing or wrong signature, `LinkExpired` when too old."""
        # a dozen ASCII digits at most: `²` and `①` pass isdigit, and int() refuses them
        if (
            not signature
            or not expires
            or not (expires.isascii() and expires.isdigit())
            or len(expires) > 12
        ):
            raise LinkInvalid("this link is not signed: ask the task again for a fresh link")
        if not _same(self._mac(path, int(expires)), signature):
            raise LinkInvalid("this link's signature does not match: use the link as given")
        if int(expires) < now:
            raise LinkExpired(
                "this link has expired: GET the task again for a fresh link",
                code="link_expired",
            )
