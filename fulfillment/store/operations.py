"""Every GraphQL document the app sends to a store, and one typed function per operation.

Callers get frozen dataclasses in the store's vocabulary and never index into raw JSON. The documents live
here together (registered in `DOCUMENTS`) so that one test can validate them all against the pinned schema.
Reads ask only for the fields the app uses, with small pages, because the requested cost is what the
rate-limit bucket must hold before the store runs a query. Mutations raise `UserErrors` when the store
refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from graphql import OperationDefinitionNode, parse

from fulfillment.store.client import StoreClient
from fulfillment.store.errors import NotFound, StoreError, UserError, UserErrors

logger = logging.getLogger("fulfillment.store")

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------
# What the functions return
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    """A fulfillment order line item: `id` is the fulfillment order line item's, `line_item_id` the order's
    line item's (the stable one: fulfillment order line item ids change when orders split or move)."""

    id: str
    line_item_id: str
    sku: str | None
    total_quantity: int
    remaining_quantity: int
    product_title: str


@dataclass(frozen=True)
class MerchantRequest:
    """A merchant's fulfillment or cancellation request, with the note they attached."""

    kind: str
    message: str | None
    sent_at: datetime | None
    request_options: Any


@dataclass(frozen=True)
class TrackingInfo:
    number: str | None
    company: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class FulfillmentLineItem:
    """`line_item_id` is the order line item's id (fulfillment order line item ids are not stable)."""

    line_item_id: str
    quantity: int


@dataclass(frozen=True)
class Fulfillment:
    id: str
    name: str
    status: str
    tracking: tuple[TrackingInfo, ...]
    line_items: tuple[FulfillmentLineItem, ...]


@dataclass(frozen=True)
class Destination:
    country_code: str | None
    province: str | None
    city: str | None
    zip: str | None
    address1: str | None
    address2: str | None
    first_name: str | None
    last_name: str | None


@dataclass(frozen=True)
class FulfillmentOrder:
    """A fulfillment order with everything the app acts on."""

    id: str
    status: str
    request_status: str
    order_id: str
    order_name: str
    assigned_location_id: str | None
    updated_at: datetime | None
    line_items: tuple[LineItem, ...]
    merchant_requests: tuple[MerchantRequest, ...]
    holds: tuple[str, ...]
    supported_actions: tuple[str, ...]
    fulfillments: tuple[Fulfillment, ...]
    destination: Destination | None


@dataclass(frozen=True)
class FulfillmentOrderSummary:
    """One row of the assigned-fulfillment-orders sweep: enough to decide whether to read the whole order."""

    id: str
    status: str
    request_status: str
    order_id: str
    order_name: str
    assigned_location_id: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class FulfillmentOrderState:
    """The cheap re-read before an irreversible step, and what every fulfillment-order mutation returns."""

    id: str
    status: str
    request_status: str
    assigned_location_id: str | None
    holds: tuple[str, ...]
    supported_actions: tuple[str, ...]
    # When the store last changed it: read by `fulfillment_order_status`, None from the other reads.
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    end_cursor: str | None
    has_next_page: bool


@dataclass(frozen=True)
class FulfillmentService:
    id: str
    location_id: str | None
    callback_url: str | None
    name: str
    # FulfillmentServiceType: THIRD_PARTY for apps' services; every shop also lists its built-in MANUAL one
    # (gid://shopify/FulfillmentService/manual, at the merchant's own "Shop location").
    type: str = "THIRD_PARTY"


@dataclass(frozen=True)
class ShopInfo:
    id: str
    name: str
    domain: str


@dataclass(frozen=True)
class InventoryItem:
    """An inventory item, with its `on_hand` at the location asked about (None: not stocked there)."""

    id: str
    sku: str | None
    on_hand: int | None


@dataclass(frozen=True)
class QuantitySet:
    """One entry of `inventorySetQuantities`: set the item's quantity at the location, if it is `change_from`."""

    inventory_item_id: str
    location_id: str
    quantity: int
    change_from: int | None


@dataclass(frozen=True)
class WebhookSubscription:
    id: str
    topic: str
    uri: str


# ---------------------------------------------------------------------------------------------------------
# The documents
# ---------------------------------------------------------------------------------------------------------

DOCUMENTS: dict[str, str] = {}


def _document(text: str) -> str:
    """Register a document under its (single) operation's name."""
    operations = [d for d in parse(text).definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].name is None:
        raise ValueError("each document holds exactly one named operation")
    name = operations[0].name.value
    if name in DOCUMENTS:
        raise ValueError(f"two documents named {name}")
    DOCUMENTS[name] = text
    return text


# Page sizes. A fulfillment order rarely has more than a handful of lines; the rest is fetched page by page.
# A listing is charged 2 + floor(2 ln first) x what its nodes cost, in proportion to how full the page came back,
# and an empty one 2 + floor(2 ln first). The sweep's list is all scalars (about a tenth of a point a fulfillment
# order at 100), and is mostly empty for a quiet shop, so its pages stay at 100.
SWEEP_PAGE = 100
# The listing of new requests carries what a decision needs (some 8 points a request): the largest page the store
# allows (250, multiplier 11) makes each listed request cheapest, for 2 points more when it comes back empty.
REQUESTED_PAGE = 250
# A request with more lines than this fetches the rest.
REQUESTED_LINE_ITEMS_PAGE = 10
REQUESTED_MERCHANT_REQUESTS_PAGE = 5
LINE_ITEMS_PAGE = 50
FULFILLMENTS_PAGE = 5
MERCHANT_REQUESTS_PAGE = 10
FULFILLMENT_LINE_ITEMS_PAGE = 10
WEBHOOKS_PAGE = 25

