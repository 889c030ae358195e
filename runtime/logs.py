"""Structured JSON logs that carry the task, context and trace ids of the work at hand.

Ids live in context variables: code that handles a task binds them once with
:func:`bind_task` and every log line written below it, in any module, carries them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace

_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)
_context_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("context_id", default=None)

# Attributes every LogRecord has; anything else passed through ``extra=`` is emitted as a field.
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@contextlib.contextmanager
def bind_task(task_id: str | None, context_id: str | None) -> Iterator[None]:
    """Attach A2A task and context ids to every log line written inside the block."""
    t1 = _task_id.set(task_id)
    t2 = _context_id.set(context_id)
    try:
        yield
    finally:
        _task_id.reset(t1)
        _context_id.reset(t2)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (task_id := _task_id.get()) is not None:
            entry["task_id"] = task_id
        if (context_id := _context_id.get()) is not None:
            entry["context_id"] = context_id
        span_ctx = trace.get_current_span().get_span_context()
        if span_ctx.is_valid:
            entry["trace_id"] = format(span_ctx.trace_id, "032x")
            entry["span_id"] = format(span_ctx.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger to stderr, as JSON unless ``fmt`` is ``text``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-request access lines from uvicorn and the SDK's debug chatter drown real events.
    for noisy in ("uvicorn.access", "httpx", "httpcore", "a2a"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
