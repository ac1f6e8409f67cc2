"""The r2v Python SDK: `Client` and `AsyncClient`. Imports no server code."""

from r2v.client.aio import AsyncClient
from r2v.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    R2VClientError,
    RateLimitError,
    RequestTooLargeError,
    TaskFailedError,
    WaitTimeout,
)
from r2v.client.sync import Client
from r2v.protocol import FAST_MODEL, STANDARD_MODEL, FileObject, TaskList, TaskObject

__all__ = [
    "FAST_MODEL",
    "STANDARD_MODEL",
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "FileObject",
    "GoneError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "R2VClientError",
    "RateLimitError",
    "RequestTooLargeError",
    "TaskFailedError",
    "TaskList",
    "TaskObject",
    "WaitTimeout",
]
