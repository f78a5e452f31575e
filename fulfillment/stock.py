"""Stock in and out, as a warehouse works it: counts, receipts and adjustments on one shop's shelves, a count
sheet imported or exported as CSV, and what the dashboard's stock page shows.

Every merchant's goods are kept apart, so everything here names its shop. The changes themselves go through the
warehouse port (`Warehouse.set_stock`, `receive`, `adjust`), which writes each one down as a `StockMovement`.

A CSV import is a count sheet: `sku,on_hand` per line (other columns, such as the export's `reserved` and
`available`, are ignored, so an exported file can be edited and imported back). It is all or nothing: any bad
line and nothing changes, and the report names every bad line by its number in the file (the header is line 1).
A dry run answers the same report without changing anything.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fulfillment.context import Context
from fulfillment.models import (
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    Reservation,
    Shop,
    StockLevel,
    StockMovement,
    StoreInventoryItem,
)
from fulfillment.operator.actions import Done
from fulfillment.operator.forms import InvalidInput, row_id
from fulfillment.shop_domain import is_valid_shop_domain
from fulfillment.states import FINAL
from fulfillment.warehouse import StockRefused

log = logging.getLogger("fulfillment.stock")

MAX_UNITS = 10_000_000
MAX_SKU_LENGTH = 255
MAX_IMPORT_LINES = 100_000
EXPORT_COLUMNS = ("sku", "on_hand", "reserved", "available")


# --- which shop -------------------------------------------------------------------------------------------


def shop_id_of(session: Session, shop: int | str | None) -> int:
    """The id of the shop named by its id or its domain; with none named, the only shop there is."""
    value = str(shop).strip() if shop is not None else ""
    if not value:
        ids = session.scalars(select(Shop.id).limit(2)).all()
        if len(ids) == 1:
            return ids[0]
        raise InvalidInput(["choose a shop: stock is kept per shop"])
    if value.isascii() and value.isdigit():
        number = row_id(value)  # an id past the database's integer names no shop
        found = session.get(Shop, number) if number is not None else None
    elif is_valid_shop_domain(value):
        found = session.scalar(select(Shop).where(Shop.domain == value.lower()))
    else:
        found = None
    if found is None:
        raise InvalidInput([f"no shop {value!r}"])
    return found.id


# --- what the operator types ------------------------------------------------------------------------------


def parse_sku(sku: str | None) -> str:
    sku = (sku or "").strip()
    if not sku or len(sku) > MAX_SKU_LENGTH:
        raise InvalidInput([f"a SKU has 1 to {MAX_SKU_LENGTH} characters"])
    return sku


def _whole(value: str | int | None) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def parse_stock(sku: str | None, on_hand: str | int | None) -> tuple[str, int]:
    """A counted shelf: a SKU and its units on hand."""
    problems = []
    try:
        sku = parse_sku(sku)
    except InvalidInput as exc:
        problems += exc.problems
    units = _whole(on_hand)
    if units is None or not 0 <= units <= MAX_UNITS:
        problems.append("units on hand must be a whole number from 0")
    if problems:
        raise InvalidInput(problems)
    return sku, units


def parse_change(sku: str | None, units: str | int | None, *, signed: bool) -> tuple[str, int]:
    """A receipt (`signed` False: a number of units from 1) or an adjustment (`signed`: any whole number but 0)."""
    problems = []
    try:
        sku = parse_sku(sku)
    except InvalidInput as exc:
        problems += exc.problems
    number = _whole(units)
    if signed and (number is None or number == 0 or abs(number) > MAX_UNITS):
        problems.append("an adjustment is a whole number of units other than 0, negative to take units away")
    elif not signed and (number is None or not 1 <= number <= MAX_UNITS):
        problems.append("units received must be a whole number from 1")
    if problems:
        raise InvalidInput(problems)
    return sku, number


def _note(note: str | None) -> str:
    return (note or "").strip()[:1000]


# --- counts, receipts, adjustments ------------------------------------------------------------------------


def count(ctx: Context, shop: int | str | None, sku: str | None, on_hand: str | int | None, actor: str) -> Done:
    """The shelf was counted: on hand becomes what was counted."""
    sku, units = parse_stock(sku, on_hand)
    with ctx.db.transaction() as session:
        shop_id = shop_id_of(session, shop)
        movement = ctx.warehouse(session).set_stock(shop_id, sku, units, actor=actor)
    log.info(
        "stock_counted shop=%s sku=%s on_hand=%s change=%s by=%s", shop_id, sku, units, movement.on_hand_change, actor
    )
    return Done(f"{sku}: {units} on hand.")


def receive(
    ctx: Context, shop: int | str | None, sku: str | None, units: str | int | None, actor: str, note: str | None = None
) -> Done:
    """Goods came in: add them to the shelf."""
    sku, number = parse_change(sku, units, signed=False)
    with ctx.db.transaction() as session:
        shop_id = shop_id_of(session, shop)
        movement = ctx.warehouse(session).receive(shop_id, sku, number, actor=actor, note=_note(note))
    log.info("stock_received shop=%s sku=%s units=%s by=%s", shop_id, sku, number, actor)
    return Done(f"{sku}: {number} received, {movement.on_hand_after} on hand.")


def adjust(
    ctx: Context, shop: int | str | None, sku: str | None, change: str | int | None, note: str | None, actor: str
) -> Done:
    """A correction by a number of units (found, damaged, lost); the note says why, for whoever reads it later."""
    problems = []
    try:
        sku, number = parse_change(sku, change, signed=True)
    except InvalidInput as exc:
        problems += exc.problems
    if not _note(note):
        problems.append("say why in the note: an adjustment without a reason cannot be checked later")
    if problems:
        raise InvalidInput(problems)
    with ctx.db.transaction() as session:
        shop_id = shop_id_of(session, shop)
        try:
            movement = ctx.warehouse(session).adjust(shop_id, sku, number, actor=actor, note=_note(note))
        except StockRefused as exc:
            raise InvalidInput([str(exc)]) from exc
    log.info("stock_adjusted shop=%s sku=%s change=%s by=%s", shop_id, sku, number, actor)
    return Done(f"{sku}: adjusted by {number:+d}, {movement.on_hand_after} on hand.")


# --- what the stock page shows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StockRow:
    shop_id: int
    shop_domain: str
    sku: str
    on_hand: int
    reserved: int
    needed: int  # units on the shop's open fulfillment orders not yet shipped
    # How the SKU stands with the store's inventory (`inventory_sync`): matched, unmatched, duplicate, not_stocked;
    # empty until the first push looked.
    store_item: str = ""

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def store_item_note(self) -> str:
        """What the operator is told about the store's item for this SKU (its quantity is pushed only if matched)."""
        return STORE_ITEM_NOTES.get(self.store_item, "")


