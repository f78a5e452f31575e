"""The workflow against a faked store: lost answers, crashes between steps, and the merchant's hand.

The store is faked at the level of the typed operations, so these run in milliseconds; the same paths run
against the sandbox store in tests/e2e.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fulfillment import step, sweep
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, Package
from fulfillment.shops import save_token
from fulfillment.states import Cause, State
from fulfillment.store import operations as ops
from fulfillment.store.errors import StoreUnavailable

SHOP = "fake-shop.myshopify.com"
LOCATION = "gid://shopify/Location/9"
FO_ID = "gid://shopify/FulfillmentOrder/1"
# Which request statuses the store lists under each assignment status.
LISTED_AS = {
    "FULFILLMENT_REQUESTED": {"SUBMITTED"},
    "CANCELLATION_REQUESTED": {"CANCELLATION_REQUESTED"},
    "FULFILLMENT_ACCEPTED": {"ACCEPTED", "CANCELLATION_REJECTED"},
}
LINE_ID = "gid://shopify/FulfillmentOrderLineItem/11"
REAL_ACCEPT = ops.accept_fulfillment_request  # before any test replaces it with the fake store's


class FakeStore:
    """One fulfillment order as the store holds it, and every mutation the app sent."""

    def __init__(self, quantity: int = 2):
        self.status, self.request_status = "OPEN", "SUBMITTED"
        self.location = LOCATION
        self.holds: tuple[str, ...] = ()
        self.remaining = quantity
        self.quantity = quantity
        self.fulfillments: list[ops.Fulfillment] = []
        self.calls: list[str] = []
        self.lose_next_answer = False
        self.updated_at: datetime | None = None

    def _answer(self):
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise StoreUnavailable("502 after applying", maybe_applied=True)

    def state(self, _client, _id):
        return ops.FulfillmentOrderState(
            FO_ID, self.status, self.request_status, self.location, self.holds, (), self.updated_at
        )

    def snapshot(self, _client, _id, fulfillments=True):
        return ops.FulfillmentOrder(
            id=FO_ID,
            status=self.status,
            request_status=self.request_status,
            order_id="gid://shopify/Order/1",
            order_name="#1001",
            assigned_location_id=self.location,
            updated_at=self.updated_at,
            line_items=(
                ops.LineItem(LINE_ID, "gid://shopify/LineItem/1", "SKU-1", self.quantity, self.remaining, "Mug"),
            ),
            merchant_requests=(),
            holds=self.holds,
            supported_actions=(),
            fulfillments=tuple(self.fulfillments) if fulfillments else (),
            destination=ops.Destination("NO", "", "Oslo", "0150", "1 Road", None, "Ada", "L"),
        )

    def summaries(self, _client, assignment_status=None, **_kw):
        if assignment_status is not None and self.request_status not in LISTED_AS[assignment_status]:
            return
        yield ops.FulfillmentOrderSummary(
            FO_ID, self.status, self.request_status, "gid://shopify/Order/1", "#1001", self.location, None
        )

    def requested(self, _client, **_kw):
        if self.request_status == "SUBMITTED":
            yield self.snapshot(None, FO_ID, fulfillments=False)

    def accept(self, _client, _id, **_kw):
        self.calls.append("accept")
        self.status, self.request_status = "IN_PROGRESS", "ACCEPTED"
        self._answer()
        return self.state(None, FO_ID)

    def create_fulfillment(self, _client, _id, line_items, *, tracking, **_kw):
        self.calls.append("fulfillmentCreate")
        shipped = sum(q for _, q in line_items)
        assert shipped <= self.remaining, "the app asked to fulfil more than remains"
        self.remaining -= shipped
        fulfillment = ops.Fulfillment(
            id=f"gid://shopify/Fulfillment/{len(self.fulfillments) + 1}",
            name=f"#1001.{len(self.fulfillments) + 1}",
            status="SUCCESS",
            tracking=(tracking,),
            line_items=(ops.FulfillmentLineItem("gid://shopify/LineItem/1", shipped),),
        )
        self.fulfillments.append(fulfillment)
        if self.remaining == 0:
            self.status = "CLOSED"
        self._answer()
        return fulfillment


@pytest.fixture
def store(monkeypatch):
    fake = FakeStore()
    monkeypatch.setattr(ops, "fulfillment_order_state", fake.state)
    monkeypatch.setattr(ops, "fulfillment_order_status", fake.state)
    monkeypatch.setattr(ops, "iter_requested_fulfillment_orders", fake.requested)
    monkeypatch.setattr(ops, "fulfillment_order", fake.snapshot)
    monkeypatch.setattr(ops, "fulfillment_order_to_decide", lambda c, i: fake.snapshot(c, i, fulfillments=False))
    monkeypatch.setattr(ops, "iter_assigned_fulfillment_orders", fake.summaries)
    monkeypatch.setattr(ops, "accept_fulfillment_request", fake.accept)
    monkeypatch.setattr(ops, "create_fulfillment", fake.create_fulfillment)
    return fake


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(
        Config(database_url=sqlite_url, pick_delay_s=0, pack_delay_s=0, default_stock=10, max_units_per_package=4)
    )
    shop_id = save_token(context, SHOP, "token")
    with context.db.transaction() as session:
        from fulfillment.models import Shop

        session.get(Shop, shop_id).location_id = LOCATION
    yield context
    context.db.dispose()


def record_id(ctx) -> int:
    (due,) = sweep.sweep_shop(ctx, 1).due
    return due.record_id


def run_until_done(ctx, rid: int, limit: int = 10) -> None:
    for _ in range(limit):
        if step.advance(ctx, rid).done:
            return
    raise AssertionError("no end")


def load(ctx, rid: int) -> FulfillmentOrder:
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, rid)
        _ = [p.state for p in record.packages], [c.to_state for c in record.state_changes]
        return record


def packed(ctx, rid: int, monkeypatch) -> None:
    """Accept, pick and pack, and stop before anything ships: the packing step's re-read finds the store away."""
    step.advance(ctx, rid)
    step.advance(ctx, rid)

    def away(*_args, **_kwargs):
        raise StoreUnavailable("timed out", maybe_applied=False)

    with monkeypatch.context() as patched:
        patched.setattr(ops, "fulfillment_order_status", away)
        with pytest.raises(StoreUnavailable):
            step.advance(ctx, rid)
    assert load(ctx, rid).state == State.PACKED


