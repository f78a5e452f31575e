"""Installing the app on a shop (the store's OAuth authorization-code grant), and what follows it:
register our fulfillment service, subscribe to the webhooks we need. Reinstalling updates in place.

Also the rotation of the key that encrypts the access tokens we keep."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Protocol
from urllib.parse import urlencode

import requests
from cryptography.fernet import InvalidToken
from sqlalchemy import select

from fulfillment.context import Context
from fulfillment.models import Shop
from fulfillment.security import QueryParams, query_pairs, verify_query_string
from fulfillment.shop_domain import InvalidShopDomain, require_shop_domain
from fulfillment.shops import register_fulfillment_service, save_token
from fulfillment.store import operations as ops
from fulfillment.store.errors import StoreError
from fulfillment.webhooks import SUBSCRIBED_TOPICS

log = logging.getLogger("fulfillment.install")

SCOPES = (
    "write_fulfillments,read_assigned_fulfillment_orders,write_assigned_fulfillment_orders,"
    "read_inventory,write_inventory,read_orders"
)
MAX_CLOCK_SKEW_S = 24 * 3600


class InstallRefused(Exception):
    """The install request or the store's redirect is not one we trust; nothing was called."""


class InstallFailed(Exception):
    """The redirect was genuine but the store did not let us finish (code refused, set-up refused or failed).

    Running the install again is safe: every step updates what an earlier attempt left.
    """


class NonceStore(Protocol):
    def issue(self, shop: str) -> str: ...

    def consume(self, nonce: str) -> str | None:
        """The shop the nonce was issued for, once; None when unknown, expired or already used."""


class RedisNonceStore:
    def __init__(self, redis_client, ttl_s: int = 600):
        self.redis = redis_client
        self.ttl_s = ttl_s

    def issue(self, shop: str) -> str:
        nonce = secrets.token_urlsafe(24)
        self.redis.set(f"fulfillment:oauth-state:{nonce}", shop, ex=self.ttl_s)
        return nonce

    def consume(self, nonce: str) -> str | None:
        if not nonce:
            return None
        # GETDEL: of two requests carrying the same state, exactly one gets the shop back.
        value = self.redis.getdel(f"fulfillment:oauth-state:{nonce}")
        return value.decode() if isinstance(value, bytes) else value


def store_admin_url(ctx: Context, shop: str) -> str:
    base = ctx.config.store_base_url
    return f"{base}/store/{shop}/admin" if base else f"https://{shop}/admin"


def authorize_url(ctx: Context, shop: str, nonces: NonceStore) -> str:
    """Where to send the merchant to approve the install; the shop is checked before anything else."""
    try:
        shop = require_shop_domain(shop)
    except InvalidShopDomain as exc:
        raise InstallRefused(f"not a myshopify.com domain: {shop!r}") from exc
    query = urlencode(
        {
            "client_id": ctx.config.shopify_api_key,
            "scope": SCOPES,
            "redirect_uri": f"{ctx.config.app_url}/auth/callback",
            "state": nonces.issue(shop),
        }
    )
    return f"{store_admin_url(ctx, shop)}/oauth/authorize?{query}"


def _first_values(query: QueryParams) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in query_pairs(query):
        params.setdefault(name, value)
    return params


def verify_redirect(ctx: Context, query: QueryParams, nonces: NonceStore) -> str:
    """Check the store's redirect (shop, signature, age, then our single-use state); returns the shop.

    The signature covers every parameter the redirect carries, repeated ones included. The state is consumed
    last, so a forged or stale redirect cannot use up the merchant's real one.
    """
    pairs = query_pairs(query)
    params = _first_values(pairs)
    try:
        shop = require_shop_domain(params.get("shop", ""))
    except InvalidShopDomain as exc:
        raise InstallRefused("shop is not a myshopify.com domain") from exc
    if not verify_query_string(ctx.config.shopify_api_secret, pairs):
        raise InstallRefused("the redirect's hmac does not match")
    try:
        issued_at = int(params.get("timestamp", "0"))
    except ValueError as exc:
        raise InstallRefused("bad timestamp") from exc
    if abs(time.time() - issued_at) > MAX_CLOCK_SKEW_S:
        raise InstallRefused("the redirect is too old")
    if not params.get("code"):
        raise InstallRefused("no authorization code")
    if nonces.consume(params.get("state", "")) != shop:
        raise InstallRefused("unknown, reused or foreign state")
    return shop


