"""Every document the app sends is valid against the store's pinned schema (and the sandbox's pruned copy),
and every operation function sends a registered document with variables the schema accepts."""

import inspect
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from graphql import GraphQLSchema, OperationDefinitionNode, build_schema, parse, validate
from graphql.execution.values import get_variable_values

from fulfillment.store import operations as ops
from fulfillment.store.operations import DOCUMENTS, TrackingInfo

REPO = Path(__file__).resolve().parents[2]
STORE_SCHEMA = REPO.parent / "shared" / "shopify" / "admin-2026-07.graphql"
SANDBOX_SCHEMA = REPO / "sandbox" / "schema.graphql"


def _build(path: Path) -> GraphQLSchema:
    if not path.exists():
        pytest.skip(f"schema not found at {path}")
    # assume_valid: the published schema trips graphql-core's strict checks on deprecations.
    return build_schema(path.read_text(encoding="utf-8"), assume_valid=True)


@pytest.fixture(scope="module")
def store_schema() -> GraphQLSchema:
    return _build(STORE_SCHEMA)


@pytest.fixture(scope="module")
def sandbox_schema() -> GraphQLSchema:
    return _build(SANDBOX_SCHEMA)


@pytest.fixture(scope="module", params=["store", "sandbox"])
def schema(request) -> GraphQLSchema:
    return request.getfixturevalue(f"{request.param}_schema")


def _operation(document: str) -> OperationDefinitionNode:
    [operation] = [d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)]
    return operation


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_against_schema(schema, name):
    errors = validate(schema, parse(DOCUMENTS[name]))
    assert not errors, "\n".join(e.message for e in errors)


def test_each_document_holds_one_operation_named_as_its_key():
    for key, document in DOCUMENTS.items():
        operation = _operation(document)
        assert operation.name is not None and operation.name.value == key


def test_operation_names_are_unique():
    names = [_operation(d).name.value for d in DOCUMENTS.values()]
    assert len(names) == len(set(names))
    assert len(set(DOCUMENTS.values())) == len(DOCUMENTS)


# --- every operation function sends a registered document ---------------------------------------------------

FO = "gid://shopify/FulfillmentOrder/1"
FOLI = "gid://shopify/FulfillmentOrderLineItem/11"
FULFILLMENT = "gid://shopify/Fulfillment/5"
WHEN = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
TRACKING = TrackingInfo(number="1Z999", company="UPS", url="https://track.example/1Z999")

