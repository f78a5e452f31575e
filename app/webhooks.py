"""Webhooks from the store: verified, deduplicated on the webhook id, answered at once."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, jsonify, request

from app.deps import active_shops, celery, ctx, redis_client
from fulfillment import webhooks
from fulfillment.intake import Refused, receive_webhook
from fulfillment.states import Cause
from fulfillment.sweep import scope_for_topic
from workers.queue import request_sweep

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("app.webhooks")


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    log.warning("refused status=%s reason=%r", exc.status, exc.reason)
    return jsonify(error=exc.reason), exc.status


@bp.post("/webhooks")
@bp.post("/webhooks/<path:_topic>")
def receive(_topic: str | None = None):
    body = request.get_data(cache=False)
    received = receive_webhook(ctx(), body, request.headers)
    if received.duplicate:
        log.info("webhook_duplicate shop=%s topic=%s", received.shop_domain, received.topic[:100])
        return jsonify(ok=True, duplicate=True)
    outcome = webhooks.process(ctx(), received)
    # An uninstall (or a shop's redaction) ends what the callbacks took for installed, in this process at once.
    active_shops().forget(received.shop_domain)
    if outcome.sweep:
        try:
            request_sweep(
                celery(), redis_client(), received.shop_id, Cause.WEBHOOK, scope=scope_for_topic(received.topic)
            )
        except redis.RedisError:
            # Recorded already; the scheduled sweep finds what the webhook was about.
            log.exception("enqueue_failed shop=%s", received.shop_domain)
    return jsonify(ok=True, **({"report": outcome.report} if outcome.report else {}))
