"""Sign-in, sign-out, the session, and the CSRF token every POST must carry."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from urllib.parse import urlsplit

import redis
from flask import abort, g, redirect, render_template, request, session, url_for

from app.dashboard import bp
from app.deps import ctx, redis_client
from fulfillment import operators

log = logging.getLogger("app.dashboard")

_PUBLIC = {"dashboard.login", "dashboard.static"}


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _password_mark(password_hash: str) -> str:
    """Kept in the session: a changed password no longer matches, which signs out every old session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


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
    operator_id = session.get("operator_id")
    operator = operators.get_operator(ctx(), operator_id) if isinstance(operator_id, int) else None
    if operator is None or session.get("password_mark") != _password_mark(operator.password_hash):
        session.pop("operator_id", None)
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
    password = request.form.get("password", "")
    client = request.remote_addr or "-"
    throttle = operators.LoginThrottle(redis_client())
    try:
        if throttle.blocked(email, client):
            log.warning("login_throttled")
            page = render_template(
                "dashboard/login.html",
                next_url=next_url,
                email=email,
                error="Too many failed sign-ins. Wait 15 minutes, then try again.",
            )
            return page, 429, {"Retry-After": str(throttle.window_s)}
        operator = operators.authenticate(ctx(), email, password)
        if operator is None:
            throttle.failed(email, client)
            log.info("login_failed")
            page = render_template(
                "dashboard/login.html", next_url=next_url, email=email, error="Wrong email or password."
            )
            return page, 401
        throttle.succeeded(email, client)
    except redis.RedisError:
        log.exception("login_unavailable")
        page = render_template(
            "dashboard/login.html", next_url=next_url, email=email, error="Sign-in is unavailable right now."
        )
        return page, 503
    # A fresh session on sign-in, so a session planted before it is worth nothing after.
    session.clear()
    session.permanent = True
    session["operator_id"] = operator.id
    session["password_mark"] = _password_mark(operator.password_hash)
    session["csrf"] = secrets.token_urlsafe(32)
    log.info("login operator=%s", operator.id)
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("dashboard.login"))
