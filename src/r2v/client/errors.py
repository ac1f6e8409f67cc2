"""The SDK's errors: one class per HTTP status family, carrying the server's error envelope."""

from __future__ import annotations

from r2v.protocol import TaskObject


class R2VClientError(Exception):
    """Base of every error the SDK raises."""


class APIError(R2VClientError):
    """The server answered with an error envelope."""

    def __init__(
        self, status: int, code: str, message: str, error_type: str, param: str | None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.type = error_type
        self.param = param


class BadRequestError(APIError):
    """400: the request was refused; `param` names the field."""


class AuthenticationError(APIError):
    """401: missing, unknown or revoked API key."""


class PermissionDeniedError(APIError):
    """403."""


class NotFoundError(APIError):
    """404: no such task for this key."""


class ConflictError(APIError):
    """409."""


class RateLimitError(APIError):
    """429."""


class GoneError(APIError):
    """410: an expired link or a deleted result."""


class RequestTooLargeError(APIError):
    """413."""


class InternalServerError(APIError):
    """5xx."""


class APIConnectionError(R2VClientError):
    """The server could not be reached, or the connection broke (after retries)."""


class TaskFailedError(R2VClientError):
    """The task ended `failed`; `code` is its `error.code`."""

    def __init__(self, task: TaskObject) -> None:
        error = task.error
        self.task = task
        self.code = error.code if error else "unknown_error"
        message = error.message if error else "the task failed"
        super().__init__(f"task {task.id} failed: {self.code}: {message}")


class WaitTimeout(R2VClientError):
    """The task did not end within the time `wait` was given."""


ERROR_OF_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    413: RequestTooLargeError,
    429: RateLimitError,
}
