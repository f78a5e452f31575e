"""The fulfillment-order state machine: the one transition table, and the log written with every change."""

import pytest
from sqlalchemy import select

from fulfillment.db import Database
from fulfillment.models import FulfillmentOrder, Shop, StateChange
from fulfillment.states import (
    FINAL,
    TRANSITIONS,
    Cause,
    InvalidTransition,
    State,
    can_transition,
    is_final,
    record_event,
    transition,
)


@pytest.fixture
def db(sqlite_url):
    database = Database(sqlite_url)
    yield database
    database.dispose()


@pytest.fixture
def shop_id(db):
    with db.transaction() as session:
        shop = Shop(domain="a-shop.myshopify.com", settings={})
        session.add(shop)
        session.flush()
        return shop.id


def new_record(shop_id: int, store_id: str = "gid://shopify/FulfillmentOrder/1", state=None) -> FulfillmentOrder:
    return FulfillmentOrder(
        shop_id=shop_id,
        store_id=store_id,
        order_id="gid://shopify/Order/1",
        state=None if state is None else str(state),
    )


def saved_record(db: Database, shop_id: int, state: State) -> int:
    with db.transaction() as session:
        record = new_record(shop_id, state=state)
        session.add(record)
        session.flush()
        return record.id


# The table


def test_every_state_has_a_row_in_the_table():
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize("final", sorted(FINAL))
def test_final_state_has_no_way_out(final):
    assert TRANSITIONS[final] == frozenset()
    assert is_final(final)
    assert not any(can_transition(final, target) for target in State)


@pytest.mark.parametrize("state", sorted(set(State) - FINAL))
def test_working_state_is_not_final_and_can_still_end(state):
    assert not is_final(state)
    assert TRANSITIONS[state] & FINAL, f"{state} can never reach a final state"


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.REQUESTED, State.ACCEPTED),
        (State.REQUESTED, State.REJECTED),
        (State.REQUESTED, State.WITHDRAWN),
        (State.ACCEPTED, State.PICKED),
        (State.PICKED, State.PACKED),
        (State.PACKED, State.PARTIALLY_SHIPPED),
        (State.PACKED, State.SHIPPED),
        (State.PARTIALLY_SHIPPED, State.SHIPPED),
        (State.ACCEPTED, State.CANCELLATION_REQUESTED),
        (State.CANCELLATION_REQUESTED, State.CANCELLED),
        (State.CANCELLATION_REQUESTED, State.PACKED),  # cancellation refused: work resumes
        (State.ACCEPTED, State.ON_HOLD),
        (State.ON_HOLD, State.ACCEPTED),
        (State.ON_HOLD, State.REQUESTED),
        (State.PACKED, State.MOVED),
        (State.ACCEPTED, State.CLOSED),
    ],
)
def test_allowed_transition(current, target):
    assert can_transition(current, target)
    assert can_transition(str(current), str(target))


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.REQUESTED, State.SHIPPED),
        (State.REQUESTED, State.PICKED),
        (State.REQUESTED, State.CANCELLED),  # cancelling goes through a cancellation request
        (State.ACCEPTED, State.PACKED),  # no packing without picking
        (State.ACCEPTED, State.REJECTED),  # accepted requests cannot be rejected any more
        (State.ACCEPTED, State.REQUESTED),
        (State.PICKED, State.ACCEPTED),
        (State.PARTIALLY_SHIPPED, State.PACKED),
        (State.ON_HOLD, State.SHIPPED),
        (State.ON_HOLD, State.CANCELLED),
        (State.REQUESTED, State.REQUESTED),
        (State.SHIPPED, State.CANCELLED),
        (State.CANCELLED, State.ACCEPTED),
        (State.REJECTED, State.ACCEPTED),
    ],
)
def test_forbidden_transition(current, target):
    assert not can_transition(current, target)


def test_a_new_record_starts_requested_or_already_accepted_and_nowhere_else():
    allowed = {target for target in State if can_transition(None, target)}
    assert allowed == {State.REQUESTED, State.ACCEPTED}


# transition() and the log


