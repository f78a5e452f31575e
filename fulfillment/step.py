"""Moving a fulfillment order forward one step at a time, as the worker, an operator or the warehouse.

Each step starts by re-reading the fulfillment order on the store, so nothing irreversible (accept, reject,
ship, answer a cancellation) is done to one the merchant has taken back (withdrawn, reset, moved, held,
fulfilled elsewhere). Picking and packing, which change nothing on the store, go without a read unless the
store prompted the step (a sweep saw a change); the step that packs reads before it ships the first package.
While the request is with us the re-read is the one-point status read (the store then lets nobody move or hold
the fulfillment order); once it is not, the full state. Steps are safe to run twice: the store's answer to the re-read
tells a step that already happened from one still to do, and a package is marked `shipping` before the store
is asked to create its fulfillment, so a lost answer is looked up on the store rather than asked again.

`Step` is that protocol, whoever acts: the worker's own steps (`advance`), an operator's actions from the
dashboard and the warehouse's cancellation (`cancel_in_warehouse`) all re-read, reconcile and answer through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, joinedload

from fulfillment import policy
from fulfillment.context import Context
from fulfillment.models import (
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    MerchantRequest,
    Package,
    PackageItem,
    Shop,
    StateChange,
)
from fulfillment.states import FINAL, WORKING, Cause, PackageState, State, is_final, record_event, transition
from fulfillment.store import operations as ops
from fulfillment.store.client import StoreClient
from fulfillment.store.errors import StoreError, Throttled, UserErrors
from fulfillment.store.throttle import patience
from fulfillment.warehouse import OutOfStock

log = logging.getLogger("fulfillment.step")

# Request statuses under which the store lets the service create fulfillments.
SHIPPABLE_REQUEST_STATUSES = frozenset({"ACCEPTED", "CANCELLATION_REJECTED"})
NOTHING_SHIPPED = "Cancelled: nothing had left the warehouse."
_INTERRUPTIONS = {State.ON_HOLD, State.CANCELLATION_REQUESTED}
_IN_THE_WAREHOUSE = {State.ACCEPTED, State.PICKED}  # the next step is picking or packing
# Statuses of a store fulfillment that stands for nothing shipped.
_VOID = frozenset({"CANCELLED", "ERROR", "FAILURE"})
# (status, request status) of a fulfillment order whose request is with us: submitted to us, accepted, or a
# cancellation of it asked for or refused. The store lets nobody move or hold a fulfillment order in these, so the
# one-point status read proves everything a step checks; any other answer is read again in full (location, holds).
_WITH_US = frozenset(
    {
        ("OPEN", "SUBMITTED"),
        ("IN_PROGRESS", "ACCEPTED"),
        ("IN_PROGRESS", "CANCELLATION_REQUESTED"),
        ("IN_PROGRESS", "CANCELLATION_REJECTED"),
    }
)
# How long a step's mutation may queue for its shop's budget once the step has paid for its re-read.
AFTER_REREAD_WAIT_S = 2.0


@dataclass(frozen=True)
class Next:
    """When to take the next step: in `delay` seconds, or (None) not until the store tells us something."""

    delay: float | None
    shipped: tuple[int, ...] = ()  # packages that just left: their delivery events follow

    @property
    def done(self) -> bool:
        return self.delay is None


DONE = Next(None)
NOW = Next(0.0)


class Actor(StrEnum):
    """Who takes a step's actions, and so whose name its own moves are logged under."""

    WORKER = "worker"  # the automatic workflow
    OPERATOR = "operator"  # a warehouse operator, from the dashboard
    WAREHOUSE = "warehouse"  # the warehouse API, at the merchant's word (legacy cancellation)


# --- recording what the store says -------------------------------------------------------------------------


def _destination(snapshot: ops.FulfillmentOrder) -> dict | None:
    dest = snapshot.destination
    if dest is None:
        return None
    return {
        "first_name": dest.first_name,
        "last_name": dest.last_name,
        "address1": dest.address1,
        "address2": dest.address2,
        "city": dest.city,
        "province": dest.province,
        "zip": dest.zip,
        "country_code": dest.country_code,
    }