def exchange_code(ctx: Context, shop: str, code: str) -> tuple[str, str]:
    """Trade the authorization code for the shop's offline access token; returns (token, granted scopes)."""
    try:
        response = ctx.http.post(
            f"{store_admin_url(ctx, shop)}/oauth/access_token",
            json={
                "client_id": ctx.config.shopify_api_key,
                "client_secret": ctx.config.shopify_api_secret,
                "code": code,
            },
            timeout=15,
        )
    except requests.RequestException as exc:
        raise InstallFailed(f"the store could not be reached for the token ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise InstallFailed(f"the store refused the code ({response.status_code})")
    try:
        grant = response.json()
        token = grant["access_token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InstallFailed("the store's token answer has no access_token") from exc
    if not isinstance(token, str) or not token:
        raise InstallFailed("the store's token answer has no access_token")
    return token, str(grant.get("scope") or "")


def complete(ctx: Context, query: QueryParams, nonces: NonceStore) -> int:
    """Verify the store's redirect, trade the code for an offline token, then set the shop up; returns its id."""
    pairs = query_pairs(query)
    shop = verify_redirect(ctx, pairs, nonces)
    token, scopes = exchange_code(ctx, shop, _first_values(pairs)["code"])
    missing = sorted(set(SCOPES.split(",")) - set(scopes.split(","))) if scopes else []
    if missing:
        log.warning("install_scopes_missing shop=%s missing=%s", shop, ",".join(missing))
    shop_id = save_token(ctx, shop, token, scopes)
    try:
        set_up(ctx, shop_id)
    except StoreError as exc:
        log.warning("install_setup_failed shop=%s error=%s", shop, exc)
        raise InstallFailed(f"the store refused our set-up: {exc}") from exc
    log.info("shop_installed shop=%s shop_id=%s", shop, shop_id)
    return shop_id


def set_up(ctx: Context, shop_id: int) -> None:
    """Register our fulfillment service and subscribe to our webhooks; safe to run again on reinstall.

    Subscriptions are made to match: one per topic at our current webhook URL. A subscription of ours at
    another URL (the app moved) or a second copy of one is deleted, so a reinstall never doubles deliveries.
    """
    register_fulfillment_service(ctx, shop_id)
    with ctx.db.transaction() as session:
        shop = session.get(Shop, shop_id)
        client = ctx.store_for(shop)
        domain = shop.domain
    uri = f"{ctx.config.app_url}/webhooks"
    kept: set[str] = set()
    for subscription in ops.webhook_subscriptions(client):
        if subscription.topic not in SUBSCRIBED_TOPICS:
            continue
        if subscription.uri == uri and subscription.topic not in kept:
            kept.add(subscription.topic)
            continue
        ops.delete_webhook_subscription(client, subscription.id)
        log.info("webhook_unsubscribed shop=%s topic=%s uri=%s", domain, subscription.topic, subscription.uri)
    for topic in SUBSCRIBED_TOPICS:
        if topic not in kept:
            ops.create_webhook_subscription(client, topic=topic, uri=uri)
    log.info("webhooks_subscribed shop=%s created=%s kept=%s", domain, len(SUBSCRIBED_TOPICS) - len(kept), len(kept))


def rotate_token_key(ctx: Context) -> int:
    """Re-encrypt every stored access token with the first key of the ring; returns how many were rewritten.

    All or nothing: a token no key of the ring can read stops the rotation before anything is written, so an
    old key is never dropped while a token still needs it.
    """
    with ctx.db.transaction() as session:
        shops = session.scalars(select(Shop).where(Shop.access_token_ciphertext.is_not(None)).order_by(Shop.id)).all()
        rotated: dict[int, str] = {}
        unreadable: list[str] = []
        for shop in shops:
            try:
                rotated[shop.id] = ctx.cipher.rotate(shop.access_token_ciphertext)
            except InvalidToken:
                unreadable.append(shop.domain)
        if unreadable:
            raise ValueError(f"no key of the ring decrypts the token of: {', '.join(unreadable)}")
        for shop in shops:
            shop.access_token_ciphertext = rotated[shop.id]
    log.info("token_key_rotated tokens=%s", len(rotated))
    return len(rotated)
