"""The typed operations: what they send and how they read the store's answers into dataclasses."""

from datetime import UTC, datetime

import pytest
import responses

from fulfillment.store import operations as ops
from fulfillment.store.client import StoreClient
from fulfillment.store.errors import NotFound, StoreError, UserError, UserErrors
from fulfillment.store.operations import (
    DOCUMENTS,
    Destination,
    Fulfillment,
    FulfillmentLineItem,
    FulfillmentOrderState,
    FulfillmentOrderSummary,
    FulfillmentService,
    LineItem,
    MerchantRequest,
    ShopInfo,
    TrackingInfo,
    WebhookSubscription,
)

FO = "gid://shopify/FulfillmentOrder/1"
LOCATION = "gid://shopify/Location/7"


class FakeStore:
    """Stands in for StoreClient: answers each operation from a queue and records what was sent."""

    def __init__(self, **answers):
        self.answers = {name: list(queue) for name, queue in answers.items()}
        self.sent = []

    def execute(self, document, variables=None, *, operation_cost=None):
        name = next(name for name, doc in DOCUMENTS.items() if doc == document)
        self.sent.append((name, dict(variables or {})))
        answer = self.answers[name].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def variables(self, name):
        return [v for n, v in self.sent if n == name]


def state_node(status="IN_PROGRESS", request_status="ACCEPTED", holds=(), actions=("CREATE_FULFILLMENT",)):
    return {
        "id": FO,
        "status": status,
        "requestStatus": request_status,
        "assignedLocation": {"location": {"id": LOCATION}},
        "fulfillmentHolds": [{"reason": r} for r in holds],
        "supportedActions": [{"action": a} for a in actions],
    }


def fulfillment_node(id="gid://shopify/Fulfillment/5", number="1Z1", more_lines=False):
    return {
        "id": id,
        "name": "#1001-F1",
        "status": "SUCCESS",
        "trackingInfo": [{"company": "UPS", "number": number, "url": None}],
        "fulfillmentLineItems": {
            "nodes": [{"quantity": 2, "lineItem": {"id": "gid://shopify/LineItem/100"}}],
            "pageInfo": {"hasNextPage": more_lines},
        },
    }


def line_item_node(n):
    return {
        "id": f"gid://shopify/FulfillmentOrderLineItem/{n}",
        "sku": f"SKU-{n}",
        "totalQuantity": 3,
        "remainingQuantity": 1,
        "productTitle": f"Product {n}",
        "lineItem": {"id": f"gid://shopify/LineItem/{100 + n}"},
    }


def page_info(has_next, cursor=None):
    return {"hasNextPage": has_next, "endCursor": cursor}


def user_errors_payload(root, key):
    return {root: {key: None, "userErrors": [{"field": ["id"], "message": "Invalid state", "code": "INVALID"}]}}


# --- reads --------------------------------------------------------------------------------------------------


def test_assigned_fulfillment_orders_page():
    store = FakeStore(
        AssignedFulfillmentOrders=[
            {
                "assignedFulfillmentOrders": {
                    "nodes": [
                        {
                            "id": FO,
                            "status": "OPEN",
                            "requestStatus": "SUBMITTED",
                            "orderId": "gid://shopify/Order/9",
                            "orderName": "#1001",
                            "updatedAt": "2026-07-01T10:00:00Z",
                            "assignedLocation": {"location": {"id": LOCATION}},
                        }
                    ],
                    "pageInfo": page_info(True, "c1"),
                }
            }
        ]
    )
    page = ops.assigned_fulfillment_orders(store, assignment_status="FULFILLMENT_REQUESTED", first=10)
    assert page.items == (
        FulfillmentOrderSummary(
            id=FO,
            status="OPEN",
            request_status="SUBMITTED",
            order_id="gid://shopify/Order/9",
            order_name="#1001",
            assigned_location_id=LOCATION,
            updated_at=datetime(2026, 7, 1, 10, tzinfo=UTC),
        ),
    )
    assert (page.end_cursor, page.has_next_page) == ("c1", True)
    assert store.variables("AssignedFulfillmentOrders") == [
        {"assignmentStatus": "FULFILLMENT_REQUESTED", "locationIds": None, "first": 10, "after": None}
    ]


