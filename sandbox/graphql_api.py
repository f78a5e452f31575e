"""The Admin GraphQL endpoint: token check, validation, cost and throttle, execution against the pruned schema,
and the resolvers that map store records to the schema's types.

Resolvers are looked up per (type, field) in `RESOLVERS`; a field without an entry reads the record's snake_case
attribute. Mutations call the functions of `store.py` and turn their `StoreUserError`s into `userErrors` and
`ResourceNotFound` into a top-level RESOURCE_NOT_FOUND error.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSyntaxError,
    build_schema,
    execute,
    get_named_type,
    get_operation_ast,
    parse,
    validate,
)

from sandbox import inventory as inv
from sandbox import inventory_api
from sandbox import store as st
from sandbox import webhook_subscriptions as wh
from sandbox.cost import MAX_QUERY_COST, LeakyBucket, actual_cost, requested_cost
from sandbox.model import (
    APP,
    CLOSED,
    FINISHED,
    ON_HOLD,
    Actor,
    AppInstall,
    Fulfillment,
    FulfillmentEvent,
    FulfillmentHold,
    FulfillmentLineItem,
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    LineItem,
    Location,
    MerchantRequest,
    Order,
    ResourceNotFound,
    Shop,
    StoreUserError,
    WebhookSubscription,
    each_error,
    gid,
    parse_id,
)
from sandbox.payloads import iso
from sandbox.validation import global_id_errors, operation_name_error, validation_errors, variable_errors

logger = logging.getLogger("sandbox.graphql")

SCHEMA_PATH = Path(__file__).with_name("schema.graphql")
UNAUTHORIZED_MESSAGE = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
MAX_PAGE = 250

bp = Blueprint("graphql_api", __name__)


# ---------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------


def _parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise GraphQLError(f"DateTime cannot represent value: {value!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise GraphQLError(f"Invalid DateTime: {value!r}") from exc


@functools.cache
def load_schema() -> GraphQLSchema:
    """The pruned schema, with DateTime read and written as ISO 8601 like the store's (built once per process:
    it is never changed after this)."""
    schema = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))
    date_time = schema.type_map["DateTime"]
    assert isinstance(date_time, GraphQLScalarType)
    date_time.coerce_output_value = lambda v: iso(v) if isinstance(v, datetime) else v
    date_time.coerce_input_value = _parse_datetime
    date_time.coerce_input_literal = lambda node, *_: _parse_datetime(getattr(node, "value", None))
    return schema


# ---------------------------------------------------------------------------------------------------------
# Execution context and helpers
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Context:
    shop: Shop
    actor: Actor
    api_key: str
    api_version: str = "unstable"  # the version answering the request (see `served_version`)


def _ctx(info: GraphQLResolveInfo) -> Context:
    return info.context


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def field_resolver(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """Every field goes through here: the type's resolver if any, else the record's attribute."""
    resolver = RESOLVERS.get(info.parent_type.name, {}).get(info.field_name)
    if resolver is not None:
        result = resolver(source, info, **args)
    elif isinstance(source, dict):
        result = source.get(info.field_name)
    else:
        result = getattr(source, _snake(info.field_name), None)
    named = get_named_type(info.return_type)
    if info.field_name == "code" and isinstance(named, GraphQLEnumType) and result not in named.values:
        # Store errors carry one code; a payload whose enum lacks it reports none rather than failing.
        result = None
    return result


TYPE_NAMES = {
    FulfillmentOrder: "FulfillmentOrder",
    Order: "Order",
    LineItem: "LineItem",
    Location: "Location",
    Fulfillment: "Fulfillment",
    FulfillmentOrderLineItem: "FulfillmentOrderLineItem",
    FulfillmentEvent: "FulfillmentEvent",
    FulfillmentHold: "FulfillmentHold",
    FulfillmentLineItem: "FulfillmentLineItem",
    MerchantRequest: "FulfillmentOrderMerchantRequest",
    WebhookSubscription: "WebhookSubscription",
    Shop: "Shop",
}


def type_resolver(value: Any, info: GraphQLResolveInfo, abstract_type: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("__typename")
    return TYPE_NAMES.get(type(value))


def _cursor(id_: int) -> str:
    return base64.b64encode(json.dumps({"last_id": id_}).encode()).decode()


def _cursor_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(json.loads(base64.b64decode(cursor))["last_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor: {cursor}") from exc


def connection(
    items: Sequence[Any],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    reverse: bool | None = False,
    key: Callable[[Any], int] = lambda item: item.id,
    **_: Any,
) -> dict[str, Any]:
    """Cursor pagination over records ordered by id (cursor = the last id seen)."""
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    ordered = sorted(items, key=key, reverse=bool(reverse))
    after_id, before_id = _cursor_id(after), _cursor_id(before)
    start, end = 0, len(ordered)
    if after_id is not None:
        start = next((i for i, item in enumerate(ordered) if _beyond(key(item), after_id, reverse)), len(ordered))
    if before_id is not None:
        end = next((i for i, item in enumerate(ordered) if not _beyond(before_id, key(item), reverse)), len(ordered))
        end = max(end, start)
    window = ordered[start:end]
    has_next = end < len(ordered)
    has_previous = start > 0
    if first is not None:
        size = max(0, min(first, MAX_PAGE))
        has_next = has_next or len(window) > size
        window = window[:size]
    if last is not None:
        size = max(0, min(last, MAX_PAGE))
        has_previous = has_previous or len(window) > size
        window = window[-size:] if size else []
    edges = [{"cursor": _cursor(key(item)), "node": item} for item in window]
    return {
        "edges": edges,
        "nodes": window,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _beyond(value: int, cursor: int, reverse: bool | None) -> bool:
    return value < cursor if reverse else value > cursor


def _find(records: dict[int, Any], value: Any, kind: str) -> Any:
    id_ = parse_id(value, kind)
    return records.get(id_) if id_ is not None else None


# ---------------------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------------------


def q_assigned(
    _: Any,
    info: GraphQLResolveInfo,
    assignmentStatus: str | None = None,
    locationIds: list[str] | None = None,
    **page: Any,
) -> dict[str, Any]:
    ctx = _ctx(info)
    ids = [i for i in (parse_id(x, "Location") for x in locationIds or []) if i is not None] or None
    return connection(st.assigned_fulfillment_orders(ctx.shop, ctx.actor, assignmentStatus, ids), **page)


def q_fulfillment_orders(
    _: Any, info: GraphQLResolveInfo, includeClosed: bool | None = False, query: str | None = None, **page: Any
) -> dict[str, Any]:
    shop = _ctx(info).shop
    # The one search term the sandbox reads: `status:<status>` (any case), which finds closed ones when asked.
    match = re.search(r"\bstatus:(\w+)", query or "")
    wanted = match.group(1).upper() if match else None
    found = [
        fo
        for fo in shop.fulfillment_orders.values()
        if (wanted is None or fo.status == wanted) and (includeClosed or wanted or fo.status not in FINISHED)
    ]
    return connection(found, **page)


def q_locations(
    _: Any,
    info: GraphQLResolveInfo,
    includeLegacy: bool | None = False,
    includeInactive: bool | None = False,
    **page: Any,
) -> dict[str, Any]:
    shop = _ctx(info).shop
    # Fulfillment-service locations are "legacy" locations: listed only when asked for.
    found = [
        loc
        for loc in shop.locations.values()
        if (includeInactive or loc.is_active) and (includeLegacy or loc.fulfillment_service_id is None)
    ]
    return connection(found, **page)


def q_location(_: Any, info: GraphQLResolveInfo, id: str | None = None) -> Location | None:
    shop = _ctx(info).shop
    if id is None:
        return shop.locations[min(i for i, loc in shop.locations.items() if loc.fulfillment_service_id is None)]
    return _find(shop.locations, id, "Location")


def q_webhooks(
    _: Any,
    info: GraphQLResolveInfo,
    topics: list[str] | None = None,
    uri: str | None = None,
    callbackUrl: str | None = None,
    format: str | None = None,
    query: str | None = None,
    sortKey: str | None = None,
    **page: Any,
) -> dict[str, Any]:
    ctx = _ctx(info)
    found = wh.list_webhook_subscriptions(ctx.shop, ctx.actor, topics, uri or callbackUrl, format, query)
    return connection(found, **page)


def q_webhooks_count(_: Any, info: GraphQLResolveInfo, query: str | None = None, limit: int | None = 10000) -> dict:
    ctx = _ctx(info)
    count = len(wh.list_webhook_subscriptions(ctx.shop, ctx.actor, query=query))
    if limit is not None and count > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": count, "precision": "EXACT"}


NODE_KINDS: dict[str, Callable[[Shop], dict[int, Any]]] = {
    "FulfillmentOrder": lambda s: s.fulfillment_orders,
    "Order": lambda s: s.orders,
    "Fulfillment": lambda s: s.fulfillments,
    "Location": lambda s: s.locations,
    "LineItem": lambda s: s.line_items,
    "WebhookSubscription": lambda s: s.webhook_subscriptions,
}


def q_node(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    shop = _ctx(info).shop
    match = re.match(r"^gid://shopify/(\w+)/(\d+)", id or "")
    if not match:
        return None
    kind, number = match.group(1), int(match.group(2))
    if kind == "Shop":
        return shop if number == shop.id else None
    if kind == "FulfillmentOrderLineItem":
        return next((li for fo in shop.fulfillment_orders.values() for li in fo.line_items if li.id == number), None)
    records = NODE_KINDS.get(kind)
    return records(shop).get(number) if records else None


# ---------------------------------------------------------------------------------------------------------
# Object fields
# ---------------------------------------------------------------------------------------------------------


def _app(info: GraphQLResolveInfo, install_id: str | None) -> dict[str, Any] | None:
    if install_id is None:
        return None
    install: AppInstall | None = _ctx(info).shop.installs.get(install_id)
    return {
        "id": gid("App", install_id),
        "title": "Fulfillment service app",
        "handle": "fulfillment-service",
        "apiKey": _ctx(info).api_key,
        "installed": install is not None,
    }


def _assigned_location(fo: FulfillmentOrder, info: GraphQLResolveInfo) -> dict[str, Any]:
    location = st.location_record(_ctx(info).shop, fo.location_id)
    address = location.address
    return {
        "name": location.name,
        "location": location,
        "countryCode": address.country_code or "NO",
        "address1": address.address1,
        "address2": address.address2,
        "city": address.city,
        "province": address.province,
        "zip": address.zip,
        "phone": address.phone,
    }


def _destination(fo: FulfillmentOrder, info: GraphQLResolveInfo) -> dict[str, Any]:
    address = _ctx(info).shop.orders[fo.order_id].shipping_address
    return {
        "__typename": "FulfillmentOrderDestination",
        "id": gid("FulfillmentOrderDestination", fo.id),
        "firstName": address.first_name,
        "lastName": address.last_name,
        "company": address.company,
        "address1": address.address1,
        "address2": address.address2,
        "city": address.city,
        "province": address.province,
        "countryCode": address.country_code,
        "zip": address.zip,
        "phone": address.phone,
        "email": address.email,
        "location": None,
    }


def _read_alone(info: GraphQLResolveInfo) -> bool:
    """Whether this fulfillment order was asked for by id at the root (`fulfillmentOrder(id:)`). The store leaves
    MERGE out of its supportedActions there, though the same fulfillment order read through its order, `nodes`
    or a mutation's payload offers it (as recorded)."""
    path = info.path.as_list()  # [root key, "supportedActions"] for the fulfillment order the root answers
    if len(path) != 2:
        return False
    root_key = path[0]
    for selection in info.operation.selection_set.selections:
        key = getattr(selection, "alias", None) or getattr(selection, "name", None)
        if key is not None and key.value == root_key:
            return selection.name.value == "fulfillmentOrder"
    return False