def apply_snapshot(
    session: Session, record: FulfillmentOrder, snapshot: ops.FulfillmentOrder, *, flush: bool = True
) -> None:
    """Bring our copy of the store's fields (line items, notes, status) up to date; states are not touched.
    Written at once unless `flush` is false (the caller's flush writes it)."""
    record.read_on_store(snapshot.status, snapshot.request_status)
    record.assigned_location_id = snapshot.assigned_location_id or record.assigned_location_id
    record.order_name = snapshot.order_name
    record.store_updated_at = _moment(snapshot.updated_at)
    if snapshot.destination is not None and record.destination is None:
        record.destination = _destination(snapshot)
    lines = {line.store_id: line for line in record.line_items}
    for item in snapshot.line_items:
        line = lines.get(item.id)
        if line is None:
            record.line_items.append(
                FulfillmentOrderLineItem(
                    store_id=item.id,
                    line_item_id=item.line_item_id,
                    sku=item.sku,
                    product_title=item.product_title,
                    total_quantity=item.total_quantity,
                    remaining_quantity=item.remaining_quantity,
                )
            )
        elif (line.remaining_quantity, line.total_quantity) != (item.remaining_quantity, item.total_quantity):
            # Only a line that changed is written: one assigned its own value still goes through every flush.
            line.remaining_quantity = item.remaining_quantity
            line.total_quantity = item.total_quantity
    known = {(r.kind, r.sent_at) for r in record.merchant_requests}
    for request in snapshot.merchant_requests:
        sent_at = request.sent_at.isoformat() if request.sent_at else ""
        if (request.kind, sent_at) not in known:
            record.merchant_requests.append(
                MerchantRequest(kind=request.kind, message=request.message, sent_at=sent_at)
            )
            known.add((request.kind, sent_at))
    if flush:
        session.flush()


def _moment(value: datetime | None) -> str | None:
    """The store's `updatedAt` as we keep it: compared for equality only, never computed with."""
    return value.isoformat() if value is not None else None


# --- one step ----------------------------------------------------------------------------------------------


def advance(ctx: Context, record_id: int, cause: Cause = Cause.WORKER) -> Next:
    """Re-read one fulfillment order on the store, notice what the merchant did, then take our next step."""
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id, options=_STEP_LOADS)
        if record is None or is_final(record.state) or not record.shop.active:
            return DONE
        return Step(ctx, session, record, cause).run()


# What every step reads of a record, loaded with it in one statement rather than one attribute at a time: the shop
# and the lines. The log (who accepted it, whether it was legacy) loads when a step asks, and a move adds to it
# without reading it (`states.transition`); packages load when a step needs them.
_STEP_LOADS = (
    joinedload(FulfillmentOrder.shop),
    joinedload(FulfillmentOrder.line_items),
)


def _state_of(snapshot: ops.FulfillmentOrder | None) -> ops.FulfillmentOrderState | None:
    if snapshot is None:
        return None
    return ops.FulfillmentOrderState(
        id=snapshot.id,
        status=snapshot.status,
        request_status=snapshot.request_status,
        assigned_location_id=snapshot.assigned_location_id,
        holds=snapshot.holds,
        supported_actions=snapshot.supported_actions,
    )


