"""What the store sends us (callbacks and webhooks): verified, parsed, recorded once.

The fulfillment-order notification is a ping, not the data: receiving one only tells us to sweep the shop.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from sqlalchemy.exc import IntegrityError

from fulfillment import schemas
from fulfillment.context import Context
from fulfillment.jsonbody import BadJson, parse_json_object
from fulfillment.models import Delivery
from fulfillment.security import verify_body_signature, verify_query_string
from fulfillment.shop_domain import is_valid_shop_domain
from fulfillment.shops import ActiveShops, active_shop_id, find_shop

NOTIFICATION_KINDS = schemas.NOTIFICATION_KINDS
# How old a signed GET that carries a `timestamp` may be: the window the OAuth redirect is held to as well.
SIGNED_QUERY_MAX_AGE_S = 24 * 3600
# Fields by which a webhook payload names its shop. The signature covers the body only, never the
# X-Shopify-Shop-Domain header, so a payload that names a shop binds the header to it.
_SHOP_FIELDS = ("myshopify_domain", "shop_domain")


class Refused(Exception):
    """The request is not one we act on; `status` is the HTTP answer and `reason` says why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Received:
    shop_id: int
    shop_domain: str
    topic: str
    payload: dict
    duplicate: bool
    # The key the delivery was recorded under (None: not recorded); forgetting it when handling fails lets the
    # store's retry through. It follows from the request, so it takes no part in comparing what was received.
    delivery_key: str | None = field(default=None, compare=False)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if isinstance(value, str) else None


def _signed_domain(ctx: Context, body: bytes, headers: Mapping[str, str]) -> str:
    """The shop domain of a request whose body carries the app's signature (lower-cased), or Refused."""
    if not verify_body_signature(ctx.config.shopify_api_secret, body, _header(headers, "X-Shopify-Hmac-Sha256")):
        raise Refused(401, "invalid or missing X-Shopify-Hmac-Sha256")
    domain = (_header(headers, "X-Shopify-Shop-Domain") or "").lower()
    if not is_valid_shop_domain(domain):
        raise Refused(401, "X-Shopify-Shop-Domain is not a myshopify.com domain")
    return domain


def authenticate(
    ctx: Context, body: bytes, headers: Mapping[str, str], *, allow_uninstalled: bool = False
) -> tuple[int, str]:
    """Check signature and shop before looking at the body; returns (shop id, domain)."""
    domain = _signed_domain(ctx, body, headers)
    with ctx.db.transaction() as session:
        shop = find_shop(session, domain)
        if shop is None or not (shop.active or allow_uninstalled):
            raise Refused(404, f"unknown shop {domain}")
        return shop.id, domain


# Topics that still concern a shop after it uninstalled us: the uninstall itself and the privacy requests.
AFTER_UNINSTALL_TOPICS = {"app/uninstalled", "shop/redact", "customers/redact", "customers/data_request"}


def _parse_json_object(body: bytes) -> dict:
    try:
        return parse_json_object(body)
    except BadJson as exc:
        raise Refused(400, str(exc)) from exc


def _shaped(load, *args) -> dict:
    try:
        return load(*args)
    except schemas.ShapeError as exc:
        raise Refused(400, str(exc)) from exc


def _check_names_this_shop(payload: dict, domain: str) -> None:
    """Refuse a payload that names another shop than the header: a signed body replayed under another shop."""
    named = [(key, payload[key]) for key in _SHOP_FIELDS if key in payload]
    # `domain` is the shop's primary domain, which may be the merchant's own; only a myshopify one is comparable.
    primary = payload.get("domain")
    if isinstance(primary, str) and primary.lower().endswith(".myshopify.com"):
        named.append(("domain", primary))
    for key, value in named:
        # ASCII before lower(): a look-alike letter (the Kelvin sign lowercases to "k") names no shop of ours.
        if not (isinstance(value, str) and value.isascii() and value.strip().lower() == domain):
            raise Refused(401, f"the payload's {key} is not the shop in X-Shopify-Shop-Domain")


