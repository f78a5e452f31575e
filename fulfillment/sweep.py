"""Finding what the store assigned to us: one sweep of a shop lists it and records what is new.

This is how nothing is lost when a callback is: a sweep runs on every callback and webhook, and on a schedule
(`due_between`: a shop we hold open work for at the sweep interval, an idle shop at the slower safety interval,
each at its own moment of the interval), and returns our records that need a step (`fulfillment.step` takes it).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, Shop
from fulfillment.states import FINAL, Cause, State, is_final, record_event, transition
from fulfillment.step import apply_snapshot
from fulfillment.store import operations as ops
from fulfillment.store.client import StoreClient
from fulfillment.store.throttle import patience
from fulfillment.warehouse import OutOfStock

log = logging.getLogger("fulfillment.sweep")

# Request statuses under which the store wants something from us for a fulfillment order we do not know yet.
_INTAKE_REQUEST_STATUSES = {"SUBMITTED", "ACCEPTED", "CANCELLATION_REQUESTED"}
# A sweep pays for its listing page by page, and one that gives up pays again from the first page; there is one
# per shop at a time, so it may queue this long for its shop's budget where a step would give its worker away.
SWEEP_BUDGET_WAIT_S = 30.0


class Scope(StrEnum):
    """How much of the shop a sweep lists.

    REQUESTS: what waits on us (requests and cancellation requests), for the store's pings about a request; the
    list holds only what is new or not yet answered, so it costs little and may run as soon as the ping arrives.
    FULL: that and every fulfillment order in our hands, for news about those (cancelled, moved, held) and for
    the schedule of shops we hold open work for. IDLE: the safety sweep of a shop with nothing open, one listing
    of everything open at our location; it goes behind all other work.
    """

    REQUESTS = "requests"
    FULL = "full"
    IDLE = "idle"


# Webhook topics that say only "a request (or cancellation request) is waiting": the callback's news again.
_REQUEST_TOPICS = {
    "fulfillment_orders/fulfillment_request_submitted",
    "fulfillment_orders/cancellation_request_submitted",
}


def scope_for_topic(topic: str) -> Scope:
    """What a sweep prompted by a webhook of this topic lists."""
    return Scope.REQUESTS if topic.strip().lower() in _REQUEST_TOPICS else Scope.FULL


@dataclass(frozen=True)
class Due:
    """A fulfillment order that needs a step; `urgent` when the store changed it (the merchant acted)."""

    record_id: int
    urgent: bool = False


@dataclass(frozen=True)
class Sweep:
    """What one sweep of a shop found: our records that need a step, and how many fulfillment orders the store
    listed as assigned to us (what the listing cost, near enough)."""

    due: list[Due]
    listed: int


def _create_record(
    ctx: Context,
    session: Session,
    shop: Shop,
    snapshot: ops.FulfillmentOrder | ops.FulfillmentOrderSummary,
    cause: Cause,
) -> FulfillmentOrder | None:
    """Our record of a fulfillment order the store assigned to us; from the sweep's list row alone for a new
    request (its first step reads the rest), from the whole fulfillment order otherwise."""
    try:
        with session.begin_nested():
            record = _new_record(ctx, session, shop, snapshot, cause)
    except IntegrityError:
        # Another worker recorded it first; theirs stands.
        return None
    _recorded(shop, record)
    return record


def _create_requests(
    ctx: Context,
    session: Session,
    shop: Shop,
    snapshots: list[ops.FulfillmentOrder | ops.FulfillmentOrderSummary],
    cause: Cause,
) -> dict[str, FulfillmentOrder]:
    """Our records of the new requests one listing page brought, written in one savepoint (one flush, a few
    statements for the page) rather than one each; when another worker recorded one of them first, each is
    recorded on its own and theirs stand. Returns them by store id."""
    if len(snapshots) > 1:
        try:
            with session.begin_nested():
                records = [_new_record(ctx, session, shop, snapshot, cause) for snapshot in snapshots]
        except IntegrityError:
            pass
        else:
            for record in records:
                _recorded(shop, record)
            return {record.store_id: record for record in records}
    made = {}
    for snapshot in snapshots:
        record = _create_record(ctx, session, shop, snapshot, cause)
        if record is not None:
            made[snapshot.id] = record
    return made


def _new_record(
    ctx: Context,
    session: Session,
    shop: Shop,
    snapshot: ops.FulfillmentOrder | ops.FulfillmentOrderSummary,
    cause: Cause,
) -> FulfillmentOrder:
    record = FulfillmentOrder(shop_id=shop.id, store_id=snapshot.id, order_id=snapshot.order_id, state=None)
    if snapshot.request_status == "SUBMITTED":
        transition(session, record, State.REQUESTED, cause=cause, detail="fulfillment request received")
    else:
        # Already accepted when we first see it: the legacy workflow, where the store takes the request on the
        # service's behalf. The stock is ours to hold from now on.
        transition(
            session,
            record,
            State.ACCEPTED,
            cause=cause,
            detail=f"accepted on the store before we saw it ({snapshot.request_status})",
        )
    session.add(record)
    if isinstance(snapshot, ops.FulfillmentOrder):
        # Written with the savepoint: a new record's lines need no ids before then, unless stock is reserved.
        apply_snapshot(session, record, snapshot, flush=record.state == State.ACCEPTED)
    else:
        record.store_status = snapshot.status
        record.store_request_status = snapshot.request_status
        record.assigned_location_id = snapshot.assigned_location_id or shop.location_id
        record.order_name = snapshot.order_name
    if record.state == State.ACCEPTED:
        try:
            ctx.warehouse(session).reserve(record)
        except OutOfStock as exc:
            record_event(session, record, cause=cause, detail=f"could not reserve stock: {exc}")
    return record


def _recorded(shop: Shop, record: FulfillmentOrder) -> None:
    log.info(
        "fulfillment_order_recorded shop=%s fulfillment_order=%s state=%s",
        shop.domain,
        record.store_id,
        record.state,
    )


def _awaits_us(shop: Shop, record: FulfillmentOrder) -> bool:
    """The store waits for our answer and no operator review holds it back."""
    settings = shop.settings or {}
    if record.state == State.REQUESTED:
        return not settings.get("review_requests")
    if record.state == State.CANCELLATION_REQUESTED:
        return not settings.get("review_cancellations")
    return False


def sweep_shop(ctx: Context, shop_id: int, cause: Cause = Cause.POLL, scope: Scope = Scope.FULL) -> Sweep:
    """Read what is assigned to us on the store (all of it, or for `Scope.REQUESTS` what waits on us); return
    our records that need a step and how many the store listed.

    This is how nothing is lost when a callback is: it runs on every callback and on a schedule.
    """
    stale_after = timedelta(seconds=max(ctx.config.sweep_interval_s * 2, 60))
    due: dict[int, Due] = {}
    with patience(SWEEP_BUDGET_WAIT_S), ctx.db.transaction() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or not shop.active:
            return Sweep([], 0)
        client = ctx.store_for(shop)
        location_ids = [shop.location_id] if shop.location_id else None
        seen: set[str] = set()
        now = ctx.clock()
        listed = []
        for summary in _assigned_to_us(client, location_ids, scope):
            if summary.id not in seen:  # else its status changed between two of the lists
                seen.add(summary.id)
                listed.append(summary)
        # Our records of what was listed, in one query per listing page rather than one per fulfillment order.
        known = _records(session, shop.id, [summary.id for summary in listed])
        if scope == Scope.IDLE and any(s.id not in known and s.request_status == "SUBMITTED" for s in listed):
            # New requests in the idle shop's one bare listing: the requests' own listing brings what deciding
            # needs for about a point each, where a bare row leaves the first step an eleven-point read.
            detailed = {
                found.id: found for found in ops.iter_requested_fulfillment_orders(client, location_ids=location_ids)
            }
            listed = [detailed.get(summary.id, summary) for summary in listed]
        # New requests are recorded a listing page at a time. The first step reads each whole, and that read is
        # its re-read before deciding.
        new_requests = [s for s in listed if s.id not in known and s.request_status == "SUBMITTED"]
        made: dict[str, FulfillmentOrder] = {}
        for start in range(0, len(new_requests), ops.SWEEP_PAGE):
            made.update(_create_requests(ctx, session, shop, new_requests[start : start + ops.SWEEP_PAGE], cause))
        for summary in listed:
            record = known.get(summary.id)
            if record is None:
                if summary.request_status not in _INTAKE_REQUEST_STATUSES:
                    continue
                if summary.request_status == "SUBMITTED":
                    record = made.get(summary.id)
                else:
                    snapshot = ops.fulfillment_order(client, summary.id)
                    if snapshot is None:
                        continue
                    record = _create_record(ctx, session, shop, snapshot, cause)
                if record is not None:
                    # Committed with the sweep: its steps are queued once it returns.
                    due[record.id] = Due(record.id)
                continue
            if is_final(record.state):
                continue
            changed = (summary.status, summary.request_status) != (
                record.store_status,
                record.store_request_status,
            )
            updated_at = record.updated_at if record.updated_at.tzinfo else record.updated_at.replace(tzinfo=now.tzinfo)
            if changed or now - updated_at > stale_after or _awaits_us(shop, record):
                due[record.id] = Due(record.id, urgent=changed)
        if scope == Scope.REQUESTS:
            return Sweep(list(due.values()), len(seen))
        # What we were working on but the store no longer lists as ours was closed, cancelled or moved.
        open_records = session.execute(
            select(FulfillmentOrder.id, FulfillmentOrder.store_id).where(
                FulfillmentOrder.shop_id == shop.id, FulfillmentOrder.state.not_in([str(s) for s in FINAL])
            )
        ).all()
        for record_id, store_id in open_records:
            if store_id not in seen:
                due[record_id] = Due(record_id, urgent=True)
    return Sweep(list(due.values()), len(seen))


def _records(session: Session, shop_id: int, store_ids: list[str]) -> dict[str, FulfillmentOrder]:
    found: dict[str, FulfillmentOrder] = {}
    for start in range(0, len(store_ids), ops.SWEEP_PAGE):
        page = store_ids[start : start + ops.SWEEP_PAGE]
        query = select(FulfillmentOrder).where(FulfillmentOrder.shop_id == shop_id, FulfillmentOrder.store_id.in_(page))
        found.update((record.store_id, record) for record in session.scalars(query))
    return found


# What a sweep lists: the fulfillment orders that wait on us or that we work on. Without a status the store lists
# every open one at our location, unsubmitted ones too, and a listing costs a point a fulfillment order. A record
# of ours missing from all three lists is stepped (and so re-read) anyway: the merchant took it back.
SWEEP_ASSIGNMENT_STATUSES = ("FULFILLMENT_REQUESTED", "CANCELLATION_REQUESTED", "FULFILLMENT_ACCEPTED")


# An idle shop holds nothing of ours in progress, so one listing of every open fulfillment order at our location
# (no status: unsubmitted ones too, which an idle shop has few of) costs less than the three lists.
IDLE_ASSIGNMENT_STATUSES: tuple[str | None, ...] = (None,)

# What waits on us; a REQUESTS sweep lists these first. A legacy shop's store accepts a request on our behalf
# before it pings us (and takes no cancellation requests), so when these lists are empty the request is among
# the accepted ones, listed then.
REQUEST_ASSIGNMENT_STATUSES = ("FULFILLMENT_REQUESTED", "CANCELLATION_REQUESTED")


def _assigned_to_us(
    client: StoreClient, location_ids: list[str] | None, scope: Scope = Scope.FULL
) -> Iterator[ops.FulfillmentOrderSummary | ops.FulfillmentOrder]:
    found = 0
    for status in IDLE_ASSIGNMENT_STATUSES if scope == Scope.IDLE else SWEEP_ASSIGNMENT_STATUSES:
        if scope == Scope.REQUESTS and status not in REQUEST_ASSIGNMENT_STATUSES and found:
            return  # something waits on us: the ping was about it
        if status == "FULFILLMENT_REQUESTED":
            # New requests come with what deciding needs, so the first step reads one point, not a whole order.
            listed = ops.iter_requested_fulfillment_orders(client, location_ids=location_ids)
        else:
            listed = ops.iter_assigned_fulfillment_orders(client, assignment_status=status, location_ids=location_ids)
        for summary in listed:
            found += 1
            yield summary


# --- when each shop is swept ---------------------------------------------------------------------------------

# The non-final states: a shop with a record in one of these is one we hold open work for.
OPEN_STATES = tuple(sorted(str(s) for s in State if s not in FINAL))


def shops_to_sweep(session: Session) -> list[tuple[int, bool]]:
    """Every installed shop, with whether we hold open work for it (a fulfillment order not yet final)."""
    active = session.scalars(
        select(Shop.id).where(Shop.uninstalled_at.is_(None), Shop.access_token_ciphertext.is_not(None))
    ).all()
    busy = set(
        session.scalars(
            select(FulfillmentOrder.shop_id).where(FulfillmentOrder.state.in_(OPEN_STATES)).distinct()
        ).all()
    )
    return [(shop_id, shop_id in busy) for shop_id in active]


def phase(shop_id: int) -> float:
    """Where in each interval the shop's scheduled sweep falls, in [0, 1): a hash of its id, so the sweeps of
    many shops spread evenly over the interval instead of all landing on the same beat tick."""
    return zlib.crc32(str(shop_id).encode()) / 2**32


def due_between(
    shops: Iterable[tuple[int, bool]], start: float, end: float, interval_s: float, idle_interval_s: float
) -> list[tuple[int, Scope]]:
    """The shops whose scheduled sweep falls in (start, end]: each shop we hold open work for once every
    `interval_s`, each idle shop once every `idle_interval_s`, at its own phase of the interval."""
    chosen = []
    for shop_id, busy in shops:
        every = interval_s if busy else idle_interval_s
        offset = phase(shop_id) * every
        if math.floor((end - offset) / every) > math.floor((start - offset) / every):
            chosen.append((shop_id, Scope.FULL if busy else Scope.IDLE))
    return chosen
