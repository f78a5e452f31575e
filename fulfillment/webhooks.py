"""What each webhook topic means for us. Fulfillment-order topics only prompt a sweep (the store stays the
truth); uninstall stops all work for the shop; the privacy topics remove or report the personal data we hold."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from fulfillment.context import Context, ShopNotConnected
from fulfillment.intake import Received, Refused
from fulfillment.models import Delivery, FulfillmentOrder, Shop, utcnow
from fulfillment.store import operations as ops
from fulfillment.store.errors import StoreError, Unauthorized

log = logging.getLogger("fulfillment.webhooks")

# The topics we subscribe to by mutation; the privacy topics are configured with the app itself.
SUBSCRIBED_TOPICS = (
    "FULFILLMENT_ORDERS_FULFILLMENT_REQUEST_SUBMITTED",
    "FULFILLMENT_ORDERS_CANCELLATION_REQUEST_SUBMITTED",
    "FULFILLMENT_ORDERS_CANCELLED",
    "FULFILLMENT_ORDERS_MOVED",
    "FULFILLMENT_ORDERS_PLACED_ON_HOLD",
    "FULFILLMENT_ORDERS_HOLD_RELEASED",
    "FULFILLMENT_ORDERS_SPLIT",
    "FULFILLMENT_ORDERS_MERGED",
    "APP_UNINSTALLED",
)
PRIVACY_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
# What a redaction empties: the ship-to name and address, and the merchant's free-text notes on the orders.
REDACTED_FIELDS = ("destination", "merchant_notes")


@dataclass(frozen=True)
class Outcome:
    sweep: bool = False
    report: dict | None = None


def handle(ctx: Context, shop_id: int, topic: str, payload: dict) -> Outcome:
    topic = topic.strip().lower()
    if topic.startswith("fulfillment_orders/") or topic.startswith("fulfillments/"):
        return Outcome(sweep=True)
    if topic == "app/uninstalled":
        confirm_uninstalled(ctx, shop_id, topic)
        uninstall(ctx, shop_id)
        return Outcome()
    if topic == "shop/redact":
        confirm_uninstalled(ctx, shop_id, topic)
        count = redact(ctx, shop_id, order_ids=None)
        _log_redaction(ctx, shop_id, topic, count)
        return Outcome()
    if topic == "customers/redact":
        count = redact(ctx, shop_id, order_ids=_ids(payload, "orders_to_redact"))
        _log_redaction(ctx, shop_id, topic, count)
        return Outcome()
    if topic == "customers/data_request":
        report = data_report(ctx, shop_id, _ids(payload, "orders_requested"))
        log.info(
            "privacy_data_request shop_id=%s data_request=%s orders=%s fields=%s",
            shop_id,
            _request_id(payload),
            len(report["orders"]),
            ",".join(report["fields"]) or "none",
        )
        return Outcome(report=report)
    log.info("webhook_ignored shop_id=%s topic=%r", shop_id, topic[:100])
    return Outcome()


def process(ctx: Context, received: Received) -> Outcome:
    """`handle`, and if it fails, forget the delivery so that the store's retry is processed, not dropped."""
    try:
        return handle(ctx, received.shop_id, received.topic, received.payload)
    except Exception:
        if received.delivery_key is not None:
            with ctx.db.transaction() as session:
                session.execute(
                    delete(Delivery).where(Delivery.source == "webhook", Delivery.delivery_key == received.delivery_key)
                )
        raise


def _ids(payload: dict, key: str) -> list[str]:
    """Order ids from a privacy payload (numbers or gids); anything else in the list is ignored."""
    values = payload.get(key)
    if not isinstance(values, list):
        return []
    return [str(v) for v in values if isinstance(v, (int, str)) and not isinstance(v, bool)]


def _request_id(payload: dict) -> str:
    data_request: Any = payload.get("data_request")
    value = data_request.get("id") if isinstance(data_request, dict) else None
    return str(value)[:64] if isinstance(value, (int, str)) else "-"


def _log_redaction(ctx: Context, shop_id: int, topic: str, count: int) -> None:
    log.info(
        "privacy_redaction topic=%s shop_id=%s fulfillment_orders=%s removed=%s",
        topic,
        shop_id,
        count,
        ",".join(REDACTED_FIELDS),
    )


