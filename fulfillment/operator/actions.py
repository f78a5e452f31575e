"""What a warehouse operator does from the dashboard: decide requests, pack by hand, answer cancellations,
change per-shop settings (stock in and out is `fulfillment.stock`).

Each action on a fulfillment order first re-reads it on the store and reconciles our record through the same
`Step` a worker takes (`fulfillment.step`), and acts only if the order is still where the operator saw it;
otherwise it raises `NotActionable`. Every change is logged with cause `operator` and the operator's email.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from fulfillment import policy
from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, Package, PackageItem, Shop
from fulfillment.operator.forms import (
    REJECTION_REASONS,
    InvalidInput,
    cancellation_message,
    parse_settings,
    trimmed,
    validate_packages,
    validate_rejection,
)
from fulfillment.states import Cause, State, is_final
from fulfillment.step import NOTHING_SHIPPED, SHIPPABLE_REQUEST_STATUSES, Actor, Step
from fulfillment.warehouse import OutOfStock

log = logging.getLogger("fulfillment.operator")


class NotActionable(Exception):
    """The fulfillment order is not (or no longer) in a state where this action applies; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Done:
    """An action's outcome: a line for the operator, and whether the worker has work to pick up."""

    summary: str
    needs_worker: bool = False
    shop_id: int | None = None  # whose queue the worker's next step joins


# --- taking a step as an operator --------------------------------------------------------------------------


def _require(step: Step, states: set[State], doing: str) -> None:
    current = State(step.record.state)
    if current not in states:
        raise NotActionable(f"cannot {doing}: the fulfillment order is {current.value.replace('_', ' ')}")


def _require_store(step: Step, statuses: set[str], request_statuses: Set[str], doing: str) -> None:
    state = step.state
    if state is None or state.status not in statuses or state.request_status not in request_statuses:
        shown = f"{state.status}/{state.request_status}" if state else "gone"
        raise NotActionable(f"cannot {doing}: the store shows {shown}")


@contextmanager
def _operator_step(ctx: Context, record_id: int, operator_email: str) -> Iterator[Step]:
    """Re-read the fulfillment order on the store and reconcile our record (committed whatever follows).

    What the re-read reveals is the merchant's doing, logged under cause `operator` (the operator's look only
    brought it to light); the action that follows is logged as the operator's, with their email.
    """
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        if record is None:
            raise NotActionable("no such fulfillment order")
        shop = record.shop
        if not shop.active:
            raise NotActionable(f"the shop {shop.domain} is not connected")
        step = Step(ctx, session, record, Cause.OPERATOR, Actor.OPERATOR, operator_email)
        step.reread()
        session.commit()
        if is_final(record.state):
            raise NotActionable(f"the fulfillment order is {record.state.replace('_', ' ')}: {_last_detail(record)}")
        yield step
    log.info("operator_action operator=%s fulfillment_order=%s", operator_email, record_id)


def _last_detail(record: FulfillmentOrder) -> str:
    return record.state_changes[-1].detail if record.state_changes else ""


# --- deciding requests -----------------------------------------------------------------------------------------


def accept(ctx: Context, record_id: int, operator_email: str, message: str | None = None) -> Done:
    """Accept a fulfillment request whatever the policy says, once its stock is reserved.

    The worker is not called: an operator who accepts by hand packs by hand (`pack`).
    """
    with _operator_step(ctx, record_id, operator_email) as step:
        _require(step, {State.REQUESTED}, "accept")
        _require_store(step, {"OPEN"}, {"SUBMITTED"}, "accept")
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
        text = trimmed(message) or f"Accepted by {rules.service_name}; expected to ship by {ship_by:%Y-%m-%d}."
        step.accept(policy.Decision(True, text, estimated_shipped_at=ship_by))
        record.store_status = "IN_PROGRESS"  # what the store shows after an accept; no need to re-read for it
    return Done(f"Accepted {record.order_name or record.store_id}; stock reserved. Pack it below when it is ready.")


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
        _require(step, {State.REQUESTED}, "reject")
        _require_store(step, {"OPEN"}, {"SUBMITTED"}, "reject")
        record = step.record
        known = {line.store_id for line in record.line_items}
        unknown = [line_id for line_id, _ in lines if line_id not in known]
        if unknown:
            raise InvalidInput([f"line item {line_id} is not on this fulfillment order" for line_id in unknown])
        step.reject(policy.Decision(False, text, reason, lines))
    return Done(f"Rejected {record.order_name or record.store_id} ({REJECTION_REASONS[reason]}).")


# --- packing ---------------------------------------------------------------------------------------------------


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
        _require(step, {State.ACCEPTED, State.PICKED}, "pack")
        _require_store(step, {"IN_PROGRESS"}, SHIPPABLE_REQUEST_STATUSES, "pack")
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
        if State(record.state) == State.ACCEPTED:
            step.warehouse.pick(record)
            step.did(State.PICKED, "picked")
        for sequence, (items, number) in enumerate(zip(cleaned, numbers, strict=True), start=1):
            package = Package(sequence=sequence, tracking_number=number, carrier=carrier, tracking_url=None)
            package.items = [PackageItem(line_item=lines[line_id], quantity=qty) for line_id, qty in items]
            record.packages.append(package)
        step.session.flush()
        step.did(State.PACKED, f"packed in {len(cleaned)} package(s): {carrier} {', '.join(numbers)}")
    return Done(
        f"Packed {record.order_name or record.store_id} in {len(cleaned)} package(s); shipping.", True, step.shop.id
    )


# --- cancellation requests -------------------------------------------------------------------------------------


def answer_cancellation(ctx: Context, record_id: int, accept: bool, message: str | None, operator_email: str) -> Done:
    """Accept (nothing has shipped) or reject (work goes on) the merchant's cancellation request."""
    with _operator_step(ctx, record_id, operator_email) as step:
        _require(step, {State.CANCELLATION_REQUESTED}, "answer the cancellation request")
        _require_store(step, {"IN_PROGRESS", "OPEN"}, {"CANCELLATION_REQUESTED"}, "answer the cancellation request")
        record = step.record
        shipped = step.look_up_shipments()
        name = record.order_name or record.store_id
        if accept:
            if shipped:
                numbers = ", ".join(p.tracking_number for p in shipped)
                raise NotActionable(f"cannot accept the cancellation: already shipped ({numbers}); reject it instead")
            step.accept_cancellation(cancellation_message(accept, message) or NOTHING_SHIPPED)
            return Done(f"Cancellation of {name} accepted.")
        step.reject_cancellation(cancellation_message(accept, message))
    return Done(f"Cancellation of {name} refused; work goes on.", True, step.shop.id)


# --- shop settings -----------------------------------------------------------------------------------


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
