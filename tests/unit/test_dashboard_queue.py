"""The queue's page through the Flask test client: paging, search and the bulk form behind the sign-in and the
CSRF token, and no query string or bulk form, however odd, answered with a 5xx."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from app import create_app
from fulfillment.accounts import create_operator
from fulfillment.config import Config
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, Shop
from fulfillment.states import State
from fulfillment.store import operations as ops

PASSWORD = "a long operator password"


@pytest.fixture
def app(sqlite_url, redis_url):
    app = create_app(Config(database_url=sqlite_url, redis_url=redis_url, secret_key=uuid.uuid4().hex))
    yield app
    app.extensions["fulfillment"].db.dispose()


@pytest.fixture
def ctx(app):
    return app.extensions["fulfillment"]


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def client(app, ctx):
    email = f"op-{uuid.uuid4().hex[:6]}@warehouse.example"
    create_operator(ctx, email, PASSWORD)
    client = app.test_client()
    page = client.get("/dashboard/login").get_data(as_text=True)
    answer = client.post("/dashboard/login", data={"email": email, "password": PASSWORD, "csrf_token": token(page)})
    assert answer.status_code == 302
    return client


def seed(ctx, count: int, *, late: int = 0) -> list[int]:
    """`count` requests under review, a minute apart; the `late` oldest promised for yesterday."""
    now = datetime.now(UTC)
    ids = []
    with ctx.db.transaction() as session:
        shop = Shop(
            domain="a.myshopify.com",
            settings={"review_requests": True},
            access_token_ciphertext=ctx.cipher.encrypt("shpat_test"),
        )
        session.add(shop)
        session.flush()
        ctx.warehouse(session).set_stock(shop.id, "MUG", 10_000)
        for n in range(count):
            record = FulfillmentOrder(
                shop_id=shop.id,
                store_id=f"gid://shopify/FulfillmentOrder/{n}",
                order_id=f"gid://shopify/Order/{n}",
                order_name=f"#{1001 + n}",
                state=str(State.REQUESTED),
                store_status="OPEN",
                store_request_status="SUBMITTED",
                destination={"first_name": "Ada", "last_name": "Lovelace" if n % 2 else "Byron"},
                created_at=now - timedelta(minutes=count - n),
                expected_ship_at=now - timedelta(days=1) if n < late else None,
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
            ids.append(record.id)
    return ids


def test_the_queue_pages_searches_and_shows_times_in_utc(client, ctx):
    seed(ctx, 120, late=3)
    first = client.get("/dashboard/?per_page=50").get_data(as_text=True)
    assert "Showing 1–50 of 120" in first and "Page 1 of 3" in first
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", first)
    last = client.get("/dashboard/?per_page=50&page=3").get_data(as_text=True)
    assert "Showing 101–120 of 120" in last and ">#1001<" in last
    assert last.count('<tr class="late"') == 3
    found = client.get("/dashboard/?q=%231042").get_data(as_text=True)
    assert "Showing 1–1 of 1" in found and ">#1042<" in found
    assert "Showing 1–50 of 60" in client.get("/dashboard/?q=lovelace").get_data(as_text=True)
    selected = client.get("/dashboard/?per_page=25&select=page").get_data(as_text=True)
    assert selected.count('name="fulfillment_order"') == 25 and selected.count("checked>") >= 25


def test_a_bad_query_string_shows_the_queue_with_the_problems_and_400(client, ctx):
    seed(ctx, 3)
    answer = client.get("/dashboard/?page=zero&per_page=7&q=%231002")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "page: a whole number from 1" in page and "per page: one of 25, 50, 100" in page
    assert "Showing 1–1 of 1" in page  # the search that passed still applies


def test_the_bulk_form_needs_the_csrf_token_and_says_what_became_of_each(client, ctx, monkeypatch):
    for read in ("fulfillment_order_state", "fulfillment_order_status"):
        monkeypatch.setattr(
            ops, read, lambda _client, id: ops.FulfillmentOrderState(id, "OPEN", "SUBMITTED", None, (), ())
        )
    monkeypatch.setattr(
        ops,
        "accept_fulfillment_request",
        lambda _client, id, **kw: ops.FulfillmentOrderState(id, "IN_PROGRESS", "ACCEPTED", None, (), ()),
    )
    ids = seed(ctx, 4)
    form = {"decision": "accept", "fulfillment_order": [str(i) for i in ids[:3]], "view": "requested"}
    assert client.post("/dashboard/bulk", data=form).status_code == 403
    page = client.get("/dashboard/").get_data(as_text=True)
    answer = client.post("/dashboard/bulk", data={**form, "csrf_token": token(page)})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Accepted 3 of 3" in body
    assert 'href="/dashboard/?view=requested"' in body  # back to the page the operator was on
    with ctx.db.transaction() as session:
        assert [session.get(FulfillmentOrder, i).state for i in ids] == ["accepted"] * 3 + ["requested"]
    refused = client.post("/dashboard/bulk", data={"decision": "accept", "csrf_token": token(page)})
    assert refused.status_code == 422 and "choose 1 to 100 fulfillment orders" in refused.get_data(as_text=True)


QUEUE_FIELDS = ["view", "shop", "q", "age", "late", "sort", "page", "per_page", "select"]
ODD = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "1", "25", "100", "1d", "requested", "oldest", "%", "\x00", "9" * 30, "１"]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(st.sampled_from(QUEUE_FIELDS), ODD), max_size=6))
def test_fuzzed_queue_query_strings_never_get_a_5xx(client, params):
    answer = client.get("/dashboard/", query_string=params)
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)[:300]


BULK_FIELDS = ["decision", "fulfillment_order", "reason", "message", "view", "page", "q"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.lists(st.tuples(st.sampled_from(BULK_FIELDS), ODD), max_size=6))
def test_fuzzed_bulk_forms_never_get_a_5xx(client, fields):
    page = client.get("/dashboard/").get_data(as_text=True)
    answer = client.post("/dashboard/bulk", data=MultiDict([*fields, ("csrf_token", token(page))]))
    assert answer.status_code in (200, 422), answer.get_data(as_text=True)[:300]