def test_happy_path_accepts_once_and_ships_once(ctx, store):
    rid = record_id(ctx)
    run_until_done(ctx, rid)
    assert store.calls == ["accept", "fulfillmentCreate"]
    assert load(ctx, rid).state == State.SHIPPED


def test_lost_answer_to_fulfillment_create_is_looked_up_not_repeated(ctx, store):
    rid = record_id(ctx)
    for _ in range(2):  # accept, pick
        step.advance(ctx, rid)
    store.lose_next_answer = True
    with pytest.raises(StoreUnavailable):
        step.advance(ctx, rid)  # packed, re-read, shipped: the answer is lost
    assert [p.state for p in load(ctx, rid).packages] == ["shipping"]

    run_until_done(ctx, rid)  # the retry finds our tracking number on the store
    assert store.calls.count("fulfillmentCreate") == 1
    record = load(ctx, rid)
    assert record.state == State.SHIPPED
    assert [p.store_fulfillment_id for p in record.packages] == ["gid://shopify/Fulfillment/1"]


def test_crash_after_marking_shipping_but_before_asking_ships_exactly_once(ctx, store, monkeypatch):
    rid = record_id(ctx)
    packed(ctx, rid, monkeypatch)
    with ctx.db.transaction() as session:  # as a worker killed right after committing its intent
        session.get(FulfillmentOrder, rid).packages[0].state = "shipping"
    run_until_done(ctx, rid)
    assert store.calls.count("fulfillmentCreate") == 1
    assert load(ctx, rid).state == State.SHIPPED


def test_a_fulfillment_the_merchant_cancelled_is_not_taken_for_our_package_having_shipped(ctx, store, monkeypatch):
    rid = record_id(ctx)
    packed(ctx, rid, monkeypatch)
    with ctx.db.transaction() as session:  # as a worker killed right after committing its intent
        package = session.get(FulfillmentOrder, rid).packages[0]
        package.state = "shipping"
        number = package.tracking_number
    # The store holds a fulfillment with our tracking number, cancelled by the merchant: nothing of it stands.
    cancelled = ops.Fulfillment("gid://shopify/Fulfillment/99", "#1001.1", "CANCELLED", (ops.TrackingInfo(number),), ())
    store.fulfillments.append(cancelled)
    run_until_done(ctx, rid)
    with ctx.db.transaction() as session:
        (package,) = session.get(FulfillmentOrder, rid).packages
        assert package.store_fulfillment_id != cancelled.id
    assert store.calls.count("fulfillmentCreate") == 1


def test_lost_answer_to_accept_is_read_back_from_the_store(ctx, store):
    rid = record_id(ctx)
    store.lose_next_answer = True
    with pytest.raises(StoreUnavailable):
        step.advance(ctx, rid)
    assert load(ctx, rid).state == State.REQUESTED
    step.advance(ctx, rid)
    assert store.calls == ["accept"]  # not accepted twice
    assert load(ctx, rid).state in (State.ACCEPTED, State.PICKED)


