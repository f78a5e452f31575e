"""What a warehouse operator does from the dashboard: decide requests, pack by hand, answer cancellations,
change per-shop settings; and the read models the dashboard shows (stock in and out is `fulfillment.stock`).

Each action on a fulfillment order first re-reads it on the store and reconciles our record, exactly as a
worker step does (`workflow._Step`), and acts only if the order is still where the operator saw it; otherwise
it raises `NotActionable`. Every change is logged with cause `operator` and the operator's email.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from fulfillment import policy
from fulfillment.context import Context
from fulfillment.models import (
    FulfillmentOrder,
    Package,
    PackageItem,
    Shop,
)
from fulfillment.states import FINAL, Cause, State, is_final
from fulfillment.store import StoreClient
from fulfillment.store import operations as ops
from fulfillment.warehouse import OutOfStock
from fulfillment.workflow import _Step

log = logging.getLogger("fulfillment.operator")

# The store's FulfillmentOrderRejectionReason values, with the words an operator picks them by.
REJECTION_REASONS: dict[str, str] = {
    "INVENTORY_OUT_OF_STOCK": "Out of stock",
    "INCORRECT_ADDRESS": "Incorrect address",
    "UNDELIVERABLE_DESTINATION": "Undeliverable destination",
    "INTERNATIONAL_SHIPPING_UNAVAILABLE": "International shipping unavailable",
    "INELIGIBLE_PRODUCT": "Ineligible product",
    "INCORRECT_PRODUCT_INFO": "Incorrect product info",
    "INVALID_SKU": "Invalid SKU",
    "MISSING_CUSTOMS_INFO": "Missing customs info",
    "ORDER_TOO_LARGE": "Order too large",
    "PACKAGE_PREFERENCE_NOT_SET": "Package preference not set",
    "INVALID_CONTACT_INFORMATION": "Invalid contact information",
    "PAYMENT_DECLINED": "Payment declined",
    "MERCHANT_BLOCKED_OR_SUSPENDED": "Merchant blocked or suspended",
    "OTHER": "Other",
}

# Request statuses under which the store lets the service create fulfillments.
_SHIPPABLE = {"ACCEPTED", "CANCELLATION_REJECTED"}
_TEXT_LIMIT = 1000  # what we send the store as a message; its timeline shows it to the merchant
_MAX_PACKAGES = 50


class NotActionable(Exception):
    """The fulfillment order is not (or no longer) in a state where this action applies; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class InvalidInput(ValueError):
    """What the operator entered cannot be used; `problems` lists each reason, for the form."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Done:
    """An action's outcome: a line for the operator, and whether the worker has work to pick up."""

    summary: str
    needs_worker: bool = False


# --- taking a step as an operator --------------------------------------------------------------------------


class _OperatorStep(_Step):
    """A workflow step whose actions are the operator's: once acting, every move is logged as theirs."""

    def __init__(
        self,
        ctx: Context,
        session: Session,
        record: FulfillmentOrder,
        shop: Shop,
        client: StoreClient,
        operator_email: str,
    ):
        super().__init__(ctx, session, record, shop, client, Cause.OPERATOR)
        self.operator_email = operator_email
        self.acting = False
        self.state: ops.FulfillmentOrderState | None = None

    def move(self, target: State, detail: str, cause: Cause | None = None) -> None:
        if self.acting:
            super().move(target, f"{detail} [operator {self.operator_email}]", Cause.OPERATOR)
        else:
            # What the re-read revealed is the merchant's doing; the operator's look only brought it to light.
            super().move(target, detail, cause)

    def require(self, states: set[State], doing: str) -> None:
        current = State(self.record.state)
        if current not in states:
            raise NotActionable(f"cannot {doing}: the fulfillment order is {current.value.replace('_', ' ')}")

    def require_store(self, statuses: set[str], request_statuses: set[str], doing: str) -> None:
        state = self.state
        if state is None or state.status not in statuses or state.request_status not in request_statuses:
            shown = f"{state.status}/{state.request_status}" if state else "gone"
            raise NotActionable(f"cannot {doing}: the store shows {shown}")


