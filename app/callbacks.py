"""The store's callbacks to our callback URL."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable

import redis
from flask import Blueprint, Flask, jsonify, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length

from app import request_log
from app.deps import ctx
from app.edge import MAX_BODY_BYTES
from app.metrics import METHODS
from fulfillment import answers, logs
from fulfillment.intake import Refused, authenticate_query, receive_notification
from fulfillment.states import Cause
from workers.queue import request_sweep

bp = Blueprint("callbacks", __name__)
log = logging.getLogger("app.callbacks")
PATH = "/fulfillment_order_notification"
# The name its requests are counted under, as a view of this blueprint would be.
ENDPOINT = "callbacks.fulfillment_order_notification"
# The answer to nearly every ping, the same bytes jsonify writes: built once rather than serialised per request.
_OK = b'{"ok":true}\n'


def _log_refused(exc: Refused, path: str) -> None:
    log.warning("refused status=%s reason=%r path=%s", exc.status, exc.reason, path)


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    _log_refused(exc, request.path)
    return jsonify(error=exc.reason), exc.status


def _json(status: int, value: dict) -> tuple[int, bytes]:
    # As Flask's jsonify writes it: sorted keys, compact, a newline.
    return status, json.dumps(value, sort_keys=True, separators=(",", ":")).encode() + b"\n"


class NotificationPath:
    """`POST /fulfillment_order_notification`, answered ahead of Flask's request machinery.

    The store pings this path for every merchant action on every shop, and a flash sale is a burst of them. As a
    Flask view the ping paid for a request context, URL matching, a session, and every hook the dashboard needs,
    more than its own checks cost. Here it keeps every check (signature, shop domain, installed shop, body,
    dedupe, the queued sweep, 503 when the queue is down) and what every answer of ours carries (the request id
    and its closing log line, the request count, nosniff), and pays for nothing else. Every other request goes on
    to Flask. It sits inside the body limit for chunked bodies and the proxy fix (`edge.init_app`).
    """

    def __init__(self, wsgi_app: Callable, flask_app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.flask_app = flask_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.wsgi_app(environ, start_response)
        began = time.perf_counter()
        given = request_log.request_id(environ)
        method = environ.get("REQUEST_METHOD", "")
        notes: dict[str, object] = {}
        extra: list[tuple[str, str]] = []
        with logs.bound(request_id=given):
            if method == "POST":
                status, body = self._answer(environ, notes)
            else:
                status, body = _json(405, {"error": MethodNotAllowed.description})
                extra.append(("Allow", "POST"))
            request_log.closing_line(method, PATH, status, (time.perf_counter() - began) * 1000, notes)
        counter, _registry = self.flask_app.extensions["metrics"]
        counter.inc(ENDPOINT, method if method in METHODS else "other", str(status))
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Request-Id", given),
            *extra,
        ]
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", headers)
        return [body]

    def _answer(self, environ: dict, notes: dict[str, object]) -> tuple[int, bytes]:
        extensions = self.flask_app.extensions
        try:
            length = get_content_length(environ)
            if length is not None and length > MAX_BODY_BYTES:
                return _json(413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})
            body = environ["wsgi.input"].read(length or 0)
            received = receive_notification(
                extensions["fulfillment"], body, EnvironHeaders(environ), extensions["active_shops"]
            )
            notes.update(shop=received.shop_domain, kind=received.topic)
            if received.duplicate:
                return _json(200, {"duplicate": True, "ok": True})
            notes["queued"] = request_sweep(
                extensions["celery"],
                extensions["redis"],
                received.shop_id,
                Cause.CALLBACK,
                waiting=extensions["waiting_sweeps"],
            )
            return 200, _OK
        except Refused as exc:
            _log_refused(exc, PATH)
            return _json(exc.status, {"error": exc.reason})
        except redis.RedisError:
            # The scheduled sweep will find the request anyway; say so rather than pretend.
            log.exception("enqueue_failed shop=%s", notes.get("shop"))
            return _json(503, {"error": "queue unavailable; the request will be picked up by the next sweep"})
        except Exception:
            log.exception("notification_failed")
            return _json(500, {"error": "internal error"})


def _signed_shop() -> int:
    shop_id, _domain = authenticate_query(ctx(), request.query_string, request.args, request.headers)
    return shop_id


@bp.get("/fetch_stock")
@bp.get("/fetch_stock.json")
def fetch_stock():
    shop_id = _signed_shop()
    return jsonify(answers.stock_levels(ctx(), shop_id, request.args.get("sku") or None))


@bp.get("/fetch_tracking_numbers")
@bp.get("/fetch_tracking_numbers.json")
def fetch_tracking_numbers():
    shop_id = _signed_shop()
    names = request.args.getlist("order_names[]") or request.args.getlist("order_names")
    numbers = answers.tracking_numbers(ctx(), shop_id, names)
    return jsonify(tracking_numbers=numbers, message="Successfully received the tracking numbers", success=True)
