"""Cut the store's full Admin GraphQL schema down to what the sandbox serves, and write `sandbox/schema.graphql`.

Run as `python -m sandbox.prune_schema [path-to-full-sdl]` (default: ../shared/shopify/admin-2026-07.graphql
relative to the repository root). The output is committed, because a fresh clone has no ../shared.

What is kept: the root fields in `KEEP`, and for every object or interface type the fields listed there.
Connection, edge, payload and user-error types are kept whole (their fields are exactly what a client of a
connection or a mutation reads). Every input type, enum and scalar reachable from a kept field is kept whole, so
arguments keep their real shapes. Interfaces other than `Node` are dropped from `implements`, all descriptions
are stripped (they are the store's prose, and 3.8 MB of it), and of the directives only `@deprecated` stays on
definitions; the directives a client may write in a document (`@idempotent`) are defined as the store defines them.
Types are written sorted by name (a stable diff); fields, arguments and enum values keep the store's order, which
clients see in introspection and in the store's error messages ("Expected ... to be one of: ...").
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    FieldDefinitionNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    Node,
    ObjectTypeDefinitionNode,
    OperationType,
    OperationTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    UnionTypeDefinitionNode,
    build_schema,
    get_named_type,
    print_ast,
    print_schema,
)
from graphql.language import NamedTypeNode, NameNode

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "shopify" / "admin-2026-07.graphql"
OUTPUT = Path(__file__).resolve().parent / "schema.graphql"

ALL = "*"


# Object and interface types the sandbox serves, with the fields it resolves. Anything an app may select must
# be listed here; the walker refuses to keep a field whose object type is not listed, so the list is complete.
def names(text: str) -> set[str]:
    """Field names written as one whitespace-separated string (keeps the allowlist readable)."""
    return set(text.split())


KEEP: dict[str, set[str] | str] = {
    "QueryRoot": names(
        "shop assignedFulfillmentOrders fulfillmentOrder fulfillmentOrders order orders location locations"
        " fulfillment fulfillmentService webhookSubscription webhookSubscriptions webhookSubscriptionsCount node"
        " nodes manualHoldsFulfillmentOrders return returnableFulfillments returnCalculate"
        # products and inventory
        " inventoryItem inventoryItems inventoryLevel product productVariant productVariants products"
    ),
    "Mutation": names(
        # the app's side
        "fulfillmentServiceCreate fulfillmentServiceUpdate fulfillmentServiceDelete"
        " fulfillmentOrderAcceptFulfillmentRequest fulfillmentOrderRejectFulfillmentRequest"
        " fulfillmentOrderAcceptCancellationRequest fulfillmentOrderRejectCancellationRequest"
        " fulfillmentCreate fulfillmentCreateV2 fulfillmentCancel fulfillmentTrackingInfoUpdate"
        " fulfillmentTrackingInfoUpdateV2 fulfillmentEventCreate"
        " fulfillmentOrderReportProgress fulfillmentOrderClose webhookSubscriptionCreate webhookSubscriptionUpdate"
        " webhookSubscriptionDelete"
        # the merchant's side
        " fulfillmentOrderSubmitFulfillmentRequest fulfillmentOrderSubmitCancellationRequest fulfillmentOrderCancel"
        " fulfillmentOrderMove fulfillmentOrderHold fulfillmentOrderReleaseHold fulfillmentOrderSplit"
        " fulfillmentOrderMerge fulfillmentOrderOpen fulfillmentOrderReschedule fulfillmentOrdersSetFulfillmentDeadline"
        " fulfillmentOrderLineItemsPreparedForPickup fulfillmentOrdersReroute orderCancel orderCreate"
        # returns: the sandbox makes none, so these answer "Return not found."
        " returnApproveRequest returnDeclineRequest returnCancel returnClose returnReopen returnProcess"
        " removeFromReturn"
        # locations and inventory
        " inventorySetQuantities inventoryAdjustQuantities inventorySetOnHandQuantities inventoryMoveQuantities"
        " inventoryActivate inventoryDeactivate locationActivate locationDeactivate locationDelete locationAdd"
        " locationEdit"
    ),
    "Node": names("id"),
    "Shop": names("id name myshopifyDomain email assignedFulfillmentOrders fulfillmentServices"),
    "App": names("id title handle apiKey"),
    "FulfillmentOrder": names(
        "id status requestStatus orderId orderName order createdAt updatedAt fulfillAt fulfillBy orderProcessedAt"
        " assignedLocation destination fulfillmentHolds supportedActions lineItems merchantRequests fulfillments"
    ),
    "FulfillmentOrderAssignedLocation": ALL,
    "FulfillmentOrderDestination": ALL,
    "FulfillmentHold": names("id reason reasonNotes heldByApp heldByRequestingApp handle displayReason"),
    "FulfillmentOrderSupportedAction": ALL,
    "FulfillmentOrderLineItem": names(
        "id sku totalQuantity remainingQuantity productTitle variantTitle requiresShipping lineItem vendor"
        " inventoryItemId"
    ),
    "FulfillmentOrderMerchantRequest": names("id kind message requestOptions responseData sentAt fulfillmentOrder"),
    "FulfillmentOrderSplitResult": ALL,
    "FulfillmentOrderMergeResult": ALL,
    "LineItem": names(
        "id sku name title quantity variantTitle vendor requiresShipping currentQuantity unfulfilledQuantity"
        " fulfillableQuantity originalUnitPriceSet taxLines variant"
    ),
    "TaxLine": names("title rate ratePercentage priceSet channelLiable"),
    "Location": names(
        "id name isActive fulfillmentService createdAt updatedAt legacyResourceId isFulfillmentService isPrimary"
        " shipsInventory fulfillsOnlineOrders activatable deactivatable deletable deactivatedAt hasActiveInventory"
        " hasUnfulfilledOrders addressVerified address inventoryLevel inventoryLevels"
    ),
    "LocationAddress": ALL,
    "InventoryItem": names(
        "id legacyResourceId sku tracked requiresShipping createdAt updatedAt variant variants inventoryLevel"
        " inventoryLevels duplicateSkuCount inventoryHistoryUrl countryCodeOfOrigin provinceCodeOfOrigin"
        " harmonizedSystemCode"
    ),
    "InventoryLevel": names("id isActive item location quantities createdAt updatedAt canDeactivate deactivationAlert"),
    "InventoryQuantity": ALL,
    "InventoryAdjustmentGroup": names("id createdAt reason referenceDocumentUri changes app"),
    "InventoryChange": ALL,
    "Product": names(
        "id legacyResourceId title handle status tracksInventory totalInventory variants createdAt updatedAt"
    ),
    "ProductVariant": names(
        "id legacyResourceId title sku displayName price inventoryItem inventoryQuantity product barcode"
        " inventoryPolicy createdAt updatedAt"
    ),
    "Fulfillment": names(
        "id name status displayStatus createdAt updatedAt deliveredAt inTransitAt estimatedDeliveryAt trackingInfo"
        " fulfillmentLineItems events order location fulfillmentOrders totalQuantity requiresShipping service"
        " originAddress"
    ),
    "FulfillmentOriginAddress": ALL,
    "FulfillmentTrackingInfo": ALL,
    "FulfillmentLineItem": names("id quantity lineItem"),
    "FulfillmentEvent": names(
        "id status message happenedAt createdAt estimatedDeliveryAt address1 city province country zip latitude"
        " longitude"
    ),
    "Order": names(
        "id name createdAt updatedAt displayFulfillmentStatus lineItems fulfillmentOrders fulfillments cancelledAt"
        " closed closedAt note processedAt displayFinancialStatus totalPriceSet currentTotalPriceSet totalRefundedSet"
        " tags email phone cancelReason currencyCode presentmentCurrencyCode returns returnStatus"
    ),
    "MoneyBag": ALL,
    "MoneyV2": ALL,
    "Job": names("id done"),
    # Orders answer their returns; the sandbox makes none, so the connection is always empty.
    # Served whole, so that introspection answers them as the store does; no field of them ever resolves.
    "Return": ALL,
    "ReturnDecline": names("reason note"),
    "ReverseFulfillmentOrder": names("id status order lineItems reverseDeliveries"),
    "ReverseDelivery": names("id"),
    "ReverseFulfillmentOrderLineItem": names("id totalQuantity dispositions fulfillmentLineItem"),
    "ReverseFulfillmentOrderDisposition": names("id type quantity location"),
    "ReturnLineItemType": names(
        "id quantity processableQuantity processedQuantity refundableQuantity refundedQuantity unprocessedQuantity"
    ),
    "ReturnLineItem": ALL,
    "ReturnShippingFee": ALL,
    # What the whole Return and ReturnLineItem types reach, with a field or a few each.
    "ExchangeLineItem": names("id"),
    "OrderTransaction": names("id"),
    "Refund": names("id"),
    "RestockingFee": names("id percentage amountSet"),
    "ReturnReasonDefinition": names("id name handle"),
    "StaffMember": names("id"),
    "SuggestedReturnFinancialOutcome": names("discountedSubtotal"),
    "SuggestedReturnRefund": names("amount"),
    "Weight": ALL,
    # What an order's fulfillments leave to return, and what returning some would come to.
    "ReturnableFulfillment": ALL,
    "ReturnableFulfillmentLineItem": ALL,
    "CalculatedReturn": names("id returnLineItems returnShippingFee"),
    "CalculatedReturnLineItem": ALL,
    "CalculatedRestockingFee": ALL,
    "CalculatedReturnShippingFee": ALL,
    "FulfillmentService": names(
        "id serviceName handle callbackUrl trackingSupport inventoryManagement requiresShippingMethod location type"
    ),
    # `endpoint` and `callbackUrl` are deprecated in 2026-07 for `uri`, but still served for older clients.
    "WebhookSubscription": names(
        "id legacyResourceId topic uri callbackUrl endpoint apiVersion format createdAt updatedAt filter includeFields"
        " metafieldNamespaces metafields name"
    ),
    "WebhookHttpEndpoint": ALL,
    "WebhookPubSubEndpoint": ALL,
    "WebhookEventBridgeEndpoint": ALL,
    "WebhookSubscriptionMetafieldIdentifier": ALL,
    "ApiVersion": ALL,
    "Count": ALL,
    "UserError": ALL,
    "PageInfo": ALL,
}

# Input types kept though no served field takes them: introspection answers them as the store does (the sandbox
# makes no returns, so it serves no mutation that creates one).
ORPHANS = ("ReturnInput", "ReturnRequestInput", "ReturnLineItemInput", "ReturnRequestLineItemInput")

# Types whose every field is part of the contract of a connection or a mutation payload.
WHOLE_SUFFIXES = ("Connection", "Edge", "Payload", "UserError", "Error")
KEPT_DIRECTIVES = {"deprecated"}
# Directives a client may write in a document, defined in the pruned schema (without their descriptions).
CLIENT_DIRECTIVES = ("idempotent",)


class PruneError(Exception):
    """The allowlist reaches an object type it does not list: the pruned schema would be incomplete."""


def kept_fields(type_: GraphQLObjectType | GraphQLInterfaceType) -> list[str]:
    """Names of the fields of `type_` the sandbox keeps, in the real schema's order."""
    allowed = KEEP.get(type_.name)
    if allowed is None and type_.name.endswith(WHOLE_SUFFIXES):
        allowed = ALL
    if allowed is None:
        raise PruneError(f"{type_.name} is reachable but not in KEEP")
    if allowed == ALL:
        return list(type_.fields)
    missing = set(allowed) - set(type_.fields)
    if missing:
        raise PruneError(f"{type_.name} has no field(s) {sorted(missing)} in the real schema")
    return [name for name in type_.fields if name in allowed]


