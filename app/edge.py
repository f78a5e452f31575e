"""What every request passes on its way in and out: the body limit, the proxy in front, ids in URLs, errors
answered as JSON, the headers every answer carries, and the session cookie, read only when it was sent."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable

from flask import Flask, Request, Response, jsonify, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from fulfillment.config import Config
from fulfillment.models import MAX_ROW_ID

log = logging.getLogger("app.edge")

MAX_BODY_BYTES = 1024 * 1024


class RowIdConverter(IntegerConverter):
    """`<int:...>` in our routes: 1 to MAX_ROW_ID, at most 10 digits, so no id overflows the database's integer."""

    regex = r"\d{1,10}"

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


class ChunkedBodyLimit:
    """Refuse a chunked body over the limit with 413.

    A chunked body has no Content-Length for Flask to check, and werkzeug then stops reading at the limit: the
    view would see a silently cut body (and the store's signature over it would fail for no visible reason).
    So it is read here, up to one byte past the limit, and handed on with its length.
    """

    def __init__(self, app: Callable, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("wsgi.input_terminated") and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(self.limit + 1)
            if len(body) > self.limit:
                answer = json.dumps({"error": f"the body is larger than {self.limit} bytes"}).encode()
                start_response(
                    "413 Request Entity Too Large",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(answer))),
                        ("X-Content-Type-Options", "nosniff"),
                    ],
                )
                return [answer]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["wsgi.input_terminated"]
        return self.app(environ, start_response)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, as they are, at less cost on requests that carry none.

    Flask opens the session of every request. Its signer is built again each time and the Cookie header parsed,
    together more than the rest of a store callback's checks; here the signer is built once per set of keys,
    and a request without our cookie (the store's callbacks and webhooks, the API) gets an empty session at once.
    """

    def __init__(self) -> None:
        self._signers: dict[tuple, object] = {}

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if keys not in self._signers:
            self._signers[keys] = super().get_signing_serializer(app)
        return self._signers[keys]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # A plain substring test: it can only be wrong by finding the name where it is not, and then the
        # cookies are parsed as usual.
        if app.secret_key and self.get_cookie_name(app) not in request.environ.get("HTTP_COOKIE", ""):
            return self.session_class()
        return super().open_session(app, request)


def _is_dashboard() -> bool:
    return request.path == "/dashboard" or request.path.startswith("/dashboard/")


def _http_error(exc: HTTPException):
    # The dashboard's people get its pages; everyone else (the store, the API's callers) reads JSON.
    if exc.response is not None or _is_dashboard():
        return exc
    response = jsonify(error=exc.description)
    response.status_code = exc.code or 500
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _server_error(exc: InternalServerError):
    if _is_dashboard():
        return exc
    return jsonify(error="internal error"), 500


def _headers(response: Response) -> Response:
    # No answer of ours is to be read as anything but the type it says (a JSON error as HTML, say).
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def init_app(app: Flask, config: Config) -> None:
    """Install all of it; before any blueprint, so that every `<int:...>` route gets the bounded converter."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.session_interface = CookieSessions()
    app.url_map.converters["int"] = RowIdConverter
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.after_request(_headers)
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, MAX_BODY_BYTES)
    if config.trusted_proxies > 0:
        # Only as many hops as there are proxies of ours: a client can prepend any X-Forwarded-For it likes.
        count = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)
