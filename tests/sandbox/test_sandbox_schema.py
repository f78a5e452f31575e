"""The pruned schema: it builds, holds what the app uses, and is a true subset of the store's full schema
(that part needs ../shared, absent from a fresh clone, and is skipped then)."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLUnionType,
    build_schema,
    parse,
    print_ast,
    validate,
)

from sandbox import prune_schema

PRUNED = Path(prune_schema.__file__).with_name("schema.graphql")
FULL = prune_schema.DEFAULT_SOURCE

REQUIRED = {
    "QueryRoot": "shop assignedFulfillmentOrders fulfillmentOrder fulfillmentOrders order orders location locations"
    " fulfillment fulfillmentService webhookSubscription webhookSubscriptions webhookSubscriptionsCount node",
    "Mutation": "fulfillmentServiceCreate fulfillmentServiceUpdate fulfillmentServiceDelete"
    " fulfillmentOrderAcceptFulfillmentRequest fulfillmentOrderRejectFulfillmentRequest"
    " fulfillmentOrderAcceptCancellationRequest fulfillmentOrderRejectCancellationRequest fulfillmentCreate"
    " fulfillmentCreateV2 fulfillmentCancel fulfillmentTrackingInfoUpdate fulfillmentTrackingInfoUpdateV2"
    " fulfillmentEventCreate fulfillmentOrderReportProgress"
    " fulfillmentOrderClose webhookSubscriptionCreate webhookSubscriptionUpdate webhookSubscriptionDelete"
    " fulfillmentOrderSubmitFulfillmentRequest fulfillmentOrderSubmitCancellationRequest fulfillmentOrderCancel"
    " fulfillmentOrderMove fulfillmentOrderHold fulfillmentOrderReleaseHold fulfillmentOrderSplit"
    " fulfillmentOrderMerge fulfillmentOrderOpen fulfillmentOrderReschedule",
    "FulfillmentOrder": "id status requestStatus orderId orderName order createdAt updatedAt fulfillAt"
    " assignedLocation destination fulfillmentHolds supportedActions lineItems merchantRequests fulfillments",
    "FulfillmentOrderAssignedLocation": "name location countryCode address1 city",
    "Location": "id name isActive fulfillmentService isFulfillmentService fulfillsOnlineOrders shipsInventory",
    "FulfillmentOrderDestination": "id address1 address2 city province countryCode zip firstName lastName email"
    " phone company",
    "FulfillmentHold": "id reason reasonNotes heldByApp",
    "FulfillmentOrderSupportedAction": "action",
    "FulfillmentOrderLineItem": "id sku totalQuantity remainingQuantity productTitle variantTitle requiresShipping"
    " lineItem",
    "LineItem": "id sku name title quantity",
    "FulfillmentOrderMerchantRequest": "id kind message requestOptions sentAt",
    "Fulfillment": "id name status displayStatus createdAt updatedAt deliveredAt inTransitAt estimatedDeliveryAt"
    " trackingInfo fulfillmentLineItems events order location fulfillmentOrders totalQuantity service originAddress",
    "FulfillmentOriginAddress": "address1 address2 city countryCode provinceCode zip",
    "FulfillmentTrackingInfo": "company number url",
    "FulfillmentLineItem": "id quantity lineItem",
    "FulfillmentEvent": "id status message happenedAt",
    "Order": "id name createdAt displayFulfillmentStatus lineItems fulfillmentOrders fulfillments cancelledAt closed",
    "Shop": "id name myshopifyDomain email",
    "FulfillmentService": "id serviceName handle callbackUrl trackingSupport inventoryManagement location type",
    "WebhookSubscription": "id topic uri createdAt endpoint apiVersion format filter includeFields"
    " metafieldNamespaces metafields",
    "WebhookHttpEndpoint": "callbackUrl",
    "PageInfo": "hasNextPage hasPreviousPage startCursor endCursor",
    "FulfillmentOrderConnection": "edges nodes pageInfo",
    "FulfillmentOrderEdge": "cursor node",
    "UserError": "field message",
    "FulfillmentOrderHoldUserError": "field message code",
}


@pytest.fixture(scope="module")
def pruned():
    return build_schema(PRUNED.read_text())


@pytest.fixture(scope="module")
def full():
    """The store's schema as parsed definitions by name. Parsed, not built: a built 3.8 MB schema is a large
    cyclic graph whose garbage collection alone costs seconds later in the run."""
    if not FULL.exists():
        pytest.skip("the store's full schema (../shared) is not here")
    document = parse(FULL.read_text(), no_location=True)
    return {d.name.value: d for d in document.definitions if hasattr(d, "name") and d.name is not None}


def test_pruned_schema_holds_every_field_the_app_uses(pruned):
    for type_name, names in REQUIRED.items():
        missing = set(names.split()) - set(pruned.type_map[type_name].fields)
        assert not missing, f"{type_name} lacks {missing}"
    for payload in (
        "FulfillmentOrderSubmitFulfillmentRequestPayload",
        "FulfillmentCreatePayload",
        "FulfillmentOrderMovePayload",
        "FulfillmentOrderCancelPayload",
    ):
        assert "userErrors" in pruned.type_map[payload].fields


def test_pruned_schema_has_no_descriptions_and_only_the_deprecated_and_client_directives(pruned):
    text = PRUNED.read_text()
    assert '"""' not in text
    # `@idempotent` is the one the store's clients write in their documents.
    assert {d.name for d in pruned.directives} <= {
        "deprecated",
        "include",
        "skip",
        "specifiedBy",
        "oneOf",
        "idempotent",
    }
    assert pruned.get_directive("idempotent") is not None
    assert all(
        t.description is None
        for t in pruned.type_map.values()
        if not t.name.startswith("__") and t.name not in ("String", "Int", "Float", "Boolean", "ID")
    )