@contextmanager
def _operator_step(ctx: Context, record_id: int, operator_email: str) -> Iterator[_OperatorStep]:
    """Re-read the fulfillment order on the store and reconcile our record (committed whatever follows)."""
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        if record is None:
            raise NotActionable("no such fulfillment order")
        shop = record.shop
        if not shop.active:
            raise NotActionable(f"the shop {shop.domain} is not connected")
        step = _OperatorStep(ctx, session, record, shop, ctx.store_for(shop), operator_email)
        step.state = ops.fulfillment_order_state(step.client, record.store_id)
        step.reconcile(step.state)
        session.commit()
        if is_final(record.state):
            raise NotActionable(f"the fulfillment order is {record.state.replace('_', ' ')}: {_last_detail(record)}")
        yield step
    log.info("operator_action operator=%s fulfillment_order=%s", operator_email, record_id)


def _last_detail(record: FulfillmentOrder) -> str:
    return record.state_changes[-1].detail if record.state_changes else ""


def _text(value: str | None, limit: int = _TEXT_LIMIT) -> str:
    return (value or "").strip()[:limit]


# --- deciding requests --------------------------------------------------------------------------------------


def accept(ctx: Context, record_id: int, operator_email: str, message: str | None = None) -> Done:
    """Accept a fulfillment request whatever the policy says, once its stock is reserved.

    The worker is not called: an operator who accepts by hand packs by hand (`pack`).
    """
    with _operator_step(ctx, record_id, operator_email) as step:
        step.require({State.REQUESTED}, "accept")
        step.require_store({"OPEN"}, {"SUBMITTED"}, "accept")
        record = step.record
        if not record.line_items:
            step.refresh()
        try:
            step.warehouse.reserve(record)
        except OutOfStock as exc:
            raise NotActionable(f"cannot accept: not enough stock ({exc}); set the stock first") from exc
        rules = policy.Rules.from_settings(
            step.shop.settings or {}, handling_days=ctx.config.handling_days, service_name=ctx.config.service_name
        )
        ship_by = ctx.clock() + timedelta(days=rules.handling_days)
        text = _text(message) or f"Accepted by {rules.service_name}; expected to ship by {ship_by:%Y-%m-%d}."
        step.acting = True
        step.accept(policy.Decision(True, text, estimated_shipped_at=ship_by))
        record.store_status = "IN_PROGRESS"  # what the store shows after an accept; no need to re-read for it
    return Done(f"Accepted {record.order_name or record.store_id}; stock reserved. Pack it below when it is ready.")


