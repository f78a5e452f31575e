"""The static cost estimate, worked through the store's rules on small documents and on our own."""

import pytest

from fulfillment.store.cost import estimate_cost
from fulfillment.store.operations import DOCUMENTS


def test_scalars_and_enums_are_free_and_objects_cost_one():
    # shop (1) + its scalars (0)
    assert estimate_cost("query { shop { id name myshopifyDomain } }") == 1


def test_nested_objects_add_up():
    # fulfillmentOrder (1) + assignedLocation (1) + location (1); id/status are scalars and enums
    doc = "query { fulfillmentOrder(id: 1) { id status assignedLocation { location { id } } } }"
    assert estimate_cost(doc) == 3


def test_unpaged_list_of_objects_counts_as_one_object():
    # fulfillmentOrder (1) + fulfillmentHolds (1) + supportedActions (1)
    doc = "query { fulfillmentOrder(id: 1) { fulfillmentHolds { reason } supportedActions { action } } }"
    assert estimate_cost(doc) == 3


def test_connection_costs_two_plus_first_times_one_node():
    # 2 + 10 x (node 1 + lineItem 1); pageInfo is part of the 2
    doc = """query { fulfillmentOrder(id: 1) {
        lineItems(first: 10) { nodes { id sku lineItem { id } } pageInfo { hasNextPage } } } }"""
    assert estimate_cost(doc) == 1 + 2 + 10 * 2


def test_edges_node_is_priced_like_nodes():
    doc = "query { assignedFulfillmentOrders(first: 5) { edges { cursor node { id order { id } } } } }"
    assert estimate_cost(doc) == 2 + 5 * 2


def test_nested_connections_multiply():
    # fulfillments: 2 + 3 x (fulfillment 1 + fulfillmentLineItems (2 + 4 x (node 1 + lineItem 1)))
    doc = """query { fulfillmentOrder(id: 1) { fulfillments(first: 3) { nodes {
        id fulfillmentLineItems(first: 4) { nodes { quantity lineItem { id } } } } } } }"""
    assert estimate_cost(doc) == 1 + 2 + 3 * (1 + 2 + 4 * 2)


def test_last_pages_like_first():
    assert estimate_cost("query { webhookSubscriptions(last: 7) { nodes { id } } }") == 2 + 7


def test_first_from_variables_then_default_then_page_maximum():
    doc = "query Q($n: Int = 4) { webhookSubscriptions(first: $n) { nodes { id } } }"
    assert estimate_cost(doc, {"n": 9}) == 2 + 9
    assert estimate_cost(doc) == 2 + 4
    unknown = "query Q($n: Int) { webhookSubscriptions(first: $n) { nodes { id } } }"
    assert estimate_cost(unknown) == 2 + 250


def test_mutation_root_field_costs_ten_plus_its_payload():
    doc = """mutation { fulfillmentServiceCreate(name: "x") {
        fulfillmentService { id location { id } } userErrors { field message } } }"""
    # 10 + fulfillmentService (1) + location (1) + userErrors (1)
    assert estimate_cost(doc) == 13


def test_each_mutation_root_field_costs_ten():
    doc = """mutation { a: fulfillmentCancel(id: 1) { userErrors { message } }
                        b: fulfillmentCancel(id: 2) { userErrors { message } } }"""
    assert estimate_cost(doc) == 2 * (10 + 1)


def test_fragments_are_inlined():
    doc = """query { fulfillmentOrder(id: 1) { ...F ... on FulfillmentOrder { order { id } } } }
             fragment F on FulfillmentOrder { assignedLocation { location { id } } }"""
    assert estimate_cost(doc) == 1 + 2 + 1


def test_operation_name_selects_among_several():
    doc = "query A { shop { id } } query B { shop { id fulfillmentServices { id } } }"
    assert estimate_cost(doc, operation_name="B") == 2
    with pytest.raises(ValueError):
        estimate_cost(doc)


@pytest.mark.parametrize(
    ("name", "cost"),
    [
        # 2 + 25 x node 1 (scalars only)
        ("AssignedFulfillmentOrders", 27),
        # 1 + assignedLocation/location 2 + destination 1 + holds 1
        # + lineItems 2 + 50 x 2 + merchantRequests 2 + 10 x 1
        # + fulfillments 2 + 5 x (1 + trackingInfo 1 + fulfillmentLineItems 2 + 10 x 2)
        ("FulfillmentOrder", 241),
        # the same without fulfillments (2 + 5 x 24)
        ("FulfillmentOrderToDecide", 119),
        ("FulfillmentOrderState", 4),
        ("FulfillmentOrderAcceptFulfillmentRequest", 15),
        ("FulfillmentCreate", 35),
        ("ShopInfo", 1),
        ("FulfillmentServices", 3),
        ("WebhookSubscriptions", 27),
    ],
)
def test_our_documents(name, cost):
    assert estimate_cost(DOCUMENTS[name], {"first": 25}) == cost


def test_every_document_stays_well_under_the_single_query_limit():
    for name, document in DOCUMENTS.items():
        assert estimate_cost(document, {"first": 25}) <= 250, name


def test_the_sweep_lists_a_fulfillment_order_for_one_point_a_hundred_a_page():
    from fulfillment.store import operations as ops

    # A sweep lists every open fulfillment order of the shop, over and over: each must cost as little as can be.
    assert estimate_cost(ops.ASSIGNED_FULFILLMENT_ORDERS, {"first": 100}) == 2 + 100 * 1
    assert ops.SWEEP_PAGE == 100


def test_the_reread_before_an_irreversible_step_costs_no_more_than_four_points():
    from fulfillment.store import operations as ops

    # fulfillmentOrder (1) + assignedLocation (1) + location (1) + fulfillmentHolds (1)
    assert estimate_cost(ops.FULFILLMENT_ORDER_STATE, {"id": "1"}) == 4