def _type(node) -> str:
    return print_ast(node)


def _args(field) -> dict[str, str]:
    return {a.name.value: _type(a.type) for a in field.arguments or ()}


def test_pruned_schema_is_a_subset_of_the_full_one(pruned, full):
    """Same names, kinds, field and argument types (with nullability), enum values; nothing invented."""
    for name, type_ in pruned.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Float", "Boolean", "ID"):
            continue
        real = full.get(name)
        assert real is not None, f"{name} is not in the store's schema"
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            real_fields = {f.name.value: f for f in real.fields}
            for field_name, field in type_.fields.items():
                real_field = real_fields.get(field_name)
                assert real_field is not None, f"{name}.{field_name}"
                assert str(field.type) == _type(real_field.type), f"{name}.{field_name}"
                assert {a: str(arg.type) for a, arg in field.args.items()} == _args(real_field), f"{name}.{field_name}"
            assert {i.name for i in type_.interfaces} <= {i.name.value for i in real.interfaces or ()}
        elif isinstance(type_, GraphQLInputObjectType):
            assert {f: str(v.type) for f, v in type_.fields.items()} == {
                f.name.value: _type(f.type) for f in real.fields
            }, name
        elif isinstance(type_, GraphQLEnumType):
            assert set(type_.values) == {v.name.value for v in real.values}, name
        elif isinstance(type_, GraphQLUnionType):
            assert {t.name for t in type_.types} <= {t.name.value for t in real.types}


def test_committed_schema_follows_the_allowlist(pruned):
    """What `prune_schema.KEEP` lists is what the committed file holds (regenerate it after editing KEEP)."""
    for name, allowed in prune_schema.KEEP.items():
        type_ = pruned.type_map.get(name)
        assert type_ is not None, f"{name} is in KEEP but not in schema.graphql"
        if allowed != prune_schema.ALL:
            assert set(type_.fields) == set(allowed), f"{name}: schema.graphql differs from KEEP"


def test_prune_keeps_only_what_is_listed_and_strips_descriptions(monkeypatch):
    sdl = '''
    directive @internal on FIELD_DEFINITION
    schema { query: QueryRoot mutation: Mutation }
    interface Node { id: ID! }
    interface HasName { name: String }
    """A shop."""
    type Shop implements Node & HasName {
      "the id" id: ID!
      name: String @internal
      secret: Secret
      old: String @deprecated(reason: "gone")
    }
    type Secret { x: Int }
    enum Kind { B A C }
    input Filter { kind: Kind, nested: Nested }
    input Nested { value: String }
    type QueryRoot { shop(filter: Filter): Shop, other: Secret }
    type Mutation { doIt(id: ID!): DoItPayload, skipped: Int }
    type DoItPayload { userErrors: [UserError!]!, shop: Shop }
    type UserError { field: [String!], message: String! }
    input Loose { kind: Kind }
    input Unused { value: String }
    '''
    keep = {
        "QueryRoot": {"shop"},
        "Mutation": {"doIt"},
        "Node": {"id"},
        "Shop": {"id", "name", "old"},
        "UserError": prune_schema.ALL,
    }
    monkeypatch.setattr(prune_schema, "KEEP", keep)
    monkeypatch.setattr(prune_schema, "ORPHANS", ("Loose",))  # kept though no kept field takes it
    text = prune_schema.prune(sdl)
    result = build_schema(text)
    assert list(result.type_map["Shop"].fields) == ["id", "name", "old"]
    assert list(result.type_map["Kind"].values) == ["B", "A", "C"]  # the store's order, not sorted
    assert [i.name for i in result.type_map["Shop"].interfaces] == ["Node"]
    assert set(result.type_map["QueryRoot"].fields) == {"shop"}
    assert {"Filter", "Nested", "Kind", "DoItPayload"} <= set(result.type_map)
    assert "Secret" not in result.type_map and "HasName" not in result.type_map
    assert "Loose" in result.type_map and "Unused" not in result.type_map
    assert '"""' not in text and "A shop" not in text and "@internal" not in text
    assert '@deprecated(reason: "gone")' in text
    monkeypatch.setattr(prune_schema, "KEEP", {**keep, "Shop": {"id", "secret"}})
    with pytest.raises(prune_schema.PruneError, match="Secret is reachable but not in KEEP"):
        prune_schema.prune(sdl)


def test_the_apps_documents_validate_against_the_sandbox(pruned):
    """The app sends these; if one fails here, the sandbox would refuse it in every end-to-end test."""
    operations = pytest.importorskip("fulfillment.store.operations")
    assert operations.DOCUMENTS
    for name, document in operations.DOCUMENTS.items():
        errors = validate(pruned, parse(document))
        assert not errors, f"{name}: {[e.message for e in errors]}"
