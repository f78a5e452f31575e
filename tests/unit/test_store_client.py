"""The store transport, over a mocked HTTP layer: answers, throttling, failures and what gets logged."""

import json
import logging

import pytest
import requests
import responses
import urllib3.exceptions
from responses import matchers

from fulfillment.shop_domain import InvalidShopDomain
from fulfillment.store.client import API_VERSION, StoreClient
from fulfillment.store.errors import (
    GraphQLQueryError,
    NotFound,
    StoreError,
    StoreUnavailable,
    Throttled,
    Unauthorized,
)
from fulfillment.store.throttle import LocalCostBudget, ThrottleStatus

SHOP = "acme.myshopify.com"
TOKEN = "shpat_secret_token_do_not_log_0123456789"
URL = f"https://{SHOP}/admin/api/2026-07/graphql.json"

QUERY = "query ShopInfo { shop { id name myshopifyDomain } }"
MUTATION = "mutation FulfillmentCancel($id: ID!) { fulfillmentCancel(id: $id) { userErrors { field message } } }"


def cost(actual=1, available=1999.0, maximum=2000.0, rate=100.0, requested=1):
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": maximum,
                "currentlyAvailable": available,
                "restoreRate": rate,
            },
        }
    }


def ok(data, **cost_kw):
    return {"data": data, "extensions": cost(**cost_kw)}


def throttled(available, rate, requested=1, maximum=2000.0):
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": cost(actual=None, available=available, maximum=maximum, rate=rate, requested=requested),
    }


SHOP_DATA = {"shop": {"id": "gid://shopify/Shop/1", "name": "Acme", "myshopifyDomain": SHOP}}


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def test_api_version_is_pinned():
    assert API_VERSION == "2026-07"


def test_success_returns_data_and_sends_token_and_document(mocked):
    mocked.post(
        URL,
        json=ok(SHOP_DATA),
        match=[
            matchers.header_matcher({"X-Shopify-Access-Token": TOKEN}),
            matchers.json_params_matcher({"query": QUERY, "variables": {"a": 1}}),
        ],
    )
    assert StoreClient(SHOP, TOKEN).execute(QUERY, {"a": 1}) == SHOP_DATA


def test_base_url_points_at_a_local_store(mocked):
    mocked.post(f"http://127.0.0.1:8700/store/{SHOP}/admin/api/2026-07/graphql.json", json=ok(SHOP_DATA))
    client = StoreClient(SHOP, TOKEN, base_url="http://127.0.0.1:8700/")
    assert client.execute(QUERY) == SHOP_DATA


def test_shop_domain_is_normalised():
    assert StoreClient("ACME.myshopify.com", TOKEN).url == URL


@pytest.mark.parametrize("domain", ["evil.example", "acme.myshopify.com.evil.example", "https://acme.myshopify.com"])
def test_bad_shop_domain_makes_no_request(mocked, domain):
    with pytest.raises(InvalidShopDomain):
        StoreClient(domain, TOKEN)
    assert len(mocked.calls) == 0


def test_cost_is_reported_to_budget_and_callback(mocked):
    mocked.post(URL, json=ok(SHOP_DATA, actual=3, available=1997.0))
    seen = []
    budget = LocalCostBudget()
    client = StoreClient(SHOP, TOKEN, budget=budget, on_cost=lambda *args: seen.append(args))
    client.execute(QUERY)
    assert seen == [(SHOP, 3, ThrottleStatus(2000.0, 1997.0, 100.0))]
    assert budget.metrics(SHOP).cost_spent == 3


class RecordingBudget:
    def __init__(self):
        self.acquired = []
        self.updates = []

    def acquire(self, shop, cost):
        self.acquired.append((shop, cost))
        return 0.0

    def update(self, shop, status, actual_cost, reserved=0):
        self.updates.append((shop, status, actual_cost, reserved))


def test_budget_is_asked_for_the_estimated_or_given_cost(mocked):
    mocked.post(URL, json=ok(SHOP_DATA))
    mocked.post(URL, json=ok(SHOP_DATA))
    budget = RecordingBudget()
    client = StoreClient(SHOP, TOKEN, budget=budget)
    client.execute(QUERY)
    client.execute(QUERY, operation_cost=42)
    assert budget.acquired == [(SHOP, 1), (SHOP, 42)]


