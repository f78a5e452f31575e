"""Operator actions on a fulfillment order, with the store faked: re-read first, act only if still due, log it."""

import pytest
from sqlalchemy import select

from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import (
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    Package,
    PackageItem,
    Reservation,
    Shop,
)
from fulfillment.operator import actions, queries
from fulfillment.operator.actions import NotActionable
from fulfillment.operator.forms import InvalidInput
from fulfillment.states import State
from fulfillment.store import operations as ops

LOCATION = "gid://shopify/Location/7"
FO = "gid://shopify/FulfillmentOrder/1"
OPERATOR = "ada@warehouse.example"


class FakeStore:
    """What the store shows for the one fulfillment order, and every mutation the app sent it."""

    def __init__(self, status="OPEN", request_status="SUBMITTED"):
        self.status = status
        self.request_status = request_status
        self.gone = False
        self.calls: list[tuple[str, dict]] = []

    def state(self, _client, id):
        if self.gone:
            return None
        return ops.FulfillmentOrderState(id, self.status, self.request_status, LOCATION, (), ())

    def mutation(self, name, status, request_status):
        def call(_client, id, **kw):
            self.calls.append((name, {"id": id, **kw}))
            self.status, self.request_status = status, request_status
            return self.state(_client, id)

        return call


@pytest.fixture
def store(monkeypatch):
    fake = FakeStore()
    monkeypatch.setattr(ops, "fulfillment_order_state", fake.state)
    monkeypatch.setattr(ops, "fulfillment_order_status", fake.state)
    monkeypatch.setattr(ops, "fulfillment_order", lambda _client, _id: None)
    monkeypatch.setattr(ops, "accept_fulfillment_request", fake.mutation("accept", "IN_PROGRESS", "ACCEPTED"))
    monkeypatch.setattr(ops, "reject_fulfillment_request", fake.mutation("reject", "OPEN", "REJECTED"))
    monkeypatch.setattr(
        ops, "accept_cancellation_request", fake.mutation("accept_cancellation", "CLOSED", "CANCELLATION_ACCEPTED")
    )
    monkeypatch.setattr(
        ops,
        "reject_cancellation_request",
        fake.mutation("reject_cancellation", "IN_PROGRESS", "CANCELLATION_REJECTED"),
    )
    return fake


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url, handling_days=2))
    yield context
    context.db.dispose()


def make_record(ctx, state=State.REQUESTED, stock=10, settings=None) -> int:
    with ctx.db.transaction() as session:
        shop = Shop(
            domain="a-shop.myshopify.com",
            settings=settings or {"review_requests": True},
            access_token_ciphertext=ctx.cipher.encrypt("shpat_test"),
            location_id=LOCATION,
        )
        record = FulfillmentOrder(
            shop=shop,
            store_id=FO,
            order_id="gid://shopify/Order/1",
            order_name="#1001",
            state=str(state),
            store_status="OPEN",
            store_request_status="SUBMITTED",
        )
        record.line_items = [
            FulfillmentOrderLineItem(
                store_id="gid://LI/1", line_item_id="gid://OLI/1", sku="MUG", total_quantity=3, remaining_quantity=3
            ),
            FulfillmentOrderLineItem(
                store_id="gid://LI/2", line_item_id="gid://OLI/2", sku="TEE", total_quantity=1, remaining_quantity=1
            ),
        ]
        session.add(record)
        session.flush()
        warehouse = ctx.warehouse(session)
        warehouse.set_stock(record.shop_id, "MUG", stock)
        warehouse.set_stock(record.shop_id, "TEE", stock)
        if state != State.REQUESTED:
            warehouse.reserve(record)
        return record.id


def load(ctx, record_id) -> FulfillmentOrder:
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        _ = [record.line_items, record.state_changes, [p.items for p in record.packages]]
        return record


def reservations(ctx) -> dict[str, tuple[int, str]]:
    with ctx.db.transaction() as session:
        return {r.sku: (r.quantity, r.state) for r in session.scalars(select(Reservation))}


def operator_log(record) -> list[tuple[str, str, str]]:
    return [(c.to_state, c.cause, c.detail) for c in record.state_changes if c.cause == "operator"]


# --- accept -------------------------------------------------------------------------------------------------


def test_accept_bypasses_the_policy_reserves_stock_and_is_logged_as_the_operators(ctx, store):
    record_id = make_record(ctx, settings={"review_requests": True, "blocked_countries": ["NO"]})
    done = actions.accept(ctx, record_id, OPERATOR)

    ((name, call),) = store.calls
    assert name == "accept" and call["id"] == FO
    assert "expected to ship by" in call["message"] and call["estimated_shipped_at"] is not None
    record = load(ctx, record_id)
    assert record.state == State.ACCEPTED and record.store_status == "IN_PROGRESS"
    assert reservations(ctx) == {"MUG": (3, "held"), "TEE": (1, "held")}
    ((to_state, cause, detail),) = operator_log(record)
    assert (to_state, cause) == ("accepted", "operator") and f"[operator {OPERATOR}]" in detail
    assert not done.needs_worker  # an operator who accepts packs by hand


