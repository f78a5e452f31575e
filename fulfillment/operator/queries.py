"""What the dashboard shows: the queue of fulfillment orders, one order with its log, and shops (stock in and
out is `fulfillment.stock`).

Read models only: plain frozen rows built in one transaction, nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, Shop
from fulfillment.states import FINAL, State

QUEUE_VIEWS = {
    "attention": (State.REQUESTED, State.CANCELLATION_REQUESTED, State.ON_HOLD),
    "open": tuple(s for s in State if s not in FINAL),
}


@dataclass(frozen=True)
class QueueRow:
    id: int
    shop_domain: str
    order_name: str
    store_id: str
    state: str
    store_status: str
    store_request_status: str
    units: int
    lines: int
    note: str | None
    created_at: datetime
    expected_ship_at: datetime | None


@dataclass(frozen=True)
class Queue:
    rows: list[QueueRow]
    counts: dict[str, int]  # by state, for the chosen shop
    truncated: bool


def queue(ctx: Context, view: str = "open", shop_id: int | None = None, limit: int = 200) -> Queue:
    """Fulfillment orders of one view ("attention", "open", "all" or a state's name), newest first."""
    with ctx.db.transaction() as session:
        counts_query = select(FulfillmentOrder.state, func.count()).group_by(FulfillmentOrder.state)
        query = (
            select(FulfillmentOrder)
            .options(
                selectinload(FulfillmentOrder.line_items),
                selectinload(FulfillmentOrder.merchant_requests),
                selectinload(FulfillmentOrder.shop),
            )
            .order_by(FulfillmentOrder.created_at.desc(), FulfillmentOrder.id.desc())
            .limit(limit + 1)
        )
        if shop_id is not None:
            counts_query = counts_query.where(FulfillmentOrder.shop_id == shop_id)
            query = query.where(FulfillmentOrder.shop_id == shop_id)
        if view in QUEUE_VIEWS:
            query = query.where(FulfillmentOrder.state.in_([str(s) for s in QUEUE_VIEWS[view]]))
        elif view in {s.value for s in State}:
            query = query.where(FulfillmentOrder.state == view)
        counts = {state: int(n) for state, n in session.execute(counts_query).all()}
        records = session.scalars(query).all()
        rows = [
            QueueRow(
                id=r.id,
                shop_domain=r.shop.domain,
                order_name=r.order_name,
                store_id=r.store_id,
                state=r.state,
                store_status=r.store_status,
                store_request_status=r.store_request_status,
                units=sum(line.remaining_quantity for line in r.line_items),
                lines=len(r.line_items),
                note=next((m.message for m in reversed(r.merchant_requests) if m.message), None),
                created_at=r.created_at,
                expected_ship_at=r.expected_ship_at,
            )
            for r in records[:limit]
        ]
    return Queue(rows, counts, len(records) > limit)


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
