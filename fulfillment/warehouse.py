"""The warehouse port, and the simulator that stands in for a real WMS by default.

A real WMS plugs in by implementing `Warehouse`; the rest of the app only speaks to this port.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import false, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fulfillment.models import (
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    Reservation,
    StockLevel,
    StockMovement,
    utcnow,
)


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


class StockRefused(ValueError):
    """A change that would leave fewer than no units on a shelf."""


class Movement(StrEnum):
    """What changed a shelf, or what is held on it (`StockMovement.kind`)."""

    RECEIPT = "receipt"  # goods came in
    ADJUSTMENT = "adjustment"  # found, damaged, lost: a correction by a number of units
    CYCLE_COUNT = "cycle_count"  # the shelf was counted: on hand is now what was counted
    RESERVATION = "reservation"
    SHIPMENT = "shipment"
    RELEASE = "release"


class Warehouse(Protocol):
    """Stock is per shop: `shop_id` names whose shelf; a fulfillment order's own shop is used for its lines."""

    def available(self, shop_id: int, skus: list[str], *, lock: bool = False) -> dict[str, int]:
        """Units free on each shelf; `lock` keeps the shelves locked to the end of the transaction, for a
        `reserve` of the same fulfillment order that follows."""
        ...

    def reserve(self, record: FulfillmentOrder) -> None: ...

    def release(self, record: FulfillmentOrder) -> None: ...

    def ship(self, items: list[tuple[int, int]]) -> None: ...

    def pick(self, record: FulfillmentOrder) -> None: ...

    def pack(self, record: FulfillmentOrder) -> list[PackagePlan]: ...

    def stock_levels(self, shop_id: int, sku: str | None = None) -> dict[str, int]: ...

    def set_stock(self, shop_id: int, sku: str, on_hand: int, *, actor: str = "", note: str = "") -> StockMovement: ...

    def receive(self, shop_id: int, sku: str, units: int, *, actor: str = "", note: str = "") -> StockMovement: ...

    def adjust(self, shop_id: int, sku: str, change: int, *, actor: str = "", note: str = "") -> StockMovement: ...


def _by_sku(item: FulfillmentOrderLineItem | tuple[FulfillmentOrderLineItem, int]) -> str:
    """Shelves are locked in SKU order everywhere (`reserve` too), so workers never wait on each other in a ring."""
    line = item[0] if isinstance(item, tuple) else item
    return line.sku or ""


# Insert-or-nothing for the databases we run on (`_new_level`).
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class SimulatorSettings:
    carrier: str = "DHL Express"
    tracking_url_template: str = "https://tracking.example.com/{number}"
    max_units_per_package: int = 4
    # Unknown SKUs get this much stock on first sight (the demo); None means unknown SKUs have none.
    default_stock: int | None = None