def test_transition_moves_the_record_and_appends_a_state_change_in_the_same_session(db, shop_id):
    record_id = saved_record(db, shop_id, State.REQUESTED)
    with db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        change = transition(session, record, State.ACCEPTED, cause=Cause.CALLBACK, detail="in stock")

        assert record.state == "accepted"
        assert change in session.new
        assert record.state_changes[-1] is change
        assert (change.from_state, change.to_state, change.cause, change.detail) == (
            "requested",
            "accepted",
            "callback",
            "in stock",
        )

    with db.transaction() as session:
        rows = session.scalars(select(StateChange).where(StateChange.fulfillment_order_id == record_id)).all()
        assert [(r.from_state, r.to_state, r.cause, r.detail) for r in rows] == [
            ("requested", "accepted", "callback", "in stock")
        ]
        assert session.get(FulfillmentOrder, record_id).state == "accepted"


def test_first_transition_of_a_new_record_logs_no_previous_state(db, shop_id):
    with db.transaction() as session:
        record = new_record(shop_id)
        session.add(record)
        change = transition(session, record, State.REQUESTED, cause=Cause.POLL)
    assert change.from_state is None
    assert change.to_state == "requested"
    assert change.cause == "poll"


def test_forbidden_transition_raises_and_changes_nothing(db, shop_id):
    record_id = saved_record(db, shop_id, State.REQUESTED)
    with db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        with pytest.raises(InvalidTransition) as raised:
            transition(session, record, State.SHIPPED, cause=Cause.WORKER)

        assert (raised.value.current, raised.value.target) == ("requested", State.SHIPPED)
        assert "requested" in str(raised.value) and "shipped" in str(raised.value)
        assert record.state == "requested"
        assert record.state_changes == []
        assert not any(isinstance(obj, StateChange) for obj in session.new)

    with db.transaction() as session:
        assert session.scalars(select(StateChange)).all() == []
        assert session.get(FulfillmentOrder, record_id).state == "requested"


def test_final_record_refuses_every_transition(db, shop_id):
    record_id = saved_record(db, shop_id, State.SHIPPED)
    with db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        for target in State:
            with pytest.raises(InvalidTransition):
                transition(session, record, target, cause=Cause.OPERATOR)
        assert record.state == "shipped"
        assert record.state_changes == []


def test_state_and_log_roll_back_together(db, shop_id):
    record_id = saved_record(db, shop_id, State.REQUESTED)
    with pytest.raises(RuntimeError), db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        transition(session, record, State.ACCEPTED, cause=Cause.CALLBACK)
        session.flush()
        raise RuntimeError("the store call failed")

    with db.transaction() as session:
        assert session.get(FulfillmentOrder, record_id).state == "requested"
        assert session.scalars(select(StateChange)).all() == []


def test_long_detail_is_cut_to_fit_the_log(db, shop_id):
    record_id = saved_record(db, shop_id, State.REQUESTED)
    with db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        change = transition(session, record, State.REJECTED, cause=Cause.WORKER, detail="x" * 5000)
    assert len(change.detail) == 2000


def test_record_event_logs_without_changing_state(db, shop_id):
    record_id = saved_record(db, shop_id, State.PACKED)
    with db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        change = record_event(session, record, cause=Cause.OPERATOR, detail="cancellation refused: already packed")
        assert change in session.new
        assert record.state == "packed"

    with db.transaction() as session:
        rows = session.scalars(select(StateChange)).all()
        assert [(r.from_state, r.to_state, r.cause, r.detail) for r in rows] == [
            ("packed", "packed", "operator", "cancellation refused: already packed")
        ]


def test_log_survives_a_commit_in_order_with_causes(db, shop_id):
    with db.transaction() as session:
        record = new_record(shop_id)
        session.add(record)
        transition(session, record, State.REQUESTED, cause=Cause.CALLBACK, detail="fulfillment request received")
        transition(session, record, State.ACCEPTED, cause=Cause.WORKER, detail="accepted")
        record_event(session, record, cause=Cause.POLL, detail="reread")
        transition(session, record, State.PICKED, cause=Cause.WORKER)
        session.flush()
        record_id = record.id

    with db.transaction() as session:
        record = session.get(FulfillmentOrder, record_id)
        assert record.state == "picked"
        assert [(c.from_state, c.to_state, c.cause) for c in record.state_changes] == [
            (None, "requested", "callback"),
            ("requested", "accepted", "worker"),
            ("accepted", "accepted", "poll"),
            ("accepted", "picked", "worker"),
        ]
        assert all(c.at is not None for c in record.state_changes)