def reachable(schema: GraphQLSchema) -> dict[str, list[str] | None]:
    """Walk from the roots and `ORPHANS`; return type name -> kept field names (None for types kept whole)."""
    kept: dict[str, list[str] | None] = {}
    pending: list[GraphQLNamedType] = [schema.query_type, schema.mutation_type]
    pending += [schema.type_map[name] for name in ORPHANS]

    def visit(named: GraphQLNamedType) -> None:
        if named.name not in kept:
            pending.append(named)

    while pending:
        type_ = pending.pop()
        if type_.name in kept:
            continue
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            names = kept_fields(type_)
            kept[type_.name] = names
            if isinstance(type_, GraphQLInterfaceType) and type_.name != "Node":
                # Fragments on an implementation (`... on ReturnLineItem`) need it, though no field returns it.
                for implementation in schema.get_implementations(type_).objects:
                    if implementation.name in KEEP:
                        visit(implementation)
            # Interfaces in KEEP stay on the types that implement them, even if no kept field returns them.
            for interface in type_.interfaces:
                if interface.name in KEEP:
                    visit(interface)
            for name in names:
                field = type_.fields[name]
                visit(get_named_type(field.type))
                for arg in field.args.values():
                    visit(get_named_type(arg.type))
        elif isinstance(type_, GraphQLInputObjectType):
            kept[type_.name] = None
            for field in type_.fields.values():
                visit(get_named_type(field.type))
        elif isinstance(type_, GraphQLUnionType):
            kept[type_.name] = None
            members = [m for m in type_.types if m.name in KEEP]
            if not members:
                raise PruneError(f"union {type_.name} has no member in KEEP")
            for member in members:
                visit(member)
        else:  # enums and scalars come whole
            kept[type_.name] = None
    return kept


