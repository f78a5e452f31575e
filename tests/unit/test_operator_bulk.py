"""Bulk decisions from the queue, with the store faked per fulfillment order: each order its own step, one that
cannot be decided or fails is reported, and the rest go on."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from werkzeug.datastructures import MultiDict

from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, Shop
from fulfillment.operator import bulk, forms
from fulfillment.operator.actions import NotActionable
from fulfillment.operator.forms import InvalidInput
from fulfillment.states import State
from fulfillment.store import operations as ops
from fulfillment.store.errors import UserError, UserErrors

OPERATOR = "ada@warehouse.example"


class FakeStore:
    """Each fulfillment order's statuses on the store; `refuse` makes the store refuse a mutation on one."""

    def __init__(self):
        self.statuses: dict[str, tuple[str, str]] = {}
        self.refuse: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def state(self, _client, id):
        status, request_status = self.statuses[id]
        return ops.FulfillmentOrderState(id, status, request_status, None, (), ())

    def mutation(self, name, after):
        def call(_client, id, **kw):
            if id in self.refuse:
                raise UserErrors([UserError(("id",), "Fulfillment order is locked")], name)
            self.calls.append((name, id))
            self.statuses[id] = after
            return self.state(_client, id)

        return call


@pytest.fixture
def store(monkeypatch):
    fake = FakeStore()
    monkeypatch.setattr(ops, "fulfillment_order_state", fake.state)
    monkeypatch.setattr(ops, "fulfillment_order_status", fake.state)
    monkeypatch.setattr(ops, "fulfillment_order", lambda _client, _id: None)
    monkeypatch.setattr(ops, "accept_fulfillment_request", fake.mutation("accept", ("IN_PROGRESS", "ACCEPTED")))
    monkeypatch.setattr(ops, "reject_fulfillment_request", fake.mutation("reject", ("OPEN", "REJECTED")))
    return fake


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url))
    yield context
    context.db.dispose()


def requests_under_review(ctx, store, count: int, stock: int = 100) -> list[int]:
    ids = []
    with ctx.db.transaction() as session:
        shop = Shop(
            domain="a.myshopify.com",
            settings={"review_requests": True},
            access_token_ciphertext=ctx.cipher.encrypt("shpat_test"),
        )
        session.add(shop)
        session.flush()
        ctx.warehouse(session).set_stock(shop.id, "MUG", stock)
        for n in range(count):
            store_id = f"gid://shopify/FulfillmentOrder/{n}"
            record = FulfillmentOrder(
                shop_id=shop.id,
                store_id=store_id,
                order_id=f"gid://shopify/Order/{n}",
                order_name=f"#{1001 + n}",
                state=str(State.REQUESTED),
                store_status="OPEN",
                store_request_status="SUBMITTED",
            )
            record.line_items = [
                FulfillmentOrderLineItem(
                    store_id=f"gid://LI/{n}",
                    line_item_id=f"gid://OLI/{n}",
                    sku="MUG",
                    total_quantity=1,
                    remaining_quantity=1,
                )
            ]
            session.add(record)
            session.flush()
            store.statuses[store_id] = ("OPEN", "SUBMITTED")
            ids.append(record.id)
    return ids


def states(ctx, ids) -> list[str]:
    with ctx.db.transaction() as session:
        return [session.get(FulfillmentOrder, i).state for i in ids]


def test_one_order_refused_or_gone_is_reported_and_the_others_are_accepted(ctx, store):
    ids = requests_under_review(ctx, store, 5)
    store.refuse.add("gid://shopify/FulfillmentOrder/1")
    store.statuses["gid://shopify/FulfillmentOrder/3"] = ("CLOSED", "SUBMITTED")  # the merchant withdrew it
    outcomes = bulk.decide(ctx, "accept", [*ids, 99_999], OPERATOR)

    assert [(o.name, o.done) for o in outcomes] == [
        ("#1001", True),
        ("#1002", False),
        ("#1003", True),
        ("#1004", False),
        ("#1005", True),
        ("", False),
    ]
    assert "the store did not take it" in outcomes[1].message and "locked" in outcomes[1].message
    assert "withdrawn" in outcomes[3].message
    assert outcomes[5].message == "no such fulfillment order"
    assert states(ctx, ids) == ["accepted", "requested", "accepted", "withdrawn", "accepted"]
    assert [id for name, id in store.calls] == [f"gid://shopify/FulfillmentOrder/{n}" for n in (0, 2, 4)]