def test_iter_assigned_fulfillment_orders_walks_every_page():
    def page(ids, has_next, cursor):
        nodes = [
            {
                "id": i,
                "status": "OPEN",
                "requestStatus": "SUBMITTED",
                "orderId": "o",
                "orderName": "#1",
                "updatedAt": None,
                "assignedLocation": {"location": None},
            }
            for i in ids
        ]
        return {"assignedFulfillmentOrders": {"nodes": nodes, "pageInfo": page_info(has_next, cursor)}}

    store = FakeStore(AssignedFulfillmentOrders=[page(["a", "b"], True, "c1"), page(["c"], False, "c2")])
    found = list(ops.iter_assigned_fulfillment_orders(store, location_ids=[LOCATION], first=2))
    assert [fo.id for fo in found] == ["a", "b", "c"]
    assert found[0].assigned_location_id is None
    assert [v["after"] for v in store.variables("AssignedFulfillmentOrders")] == [None, "c1"]
    assert all(v["locationIds"] == [LOCATION] for v in store.variables("AssignedFulfillmentOrders"))


def test_fulfillment_order_reads_everything_and_fetches_remaining_pages():
    node = {
        **state_node(status="ON_HOLD", request_status="ACCEPTED", holds=("AWAITING_PAYMENT",), actions=()),
        "orderId": "gid://shopify/Order/9",
        "orderName": "#1001",
        "updatedAt": "2026-07-01T10:00:00+00:00",
        "destination": {
            "countryCode": "DE",
            "province": None,
            "city": "Berlin",
            "zip": "10115",
            "address1": "Street 1",
            "address2": None,
            "firstName": "Ada",
            "lastName": "L",
        },
        "lineItems": {"nodes": [line_item_node(1)], "pageInfo": page_info(True, "li1")},
        "merchantRequests": {
            "nodes": [
                {
                    "kind": "FULFILLMENT_REQUEST",
                    "message": "gift wrap",
                    "sentAt": "2026-07-01T09:00:00Z",
                    "requestOptions": {"notify_customer": True},
                }
            ]
        },
        "fulfillments": {"nodes": [fulfillment_node()], "pageInfo": page_info(True, "f1")},
    }
    store = FakeStore(
        FulfillmentOrder=[{"fulfillmentOrder": node}],
        FulfillmentOrderLineItems=[
            {"fulfillmentOrder": {"lineItems": {"nodes": [line_item_node(2)], "pageInfo": page_info(False)}}}
        ],
        FulfillmentOrderFulfillments=[
            {
                "fulfillmentOrder": {
                    "fulfillments": {
                        "nodes": [fulfillment_node("gid://shopify/Fulfillment/6", "1Z2")],
                        "pageInfo": page_info(False),
                    }
                }
            }
        ],
    )
    fo = ops.fulfillment_order(store, FO)
    assert fo is not None
    assert (fo.id, fo.status, fo.request_status, fo.order_name) == (FO, "ON_HOLD", "ACCEPTED", "#1001")
    assert fo.assigned_location_id == LOCATION
    assert fo.holds == ("AWAITING_PAYMENT",)
    assert fo.supported_actions == ()
    assert fo.updated_at == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert fo.line_items == (
        LineItem(
            id="gid://shopify/FulfillmentOrderLineItem/1",
            line_item_id="gid://shopify/LineItem/101",
            sku="SKU-1",
            total_quantity=3,
            remaining_quantity=1,
            product_title="Product 1",
        ),
        LineItem(
            id="gid://shopify/FulfillmentOrderLineItem/2",
            line_item_id="gid://shopify/LineItem/102",
            sku="SKU-2",
            total_quantity=3,
            remaining_quantity=1,
            product_title="Product 2",
        ),
    )
    assert fo.merchant_requests == (
        MerchantRequest(
            kind="FULFILLMENT_REQUEST",
            message="gift wrap",
            sent_at=datetime(2026, 7, 1, 9, tzinfo=UTC),
            request_options={"notify_customer": True},
        ),
    )
    assert [f.id for f in fo.fulfillments] == ["gid://shopify/Fulfillment/5", "gid://shopify/Fulfillment/6"]
    assert fo.fulfillments[0] == Fulfillment(
        id="gid://shopify/Fulfillment/5",
        name="#1001-F1",
        status="SUCCESS",
        tracking=(TrackingInfo(number="1Z1", company="UPS", url=None),),
        line_items=(FulfillmentLineItem(line_item_id="gid://shopify/LineItem/100", quantity=2),),
    )
    assert fo.destination == Destination("DE", None, "Berlin", "10115", "Street 1", None, "Ada", "L")
    assert store.variables("FulfillmentOrderLineItems") == [{"id": FO, "after": "li1"}]
    assert store.variables("FulfillmentOrderFulfillments") == [{"id": FO, "after": "f1"}]


