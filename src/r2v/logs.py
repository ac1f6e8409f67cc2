"""Logging: plain text for people, or one JSON object a line carrying task and request ids.

The ids live in context variables: the API sets the request id for each request, a worker
the task id for each task, and every log record made meanwhile carries them.
"""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import re
import time

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """`text` with its control characters written as escapes (`\\n`, `\\x1b`, …), so a
    value a client sent (a URL, a header) can never start a log line of its own."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in getattr(record, "fields", {}).items():
            entry.setdefault(name, value)
        for name, var in (("request_id", request_id), ("task_id", task_id)):
            value = var.get()
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def fields(**values: object) -> dict[str, object]:
    """The `extra` of a log call whose JSON line carries `values` as fields of their own
    (a text line shows only the message, so the message should say them too)."""
    return {"fields": values}


def json_line(logger: str, message: str, **values: object) -> str:
    """A JSON log line made without logging: for what must be seen whatever the log level."""
    record = logging.LogRecord(logger, logging.INFO, "", 0, message, None, None)
    record.fields = values
    return JsonFormatter().format(record)


class _ContextText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # the message is escaped, not the traceback that may follow it on lines of its own
        record = copy.copy(record)
        record.msg, record.args = escape_controls(record.getMessage()), None
        line = super().format(record)
        ids = " ".join(
            f"{name}={value}"
            for name, value in (("task", task_id.get()), ("request", request_id.get()))
            if value
        )
        return f"{line} [{ids}]" if ids else line


def configure(level: str, fmt: str) -> None:
    """Send every log record to stderr, as text or as JSON lines."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_ContextText("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # one line per HTTP request the fetcher makes is noise, not news
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