def _record_delivery(ctx: Context, domain: str, source: str, key: str, topic: str) -> bool:
    """True when this delivery was seen before."""
    try:
        with ctx.db.transaction() as session:
            session.add(Delivery(shop_domain=domain, source=source, delivery_key=key, topic=topic[:100]))
    except IntegrityError:
        return True
    return False


def receive_notification(
    ctx: Context, body: bytes, headers: Mapping[str, str], shops: ActiveShops | None = None
) -> Received:
    """A ping from the store: signature, then an installed shop (from `shops`, this process's short memory of
    them, when given), then the body."""
    domain = _signed_domain(ctx, body, headers)
    shop_id = shops.lookup(domain) if shops is not None else active_shop_id(ctx.db, domain)
    if shop_id is None:
        raise Refused(404, f"unknown shop {domain}")
    payload = _shaped(schemas.notification, _parse_json_object(body))
    kind = payload["kind"]
    # Callbacks carry no delivery id of their own: repeats are folded by the queue (one sweep waits per shop).
    # When a webhook-style id is present, it is honoured here as well.
    delivery_id = _header(headers, "X-Shopify-Webhook-Id") or _header(headers, "X-Shopify-Event-Id")
    key = delivery_id[:255] if delivery_id else None
    duplicate = _record_delivery(ctx, domain, "callback", key, kind) if key else False
    return Received(shop_id, domain, kind, payload, duplicate, key)


def receive_webhook(ctx: Context, body: bytes, headers: Mapping[str, str]) -> Received:
    topic = (_header(headers, "X-Shopify-Topic") or "").lower()
    shop_id, domain = authenticate(ctx, body, headers, allow_uninstalled=topic in AFTER_UNINSTALL_TOPICS)
    if not topic:
        raise Refused(400, "missing X-Shopify-Topic")
    payload = _shaped(schemas.webhook, topic, _parse_json_object(body))
    _check_names_this_shop(payload, domain)
    # The store's webhook id; without one, a digest of the body and topic. Cut to what the column holds.
    key = (_header(headers, "X-Shopify-Webhook-Id") or hashlib.sha256(body + topic.encode()).hexdigest())[:255]
    duplicate = _record_delivery(ctx, domain, "webhook", key, topic)
    return Received(shop_id, domain, topic, payload, duplicate, key)


def _check_age(timestamp: str | None) -> None:
    """A signed query that carries a timestamp is only good within the window: an old one is a replay."""
    if timestamp is None:
        return
    stamp = timestamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise Refused(401, "the signed request's timestamp is not a number of seconds")
    if abs(time.time() - int(stamp)) > SIGNED_QUERY_MAX_AGE_S:
        raise Refused(401, "the signed request is too old")


def authenticate_query(
    ctx: Context, raw_query: bytes, params: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[int, str]:
    """Signed GET callbacks (fetch_stock, fetch_tracking_numbers).

    Accepted signatures: `X-Shopify-Hmac-Sha256` (base64) over the raw query string, as the store signs these
    pulls, or an `hmac` query parameter (hex) over every other parameter by the store's query-string rule
    (`security.signed_query_message`), repeated `order_names[]` included.
    """
    secret = ctx.config.shopify_api_secret
    signed = verify_body_signature(secret, raw_query, _header(headers, "X-Shopify-Hmac-Sha256"))
    if not signed and "hmac" in params:
        pairs = parse_qsl(raw_query.decode("utf-8", "replace"), keep_blank_values=True)
        signed = verify_query_string(secret, pairs)
    if not signed:
        raise Refused(401, "request is not signed with the app's secret")
    _check_age(params.get("timestamp"))
    domain = (params.get("shop") or _header(headers, "X-Shopify-Shop-Domain") or "").lower()
    if not is_valid_shop_domain(domain):
        raise Refused(401, "shop is not a myshopify.com domain")
    with ctx.db.transaction() as session:
        shop = find_shop(session, domain)
        if shop is None or not shop.active:
            raise Refused(404, f"unknown shop {domain}")
        return shop.id, domain
