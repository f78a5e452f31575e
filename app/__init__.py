"""The web app: store callbacks, webhooks, install, dashboard, health. `create_app()` builds everything."""

from __future__ import annotations

import redis
from flask import Flask

from fulfillment import logs
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.shops import ActiveShops
from fulfillment.store.throttle import RedisCostBudget
from workers.celery_app import make_celery
from workers.queue import WaitingSweeps


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    logs.configure()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=config.secret_key)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=12 * 3600)
    app.config.update(SESSION_COOKIE_SECURE=config.app_url.startswith("https://"))
    redis_client = redis.Redis.from_url(config.redis_url, socket_timeout=5)
    # Store calls made from the web (install, operator actions) draw on the same per-shop budget as the workers.
    app.extensions["fulfillment"] = Context.from_config(config, budget=RedisCostBudget(redis_client))
    app.extensions["celery"] = make_celery(config)
    app.extensions["redis"] = redis_client
    # The store pings for every merchant action; which shops are installed is read at most every few seconds.
    app.extensions["active_shops"] = ActiveShops(app.extensions["fulfillment"].db)
    # A burst of pings for one shop folds into its waiting sweep on one word from Redis (`FOLD_WINDOW_S`).
    app.extensions["waiting_sweeps"] = WaitingSweeps()

    from app import api, callbacks, cli, dashboard, edge, health, install, limits, metrics, request_log, webhooks

    request_log.init_app(app)
    # Inside the wrappers edge adds, so the chunked-body limit and the proxy fix apply to it as well.
    app.wsgi_app = callbacks.NotificationPath(app.wsgi_app, app)
    edge.init_app(app, config)
    limiter = limits.init_app(app, config)
    app.register_blueprint(callbacks.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(install.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(dashboard.bp)
    dashboard.auth.apply_limits(app, limiter)
    limits.check_scope(app, limiter)
    metrics.init_app(app, config)
    cli.register(app)
    return app
