"""What the dashboard shows: the queue of fulfillment orders, one order with its log, and shops (stock in and
out is `fulfillment.stock`).

Read models only: plain frozen rows built in one transaction, nothing written.

The queue is paged, never cut: one statement reads a page's rows with everything the page shows of them and the
number of fulfillment orders the filter matches, so a page costs the same however long the queue is.

A fulfillment order is *late* when it is still ours to ship (not in a final state) and the time it was expected
to ship has passed: the expected ship date we gave the store when accepting it (`expected_ship_at`), or, for one
not accepted yet, the time we received it plus the shop's handling days (the date we would promise on accepting
it now). The store's `fulfillAt` is not read: it says when the merchant lets work start, not when we owe it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from fulfillment import policy
from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, MerchantRequest, Package, Shop
from fulfillment.states import FINAL, State

QUEUE_VIEWS = {
    "attention": (State.REQUESTED, State.CANCELLATION_REQUESTED, State.ON_HOLD),
    "open": tuple(s for s in State if s not in FINAL),
}
VIEWS = (*QUEUE_VIEWS, "all", *(s.value for s in State))
# "Waiting longer than": how long ago we received the fulfillment order.
AGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "2d": timedelta(days=2),
    "7d": timedelta(days=7),
}
SORTS = ("newest", "oldest")
PAGE_SIZES = (25, 50, 100)
SEARCH_LIMIT = 100  # characters of a search
SEARCH_TERMS = 5  # words of a search, each of which must match
MAX_PAGE = 100_000  # far past any queue, and an offset every database takes
_OPEN = [str(s) for s in State if s not in FINAL]
_FINAL = {str(s) for s in FINAL}


@dataclass(frozen=True)
class QueueFilter:
    """Which fulfillment orders the queue shows, in what order, and which page of them."""

    view: str = "open"  # "attention", "open", "all" or a state's name
    shop_id: int | None = None
    search: str = ""  # words that must each match an order name, a SKU, a product or the customer's name
    age: str = ""  # a key of AGES: received longer ago than that; "" for any age
    late: bool = False
    sort: str = "newest"
    page: int = 1
    per_page: int = PAGE_SIZES[1]

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query string that shows this filter (with `changes`), its defaults left out."""
        chosen = replace(self, **changes)
        names = {"shop_id": "shop", "search": "q"}
        default = QueueFilter()
        out: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(chosen, field.name)
            if value != getattr(default, field.name):
                out[names.get(field.name, field.name)] = int(value) if isinstance(value, bool) else value
        return out


@dataclass(frozen=True)
class QueueRow:
    id: int
    shop_domain: str
    order_name: str
    store_id: str
    state: str
    store_status: str
    store_request_status: str
    store_read_at: datetime  # when we last read it on the store (intake, until a step re-reads it)
    units: int
    lines: int
    customer: str
    note: str | None
    created_at: datetime
    expected_ship_at: datetime | None
    due_at: datetime | None  # when it is expected to ship (see the module's docstring); None once final
    late: bool
    packages: int
    delivered: int  # packages the carrier delivered
    failed: int  # packages whose delivery failed
    shop_connected: bool = True

    @property
    def shown_state(self) -> str:
        """Our state, with a shipment's end told apart: every package delivered, or one that failed."""
        if self.state == State.SHIPPED and self.packages:
            if self.failed:
                return "delivery_failed"
            if self.delivered == self.packages:
                return "delivered"
        return self.state

    @property
    def under_review(self) -> bool:
        """A request that waits for a decision from a shop still connected: what the bulk accept and reject take."""
        return self.state == State.REQUESTED and self.shop_connected


