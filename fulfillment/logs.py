"""Logs: one JSON object a line on stderr, through the standard logging module, for every process of ours.

Each line carries what it was written under: `request_id` on a web request, `task_id` and `task` in a Celery
task (bound by app/ and workers/ with `bound`), so one request's or one task's lines can be picked out of a stream
that interleaves many.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_bound: ContextVar[dict[str, Any]] = ContextVar("log_fields", default={})  # noqa: B039 - never mutated
FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line logged inside the block (in this thread or task) carries `fields`."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


def bind(**fields: Any) -> object:
    """`bound` for code that opens and closes in two callbacks (a request's before and teardown); returns what
    `unbind` takes."""
    return _bound.set({**_bound.get(), **fields})


def unbind(token: object) -> None:
    _bound.reset(token)  # type: ignore[arg-type]


class BoundFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _bound.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonLines(JsonFormatter):
    """The formatter of every handler of ours (and of gunicorn's, see gunicorn.conf.py)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(FIELDS, rename_fields=RENAMED, **kwargs)


def lean_records() -> None:
    """Leave out of every log record what no line of ours shows: the caller's file and line (found by walking
    the stack at each call), the thread's and the process's names. A third of a line's cost, on every request."""
    logging._srcfile = None  # the documented switch for the caller lookup (the logging HOWTO's "Optimization")
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def handler() -> logging.Handler:
    out = logging.StreamHandler()
    out.setFormatter(JsonLines())
    out.addFilter(BoundFields())
    return out


def configure(level: int = logging.INFO) -> None:
    """Send the root logger's lines, as JSON, to stderr. Like `logging.basicConfig`, a no-op where logging is set
    up already (gunicorn's config from gunicorn.conf.py, a test runner's capture), so safe to call again."""
    root = logging.getLogger()
    if root.handlers:
        return
    lean_records()
    root.addHandler(handler())
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings too, as lines of the `py.warnings` logger


def gunicorn_logconfig() -> dict[str, Any]:
    """gunicorn's own lines (booting, workers) in the same shape, with the filter so a request's lines match."""
    lean_records()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"bound": {"()": BoundFields}},
        "formatters": {"json": {"()": JsonLines}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["bound"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False}},
    }
