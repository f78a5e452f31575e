"""When shops are swept and what each sweep lists: a ping's sweep lists only what waits on us, the schedule
spreads many shops over the interval, and an idle shop is swept at the slower safety pace."""

from collections import Counter
from dataclasses import replace

import pytest

from fulfillment import sweep
from fulfillment.models import FulfillmentOrder
from fulfillment.sweep import Scope
from tests.unit.test_workflow import FakeStore, ctx, store  # noqa: F401 - the fake store and its fixtures

TICK = 2.0


def listed_statuses(monkeypatch, fake: FakeStore) -> list[str]:
    asked: list[str] = []

    def summaries(client, assignment_status=None, **kw):
        asked.append(assignment_status)
        return fake.summaries(client, assignment_status=assignment_status, **kw)

    def requested(client, **kw):
        asked.append("FULFILLMENT_REQUESTED")
        return fake.requested(client, **kw)

    monkeypatch.setattr(sweep.ops, "iter_assigned_fulfillment_orders", summaries)
    monkeypatch.setattr(sweep.ops, "iter_requested_fulfillment_orders", requested)
    return asked


def test_a_requests_sweep_finding_the_new_request_lists_nothing_in_our_hands(ctx, store, monkeypatch):  # noqa: F811
    asked = listed_statuses(monkeypatch, store)
    found = sweep.sweep_shop(ctx, 1, scope=Scope.REQUESTS)
    assert len(found.due) == 1 and found.listed == 1
    assert asked == ["FULFILLMENT_REQUESTED", "CANCELLATION_REQUESTED"]


def test_a_requests_sweep_of_a_legacy_shop_finds_the_request_the_store_accepted_for_us(ctx, store, monkeypatch):  # noqa: F811
    store.status, store.request_status = "IN_PROGRESS", "ACCEPTED"  # the legacy store took it before pinging
    asked = listed_statuses(monkeypatch, store)
    (due,) = sweep.sweep_shop(ctx, 1, scope=Scope.REQUESTS).due
    assert asked == ["FULFILLMENT_REQUESTED", "CANCELLATION_REQUESTED", "FULFILLMENT_ACCEPTED"]
    with ctx.db.transaction() as session:
        assert session.get(FulfillmentOrder, due.record_id).state == "accepted"


def test_a_full_sweep_lists_everything_assigned_to_us(ctx, store, monkeypatch):  # noqa: F811
    asked = listed_statuses(monkeypatch, store)
    sweep.sweep_shop(ctx, 1)
    assert asked == list(sweep.SWEEP_ASSIGNMENT_STATUSES)


def test_an_idle_shops_safety_sweep_is_one_listing_when_nothing_is_new(ctx, store, monkeypatch):  # noqa: F811
    sweep.sweep_shop(ctx, 1, scope=Scope.IDLE)
    asked = listed_statuses(monkeypatch, store)
    sweep.sweep_shop(ctx, 1, scope=Scope.IDLE)
    assert asked == [None]


def test_an_idle_shops_safety_sweep_finding_a_request_lists_it_with_what_deciding_needs(ctx, store, monkeypatch):  # noqa: F811
    asked = listed_statuses(monkeypatch, store)
    (due,) = sweep.sweep_shop(ctx, 1, scope=Scope.IDLE).due
    # The bare row would leave the first step to read the whole fulfillment order (eleven points); the requests'
    # own listing brings its lines for about one.
    assert asked == [None, "FULFILLMENT_REQUESTED"]
    with ctx.db.transaction() as session:
        record = session.get(FulfillmentOrder, due.record_id)
        assert record.state == "requested" and record.line_items