@dataclass(frozen=True)
class Queue:
    rows: list[QueueRow]
    counts: dict[str, int]  # by state, for the chosen shop
    late: int  # late fulfillment orders, for the chosen shop
    total: int  # fulfillment orders the filter matches, over every page
    filter: QueueFilter  # as shown: the page brought within the pages there are

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.filter.per_page))

    @property
    def first(self) -> int:
        """The position of the page's first row among all those matched (1-based; 0 when none)."""
        return (self.filter.page - 1) * self.filter.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; the app writes them in UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Expected:
    """When fulfillment orders are expected to ship, by the rule in the module's docstring, as of `now`."""

    now: datetime
    default: timedelta  # the warehouse's handling days
    handling: dict[int, timedelta]  # shops whose own handling days differ from the warehouse's

    @classmethod
    def read(cls, ctx: Context, session: Session, now: datetime) -> _Expected:
        def days(settings: Mapping[str, Any] | None) -> timedelta:
            rules = policy.Rules.from_settings(settings or {}, handling_days=ctx.config.handling_days)
            return timedelta(days=rules.handling_days)

        default = days(None)
        by_shop = {shop_id: days(settings) for shop_id, settings in session.execute(select(Shop.id, Shop.settings))}
        return cls(now, default, {shop_id: d for shop_id, d in by_shop.items() if d != default})

    def due(self, shop_id: int, received: datetime, promised: datetime | None) -> datetime:
        return promised or received + self.handling.get(shop_id, self.default)

    def late(self, fo: Any = FulfillmentOrder) -> ColumnElement[bool]:
        """The rule as SQL: compared as "received before now less the handling days", so that neither database
        is asked to add an interval to a timestamp. A CASE over the shops with their own handling days (a 3PL
        has tens of shops, not thousands)."""
        if self.handling:
            received_by = case(
                {shop_id: self.now - d for shop_id, d in self.handling.items()},
                value=fo.shop_id,
                else_=self.now - self.default,
            )
        else:
            received_by = literal(self.now - self.default, FulfillmentOrder.created_at.type)
        return and_(
            fo.state.in_(_OPEN),
            or_(fo.expected_ship_at < self.now, and_(fo.expected_ship_at.is_(None), fo.created_at < received_by)),
        )


def _customer(fo: Any = FulfillmentOrder) -> ColumnElement[str]:
    return (
        func.coalesce(fo.destination["first_name"].as_string(), "")
        + " "
        + func.coalesce(fo.destination["last_name"].as_string(), "")
    )


def search_terms(text: str) -> list[str]:
    """The words of a search, each of which must match."""
    return text.split()[:SEARCH_TERMS]


def _matches(fo: Any, term: str) -> ColumnElement[bool]:
    """One word of a search: in the order's name, a line's SKU or product title, or the customer's name."""
    line = FulfillmentOrderLineItem
    return or_(
        fo.order_name.icontains(term, autoescape=True),
        exists().where(
            line.fulfillment_order_id == fo.id,
            or_(line.sku.icontains(term, autoescape=True), line.product_title.icontains(term, autoescape=True)),
        ),
        _customer(fo).icontains(term, autoescape=True),
    )


def _conditions(fo: Any, chosen: QueueFilter, expected: _Expected) -> list[ColumnElement[bool]]:
    """The filter as SQL over `fo` (the table, or an alias of it for the count of those matched)."""
    conditions = []
    if chosen.shop_id is not None:
        conditions.append(fo.shop_id == chosen.shop_id)
    if chosen.view in QUEUE_VIEWS:
        conditions.append(fo.state.in_([str(s) for s in QUEUE_VIEWS[chosen.view]]))
    elif chosen.view in {s.value for s in State}:
        conditions.append(fo.state == chosen.view)
    conditions.extend(_matches(fo, term) for term in search_terms(chosen.search))
    if chosen.age in AGES:
        conditions.append(fo.created_at < expected.now - AGES[chosen.age])
    if chosen.late:
        conditions.append(expected.late(fo))
    return conditions


def queue(ctx: Context, chosen: QueueFilter | None = None) -> Queue:
    """One page of the fulfillment orders a filter matches, with the number matched and the counts by state."""
    chosen = chosen or QueueFilter()
    with ctx.db.transaction() as session:
        expected = _Expected.read(ctx, session, ctx.clock())
        counts: dict[str, int] = {}
        late_count = 0
        for state, n, n_late in session.execute(
            select(FulfillmentOrder.state, func.count(), func.sum(case((expected.late(), 1), else_=0)))
            .where(*([FulfillmentOrder.shop_id == chosen.shop_id] if chosen.shop_id is not None else []))
            .group_by(FulfillmentOrder.state)
        ):
            counts[state] = int(n)
            late_count += int(n_late or 0)
        page = max(1, min(chosen.page, MAX_PAGE))
        rows, total = _page(session, chosen, expected, page)
        if not rows and page > 1:
            # Past the last page (the queue shrank, or a hand-typed page): show the last one there is.
            matched = select(func.count()).select_from(FulfillmentOrder)
            total = session.scalar(matched.where(*_conditions(FulfillmentOrder, chosen, expected))) or 0
            page = max(1, math.ceil(total / chosen.per_page))
            rows, total = _page(session, chosen, expected, page) if total else ([], 0)
    return Queue(rows, counts, late_count, total, replace(chosen, page=page))