class Step:
    """One step on one fulfillment order, inside one transaction.

    `cause` is what prompted the step: what the re-read reveals (the merchant's doing) is logged under it. The
    step's own actions (`did`) are logged as the actor's: the worker's, the operator's (with their email), or
    under the cause for the warehouse.
    """

    def __init__(
        self,
        ctx: Context,
        session: Session,
        record: FulfillmentOrder,
        cause: Cause,
        actor: Actor = Actor.WORKER,
        operator_email: str = "",
    ):
        self.ctx = ctx
        self.session = session
        self.record = record
        self.shop: Shop = record.shop
        self.client: StoreClient = ctx.store_for(self.shop)
        self.cause = cause
        self.actor = actor
        self.operator_email = operator_email
        self.warehouse = ctx.warehouse(session)
        self.state: ops.FulfillmentOrderState | None = None  # the store's, as the last re-read found it
        self._acceptances: list[tuple[str | None, str]] | None = None

    # The store is the truth about what the merchant did; our record follows it first.
    def run(self) -> Next:
        if self.cause == Cause.WORKER and self.record.state in _IN_THE_WAREHOUSE and self.record.line_items:
            # Picking and packing change nothing on the store, so they go without a read: the re-read comes
            # before the next step that does, and a change the merchant makes meanwhile reaches us through the
            # sweep, which starts a new chain whose first step reads.
            return self.act(None)
        if self.record.line_items:
            state = self.read_state()
            if (
                state is not None
                and State(self.record.state) == State.REQUESTED
                and _moment(state.updated_at) != self.record.store_updated_at
            ):
                # The request changed since the sweep listed it (withdrawn and submitted again, say): what we
                # decide on is read again.
                state = _state_of(self.refresh(ops.fulfillment_order_to_decide))
        else:
            # Never read whole yet (recorded from a bare list row): this read is the re-read.
            state = _state_of(self.refresh(ops.fulfillment_order_to_decide))
        self.reconcile(state)
        if is_final(self.record.state):
            return DONE
        # The re-read is paid for: what follows it waits for its points rather than give way and, when tried
        # again, pay for the re-read a second time.
        with patience(AFTER_REREAD_WAIT_S):
            return self.act(state)

    def move(self, target: State, detail: str, cause: Cause | None = None) -> None:
        leaving_work = target in FINAL and target not in (State.SHIPPED,)
        transition(self.session, self.record, target, cause=cause or self.cause, detail=detail)
        if target == State.ACCEPTED:
            self._acceptances = None  # read again if asked
        if leaving_work:
            self.warehouse.release(self.record)
        log.info(
            "fulfillment_order_state shop=%s fulfillment_order=%s state=%s detail=%r",
            self.shop.domain,
            self.record.store_id,
            target,
            detail,
        )

    def did(self, target: State, detail: str) -> None:
        """Move as the result of the actor's own action."""
        if self.actor == Actor.OPERATOR:
            self.move(target, f"{detail} [operator {self.operator_email}]", Cause.OPERATOR)
        elif self.actor == Actor.WORKER:
            self.move(target, detail, Cause.WORKER)
        else:
            self.move(target, detail)

    def reread(self) -> ops.FulfillmentOrderState | None:
        """Read the fulfillment order's state on the store and bring our record in line with it."""
        self.state = self.read_state()
        self.reconcile(self.state)
        return self.state

    def read_state(self) -> ops.FulfillmentOrderState | None:
        """The re-read: one point while the request is with us, the full state once it is not."""
        state = ops.fulfillment_order_status(self.client, self.record.store_id)
        if state is None or (state.status, state.request_status) in _WITH_US:
            return state
        full = ops.fulfillment_order_state(self.client, self.record.store_id)
        return replace(full, updated_at=state.updated_at) if full is not None else None

    def reconcile(self, state: ops.FulfillmentOrderState | None) -> None:
        record = self.record
        current = State(record.state)
        if state is None:
            self.move(
                State.WITHDRAWN if current == State.REQUESTED else State.RESET,
                "the fulfillment order no longer exists on the store",
            )
            return
        record.read_on_store(state.status, state.request_status, self.ctx.clock())
        if self.shop.location_id and state.assigned_location_id and state.assigned_location_id != self.shop.location_id:
            record.assigned_location_id = state.assigned_location_id
            self.move(State.MOVED, f"moved by the merchant to {state.assigned_location_id}")
            return
        if state.status in ("CLOSED", "CANCELLED"):
            self.settle_closed(state)
            return
        if state.status == "INCOMPLETE":
            self.move(State.CLOSED, "closed as incomplete")
            return
        if state.status == "ON_HOLD" or state.holds:
            if current != State.ON_HOLD:
                self.move(State.ON_HOLD, "held by the merchant: " + ", ".join(state.holds or ("no reason given",)))
            return
        if current == State.ON_HOLD:
            self.move(self.resume_state(), "hold released")
            current = State(record.state)
        request_status = state.request_status
        if request_status == "CANCELLATION_REQUESTED" and (current in WORKING or current == State.REQUESTED):
            self.refresh()
            note = self.latest_note("CANCELLATION_REQUEST")
            self.move(State.CANCELLATION_REQUESTED, "cancellation requested" + (f": {note}" if note else ""))
        elif current == State.REQUESTED and request_status == "ACCEPTED":
            self.reserve_quietly()
            self.move(State.ACCEPTED, "the store shows the request accepted")
        elif current == State.REQUESTED and request_status == "REJECTED":
            self.move(State.REJECTED, "the store shows the request rejected")
        elif current == State.CANCELLATION_REQUESTED and request_status in SHIPPABLE_REQUEST_STATUSES:
            self.move(self.resume_state(), "the store shows the cancellation request rejected")

    def settle_closed(self, state: ops.FulfillmentOrderState) -> None:
        """Closed on the store: by our last fulfillment, by our cancellation answer, or by the merchant's hand."""
        if state.request_status == "CANCELLATION_ACCEPTED":
            if State(self.record.state) != State.CANCELLATION_REQUESTED:
                # Our answer reached the store but its reply was lost, and the request went with our rollback.
                self.move(State.CANCELLATION_REQUESTED, "cancellation requested (seen already accepted on the store)")
            self.move(State.CANCELLED, "the store shows the cancellation accepted")
            return
        snapshot = self.refresh()
        fulfillments = snapshot.fulfillments if snapshot else ()
        self.match_fulfillments(fulfillments)
        ours = {p.store_fulfillment_id for p in self.record.packages if p.store_fulfillment_id}
        others = [f for f in fulfillments if f.id not in ours and f.status not in _VOID]
        packages = self.record.packages
        if packages and all(p.state == PackageState.SHIPPED for p in packages):
            self.move(State.SHIPPED, "every package shipped")
        elif others:
            names = ", ".join(f.name or f.id for f in others)
            self.move(State.FULFILLED_ELSEWHERE, f"fulfilled outside our warehouse ({names}); not shipping")
        elif State(self.record.state) == State.REQUESTED:
            self.move(State.WITHDRAWN, f"request withdrawn by the merchant (store status {state.status})")
        else:
            self.move(
                State.RESET,
                f"reset to unfulfilled by the merchant (store status {state.status}); work stopped",
            )

    def act(self, state: ops.FulfillmentOrderState | None) -> Next:
        """Our next step; `state` is the store's, read for it (None for picking and packing)."""
        current = State(self.record.state)
        if current == State.REQUESTED:
            return self.decide(state)
        if current in (State.ACCEPTED, State.PICKED) and self.packed_by_hand():
            return DONE
        if current == State.ACCEPTED:
            self.report_legacy_progress("Picking started at the warehouse.")
            self.warehouse.pick(self.record)
            self.did(State.PICKED, "picked")
            return Next(self.setting("pack_delay_s", self.ctx.config.pack_delay_s))
        if current == State.PICKED:
            self.pack()
            self.report_legacy_progress(f"Packed in {len(self.record.packages)} package(s); handing to the carrier.")
            return self.ship_packed()
        if current in (State.PACKED, State.PARTIALLY_SHIPPED):
            return self.ship_next(state)
        if current == State.CANCELLATION_REQUESTED:
            return self.answer_cancellation()
        return DONE

    # --- decisions --------------------------------------------------------------------------------------

    def decide(self, state: ops.FulfillmentOrderState) -> Next:
        record = self.record
        if state.status != "OPEN" or state.request_status != "SUBMITTED":
            return DONE
        if self.shop.settings.get("review_requests"):
            return DONE  # an operator decides from the dashboard
        if not record.line_items:
            self.refresh()
        rules = policy.Rules.from_settings(
            self.shop.settings,
            handling_days=self.ctx.config.handling_days,
            service_name=self.ctx.config.service_name,
        )
        skus = sorted({line.sku for line in record.line_items if line.sku})
        # The shelves are counted once, locked, for the decision and the reservation alike. Nothing this step
        # changed bears on them: what it changed is written with the reservation, not before the reads.
        with self.session.no_autoflush:
            available = self.warehouse.available(record.shop_id, skus, lock=True)
            decision = policy.decide(record, available, rules, self.ctx.clock())
            if decision.accept:
                try:
                    self.warehouse.reserve(record)
                except OutOfStock as exc:
                    decision = policy.Decision(False, f"Not enough stock: {exc}.", "INVENTORY_OUT_OF_STOCK")
        if decision.accept:
            return self.accept(decision)
        self.session.commit()  # the shelves are let go before the store is told
        return self.reject(decision)

    def accept(self, decision: policy.Decision) -> Next:
        # The reservation is committed before the store hears of it, so stock is never promised twice.
        self.session.commit()
        answer = ops.accept_fulfillment_request(
            self.client,
            self.record.store_id,
            message=decision.message,
            estimated_shipped_at=decision.estimated_shipped_at,
        )
        self.record.expected_ship_at = decision.estimated_shipped_at
        # IN_PROGRESS / ACCEPTED, so the next sweep does not take it for a change. The statuses are what an accepted
        # request becomes by the store's rules, not the payload's (which may show them from before the change).
        self.record.store_status, self.record.store_request_status = answer.status, answer.request_status
        self.did(State.ACCEPTED, decision.message)
        return Next(self.setting("pick_delay_s", self.ctx.config.pick_delay_s))

    def reject(self, decision: policy.Decision) -> Next:
        answer = ops.reject_fulfillment_request(
            self.client,
            self.record.store_id,
            reason=decision.reason or "OTHER",
            message=decision.message,
            line_items=decision.line_item_messages,
        )
        self.record.store_status, self.record.store_request_status = answer.status, answer.request_status
        self.did(State.REJECTED, f"{decision.reason}: {decision.message}")
        return DONE

    # --- packing and shipping ---------------------------------------------------------------------------

    def pack(self) -> None:
        plans = self.warehouse.pack(self.record)
        lines = {line.id: line for line in self.record.line_items}
        for sequence, plan in enumerate(plans, start=1):
            package = Package(
                sequence=sequence,
                tracking_number=plan.tracking_number,
                carrier=plan.carrier,
                tracking_url=plan.tracking_url,
            )
            package.items = [PackageItem(line_item=lines[line_id], quantity=qty) for line_id, qty in plan.items]
            self.record.packages.append(package)
        self.did(State.PACKED, f"packed in {len(plans)} package(s)")

    def ship_packed(self) -> Next:
        """The first package leaves in the step that packed it, after a re-read made moments before: a step of
        its own would only load the record, take the lock and read the same thing again.

        The packing is written with what the re-read leads to (the package marked `shipping`, most often), one
        commit rather than two; nothing of it is flushed while the store is asked, so no lock is held meanwhile.
        A re-read that gets no answer leaves the packing standing for the next step."""
        try:
            self.state = self.read_state()
        except StoreError:
            self.session.commit()
            raise
        self.reconcile(self.state)
        state = self.state
        if is_final(self.record.state):
            return DONE
        with patience(AFTER_REREAD_WAIT_S):
            return self.act(state)

    def ship_next(self, state: ops.FulfillmentOrderState) -> Next:
        pending = [p for p in self.record.packages if p.state != PackageState.SHIPPED]
        if not pending:
            self.did(State.SHIPPED, "every package shipped")
            return DONE
        package = pending[0]
        if package.state == PackageState.SHIPPING:
            self.look_up_shipments()
            if package.state == PackageState.SHIPPED:
                return self.after_shipment(package)
        if state.status != "IN_PROGRESS" or state.request_status not in SHIPPABLE_REQUEST_STATUSES:
            record_event(
                self.session,
                self.record,
                cause=self.cause,
                detail=f"not shipping: store shows {state.status}/{state.request_status}",
            )
            return DONE
        package.state = PackageState.SHIPPING
        self.session.commit()
        count = len(self.record.packages)
        try:
            fulfillment = ops.create_fulfillment(
                self.client,
                self.record.store_id,
                [(item.line_item.store_id, item.quantity) for item in package.items],
                tracking=ops.TrackingInfo(package.tracking_number, package.carrier, package.tracking_url),
                notify_customer=True,
                message=f"Package {package.sequence} of {count} shipped with {package.carrier}.",
            )
        except UserErrors as exc:
            # The store refused: nothing was created, so the package is back on the dock for the next re-read.
            package.state = PackageState.PACKED
            record_event(self.session, self.record, cause=self.cause, detail=f"fulfillment refused: {exc}")
            self.session.commit()
            raise
        except Throttled:
            # The budget would not wait that long, so nothing was sent: back on the dock, nothing to look up.
            package.state = PackageState.PACKED
            self.session.commit()
            raise
        self.mark_shipped(package, fulfillment)
        return self.after_shipment(package)

    def mark_shipped(self, package: Package, fulfillment: ops.Fulfillment) -> None:
        # The shelves first, while the package's change waits: their reads have nothing to write before them, and
        # everything is written at once with the step's commit.
        self.warehouse.ship([(item.line_item_id, item.quantity) for item in package.items])
        package.state = PackageState.SHIPPED
        package.store_fulfillment_id = fulfillment.id
        package.fulfillment_name = fulfillment.name or None
        package.shipped_at = self.ctx.clock()
        for item in package.items:
            item.line_item.remaining_quantity = max(0, item.line_item.remaining_quantity - item.quantity)
        record_event(
            self.session,
            self.record,
            cause=self.cause,
            detail=f"package {package.sequence} shipped: {package.carrier} {package.tracking_number}",
        )

    def after_shipment(self, package: Package) -> Next:
        if all(p.state == PackageState.SHIPPED for p in self.record.packages):
            self.did(State.SHIPPED, "every package shipped")
            return Next(None, shipped=(package.id,))
        if State(self.record.state) != State.PARTIALLY_SHIPPED:
            self.did(State.PARTIALLY_SHIPPED, "first package shipped")
        return Next(self.setting("package_interval_s", 0.0), shipped=(package.id,))

    def packed_by_hand(self) -> bool:
        """An order an operator accepted from the dashboard is packed there too, not by the simulator."""
        accepted = [(came_from, cause) for came_from, cause in self.acceptances() if came_from != State.ACCEPTED]
        return bool(accepted) and accepted[-1][1] == Cause.OPERATOR

    def is_legacy(self) -> bool:
        """Taken in the legacy workflow: the store accepted the request before we ever saw it (its log starts
        there: only the first move of a log comes from no state)."""
        acceptances = self.acceptances()
        return bool(acceptances) and acceptances[0][0] is None

    def acceptances(self) -> list[tuple[str | None, str]]:
        """Each move into `accepted` in the log, oldest first: the state it came from and its cause. Read once a
        step, two columns of the log's rows rather than the whole log, unless the log is loaded already."""
        if self._acceptances is None:
            record = self.record
            if "state_changes" in inspect(record).unloaded:
                query = (
                    select(StateChange.from_state, StateChange.cause)
                    .where(StateChange.fulfillment_order_id == record.id, StateChange.to_state == State.ACCEPTED)
                    .order_by(StateChange.id)
                )
                self._acceptances = [(came_from, cause) for came_from, cause in self.session.execute(query)]
            else:
                self._acceptances = [
                    (c.from_state, c.cause) for c in record.state_changes if c.to_state == State.ACCEPTED
                ]
        return self._acceptances

    def report_legacy_progress(self, notes: str) -> None:
        # The legacy workflow tells the store when work is under way. The current one does not report, because
        # a progress report stops the merchant from moving the fulfillment order.
        if self.is_legacy():
            ops.report_progress(self.client, self.record.store_id, reason_notes=notes)
            record_event(self.session, self.record, cause=Cause.WORKER, detail=f"progress reported: {notes}")

    def match_fulfillments(self, fulfillments: tuple[ops.Fulfillment, ...]) -> None:
        """Recognise our own packages among the store's fulfillments by their tracking numbers."""
        # A fulfillment cancelled (or failed) on the store shipped nothing, whatever tracking number it carries.
        by_number = {t.number: f for f in fulfillments if f.status not in _VOID for t in f.tracking if t.number}
        for package in self.record.packages:
            if package.state == PackageState.SHIPPED:
                continue
            found = by_number.get(package.tracking_number)
            if found is not None:
                self.mark_shipped(package, found)
            elif package.state == PackageState.SHIPPING:
                package.state = PackageState.PACKED

    def look_up_shipments(self) -> list[Package]:
        """The packages that have left. A package still `shipping` may have reached the store on an attempt
        whose answer was lost: re-read the fulfillment order and match before anyone decides on it."""
        if any(p.state == PackageState.SHIPPING for p in self.record.packages):
            snapshot = self.refresh()
            self.match_fulfillments(snapshot.fulfillments if snapshot else ())
        return [p for p in self.record.packages if p.state == PackageState.SHIPPED]

    # --- cancellation -----------------------------------------------------------------------------------

    def answer_cancellation(self) -> Next:
        """The worker's answer to the merchant's cancellation request: yes while nothing has shipped."""
        if self.shop.settings.get("review_cancellations"):
            return DONE  # an operator answers from the dashboard
        shipped = self.look_up_shipments()
        if not shipped:
            self.accept_cancellation(NOTHING_SHIPPED)
            return DONE
        self.reject_cancellation("Cannot cancel: " + self.shipped_summary(shipped))
        # Work goes on as before the request: the next parcel still waits for its carrier pickup.
        return Next(self.setting("package_interval_s", 0.0))

    # The statuses the store's answer gives are what the request becomes by the store's rules.

    def accept_cancellation(self, message: str) -> None:
        answer = ops.accept_cancellation_request(self.client, self.record.store_id, message=message)
        self.record.store_status, self.record.store_request_status = answer.status, answer.request_status
        self.did(State.CANCELLED, message)

    def reject_cancellation(self, message: str) -> None:
        answer = ops.reject_cancellation_request(self.client, self.record.store_id, message=message)
        self.record.store_status, self.record.store_request_status = answer.status, answer.request_status
        self.did(self.resume_state(), message)

    # --- helpers ----------------------------------------------------------------------------------------

    def setting(self, name: str, default: float) -> float:
        """A per-shop figure from the shop's settings, else the warehouse-wide default."""
        return float(self.shop.settings.get(name, default))

    @staticmethod
    def shipped_summary(shipped: list[Package]) -> str:
        """Names exactly what left: quantities and SKUs per package, with the carrier's tracking."""
        parts = [
            ", ".join(f"{i.quantity} x {i.line_item.sku or i.line_item.product_title}" for i in p.items)
            + f" ({p.carrier} {p.tracking_number})"
            for p in shipped
        ]
        return "already shipped " + "; ".join(parts) + "."

    def refresh(self, read: Callable[..., ops.FulfillmentOrder | None] | None = None) -> ops.FulfillmentOrder | None:
        snapshot = (read or ops.fulfillment_order)(self.client, self.record.store_id)
        if snapshot is not None:
            apply_snapshot(self.session, self.record, snapshot)
        return snapshot

    def latest_note(self, kind: str) -> str | None:
        notes = [r for r in self.record.merchant_requests if r.kind == kind and r.message]
        return notes[-1].message if notes else None

    def reserve_quietly(self) -> None:
        try:
            self.warehouse.reserve(self.record)
        except OutOfStock as exc:
            record_event(self.session, self.record, cause=self.cause, detail=f"could not reserve stock: {exc}")

    def resume_state(self) -> State:
        """Where work picks up after a hold or a refused cancellation: derived from packages and the log."""
        packages = self.record.packages
        if packages:
            if all(p.state == PackageState.SHIPPED for p in packages):
                return State.SHIPPED
            if any(p.state == PackageState.SHIPPED for p in packages):
                return State.PARTIALLY_SHIPPED
            return State.PACKED
        for change in reversed(self.record.state_changes):
            if (
                change.from_state
                and State(change.from_state) not in _INTERRUPTIONS
                and change.from_state != change.to_state
            ):
                return State(change.from_state)
        return State.REQUESTED