def test_not_enough_stock_stops_only_the_orders_it_cannot_cover(ctx, store):
    ids = requests_under_review(ctx, store, 3, stock=2)
    outcomes = bulk.decide(ctx, "accept", ids, OPERATOR)
    assert [o.done for o in outcomes] == [True, True, False]
    assert "not enough stock" in outcomes[2].message
    assert states(ctx, ids) == ["accepted", "accepted", "requested"]


def test_a_bulk_rejection_gives_each_order_the_reason_and_message(ctx, store):
    ids = requests_under_review(ctx, store, 3)
    outcomes = bulk.decide(ctx, "reject", ids, OPERATOR, reason="INELIGIBLE_PRODUCT", message="No ceramics.")
    assert all(o.done and o.message == "rejected (Ineligible product)" for o in outcomes)
    assert states(ctx, ids) == ["rejected"] * 3
    with ctx.db.transaction() as session:
        details = [session.get(FulfillmentOrder, i).state_changes[-1].detail for i in ids]
    assert all(d == f"INELIGIBLE_PRODUCT: No ceramics. [operator {OPERATOR}]" for d in details)


def test_a_busy_order_and_an_unexpected_failure_do_not_stop_the_rest(ctx, store):
    ids = requests_under_review(ctx, store, 3)

    @contextmanager
    def guard(record_id):
        if record_id == ids[0]:
            raise NotActionable("the worker is busy with it right now; try again in a moment")
        if record_id == ids[1]:
            raise RuntimeError("a bug")
        yield

    outcomes = bulk.decide(ctx, "accept", ids, OPERATOR, guard=guard)
    assert [(o.done, o.message) for o in outcomes] == [
        (False, "the worker is busy with it right now; try again in a moment"),
        (False, "failed; the error is in the log"),
        (True, "accepted; stock reserved: pack it from its page"),
    ]
    assert states(ctx, ids) == ["requested", "requested", "accepted"]


def test_the_bulk_form_gives_the_decision_ids_and_checked_rejection():
    form = MultiDict(
        [("decision", "accept"), ("fulfillment_order", "3"), ("fulfillment_order", "3"), ("fulfillment_order", "7")]
    )
    assert forms.bulk_decision(form) == ("accept", [3, 7], "", "")
    reject = MultiDict(
        [("decision", "reject"), ("fulfillment_order", "3"), ("reason", "OTHER"), ("message", " Sorry ")]
    )
    assert forms.bulk_decision(reject) == ("reject", [3], "OTHER", "Sorry")


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ([("decision", "accept")], "choose 1 to 100 fulfillment orders"),
        ([("fulfillment_order", "1")], "choose accept or reject"),
        ([("decision", "ship"), ("fulfillment_order", "1")], "decision: one of accept, reject"),
        ([("decision", "accept"), ("fulfillment_order", "x")], "a fulfillment order is named by its id"),
        ([("decision", "accept"), *[("fulfillment_order", str(n)) for n in range(1, 102)]], "choose 1 to 100"),
        ([("decision", "reject"), ("fulfillment_order", "1"), ("reason", "OTHER")], "say why in the message"),
        (
            [("decision", "reject"), ("fulfillment_order", "1"), ("reason", "NOPE"), ("message", "m")],
            "unknown rejection",
        ),
    ],
)
def test_a_bulk_form_that_does_not_pass_says_why(form, problem):
    with pytest.raises(InvalidInput) as exc:
        forms.bulk_decision(MultiDict(form))
    assert any(p.startswith(problem) for p in exc.value.problems), exc.value.problems
