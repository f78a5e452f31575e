"""Prometheus metrics at `/metrics`, and the count of every HTTP request the web app answers."""

from __future__ import annotations

import hmac
import logging

import redis
from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from fulfillment.config import Config
from fulfillment.metrics import MetricsCollector, record_http_request, shop_domains

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
    app.extensions["metrics"] = (client, registry)
    app.after_request(_count_request)
    app.register_blueprint(bp)


def _count_request(response: Response) -> Response:
    client, _registry = current_app.extensions["metrics"]
    # The route's name, not its path: paths carry ids and would make a series per fulfillment order.
    endpoint = request.endpoint or "unmatched"
    try:
        method = request.method if request.method in METHODS else "other"
        record_http_request(client, endpoint, method, response.status_code)
    except redis.RedisError as exc:
        log.debug("request_metric_lost error=%s", type(exc).__name__)
    return response


@bp.get("/metrics")
def metrics():
    # The scrape names shops and their volumes: with METRICS_TOKEN set, only a scraper that has it reads them.
    expected = current_app.extensions["fulfillment"].config.metrics_token
    if expected:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            abort(401, description="/metrics needs the METRICS_TOKEN bearer token")
    _client, registry = current_app.extensions["metrics"]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