class SimulatedWarehouse:
    """Stock and reservations in our own tables, one shelf per shop and SKU; picking is instant; packing fills
    parcels up to a size. Every change to a shelf or to what it holds is written as a `StockMovement`."""

    def __init__(self, session: Session, settings: SimulatorSettings):
        self.session = session
        self.settings = settings
        # Shelves `available(lock=True)` locked and counted, and in which transaction: the `reserve` that follows
        # in the same transaction takes them from here rather than read them again; any other counts afresh.
        self._counted: tuple[int, object, dict[str, tuple[StockLevel | None, int]]] | None = None

    def _lock(self) -> None:
        """Before a shelf is read to be changed. PostgreSQL locks the row it reads (`FOR UPDATE`); SQLite has no
        row locks, its lock is the database's one writer, held from a transaction's first write to its end: a
        transaction that has written nothing yet writes nothing first, and so reads the shelf as the writer."""
        if self.session.get_bind().dialect.name != "sqlite":
            return
        connection = self.session.connection()
        if not connection.connection.dbapi_connection.in_transaction:  # the driver begins with the first write
            connection.execute(update(StockLevel.__table__).where(false()).values(on_hand=StockLevel.on_hand))

    def _level(self, shop_id: int, sku: str, *, lock: bool = False) -> StockLevel | None:
        query = select(StockLevel).where(StockLevel.shop_id == shop_id, StockLevel.sku == sku)
        if lock:
            # Two workers changing one shelf wait for each other.
            self._lock()
            query = query.with_for_update()
        level = self.session.scalar(query)
        if level is None and self.settings.default_stock is not None:
            level, made = self._new_level(shop_id, sku, lock=lock)
            if made:  # the worker that made the shelf stocks it, once
                self._record(level, Movement.RECEIPT, self.settings.default_stock, note="demo stock for a new SKU")
        return level

    def _new_level(self, shop_id: int, sku: str, *, lock: bool = False) -> tuple[StockLevel, bool]:
        """An empty shelf, and whether this call made it.

        Two workers may both find no shelf and both make it: the insert of the second waits for the first and then
        does nothing (rather than fail on the unique shop and SKU), and both go on with the one shelf. Only here,
        on a shelf's first use: a shelf that exists costs no more statements."""
        insert = _INSERTS[self.session.get_bind().dialect.name]
        made = self.session.scalars(
            insert(StockLevel)
            .values(shop_id=shop_id, sku=sku, on_hand=0)
            .on_conflict_do_nothing(index_elements=[StockLevel.shop_id, StockLevel.sku])
            .returning(StockLevel)
        ).first()
        if made is not None:
            return made, True
        query = select(StockLevel).where(StockLevel.shop_id == shop_id, StockLevel.sku == sku)
        if lock:
            query = query.with_for_update()  # someone else's new shelf: wait for it as for any other
        return self.session.scalars(query).one(), False

    def _held(self, shop_id: int, sku: str) -> int:
        total = self.session.scalar(
            select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
                Reservation.shop_id == shop_id, Reservation.sku == sku, Reservation.state == "held"
            )
        )
        return int(total or 0)

    def _record(
        self,
        level: StockLevel,
        kind: Movement,
        on_hand_change: int = 0,
        reserved_change: int = 0,
        *,
        record_id: int | None = None,
        actor: str = "",
        note: str = "",
        available_after: int | None = None,
    ) -> StockMovement:
        """Apply a change to a shelf and write it down, with what is on hand and free after it (`available_after`
        when the caller knows it, else summed from the shelf's held reservations).

        The shelf's version counts up in the database itself (two workers changing one shelf both count), which
        marks the shelf as owing the store a push (`inventory_sync`), in the same transaction as the change. The
        change is written with the transaction's next flush, unless the shelf already has one waiting (each
        change counts the version up once)."""
        if available_after is None:
            # Summed before the shelf changes, so the sum writes nothing first (what is held does not change).
            available_after = level.on_hand + on_hand_change - self._held(level.shop_id, level.sku)
        if inspect(level).attrs.version.history.added:
            self.session.flush()
        level.on_hand += on_hand_change
        level.version = StockLevel.version + 1
        level.push_due_since = func.coalesce(StockLevel.push_due_since, utcnow())
        movement = StockMovement(
            shop_id=level.shop_id,
            sku=level.sku,
            kind=str(kind),
            on_hand_change=on_hand_change,
            reserved_change=reserved_change,
            on_hand_after=level.on_hand,
            available_after=available_after,
            fulfillment_order_id=record_id,
            actor=actor[:255],
            note=note,
        )
        self.session.add(movement)
        return movement

    def _shelf(self, shop_id: int, sku: str) -> StockLevel:
        """The shelf to change, locked, made empty on first use (no demo stock: the change says what is there).

        Locked because the change is worked out from what is on hand: two changes at once each add their own."""
        self._lock()
        query = select(StockLevel).where(StockLevel.shop_id == shop_id, StockLevel.sku == sku).with_for_update()
        level = self.session.scalar(query)
        return level if level is not None else self._new_level(shop_id, sku, lock=True)[0]

    def available(self, shop_id: int, skus: list[str], *, lock: bool = False) -> dict[str, int]:
        result = {}
        counted: dict[str, tuple[StockLevel | None, int]] = {}
        for sku in sorted(skus) if lock else skus:
            level = self._level(shop_id, sku, lock=lock)
            result[sku] = (level.on_hand if level else 0) - self._held(shop_id, sku)
            counted[sku] = (level, result[sku])
        if lock:
            self._counted = (shop_id, self.session.get_transaction(), counted)
        return result

    def _taken_counts(self, shop_id: int) -> dict[str, tuple[StockLevel | None, int]]:
        """What `available(lock=True)` counted for the shop in this same transaction, once."""
        found, self._counted = self._counted, None
        if found is None or found[0] != shop_id or found[1] is not self.session.get_transaction():
            return {}
        return found[2]

    def reserve(self, record: FulfillmentOrder) -> None:
        wanted: dict[str, int] = {}
        lines = [line for line in record.line_items if line.remaining_quantity > 0 and line.sku]
        held = self._reserved_lines([line.id for line in lines])
        lines = [line for line in lines if line.id not in held]
        for line in lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.remaining_quantity
        levels: dict[str, StockLevel | None] = {}
        free: dict[str, int] = {}
        known = self._taken_counts(record.shop_id)
        for sku in sorted(wanted):
            counted = known.get(sku)
            if counted is None:
                level = self._level(record.shop_id, sku, lock=True)
                # Summed once the shelf is locked, so two workers never promise the same units.
                counted = (level, (level.on_hand if level else 0) - self._held(record.shop_id, sku))
            levels[sku], free[sku] = counted
        shortages = {sku: n - free[sku] for sku, n in wanted.items() if free[sku] < n}
        if shortages:
            raise OutOfStock(shortages)
        for line in lines:
            self.session.add(
                Reservation(
                    shop_id=record.shop_id, line_item_id=line.id, sku=line.sku, quantity=line.remaining_quantity
                )
            )
            free[line.sku] -= line.remaining_quantity
            self._record(
                levels[line.sku],
                Movement.RESERVATION,
                reserved_change=line.remaining_quantity,
                record_id=record.id,
                available_after=free[line.sku],
            )

    def _reserved_lines(self, line_ids: list[int]) -> set[int]:
        """Which of these lines already have a reservation (held, consumed or released): one query for all."""
        if not line_ids:
            return set()
        query = select(Reservation.line_item_id).where(Reservation.line_item_id.in_(line_ids))
        return set(self.session.scalars(query))

    def _reservation(self, line: FulfillmentOrderLineItem) -> Reservation | None:
        return self.session.scalar(select(Reservation).where(Reservation.line_item_id == line.id))

    def release(self, record: FulfillmentOrder) -> None:
        """Give back what is still held (what already shipped left the shelf in `ship`)."""
        for line in sorted(record.line_items, key=_by_sku):
            reservation = self._reservation(line)
            if reservation is not None and reservation.state == "held":
                level = self._shelf(reservation.shop_id, reservation.sku)
                # Counted before the reservation changes, so the count has nothing to write first.
                after = level.on_hand - (self._held(level.shop_id, level.sku) - reservation.quantity)
                reservation.state = "released"
                self._record(
                    level,
                    Movement.RELEASE,
                    reserved_change=-reservation.quantity,
                    record_id=record.id,
                    available_after=after,
                )

    def ship(self, items: list[tuple[int, int]]) -> None:
        """Units left the building: take them off their shop's shelf and out of their reservation.

        Each shelf is locked before units come off it: two shipments at once each take their own."""
        lines = [(self.session.get(FulfillmentOrderLineItem, line_id), quantity) for line_id, quantity in items]
        for line, quantity in sorted(((line, n) for line, n in lines if line is not None and line.sku), key=_by_sku):
            record = line.fulfillment_order
            reservation = self._reservation(line)
            level = self._level(record.shop_id, line.sku, lock=True)
            # Counted before the reservation changes, so the count has nothing to write first.
            held = self._held(record.shop_id, line.sku) if level is not None else 0
            taken = 0
            if reservation is not None and reservation.state == "held":
                taken = min(quantity, reservation.quantity)
                reservation.quantity -= taken
                if reservation.quantity <= 0:
                    reservation.quantity = 0
                    reservation.state = "consumed"
            if level is not None:
                after = level.on_hand - quantity - (held - taken)
                self._record(level, Movement.SHIPMENT, -quantity, -taken, record_id=record.id, available_after=after)

    def set_stock(self, shop_id: int, sku: str, on_hand: int, *, actor: str = "", note: str = "") -> StockMovement:
        """A cycle count: the shelf holds `on_hand` units, whatever the books said."""
        if on_hand < 0:
            raise StockRefused(f"{sku}: a shelf cannot hold fewer than no units")
        level = self._shelf(shop_id, sku)
        return self._record(level, Movement.CYCLE_COUNT, on_hand - level.on_hand, actor=actor, note=note)

    def receive(self, shop_id: int, sku: str, units: int, *, actor: str = "", note: str = "") -> StockMovement:
        if units <= 0:
            raise StockRefused(f"{sku}: a receipt brings at least one unit")
        return self._record(self._shelf(shop_id, sku), Movement.RECEIPT, units, actor=actor, note=note)

    def adjust(self, shop_id: int, sku: str, change: int, *, actor: str = "", note: str = "") -> StockMovement:
        level = self._shelf(shop_id, sku)
        if level.on_hand + change < 0:
            raise StockRefused(f"{sku}: {level.on_hand} on hand, cannot take {-change} away")
        return self._record(level, Movement.ADJUSTMENT, change, actor=actor, note=note)

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

    def stock_levels(self, shop_id: int, sku: str | None = None) -> dict[str, int]:
        """Units free to sell on one shop's shelves (may be below zero when oversold)."""
        query = select(StockLevel).where(StockLevel.shop_id == shop_id)
        if sku is not None:
            query = query.where(StockLevel.sku == sku)
        levels = self.session.scalars(query).all()
        return {level.sku: level.on_hand - self._held(shop_id, level.sku) for level in levels}