def test_hold_before_shipping_stops_and_release_resumes(ctx, store, monkeypatch):
    rid = record_id(ctx)
    packed(ctx, rid, monkeypatch)
    store.holds = ("AWAITING_PAYMENT",)
    store.status = "ON_HOLD"
    assert step.advance(ctx, rid).done
    assert load(ctx, rid).state == State.ON_HOLD
    assert "fulfillmentCreate" not in store.calls

    store.holds, store.status = (), "IN_PROGRESS"
    run_until_done(ctx, rid)
    assert load(ctx, rid).state == State.SHIPPED
    assert store.calls.count("fulfillmentCreate") == 1


def test_moved_away_before_shipping_releases_stock(ctx, store, monkeypatch):
    rid = record_id(ctx)
    packed(ctx, rid, monkeypatch)
    store.location = "gid://shopify/Location/elsewhere"
    assert step.advance(ctx, rid).done
    assert load(ctx, rid).state == State.MOVED
    assert "fulfillmentCreate" not in store.calls
    with ctx.db.transaction() as session:
        assert ctx.warehouse(session).available(load(ctx, rid).shop_id, ["SKU-1"]) == {"SKU-1": 10}


def test_closed_with_a_fulfillment_not_ours_is_fulfilled_elsewhere(ctx, store):
    rid = record_id(ctx)
    step.advance(ctx, rid)  # accepted
    store.fulfillments.append(
        ops.Fulfillment(
            "gid://shopify/Fulfillment/99", "#1001.1", "SUCCESS", (ops.TrackingInfo("BY-HAND", "Posten", None),), ()
        )
    )
    store.status, store.remaining = "CLOSED", 0
    run_until_done(ctx, rid)
    record = load(ctx, rid)
    assert record.state == State.FULFILLED_ELSEWHERE
    assert "fulfillmentCreate" not in store.calls
    assert "#1001.1" in record.state_changes[-1].detail


def test_a_second_package_is_not_created_for_a_package_already_shipped(ctx, store):
    store.quantity = store.remaining = 6  # two parcels of at most 4
    rid = record_id(ctx)
    run_until_done(ctx, rid)
    with ctx.db.transaction() as session:
        packages = session.get(FulfillmentOrder, rid).packages
        assert [sum(i.quantity for i in p.items) for p in packages] == [4, 2]
        assert all(isinstance(p, Package) and p.state == "shipped" for p in packages)
    assert store.calls.count("fulfillmentCreate") == 2
    numbers = [f.tracking[0].number for f in store.fulfillments]
    assert len(set(numbers)) == 2


def test_lost_answer_to_accepting_a_cancellation_is_read_back_as_cancelled(ctx, store, monkeypatch):
    def accept_cancellation(_client, _id, **_kw):
        store.calls.append("acceptCancellation")
        store.status, store.request_status = "CLOSED", "CANCELLATION_ACCEPTED"
        raise StoreUnavailable("502 after applying", maybe_applied=True)

    monkeypatch.setattr(ops, "accept_cancellation_request", accept_cancellation)
    rid = record_id(ctx)
    step.advance(ctx, rid)  # accepted
    store.request_status = "CANCELLATION_REQUESTED"  # the sweep sees it and starts a chain
    with pytest.raises(StoreUnavailable):
        step.advance(ctx, rid, Cause.POLL)
    assert load(ctx, rid).state == State.ACCEPTED  # the step's changes went with its transaction

    assert step.advance(ctx, rid, Cause.POLL).done  # the same step, tried again
    record = load(ctx, rid)
    assert record.state == State.CANCELLED
    assert [c.to_state for c in record.state_changes][-2:] == [State.CANCELLATION_REQUESTED, State.CANCELLED]
    assert store.calls.count("acceptCancellation") == 1
    with ctx.db.transaction() as session:
        assert ctx.warehouse(session).available(load(ctx, rid).shop_id, ["SKU-1"]) == {"SKU-1": 10}


def counting(monkeypatch, name: str) -> list[str]:
    """Count the calls to one typed store operation, still answered by the fake."""
    calls: list[str] = []
    real = getattr(ops, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops, name, counted)
    return calls