def test_accept_refuses_when_the_stock_is_not_there(ctx, store):
    record_id = make_record(ctx, stock=2)
    with pytest.raises(NotActionable, match="not enough stock.*MUG short by 1"):
        actions.accept(ctx, record_id, OPERATOR)
    assert store.calls == []
    assert load(ctx, record_id).state == State.REQUESTED
    assert reservations(ctx) == {}


def test_accept_of_a_request_the_merchant_withdrew_records_the_withdrawal_and_refuses(ctx, store):
    record_id = make_record(ctx)
    store.gone = True
    with pytest.raises(NotActionable, match="withdrawn"):
        actions.accept(ctx, record_id, OPERATOR)
    assert store.calls == []
    record = load(ctx, record_id)
    assert record.state == State.WITHDRAWN  # what the re-read showed is kept though the action was refused
    assert record.state_changes[-1].cause == "operator"


def test_accept_of_a_request_already_answered_on_the_store_is_refused(ctx, store):
    record_id = make_record(ctx)
    store.status, store.request_status = "OPEN", "REJECTED"
    with pytest.raises(NotActionable, match="rejected"):
        actions.accept(ctx, record_id, OPERATOR)
    assert store.calls == []


# --- reject -------------------------------------------------------------------------------------------------


def test_reject_sends_the_reason_the_message_and_the_line_item_messages(ctx, store):
    record_id = make_record(ctx)
    actions.reject(
        ctx,
        record_id,
        "INELIGIBLE_PRODUCT",
        "We cannot ship mugs.",
        [("gid://LI/1", "Fragile"), ("gid://LI/2", "")],
        OPERATOR,
    )
    ((name, call),) = store.calls
    assert name == "reject"
    assert call["reason"] == "INELIGIBLE_PRODUCT" and call["message"] == "We cannot ship mugs."
    assert list(call["line_items"]) == [("gid://LI/1", "Fragile")]
    record = load(ctx, record_id)
    assert record.state == State.REJECTED and record.store_request_status == "REJECTED"
    ((_, cause, detail),) = operator_log(record)
    assert cause == "operator" and "INELIGIBLE_PRODUCT: We cannot ship mugs." in detail and OPERATOR in detail


def test_reject_refuses_a_line_item_of_another_fulfillment_order(ctx, store):
    record_id = make_record(ctx)
    with pytest.raises(InvalidInput, match="not on this fulfillment order"):
        actions.reject(ctx, record_id, "OTHER", "No.", [("gid://LI/999", "?")], OPERATOR)
    assert store.calls == []
    assert load(ctx, record_id).state == State.REQUESTED


# --- pack ---------------------------------------------------------------------------------------------------


def accepted_record(ctx, store) -> tuple[int, dict[str, int]]:
    record_id = make_record(ctx, state=State.ACCEPTED)
    store.status, store.request_status = "IN_PROGRESS", "ACCEPTED"
    lines = {line.sku: line.id for line in load(ctx, record_id).line_items}
    return record_id, lines


def test_pack_makes_the_operators_packages_and_leaves_shipping_to_the_worker(ctx, store):
    record_id, lines = accepted_record(ctx, store)
    done = actions.pack(
        ctx,
        record_id,
        [[(lines["MUG"], 2)], [(lines["MUG"], 1), (lines["TEE"], 1)]],
        "PostNord",
        ["PN1", "PN2"],
        OPERATOR,
    )
    assert done.needs_worker and store.calls == []
    record = load(ctx, record_id)
    assert record.state == State.PACKED
    assert [(p.sequence, p.tracking_number, p.carrier, p.state) for p in record.packages] == [
        (1, "PN1", "PostNord", "packed"),
        (2, "PN2", "PostNord", "packed"),
    ]
    assert [[(i.line_item_id, i.quantity) for i in p.items] for p in record.packages] == [
        [(lines["MUG"], 2)],
        [(lines["MUG"], 1), (lines["TEE"], 1)],
    ]
    assert [(to, cause) for to, cause, _ in operator_log(record)] == [("picked", "operator"), ("packed", "operator")]