def confirm_uninstalled(ctx: Context, shop_id: int, topic: str) -> None:
    """Before a topic that cannot be undone: ask the store whether the app is really gone from the shop.

    The signature binds only the body, and a body can be replayed. The store itself is the witness: a token
    that still works means the app is still installed, so the webhook is refused (409) and nothing is done. A
    shop whose token we no longer hold was uninstalled here already, confirmed then. When the store cannot be
    asked, nothing is done either (503): the store retries, and the next try asks again.
    """
    with ctx.db.transaction() as session:
        shop = session.get(Shop, shop_id)
        domain = shop.domain
        try:
            client = ctx.store_for(shop)
        except ShopNotConnected:
            client = None
        except ValueError:  # the token cannot be decrypted with our keys: the store cannot be asked
            _decided(domain, shop_id, topic, "unconfirmed", "the stored token cannot be decrypted")
            raise Refused(503, "cannot confirm with the store; try again later") from None
    if client is None:
        _decided(domain, shop_id, topic, "confirmed", "no token held since an earlier uninstall")
        return
    try:
        ops.shop_info(client)
    except Unauthorized:
        _decided(domain, shop_id, topic, "confirmed", "the store refused the shop's token")
        return
    except StoreError as exc:
        _decided(domain, shop_id, topic, "unconfirmed", type(exc).__name__)
        raise Refused(503, "cannot confirm with the store; try again later") from exc
    _decided(domain, shop_id, topic, "refused", "the store still answers the shop's token")
    raise Refused(409, "the store says the app is still installed on this shop")


def _decided(domain: str, shop_id: int, topic: str, decision: str, reason: str) -> None:
    # The record of what was decided and why; `refused` on a signed webhook means someone replayed one.
    level = logging.WARNING if decision != "confirmed" else logging.INFO
    log.log(
        level,
        "webhook_decision topic=%s shop=%s shop_id=%s decision=%s reason=%r",
        topic,
        domain,
        shop_id,
        decision,
        reason,
    )


def uninstall(ctx: Context, shop_id: int) -> None:
    """Forget the token (it is revoked anyway); the shop's sweeps and steps stop because it is no longer active."""
    with ctx.db.transaction() as session:
        shop = session.get(Shop, shop_id)
        shop.access_token_ciphertext = None
        shop.uninstalled_at = utcnow()
        domain = shop.domain
    log.info("shop_uninstalled shop=%s shop_id=%s token=forgotten", domain, shop_id)


def _numeric(order_id: str) -> str:
    return order_id.rsplit("/", 1)[-1]


def _matching(session, shop_id: int, order_ids: list[str] | None) -> list[FulfillmentOrder]:
    query = (
        select(FulfillmentOrder)
        .where(FulfillmentOrder.shop_id == shop_id)
        .options(selectinload(FulfillmentOrder.merchant_requests))
        .order_by(FulfillmentOrder.id)
    )
    records = session.scalars(query).all()
    if order_ids is None:
        return list(records)
    wanted = {_numeric(o) for o in order_ids}
    return [r for r in records if _numeric(r.order_id) in wanted]


def redact(ctx: Context, shop_id: int, order_ids: list[str] | None) -> int:
    """Remove names, addresses and notes; keep what the warehouse's books need (SKUs, quantities, tracking).

    `order_ids` None means every order of the shop (shop/redact). Returns the fulfillment orders touched.
    """
    with ctx.db.transaction() as session:
        records = _matching(session, shop_id, order_ids)
        for record in records:
            record.destination = None
            for note in record.merchant_requests:
                note.message = None
        return len(records)


def data_report(ctx: Context, shop_id: int, order_ids: list[str]) -> dict:
    """The personal data we hold on these orders: ship-to names and addresses, and the merchant's notes."""
    with ctx.db.transaction() as session:
        held = []
        for record in _matching(session, shop_id, order_ids):
            notes = [n.message for n in record.merchant_requests if n.message]
            if record.destination or notes:
                held.append(
                    {
                        "order_id": record.order_id,
                        "order_name": record.order_name,
                        "fulfillment_order_id": record.store_id,
                        "destination": record.destination,
                        "merchant_notes": notes,
                    }
                )
    fields = {f"destination.{k}" for h in held for k in (h["destination"] or {})}
    if any(h["merchant_notes"] for h in held):
        fields.add("merchant_notes")
    return {"orders": held, "fields": sorted(fields)}