def test_a_sweep_lists_new_requests_with_their_details_and_the_first_step_rereads_one_point_before_accepting(
    ctx, store, monkeypatch
):
    full_reads = counting(monkeypatch, "fulfillment_order")
    reads_to_decide = counting(monkeypatch, "fulfillment_order_to_decide")
    state_reads = counting(monkeypatch, "fulfillment_order_state")
    status_reads = counting(monkeypatch, "fulfillment_order_status")
    rid = record_id(ctx)
    assert full_reads == reads_to_decide == state_reads == status_reads == []
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, rid)
        assert record.state == State.REQUESTED
        assert [(li.sku, li.total_quantity) for li in record.line_items] == [("SKU-1", 2)]

    step.advance(ctx, rid)
    assert store.calls == ["accept"]
    assert (len(status_reads), len(reads_to_decide), len(full_reads), len(state_reads)) == (1, 0, 0, 0)
    assert load(ctx, rid).state == State.ACCEPTED


def test_a_request_changed_since_the_sweep_listed_it_is_read_again_before_deciding(ctx, store, monkeypatch):
    reads_to_decide = counting(monkeypatch, "fulfillment_order_to_decide")
    rid = record_id(ctx)
    # Withdrawn and submitted again for fewer units between the sweep and the step: same statuses, newer time.
    store.updated_at, store.remaining, store.quantity = datetime(2026, 7, 1, 12, 5, tzinfo=UTC), 1, 1
    step.advance(ctx, rid)
    assert len(reads_to_decide) == 1
    assert store.calls == ["accept"]
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, rid)
        assert [(li.sku, li.remaining_quantity) for li in record.line_items] == [("SKU-1", 1)]


def test_a_request_that_left_our_hands_is_read_in_full(ctx, store, monkeypatch):
    state_reads = counting(monkeypatch, "fulfillment_order_state")
    rid = record_id(ctx)
    step.advance(ctx, rid)  # accepted
    assert state_reads == []
    store.status, store.request_status, store.location = "OPEN", "UNSUBMITTED", "gid://shopify/Location/77"
    assert step.advance(ctx, rid, Cause.POLL).done  # the sweep saw it change
    assert len(state_reads) == 1
    assert load(ctx, rid).state == State.MOVED


def test_a_withdrawn_request_is_never_accepted_even_when_the_sweep_saw_it_submitted(ctx, store):
    rid = record_id(ctx)
    store.status, store.request_status = "CLOSED", "SUBMITTED"  # withdrawn between the sweep and the step
    assert step.advance(ctx, rid).done
    assert store.calls == []
    assert load(ctx, rid).state == State.WITHDRAWN


def test_after_accepting_the_next_sweep_sees_nothing_new(ctx, store):
    rid = record_id(ctx)
    step.advance(ctx, rid)
    assert sweep.sweep_shop(ctx, 1).due == []  # the store's answer to the accept is what we recorded


def test_an_accept_answered_with_the_status_from_before_is_not_taken_for_a_change(ctx, store, monkeypatch):
    # The store's payload may show the statuses from before the change (recorded for a cancellation request). The
    # app keeps what an accepted request becomes, so the next sweep finds nothing new to look at.
    class StaleAnswer:
        def execute(self, document, variables=None, **_kw):
            store.calls.append("accept")
            store.status, store.request_status = "IN_PROGRESS", "ACCEPTED"
            node = {
                "id": FO_ID,
                "status": "OPEN",
                "requestStatus": "SUBMITTED",
                "assignedLocation": {"location": {"id": LOCATION}},
                "fulfillmentHolds": [],
            }
            return {"fulfillmentOrderAcceptFulfillmentRequest": {"fulfillmentOrder": node, "userErrors": []}}

    monkeypatch.setattr(ops, "accept_fulfillment_request", lambda _c, id, **kw: REAL_ACCEPT(StaleAnswer(), id, **kw))
    rid = record_id(ctx)
    step.advance(ctx, rid)
    record = load(ctx, rid)
    assert store.calls == ["accept"]
    assert (record.state, record.store_status, record.store_request_status) == (
        State.ACCEPTED,
        "IN_PROGRESS",
        "ACCEPTED",
    )
    assert sweep.sweep_shop(ctx, 1).due == []


def test_a_shipment_the_budget_deferred_goes_back_on_the_dock_with_nothing_to_look_up(ctx, store, monkeypatch):
    from fulfillment.store.errors import Throttled

    rid = record_id(ctx)
    packed(ctx, rid, monkeypatch)
    real_create = ops.create_fulfillment

    def deferred(*_args, **_kwargs):
        raise Throttled(retry_after=2.0)  # the budget would not wait that long: nothing was sent

    monkeypatch.setattr(ops, "create_fulfillment", deferred)
    with pytest.raises(Throttled):
        step.advance(ctx, rid)
    assert [p.state for p in load(ctx, rid).packages] == ["packed"]

    monkeypatch.setattr(ops, "create_fulfillment", real_create)
    full_reads = counting(monkeypatch, "fulfillment_order")
    run_until_done(ctx, rid)
    assert full_reads == []  # no lost answer to look for
    assert store.calls.count("fulfillmentCreate") == 1
    assert load(ctx, rid).state == State.SHIPPED


