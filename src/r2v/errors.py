"""The one error tree of r2v.

    R2VError
    ├── RequestError                a request the API refuses (mapped to HTTP once, in api/)
    │   ├── InvalidRequest          400 invalid_request_error, names the field
    │   ├── InvalidTaskId           400, the id is not of the task-unified form
    │   ├── AuthenticationFailed    401, missing, unknown or revoked key
    │   ├── LinkInvalid             403, a result link that was tampered with
    │   ├── NotFound                404, unknown (or someone else's) task or file
    │   ├── Conflict                409, the request does not fit the task's state
    │   ├── LinkExpired             410, a result link past its expiry, or a deleted result
    │   ├── PayloadTooLarge         413, a body over its cap
    │   └── RateLimited             429
    ├── ServiceUnavailable          503, the server cannot take the request now
    ├── TaskFailure                 ends a task as `failed` with `error.code`
    │   ├── ReferenceFetchFailed    reference_fetch_failed: unreachable, refused, too big
    │   ├── ReferenceInvalid        reference_invalid: wrong type, undecodable, over a limit
    │   ├── GenerationFailed        generation_failed: the engine could not render
    │   ├── GenerationTimeout       generation_timeout: the render ran past its limit
    │   ├── RequestCancelled        request_cancelled
    │   ├── ServiceFailure          service_error: the service itself gave up on the task
    │   ├── ParametersRefused       invalid_parameters: an upstream refused the request
    │   ├── ContentPolicyViolation  content_policy_violation: an upstream refused the content
    │   └── UpstreamUnavailable     upstream_unavailable: an upstream refused our key or model
    ├── ConfigurationError          the settings ask for what this install cannot do
    │   └── EngineUnavailable       an engine cannot run here: what to install or set
    ├── LeaseLost                   this worker no longer owns the task: stop, write nothing
    └── HandingBack                 the process is stopping: the task goes back to the queue

Messages are written for the user: what happened and what to change.
"""

from __future__ import annotations


class R2VError(Exception):
    """Base of every error r2v raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestError(R2VError):
    """A request refused by the API; `code` is the machine-readable reason."""

    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(RequestError):
    code = "invalid_parameters"


class InvalidTaskId(RequestError):
    code = "invalid_task_id"


class AuthenticationFailed(RequestError):
    code = "invalid_api_key"


class LinkInvalid(RequestError):
    code = "invalid_signature"


class NotFound(RequestError):
    code = "not_found"


class Conflict(RequestError):
    code = "conflict"


class LinkExpired(RequestError):
    code = "link_expired"


class PayloadTooLarge(RequestError):
    code = "request_too_large"


class RateLimited(RequestError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, param: str | None = None):
        super().__init__(message, param=param)
        self.retry_after = retry_after


class ServiceUnavailable(R2VError):
    code = "service_unavailable"


class TaskFailure(R2VError):
    """Ends the task it happened in as `failed`, with `code` as its `error.code`."""

    code = "unknown_error"


class ReferenceFetchFailed(TaskFailure):
    code = "reference_fetch_failed"


class ReferenceInvalid(TaskFailure):
    code = "reference_invalid"


class GenerationFailed(TaskFailure):
    code = "generation_failed"


class GenerationTimeout(TaskFailure):
    code = "generation_timeout"


class RequestCancelled(TaskFailure):
    code = "request_cancelled"


class ServiceFailure(TaskFailure):
    code = "service_error"


class ParametersRefused(TaskFailure):
    """An upstream found the request's parameters invalid (after r2v's own checks passed)."""

    code = "invalid_parameters"


class ContentPolicyViolation(TaskFailure):
    """An upstream refused the prompt, a reference or its own output on content grounds."""

    code = "content_policy_violation"


class UpstreamUnavailable(TaskFailure):
    """An upstream refused the operator's credentials, account or model: an operator error."""

    code = "upstream_unavailable"


class ConfigurationError(R2VError):
    """The settings ask for something this install cannot do; the message says what to fix."""


class EngineUnavailable(ConfigurationError):
    """An engine the settings ask for cannot run here; the message says what to install."""


class LeaseLost(R2VError):
    """The worker's lease or attempt no longer matches the task row: another owner has it."""


class HandingBack(R2VError):
    """The worker or gateway is shutting down and gives its task back to the queue."""
