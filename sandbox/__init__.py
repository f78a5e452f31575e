"""A local stand-in for a Shopify store, so the fulfillment-service app can be demoed and tested end to end over
real HTTP. A separate program: it shares no code with the app.

`create_app(config)` builds the Flask app (run it as ONE process: the store lives in memory behind a lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from graphql import GraphQLSchema

from sandbox.config import SandboxConfig
from sandbox.graphql_api import Buckets, load_schema
from sandbox.notify import Notifier
from sandbox.store import Store


@dataclass
class Sandbox:
    """Everything a request handler needs, kept in `app.extensions["sandbox"]`."""

    config: SandboxConfig
    store: Store
    schema: GraphQLSchema
    buckets: Buckets
    notifier: Notifier


def create_app(config: dict[str, Any] | None = None) -> Flask:
    from sandbox import graphql_api, merchant_api, oauth

    settings = SandboxConfig.load(config)
    store = Store()
    notifier = Notifier(
        secret=settings.api_secret,
        lock=store.lock,
        callback_timeout_s=settings.callback_timeout_s,
        webhook_timeout_s=settings.webhook_timeout_s,
        retry_delays_s=settings.webhook_retry_delays_s,
        workers=settings.notify_workers,
    )
    store.notifier = notifier
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.merge_slashes = False  # gids in REST paths keep their `//`
    app.extensions["sandbox"] = Sandbox(settings, store, load_schema(), Buckets(), notifier)
    app.register_blueprint(graphql_api.bp)
    app.register_blueprint(merchant_api.bp)
    app.register_blueprint(oauth.bp)
    return app
