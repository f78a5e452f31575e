"""The operator's queue on SQLite and PostgreSQL: paged with nothing cut, searched, filtered, late orders and
delivered ones told apart, one statement per page; and its query string read without ever failing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, MerchantRequest, Package, Shop
from fulfillment.operator import forms, queries
from fulfillment.operator.queries import QueueFilter
from fulfillment.states import Cause, State
from fulfillment.step import Step
from fulfillment.store import operations as ops

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
FIRSTS = ["Ada", "Grace", "Alan", "Edsger", "Barbara"]
LASTS = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov"]


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request, database_server_url):
    if request.param == "postgresql":
        if not database_server_url:
            pytest.skip("DATABASE_URL names no PostgreSQL server")
        url = request.getfixturevalue("make_database")()
    else:
        url = request.getfixturevalue("sqlite_url")
    context = Context.from_config(Config(database_url=url, handling_days=2), clock=Clock())
    yield context
    context.db.dispose()


def add_shop(ctx, domain: str, **settings) -> int:
    with ctx.db.transaction() as session:
        shop = Shop(domain=domain, settings=settings, access_token_ciphertext=ctx.cipher.encrypt("shpat_test"))
        session.add(shop)
        session.flush()
        return shop.id


def add_orders(ctx, shop_id: int, count: int, *, start: int = 1001, state: State = State.REQUESTED, **fields):
    """`count` fulfillment orders received a minute apart, the newest (the highest number) a minute before NOW."""
    ids = []
    with ctx.db.transaction() as session:
        for n in range(start, start + count):
            record = FulfillmentOrder(
                shop_id=shop_id,
                store_id=f"gid://shopify/FulfillmentOrder/{shop_id}-{n}",
                order_id=f"gid://shopify/Order/{shop_id}-{n}",
                order_name=f"#{n}",
                state=str(state),
                store_status="OPEN",
                store_request_status="SUBMITTED",
                destination={"first_name": FIRSTS[n % 5], "last_name": LASTS[n % 5], "country_code": "NO"},
                created_at=NOW - timedelta(minutes=start + count - n),
                **fields,
            )
            record.line_items = [
                FulfillmentOrderLineItem(
                    store_id=f"gid://LI/{shop_id}-{n}",
                    line_item_id=f"gid://OLI/{shop_id}-{n}",
                    sku=f"SKU-{n % 7}",
                    product_title="Mug",
                    total_quantity=2,
                    remaining_quantity=2,
                )
            ]
            session.add(record)
            session.flush()
            ids.append(record.id)
    return ids


def names(queue) -> list[str]:
    return [row.order_name for row in queue.rows]


# --- paging ----------------------------------------------------------------------------------------------------


def test_every_order_is_on_exactly_one_page_newest_first_with_the_number_matched(ctx):
    shop = add_shop(ctx, "a.myshopify.com")
    add_orders(ctx, shop, 120)
    pages = [queries.queue(ctx, QueueFilter(page=n, per_page=50)) for n in (1, 2, 3)]
    assert [len(p.rows) for p in pages] == [50, 50, 20]
    assert {p.total for p in pages} == {120} and {p.pages for p in pages} == {3}
    seen = [name for p in pages for name in names(p)]
    assert seen == [f"#{n}" for n in range(1120, 1000, -1)]
    assert (pages[1].first, pages[1].last) == (51, 100)
    oldest = queries.queue(ctx, QueueFilter(sort="oldest", per_page=25))
    assert names(oldest)[:2] == ["#1001", "#1002"]


def test_a_page_past_the_end_shows_the_last_page(ctx):
    shop = add_shop(ctx, "a.myshopify.com")
    add_orders(ctx, shop, 30)
    queue = queries.queue(ctx, QueueFilter(page=9_999, per_page=25))
    assert queue.filter.page == 2 and names(queue) == [f"#{n}" for n in range(1005, 1000, -1)]
    assert queue.total == 30
    empty = queries.queue(ctx, QueueFilter(view="shipped", page=3))
    assert (empty.rows, empty.total, empty.filter.page, empty.pages) == ([], 0, 1, 1)


def test_a_page_is_read_in_one_statement_whatever_its_size(ctx):
    shop = add_shop(ctx, "a.myshopify.com")
    ids = add_orders(ctx, shop, 150)
    with ctx.db.transaction() as session:
        for record_id in ids[:40]:
            session.add(
                MerchantRequest(fulfillment_order_id=record_id, kind="FULFILLMENT_REQUEST", message="hi", sent_at="t")
            )
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(ctx.db.engine, "before_cursor_execute", count)
    try:
        for per_page in (25, 100):
            statements.clear()
            queue = queries.queue(ctx, QueueFilter(view="all", per_page=per_page, search="ada"))
            assert len(queue.rows) == min(per_page, 30)
            # The shops (for their handling days), the counts by state, and the page: rows and total together.
            assert len(statements) == 3, statements
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", count)


def test_the_page_takes_its_order_from_an_index_not_a_sort(ctx):
    if ctx.db.engine.dialect.name != "sqlite":
        pytest.skip("the plan is read from SQLite's EXPLAIN QUERY PLAN")
    shop = add_shop(ctx, "a.myshopify.com")
    add_orders(ctx, shop, 50)
    captured: list[tuple[str, tuple]] = []

    def keep(_conn, _cursor, statement, parameters, *_args):
        captured.append((statement, parameters))

    event.listen(ctx.db.engine, "before_cursor_execute", keep)
    try:
        queries.queue(ctx, QueueFilter(view="all"))
        queries.queue(ctx, QueueFilter(view="all", shop_id=shop))
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", keep)
    pages = [(s, p) for s, p in captured if "LIMIT" in s]
    assert len(pages) == 2
    with ctx.db.engine.connect() as conn:
        for (statement, parameters), index in zip(
            pages, ["ix_fulfillment_orders_created", "ix_fulfillment_orders_shop_created"], strict=True
        ):
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
            # The page's ids come off the index in order, unsorted; only the page's own rows are sorted after.
            ids_part = plan.split("| SCAN anon")[0]
            assert f"INDEX {index}" in ids_part and "TEMP B-TREE" not in ids_part, plan


# --- search and filters ----------------------------------------------------------------------------------------


def test_search_finds_orders_by_name_sku_and_customer(ctx):
    shop = add_shop(ctx, "a.myshopify.com")
    add_orders(ctx, shop, 70)
    everything = QueueFilter(view="all", per_page=100)
    assert names(queries.queue(ctx, QueueFilter(view="all", search="#1042"))) == ["#1042"]
    by_sku = queries.queue(ctx, QueueFilter(view="all", per_page=100, search="sku-3"))
    assert by_sku.total == 10 and all(int(name[1:]) % 7 == 3 for name in names(by_sku))
    by_customer = queries.queue(ctx, QueueFilter(view="all", per_page=100, search="HOPPER"))
    assert by_customer.total == 14 and {row.customer for row in by_customer.rows} == {"Grace Hopper"}
    # Every word must match, each anywhere.
    both = queries.queue(ctx, QueueFilter(view="all", per_page=100, search="grace sku-3"))
    assert both.total == 2 and all(int(n[1:]) % 5 == 1 and int(n[1:]) % 7 == 3 for n in names(both))
    assert queries.queue(ctx, QueueFilter(view="all", search="Ada Lovelace")).total == 14
    # LIKE's wildcards are searched for as themselves.
    assert queries.queue(ctx, QueueFilter(view="all", search="%")).total == 0
    assert queries.queue(ctx, QueueFilter(view="all", search="SKU_3")).total == 0
    assert queries.queue(ctx, everything).total == 70


def test_filters_by_state_shop_and_age(ctx):
    a = add_shop(ctx, "a.myshopify.com")
    b = add_shop(ctx, "b.myshopify.com")
    add_orders(ctx, a, 10)
    add_orders(ctx, b, 5, start=2001, state=State.ACCEPTED)
    add_orders(ctx, b, 3, start=3001, state=State.SHIPPED)
    assert queries.queue(ctx, QueueFilter(view="all")).total == 18
    assert queries.queue(ctx, QueueFilter()).total == 15  # open: not the shipped ones
    assert queries.queue(ctx, QueueFilter(view="attention")).total == 10
    assert queries.queue(ctx, QueueFilter(view="accepted")).total == 5
    only_b = queries.queue(ctx, QueueFilter(view="all", shop_id=b))
    assert only_b.total == 8 and {row.shop_domain for row in only_b.rows} == {"b.myshopify.com"}
    assert only_b.counts == {"accepted": 5, "shipped": 3}
    # Received a minute apart, the newest a minute ago: 4 of shop a's were received more than 6 minutes ago...
    with ctx.db.transaction() as session:
        for record in session.scalars(select(FulfillmentOrder).where(FulfillmentOrder.shop_id == a)):
            record.created_at = NOW - timedelta(hours=int(record.order_name[1:]) - 1000)
    # ... and now #1001 an hour ago, #1010 ten hours ago.
    assert names(queries.queue(ctx, QueueFilter(shop_id=a, age="4h"))) == [f"#{n}" for n in range(1005, 1011)]
    assert queries.queue(ctx, QueueFilter(shop_id=a, age="1d")).total == 0


def test_late_is_past_the_promised_date_or_received_plus_the_shops_handling_days(ctx):
    quick = add_shop(ctx, "quick.myshopify.com")  # the warehouse's 2 handling days
    slow = add_shop(ctx, "slow.myshopify.com", handling_days=5)
    [promised_past, promised_future] = add_orders(ctx, quick, 2, state=State.ACCEPTED)
    [old_request] = add_orders(ctx, quick, 1, start=2001)
    [young_request] = add_orders(ctx, quick, 1, start=2002)
    [slow_request] = add_orders(ctx, slow, 1, start=3001)
    [shipped] = add_orders(ctx, quick, 1, start=4001, state=State.SHIPPED)
    with ctx.db.transaction() as session:
        session.get(FulfillmentOrder, promised_past).expected_ship_at = NOW - timedelta(hours=1)
        session.get(FulfillmentOrder, promised_future).expected_ship_at = NOW + timedelta(hours=1)
        for record_id in (old_request, slow_request, shipped):
            session.get(FulfillmentOrder, record_id).created_at = NOW - timedelta(days=3)
        session.get(FulfillmentOrder, young_request).created_at = NOW - timedelta(days=1)
    queue = queries.queue(ctx, QueueFilter(view="all"))
    late = {row.id for row in queue.rows if row.late}
    assert late == {promised_past, old_request}
    assert queue.late == 2
    assert {row.id for row in queries.queue(ctx, QueueFilter(view="all", late=True)).rows} == late
    due = {row.id: row.due_at for row in queue.rows}
    assert due[old_request] == NOW - timedelta(days=1)
    assert due[slow_request] == NOW + timedelta(days=2)
    assert due[promised_future] == NOW + timedelta(hours=1)
    assert due[shipped] is None


def test_delivered_shows_as_delivered_and_a_failed_delivery_as_failed(ctx):
    shop = add_shop(ctx, "a.myshopify.com")
    delivered, in_transit, failed = add_orders(ctx, shop, 3, state=State.SHIPPED)
    with ctx.db.transaction() as session:
        for record_id, statuses in (
            (delivered, ["DELIVERED", "DELIVERED"]),
            (in_transit, ["DELIVERED", "IN_TRANSIT"]),
            (failed, ["FAILURE"]),
        ):
            for sequence, status in enumerate(statuses, start=1):
                session.add(
                    Package(
                        fulfillment_order_id=record_id,
                        sequence=sequence,
                        state="shipped",
                        tracking_number=f"T{record_id}-{sequence}",
                        carrier="DHL",
                        delivery_status=status,
                    )
                )
    shown = {row.id: row.shown_state for row in queries.queue(ctx, QueueFilter(view="all")).rows}
    assert shown == {delivered: "delivered", in_transit: "shipped", failed: "delivery_failed"}


def test_the_store_column_shows_what_the_last_read_found_and_when(ctx, monkeypatch):
    shop = add_shop(ctx, "a.myshopify.com")
    [record_id] = add_orders(ctx, shop, 1)
    row = queries.queue(ctx).rows[0]
    assert (row.store_status, row.store_request_status) == ("OPEN", "SUBMITTED")
    assert row.store_read_at == NOW - timedelta(minutes=1)  # read at intake

    later = NOW + timedelta(minutes=5)
    held = ops.FulfillmentOrderState(record_id, "ON_HOLD", "SUBMITTED", None, ("AWAITING_PAYMENT",), ())
    for read in ("fulfillment_order_state", "fulfillment_order_status"):
        monkeypatch.setattr(ops, read, lambda _client, id: held)
    ctx.clock.now = later
    with ctx.db.transaction() as session:
        step = Step(ctx, session, session.get(FulfillmentOrder, record_id), Cause.POLL)
        step.reread()
    row = queries.queue(ctx, QueueFilter(view="all")).rows[0]
    assert row.state == "on_hold" and row.store_read_at == later


# --- the query string --------------------------------------------------------------------------------------------


def test_the_query_string_becomes_a_filter_and_back():
    args = {"view": "requested", "shop": "4", "q": "  ada  ", "age": "1d", "late": "1", "sort": "oldest", "page": "3"}
    chosen, problems = forms.queue_filter({**args, "per_page": "25"})
    assert problems == []
    assert chosen == QueueFilter("requested", 4, "ada", "1d", True, "oldest", 3, 25)
    assert chosen.args() == {**args, "q": "ada", "shop": 4, "late": 1, "page": 3, "per_page": 25}
    assert QueueFilter().args() == {} and QueueFilter().args(page=2) == {"page": 2}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"view": "nope"}, "show: one of"),
        ({"shop": "9" * 20}, "shop: the id of a shop"),
        ({"q": "x" * 101}, "search: at most 100 characters"),
        ({"age": "1y"}, "waiting longer than: one of 1h"),
        ({"sort": "price"}, "order: one of newest, oldest"),
        ({"page": "0"}, "page: a whole number from 1"),
        ({"page": "٣"}, "page: a whole number from 1"),
        ({"per_page": "1000"}, "per page: one of 25, 50, 100"),
    ],
)
def test_a_bad_field_is_named_and_left_at_its_default_while_the_rest_apply(args, problem):
    chosen, problems = forms.queue_filter({**args, "late": "1"})
    assert len(problems) == 1 and problems[0].startswith(problem)
    assert chosen == QueueFilter(late=True)


def test_control_characters_are_not_searched_for():
    assert forms.queue_filter({"q": "a\x00b\tc"})[0].search == "a b c"


QUEUE_FIELDS = ["view", "shop", "q", "age", "late", "sort", "page", "per_page", "select"]
ANY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "1", "2", "25", "100", "1d", "all", "requested", "oldest", "%", "_", "\x00"]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(st.tuples(st.sampled_from(QUEUE_FIELDS), ANY_TEXT), max_size=6))
def test_any_query_string_gives_a_filter_the_queue_can_run(ctx, args):
    from werkzeug.datastructures import MultiDict

    chosen, _ = forms.queue_filter(MultiDict(args))
    queue = queries.queue(ctx, chosen)
    assert queue.total == 0 and queue.filter.page == 1


def test_only_requests_of_connected_shops_can_be_ticked_for_a_bulk_decision(ctx):
    connected = add_shop(ctx, "a.myshopify.com")
    gone = add_shop(ctx, "b.myshopify.com")
    add_orders(ctx, connected, 2)
    add_orders(ctx, connected, 1, start=2001, state=State.ACCEPTED)
    add_orders(ctx, gone, 2, start=3001)
    with ctx.db.transaction() as session:
        session.get(Shop, gone).uninstalled_at = NOW
    rows = queries.queue(ctx, QueueFilter(view="all")).rows
    assert sorted(row.order_name for row in rows if row.under_review) == ["#1001", "#1002"]
