"""Refusals before execution, and unknown ids, answered in the store's words (codes, messages, no data or cost)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        (
            "mutation { fulfillmentCancel(id: 1) { userErrors { code } } }",
            "undefinedField",
            "Field 'code' doesn't exist on type 'UserError'",
        ),
        (
            "mutation { fulfillmentCancel { userErrors { field } } }",
            "missingRequiredArguments",
            "Field 'fulfillmentCancel' is missing required arguments: id",
        ),
        (
            "mutation { fulfillmentTrackingInfoUpdate(fulfillmentId: null, trackingInfoInput: {}) {"
            " userErrors { field } } }",
            "argumentLiteralsIncompatible",
            "Argument 'fulfillmentId' on Field 'fulfillmentTrackingInfoUpdate' has an invalid value (null)."
            " Expected type 'ID!'.",
        ),
        ("{ shop { id(x: 1) } }", "argumentNotAccepted", "Field 'id' doesn't accept argument 'x'"),
    ],
)
def test_validation_errors_carry_the_stores_codes_and_no_data_or_cost(h, query, code, message):
    body = h.gql(query)
    assert set(body) == {"errors"}
    assert [(e["extensions"]["code"], e["message"]) for e in body["errors"]] == [(code, message)]


def test_an_enum_variable_out_of_range_names_the_values_in_the_stores_order(h):
    query = (
        "mutation($e: FulfillmentEventInput!) { fulfillmentEventCreate(fulfillmentEvent: $e) { userErrors { field } } }"
    )
    body = h.gql(query, {"e": {"fulfillmentId": "gid://shopify/Fulfillment/1", "status": "NOPE"}})
    assert set(body) == {"errors"}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID_VARIABLE"
    assert error["message"] == (
        'Variable $e of type FulfillmentEventInput! was provided invalid value for status (Expected "NOPE" to be'
        " one of: LABEL_PURCHASED, LABEL_PRINTED, READY_FOR_PICKUP, CONFIRMED, IN_TRANSIT, OUT_FOR_DELIVERY,"
        " ATTEMPTED_DELIVERY, DELAYED, DELIVERED, FAILURE, CARRIER_PICKED_UP)"
    )
    assert error["extensions"]["problems"][0]["path"] == ["status"]


def test_a_missing_required_variable(h):
    body = h.gql("mutation($id: ID!) { fulfillmentCancel(id: $id) { userErrors { field } } }", {})
    assert set(body) == {"errors"}
    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["message"]) == (
        "INVALID_VARIABLE",
        "Variable $id of type ID! was provided invalid value",
    )
    assert error["extensions"]["problems"] == [{"path": [], "explanation": "Expected value to not be null"}]


def test_operation_names(h):
    two = "query First { shop { id } } query Second { shop { name } }"
    assert h.gql(two) == {"errors": [{"message": "An operation name is required"}]}
    response = h.client.post(
        "/store/demo.myshopify.com/admin/api/2026-07/graphql.json",
        json={"query": two, "operationName": "Missing"},
        headers={"X-Shopify-Access-Token": h.token},
    )
    assert response.get_json() == {"errors": [{"message": 'No operation named "Missing"'}]}


def test_unknown_fulfillment_is_a_user_error_where_the_store_gives_one(h):
    body = h.gql(
        "mutation($id: ID!) { fulfillmentCancel(id: $id) { fulfillment { id } userErrors { field message } } }",
        {"id": "gid://shopify/Fulfillment/999"},
    )
    assert "errors" not in body
    assert body["data"]["fulfillmentCancel"] == {
        "fulfillment": None,
        "userErrors": [{"field": ["id"], "message": "Fulfillment not found."}],
    }


def test_unknown_fulfillment_order_is_still_resource_not_found(h):
    body = h.gql(
        "mutation($id: ID!) { fulfillmentOrderAcceptFulfillmentRequest(id: $id) { userErrors { field } } }",
        {"id": "gid://shopify/FulfillmentOrder/0"},
    )
    assert body["errors"][0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"
    assert body["errors"][0]["message"] == "Invalid id: gid://shopify/FulfillmentOrder/0"


def test_node_and_nodes_answer_null_for_unknown_ids_and_still_cost(h):
    body = h.gql(
        'query($ids: [ID!]!) { node(id: "gid://shopify/Product/0") { id } nodes(ids: $ids) { __typename id } }',
        {"ids": ["gid://shopify/Product/0", "gid://shopify/Job/0"]},
    )
    assert body["data"] == {"node": None, "nodes": [None, None]}
    assert body["extensions"]["cost"]["requestedQueryCost"] == 2
    assert body["extensions"]["cost"]["actualQueryCost"] == 2


def test_a_malformed_global_id_is_refused_before_running(h):
    body = h.gql('query Read { nodes(ids: ["gid://shopify/Product/0", "gid://shopify/Product"]) { id } }')
    assert body == {
        "errors": [
            {
                "message": "Invalid global id 'gid://shopify/Product'",
                "locations": [{"line": 1, "column": 14}],
                "path": ["query Read", "nodes", "ids"],
                "extensions": {"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
            }
        ]
    }


@pytest.mark.parametrize(
    ("version", "status", "served"),
    [
        ("2026-07", 200, "2026-07"),
        ("2026-04", 200, "2026-04"),
        ("2025-01", 200, "2025-10"),  # no longer supported: answered as the oldest supported version
        ("unstable", 200, "unstable"),
        ("2026-05", 404, None),  # never released
        ("2099-01", 404, None),
        ("latest", 404, None),
    ],
)
def test_api_versions_in_the_url(h, version, status, served):
    response = h.client.post(
        f"/store/demo.myshopify.com/admin/api/{version}/graphql.json",
        json={"query": "{ shop { id } }"},
        headers={"X-Shopify-Access-Token": h.token},
    )
    assert response.status_code == status
    assert response.headers.get("X-Shopify-API-Version") == served
    if status == 404:
        assert response.get_json() == {"errors": "Not Found"}


def test_held_by_app_needs_the_read_apps_scope(h):
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.mutate(
        "fulfillmentOrderHold",
        "id: ID!, fulfillmentHold: FulfillmentOrderHoldInput!",
        {"id": fo, "fulfillmentHold": {"reason": "OTHER", "reasonNotes": "wait"}},
        "userErrors { message }",
    )
    query = "query($id: ID!) { fulfillmentOrder(id: $id) { fulfillmentHolds { reason heldByApp { id } } } }"
    body = h.gql(query, {"id": fo})
    assert body["data"]["fulfillmentOrder"]["fulfillmentHolds"] == [{"reason": "OTHER", "heldByApp": None}]
    (error,) = body["errors"]
    assert error["message"] == "Access denied for heldByApp field. Required access: `read_apps` access scope."
    assert error["extensions"]["code"] == "ACCESS_DENIED"
    merchant = h.gql(query, {"id": fo}, h.merchant_token)
    assert "errors" not in merchant


def test_a_variable_default_pages_a_connection_at_zero(h):
    body = h.gql("query DefaultZero($first: Int = 0) { products(first: $first) { nodes { id } } }")
    assert body["data"] == {"products": {"nodes": []}}
    assert body["extensions"]["cost"]["requestedQueryCost"] == 2