# What a mutation's answer gives back: scalars, which cost nothing (a mutation is priced 10 plus what its payload's
# objects select). Where the order now is and its holds are not asked for: an answered request stays with us.
_MUTATED_FULFILLMENT_ORDER_FIELDS = """
fragment MutatedFulfillmentOrderFields on FulfillmentOrder {
  id
  status
  requestStatus
}
"""

# The full re-read, for when the status read shows the fulfillment order left our hands (supported actions are
# implied by the statuses).
_FULFILLMENT_ORDER_STATE_FIELDS = """
fragment FulfillmentOrderStateFields on FulfillmentOrder {
  id
  status
  requestStatus
  assignedLocation { location { id } }
  fulfillmentHolds { reason }
}
"""

_FULFILLMENT_FIELDS = f"""
fragment FulfillmentFields on Fulfillment {{
  id
  name
  status
  trackingInfo {{ company number url }}
  fulfillmentLineItems(first: {FULFILLMENT_LINE_ITEMS_PAGE}) {{
    nodes {{ quantity lineItem {{ id }} }}
    pageInfo {{ hasNextPage }}
  }}
}}
"""

_LINE_ITEM_FIELDS = """
fragment LineItemFields on FulfillmentOrderLineItem {
  id
  sku
  totalQuantity
  remainingQuantity
  productTitle
  lineItem { id }
}
"""

ASSIGNED_FULFILLMENT_ORDERS = _document("""
query AssignedFulfillmentOrders(
  $assignmentStatus: FulfillmentOrderAssignmentStatus
  $locationIds: [ID!]
  $first: Int!
  $after: String
) {
  assignedFulfillmentOrders(
    assignmentStatus: $assignmentStatus
    locationIds: $locationIds
    first: $first
    after: $after
  ) {
    nodes {
      id
      status
      requestStatus
      orderId
      orderName
      updatedAt
    }
    pageInfo { hasNextPage endCursor }
  }
}
""")