def _page(session: Session, chosen: QueueFilter, expected: _Expected, page: int) -> tuple[list[QueueRow], int]:
    """One statement: the page's ids, taken in the index's order and cut by LIMIT and OFFSET without sorting the
    matched rows; what the page shows of each, read for those rows alone; and the number matched, an uncorrelated
    subquery the database counts once."""
    fo = FulfillmentOrder
    oldest = chosen.sort == "oldest"
    order = (fo.created_at.asc(), fo.id.asc()) if oldest else (fo.created_at.desc(), fo.id.desc())
    page_ids = (
        select(fo.id.label("id"))
        .where(*_conditions(fo, chosen, expected))
        .order_by(*order)
        .limit(chosen.per_page)
        .offset((page - 1) * chosen.per_page)
        .subquery()
    )
    counted = aliased(FulfillmentOrder)
    total = select(func.count()).select_from(counted).where(*_conditions(counted, chosen, expected))
    line, note, package = FulfillmentOrderLineItem, MerchantRequest, Package

    def packages(*where: ColumnElement[bool]):
        return select(func.count()).where(package.fulfillment_order_id == fo.id, *where).scalar_subquery()

    query = (
        select(
            fo.id,
            Shop.domain,
            fo.order_name,
            fo.store_id,
            fo.shop_id,
            fo.state,
            fo.store_status,
            fo.store_request_status,
            func.coalesce(fo.store_read_at, fo.created_at),
            select(func.coalesce(func.sum(line.remaining_quantity), 0))
            .where(line.fulfillment_order_id == fo.id)
            .scalar_subquery(),
            select(func.count()).where(line.fulfillment_order_id == fo.id).scalar_subquery(),
            _customer(),
            select(note.message)
            .where(note.fulfillment_order_id == fo.id, note.message.is_not(None), note.message != "")
            .order_by(note.id.desc())
            .limit(1)
            .scalar_subquery(),
            fo.created_at,
            fo.expected_ship_at,
            expected.late(),
            packages(),
            packages(package.delivery_status == "DELIVERED"),
            packages(package.delivery_status == "FAILURE"),
            total.scalar_subquery(),
            and_(Shop.uninstalled_at.is_(None), Shop.access_token_ciphertext.is_not(None)),
        )
        .join(page_ids, page_ids.c.id == fo.id)
        .join(Shop, Shop.id == fo.shop_id)
        .order_by(*order)
    )
    rows: list[QueueRow] = []
    matched = 0
    for r in session.execute(query):
        (
            record_id,
            domain,
            name,
            store_id,
            shop_id,
            state,
            status,
            request_status,
            read_at,
            units,
            lines,
            customer,
            message,
            created_at,
            promised,
            is_late,
            n_packages,
            delivered,
            failed,
            matched,
            connected,
        ) = r
        created_at, promised = _utc(created_at), _utc(promised)
        rows.append(
            QueueRow(
                id=record_id,
                shop_domain=domain,
                order_name=name,
                store_id=store_id,
                state=state,
                store_status=status,
                store_request_status=request_status,
                store_read_at=_utc(read_at),
                units=int(units or 0),
                lines=int(lines or 0),
                customer=(customer or "").strip(),
                note=message,
                created_at=created_at,
                expected_ship_at=promised,
                due_at=None if state in _FINAL else expected.due(shop_id, created_at, promised),
                late=bool(is_late),
                packages=int(n_packages or 0),
                delivered=int(delivered or 0),
                failed=int(failed or 0),
                shop_connected=bool(connected),
            )
        )
    return rows, int(matched or 0)