def _replace(node: Node, **changes: Any) -> Any:
    """A copy of an AST node with some attributes changed (graphql-core nodes are plain slotted objects)."""
    values = {key: getattr(node, key) for key in node.keys if key != "loc"}
    values.update(changes)
    return type(node)(**values)


def _directives(directives: Iterable[DirectiveNode] | None) -> tuple[DirectiveNode, ...]:
    return tuple(d for d in directives or () if d.name.value in KEPT_DIRECTIVES)


def _input_value(node: InputValueDefinitionNode) -> InputValueDefinitionNode:
    return _replace(node, description=None, directives=_directives(node.directives))


def _field(node: FieldDefinitionNode) -> FieldDefinitionNode:
    return _replace(
        node,
        description=None,
        directives=_directives(node.directives),
        arguments=tuple(_input_value(a) for a in node.arguments or ()),
    )


def pruned_definition(type_: GraphQLNamedType, fields: list[str] | None, kept: set[str]) -> Node:
    """The SDL definition of one kept type, without descriptions and without what the sandbox drops."""
    node = type_.ast_node
    if node is None:
        raise PruneError(f"{type_.name} has no definition in the source")
    if isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
        wanted = set(fields or ())
        return _replace(
            node,
            description=None,
            directives=_directives(node.directives),
            interfaces=tuple(i for i in node.interfaces or () if i.name.value in kept),
            fields=tuple(_field(f) for f in node.fields or () if f.name.value in wanted),
        )
    if isinstance(node, InputObjectTypeDefinitionNode):
        return _replace(
            node,
            description=None,
            directives=_directives(node.directives),
            fields=tuple(_input_value(f) for f in node.fields or ()),
        )
    if isinstance(node, EnumTypeDefinitionNode):
        return _replace(
            node,
            description=None,
            directives=_directives(node.directives),
            values=tuple(
                _replace(v, description=None, directives=_directives(v.directives)) for v in node.values or ()
            ),
        )
    if isinstance(node, UnionTypeDefinitionNode):
        return _replace(
            node, description=None, directives=(), types=tuple(t for t in node.types or () if t.name.value in kept)
        )
    if isinstance(node, ScalarTypeDefinitionNode):
        return _replace(node, description=None, directives=())
    raise PruneError(f"unexpected definition for {type_.name}: {node.kind}")


