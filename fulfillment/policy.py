"""The decision policy: accept a fulfillment request, or reject it with the store's reason and a message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fulfillment.models import FulfillmentOrder

REQUIRED_ADDRESS_FIELDS = ("address1", "city", "country_code")


@dataclass(frozen=True)
class Rules:
    """Per-shop decision rules (the shop's settings override these defaults)."""

    handling_days: float = 1.0
    blocked_countries: frozenset[str] = frozenset()
    ineligible_skus: frozenset[str] = frozenset()
    service_name: str = "the warehouse"

    @classmethod
    def from_settings(cls, settings: Mapping, **defaults) -> Rules:
        base = cls(**defaults)
        return cls(
            handling_days=float(settings.get("handling_days", base.handling_days)),
            blocked_countries=frozenset(c.upper() for c in settings.get("blocked_countries", base.blocked_countries)),
            ineligible_skus=frozenset(settings.get("ineligible_skus", base.ineligible_skus)),
            service_name=base.service_name,
        )


@dataclass(frozen=True)
class Decision:
    accept: bool
    message: str
    reason: str | None = None  # FulfillmentOrderRejectionReason when rejecting
    line_item_messages: tuple[tuple[str, str], ...] = field(default=())  # (store line item id, message)
    estimated_shipped_at: datetime | None = None


def decide(record: FulfillmentOrder, available: Mapping[str, int], rules: Rules, now: datetime) -> Decision:
    """Accept when the address is shippable and every line is in stock; otherwise name the first problem."""
    destination = record.destination or {}
    missing = [name for name in REQUIRED_ADDRESS_FIELDS if not destination.get(name)]
    if missing:
        return Decision(False, f"Shipping address is incomplete (missing {', '.join(missing)}).", "INCORRECT_ADDRESS")
    country = str(destination.get("country_code", "")).upper()
    if country in rules.blocked_countries:
        return Decision(False, f"We do not deliver to {country}.", "UNDELIVERABLE_DESTINATION")

    lines = [line for line in record.line_items if line.remaining_quantity > 0]
    ineligible = [
        (line.store_id, f"{line.sku or 'no SKU'} cannot be shipped from our warehouse.")
        for line in lines
        if not line.sku or line.sku in rules.ineligible_skus
    ]
    if ineligible:
        return Decision(
            False, "Some items cannot be shipped from our warehouse.", "INELIGIBLE_PRODUCT", tuple(ineligible)
        )

    needed: dict[str, int] = {}
    for line in lines:
        needed[line.sku] = needed.get(line.sku, 0) + line.remaining_quantity
    short = [
        (
            line.store_id,
            f"{line.sku}: {max(available.get(line.sku, 0), 0)} in stock, {needed[line.sku]} needed.",
        )
        for line in lines
        if available.get(line.sku, 0) < needed[line.sku]
    ]
    if short:
        return Decision(False, "Not enough stock for some items.", "INVENTORY_OUT_OF_STOCK", tuple(short))

    ship_by = now + timedelta(days=rules.handling_days)
    return Decision(
        True,
        f"Accepted by {rules.service_name}; expected to ship by {ship_by:%Y-%m-%d}.",
        estimated_shipped_at=ship_by,
    )
