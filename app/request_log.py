"""Each web request's log lines carry its request id (the caller's X-Request-Id when it is a plain token, else a
new one, sent back in the answer's X-Request-Id), and every request ends with one line saying how it went: a view
adds what it has to say to that line (`note`) rather than writing a line of its own, each line costing tens of
microseconds on paths the store calls for every merchant action."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from fulfillment import logs

log = logging.getLogger("app.request")
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(environ: dict) -> str:
    """The caller's X-Request-Id when it is a plain token, else a new one."""
    given = environ.get("HTTP_X_REQUEST_ID", "")
    return given if _ACCEPTED_ID.match(given) else uuid.uuid4().hex


def closing_line(method: str, path: str, status: int, elapsed_ms: float, notes: dict[str, Any]) -> None:
    """The one line a request ends with. The path only: query strings can carry what we must not log."""
    said = "".join(f" {name}={value}" for name, value in notes.items())
    log.info("request method=%s path=%s status=%s duration_ms=%.1f%s", method, path, status, elapsed_ms, said)


def note(**fields: Any) -> None:
    """Say `name=value` for each field at the end of this request's closing line."""
    state = g._get_current_object()
    state.request_notes = {**state.get("request_notes", {}), **fields}


def init_app(app: Flask) -> None:
    # `request` and `g` are proxies, each attribute read through them a lookup of the current context: the hooks
    # run on every request, so each takes the objects once.
    @app.before_request
    def _begin() -> None:
        state = g._get_current_object()
        state.request_id = given = request_id(request._get_current_object().environ)
        state.request_started = time.perf_counter()
        state.request_log_token = logs.bind(request_id=given)

    @app.after_request
    def _end(response: Response) -> Response:
        state = g._get_current_object()
        given = getattr(state, "request_id", None)
        if given is not None:
            response.headers["X-Request-Id"] = given
            elapsed_ms = (time.perf_counter() - state.request_started) * 1000
            current = request._get_current_object()
            closing_line(
                current.method, current.path, response.status_code, elapsed_ms, getattr(state, "request_notes", {})
            )
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        token = g._get_current_object().__dict__.pop("request_log_token", None)
        if token is not None:
            logs.unbind(token)