def test_the_budget_learns_what_each_request_reserved_and_what_it_cost(mocked):
    mocked.post(URL, json=ok(SHOP_DATA, actual=1, available=1999.0))
    budget = RecordingBudget()
    StoreClient(SHOP, TOKEN, budget=budget).execute(QUERY, operation_cost=42)
    assert budget.updates == [(SHOP, ThrottleStatus(2000.0, 1999.0, 100.0), 1, 42)]


def test_a_budget_that_will_not_wait_long_enough_sends_nothing(mocked):
    class Impatient(RecordingBudget):
        def acquire(self, shop, cost):
            raise Throttled(retry_after=3.0)

    with pytest.raises(Throttled) as refused:
        StoreClient(SHOP, TOKEN, budget=Impatient()).execute(QUERY)
    assert refused.value.retry_after == 3.0
    assert len(mocked.calls) == 0


def test_throttled_then_success_waits_as_the_budget_says(mocked, monkeypatch):
    # 100 points wanted, 20 available, 1000/s: an 80 ms wait before the retry
    mocked.post(URL, json=throttled(available=20.0, rate=1000.0, requested=100))
    mocked.post(URL, json=ok(SHOP_DATA))
    budget_sleeps, client_sleeps = [], []
    monkeypatch.setattr("fulfillment.store.client.time.sleep", client_sleeps.append)
    budget = LocalCostBudget(jitter=0.0, sleep=budget_sleeps.append, clock=lambda: 0.0)
    client = StoreClient(SHOP, TOKEN, budget=budget)
    assert client.execute(QUERY, operation_cost=100) == SHOP_DATA
    assert len(mocked.calls) == 2
    # The budget adopted the store's 20 and reserved 100 again: 80 short at 1000/s.
    assert budget_sleeps == [pytest.approx(0.08)]
    assert client_sleeps == []  # the budget's wait covered what the store asked for
    assert budget.metrics(SHOP).throttle_waits == 1


def test_throttled_with_an_unreachable_budget_still_waits(mocked, monkeypatch):
    mocked.post(URL, json=throttled(available=20.0, rate=1000.0, requested=100))
    mocked.post(URL, json=ok(SHOP_DATA))
    client_sleeps = []
    monkeypatch.setattr("fulfillment.store.client.time.sleep", client_sleeps.append)
    client = StoreClient(SHOP, TOKEN, budget=BrokenBudget())
    assert client.execute(QUERY, operation_cost=100) == SHOP_DATA
    assert len(client_sleeps) == 1
    assert 0.08 <= client_sleeps[0] <= 0.08 * 1.25


def test_throttled_then_success_without_budget_sleeps_itself(mocked, monkeypatch):
    mocked.post(URL, json=throttled(available=40.0, rate=1000.0, requested=50))
    mocked.post(URL, json=ok(SHOP_DATA))
    sleeps = []
    monkeypatch.setattr("fulfillment.store.client.time.sleep", sleeps.append)
    assert StoreClient(SHOP, TOKEN).execute(QUERY, operation_cost=50) == SHOP_DATA
    assert len(sleeps) == 1
    assert 0.05 <= sleeps[0] <= 0.05 * 1.25  # 10 ms deficit, raised to the 50 ms floor, plus jitter


def test_http_429_is_throttling_too(mocked, monkeypatch):
    mocked.post(URL, status=429, headers={"Retry-After": "0.06"})
    mocked.post(URL, json=ok(SHOP_DATA))
    sleeps = []
    monkeypatch.setattr("fulfillment.store.client.time.sleep", sleeps.append)
    assert StoreClient(SHOP, TOKEN).execute(QUERY) == SHOP_DATA
    assert 0.06 <= sleeps[0] <= 0.06 * 1.25


def test_throttled_beyond_max_wait_raises_throttled(mocked):
    # 1000 short at 10/s is 100 s, far beyond the 0.5 s we accept to wait.
    mocked.post(URL, json=throttled(available=0.0, rate=10.0, requested=1000))
    client = StoreClient(SHOP, TOKEN, budget=LocalCostBudget(sleep=lambda s: None), max_throttle_wait=0.5)
    with pytest.raises(Throttled) as caught:
        client.execute(QUERY, operation_cost=1000)
    assert caught.value.retry_after == pytest.approx(100.0)
    assert len(mocked.calls) == 1