# The sweep's list of new requests, with what deciding on each needs (lines, destination, the merchant's note):
# listed a page at a time, a request's details cost a fraction of a point, where reading each costs eight or more.
ASSIGNED_FULFILLMENT_ORDERS_TO_DECIDE = _document(
    f"""
query AssignedFulfillmentOrdersToDecide(
  $assignmentStatus: FulfillmentOrderAssignmentStatus
  $locationIds: [ID!]
  $first: Int!
  $after: String
) {{
  assignedFulfillmentOrders(
    assignmentStatus: $assignmentStatus
    locationIds: $locationIds
    first: $first
    after: $after
  ) {{
    nodes {{
      id
      status
      requestStatus
      orderId
      orderName
      updatedAt
      destination {{ countryCode province city zip address1 address2 firstName lastName }}
      lineItems(first: {REQUESTED_LINE_ITEMS_PAGE}) {{
        nodes {{ ...LineItemFields }}
        pageInfo {{ hasNextPage endCursor }}
      }}
      merchantRequests(first: {REQUESTED_MERCHANT_REQUESTS_PAGE}) {{
        nodes {{ kind message sentAt requestOptions }}
      }}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
    + _LINE_ITEM_FIELDS
)

_FULFILLMENT_ORDER_BODY = f"""
    id
    status
    requestStatus
    orderId
    orderName
    updatedAt
    assignedLocation {{ location {{ id }} }}
    destination {{ countryCode province city zip address1 address2 firstName lastName }}
    fulfillmentHolds {{ reason }}
    lineItems(first: {LINE_ITEMS_PAGE}) {{
      nodes {{ ...LineItemFields }}
      pageInfo {{ hasNextPage endCursor }}
    }}
    merchantRequests(first: {MERCHANT_REQUESTS_PAGE}) {{
      nodes {{ kind message sentAt requestOptions }}
    }}"""

FULFILLMENT_ORDER = _document(
    f"""
query FulfillmentOrder($id: ID!) {{
  fulfillmentOrder(id: $id) {{{_FULFILLMENT_ORDER_BODY}
    fulfillments(first: {FULFILLMENTS_PAGE}) {{
      nodes {{ ...FulfillmentFields }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
    + _LINE_ITEM_FIELDS
    + _FULFILLMENT_FIELDS
)

# The first read of a new request, to decide on it: everything but the fulfillments (an empty list still costs
# its connection's 2 points, and nothing of ours can have shipped yet).
FULFILLMENT_ORDER_TO_DECIDE = _document(
    f"""
query FulfillmentOrderToDecide($id: ID!) {{
  fulfillmentOrder(id: $id) {{{_FULFILLMENT_ORDER_BODY}
  }}
}}
"""
    + _LINE_ITEM_FIELDS
)

# The rest of a long fulfillment order, fetched only when the first read says there is more.
FULFILLMENT_ORDER_LINE_ITEMS = _document(
    f"""
query FulfillmentOrderLineItems($id: ID!, $after: String) {{
  fulfillmentOrder(id: $id) {{
    lineItems(first: {LINE_ITEMS_PAGE}, after: $after) {{
      nodes {{ ...LineItemFields }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
    + _LINE_ITEM_FIELDS
)

FULFILLMENT_ORDER_FULFILLMENTS = _document(
    f"""
query FulfillmentOrderFulfillments($id: ID!, $after: String) {{
  fulfillmentOrder(id: $id) {{
    fulfillments(first: {FULFILLMENTS_PAGE}, after: $after) {{
      nodes {{ ...FulfillmentFields }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
    + _FULFILLMENT_FIELDS
)

FULFILLMENT_ORDER_STATE = _document(
    """
query FulfillmentOrderState($id: ID!) {
  fulfillmentOrder(id: $id) { ...FulfillmentOrderStateFields }
}
"""
    + _FULFILLMENT_ORDER_STATE_FIELDS
)

# The re-read before an irreversible step: one point. While a request is with us (submitted to us, accepted, or
# a cancellation of it asked or refused) the store lets nobody move the fulfillment order or hold it, so its two
# statuses say all that can have changed; `updatedAt` tells whether a submitted request was changed since we read
# it. When they show it left our hands, `fulfillment_order_state` reads where it went and its holds.
FULFILLMENT_ORDER_STATUS = _document("""
query FulfillmentOrderStatus($id: ID!) {
  fulfillmentOrder(id: $id) { id status requestStatus updatedAt }
}
""")

ACCEPT_FULFILLMENT_REQUEST = _document(
    """
mutation FulfillmentOrderAcceptFulfillmentRequest($id: ID!, $message: String, $estimatedShippedAt: DateTime) {
  fulfillmentOrderAcceptFulfillmentRequest(
    id: $id
    message: $message
    estimatedShippedAt: $estimatedShippedAt
  ) {
    fulfillmentOrder { ...MutatedFulfillmentOrderFields }
    userErrors { field message }
  }
}
"""
    + _MUTATED_FULFILLMENT_ORDER_FIELDS
)

REJECT_FULFILLMENT_REQUEST = _document(
    """
mutation FulfillmentOrderRejectFulfillmentRequest(
  $id: ID!
  $reason: FulfillmentOrderRejectionReason
  $message: String
  $lineItems: [IncomingRequestLineItemInput!]
) {
  fulfillmentOrderRejectFulfillmentRequest(
    id: $id
    reason: $reason
    message: $message
    lineItems: $lineItems
  ) {
    fulfillmentOrder { ...MutatedFulfillmentOrderFields }
    userErrors { field message }
  }
}
"""
    + _MUTATED_FULFILLMENT_ORDER_FIELDS
)

ACCEPT_CANCELLATION_REQUEST = _document(
    """
mutation FulfillmentOrderAcceptCancellationRequest($id: ID!, $message: String) {
  fulfillmentOrderAcceptCancellationRequest(id: $id, message: $message) {
    fulfillmentOrder { ...MutatedFulfillmentOrderFields }
    userErrors { field message }
  }
}
"""
    + _MUTATED_FULFILLMENT_ORDER_FIELDS
)

REJECT_CANCELLATION_REQUEST = _document(
    """
mutation FulfillmentOrderRejectCancellationRequest($id: ID!, $message: String) {
  fulfillmentOrderRejectCancellationRequest(id: $id, message: $message) {
    fulfillmentOrder { ...MutatedFulfillmentOrderFields }
    userErrors { field message }
  }
}
"""
    + _MUTATED_FULFILLMENT_ORDER_FIELDS
)

REPORT_PROGRESS = _document(
    """
mutation FulfillmentOrderReportProgress($id: ID!, $progressReport: FulfillmentOrderReportProgressInput) {
  fulfillmentOrderReportProgress(id: $id, progressReport: $progressReport) {
    fulfillmentOrder { ...MutatedFulfillmentOrderFields }
    userErrors { field message }
  }
}
"""
    + _MUTATED_FULFILLMENT_ORDER_FIELDS
)

CLOSE_FULFILLMENT_ORDER = _document(
    """
mutation FulfillmentOrderClose($id: ID!, $message: String) {
  fulfillmentOrderClose(id: $id, message: $message) {
    fulfillmentOrder { ...MutatedFulfillmentOrderFields }
    userErrors { field message }
  }
}
"""
    + _MUTATED_FULFILLMENT_ORDER_FIELDS
)

# Only what the app keeps of a new fulfillment (its id and name, both free): the lines and tracking are the
# package's own, which the app sent, and selecting them would cost their objects on every package.
CREATE_FULFILLMENT = _document("""
mutation FulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id name status }
    userErrors { field message }
  }
}
""")

UPDATE_TRACKING_INFO = _document(
    """
mutation FulfillmentTrackingInfoUpdate(
  $fulfillmentId: ID!
  $trackingInfoInput: FulfillmentTrackingInput!
  $notifyCustomer: Boolean
) {
  fulfillmentTrackingInfoUpdate(
    fulfillmentId: $fulfillmentId
    trackingInfoInput: $trackingInfoInput
    notifyCustomer: $notifyCustomer
  ) {
    fulfillment { ...FulfillmentFields }
    userErrors { field message }
  }
}
"""
    + _FULFILLMENT_FIELDS
)

CANCEL_FULFILLMENT = _document(
    """
mutation FulfillmentCancel($id: ID!) {
  fulfillmentCancel(id: $id) {
    fulfillment { ...FulfillmentFields }
    userErrors { field message }
  }
}
"""
    + _FULFILLMENT_FIELDS
)

CREATE_FULFILLMENT_EVENT = _document("""
mutation FulfillmentEventCreate($fulfillmentEvent: FulfillmentEventInput!) {
  fulfillmentEventCreate(fulfillmentEvent: $fulfillmentEvent) {
    fulfillmentEvent { id }
    userErrors { field message }
  }
}
""")

CREATE_FULFILLMENT_SERVICE = _document("""
mutation FulfillmentServiceCreate(
  $name: String!
  $callbackUrl: URL
  $trackingSupport: Boolean
  $inventoryManagement: Boolean
) {
  fulfillmentServiceCreate(
    name: $name
    callbackUrl: $callbackUrl
    trackingSupport: $trackingSupport
    inventoryManagement: $inventoryManagement
  ) {
    fulfillmentService { id serviceName callbackUrl location { id } }
    userErrors { field message }
  }
}
""")

UPDATE_FULFILLMENT_SERVICE = _document("""
mutation FulfillmentServiceUpdate(
  $id: ID!
  $callbackUrl: URL
  $trackingSupport: Boolean
  $inventoryManagement: Boolean
) {
  fulfillmentServiceUpdate(
    id: $id
    callbackUrl: $callbackUrl
    trackingSupport: $trackingSupport
    inventoryManagement: $inventoryManagement
  ) {
    fulfillmentService { id serviceName callbackUrl location { id } }
    userErrors { field message }
  }
}
""")

FULFILLMENT_SERVICES = _document("""
query FulfillmentServices {
  shop {
    fulfillmentServices { id serviceName callbackUrl type location { id } }
  }
}
""")

SHOP_INFO = _document("""
query ShopInfo {
  shop { id name myshopifyDomain }
}
""")

CREATE_WEBHOOK_SUBSCRIPTION = _document("""
mutation WebhookSubscriptionCreate(
  $topic: WebhookSubscriptionTopic!
  $webhookSubscription: WebhookSubscriptionInput!
) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
""")

WEBHOOK_SUBSCRIPTIONS = _document(f"""
query WebhookSubscriptions($after: String) {{
  webhookSubscriptions(first: {WEBHOOKS_PAGE}, after: $after) {{
    nodes {{ id topic uri }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
""")

DELETE_WEBHOOK_SUBSCRIPTION = _document("""
mutation WebhookSubscriptionDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}
""")


# Inventory at our location. One page of items per SKU query: a batch of SKUs rarely matches more items than SKUs.
INVENTORY_PAGE = 50
INVENTORY_LEVELS_PAGE = 100

INVENTORY_ITEMS_AT = _document(f"""
query InventoryItemsAt($query: String!, $locationId: ID!, $after: String) {{
  inventoryItems(first: {INVENTORY_PAGE}, after: $after, query: $query) {{
    nodes {{
      id
      sku
      inventoryLevel(locationId: $locationId) {{ quantities(names: ["on_hand"]) {{ name quantity }} }}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
""")

LOCATION_INVENTORY_LEVELS = _document(f"""
query LocationInventoryLevels($locationId: ID!, $after: String) {{
  location(id: $locationId) {{
    inventoryLevels(first: {INVENTORY_LEVELS_PAGE}, after: $after) {{
      nodes {{ item {{ id sku }} quantities(names: ["on_hand"]) {{ name quantity }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
""")

# `@idempotent(key:)` is required since 2026-04: a repeat of the key with the same input answers what the first
# call did and changes nothing, so a call whose answer was lost is sent again under its key.
SET_INVENTORY_QUANTITIES = _document("""
mutation InventorySetQuantities($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
""")


# ---------------------------------------------------------------------------------------------------------
# Reading answers
# ---------------------------------------------------------------------------------------------------------


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # A naive time would be read by the store in the shop's zone, not ours: refuse rather than guess.
        raise ValueError("datetimes sent to the store must be timezone-aware")
    return value.isoformat()


def _location_id(assigned_location: Mapping[str, Any] | None) -> str | None:
    location = (assigned_location or {}).get("location")
    return location["id"] if location else None


def _holds(node: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(h["reason"] for h in node.get("fulfillmentHolds") or ())


def _actions(node: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(a["action"] for a in node.get("supportedActions") or ())


def _state(node: Mapping[str, Any]) -> FulfillmentOrderState:
    return FulfillmentOrderState(
        id=node["id"],
        status=node["status"],
        request_status=node["requestStatus"],
        assigned_location_id=_location_id(node.get("assignedLocation")),
        holds=_holds(node),
        supported_actions=_actions(node),
    )


def _summary(node: Mapping[str, Any]) -> FulfillmentOrderSummary:
    return FulfillmentOrderSummary(
        id=node["id"],
        status=node["status"],
        request_status=node["requestStatus"],
        order_id=node["orderId"],
        order_name=node["orderName"],
        assigned_location_id=_location_id(node.get("assignedLocation")),
        updated_at=_datetime(node.get("updatedAt")),
    )


def _line_item(node: Mapping[str, Any]) -> LineItem:
    return LineItem(
        id=node["id"],
        line_item_id=node["lineItem"]["id"],
        sku=node.get("sku"),
        total_quantity=node["totalQuantity"],
        remaining_quantity=node["remainingQuantity"],
        product_title=node["productTitle"],
    )


def _tracking(node: Mapping[str, Any]) -> TrackingInfo:
    return TrackingInfo(number=node.get("number"), company=node.get("company"), url=node.get("url"))


def _fulfillment(node: Mapping[str, Any]) -> Fulfillment:
    line_items = node.get("fulfillmentLineItems") or {}
    if (line_items.get("pageInfo") or {}).get("hasNextPage"):
        # Only the first page of a fulfillment's lines is read; the fulfillment order's own lines and
        # remaining quantities stay complete, so this affects reporting only.
        logger.warning("store.truncated fulfillment=%s field=fulfillmentLineItems", node["id"])
    return Fulfillment(
        id=node["id"],
        name=node["name"],
        status=node["status"],
        tracking=tuple(_tracking(t) for t in node.get("trackingInfo") or ()),
        line_items=tuple(
            # The store types quantity as nullable; a line without one contributed nothing we can count.
            FulfillmentLineItem(line_item_id=li["lineItem"]["id"], quantity=li.get("quantity") or 0)
            for li in line_items.get("nodes") or ()
        ),
    )


def _destination(node: Mapping[str, Any] | None) -> Destination | None:
    if not node:
        return None
    return Destination(
        country_code=node.get("countryCode"),
        province=node.get("province"),
        city=node.get("city"),
        zip=node.get("zip"),
        address1=node.get("address1"),
        address2=node.get("address2"),
        first_name=node.get("firstName"),
        last_name=node.get("lastName"),
    )


def _merchant_request(node: Mapping[str, Any]) -> MerchantRequest:
    return MerchantRequest(
        kind=node["kind"],
        message=node.get("message"),
        sent_at=_datetime(node.get("sentAt")),
        request_options=node.get("requestOptions"),
    )


def _payload(data: Mapping[str, Any], root: str, operation: str) -> Mapping[str, Any]:
    """A mutation's payload, or `UserErrors` if the store refused."""
    payload = data.get(root)
    if payload is None:
        raise StoreError(f"{operation}: no {root} payload in the answer")
    errors = payload.get("userErrors") or []
    if errors:
        raise UserErrors(
            [
                UserError(
                    field=tuple(e["field"]) if e.get("field") else None,
                    message=e.get("message", ""),
                    code=e.get("code"),
                )
                for e in errors
            ],
            operation,
        )
    return payload


def _returned(payload: Mapping[str, Any], key: str, operation: str) -> Mapping[str, Any]:
    value = payload.get(key)
    if value is None:
        raise StoreError(f"{operation}: the store returned no {key} and no userErrors")
    return value


# What each of the app's answers leaves a fulfillment order as, by the store's documented rules (status, request
# status). A payload may show the statuses from before the change: the store answered a cancellation request with
# the request still ACCEPTED, and read it back as CANCELLATION_REQUESTED. So a mutation that succeeded reports
# these, and the payload gives only the rest (id, location, holds).
AFTER_ACCEPT = ("IN_PROGRESS", "ACCEPTED")
AFTER_REJECT = ("OPEN", "REJECTED")
AFTER_CANCELLATION_ACCEPTED = ("CLOSED", "CANCELLATION_ACCEPTED")
AFTER_CANCELLATION_REJECTED = ("IN_PROGRESS", "CANCELLATION_REJECTED")
AFTER_CLOSE = ("INCOMPLETE", "CLOSED")


def _state_mutation(
    client: StoreClient,
    document: str,
    root: str,
    variables: Mapping[str, Any],
    after: tuple[str, str] | None = None,
) -> FulfillmentOrderState:
    payload = _payload(client.execute(document, variables), root, root)
    state = _state(_returned(payload, "fulfillmentOrder", root))
    if after is None:
        return state
    return replace(state, status=after[0], request_status=after[1])


def _tracking_input(tracking: TrackingInfo) -> dict[str, Any]:
    return {
        key: value
        for key, value in (("number", tracking.number), ("company", tracking.company), ("url", tracking.url))
        if value is not None
    }


# ---------------------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------------------


def assigned_fulfillment_orders(
    client: StoreClient,
    *,
    assignment_status: str | None = None,
    location_ids: Sequence[str] | None = None,
    first: int = SWEEP_PAGE,
    after: str | None = None,
) -> Page[FulfillmentOrderSummary]:
    """One page of the fulfillment orders assigned to our locations (all but CLOSED ones by default).

    The list carries no location: `location_ids` already says whose they are."""
    data = client.execute(
        ASSIGNED_FULFILLMENT_ORDERS,
        {
            "assignmentStatus": assignment_status,
            "locationIds": list(location_ids) if location_ids is not None else None,
            "first": first,
            "after": after,
        },
    )
    connection = data["assignedFulfillmentOrders"]
    page_info = connection["pageInfo"]
    return Page(
        items=tuple(_summary(n) for n in connection["nodes"]),
        end_cursor=page_info.get("endCursor"),
        has_next_page=bool(page_info["hasNextPage"]),
    )


def iter_assigned_fulfillment_orders(client: StoreClient, **kw: Any) -> Iterator[FulfillmentOrderSummary]:
    """Every assigned fulfillment order, page after page (the sweep must never stop at the first page)."""
    after = kw.pop("after", None)
    while True:
        page = assigned_fulfillment_orders(client, after=after, **kw)
        yield from page.items
        if not page.has_next_page or not page.end_cursor:
            return
        after = page.end_cursor


def fulfillment_order(client: StoreClient, id: str) -> FulfillmentOrder | None:
    """The whole fulfillment order, or None if the store does not know the id (any more)."""
    return _fulfillment_order(client, id, FULFILLMENT_ORDER, fulfillments=True)


def fulfillment_order_to_decide(client: StoreClient, id: str) -> FulfillmentOrder | None:
    """The fulfillment order without its fulfillments (left empty): the first read of a new request."""
    return _fulfillment_order(client, id, FULFILLMENT_ORDER_TO_DECIDE, fulfillments=False)


def iter_requested_fulfillment_orders(
    client: StoreClient, *, location_ids: Sequence[str] | None = None, first: int = REQUESTED_PAGE
) -> Iterator[FulfillmentOrder]:
    """Every fulfillment order whose request waits on us, with what deciding on it needs (no fulfillments: none
    of ours can exist yet), page after page."""
    after: str | None = None
    while True:
        connection = client.execute(
            ASSIGNED_FULFILLMENT_ORDERS_TO_DECIDE,
            {
                "assignmentStatus": "FULFILLMENT_REQUESTED",
                "locationIds": list(location_ids) if location_ids is not None else None,
                "first": first,
                "after": after,
            },
        )["assignedFulfillmentOrders"]
        # The list carries no location: `location_ids` already says whose they are.
        ours = location_ids[0] if location_ids is not None and len(location_ids) == 1 else None
        for node in connection["nodes"]:
            yield replace(_fulfillment_order_of(client, node, fulfillments=False), assigned_location_id=ours)
        page_info = connection["pageInfo"]
        if not page_info.get("hasNextPage") or not page_info.get("endCursor"):
            return
        after = page_info["endCursor"]


def _fulfillment_order(client: StoreClient, id: str, document: str, *, fulfillments: bool) -> FulfillmentOrder | None:
    try:
        node = client.execute(document, {"id": id})["fulfillmentOrder"]
    except NotFound:
        return None
    if node is None:
        return None
    return _fulfillment_order_of(client, node, fulfillments=fulfillments)


def _fulfillment_order_of(client: StoreClient, node: Mapping[str, Any], *, fulfillments: bool) -> FulfillmentOrder:
    id = node["id"]
    line_items = [_line_item(n) for n in node["lineItems"]["nodes"]]
    line_items += _more_pages(client, FULFILLMENT_ORDER_LINE_ITEMS, id, "lineItems", node, _line_item)
    found: list[Fulfillment] = []
    if fulfillments:
        found = [_fulfillment(n) for n in node["fulfillments"]["nodes"]]
        found += _more_pages(client, FULFILLMENT_ORDER_FULFILLMENTS, id, "fulfillments", node, _fulfillment)
    return FulfillmentOrder(
        id=node["id"],
        status=node["status"],
        request_status=node["requestStatus"],
        order_id=node["orderId"],
        order_name=node["orderName"],
        assigned_location_id=_location_id(node.get("assignedLocation")),
        updated_at=_datetime(node.get("updatedAt")),
        line_items=tuple(line_items),
        merchant_requests=tuple(_merchant_request(n) for n in node["merchantRequests"]["nodes"]),
        holds=_holds(node),
        supported_actions=_actions(node),
        fulfillments=tuple(found),
        destination=_destination(node.get("destination")),
    )


def _more_pages(
    client: StoreClient, document: str, id: str, field: str, first_read: Mapping[str, Any], parse_node: Any
) -> list[Any]:
    """The pages of a fulfillment order's connection after the one `first_read` holds."""
    found: list[Any] = []
    page_info = first_read[field]["pageInfo"]
    while page_info.get("hasNextPage") and page_info.get("endCursor"):
        node = client.execute(document, {"id": id, "after": page_info["endCursor"]})["fulfillmentOrder"]
        if node is None:
            break
        found.extend(parse_node(n) for n in node[field]["nodes"])
        page_info = node[field]["pageInfo"]
    return found


def fulfillment_order_status(client: StoreClient, id: str) -> FulfillmentOrderState | None:
    """Status, request status and when it last changed (no location, no holds): the one-point re-read."""
    try:
        node = client.execute(FULFILLMENT_ORDER_STATUS, {"id": id})["fulfillmentOrder"]
    except NotFound:
        return None
    if node is None:
        return None
    return replace(_state(node), updated_at=_datetime(node.get("updatedAt")))


def fulfillment_order_state(client: StoreClient, id: str) -> FulfillmentOrderState | None:
    """Status, request status, location, holds and supported actions only: the re-read before acting."""
    try:
        node = client.execute(FULFILLMENT_ORDER_STATE, {"id": id})["fulfillmentOrder"]
    except NotFound:
        return None
    return _state(node) if node is not None else None


def fulfillment_services(client: StoreClient) -> list[FulfillmentService]:
    """Every fulfillment service of the shop: ours, other apps', and the store's built-in manual one (filter by
    type, then name or callback)."""
    data = client.execute(FULFILLMENT_SERVICES)
    return [_fulfillment_service(n) for n in data["shop"]["fulfillmentServices"]]


def shop_info(client: StoreClient) -> ShopInfo:
    shop = client.execute(SHOP_INFO)["shop"]
    return ShopInfo(id=shop["id"], name=shop["name"], domain=shop["myshopifyDomain"])


def webhook_subscriptions(client: StoreClient) -> list[WebhookSubscription]:
    """Every webhook subscription this app made on the shop (not those declared in the app's config)."""
    found: list[WebhookSubscription] = []
    after: str | None = None
    while True:
        connection = client.execute(WEBHOOK_SUBSCRIPTIONS, {"after": after})["webhookSubscriptions"]
        found.extend(_webhook_subscription(n) for n in connection["nodes"])
        page_info = connection["pageInfo"]
        if not page_info.get("hasNextPage") or not page_info.get("endCursor"):
            return found
        after = page_info["endCursor"]


def _fulfillment_service(node: Mapping[str, Any]) -> FulfillmentService:
    return FulfillmentService(
        id=node["id"],
        location_id=(node.get("location") or {}).get("id"),
        callback_url=node.get("callbackUrl"),
        name=node["serviceName"],
        type=node.get("type") or "THIRD_PARTY",
    )


def _webhook_subscription(node: Mapping[str, Any]) -> WebhookSubscription:
    return WebhookSubscription(id=node["id"], topic=node["topic"], uri=node["uri"])


# ---------------------------------------------------------------------------------------------------------
# Fulfillment-order mutations
# ---------------------------------------------------------------------------------------------------------


def accept_fulfillment_request(
    client: StoreClient, id: str, *, message: str | None, estimated_shipped_at: datetime | None
) -> FulfillmentOrderState:
    return _state_mutation(
        client,
        ACCEPT_FULFILLMENT_REQUEST,
        "fulfillmentOrderAcceptFulfillmentRequest",
        {"id": id, "message": message, "estimatedShippedAt": _iso(estimated_shipped_at)},
        AFTER_ACCEPT,
    )


def reject_fulfillment_request(
    client: StoreClient,
    id: str,
    *,
    reason: str | None,
    message: str | None,
    line_items: Sequence[tuple[str, str]] = (),
) -> FulfillmentOrderState:
    """Reject a fulfillment request. `line_items` are (fulfillment order line item id, message) pairs
    naming the lines that caused it."""
    return _state_mutation(
        client,
        REJECT_FULFILLMENT_REQUEST,
        "fulfillmentOrderRejectFulfillmentRequest",
        {
            "id": id,
            "reason": reason,
            "message": message,
            "lineItems": [{"fulfillmentOrderLineItemId": li, "message": m} for li, m in line_items] or None,
        },
        AFTER_REJECT,
    )


def accept_cancellation_request(client: StoreClient, id: str, *, message: str | None) -> FulfillmentOrderState:
    return _state_mutation(
        client,
        ACCEPT_CANCELLATION_REQUEST,
        "fulfillmentOrderAcceptCancellationRequest",
        {"id": id, "message": message},
        AFTER_CANCELLATION_ACCEPTED,
    )


def reject_cancellation_request(client: StoreClient, id: str, *, message: str | None) -> FulfillmentOrderState:
    return _state_mutation(
        client,
        REJECT_CANCELLATION_REQUEST,
        "fulfillmentOrderRejectCancellationRequest",
        {"id": id, "message": message},
        AFTER_CANCELLATION_REJECTED,
    )


def report_progress(client: StoreClient, id: str, *, reason_notes: str | None) -> FulfillmentOrderState:
    return _state_mutation(
        client,
        REPORT_PROGRESS,
        "fulfillmentOrderReportProgress",
        {"id": id, "progressReport": {"reasonNotes": reason_notes}},
    )


def close_fulfillment_order(client: StoreClient, id: str, *, message: str | None) -> FulfillmentOrderState:
    """Give an accepted, in-progress fulfillment order back to the merchant as INCOMPLETE."""
    return _state_mutation(
        client, CLOSE_FULFILLMENT_ORDER, "fulfillmentOrderClose", {"id": id, "message": message}, AFTER_CLOSE
    )


# ---------------------------------------------------------------------------------------------------------
# Fulfillments
# ---------------------------------------------------------------------------------------------------------


def create_fulfillment(
    client: StoreClient,
    fulfillment_order_id: str,
    line_items: Sequence[tuple[str, int]] | None,
    *,
    tracking: TrackingInfo | None,
    notify_customer: bool = True,
    message: str | None = None,
) -> Fulfillment:
    """Create one fulfillment (one package). `line_items` are (fulfillment order line item id, quantity);
    None fulfils everything remaining.

    Not idempotent: after `StoreUnavailable(maybe_applied=True)`, read the fulfillment order before retrying.
    """
    by_fulfillment_order: dict[str, Any] = {"fulfillmentOrderId": fulfillment_order_id}
    if line_items is not None:
        if not line_items:
            # The store reads an empty list as "everything remaining": never let a bug ship the whole order.
            raise ValueError("line_items must be None (everything remaining) or non-empty")
        by_fulfillment_order["fulfillmentOrderLineItems"] = [{"id": li, "quantity": q} for li, q in line_items]
    fulfillment: dict[str, Any] = {
        "lineItemsByFulfillmentOrder": [by_fulfillment_order],
        "notifyCustomer": notify_customer,
    }
    if tracking is not None:
        fulfillment["trackingInfo"] = _tracking_input(tracking)
    data = client.execute(CREATE_FULFILLMENT, {"fulfillment": fulfillment, "message": message})
    payload = _payload(data, "fulfillmentCreate", "fulfillmentCreate")
    return _fulfillment(_returned(payload, "fulfillment", "fulfillmentCreate"))


def create_fulfillment_event(
    client: StoreClient,
    fulfillment_id: str,
    *,
    status: str,
    message: str | None = None,
    happened_at: datetime | None = None,
    estimated_delivery_at: datetime | None = None,
) -> str:
    """Record a shipment event (a `FulfillmentEventStatus`, e.g. IN_TRANSIT); returns the event's id."""
    event: dict[str, Any] = {"fulfillmentId": fulfillment_id, "status": status}
    optional = {
        "message": message,
        "happenedAt": _iso(happened_at),
        "estimatedDeliveryAt": _iso(estimated_delivery_at),
    }
    event.update({k: v for k, v in optional.items() if v is not None})
    payload = _payload(
        client.execute(CREATE_FULFILLMENT_EVENT, {"fulfillmentEvent": event}),
        "fulfillmentEventCreate",
        "fulfillmentEventCreate",
    )
    return _returned(payload, "fulfillmentEvent", "fulfillmentEventCreate")["id"]


def update_tracking_info(
    client: StoreClient, fulfillment_id: str, tracking: TrackingInfo, *, notify_customer: bool
) -> Fulfillment:
    data = client.execute(
        UPDATE_TRACKING_INFO,
        {
            "fulfillmentId": fulfillment_id,
            "trackingInfoInput": _tracking_input(tracking),
            "notifyCustomer": notify_customer,
        },
    )
    payload = _payload(data, "fulfillmentTrackingInfoUpdate", "fulfillmentTrackingInfoUpdate")
    return _fulfillment(_returned(payload, "fulfillment", "fulfillmentTrackingInfoUpdate"))


def cancel_fulfillment(client: StoreClient, fulfillment_id: str) -> Fulfillment:
    """Cancel a fulfillment (takes the fulfillment's id, not the fulfillment order's)."""
    payload = _payload(
        client.execute(CANCEL_FULFILLMENT, {"id": fulfillment_id}), "fulfillmentCancel", "fulfillmentCancel"
    )
    return _fulfillment(_returned(payload, "fulfillment", "fulfillmentCancel"))


# ---------------------------------------------------------------------------------------------------------
# Setup: fulfillment service and webhooks
# ---------------------------------------------------------------------------------------------------------


def create_fulfillment_service(
    client: StoreClient,
    *,
    name: str,
    callback_url: str | None,
    tracking_support: bool = True,
    inventory_management: bool = True,
) -> FulfillmentService:
    data = client.execute(
        CREATE_FULFILLMENT_SERVICE,
        {
            "name": name,
            "callbackUrl": callback_url,
            "trackingSupport": tracking_support,
            "inventoryManagement": inventory_management,
        },
    )
    payload = _payload(data, "fulfillmentServiceCreate", "fulfillmentServiceCreate")
    return _fulfillment_service(_returned(payload, "fulfillmentService", "fulfillmentServiceCreate"))


def update_fulfillment_service(
    client: StoreClient,
    id: str,
    *,
    callback_url: str | None,
    tracking_support: bool = True,
    inventory_management: bool = True,
) -> FulfillmentService:
    data = client.execute(
        UPDATE_FULFILLMENT_SERVICE,
        {
            "id": id,
            "callbackUrl": callback_url,
            "trackingSupport": tracking_support,
            "inventoryManagement": inventory_management,
        },
    )
    payload = _payload(data, "fulfillmentServiceUpdate", "fulfillmentServiceUpdate")
    return _fulfillment_service(_returned(payload, "fulfillmentService", "fulfillmentServiceUpdate"))


def create_webhook_subscription(client: StoreClient, *, topic: str, uri: str) -> WebhookSubscription:
    """Subscribe `uri` to `topic` (a `WebhookSubscriptionTopic`, e.g. FULFILLMENT_ORDERS_CANCELLED)."""
    # In 2026-07 the endpoint is `uri` (an HTTPS URL, Pub/Sub or EventBridge); `callbackUrl` is deprecated.
    data = client.execute(CREATE_WEBHOOK_SUBSCRIPTION, {"topic": topic, "webhookSubscription": {"uri": uri}})
    payload = _payload(data, "webhookSubscriptionCreate", "webhookSubscriptionCreate")
    return _webhook_subscription(_returned(payload, "webhookSubscription", "webhookSubscriptionCreate"))


def delete_webhook_subscription(client: StoreClient, id: str) -> str | None:
    """Delete a subscription; returns the deleted subscription's id as the store reports it."""
    payload = _payload(
        client.execute(DELETE_WEBHOOK_SUBSCRIPTION, {"id": id}),
        "webhookSubscriptionDelete",
        "webhookSubscriptionDelete",
    )
    return payload.get("deletedWebhookSubscriptionId")


# ---------------------------------------------------------------------------------------------------------
# Inventory
# ---------------------------------------------------------------------------------------------------------


def _on_hand(level: Mapping[str, Any] | None) -> int | None:
    if level is None:
        return None
    return next((int(q["quantity"]) for q in level.get("quantities") or () if q.get("name") == "on_hand"), 0)


def inventory_items_at(client: StoreClient, query: str, location_id: str) -> list[InventoryItem]:
    """Every inventory item `query` finds (`sku:A OR sku:B`, `id:1 OR id:2`), with its `on_hand` at the location."""
    found: list[InventoryItem] = []
    after: str | None = None
    while True:
        data = client.execute(INVENTORY_ITEMS_AT, {"query": query, "locationId": location_id, "after": after})
        connection = data["inventoryItems"]
        found.extend(
            InventoryItem(id=n["id"], sku=n.get("sku"), on_hand=_on_hand(n.get("inventoryLevel")))
            for n in connection["nodes"]
        )
        page_info = connection["pageInfo"]
        if not page_info.get("hasNextPage") or not page_info.get("endCursor"):
            return found
        after = page_info["endCursor"]


def location_inventory(client: StoreClient, location_id: str) -> list[InventoryItem]:
    """Every item stocked at the location, with its `on_hand` there (page after page)."""
    found: list[InventoryItem] = []
    after: str | None = None
    while True:
        location = client.execute(LOCATION_INVENTORY_LEVELS, {"locationId": location_id, "after": after})["location"]
        if location is None:
            raise NotFound(f"location {location_id}")
        connection = location["inventoryLevels"]
        found.extend(
            InventoryItem(id=n["item"]["id"], sku=n["item"].get("sku"), on_hand=_on_hand(n))
            for n in connection["nodes"]
        )
        page_info = connection["pageInfo"]
        if not page_info.get("hasNextPage") or not page_info.get("endCursor"):
            return found
        after = page_info["endCursor"]


def set_inventory_quantities(
    client: StoreClient,
    *,
    name: str,
    reason: str,
    reference_document_uri: str | None,
    quantities: Sequence[QuantitySet],
    idempotency_key: str,
) -> str | None:
    """Set quantities (all or none: any userError refuses the whole call); returns the adjustment group's id, None
    when nothing needed to change."""
    data = client.execute(
        SET_INVENTORY_QUANTITIES,
        {
            "input": {
                "name": name,
                "reason": reason,
                "referenceDocumentUri": reference_document_uri,
                "quantities": [
                    {
                        "inventoryItemId": q.inventory_item_id,
                        "locationId": q.location_id,
                        "quantity": q.quantity,
                        # Always sent: since 2026-04 the store requires it (null would skip the compare-and-swap).
                        "changeFromQuantity": q.change_from,
                    }
                    for q in quantities
                ],
            },
            "idempotencyKey": idempotency_key,
        },
    )
    group = _payload(data, "inventorySetQuantities", "inventorySetQuantities").get("inventoryAdjustmentGroup")
    return group["id"] if group else None
