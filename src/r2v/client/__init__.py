"""The r2v Python SDK: `Client` and `AsyncClient`. Imports no server code."""

from r2v.client.client import AsyncClient, Client
from r2v.client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    R2VClientError,
    RateLimitError,
    TaskFailedError,
    WaitTimeout,
)
from r2v.protocol import FAST_MODEL, STANDARD_MODEL, TaskObject

__all__ = [
    "FAST_MODEL",
    "STANDARD_MODEL",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "R2VClientError",
    "RateLimitError",
    "TaskFailedError",
    "TaskObject",
    "WaitTimeout",
]
