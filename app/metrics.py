"""Prometheus metrics at `/metrics`, and the count of every HTTP request the web app answers."""

from __future__ import annotations

import hmac
import logging

import redis
from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from fulfillment.config import Config
from fulfillment.metrics import BufferedCounter, MetricsCollector, http_requests, shop_domains

bp = Blueprint("metrics", __name__)
log = logging.getLogger("app.metrics")
# Any other method a client sends is counted as "other", so strangers cannot add series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app: Flask, config: Config) -> None:
    # Its own client with short timeouts: counting a request must never hold the request up for long.
    client = redis.Redis.from_url(config.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    context = app.extensions["fulfillment"]
    registry = CollectorRegistry()
    registry.register(
        MetricsCollector(
            client,
            queues=(app.extensions["celery"].conf.task_default_queue,),
            shops=lambda: shop_domains(context),
            budget_metrics=getattr(context.budget, "metrics", None),
        )
    )
    app.extensions["metrics"] = (BufferedCounter(http_requests(client)), registry)
    app.after_request(_count_request)
    app.register_blueprint(bp)


def _count_request(response: Response) -> Response:
    counter, _registry = current_app.extensions["metrics"]
    # The route's name, not its path: paths carry ids and would make a series per fulfillment order.
    current = request._get_current_object()  # one proxy lookup, not one per attribute
    endpoint = current.endpoint or "unmatched"
    method = current.method if current.method in METHODS else "other"
    counter.inc(endpoint, method, str(response.status_code))
    return response


@bp.get("/metrics")
def metrics():
    # The scrape names shops and their volumes: with METRICS_TOKEN set, only a scraper that has it reads them.
    expected = current_app.extensions["fulfillment"].config.metrics_token
    if expected:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            abort(401, description="/metrics needs the METRICS_TOKEN bearer token")
    counter, registry = current_app.extensions["metrics"]
    try:
        counter.flush()  # this process's own counts at least are in the answer
    except redis.RedisError as exc:
        log.debug("request_metrics_held error=%s", type(exc).__name__)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