def test_fulfillment_order_that_does_not_exist_is_none():
    store = FakeStore(FulfillmentOrder=[{"fulfillmentOrder": None}, NotFound("gone")])
    assert ops.fulfillment_order(store, FO) is None
    assert ops.fulfillment_order(store, FO) is None


def test_fulfillment_order_state_is_the_cheap_read():
    store = FakeStore(
        FulfillmentOrderState=[
            {"fulfillmentOrder": state_node("OPEN", "SUBMITTED", actions=("CANCEL_FULFILLMENT_ORDER",))},
            {"fulfillmentOrder": None},
            NotFound("gone"),
        ]
    )
    assert ops.fulfillment_order_state(store, FO) == FulfillmentOrderState(
        id=FO,
        status="OPEN",
        request_status="SUBMITTED",
        assigned_location_id=LOCATION,
        holds=(),
        supported_actions=("CANCEL_FULFILLMENT_ORDER",),
    )
    assert ops.fulfillment_order_state(store, FO) is None
    assert ops.fulfillment_order_state(store, FO) is None


def test_shop_info_and_fulfillment_services():
    store = FakeStore(
        ShopInfo=[{"shop": {"id": "gid://shopify/Shop/1", "name": "Acme", "myshopifyDomain": "acme.myshopify.com"}}],
        FulfillmentServices=[
            {
                "shop": {
                    "fulfillmentServices": [
                        {
                            "id": "gid://shopify/FulfillmentService/3",
                            "serviceName": "Acme 3PL",
                            "callbackUrl": "https://app.example/cb",
                            "location": {"id": LOCATION},
                        },
                        {
                            "id": "gid://shopify/FulfillmentService/manual",
                            "serviceName": "Manual",
                            "callbackUrl": None,
                            "type": "MANUAL",
                            "location": {"id": "gid://shopify/Location/1"},
                        },
                    ]
                }
            }
        ],
    )
    assert ops.shop_info(store) == ShopInfo("gid://shopify/Shop/1", "Acme", "acme.myshopify.com")
    assert ops.fulfillment_services(store) == [
        FulfillmentService("gid://shopify/FulfillmentService/3", LOCATION, "https://app.example/cb", "Acme 3PL"),
        FulfillmentService(
            "gid://shopify/FulfillmentService/manual", "gid://shopify/Location/1", None, "Manual", "MANUAL"
        ),
    ]


def test_webhook_subscriptions_walks_every_page():
    def page(ids, has_next, cursor):
        nodes = [{"id": i, "topic": "APP_UNINSTALLED", "uri": "https://app.example/wh"} for i in ids]
        return {"webhookSubscriptions": {"nodes": nodes, "pageInfo": page_info(has_next, cursor)}}

    store = FakeStore(WebhookSubscriptions=[page(["w1"], True, "c1"), page(["w2"], False, None)])
    found = ops.webhook_subscriptions(store)
    assert found == [
        WebhookSubscription("w1", "APP_UNINSTALLED", "https://app.example/wh"),
        WebhookSubscription("w2", "APP_UNINSTALLED", "https://app.example/wh"),
    ]
    assert store.variables("WebhookSubscriptions") == [{"after": None}, {"after": "c1"}]


