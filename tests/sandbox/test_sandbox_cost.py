"""Query cost (requested and actual) and the leaky bucket: refusal when empty, refill over time."""

from __future__ import annotations

import pytest
from graphql import parse

from sandbox.cost import LeakyBucket, requested_cost
from sandbox.graphql_api import Buckets, load_schema


def cost(query: str, variables: dict | None = None) -> int:
    document = parse(query)
    return requested_cost(load_schema(), document, document.definitions[0], variables)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ shop { id name } }", 1),  # one object, scalars free
        ("{ fulfillmentOrder(id: 1) { id status requestStatus } }", 1),
        ("{ fulfillmentOrder(id: 1) { id order { id name } assignedLocation { location { id } } } }", 4),
        # connection: 2 + first x (node 1 + its selection)
        ("{ assignedFulfillmentOrders(first: 10) { edges { cursor node { id } } pageInfo { hasNextPage } } }", 12),
        ("{ assignedFulfillmentOrders(first: 10) { nodes { id order { id } } } }", 22),
        # nested connection: 2 + 5 x (1 + (2 + 10 x 1))
        ("{ orders(first: 5) { nodes { id lineItems(first: 10) { nodes { id sku } } } } }", 67),
        # a list of objects: each element costs 1
        ("{ fulfillmentOrder(id: 1) { supportedActions { action } fulfillmentHolds { id } } }", 3),
        # fragments count as written
        ("query { node(id: 1) { ... on FulfillmentOrder { order { id } } } }", 2),
        # every mutation is 10, whatever it selects
        (
            'mutation { fulfillmentOrderClose(id: "1") { fulfillmentOrder { id order { id } } userErrors { field } } }',
            10,
        ),
        (
            'mutation { a: fulfillmentOrderOpen(id: "1") { userErrors { message } } '
            'b: fulfillmentOrderOpen(id: "2") { userErrors { message } } }',
            20,
        ),
    ],
)
def test_requested_cost_examples(query, expected):
    assert cost(query) == expected


def test_page_size_from_variables():
    query = "query($n: Int) { assignedFulfillmentOrders(first: $n) { nodes { id } } }"
    assert cost(query, {"n": 50}) == 52


def test_actual_cost_counts_the_nodes_returned(h):
    h.sandbox.buckets = Buckets(Clock())  # time stands still: the bucket is exact
    for _ in range(3):
        h.order()
    body = h.gql("{ assignedFulfillmentOrders(first: 50) { nodes { id order { id } } } }")
    extension = body["extensions"]["cost"]
    assert extension["requestedQueryCost"] == 2 + 50 * 2
    assert extension["actualQueryCost"] == 2 + 3 * 2
    status = extension["throttleStatus"]
    assert status["maximumAvailable"] == 2000 and status["restoreRate"] == 100
    assert status["currentlyAvailable"] == 2000 - 8  # reserved 102, refunded what was not used


def test_query_over_the_single_query_limit_is_refused_without_charge(h):
    body = h.gql("{ orders(first: 250) { nodes { id lineItems(first: 250) { nodes { id } } } } }")
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert "data" not in body
    assert body["extensions"]["cost"]["actualQueryCost"] is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refuses_when_empty_and_refills():
    clock = Clock()
    bucket = LeakyBucket(100, 10, clock)
    assert bucket.take(60) and not bucket.take(60)
    assert bucket.status().currently_available == 40
    clock.now = 2.0
    assert bucket.status().currently_available == 60
    assert bucket.take(60)
    clock.now = 100.0
    assert bucket.status().currently_available == 100  # never above the maximum


def test_throttled_request_executes_nothing_and_is_counted(h):
    clock = Clock()
    h.sandbox.buckets = Buckets(clock)
    h.client.put(f"/_sandbox/shops/{h.shop}/throttle", json={"maximum_available": 30, "restore_rate": 10})
    order = h.order()
    fo = order["fulfillment_orders"][0]["id"]
    submit = "mutation($id: ID!) { fulfillmentOrderSubmitFulfillmentRequest(id: $id) { userErrors { message } } }"
    h.gql("{ shop { id } }")  # 1 point
    h.gql("{ shop { id } }")
    h.gql("{ shop { id } }")
    first = h.gql(submit, {"id": fo}, h.token)  # 10 more: the app's bucket now holds 17
    assert first["data"]["fulfillmentOrderSubmitFulfillmentRequest"]["userErrors"] == []
    cancel = "mutation($id: ID!) { fulfillmentOrderCancel(id: $id) { userErrors { message } } }"
    h.gql(cancel, {"id": fo})  # 7 left
    refused = h.gql(cancel, {"id": fo})
    assert refused["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    assert refused["extensions"]["cost"]["throttleStatus"] == {
        "maximumAvailable": 30,
        "currentlyAvailable": 7,
        "restoreRate": 10,
    }
    clock.now = 1.0  # 10 points back
    again = h.gql("query { fulfillmentOrders(first: 5, includeClosed: true) { nodes { id status } } }")
    assert "errors" not in again
    state = h.state()
    assert state["cost"]["throttled_requests"] == 1
    assert state["cost"]["requests"] >= 7
    assert state["cost"]["cost_charged"] >= 1 + 1 + 1 + 10 + 10


def test_buckets_are_per_caller(h):
    clock = Clock()
    h.sandbox.buckets = Buckets(clock)
    h.client.put(f"/_sandbox/shops/{h.shop}/throttle", json={"maximum_available": 10, "restore_rate": 1})
    unknown = h.gql(
        'mutation { fulfillmentOrderOpen(id: "gid://shopify/FulfillmentOrder/1") { userErrors { message } } }'
    )
    assert unknown["errors"][0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"  # ran, and still cost 10
    assert unknown["extensions"]["cost"]["actualQueryCost"] == 10
    assert h.gql("{ shop { id } }")["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert "errors" not in h.gql("{ shop { id } }", token=h.merchant_token)
