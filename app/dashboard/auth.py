"""Sign-in, sign-out, the session, the limits on guessing, and the CSRF token every POST must carry."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from urllib.parse import urlsplit

import redis
from flask import Flask, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_limiter import Limiter, RequestLimit

from app.dashboard import bp
from app.deps import ctx, redis_client
from app.limits import client_address
from fulfillment import operators

log = logging.getLogger("app.dashboard")

_PUBLIC = {"dashboard.login", "dashboard.static"}
LOGIN_WINDOW = "15 minutes"
# Failed sign-ins counted three ways, each within LOGIN_WINDOW: one account guessed from one address; one
# password tried across many accounts (a spray, from however many addresses); and one address trying many accounts.
LOGIN_LIMITS = (("account", 5), ("password", 10), ("client", 30))


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _password_mark(password_hash: str) -> str:
    """Kept in the session: a changed password no longer matches, which signs out every old session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _sessions() -> operators.SessionStore:
    return operators.SessionStore(redis_client(), int(current_app.permanent_session_lifetime.total_seconds()))


def _digest(*parts: str) -> str:
    # Keyed with the app's secret, so that the limiter's keys hold no email, address or password, nor a plain
    # hash of a password that could be looked up.
    message = "\x00".join(parts).encode()
    return hmac.new(current_app.secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def _login_key(kind: str):
    def key() -> str:
        email = operators.normalize_email(request.form.get("email", ""))
        if kind == "account":
            return "account:" + _digest(email, client_address())
        if kind == "password":
            return "password:" + _digest(request.form.get("password", ""))
        return "client:" + _digest(client_address())

    return key


def _failed(response) -> bool:
    return response.status_code == 401


def _too_many(limit: RequestLimit):
    log.warning("login_throttled limit=%s", limit.limit)
    page = render_template(
        "dashboard/login.html",
        next_url=request.values.get("next"),
        email=request.form.get("email", "").strip(),
        error="Too many failed sign-ins. Wait 15 minutes, then try again.",
    )
    retry_after = max(1, int(limit.reset_at - time.time()))
    return current_app.response_class(page, 429, {"Retry-After": str(retry_after)})


def apply_limits(app: Flask, limiter: Limiter) -> None:
    """Put the sign-in limits on this app's login view (each app has its own limiter and storage)."""
    view = app.view_functions["dashboard.login"]
    for kind, count in LOGIN_LIMITS:
        view = limiter.limit(
            f"{count} per {LOGIN_WINDOW}",
            key_func=_login_key(kind),
            methods=["POST"],
            deduct_when=_failed,
            on_breach=_too_many,
        )(view)
    app.view_functions["dashboard.login"] = view


@bp.errorhandler(redis.RedisError)
def _redis_unavailable(exc: redis.RedisError):
    # Sessions and the limits on guessing live in Redis: without it nobody can be let in, so say so.
    log.error("dashboard_unavailable error=%s", type(exc).__name__)
    page = render_template(
        "dashboard/login.html",
        next_url=None,
        email="",
        error="Sign-in is unavailable right now.",
    )
    return page, 503


@bp.context_processor
def _template_helpers() -> dict:
    return {"csrf_token": csrf_token}


@bp.before_request
def _guard():
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            abort(403)
    if request.endpoint in _PUBLIC:
        return None
    session_id = session.get("sid")
    operator_id = _sessions().operator_id(session_id) if isinstance(session_id, str) else None
    operator = operators.get_operator(ctx(), operator_id) if operator_id is not None else None
    if operator is None or session.get("password_mark") != _password_mark(operator.password_hash):
        session.pop("sid", None)
        back = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("dashboard.login", next=back))
    g.operator = operator
    return None


@bp.after_request
def _headers(response):
    # No script runs on these pages, and none may: store-supplied text is escaped, and this stops what slips by.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "dashboard.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (an open redirect would help a phishing page)."""
    if target:
        parts = urlsplit(target)
        local = target.startswith("/") and not target.startswith("//") and "\\" not in target
        if local and not parts.scheme and not parts.netloc:
            return target.rstrip("?")
    return url_for("dashboard.queue")


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next")
    if request.method == "GET":
        return render_template("dashboard/login.html", next_url=next_url, email="")
    email = request.form.get("email", "").strip()
    operator = operators.authenticate(ctx(), email, request.form.get("password", ""))
    if operator is None:
        log.info("login_failed")
        page = render_template("dashboard/login.html", next_url=next_url, email=email, error="Wrong email or password.")
        return page, 401
    # A fresh session on sign-in, so a session planted before it is worth nothing after.
    session.clear()
    session.permanent = True
    session["sid"] = _sessions().open(operator.id)
    session["password_mark"] = _password_mark(operator.password_hash)
    session["csrf"] = secrets.token_urlsafe(32)
    log.info("login operator=%s", operator.id)
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout():
    # Ended here, not only in this browser: a copy of the cookie is worth nothing after this.
    session_id = session.get("sid")
    if isinstance(session_id, str):
        _sessions().close(session_id)
    session.clear()
    return redirect(url_for("dashboard.login"))
