"""The store's callbacks to our callback URL."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, jsonify, request

from app import request_log
from app.deps import active_shops, celery, ctx, redis_client
from fulfillment import answers
from fulfillment.intake import Refused, authenticate_query, receive_notification
from fulfillment.states import Cause
from workers.queue import request_sweep

bp = Blueprint("callbacks", __name__)
log = logging.getLogger("app.callbacks")
# The answer to nearly every ping, the same bytes jsonify writes: built once rather than serialised per request.
_OK = b'{"ok":true}\n'


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    log.warning("refused status=%s reason=%r path=%s", exc.status, exc.reason, request.path)
    return jsonify(error=exc.reason), exc.status


@bp.post("/fulfillment_order_notification")
def fulfillment_order_notification():
    current = request._get_current_object()  # one proxy lookup on the path the store calls most
    received = receive_notification(ctx(), current.get_data(cache=False), current.headers, active_shops())
    request_log.note(shop=received.shop_domain, kind=received.topic)
    if received.duplicate:
        return jsonify(ok=True, duplicate=True)
    try:
        queued = request_sweep(celery(), redis_client(), received.shop_id, Cause.CALLBACK)
    except redis.RedisError:
        # The scheduled sweep will find the request anyway; say so rather than pretend.
        log.exception("enqueue_failed shop=%s", received.shop_domain)
        return jsonify(error="queue unavailable; the request will be picked up by the next sweep"), 503
    request_log.note(queued=queued)
    return Response(_OK, mimetype="application/json")


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