def _money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
    """A MoneyBag in one currency (the sandbox's orders are presented in the shop's currency)."""
    money = {"amount": st.money(amount), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def q_return_calculate(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any] | None:
    found = st.calculate_return(_ctx(info).shop, input)
    if found is None:
        return None
    order, lines = found
    fee = (input.get("returnShippingFee") or {}).get("amount")
    return {
        "id": gid("CalculatedReturn", str(uuid.uuid4())),
        "returnLineItems": [
            {
                "id": None,
                "fulfillmentLineItem": line.fulfillment_line,
                "quantity": line.quantity,
                "restockingFee": None
                if line.restocking_percentage is None
                else {
                    "id": gid("CalculatedRestockingFee", str(uuid.uuid4())),
                    "percentage": line.restocking_percentage,
                    "amountSet": _money_bag(line.restocking_fee, order.currency),
                },
                "subtotalBeforeOrderDiscountsSet": _money_bag(line.subtotal, order.currency),
                "subtotalSet": _money_bag(line.subtotal, order.currency),
                "totalTaxSet": _money_bag(Decimal(0), order.currency),  # the sandbox charges no tax
            }
            for line in lines
        ],
        "returnShippingFee": None
        if fee is None
        else {
            "id": gid("CalculatedReturnShippingFee", str(uuid.uuid4())),
            "amountSet": _money_bag(Decimal(str(fee.get("amount") or 0)), order.currency),
        },
    }


def _may_read_apps(info: GraphQLResolveInfo) -> bool:
    """Staff may; an app only with the `read_apps` scope, as the store checks for FulfillmentHold.heldByApp."""
    ctx = _ctx(info)
    if not ctx.actor.is_app:
        return True
    install = ctx.shop.installs.get(ctx.actor.install_id or "")
    return install is not None and "read_apps" in {s.strip() for s in install.scopes.split(",")}


def _access_denied(info: GraphQLResolveInfo) -> None:
    raise GraphQLError(
        f"Access denied for {info.field_name} field. Required access: `read_apps` access scope.",
        extensions={
            "code": "ACCESS_DENIED",
            "documentation": "https://shopify.dev/api/usage/access-scopes",
            "requiredAccess": "`read_apps` access scope.",
        },
    )


def _gid(kind: str) -> Callable[..., str]:
    return lambda record, info, **_: gid(kind, record.id)


def _line(info: GraphQLResolveInfo, line_item_id: int) -> LineItem:
    return _ctx(info).shop.line_items[line_item_id]


RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "QueryRoot": {
        "shop": lambda _, info: _ctx(info).shop,
        "assignedFulfillmentOrders": q_assigned,
        "fulfillmentOrder": lambda _, info, id: _find(_ctx(info).shop.fulfillment_orders, id, "FulfillmentOrder"),
        "fulfillmentOrders": q_fulfillment_orders,
        "order": lambda _, info, id: _find(_ctx(info).shop.orders, id, "Order"),
        "orders": lambda _, info, **page: connection(list(_ctx(info).shop.orders.values()), **page),
        "location": q_location,
        "locations": q_locations,
        "fulfillment": lambda _, info, id: st.find_fulfillment(_ctx(info).shop, id),
        "fulfillmentService": lambda _, info, id: st.find_service(_ctx(info).shop, id),
        "webhookSubscription": lambda _, info, id: wh.own_subscription(_ctx(info).shop, _ctx(info).actor, id),
        "webhookSubscriptions": q_webhooks,
        "webhookSubscriptionsCount": q_webhooks_count,
        "node": q_node,
        "nodes": lambda _, info, ids: [q_node(_, info, i) for i in ids],
        "products": lambda _, info, query=None, **page: connection(list(_ctx(info).shop.products.values()), **page),
        # The sandbox takes no returns (its orders' `returns` are empty), so every id names none.
        "return": lambda _, info, id: None,
        "returnableFulfillments": lambda _, info, orderId, **page: connection(
            st.returnable_fulfillments(_ctx(info).shop, orderId), **page
        ),
        "returnCalculate": q_return_calculate,
        "manualHoldsFulfillmentOrders": lambda _, info, query=None, **page: connection(
            [fo for fo in _ctx(info).shop.fulfillment_orders.values() if fo.status == ON_HOLD], **page
        ),
    },
    "Shop": {
        "id": _gid("Shop"),
        "myshopifyDomain": lambda shop, info: shop.domain,
        "assignedFulfillmentOrders": q_assigned,
        "fulfillmentServices": lambda shop, info: st.fulfillment_services(shop),
    },
    "FulfillmentOrder": {
        "id": _gid("FulfillmentOrder"),
        "orderId": lambda fo, info: gid("Order", fo.order_id),
        "orderName": lambda fo, info: _ctx(info).shop.orders[fo.order_id].name,
        "order": lambda fo, info: _ctx(info).shop.orders[fo.order_id],
        "orderProcessedAt": lambda fo, info: _ctx(info).shop.orders[fo.order_id].created_at,
        "assignedLocation": _assigned_location,
        "destination": _destination,
        "fulfillmentHolds": lambda fo, info: fo.holds,
        "supportedActions": lambda fo, info: [
            {"action": a, "externalUrl": None}
            for a in st.supported_actions(_ctx(info).shop, fo, _ctx(info).api_version)
            if a != "MERGE" or not _read_alone(info)
        ],
        "lineItems": lambda fo, info, **page: connection(fo.line_items, **page),
        "merchantRequests": lambda fo, info, kind=None, **page: connection(
            [r for r in fo.merchant_requests if kind is None or r.kind == kind], **page
        ),
        "fulfillments": lambda fo, info, **page: connection(
            [_ctx(info).shop.fulfillments[i] for i in fo.fulfillment_ids], **page
        ),
    },
    "FulfillmentOrderLineItem": {
        "id": _gid("FulfillmentOrderLineItem"),
        "sku": lambda li, info: _line(info, li.line_item_id).sku,
        "productTitle": lambda li, info: _line(info, li.line_item_id).title,
        "variantTitle": lambda li, info: _line(info, li.line_item_id).variant_title,
        "vendor": lambda li, info: _line(info, li.line_item_id).vendor,
        "requiresShipping": lambda li, info: _line(info, li.line_item_id).requires_shipping,
        "lineItem": lambda li, info: _line(info, li.line_item_id),
        "inventoryItemId": lambda li, info: None,
    },
    "FulfillmentOrderMerchantRequest": {
        "id": _gid("FulfillmentOrderMerchantRequest"),
        "fulfillmentOrder": lambda r, info: _ctx(info).shop.fulfillment_orders[r.fulfillment_order_id],
    },
    "FulfillmentHold": {
        "id": _gid("FulfillmentHold"),
        "heldByApp": lambda h, info: _app(info, h.held_by_install) if _may_read_apps(info) else _access_denied(info),
        "heldByRequestingApp": lambda h, info: (
            h.held_by_install is not None and h.held_by_install == _ctx(info).actor.install_id
        ),
        "displayReason": lambda h, info: h.reason.replace("_", " ").capitalize(),
    },
    "LineItem": {
        "id": _gid("LineItem"),
        "currentQuantity": lambda li, info: li.current_quantity,
        "unfulfilledQuantity": lambda li, info: li.current_quantity - st.fulfilled_quantity(_ctx(info).shop, li),
        "fulfillableQuantity": lambda li, info: st.fulfillable_quantity(_ctx(info).shop, li),
        "taxLines": lambda li, info, first=None: [],  # the sandbox charges no tax
        "variant": lambda li, info: inv.variant_for_sku(_ctx(info).shop, li.sku),
        "originalUnitPriceSet": lambda li, info: _money_bag(
            Decimal(li.price), _ctx(info).shop.orders[li.order_id].currency
        ),
    },
    "Location": {
        "id": _gid("Location"),
        "fulfillmentService": lambda loc, info: _ctx(info).shop.services.get(loc.fulfillment_service_id or -1),
        "isFulfillmentService": lambda loc, info: loc.fulfillment_service_id is not None,
        # A service's location always takes online orders; a merchant's may opt out.
        "fulfillsOnlineOrders": lambda loc, info: (
            loc.fulfillment_service_id is not None or getattr(loc, "fulfills_online_orders", True)
        ),
        # The store's fallback shipping origin: only the shop's primary location (never a service's).
        "shipsInventory": lambda loc, info: loc is st.primary_location(_ctx(info).shop),
    },
    "Fulfillment": {
        "id": _gid("Fulfillment"),
        "name": lambda f, info: f.graphql_name,
        "trackingInfo": lambda f, info, first=None: f.tracking[:first] if first else f.tracking,
        "fulfillmentLineItems": lambda f, info, **page: connection(f.line_items, **page),
        "events": lambda f, info, sortKey=None, **page: connection(f.events, **page),
        "order": lambda f, info: _ctx(info).shop.orders[f.order_id],
        "location": lambda f, info: _ctx(info).shop.locations.get(f.location_id),
        "fulfillmentOrders": lambda f, info, **page: connection(
            [_ctx(info).shop.fulfillment_orders[i] for i in f.fulfillment_order_ids], **page
        ),
        "totalQuantity": lambda f, info: f.total_quantity(),
        "requiresShipping": lambda f, info: True,
        "service": lambda f, info: st.service_at(_ctx(info).shop, f.location_id),
    },
    "FulfillmentLineItem": {
        "id": _gid("FulfillmentLineItem"),
        "lineItem": lambda fli, info: _line(info, fli.line_item_id),
    },
    # A returnable fulfillment is the fulfillment itself, its returnable lines all that it shipped.
    "ReturnableFulfillment": {
        "id": _gid("ReturnableFulfillment"),
        "fulfillment": lambda f, info: f,
        "returnableFulfillmentLineItems": lambda f, info, **page: connection(st.returnable_lines(f), **page),
    },
    "ReturnableFulfillmentLineItem": {"fulfillmentLineItem": lambda line, info: line},
    "FulfillmentEvent": {"id": _gid("FulfillmentEvent")},
    "Order": {
        "id": _gid("Order"),
        "displayFulfillmentStatus": lambda o, info: st.display_fulfillment_status(_ctx(info).shop, o),
        "lineItems": lambda o, info, **page: connection(o.line_items, **page),
        "fulfillmentOrders": lambda o, info, displayable=None, **page: connection(
            [
                fo
                for fo in (_ctx(info).shop.fulfillment_orders[i] for i in o.fulfillment_order_ids)
                if not displayable or fo.status != CLOSED or fo.fulfillment_ids
            ],
            **page,
        ),
        "fulfillments": lambda o, info, first=None, query=None: [
            _ctx(info).shop.fulfillments[i] for i in o.fulfillment_ids
        ][: first or None],
        "closed": lambda o, info: o.closed_at is not None,
        "processedAt": lambda o, info: o.created_at,
        "displayFinancialStatus": lambda o, info: st.display_financial_status(o),
        "totalPriceSet": lambda o, info: _money_bag(st.order_total(o), o.currency),
        "currentTotalPriceSet": lambda o, info: _money_bag(st.order_total(o), o.currency),
        "totalRefundedSet": lambda o, info: _money_bag(Decimal(0), o.currency),
        "currencyCode": lambda o, info: o.currency,
        "presentmentCurrencyCode": lambda o, info: o.currency,
        # The sandbox takes no returns: an order answers none.
        "returns": lambda o, info, **page: connection([], **page),
        "returnStatus": lambda o, info: "NO_RETURN",
    },
    "FulfillmentService": {
        "id": lambda s, info: s.graphql_id,
        "serviceName": lambda s, info: s.name,
        "location": lambda s, info: _ctx(info).shop.locations.get(s.location_id),
    },
    "WebhookSubscription": {
        "id": _gid("WebhookSubscription"),
        "legacyResourceId": lambda s, info: str(s.id),  # UnsignedInt64 is written as a string
        "callbackUrl": lambda s, info: s.uri,
        "endpoint": lambda s, info: wh.endpoint(s),
        "apiVersion": lambda s, info: _api_version(info),
    },
}