def test_pack_refuses_tracking_numbers_used_by_another_package(ctx, store):
    record_id, lines = accepted_record(ctx, store)
    with ctx.db.transaction() as session:
        other = FulfillmentOrder(shop_id=1, store_id="gid://other", order_id="o", state="shipped")
        line = FulfillmentOrderLineItem(
            store_id="x", line_item_id="y", sku="MUG", total_quantity=1, remaining_quantity=0
        )
        other.line_items = [line]
        other.packages = [
            Package(sequence=1, tracking_number="PN1", carrier="DHL", items=[PackageItem(line_item=line, quantity=1)])
        ]
        session.add(other)
    with pytest.raises(InvalidInput, match="PN1 is on another package"):
        actions.pack(ctx, record_id, [[(lines["MUG"], 3), (lines["TEE"], 1)]], "DHL", ["PN1"], OPERATOR)
    assert load(ctx, record_id).state == State.ACCEPTED


def test_pack_of_a_request_not_yet_accepted_is_refused(ctx, store):
    record_id = make_record(ctx)
    lines = {line.sku: line.id for line in load(ctx, record_id).line_items}
    with pytest.raises(NotActionable, match="cannot pack: the fulfillment order is requested"):
        actions.pack(ctx, record_id, [[(lines["MUG"], 3), (lines["TEE"], 1)]], "DHL", ["T1"], OPERATOR)


# --- cancellation requests ----------------------------------------------------------------------------------


def cancellation_requested(ctx, store) -> int:
    record_id = make_record(ctx, state=State.ACCEPTED, settings={"review_cancellations": True})
    store.status, store.request_status = "IN_PROGRESS", "CANCELLATION_REQUESTED"
    return record_id


def test_a_cancellation_request_is_noticed_then_accepted_and_the_stock_released(ctx, store):
    record_id = cancellation_requested(ctx, store)
    done = actions.answer_cancellation(ctx, record_id, True, "", OPERATOR)
    ((name, call),) = store.calls
    assert name == "accept_cancellation" and "nothing had left" in call["message"]
    record = load(ctx, record_id)
    assert record.state == State.CANCELLED and not done.needs_worker
    assert [c.to_state for c in record.state_changes][-2:] == ["cancellation_requested", "cancelled"]
    assert reservations(ctx) == {"MUG": (3, "released"), "TEE": (1, "released")}


def test_a_refused_cancellation_needs_a_message_and_work_resumes(ctx, store):
    record_id = cancellation_requested(ctx, store)
    with pytest.raises(InvalidInput):
        actions.answer_cancellation(ctx, record_id, False, " ", OPERATOR)
    done = actions.answer_cancellation(ctx, record_id, False, "Already on the truck.", OPERATOR)
    ((name, call),) = store.calls
    assert name == "reject_cancellation" and call["message"] == "Already on the truck."
    assert load(ctx, record_id).state == State.ACCEPTED and done.needs_worker


def test_a_cancellation_cannot_be_accepted_once_a_package_shipped(ctx, store):
    record_id = cancellation_requested(ctx, store)
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        line = record.line_items[0]
        record.packages = [
            Package(
                sequence=1,
                tracking_number="PN9",
                carrier="DHL",
                state="shipped",
                items=[PackageItem(line_item=line, quantity=1)],
            )
        ]
    with pytest.raises(NotActionable, match="already shipped \\(PN9\\)"):
        actions.answer_cancellation(ctx, record_id, True, "", OPERATOR)
    assert store.calls == []


# --- reading for the dashboard ------------------------------------------------------------------------------


def test_the_order_view_offers_the_forms_that_apply(ctx, store):
    record_id = make_record(ctx)
    view = queries.fulfillment_order(ctx, record_id)
    assert view.actions == {"accept", "reject"}
    assert [(line.sku, line.remaining, line.available) for line in view.lines] == [("MUG", 3, 10), ("TEE", 1, 10)]
    actions.accept(ctx, record_id, OPERATOR)
    assert queries.fulfillment_order(ctx, record_id).actions == {"pack"}


def test_the_queue_filters_by_view_and_counts_by_state(ctx, store):
    record_id = make_record(ctx)
    assert [row.id for row in queries.queue(ctx, queries.QueueFilter("attention")).rows] == [record_id]
    assert queries.queue(ctx, queries.QueueFilter("shipped")).rows == []
    queue = queries.queue(ctx, queries.QueueFilter("all", shop_id=load(ctx, record_id).shop_id))
    assert queue.counts == {"requested": 1} and queue.rows[0].units == 4


def test_update_settings_saves_what_the_form_says(ctx, store):
    record_id = make_record(ctx)
    shop_id = load(ctx, record_id).shop_id
    saved = actions.update_settings(ctx, shop_id, {"handling_days": "3", "blocked_countries": "ru"})
    assert saved == {"review_requests": True, "handling_days": 3.0, "blocked_countries": ["RU"]}
    assert queries.shop(ctx, shop_id).settings == saved
    with pytest.raises(LookupError):
        actions.update_settings(ctx, 999, {})