STORE_ITEM_NOTES = {
    "matched": "pushed to the store",
    "unmatched": "no item with this SKU on the store: not pushed",
    "duplicate": "several items on the store have this SKU: not pushed",
    "not_stocked": "the store's item is not stocked at our location: not pushed",
    "": "not looked up yet",
}


def levels(ctx: Context, shop_id: int | None = None) -> list[StockRow]:
    """Every SKU a shop has on our shelves or has asked us for, with what is on the shelf, held and wanted;
    of every shop (by domain) when none is named."""
    with ctx.db.transaction() as session:
        return _levels(session, shop_id)


def _levels(session: Session, shop_id: int | None) -> list[StockRow]:
    def of_shop(query, column):
        return query.where(column == shop_id) if shop_id is not None else query

    on_hand = {
        (shop, sku): units
        for shop, sku, units in session.execute(
            of_shop(select(StockLevel.shop_id, StockLevel.sku, StockLevel.on_hand), StockLevel.shop_id)
        )
    }
    reserved = {
        (shop, sku): units
        for shop, sku, units in session.execute(
            of_shop(
                select(Reservation.shop_id, Reservation.sku, func.sum(Reservation.quantity))
                .where(Reservation.state == "held")
                .group_by(Reservation.shop_id, Reservation.sku),
                Reservation.shop_id,
            )
        )
    }
    needed = {
        (shop, sku): units
        for shop, sku, units in session.execute(
            of_shop(
                select(
                    FulfillmentOrder.shop_id,
                    FulfillmentOrderLineItem.sku,
                    func.sum(FulfillmentOrderLineItem.remaining_quantity),
                )
                .join(FulfillmentOrder)
                .where(
                    FulfillmentOrder.state.not_in([str(s) for s in FINAL]), FulfillmentOrderLineItem.sku.is_not(None)
                )
                .group_by(FulfillmentOrder.shop_id, FulfillmentOrderLineItem.sku),
                FulfillmentOrder.shop_id,
            )
        )
    }
    keys = set(on_hand) | set(reserved) | set(needed)
    domains = dict(session.execute(select(Shop.id, Shop.domain).where(Shop.id.in_({shop for shop, _ in keys}))).all())
    matched = {
        (shop, sku): status
        for shop, sku, status in session.execute(
            of_shop(
                select(StoreInventoryItem.shop_id, StoreInventoryItem.sku, StoreInventoryItem.status),
                StoreInventoryItem.shop_id,
            )
        )
    }
    return [
        StockRow(
            shop,
            domains.get(shop, ""),
            sku,
            int(on_hand.get((shop, sku), 0)),
            int(reserved.get((shop, sku)) or 0),
            int(needed.get((shop, sku)) or 0),
            matched.get((shop, sku), ""),
        )
        for shop, sku in sorted(keys, key=lambda key: (domains.get(key[0], ""), key[1]))
    ]