def test_repeated_throttling_gives_up_once_total_wait_is_spent(mocked, monkeypatch):
    for _ in range(10):
        mocked.post(URL, json=throttled(available=0.0, rate=1000.0, requested=60))
    monkeypatch.setattr("fulfillment.store.client.time.sleep", lambda s: None)
    client = StoreClient(SHOP, TOKEN, max_throttle_wait=0.2)
    with pytest.raises(Throttled):
        client.execute(QUERY, operation_cost=60)
    # each wait is 60 ms (x up to 1.25 jitter): two or three retries fit in 200 ms
    assert 3 <= len(mocked.calls) <= 4
    mocked.assert_all_requests_are_fired = False


def test_cost_above_the_bucket_is_a_query_error_not_a_wait(mocked):
    mocked.post(URL, json=throttled(available=100.0, rate=10.0, requested=300, maximum=100.0))
    with pytest.raises(GraphQLQueryError, match="exceeds"):
        StoreClient(SHOP, TOKEN).execute(QUERY)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_on_a_mutation_may_have_been_applied(mocked, status):
    mocked.post(URL, status=status)
    with pytest.raises(StoreUnavailable) as caught:
        StoreClient(SHOP, TOKEN).execute(MUTATION, {"id": "gid://shopify/Fulfillment/1"})
    assert caught.value.maybe_applied is True
    assert len(mocked.calls) == 1  # no retries inside the client


def test_5xx_on_a_query_was_not_applied(mocked):
    mocked.post(URL, status=503)
    with pytest.raises(StoreUnavailable) as caught:
        StoreClient(SHOP, TOKEN).execute(QUERY)
    assert caught.value.maybe_applied is False


def test_read_timeout_on_a_mutation_may_have_been_applied(mocked):
    mocked.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(StoreUnavailable) as caught:
        StoreClient(SHOP, TOKEN, timeout=0.1).execute(MUTATION, {"id": "1"})
    assert caught.value.maybe_applied is True
    assert len(mocked.calls) == 1


def test_timeout_on_a_query(mocked):
    mocked.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(StoreUnavailable) as caught:
        StoreClient(SHOP, TOKEN).execute(QUERY)
    assert caught.value.maybe_applied is False


