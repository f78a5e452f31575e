"""Rate limits, through Flask-Limiter with Redis as its storage: every web process counts into the same numbers.

The limits themselves sit with what they protect (the sign-in's in `app.dashboard.auth`); this builds the one
limiter of an app. The client's address is `request.remote_addr`, which is the real client's only behind a
proxy that `TRUSTED_PROXIES` names (werkzeug's ProxyFix, see `app.edge`); otherwise it is the proxy's.

Every limit of ours is on a view of the blueprints in `LIMITED_BLUEPRINTS`, so the limiter's per-request hooks
run for those blueprints only: on every other request they found nothing to limit, at some 70 microseconds each
time, on the store's callbacks among them. A limit put on any other view is refused when the app is built.
"""

from __future__ import annotations

import functools

from flask import Flask, request
from flask_limiter import Limiter

from fulfillment.config import Config

KEY_PREFIX = "fulfillment:limits"
LIMITED_BLUEPRINTS = ("dashboard",)


def client_address() -> str:
    return request.remote_addr or "-"


def init_app(app: Flask, config: Config) -> Limiter:
    limiter = Limiter(
        client_address,
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
    limiter.init_app(app)
    _scope_hooks(app, limiter, LIMITED_BLUEPRINTS)
    return limiter


def _is_limiter_hook(func, limiter: Limiter) -> bool:
    # Its hooks are its bound methods, and a partial of one of its functions with the limiter as first argument.
    if isinstance(func, functools.partial):
        return bool(func.args) and func.args[0] is limiter
    return getattr(func, "__self__", None) is limiter


def _scope_hooks(app: Flask, limiter: Limiter, blueprints: tuple[str, ...]) -> None:
    """Move the limiter's app-wide before/after/teardown hooks onto `blueprints`, first in each list."""
    for table in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        hooks = [f for f in table.get(None, []) if _is_limiter_hook(f, limiter)]
        if not hooks:
            raise RuntimeError("Flask-Limiter's request hooks were not found: check app.limits against its version")
        table[None] = [f for f in table[None] if f not in hooks]
        for name in blueprints:
            table[name] = [*hooks, *table.get(name, [])]


def check_scope(app: Flask, limiter: Limiter) -> None:
    """Refuse an app whose limits sit on a view outside `LIMITED_BLUEPRINTS` (their hooks would not run)."""
    for endpoint, view in app.view_functions.items():
        # The decorator marks its wrapper with (a weak proxy of) its limiter, which compares equal to it.
        limited = getattr(view, "__wrapper-limiter-instance", None) == limiter
        if limited and endpoint.split(".", 1)[0] not in LIMITED_BLUEPRINTS:
            raise RuntimeError(f"{endpoint} carries a rate limit outside {LIMITED_BLUEPRINTS}")