@dataclass(frozen=True)
class MovementRow:
    shop_domain: str
    at: datetime
    sku: str
    kind: str
    on_hand_change: int
    reserved_change: int
    on_hand_after: int
    available_after: int
    actor: str
    note: str
    record_id: int | None  # the fulfillment order a reservation, shipment or release was for
    order_name: str


def movements(ctx: Context, shop_id: int | None = None, limit: int = 30) -> list[MovementRow]:
    """The latest stock movements of a shop (of every shop when none is named), newest first."""
    with ctx.db.transaction() as session:
        query = (
            select(StockMovement, Shop.domain, FulfillmentOrder.order_name)
            .join(Shop, Shop.id == StockMovement.shop_id)
            .outerjoin(FulfillmentOrder, FulfillmentOrder.id == StockMovement.fulfillment_order_id)
        )
        if shop_id is not None:
            query = query.where(StockMovement.shop_id == shop_id)
        rows = session.execute(query.order_by(StockMovement.id.desc()).limit(limit)).all()
        return [
            MovementRow(
                domain,
                m.at,
                m.sku,
                m.kind,
                m.on_hand_change,
                m.reserved_change,
                m.on_hand_after,
                m.available_after,
                m.actor,
                m.note,
                m.fulfillment_order_id,
                order_name or "",
            )
            for m, domain, order_name in rows
        ]


# --- CSV ----------------------------------------------------------------------------------------------------


def export_csv(ctx: Context, shop: int | str | None) -> str:
    """The shop's stock as a count sheet: `sku,on_hand,reserved,available`, one SKU a line."""
    with ctx.db.transaction() as session:
        rows = _levels(session, shop_id_of(session, shop))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([row.sku, row.on_hand, row.reserved, row.available])
    return out.getvalue()


@dataclass(frozen=True)
class LineError:
    line: int  # in the file, the header being line 1; 0 for the file as a whole
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class CountLine:
    line: int
    sku: str
    before: int | None  # None: the shop had no shelf of this SKU yet
    after: int

    @property
    def change(self) -> int:
        return self.after - (self.before or 0)


@dataclass(frozen=True)
class ImportReport:
    shop_id: int | None
    changes: list[CountLine] = field(default_factory=list)  # the lines that change a shelf
    unchanged: int = 0  # lines that confirm what is on the shelf already
    errors: list[LineError] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.errors:
            return f"Nothing imported: {len(self.errors)} problem(s) in the file."
        verb = "changed" if self.applied else "would change"
        return f"{len(self.changes)} SKU(s) {verb}, {self.unchanged} unchanged."


@dataclass(frozen=True)
class _Counted:
    line: int
    sku: str
    on_hand: int


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _FileError(LineError(line, "not UTF-8 text (save the sheet as CSV UTF-8)")) from None