# --- mutations ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "operation", "root", "expected_variables", "after"),
    [
        (
            lambda s: ops.accept_fulfillment_request(
                s, FO, message="ok", estimated_shipped_at=datetime(2026, 7, 2, 8, tzinfo=UTC)
            ),
            "FulfillmentOrderAcceptFulfillmentRequest",
            "fulfillmentOrderAcceptFulfillmentRequest",
            {"id": FO, "message": "ok", "estimatedShippedAt": "2026-07-02T08:00:00+00:00"},
            ("IN_PROGRESS", "ACCEPTED"),
        ),
        (
            lambda s: ops.reject_fulfillment_request(s, FO, reason="OTHER", message="no"),
            "FulfillmentOrderRejectFulfillmentRequest",
            "fulfillmentOrderRejectFulfillmentRequest",
            {"id": FO, "reason": "OTHER", "message": "no", "lineItems": None},
            ("OPEN", "REJECTED"),
        ),
        (
            lambda s: ops.reject_fulfillment_request(
                s, FO, reason="INVALID_SKU", message="no", line_items=[("foli-1", "unknown SKU")]
            ),
            "FulfillmentOrderRejectFulfillmentRequest",
            "fulfillmentOrderRejectFulfillmentRequest",
            {
                "id": FO,
                "reason": "INVALID_SKU",
                "message": "no",
                "lineItems": [{"fulfillmentOrderLineItemId": "foli-1", "message": "unknown SKU"}],
            },
            ("OPEN", "REJECTED"),
        ),
        (
            lambda s: ops.accept_cancellation_request(s, FO, message="stopped"),
            "FulfillmentOrderAcceptCancellationRequest",
            "fulfillmentOrderAcceptCancellationRequest",
            {"id": FO, "message": "stopped"},
            ("CLOSED", "CANCELLATION_ACCEPTED"),
        ),
        (
            lambda s: ops.reject_cancellation_request(s, FO, message="shipped"),
            "FulfillmentOrderRejectCancellationRequest",
            "fulfillmentOrderRejectCancellationRequest",
            {"id": FO, "message": "shipped"},
            ("IN_PROGRESS", "CANCELLATION_REJECTED"),
        ),
        (
            lambda s: ops.report_progress(s, FO, reason_notes="picking"),
            "FulfillmentOrderReportProgress",
            "fulfillmentOrderReportProgress",
            {"id": FO, "progressReport": {"reasonNotes": "picking"}},
            ("IN_PROGRESS", "ACCEPTED"),  # progress changes no status: the payload's
        ),
        (
            lambda s: ops.close_fulfillment_order(s, FO, message="no stock"),
            "FulfillmentOrderClose",
            "fulfillmentOrderClose",
            {"id": FO, "message": "no stock"},
            ("INCOMPLETE", "CLOSED"),
        ),
    ],
)
def test_fulfillment_order_mutations_return_the_new_state(call, operation, root, expected_variables, after):
    store = FakeStore(**{operation: [{root: {"fulfillmentOrder": state_node(), "userErrors": []}}]})
    state = call(store)
    assert state == FulfillmentOrderState(FO, *after, LOCATION, (), ("CREATE_FULFILLMENT",))
    assert store.variables(operation) == [expected_variables]


def test_a_payload_showing_the_status_from_before_the_change_is_not_taken_for_the_new_state():
    # The store has answered a request with the request status it had before the change (and read back the new
    # one): what an answered mutation leaves behind comes from the store's rules, not from the payload.
    stale = {"fulfillmentOrder": state_node("OPEN", "SUBMITTED"), "userErrors": []}
    store = FakeStore(FulfillmentOrderAcceptFulfillmentRequest=[{"fulfillmentOrderAcceptFulfillmentRequest": stale}])
    state = ops.accept_fulfillment_request(store, FO, message=None, estimated_shipped_at=None)
    assert (state.status, state.request_status) == ("IN_PROGRESS", "ACCEPTED")
    assert state.assigned_location_id == LOCATION