# --- one fulfillment order -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineView:
    id: int
    store_id: str
    sku: str | None
    title: str | None
    total: int
    remaining: int
    available: int | None


@dataclass(frozen=True)
class NoteView:
    kind: str
    message: str | None
    sent_at: str


@dataclass(frozen=True)
class LogView:
    at: datetime
    from_state: str | None
    to_state: str
    cause: str
    detail: str


@dataclass(frozen=True)
class PackageView:
    sequence: int
    state: str
    carrier: str
    tracking_number: str
    tracking_url: str | None
    fulfillment_name: str | None
    shipped_at: datetime | None
    items: list[tuple[str, int]]  # (SKU or title, quantity)


@dataclass(frozen=True)
class OrderView:
    id: int
    shop_id: int
    shop_domain: str
    store_id: str
    order_id: str
    order_name: str
    state: str
    store_status: str
    store_request_status: str
    destination: dict | None
    expected_ship_at: datetime | None
    created_at: datetime
    lines: list[LineView]
    notes: list[NoteView]
    log: list[LogView]
    packages: list[PackageView]
    actions: frozenset[str]  # the forms that apply: accept, reject, pack, answer_cancellation
    default_carrier: str


def _actions(record: FulfillmentOrder) -> frozenset[str]:
    state = State(record.state)
    if state == State.REQUESTED:
        return frozenset({"accept", "reject"})
    if state in (State.ACCEPTED, State.PICKED) and not record.packages:
        return frozenset({"pack"})
    if state == State.CANCELLATION_REQUESTED:
        return frozenset({"answer_cancellation"})
    return frozenset()


def fulfillment_order(ctx: Context, record_id: int) -> OrderView | None:
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        if record is None:
            return None
        skus = sorted({line.sku for line in record.line_items if line.sku})
        available = ctx.warehouse(session).available(record.shop_id, skus) if skus else {}
        session.rollback()  # reading stock must not stock unknown SKUs (the demo simulator would)
        record = session.get(FulfillmentOrder, record_id)
        return OrderView(
            id=record.id,
            shop_id=record.shop_id,
            shop_domain=record.shop.domain,
            store_id=record.store_id,
            order_id=record.order_id,
            order_name=record.order_name,
            state=record.state,
            store_status=record.store_status,
            store_request_status=record.store_request_status,
            destination=dict(record.destination) if record.destination else None,
            expected_ship_at=record.expected_ship_at,
            created_at=record.created_at,
            lines=[
                LineView(
                    line.id,
                    line.store_id,
                    line.sku,
                    line.product_title,
                    line.total_quantity,
                    line.remaining_quantity,
                    available.get(line.sku) if line.sku else None,
                )
                for line in record.line_items
            ],
            notes=[NoteView(m.kind, m.message, m.sent_at) for m in record.merchant_requests],
            log=[LogView(c.at, c.from_state, c.to_state, c.cause, c.detail) for c in record.state_changes],
            packages=[
                PackageView(
                    p.sequence,
                    p.state,
                    p.carrier,
                    p.tracking_number,
                    p.tracking_url,
                    p.fulfillment_name,
                    p.shipped_at,
                    [(i.line_item.sku or i.line_item.product_title or "", i.quantity) for i in p.items],
                )
                for p in record.packages
            ],
            actions=_actions(record),
            default_carrier=(record.shop.settings or {}).get("carrier") or ctx.config.carrier,
        )


# --- shops -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopRow:
    id: int
    domain: str
    active: bool
    settings: dict
    open_orders: int


def shops(ctx: Context) -> list[ShopRow]:
    with ctx.db.transaction() as session:
        open_counts = dict(
            session.execute(
                select(FulfillmentOrder.shop_id, func.count())
                .where(FulfillmentOrder.state.not_in([str(s) for s in FINAL]))
                .group_by(FulfillmentOrder.shop_id)
            ).all()
        )
        return [
            ShopRow(s.id, s.domain, s.active, dict(s.settings or {}), int(open_counts.get(s.id, 0)))
            for s in session.scalars(select(Shop).order_by(Shop.domain))
        ]


def shop(ctx: Context, shop_id: int) -> ShopRow | None:
    return next((row for row in shops(ctx) if row.id == shop_id), None)