def prune(sdl: str) -> str:
    """The pruned schema's SDL: types by name (a stable diff), their members in the store's order."""
    return prune_built(build_schema(sdl, assume_valid=True))


def prune_built(full: GraphQLSchema) -> str:
    """`prune` for a schema already built from the full SDL (building it takes seconds)."""
    kept = reachable(full)
    names = set(kept)
    definitions: list[Node] = [
        SchemaDefinitionNode(
            directives=(),
            operation_types=(
                OperationTypeDefinitionNode(
                    operation=OperationType.QUERY, type=NamedTypeNode(name=NameNode(value=full.query_type.name))
                ),
                OperationTypeDefinitionNode(
                    operation=OperationType.MUTATION, type=NamedTypeNode(name=NameNode(value=full.mutation_type.name))
                ),
            ),
        )
    ]
    for directive_name in CLIENT_DIRECTIVES:
        directive = full.get_directive(directive_name)
        if directive is not None and directive.ast_node is not None:
            node = directive.ast_node
            arguments = tuple(_input_value(a) for a in node.arguments or ())
            definitions.append(_replace(node, description=None, arguments=arguments))
    builtin_scalars = {"String", "Int", "Float", "Boolean", "ID"}
    for name, fields in sorted(kept.items()):
        type_ = full.type_map[name]
        if isinstance(type_, GraphQLScalarType) and name in builtin_scalars:
            continue
        if isinstance(type_, GraphQLEnumType) and name.startswith("__"):
            continue
        definitions.append(pruned_definition(type_, fields, names))
    document = DocumentNode(definitions=tuple(definitions))
    pruned = build_schema(print_ast(document))
    return print_schema(pruned) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else DEFAULT_SOURCE
    sdl = prune(source.read_text(encoding="utf-8"))
    OUTPUT.write_text(sdl, encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(sdl)} bytes) from {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