def test_user_errors_are_raised():
    store = FakeStore(
        FulfillmentOrderAcceptFulfillmentRequest=[
            user_errors_payload("fulfillmentOrderAcceptFulfillmentRequest", "fulfillmentOrder")
        ]
    )
    with pytest.raises(UserErrors) as caught:
        ops.accept_fulfillment_request(store, FO, message=None, estimated_shipped_at=None)
    assert caught.value.errors == [UserError(field=("id",), message="Invalid state", code="INVALID")]
    assert "Invalid state" in str(caught.value)


def test_a_payload_without_result_or_errors_is_a_store_error():
    store = FakeStore(FulfillmentOrderClose=[{"fulfillmentOrderClose": {"fulfillmentOrder": None, "userErrors": []}}])
    with pytest.raises(StoreError):
        ops.close_fulfillment_order(store, FO, message=None)


def test_naive_datetimes_are_refused_before_sending():
    store = FakeStore()
    with pytest.raises(ValueError, match="timezone"):
        ops.accept_fulfillment_request(store, FO, message=None, estimated_shipped_at=datetime(2026, 7, 2))
    assert store.sent == []


def test_create_fulfillment_with_lines_and_tracking():
    store = FakeStore(FulfillmentCreate=[{"fulfillmentCreate": {"fulfillment": fulfillment_node(), "userErrors": []}}])
    fulfillment = ops.create_fulfillment(
        store,
        FO,
        [("foli-1", 2)],
        tracking=TrackingInfo(number="1Z1", company="UPS"),
        notify_customer=False,
        message="box 1",
    )
    assert fulfillment.id == "gid://shopify/Fulfillment/5"
    assert store.variables("FulfillmentCreate") == [
        {
            "fulfillment": {
                "lineItemsByFulfillmentOrder": [
                    {"fulfillmentOrderId": FO, "fulfillmentOrderLineItems": [{"id": "foli-1", "quantity": 2}]}
                ],
                "notifyCustomer": False,
                "trackingInfo": {"number": "1Z1", "company": "UPS"},
            },
            "message": "box 1",
        }
    ]


def test_create_fulfillment_of_everything_remaining_omits_lines():
    store = FakeStore(FulfillmentCreate=[{"fulfillmentCreate": {"fulfillment": fulfillment_node(), "userErrors": []}}])
    ops.create_fulfillment(store, FO, None, tracking=None)
    [variables] = store.variables("FulfillmentCreate")
    assert variables["fulfillment"] == {
        "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": FO}],
        "notifyCustomer": True,
    }


def test_create_fulfillment_refuses_an_empty_line_list():
    # The store would read it as "everything remaining".
    store = FakeStore()
    with pytest.raises(ValueError):
        ops.create_fulfillment(store, FO, [], tracking=None)
    assert store.sent == []


def test_truncated_fulfillment_lines_are_logged(caplog):
    store = FakeStore(
        FulfillmentCancel=[{"fulfillmentCancel": {"fulfillment": fulfillment_node(more_lines=True), "userErrors": []}}]
    )
    ops.cancel_fulfillment(store, "gid://shopify/Fulfillment/5")
    assert "store.truncated" in caplog.text


def test_create_fulfillment_event_returns_its_id():
    store = FakeStore(
        FulfillmentEventCreate=[
            {
                "fulfillmentEventCreate": {
                    "fulfillmentEvent": {"id": "gid://shopify/FulfillmentEvent/8"},
                    "userErrors": [],
                }
            }
        ]
    )
    event_id = ops.create_fulfillment_event(
        store, "gid://shopify/Fulfillment/5", status="DELIVERED", happened_at=datetime(2026, 7, 3, tzinfo=UTC)
    )
    assert event_id == "gid://shopify/FulfillmentEvent/8"
    assert store.variables("FulfillmentEventCreate") == [
        {
            "fulfillmentEvent": {
                "fulfillmentId": "gid://shopify/Fulfillment/5",
                "status": "DELIVERED",
                "happenedAt": "2026-07-03T00:00:00+00:00",
            }
        }
    ]