# ---------------------------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------------------------


def _api_version(info: GraphQLResolveInfo) -> dict[str, Any]:
    """The version webhooks are sent with: the app's configured one, here the version the request came at."""
    handle = request.view_args.get("version", "") if request.view_args else ""
    return {"handle": handle, "displayName": handle, "supported": True}


def _user_error(error: StoreUserError) -> dict[str, Any]:
    return {"field": error.field, "message": error.message, "code": error.code}


# Mutations the store answers with a userError, not RESOURCE_NOT_FOUND, when the id in this argument names nothing:
# mutation -> (argument path, userError field, message).
UNKNOWN_ID_USER_ERRORS: dict[str, tuple[tuple[str, ...], list[str], str]] = {
    "fulfillmentCancel": (("id",), ["id"], "Fulfillment not found."),
    "fulfillmentTrackingInfoUpdate": (("fulfillmentId",), ["fulfillmentId"], "Fulfillment does not exist."),
    "fulfillmentEventCreate": (
        ("fulfillmentEvent", "fulfillmentId"),
        ["fulfillmentEvent", "fulfillmentId"],
        "Fulfillment does not exist.",
    ),
    "fulfillmentServiceUpdate": (("id",), ["id"], "Fulfillment service could not be found."),
    "fulfillmentServiceDelete": (("id",), ["id"], "Fulfillment service could not be found."),
    "webhookSubscriptionDelete": (("id",), ["id"], "Webhook subscription does not exist"),
    "webhookSubscriptionUpdate": (("id",), ["id"], "Webhook subscription does not exist"),
}