def validate_rejection(
    reason: str, message: str | None, line_item_messages: Sequence[tuple[str, str]]
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """The store's reason, a message for the merchant, and per-line messages (blank ones dropped)."""
    problems = []
    if reason not in REJECTION_REASONS:
        problems.append(f"unknown rejection reason {reason!r}")
    text = _text(message)
    if not text:
        problems.append("say why in the message: the merchant reads it in the order's timeline")
    lines = tuple((line_id, _text(m)) for line_id, m in line_item_messages if _text(m))
    if problems:
        raise InvalidInput(problems)
    return reason, text, lines


def reject(
    ctx: Context,
    record_id: int,
    reason: str,
    message: str | None,
    line_item_messages: Sequence[tuple[str, str]],
    operator_email: str,
) -> Done:
    """Reject a fulfillment request with the store's reason; `line_item_messages` are (store line item id,
    message) pairs naming the lines at fault."""
    reason, text, lines = validate_rejection(reason, message, line_item_messages)
    with _operator_step(ctx, record_id, operator_email) as step:
        step.require({State.REQUESTED}, "reject")
        step.require_store({"OPEN"}, {"SUBMITTED"}, "reject")
        record = step.record
        known = {line.store_id for line in record.line_items}
        unknown = [line_id for line_id, _ in lines if line_id not in known]
        if unknown:
            raise InvalidInput([f"line item {line_id} is not on this fulfillment order" for line_id in unknown])
        step.acting = True
        step.reject(policy.Decision(False, text, reason, lines))
    return Done(f"Rejected {record.order_name or record.store_id} ({REJECTION_REASONS[reason]}).")


# --- packing ------------------------------------------------------------------------------------------------


def validate_packages(
    remaining: Mapping[int, int],
    packages: Sequence[Sequence[tuple[int, int]]],
    tracking_numbers: Sequence[str],
    carrier: str,
    labels: Mapping[int, str] | None = None,
) -> tuple[list[list[tuple[int, int]]], list[str], str]:
    """Check an operator's packing against what remains to ship.

    `remaining` maps our line item ids to units left; `packages` are lists of (line item id, quantity). Every
    remaining unit must go in a package, no line may be packed beyond what remains: once all its packages
    have shipped, the workflow counts the fulfillment order as shipped, so a unit left out would never ship.
    Returns the packages without empty entries, the tracking numbers and the carrier, trimmed.
    """
    labels = labels or {}
    problems: list[str] = []
    carrier = _text(carrier, 255)
    if not carrier:
        problems.append("name the carrier")
    numbers = [_text(n, 255) for n in tracking_numbers]
    if not packages:
        problems.append("pack at least one package")
    if len(packages) > _MAX_PACKAGES:
        problems.append(f"at most {_MAX_PACKAGES} packages at a time")
    if len(numbers) != len(packages):
        problems.append(f"{len(packages)} package(s) need {len(packages)} tracking number(s), got {len(numbers)}")
    cleaned: list[list[tuple[int, int]]] = []
    packed: dict[int, int] = {}
    for number, items in enumerate(packages, start=1):
        merged: dict[int, int] = {}
        for line_id, quantity in items:
            if line_id not in remaining:
                problems.append(f"package {number}: line item {line_id} is not on this fulfillment order")
            elif quantity < 0:
                problems.append(f"package {number}: a quantity cannot be negative")
            elif quantity > 0:
                merged[line_id] = merged.get(line_id, 0) + quantity
        if not merged:
            problems.append(f"package {number} is empty")
        for line_id, quantity in merged.items():
            packed[line_id] = packed.get(line_id, 0) + quantity
        cleaned.append(sorted(merged.items()))
    for index, tracking in enumerate(numbers[: len(packages)], start=1):
        if not tracking:
            problems.append(f"package {index} needs a tracking number")
    repeated = sorted({n for n in numbers if n and numbers.count(n) > 1})
    if repeated:
        problems.append(f"each package needs its own tracking number ({', '.join(repeated)} repeated)")
    for line_id, left in remaining.items():
        label = labels.get(line_id, f"line item {line_id}")
        units = packed.get(line_id, 0)
        if units > left:
            problems.append(f"{label}: {units} packed but only {left} left to ship")
        elif units < left:
            problems.append(f"{label}: {left - units} unit(s) not packed; every remaining unit must go in a package")
    if problems:
        raise InvalidInput(problems)
    return cleaned, numbers, carrier


def pack(
    ctx: Context,
    record_id: int,
    packages: Sequence[Sequence[tuple[int, int]]],
    carrier: str,
    tracking_numbers: Sequence[str],
    operator_email: str,
) -> Done:
    """Pack an accepted fulfillment order in the operator's packages; the worker then ships each one as its own
    fulfillment (the caller enqueues it)."""
    with _operator_step(ctx, record_id, operator_email) as step:
        step.require({State.ACCEPTED, State.PICKED}, "pack")
        step.require_store({"IN_PROGRESS"}, _SHIPPABLE, "pack")
        record = step.record
        if record.packages:
            raise NotActionable("cannot pack: it is packed already")
        lines = {line.id: line for line in record.line_items}
        remaining = {line.id: line.remaining_quantity for line in lines.values() if line.remaining_quantity > 0}
        labels = {line.id: line.sku or line.product_title or line.store_id for line in lines.values()}
        cleaned, numbers, carrier = validate_packages(remaining, packages, tracking_numbers, carrier, labels)
        taken = step.session.scalars(select(Package.tracking_number).where(Package.tracking_number.in_(numbers))).all()
        if taken:
            raise InvalidInput([f"tracking number {n} is on another package already" for n in taken])
        step.acting = True
        if State(record.state) == State.ACCEPTED:
            step.warehouse.pick(record)
            step.move(State.PICKED, "picked")
        for sequence, (items, number) in enumerate(zip(cleaned, numbers, strict=True), start=1):
            package = Package(sequence=sequence, tracking_number=number, carrier=carrier, tracking_url=None)
            package.items = [PackageItem(line_item=lines[line_id], quantity=qty) for line_id, qty in items]
            record.packages.append(package)
        step.session.flush()
        step.move(State.PACKED, f"packed in {len(cleaned)} package(s): {carrier} {', '.join(numbers)}")
    return Done(f"Packed {record.order_name or record.store_id} in {len(cleaned)} package(s); shipping.", True)


# --- cancellation requests ----------------------------------------------------------------------------------


def answer_cancellation(ctx: Context, record_id: int, accept: bool, message: str | None, operator_email: str) -> Done:
    """Accept (nothing has shipped) or reject (work goes on) the merchant's cancellation request."""
    with _operator_step(ctx, record_id, operator_email) as step:
        step.require({State.CANCELLATION_REQUESTED}, "answer the cancellation request")
        step.require_store({"IN_PROGRESS", "OPEN"}, {"CANCELLATION_REQUESTED"}, "answer the cancellation request")
        record = step.record
        if any(p.state == "shipping" for p in record.packages):
            snapshot = step.refresh()
            step.match_fulfillments(snapshot.fulfillments if snapshot else ())
        shipped = [p for p in record.packages if p.state == "shipped"]
        step.acting = True
        name = record.order_name or record.store_id
        if accept:
            if shipped:
                numbers = ", ".join(p.tracking_number for p in shipped)
                raise NotActionable(f"cannot accept the cancellation: already shipped ({numbers}); reject it instead")
            text = _text(message) or "Cancelled: nothing had left the warehouse."
            ops.accept_cancellation_request(step.client, record.store_id, message=text)
            record.store_request_status = "CANCELLATION_ACCEPTED"
            step.move(State.CANCELLED, text)
            return Done(f"Cancellation of {name} accepted.")
        text = _text(message)
        if not text:
            raise InvalidInput(["say why the cancellation is refused: the merchant reads it in the timeline"])
        ops.reject_cancellation_request(step.client, record.store_id, message=text)
        record.store_request_status = "CANCELLATION_REJECTED"
        step.move(step.resume_state(), text)
    return Done(f"Cancellation of {name} refused; work goes on.", True)


# --- shops and their settings -------------------------------------------------------------------------------

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LIST_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class ShopRow:
    id: int
    domain: str
    active: bool
    settings: dict
    open_orders: int


def _values(form: Mapping[str, Any], key: str) -> list[Any]:
    """All values of a form field: a MultiDict's list, or a plain mapping's one value (which may be a list)."""
    getlist = getattr(form, "getlist", None)
    if getlist is not None:
        return list(getlist(key))
    return [form[key]] if key in form else []


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _words(value: Any) -> list[str]:
    items = [str(v) for v in value] if isinstance(value, list | tuple) else _LIST_SPLIT.split(str(value or ""))
    seen: dict[str, None] = {}
    for item in (i.strip() for i in items):
        if item:
            seen[item] = None
    return list(seen)


def parse_settings(form: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> dict:
    """A shop's settings from a form: fields the form leaves out keep their current value.

    `review_requests` and `review_cancellations` hold new requests (cancellation requests) for an operator
    instead of answering them automatically. They are checkboxes: the dashboard sends a hidden "0" before
    each, and the last value wins.
    Lists (`blocked_countries`, `ineligible_skus`) come one per line or separated by commas.
    """
    settings = dict(current or {})
    problems: list[str] = []
    for flag in ("review_requests", "review_cancellations"):
        if values := _values(form, flag):
            settings[flag] = _truthy(values[-1])
    if values := _values(form, "handling_days"):
        raw = str(values[-1]).strip()
        if raw == "":
            settings.pop("handling_days", None)
        else:
            try:
                days = float(raw)
            except ValueError:
                days = -1.0
            if not 0 <= days <= 60:
                problems.append("handling days: a number from 0 to 60")
            else:
                settings["handling_days"] = days
    if values := _values(form, "carrier"):
        carrier = str(values[-1]).strip()
        if len(carrier) > 255:
            problems.append("carrier: at most 255 characters")
        elif carrier:
            settings["carrier"] = carrier
        else:
            settings.pop("carrier", None)
    if values := _values(form, "blocked_countries"):
        countries = [c.upper() for c in _words(values[-1])]
        bad = [c for c in countries if not _COUNTRY.match(c)]
        if bad:
            problems.append(f"blocked countries: two-letter country codes (ISO 3166), not {', '.join(bad)}")
        settings["blocked_countries"] = countries
    if values := _values(form, "ineligible_skus"):
        skus = _words(values[-1])
        if any(len(s) > 255 for s in skus):
            problems.append("ineligible SKUs: at most 255 characters each")
        settings["ineligible_skus"] = skus
    if problems:
        raise InvalidInput(problems)
    return settings


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


def update_settings(ctx: Context, shop_id: int, form: Mapping[str, Any], operator_email: str = "") -> dict:
    """Validate and save a shop's settings; returns them. Raises InvalidInput, or LookupError for no such shop."""
    with ctx.db.transaction() as session:
        row = session.get(Shop, shop_id)
        if row is None:
            raise LookupError(f"no shop {shop_id}")
        settings = parse_settings(form, row.settings or {})
        row.settings = settings  # a new dict, so the JSON column is written
    log.info("shop_settings_updated shop=%s operator=%s settings=%s", row.domain, operator_email, sorted(settings))
    return settings


# --- what the dashboard shows -------------------------------------------------------------------------------

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