# --- the warehouse's side of a cancellation (legacy workflow, row L3) ---------------------------------------


class NotCancellable(Exception):
    """Something already left the building; the message names it."""


def cancel_in_warehouse(ctx: Context, record_id: int, message: str, cause: Cause = Cause.OPERATOR) -> None:
    """Stop work on a fulfillment order at the merchant's word, if nothing has shipped.

    The store's own admin cannot cancel a legacy request; this is the path the merchant's request takes to us.
    The fulfillment order is closed on the store (INCOMPLETE), which hands control back to the merchant.
    """
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        if record is None:
            raise NotCancellable("no such fulfillment order")
        shipped = [p for p in record.packages if p.state == PackageState.SHIPPED]
        if shipped:
            raise NotCancellable(Step.shipped_summary(shipped))
        if is_final(record.state):
            raise NotCancellable(f"already {record.state}")
        step = Step(ctx, session, record, cause, Actor.WAREHOUSE)
        step.reread()
        if is_final(record.state):
            raise NotCancellable(f"already {record.state}")
        shipped = step.look_up_shipments()
        if shipped:
            session.commit()
            raise NotCancellable(step.shipped_summary(shipped))
        if State(record.state) == State.REQUESTED:
            step.reject(policy.Decision(False, message, "OTHER"))
            return
        ops.close_fulfillment_order(step.client, record.store_id, message=message)
        step.did(State.CLOSED, f"cancelled in the warehouse: {message}")
