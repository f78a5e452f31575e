"""Rate limits, through Flask-Limiter with Redis as its storage: every web process counts into the same numbers.

The limits themselves sit with what they protect (the sign-in's in `app.dashboard.auth`); this builds the one
limiter of an app. The client's address is `request.remote_addr`, which is the real client's only behind a
proxy that `TRUSTED_PROXIES` names (werkzeug's ProxyFix, see `app.edge`); otherwise it is the proxy's.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter

from fulfillment.config import Config

KEY_PREFIX = "fulfillment:limits"


def client_address() -> str:
    return request.remote_addr or "-"


def init_app(app: Flask, config: Config) -> Limiter:
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=config.redis_url,
        storage_options={"socket_timeout": 5, "socket_connect_timeout": 5},
        # A fixed window opened by the first counted request: "5 in 15 minutes" reads as it is enforced.
        strategy="fixed-window",
        key_prefix=KEY_PREFIX,
        headers_enabled=True,
        retry_after="delta-seconds",
        # Redis unreachable is an error to answer (the sign-in says it is unavailable), never a silent pass.
        swallow_errors=False,
    )
    return limiter
