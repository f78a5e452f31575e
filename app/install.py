"""Install: the link a merchant follows, and the store's redirect back with the authorization code."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, redirect, render_template, request

from app.deps import active_shops, ctx, redis_client
from fulfillment import install

bp = Blueprint("install", __name__)
log = logging.getLogger("app.install")


@bp.get("/install")
def begin():
    try:
        url = install.authorize_url(ctx(), request.args.get("shop", ""), install.RedisNonceStore(redis_client()))
    except install.InstallRefused as exc:
        return jsonify(error=str(exc)), 400
    return redirect(url)


@bp.get("/auth/callback")
def callback():
    # Every pair as sent, repeated names included: the store's signature covers them all.
    query = list(request.args.items(multi=True))
    try:
        shop_id = install.complete(ctx(), query, install.RedisNonceStore(redis_client()))
    except install.InstallRefused as exc:
        log.warning("install_refused reason=%r", str(exc))
        return jsonify(error=str(exc)), 403
    except install.InstallFailed as exc:
        # The store did not let us finish; the merchant can start the install again and it picks up from here.
        return jsonify(error=str(exc)), 502
    shop = request.args["shop"].lower()
    active_shops().forget(shop)
    # A merchant's browser lands here at the end of the install: a page for people, the same facts for programs.
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        return render_template(
            "install/connected.html",
            shop=shop,
            service_name=ctx().config.service_name,
            admin_url=install.store_admin_url(ctx(), shop),
        )
    return jsonify(installed=shop, shop_id=shop_id)