def _unknown_id_user_error(name: str, args: dict[str, Any], missing: ResourceNotFound) -> dict[str, Any] | None:
    rule = UNKNOWN_ID_USER_ERRORS.get(name)
    if rule is None:
        return None
    path, field, message = rule
    value: Any = args
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    if str(value) != missing.resource_id:
        return None  # another id of the input (a destination, a line item) is the unknown one
    return {"field": field, "message": message, "code": None}


def mutation(name: str, action: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Run a store change: its payload on success, `userErrors` when refused, RESOURCE_NOT_FOUND for unknown ids
    (or the userError the store gives instead for that mutation)."""

    def resolve(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        ctx = _ctx(info)
        try:
            payload = action(ctx.shop, ctx.actor, **args)
        except StoreUserError as error:
            return {"userErrors": [_user_error(e) for e in each_error(error)]}
        except ResourceNotFound as missing:
            user_error = _unknown_id_user_error(name, args, missing)
            if user_error is not None:
                return {"userErrors": [user_error]}
            raise GraphQLError(str(missing), extensions={"code": "RESOURCE_NOT_FOUND"}) from missing
        payload.setdefault("userErrors", [])
        return payload

    return resolve


def _submit(
    shop: Shop,
    actor: Actor,
    id: str,
    message: str | None = None,
    notifyCustomer: bool | None = None,
    fulfillmentOrderLineItems: list[dict] | None = None,
) -> dict:
    result = st.submit_fulfillment_request(shop, id, message, notifyCustomer, fulfillmentOrderLineItems, actor)
    return {
        "originalFulfillmentOrder": result.original,
        "submittedFulfillmentOrder": result.submitted,
        "unsubmittedFulfillmentOrder": result.unsubmitted,
    }


def _submit_cancellation(shop: Shop, actor: Actor, id: str, message: str | None = None) -> dict:
    before = st.get_fulfillment_order(shop, id).request_status
    fo = st.submit_cancellation_request(shop, id, message, actor)
    # The store's payload shows the request status from before the change (recorded: ACCEPTED); reads after it
    # show CANCELLATION_REQUESTED, as documented.
    return {"fulfillmentOrder": dataclasses.replace(fo, request_status=before)}


def _order_cancel(
    shop: Shop, actor: Actor, orderId: str, reason: str, restock: bool, staffNote: str | None = None, **_: Any
) -> dict:
    try:
        st.cancel_order(shop, orderId, reason, staffNote)
    except StoreUserError as error:
        plain = {"field": error.field, "message": error.message}
        return {"job": None, "orderCancelUserErrors": [{**plain, "code": error.code}], "userErrors": [plain]}
    except ResourceNotFound:
        plain = {"field": ["orderId"], "message": "Order does not exist"}
        return {"job": None, "orderCancelUserErrors": [{**plain, "code": "NOT_FOUND"}], "userErrors": [plain]}
    # The store cancels in a background job; the sandbox has already done it.
    return {"job": {"id": gid("Job", str(uuid.uuid4())), "done": False}, "orderCancelUserErrors": []}


def _order_create(shop: Shop, actor: Actor, order: dict, options: dict | None = None) -> dict:
    try:
        made = st.create_order_from_input(shop, order)
    except StoreUserError as error:
        # The sandbox's own checks name its merchant API's fields; the mutation names its input's.
        field = ["order", "lineItems", *error.field[1:]] if error.field and error.field[0] == "line_items" else None
        return {"order": None, "userErrors": [{"field": field, "message": error.message, "code": "INVALID"}]}
    return {"order": made, "userErrors": []}


def _return_not_found(shop: Shop, actor: Actor, *, field: list[str], **_: Any) -> dict:
    st.find_return(shop, None, field)
    return {}


def _cancel(shop: Shop, actor: Actor, id: str) -> dict:
    original, replacement = st.cancel_fulfillment_order(shop, id, actor)
    return {"fulfillmentOrder": original, "replacementFulfillmentOrder": replacement}


def _move(
    shop: Shop, actor: Actor, id: str, newLocationId: str, fulfillmentOrderLineItems: list[dict] | None = None
) -> dict:
    result = st.move_fulfillment_order(shop, id, newLocationId, fulfillmentOrderLineItems, actor)
    return {
        "movedFulfillmentOrder": result.moved,
        "originalFulfillmentOrder": result.original,
        "remainingFulfillmentOrder": result.remaining,
    }


def _hold(shop: Shop, actor: Actor, id: str, fulfillmentHold: dict) -> dict:
    result = st.hold_fulfillment_order(shop, id, fulfillmentHold, actor)
    return {
        "fulfillmentHold": result.hold,
        "fulfillmentOrder": result.fulfillment_order,
        "remainingFulfillmentOrder": result.remaining,
    }


def _split(shop: Shop, actor: Actor, fulfillmentOrderSplits: list[dict]) -> dict:
    results = st.split_fulfillment_orders(shop, fulfillmentOrderSplits, actor)
    return {
        "fulfillmentOrderSplits": [
            {
                "fulfillmentOrder": r.fulfillment_order,
                "remainingFulfillmentOrder": r.remaining,
                "replacementFulfillmentOrder": r.replacement,
            }
            for r in results
        ]
    }


def _config() -> Any:
    return current_app.extensions["sandbox"].config


def _service_create(
    shop: Shop,
    actor: Actor,
    name: str,
    callbackUrl: str | None = None,
    trackingSupport: bool | None = None,
    inventoryManagement: bool | None = None,
    requiresShippingMethod: bool | None = None,
    **_: Any,
) -> dict:
    service = st.create_fulfillment_service(
        shop,
        name,
        callbackUrl,
        trackingSupport,
        inventoryManagement,
        requiresShippingMethod,
        actor,
        allowed_hosts=_config().app_hosts,
    )
    return {"fulfillmentService": service}


def _service_delete(
    shop: Shop, actor: Actor, id: str, destinationLocationId: str | None = None, inventoryAction: str | None = None
) -> dict:
    # The deleted id is the plain gid, without the `?id=true` the service's own id carries.
    deleted = st.delete_fulfillment_service(shop, id, destinationLocationId, inventoryAction, actor)
    return {"deletedId": gid("FulfillmentService", deleted)}


def _fulfillment_create(shop: Shop, actor: Actor, fulfillment: dict, message: str | None = None) -> dict:
    created = st.create_fulfillment(
        shop,
        fulfillment.get("lineItemsByFulfillmentOrder") or [],
        fulfillment.get("trackingInfo"),
        fulfillment.get("notifyCustomer"),
        message,
        actor,
        origin_address=fulfillment.get("originAddress"),
    )
    return {"fulfillment": created}


def _tracking_update(
    shop: Shop, actor: Actor, fulfillmentId: str, trackingInfoInput: dict, notifyCustomer: bool | None = None
) -> dict:
    return {"fulfillment": st.update_tracking(shop, fulfillmentId, trackingInfoInput, notifyCustomer, actor)}


MUTATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "fulfillmentServiceCreate": _service_create,
    "fulfillmentServiceUpdate": lambda shop, actor, id, **changes: {
        "fulfillmentService": st.update_fulfillment_service(shop, id, changes, actor, _config().app_hosts)
    },
    "fulfillmentServiceDelete": _service_delete,
    "fulfillmentOrderAcceptFulfillmentRequest": lambda shop, actor, id, message=None, estimatedShippedAt=None: {
        "fulfillmentOrder": st.accept_fulfillment_request(shop, id, message, estimatedShippedAt, actor)
    },
    "fulfillmentOrderRejectFulfillmentRequest": lambda shop, actor, id, reason=None, message=None, lineItems=None: {
        "fulfillmentOrder": st.reject_fulfillment_request(shop, id, reason, message, lineItems, actor)
    },
    "fulfillmentOrderAcceptCancellationRequest": lambda shop, actor, id, message=None: {
        "fulfillmentOrder": st.accept_cancellation_request(shop, id, message, actor)
    },
    "fulfillmentOrderRejectCancellationRequest": lambda shop, actor, id, message=None: {
        "fulfillmentOrder": st.reject_cancellation_request(shop, id, message, actor)
    },
    "fulfillmentCreate": _fulfillment_create,
    "fulfillmentCreateV2": _fulfillment_create,  # deprecated, still served; the same input
    "fulfillmentCancel": lambda shop, actor, id: {"fulfillment": st.cancel_fulfillment(shop, id, actor)},
    "fulfillmentTrackingInfoUpdate": _tracking_update,
    "fulfillmentTrackingInfoUpdateV2": _tracking_update,
    "fulfillmentEventCreate": lambda shop, actor, fulfillmentEvent: {
        "fulfillmentEvent": st.create_fulfillment_event(shop, fulfillmentEvent, actor)
    },
    "fulfillmentOrderReportProgress": lambda shop, actor, id, progressReport=None: {
        "fulfillmentOrder": st.report_progress(shop, id, (progressReport or {}).get("reasonNotes"), actor)
    },
    "fulfillmentOrderClose": lambda shop, actor, id, message=None: {
        "fulfillmentOrder": st.close_fulfillment_order(shop, id, message, actor)
    },
    "webhookSubscriptionCreate": lambda shop, actor, topic, webhookSubscription: {
        "webhookSubscription": wh.create_webhook_subscription(shop, topic, webhookSubscription, actor, _config().app_id)
    },
    "webhookSubscriptionUpdate": lambda shop, actor, id, webhookSubscription: {
        "webhookSubscription": wh.update_webhook_subscription(shop, id, webhookSubscription, actor, _config().app_id)
    },
    "webhookSubscriptionDelete": lambda shop, actor, id: {
        "deletedWebhookSubscriptionId": gid("WebhookSubscription", wh.delete_webhook_subscription(shop, id, actor))
    },
    "fulfillmentOrderSubmitFulfillmentRequest": _submit,
    "fulfillmentOrderSubmitCancellationRequest": _submit_cancellation,
    "fulfillmentOrderCancel": _cancel,
    "fulfillmentOrderMove": _move,
    "fulfillmentOrderHold": _hold,
    "fulfillmentOrderReleaseHold": lambda shop, actor, id, holdIds=None, externalId=None: {
        "fulfillmentOrder": st.release_hold(shop, id, holdIds, actor)
    },
    "fulfillmentOrderSplit": _split,
    "fulfillmentOrderMerge": lambda shop, actor, fulfillmentOrderMergeInputs: {
        "fulfillmentOrderMerges": [
            {"fulfillmentOrder": fo} for fo in st.merge_fulfillment_orders(shop, fulfillmentOrderMergeInputs, actor)
        ]
    },
    "fulfillmentOrderOpen": lambda shop, actor, id: {"fulfillmentOrder": st.open_fulfillment_order(shop, id, actor)},
    "fulfillmentOrderReschedule": lambda shop, actor, id, fulfillAt: {
        "fulfillmentOrder": st.reschedule_fulfillment_order(shop, id, fulfillAt, actor)
    },
    "fulfillmentOrdersSetFulfillmentDeadline": lambda shop, actor, fulfillmentOrderIds, fulfillmentDeadline: {
        "success": bool(st.set_fulfillment_deadline(shop, fulfillmentOrderIds, fulfillmentDeadline, actor))
    },
    "orderCancel": _order_cancel,
    "orderCreate": _order_create,
    "fulfillmentOrdersReroute": lambda shop, actor, fulfillmentOrderIds, includedLocationIds=None, **rest: {
        "movedFulfillmentOrders": st.reroute_fulfillment_orders(
            shop, fulfillmentOrderIds, includedLocationIds, rest.get("excludedLocationIds"), actor
        )
    },
    **{
        name: functools.partial(_return_not_found, field=field)
        for name, field in (
            ("returnApproveRequest", ["input", "id"]),
            ("returnDeclineRequest", ["input", "id"]),
            ("returnCancel", ["id"]),
            ("returnClose", ["id"]),
            ("returnReopen", ["id"]),
            ("returnProcess", ["input", "returnId"]),
            ("removeFromReturn", ["returnId"]),
        )
    },
    "fulfillmentOrderLineItemsPreparedForPickup": lambda shop, actor, input: (
        st.prepared_for_pickup(shop, input.get("lineItemsByFulfillmentOrder") or [], actor) or {}
    ),
}
RESOLVERS["Mutation"] = {name: mutation(name, action) for name, action in MUTATIONS.items()}
RESOLVERS["FulfillmentService"]["callbackUrl"] = lambda s, info: s.callback_url
inventory_api.register(RESOLVERS, TYPE_NAMES, NODE_KINDS, connection)


# ---------------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------------


class Buckets:
    """One leaky bucket per (shop, caller), sized from the shop's plan or its override."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], LeakyBucket] = {}

    def get(self, shop: Shop, caller: str) -> LeakyBucket:
        key = (shop.domain, caller)
        bucket = self._buckets.get(key)
        if bucket is None or (bucket.maximum, bucket.restore_rate) != (shop.maximum_available, shop.restore_rate):
            bucket = LeakyBucket(shop.maximum_available, shop.restore_rate, self._clock)
            self._buckets[key] = bucket
        return bucket


def _cost_extension(requested: int, actual: int | None, bucket: LeakyBucket) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": bucket.status().as_graphql(),
        }
    }


