"""Logs: one JSON object a line on stderr, through the standard logging module, for every process of ours.

Each line carries what it was written under: `request_id` on a web request, `task_id` and `task` in a Celery
task (bound by app/ and workers/ with `bound`), so one request's or one task's lines can be picked out of a stream
that interleaves many.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_bound: ContextVar[dict[str, Any]] = ContextVar("log_fields", default={})  # noqa: B039 - never mutated
# What a record carries of its own (LogRecord's attributes, those a Formatter adds, Python 3.12's taskName): any
# other attribute was given by the caller (`extra=`, a bound field) and goes on the line under its own name.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime", "exc_text", "taskName"}
)


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


def _jsonable(value: Any) -> Any:
    # Dates and times as ISO 8601, anything else json cannot write as its str(): a log line never fails.
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


class JsonLines(logging.Formatter):
    """The formatter of every handler of ours (and of gunicorn's, see gunicorn.conf.py): one JSON object a line,
    `time`, `level`, `logger`, `message`, then `exc_info` and `stack_info` when there are any, then the fields the
    caller gave or bound.

    Our own rather than a JSON logging library's: a general one looks each line's fields up through its format
    string, rename map and reserved list, and was four fifths of a line's cost; this builds the one dict and calls
    json.dumps once, on a line written for every request the store sends.
    """

    def __init__(self, **_kwargs: Any) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's
        # logging's own format ("2026-01-31 12:00:00,123"), the seconds part built once per second.
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return f"{self._second_text},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                line[key] = value
        return json.dumps(line, default=_jsonable)


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