CALLS = {
    "assigned_fulfillment_orders": lambda c: ops.assigned_fulfillment_orders(
        c, assignment_status="FULFILLMENT_REQUESTED", location_ids=["gid://shopify/Location/1"], first=10
    ),
    "iter_assigned_fulfillment_orders": lambda c: list(
        ops.iter_assigned_fulfillment_orders(c, assignment_status="CANCELLATION_REQUESTED")
    ),
    "iter_requested_fulfillment_orders": lambda c: list(
        ops.iter_requested_fulfillment_orders(c, location_ids=["gid://shopify/Location/1"])
    ),
    "fulfillment_order": lambda c: ops.fulfillment_order(c, FO),
    "fulfillment_order_to_decide": lambda c: ops.fulfillment_order_to_decide(c, FO),
    "fulfillment_order_state": lambda c: ops.fulfillment_order_state(c, FO),
    "fulfillment_order_status": lambda c: ops.fulfillment_order_status(c, FO),
    "accept_fulfillment_request": lambda c: ops.accept_fulfillment_request(
        c, FO, message="on its way", estimated_shipped_at=WHEN
    ),
    "reject_fulfillment_request": lambda c: ops.reject_fulfillment_request(
        c, FO, reason="INVENTORY_OUT_OF_STOCK", message="none left", line_items=[(FOLI, "sold out")]
    ),
    "accept_cancellation_request": lambda c: ops.accept_cancellation_request(c, FO, message="stopped"),
    "reject_cancellation_request": lambda c: ops.reject_cancellation_request(c, FO, message="already shipped"),
    "create_fulfillment": lambda c: ops.create_fulfillment(
        c, FO, [(FOLI, 2)], tracking=TRACKING, notify_customer=False, message="box 1"
    ),
    "create_fulfillment_event": lambda c: ops.create_fulfillment_event(
        c, FULFILLMENT, status="IN_TRANSIT", message="left hub", happened_at=WHEN, estimated_delivery_at=WHEN
    ),
    "update_tracking_info": lambda c: ops.update_tracking_info(c, FULFILLMENT, TRACKING, notify_customer=True),
    "report_progress": lambda c: ops.report_progress(c, FO, reason_notes="picking"),
    "close_fulfillment_order": lambda c: ops.close_fulfillment_order(c, FO, message="cannot ship the rest"),
    "cancel_fulfillment": lambda c: ops.cancel_fulfillment(c, FULFILLMENT),
    "create_fulfillment_service": lambda c: ops.create_fulfillment_service(
        c, name="Acme 3PL", callback_url="https://app.example/callbacks"
    ),
    "update_fulfillment_service": lambda c: ops.update_fulfillment_service(
        c, "gid://shopify/FulfillmentService/3", callback_url="https://app.example/callbacks"
    ),
    "fulfillment_services": lambda c: ops.fulfillment_services(c),
    "shop_info": lambda c: ops.shop_info(c),
    "create_webhook_subscription": lambda c: ops.create_webhook_subscription(
        c, topic="FULFILLMENT_ORDERS_CANCELLED", uri="https://app.example/webhooks"
    ),
    "webhook_subscriptions": lambda c: ops.webhook_subscriptions(c),
    "delete_webhook_subscription": lambda c: ops.delete_webhook_subscription(c, "gid://shopify/WebhookSubscription/9"),
    "inventory_items_at": lambda c: ops.inventory_items_at(c, "sku:TEE OR sku:MUG", "gid://shopify/Location/1"),
    "location_inventory": lambda c: ops.location_inventory(c, "gid://shopify/Location/1"),
    "set_inventory_quantities": lambda c: ops.set_inventory_quantities(
        c,
        name="on_hand",
        reason="received",
        reference_document_uri="logistics://warehouse/stock-movements/7",
        quantities=[ops.QuantitySet("gid://shopify/InventoryItem/4", "gid://shopify/Location/1", 5, 0)],
        idempotency_key="stock-1-m7-abc",
    ),
}


class _Sent(Exception):
    pass


class FirstRequestOnly:
    """Records the first request an operation function makes, then stops it."""

    def execute(self, document, variables=None, *, operation_cost=None):
        self.document = document
        self.variables = dict(variables or {})
        raise _Sent


def _first_request(name):
    client = FirstRequestOnly()
    with pytest.raises(_Sent):
        CALLS[name](client)
    return client.document, client.variables


def test_the_call_table_covers_every_operation_function():
    public = {
        name
        for name, fn in inspect.getmembers(ops, inspect.isfunction)
        if fn.__module__ == ops.__name__
        and not name.startswith("_")
        and next(iter(inspect.signature(fn).parameters), None) == "client"
    }
    assert public == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_operation_function_sends_a_registered_document(name):
    document, variables = _first_request(name)
    assert document in DOCUMENTS.values()
    json.dumps(variables)  # what the transport will serialise


@pytest.mark.parametrize("name", sorted(CALLS))
def test_operation_function_variables_are_accepted_by_schema(schema, name):
    document, variables = _first_request(name)
    result = get_variable_values(schema, _operation(document).variable_definitions or (), variables)
    # graphql-core answers with the coerced values, or with a list of errors.
    assert not isinstance(result, list), "\n".join(e.message for e in result)


def test_every_registered_document_is_sent_by_some_function():
    # Follow-up pages (e.g. FulfillmentOrderLineItems) are only sent on long orders, so look at the code.
    constants = {name for name, value in vars(ops).items() if isinstance(value, str) and value in DOCUMENTS.values()}
    assert len(constants) == len(DOCUMENTS)
    used = set()
    for _, fn in inspect.getmembers(ops, inspect.isfunction):
        if fn.__module__ == ops.__name__:
            used |= set(fn.__code__.co_names)
    assert constants <= used, constants - used