def test_connect_timeout_on_a_mutation_was_not_applied(mocked):
    mocked.post(URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(StoreUnavailable) as caught:
        StoreClient(SHOP, TOKEN).execute(MUTATION, {"id": "1"})
    assert caught.value.maybe_applied is False


def test_refused_connection_on_a_mutation_was_not_applied(mocked):
    refused = urllib3.exceptions.MaxRetryError(
        None, URL, urllib3.exceptions.NewConnectionError(None, "Connection refused")
    )
    mocked.post(URL, body=requests.exceptions.ConnectionError(refused))
    with pytest.raises(StoreUnavailable) as caught:
        StoreClient(SHOP, TOKEN).execute(MUTATION, {"id": "1"})
    assert caught.value.maybe_applied is False


def test_connection_dropped_mid_mutation_may_have_been_applied(mocked):
    dropped = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    mocked.post(URL, body=requests.exceptions.ConnectionError(dropped))
    with pytest.raises(StoreUnavailable) as caught:
        StoreClient(SHOP, TOKEN).execute(MUTATION, {"id": "1"})
    assert caught.value.maybe_applied is True


def test_non_json_answer_is_unavailable(mocked):
    mocked.post(URL, body="<html>gateway</html>", status=200)
    with pytest.raises(StoreUnavailable):
        StoreClient(SHOP, TOKEN).execute(QUERY)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_unauthorized(mocked, status):
    mocked.post(URL, status=status, json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(Unauthorized):
        StoreClient(SHOP, TOKEN).execute(QUERY)


def test_access_denied_is_unauthorized(mocked):
    mocked.post(URL, json={"errors": [{"message": "Access denied", "extensions": {"code": "ACCESS_DENIED"}}]})
    with pytest.raises(Unauthorized):
        StoreClient(SHOP, TOKEN).execute(QUERY)


def test_resource_not_found(mocked):
    mocked.post(
        URL,
        json={
            "data": {"fulfillmentCancel": None},
            "errors": [
                {"message": "Fulfillment does not exist", "extensions": {"code": "RESOURCE_NOT_FOUND"}},
            ],
            "extensions": cost(),
        },
    )
    with pytest.raises(NotFound, match="does not exist"):
        StoreClient(SHOP, TOKEN).execute(MUTATION, {"id": "gid://shopify/Fulfillment/404"})


def test_other_top_level_errors_are_query_errors(mocked):
    errors = [{"message": "Field 'nope' doesn't exist on type 'Shop'", "extensions": {"code": "undefinedField"}}]
    mocked.post(URL, json={"errors": errors})
    with pytest.raises(GraphQLQueryError) as caught:
        StoreClient(SHOP, TOKEN).execute(QUERY)
    assert caught.value.errors == errors
    assert len(mocked.calls) == 1


def test_unexpected_status_is_a_store_error(mocked):
    mocked.post(URL, status=402, body="Payment Required")
    with pytest.raises(StoreError):
        StoreClient(SHOP, TOKEN).execute(QUERY)


def test_every_failure_is_a_store_error():
    for exc in (Throttled, StoreUnavailable, Unauthorized, NotFound, GraphQLQueryError):
        assert issubclass(exc, StoreError)


def test_token_never_appears_in_logs(mocked, caplog, monkeypatch):
    monkeypatch.setattr("fulfillment.store.client.time.sleep", lambda s: None)
    mocked.post(URL, json=ok(SHOP_DATA))
    mocked.post(URL, json=throttled(available=0.0, rate=1000.0, requested=10))
    mocked.post(URL, json=ok(SHOP_DATA))
    mocked.post(URL, status=500)
    mocked.post(URL, status=401)
    mocked.post(URL, json={"errors": [{"message": "bad", "extensions": {"code": "X"}}]})
    mocked.post(URL, body=requests.exceptions.ReadTimeout("timed out"))
    client = StoreClient(SHOP, TOKEN)
    with caplog.at_level(logging.DEBUG):
        client.execute(QUERY)
        client.execute(QUERY)
        for _ in range(4):
            with pytest.raises(StoreError):
                client.execute(MUTATION, {"id": "1"})
        logging.getLogger("test").info("client=%r", client)
    text = caplog.text + "".join(json.dumps(r.args, default=str) for r in caplog.records)
    assert "operation=ShopInfo" in caplog.text and f"shop={SHOP}" in caplog.text
    assert "operation=FulfillmentCancel" in caplog.text
    assert TOKEN not in text
    assert "shpat" not in text
    assert {r.name for r in caplog.records} >= {"fulfillment.store"}


def test_request_log_line_is_key_value_with_cost(mocked, caplog):
    mocked.post(URL, json=ok(SHOP_DATA, actual=1, available=1999.0))
    with caplog.at_level(logging.INFO, logger="fulfillment.store"):
        StoreClient(SHOP, TOKEN).execute(QUERY)
    [line] = [r.getMessage() for r in caplog.records if r.name == "fulfillment.store"]
    assert line.startswith("store.request ")
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    assert fields["shop"] == SHOP
    assert fields["operation"] == "ShopInfo"
    assert fields["status"] == "200"
    assert fields["actual_cost"] == "1"
    assert fields["available"] == "1999.0"


class BrokenBudget:
    def acquire(self, shop, cost):
        raise ConnectionError("redis is down")

    def update(self, shop, status, actual_cost, reserved=0):
        raise ConnectionError("redis is down")


def test_a_failing_budget_or_cost_callback_never_fails_an_applied_mutation(mocked, caplog):
    data = {"fulfillmentCancel": {"userErrors": []}}
    mocked.post(URL, json=ok(data))

    def broken_callback(*args):
        raise RuntimeError("metrics bug")

    client = StoreClient(SHOP, TOKEN, budget=BrokenBudget(), on_cost=broken_callback)
    assert client.execute(MUTATION, {"id": "1"}) == data
    assert "store.budget_failed" in caplog.text and "step=acquire" in caplog.text
    assert "store.bookkeeping_failed" in caplog.text
    assert "step=update" in caplog.text and "step=on_cost" in caplog.text
