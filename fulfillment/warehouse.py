"""The warehouse port, and the simulator that stands in for a real WMS by default.

A real WMS plugs in by implementing `Warehouse`; the rest of the app only speaks to this port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, Reservation, StockLevel


@dataclass(frozen=True)
class PackagePlan:
    """What goes in one parcel: (our line item id, quantity) pairs, and the label the carrier gave it."""

    items: tuple[tuple[int, int], ...]
    tracking_number: str
    carrier: str
    tracking_url: str | None


class OutOfStock(Exception):
    def __init__(self, shortages: dict[str, int]):
        super().__init__(", ".join(f"{sku} short by {n}" for sku, n in shortages.items()))
        self.shortages = shortages


class Warehouse(Protocol):
    def available(self, skus: list[str]) -> dict[str, int]: ...

    def reserve(self, record: FulfillmentOrder) -> None: ...

    def release(self, record: FulfillmentOrder) -> None: ...

    def ship(self, items: list[tuple[int, int]]) -> None: ...

    def pick(self, record: FulfillmentOrder) -> None: ...

    def pack(self, record: FulfillmentOrder) -> list[PackagePlan]: ...

    def stock_levels(self, sku: str | None = None) -> dict[str, int]: ...


@dataclass(frozen=True)
class SimulatorSettings:
    carrier: str = "DHL Express"
    tracking_url_template: str = "https://tracking.example.com/{number}"
    max_units_per_package: int = 4
    # Unknown SKUs get this much stock on first sight (the demo); None means unknown SKUs have none.
    default_stock: int | None = None


class SimulatedWarehouse:
    """Stock and reservations in our own tables; picking is instant; packing fills parcels up to a size."""

    def __init__(self, session: Session, settings: SimulatorSettings):
        self.session = session
        self.settings = settings

    def _level(self, sku: str) -> StockLevel | None:
        level = self.session.get(StockLevel, sku)
        if level is None and self.settings.default_stock is not None:
            level = StockLevel(sku=sku, on_hand=self.settings.default_stock)
            self.session.add(level)
            self.session.flush()
        return level

    def _held(self, sku: str) -> int:
        total = self.session.scalar(
            select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
                Reservation.sku == sku, Reservation.state == "held"
            )
        )
        return int(total or 0)

    def available(self, skus: list[str]) -> dict[str, int]:
        result = {}
        for sku in skus:
            level = self._level(sku)
            result[sku] = (level.on_hand if level else 0) - self._held(sku)
        return result

    def reserve(self, record: FulfillmentOrder) -> None:
        wanted: dict[str, int] = {}
        lines = [line for line in record.line_items if line.remaining_quantity > 0 and line.sku]
        for line in lines:
            if self._reservation(line) is None:
                wanted[line.sku] = wanted.get(line.sku, 0) + line.remaining_quantity
        free = self.available(list(wanted))
        shortages = {sku: n - free[sku] for sku, n in wanted.items() if free[sku] < n}
        if shortages:
            raise OutOfStock(shortages)
        for line in lines:
            if self._reservation(line) is None:
                self.session.add(Reservation(line_item_id=line.id, sku=line.sku, quantity=line.remaining_quantity))
        self.session.flush()

    def _reservation(self, line: FulfillmentOrderLineItem) -> Reservation | None:
        return self.session.scalar(select(Reservation).where(Reservation.line_item_id == line.id))

    def release(self, record: FulfillmentOrder) -> None:
        """Give back what is still held (what already shipped left the shelf in `ship`)."""
        for line in record.line_items:
            reservation = self._reservation(line)
            if reservation is not None and reservation.state == "held":
                reservation.state = "released"

    def ship(self, items: list[tuple[int, int]]) -> None:
        """Units left the building: take them off the shelf and out of their reservation."""
        for line_id, quantity in items:
            line = self.session.get(FulfillmentOrderLineItem, line_id)
            reservation = self._reservation(line) if line is not None else None
            level = self._level(line.sku) if line is not None and line.sku else None
            if level is not None:
                level.on_hand -= quantity
            if reservation is not None and reservation.state == "held":
                reservation.quantity -= quantity
                if reservation.quantity <= 0:
                    reservation.quantity = 0
                    reservation.state = "consumed"

    def pick(self, record: FulfillmentOrder) -> None:
        """The simulator's pickers never miss; a real WMS would report short picks here."""

    def pack(self, record: FulfillmentOrder) -> list[PackagePlan]:
        size = max(1, self.settings.max_units_per_package)
        parcels: list[list[tuple[int, int]]] = [[]]
        room = size
        for line in record.line_items:
            left = line.remaining_quantity
            while left > 0:
                if room == 0:
                    parcels.append([])
                    room = size
                take = min(left, room)
                parcels[-1].append((line.id, take))
                left -= take
                room -= take
        plans = []
        for sequence, items in enumerate(p for p in parcels if p):
            number = f"SIM{record.id:07d}{sequence + 1:02d}"
            plans.append(
                PackagePlan(
                    items=tuple(items),
                    tracking_number=number,
                    carrier=self.settings.carrier,
                    tracking_url=self.settings.tracking_url_template.format(number=number),
                )
            )
        return plans

    def stock_levels(self, sku: str | None = None) -> dict[str, int]:
        query = select(StockLevel)
        if sku is not None:
            query = query.where(StockLevel.sku == sku)
        levels = self.session.scalars(query).all()
        return {level.sku: level.on_hand - self._held(level.sku) for level in levels}

    def set_stock(self, sku: str, on_hand: int) -> None:
        level = self.session.get(StockLevel, sku)
        if level is None:
            self.session.add(StockLevel(sku=sku, on_hand=on_hand))
        else:
            level.on_hand = on_hand
        self.session.flush()