def test_new_requests_are_recorded_a_page_at_once_and_one_another_worker_recorded_first_stands(
    ctx,  # noqa: F811
    store,  # noqa: F811
    monkeypatch,
):
    first = store.snapshot(None, None, fulfillments=False)
    others = [replace(first, id=f"gid://shopify/FulfillmentOrder/{n}") for n in (2, 3)]
    (theirs,) = sweep.sweep_shop(ctx, 1, scope=Scope.REQUESTS).due  # another worker's sweep recorded the first
    monkeypatch.setattr(sweep.ops, "iter_requested_fulfillment_orders", lambda _c, **_kw: iter([first, *others]))
    # Ours looked for records before theirs was committed: the page's savepoint fails on it, and each is recorded
    # on its own.
    monkeypatch.setattr(sweep, "_records", lambda *_args: {})
    due = sweep.sweep_shop(ctx, 1, scope=Scope.REQUESTS).due
    with ctx.db.transaction() as session:
        records = session.query(FulfillmentOrder).order_by(FulfillmentOrder.id).all()
        assert [r.store_id for r in records] == [first.id, *(o.id for o in others)]
        assert [d.record_id for d in due] == [r.id for r in records[1:]]
        assert records[0].id == theirs.record_id
        assert [len(r.line_items) for r in records] == [1, 1, 1]
        assert [[c.to_state for c in r.state_changes] for r in records] == [["requested"]] * 3


def test_a_page_of_new_requests_is_written_in_one_savepoint(ctx, store, monkeypatch):  # noqa: F811
    from sqlalchemy import event

    first = store.snapshot(None, None, fulfillments=False)
    page = [replace(first, id=f"gid://shopify/FulfillmentOrder/{n}") for n in range(1, 6)]
    monkeypatch.setattr(sweep.ops, "iter_requested_fulfillment_orders", lambda _c, **_kw: iter(page))
    statements: list[str] = []
    listener = lambda _conn, _cursor, sql, *_args: statements.append(sql)  # noqa: E731
    event.listen(ctx.db.engine, "before_cursor_execute", listener)
    try:
        due = sweep.sweep_shop(ctx, 1, scope=Scope.REQUESTS).due
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", listener)
    assert len(due) == 5
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) == 1


def test_webhooks_about_a_request_sweep_the_requests_others_the_whole_shop():
    assert sweep.scope_for_topic("fulfillment_orders/fulfillment_request_submitted") == Scope.REQUESTS
    assert sweep.scope_for_topic("fulfillment_orders/cancellation_request_submitted") == Scope.REQUESTS
    assert sweep.scope_for_topic("fulfillment_orders/moved") == Scope.FULL
    assert sweep.scope_for_topic("fulfillment_orders/placed_on_hold") == Scope.FULL


def run_schedule(shops, seconds: float, interval: float = 30.0, idle: float = 300.0) -> list[list]:
    """The sweeps each tick of `seconds` of schedule sends."""
    ticks = []
    now = 0.0
    while now < seconds:
        ticks.append(sweep.due_between(shops, now, now + TICK, interval, idle))
        now += TICK
    return ticks


def test_a_thousand_idle_shops_are_each_swept_once_per_safety_interval_spread_over_it():
    shops = [(shop_id, False) for shop_id in range(1, 1001)]
    ticks = run_schedule(shops, 300.0)
    counts = Counter(shop_id for tick in ticks for shop_id, _ in tick)
    assert set(counts) == {shop_id for shop_id, _ in shops} and set(counts.values()) == {1}
    assert all(scope == Scope.IDLE for tick in ticks for _, scope in tick)
    # 1000 sweeps over 150 ticks: about 7 a tick, never a burst.
    assert max(len(tick) for tick in ticks) <= 20


def test_a_shop_with_open_work_is_swept_every_interval_and_an_idle_one_every_safety_interval():
    ticks = run_schedule([(7, True), (8, False)], 600.0)
    busy = [i * TICK for i, tick in enumerate(ticks) if (7, Scope.FULL) in tick]
    idle = [i * TICK for i, tick in enumerate(ticks) if (8, Scope.IDLE) in tick]
    assert len(busy) == 20 and {round(b - a) for a, b in zip(busy, busy[1:], strict=False)} == {30}
    assert len(idle) == 2 and idle[1] - idle[0] == pytest.approx(300)


def test_windows_that_meet_sweep_each_shop_once_however_the_ticks_fall():
    shops = [(shop_id, False) for shop_id in range(1, 200)]
    edges = [0.0, 0.7, 3.1, 3.2, 9.9, 150.0, 299.99, 300.0]
    swept = Counter(
        s for a, b in zip(edges, edges[1:], strict=False) for s, _ in sweep.due_between(shops, a, b, 30, 300)
    )
    assert set(swept.values()) == {1} and len(swept) == len(shops)