def _shop_matches(shop: Shop, name: str | None) -> bool:
    return name is None or name in (shop.domain, shop.domain.split(".", 1)[0])


# The version whose schema the sandbox serves, and the store's window of supported versions ending with it (a
# year of quarterly releases). A request at an older released version is answered as the oldest supported one, as
# the store falls forward; a version string the store never released is not found.
SCHEMA_VERSION = "2026-07"
SUPPORTED_VERSIONS = ("2025-10", "2026-01", "2026-04", SCHEMA_VERSION)
FIRST_VERSION = "2019-04"
_VERSION = re.compile(r"^\d{4}-(01|04|07|10)$")


def served_version(version: str) -> str | None:
    """The version a request at `version` is answered with, or None when the store has no such version."""
    if version == "unstable":
        return version
    if not _VERSION.match(version) or not FIRST_VERSION <= version <= SCHEMA_VERSION:
        return None
    return max(version, SUPPORTED_VERSIONS[0])


@bp.post("/store/<shop_name>/admin/api/<version>/graphql.json")
@bp.post("/admin/api/<version>/graphql.json")
def graphql_endpoint(version: str, shop_name: str | None = None) -> Any:
    served = served_version(version)
    if served is None:
        return jsonify({"errors": "Not Found"}), 404
    response = _graphql(served, shop_name)
    response = current_app.make_response(response)
    response.headers["X-Shopify-API-Version"] = served
    return response