def test_picking_asks_the_store_nothing_and_packing_rereads_moments_before_shipping(ctx, store, monkeypatch):
    rid = record_id(ctx)
    step.advance(ctx, rid, Cause.POLL)  # accepted
    full_reads = counting(monkeypatch, "fulfillment_order")
    state_reads = counting(monkeypatch, "fulfillment_order_status")
    step.advance(ctx, rid)  # picked
    assert load(ctx, rid).state == State.PICKED
    assert full_reads == [] and state_reads == []
    step.advance(ctx, rid)  # packed, re-read, shipped
    assert state_reads == ["fulfillment_order_status"]  # the re-read before the irreversible step
    assert full_reads == []
    assert store.calls == ["accept", "fulfillmentCreate"]
    assert load(ctx, rid).state == State.SHIPPED


def test_the_packing_is_written_with_the_package_marked_shipping_and_nothing_is_written_during_the_reread(
    ctx, store, monkeypatch
):
    from sqlalchemy import event

    rid = record_id(ctx)
    step.advance(ctx, rid)  # accepted
    step.advance(ctx, rid)  # picked
    written: list[str] = []
    listener = lambda _conn, _cursor, sql, *_args: written.append(sql.split()[0])  # noqa: E731
    commits = []
    real_status = ops.fulfillment_order_status

    def status(client, id):
        commits.append(list(written))
        return real_status(client, id)

    def on_commit(_conn):
        written.append("COMMIT")

    monkeypatch.setattr(ops, "fulfillment_order_status", status)
    event.listen(ctx.db.engine, "before_cursor_execute", listener)
    event.listen(ctx.db.engine, "commit", on_commit)
    try:
        step.advance(ctx, rid)  # packed, re-read, shipped
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", listener)
        event.remove(ctx.db.engine, "commit", on_commit)
    (before_reread,) = commits
    assert "INSERT" not in before_reread and "COMMIT" not in before_reread  # the packing waits for the re-read
    assert written.count("COMMIT") == 2  # packed and marked shipping; shipped
    record = load(ctx, rid)
    assert record.state == State.SHIPPED and [p.state for p in record.packages] == ["shipped"]


def test_a_package_packed_while_the_store_was_away_is_shipped_by_the_next_step_after_its_reread(
    ctx, store, monkeypatch
):
    rid = record_id(ctx)
    packed(ctx, rid, monkeypatch)  # the packing stood though its re-read failed
    state_reads = counting(monkeypatch, "fulfillment_order_status")
    run_until_done(ctx, rid)
    assert state_reads == ["fulfillment_order_status"]
    assert store.calls == ["accept", "fulfillmentCreate"]
    assert load(ctx, rid).state == State.SHIPPED


def test_a_step_the_store_prompted_rereads_even_inside_the_warehouse(ctx, store, monkeypatch):
    answered = []

    def accept_cancellation(_client, _id, **_kw):
        answered.append("acceptCancellation")
        store.status, store.request_status = "CLOSED", "CANCELLATION_ACCEPTED"
        return store.state(None, FO_ID)

    monkeypatch.setattr(ops, "accept_cancellation_request", accept_cancellation)
    rid = record_id(ctx)
    step.advance(ctx, rid)  # accepted: picking is next
    store.request_status = "CANCELLATION_REQUESTED"  # the sweep saw the change and started a new chain
    assert step.advance(ctx, rid, Cause.POLL).done
    assert answered == ["acceptCancellation"]
    assert load(ctx, rid).state == State.CANCELLED


def test_a_delivery_event_the_store_refuses_ends_the_carrier_path(ctx, store, monkeypatch):
    from fulfillment import delivery
    from fulfillment.store.errors import UserError, UserErrors

    rid = record_id(ctx)
    run_until_done(ctx, rid)
    (package,) = load(ctx, rid).packages
    refused = UserErrors([UserError(("fulfillmentEvent", "fulfillmentId"), "Fulfillment does not exist.")])

    def gone(*_args, **_kw):
        raise refused

    monkeypatch.setattr(ops, "create_fulfillment_event", gone)
    assert delivery.post_delivery_event(ctx, package.id).done
    record = load(ctx, rid)
    assert "IN_TRANSIT refused" in record.state_changes[-1].detail
    assert record.packages[0].delivery_status is None  # nothing was posted