def test_update_tracking_info():
    store = FakeStore(
        FulfillmentTrackingInfoUpdate=[
            {
                "fulfillmentTrackingInfoUpdate": {
                    "fulfillment": fulfillment_node(number="NEW"),
                    "userErrors": [],
                }
            }
        ]
    )
    fulfillment = ops.update_tracking_info(
        store,
        "gid://shopify/Fulfillment/5",
        TrackingInfo("NEW", "DHL", "https://t/NEW"),
        notify_customer=True,
    )
    assert fulfillment.tracking[0].number == "NEW"
    assert store.variables("FulfillmentTrackingInfoUpdate") == [
        {
            "fulfillmentId": "gid://shopify/Fulfillment/5",
            "trackingInfoInput": {"number": "NEW", "company": "DHL", "url": "https://t/NEW"},
            "notifyCustomer": True,
        }
    ]


def test_fulfillment_service_create_and_update():
    service = {
        "id": "gid://shopify/FulfillmentService/3",
        "serviceName": "Acme 3PL",
        "callbackUrl": "https://app.example/cb",
        "location": {"id": LOCATION},
    }
    store = FakeStore(
        FulfillmentServiceCreate=[{"fulfillmentServiceCreate": {"fulfillmentService": service, "userErrors": []}}],
        FulfillmentServiceUpdate=[{"fulfillmentServiceUpdate": {"fulfillmentService": service, "userErrors": []}}],
    )
    expected = FulfillmentService(service["id"], LOCATION, "https://app.example/cb", "Acme 3PL")
    assert ops.create_fulfillment_service(store, name="Acme 3PL", callback_url="https://app.example/cb") == expected
    assert ops.update_fulfillment_service(store, service["id"], callback_url="https://app.example/cb") == expected
    assert store.variables("FulfillmentServiceCreate") == [
        {
            "name": "Acme 3PL",
            "callbackUrl": "https://app.example/cb",
            "trackingSupport": True,
            "inventoryManagement": True,
        }
    ]


def test_webhook_subscription_create_and_delete():
    store = FakeStore(
        WebhookSubscriptionCreate=[
            {
                "webhookSubscriptionCreate": {
                    "webhookSubscription": {
                        "id": "w1",
                        "topic": "APP_UNINSTALLED",
                        "uri": "https://app.example/wh",
                    },
                    "userErrors": [],
                }
            }
        ],
        WebhookSubscriptionDelete=[
            {"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": "w1", "userErrors": []}},
            user_errors_payload("webhookSubscriptionDelete", "deletedWebhookSubscriptionId"),
        ],
    )
    created = ops.create_webhook_subscription(store, topic="APP_UNINSTALLED", uri="https://app.example/wh")
    assert created == WebhookSubscription("w1", "APP_UNINSTALLED", "https://app.example/wh")
    assert store.variables("WebhookSubscriptionCreate") == [
        {"topic": "APP_UNINSTALLED", "webhookSubscription": {"uri": "https://app.example/wh"}}
    ]
    assert ops.delete_webhook_subscription(store, "w1") == "w1"
    with pytest.raises(UserErrors):
        ops.delete_webhook_subscription(store, "w1")


# --- through the real transport -----------------------------------------------------------------------------


@responses.activate
def test_user_errors_over_http_raise_user_errors():
    responses.post(
        "https://acme.myshopify.com/admin/api/2026-07/graphql.json",
        json={
            "data": {
                "fulfillmentOrderAcceptFulfillmentRequest": {
                    "fulfillmentOrder": None,
                    "userErrors": [{"field": ["id"], "message": "Fulfillment order is not in a requested state"}],
                }
            },
            "extensions": {
                "cost": {
                    "requestedQueryCost": 16,
                    "actualQueryCost": 10,
                    "throttleStatus": {
                        "maximumAvailable": 2000,
                        "currentlyAvailable": 1990,
                        "restoreRate": 100,
                    },
                }
            },
        },
    )
    client = StoreClient("acme.myshopify.com", "shpat_token")
    with pytest.raises(UserErrors) as caught:
        ops.accept_fulfillment_request(client, FO, message=None, estimated_shipped_at=None)
    assert caught.value.errors == [
        UserError(field=("id",), message="Fulfillment order is not in a requested state", code=None)
    ]