def _graphql(version: str, shop_name: str | None) -> Any:
    sandbox = current_app.extensions["sandbox"]
    store: st.Store = sandbox.store
    owner = store.owner_of(request.headers.get("X-Shopify-Access-Token"))
    shop = store.shops.get(owner.shop_domain) if owner else None
    if owner is None or shop is None or not _shop_matches(shop, shop_name):
        return jsonify({"errors": UNAUTHORIZED_MESSAGE}), 401
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return jsonify({"errors": {"query": "Required parameter missing or invalid"}}), 400
    is_app = owner.actor.role == APP
    faults = shop.faults
    if is_app and faults.roll(faults.error_rate):
        status = faults.choice((500, 502, 503))
        return jsonify({"errors": "Internal Server Error" if status == 500 else "Service Unavailable"}), status
    if is_app and faults.roll(faults.timeout_rate):
        time.sleep(faults.timeout_s)
        return jsonify({"errors": "Gateway Timeout"}), 504
    schema: GraphQLSchema = sandbox.schema
    try:
        document = parse(body["query"])
    except GraphQLSyntaxError as error:
        return jsonify({"errors": [error.formatted]})
    # Refused before execution: errors only, no data and no cost, as the store answers.
    errors = validate(schema, document)
    if errors:
        return jsonify({"errors": validation_errors(schema, document, errors)})
    operation = get_operation_ast(document, body.get("operationName"))
    if operation is None:
        return jsonify({"errors": [operation_name_error(body.get("operationName"))]})
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        return jsonify({"errors": {"variables": "must be an object"}}), 400
    refused = variable_errors(schema, operation, variables) or global_id_errors(operation, variables)
    if refused:
        return jsonify({"errors": refused})
    requested = requested_cost(schema, document, operation, variables)
    bucket = sandbox.buckets.get(shop, owner.actor.install_id or "merchant")
    with store.lock:
        shop.requests += 1
    if requested > MAX_QUERY_COST:
        message = (
            f"Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\n"
            "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
            "cost of a query is calculated."
        )
        error = {
            "message": message,
            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST},
        }
        return jsonify({"errors": [error], "extensions": _cost_extension(requested, None, bucket)})
    if not bucket.take(requested):
        with store.lock:
            shop.throttled_requests += 1
        error = {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS}}
        return jsonify({"errors": [error], "extensions": _cost_extension(requested, None, bucket)})
    context = Context(shop=shop, actor=owner.actor, api_key=sandbox.config.api_key, api_version=version)
    with store.transaction(shop):
        result = execute(
            schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=body.get("operationName"),
            field_resolver=field_resolver,
            type_resolver=type_resolver,
        )
        actual = actual_cost(schema, document, operation, variables, result.data)
        shop.cost_charged += actual
    bucket.refund(requested - actual)
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [e.formatted for e in result.errors]
    answer["extensions"] = _cost_extension(requested, actual, bucket)
    named = operation.name.value if operation.name else None
    if is_app and (faults.take_lost_answer(named) or faults.roll(faults.lost_response_rate)):
        # The change is made; only the answer is lost, as when a proxy drops the connection.
        return jsonify({"errors": "Bad Gateway"}), 502
    return jsonify(answer)
