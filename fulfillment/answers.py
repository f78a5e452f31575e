"""Answers to the store's questions: stock levels (`fetch_stock`) and tracking numbers (`fetch_tracking_numbers`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, Package


def stock_levels(ctx: Context, shop_id: int, sku: str | None = None) -> dict[str, int]:
    """Units free to sell per SKU on the asking shop's shelves (on hand less reserved), never negative."""
    with ctx.db.transaction() as session:
        levels = ctx.warehouse(session).stock_levels(shop_id, sku)
    if sku is not None and sku not in levels:
        levels[sku] = 0
    return {name: max(0, units) for name, units in levels.items()}


def tracking_numbers(ctx: Context, shop_id: int, fulfillment_names: Iterable[str]) -> dict[str, str]:
    """Tracking numbers of our shipped packages by the store's fulfillment name (`#1001.1`)."""
    names = [name for name in fulfillment_names if name]
    if not names:
        return {}
    with ctx.db.transaction() as session:
        rows = session.execute(
            select(Package.fulfillment_name, Package.tracking_number)
            .join(FulfillmentOrder, Package.fulfillment_order_id == FulfillmentOrder.id)
            .where(FulfillmentOrder.shop_id == shop_id, Package.fulfillment_name.in_(names))
        ).all()
    return {name: number for name, number in rows}