class _FileError(Exception):
    def __init__(self, error: LineError):
        super().__init__(str(error))
        self.error = error


def _delimiter(text: str) -> str:
    # Spreadsheets in much of Europe save with semicolons; the header line tells which.
    header = text.split("\n", 1)[0]
    return max(",;\t", key=header.count) if any(d in header for d in ",;\t") else ","


def parse_csv(data: bytes | str) -> tuple[list[_Counted], list[LineError]]:
    """The counted lines of a count sheet, and every problem by its line; a SKU may appear once."""
    try:
        text = _decode(data)
    except _FileError as exc:
        return [], [exc.error]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    errors: list[LineError] = []
    counted: list[_Counted] = []
    try:
        header = next(reader, None)
        names = [(name or "").strip().lower() for name in header or []]
        missing = [column for column in ("sku", "on_hand") if column not in names]
        if header is None or missing:
            return [], [LineError(1, f"the header needs the columns sku and on_hand (missing {', '.join(missing)})")]
        sku_at, units_at = names.index("sku"), names.index("on_hand")
        first_line: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(counted) + len(errors) >= MAX_IMPORT_LINES:
                errors.append(LineError(line, f"more than {MAX_IMPORT_LINES} lines; split the file"))
                break
            cells = row + [""] * (max(sku_at, units_at) + 1 - len(row))
            sku, raw = cells[sku_at].strip(), cells[units_at].strip()
            problems = []
            if not sku or len(sku) > MAX_SKU_LENGTH:
                problems.append(f"a SKU has 1 to {MAX_SKU_LENGTH} characters")
            units = _whole(raw)
            if units is None or not 0 <= units <= MAX_UNITS:
                problems.append(f"on_hand must be a whole number from 0 to {MAX_UNITS}, not {raw[:40]!r}")
            if sku and sku in first_line:
                problems.append(f"{sku} is on line {first_line[sku]} already")
            if problems:
                errors.extend(LineError(line, problem) for problem in problems)
                continue
            first_line[sku] = line
            counted.append(_Counted(line, sku, units))
    except csv.Error as exc:
        errors.append(LineError(reader.line_num, f"not readable as CSV ({exc})"))
    return counted, errors


def import_csv(ctx: Context, shop: int | str | None, data: bytes | str, *, dry_run: bool, actor: str) -> ImportReport:
    """Set the counted shelves of a shop from a count sheet; with `dry_run`, only say what would change.

    All or nothing: a file with any bad line changes nothing, and its report lists each bad line.
    """
    counted, errors = parse_csv(data)
    if not counted and not errors:
        errors = [LineError(0, "the file has no lines to import")]
    with ctx.db.transaction() as session:
        try:
            shop_id = shop_id_of(session, shop)
        except InvalidInput as exc:
            return ImportReport(None, errors=[LineError(0, p) for p in exc.problems] + errors)
        if errors:
            return ImportReport(shop_id, errors=errors)
        current = dict(
            session.execute(
                select(StockLevel.sku, StockLevel.on_hand).where(
                    StockLevel.shop_id == shop_id, StockLevel.sku.in_([c.sku for c in counted])
                )
            ).all()
        )
        changes = [
            CountLine(c.line, c.sku, current.get(c.sku), c.on_hand) for c in counted if current.get(c.sku) != c.on_hand
        ]
        report = ImportReport(shop_id, changes, len(counted) - len(changes), applied=not dry_run)
        if dry_run:
            return report
        warehouse = ctx.warehouse(session)
        for change in changes:
            warehouse.set_stock(shop_id, change.sku, change.after, actor=actor, note=f"CSV import, line {change.line}")
    log.info("stock_imported shop=%s changed=%s unchanged=%s by=%s", shop_id, len(changes), report.unchanged, actor)
    return report


def report_lines(report: ImportReport) -> Sequence[str]:
    """The report as lines of text, for the command line."""
    lines = [str(e) for e in report.errors]
    for change in report.changes:
        before = "new" if change.before is None else str(change.before)
        lines.append(f"line {change.line}: {change.sku} {before} -> {change.after} ({change.change:+d})")
    lines.append(report.summary())
    return lines
