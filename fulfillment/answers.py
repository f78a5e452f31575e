"""Answers to the store's questions: stock levels (`fetch_stock`) and tracking numbers (`fetch_tracking_numbers`)."""

from __future__ import annotations

import re
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


# A fulfillment's name: the order's name and which of its fulfillments. The GraphQL API says "#1001-F1" (as
# recorded), REST and the store's fetch_tracking_numbers pull say "#1001.1"; we keep what fulfillmentCreate said.
FULFILLMENT_NAME = re.compile(r"^(?P<order>.+?)(?:\.|-F)(?P<number>\d+)$")


def fulfillment_name_forms(name: str) -> tuple[str, ...]:
    """The name as given, then its other spelling ("#1001.1" <-> "#1001-F1") when it is a fulfillment's name."""
    match = FULFILLMENT_NAME.match(name)
    if match is None:
        return (name,)
    order, number = match.group("order"), match.group("number")
    return (name, *(form for form in (f"{order}.{number}", f"{order}-F{number}") if form != name))


def tracking_numbers(ctx: Context, shop_id: int, fulfillment_names: Iterable[str]) -> dict[str, str]:
    """Tracking numbers of our shipped packages, keyed by the fulfillment names the store asked about (`#1001.1`),
    whichever way the store spelled the name when the package shipped."""
    asked: dict[str, str] = {}  # any spelling -> the name as asked
    for name in fulfillment_names:
        for form in fulfillment_name_forms(name) if name else ():
            asked.setdefault(form, name)
    if not asked:
        return {}
    with ctx.db.transaction() as session:
        rows = session.execute(
            select(Package.fulfillment_name, Package.tracking_number)
            .join(FulfillmentOrder, Package.fulfillment_order_id == FulfillmentOrder.id)
            .where(FulfillmentOrder.shop_id == shop_id, Package.fulfillment_name.in_(list(asked)))
        ).all()
    return {asked[name]: number for name, number in rows}
