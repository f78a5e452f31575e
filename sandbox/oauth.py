"""The store's side of installing the app (OAuth authorization-code grant), enough for the app's install flow:
an install page whose button redirects to the app with a signed code, and the code-for-token exchange.

Served at the store's own paths (`/admin/oauth/...`, the shop taken from the Host header, as when a client sends
`https://{shop}/admin/oauth/...` here) and under `/store/<shop>/admin/oauth/...`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, current_app, jsonify, redirect, request

bp = Blueprint("oauth", __name__)

CODE_TTL_S = 600


def _escape(text: str, delimiters: str) -> str:
    # `%` first, so the escapes added for the other delimiters are not escaped again.
    for char in "%" + delimiters:
        if char in text:
            text = text.replace(char, f"%{ord(char):02X}")
    return text


def signing_message(pairs: Iterable[tuple[str, str]]) -> str:
    """What the store signs: each parameter but `hmac` as `name=value`, with `%` and `&` escaped in names and
    values and `=` in names (so a value cannot forge a pair); a list `name[]` as `name=["a", "b"]`; the pairs
    sorted as text, joined with `&`."""
    plain: list[tuple[str, str]] = []
    lists: dict[str, list[str]] = {}
    for name, value in pairs:
        if name == "hmac":
            continue
        if name.endswith("[]"):
            lists.setdefault(name[:-2], []).append(value)
        else:
            plain.append((name, value))
    plain.extend((name, json.dumps(values)) for name, values in lists.items())
    return "&".join(sorted(f"{_escape(name, '&=')}={_escape(value, '&')}" for name, value in plain))


def sign_query(secret: str, pairs: Iterable[tuple[str, str]]) -> str:
    """Hex HMAC-SHA256 of `signing_message`, keyed with the app's client secret."""
    return hmac.new(secret.encode(), signing_message(pairs).encode(), hashlib.sha256).hexdigest()


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


def _find_shop(name: str | None) -> Any:
    """The shop named in the path, or else the one the Host header names (without its port)."""
    name = name or urlsplit(f"//{request.host}").hostname or ""
    shops = _sandbox().store.shops
    return shops.get(name) or shops.get(f"{name}.myshopify.com")


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Install app - {shop}</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
<h1>Install app on {shop}</h1>
<p>The app asks for these permissions:</p>
<ul>{scopes}</ul>
<form method="post">
{hidden}
<button type="submit" id="install">Install</button>
</form>
</body></html>
"""


@bp.get("/admin/oauth/authorize")
@bp.get("/store/<shop_name>/admin/oauth/authorize")
def authorize_page(shop_name: str | None = None) -> Any:
    shop = _find_shop(shop_name)
    if shop is None:
        return "Unknown shop", 404
    args = request.args
    if args.get("client_id") != _sandbox().config.api_key:
        return "Oauth error invalid_request: The client_id is invalid", 400
    if not args.get("redirect_uri"):
        return "Oauth error invalid_request: The redirect_uri is missing", 400
    fields = {k: args.get(k, "") for k in ("client_id", "scope", "redirect_uri", "state")}
    hidden = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in fields["scope"].split(",") if s)
    return PAGE.format(shop=html.escape(shop.domain), scopes=scopes, hidden=hidden)


@bp.post("/admin/oauth/authorize")
@bp.post("/store/<shop_name>/admin/oauth/authorize")
def approve(shop_name: str | None = None) -> Any:
    """The merchant pressed Install: issue a single-use code and send the browser back to the app."""
    shop = _find_shop(shop_name)
    if shop is None:
        return "Unknown shop", 404
    form = request.form
    config = _sandbox().config
    if form.get("client_id") != config.api_key or not form.get("redirect_uri"):
        return "Oauth error invalid_request", 400
    try:
        target = urlsplit(form["redirect_uri"])
    except ValueError:
        return "Oauth error invalid_request: The redirect_uri is invalid", 400
    code = secrets.token_hex(16)
    store = _sandbox().store
    with store.lock:
        store.oauth_codes[code] = {
            "shop": shop.domain,
            "scope": form.get("scope", ""),
            "client_id": config.api_key,
            "expires": time.time() + CODE_TTL_S,
        }
    handle = shop.domain.split(".", 1)[0]
    granted = {
        "code": code,
        "host": base64.b64encode(f"admin.shopify.com/store/{handle}".encode()).decode().rstrip("="),
        "shop": shop.domain,
        "state": form.get("state", ""),
        "timestamp": str(int(time.time())),
    }
    # The redirect URI keeps its own query (a name the store sets is the store's) and the hmac signs it all.
    pairs = [(k, v) for k, v in parse_qsl(target.query, keep_blank_values=True) if k not in {*granted, "hmac"}]
    pairs += granted.items()
    pairs.append(("hmac", sign_query(config.api_secret, pairs)))
    return redirect(urlunsplit(target._replace(query=urlencode(pairs))), code=302)


@bp.post("/admin/oauth/access_token")
@bp.post("/store/<shop_name>/admin/oauth/access_token")
def access_token(shop_name: str | None = None) -> Any:
    shop = _find_shop(shop_name)
    body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    body = body or {}
    config = _sandbox().config
    store = _sandbox().store
    if body.get("client_id") != config.api_key or not hmac.compare_digest(
        str(body.get("client_secret", "")), config.api_secret
    ):
        return jsonify({"error": "invalid_client", "error_description": "Client credentials are invalid"}), 401
    with store.lock:
        grant = store.oauth_codes.pop(str(body.get("code", "")), None)  # single use, even when it fails below
    if shop is None or grant is None or grant["shop"] != shop.domain or grant["expires"] < time.time():
        return jsonify(
            {
                "error": "invalid_request",
                "error_description": "The authorization code was not found or was already used",
            }
        ), 400
    install = store.install_app(shop, grant["scope"], reuse=True)
    return jsonify({"access_token": install.access_token, "scope": install.scopes})
