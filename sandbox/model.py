"""The sandbox store's records: shops, locations, orders, fulfillment orders, fulfillments, and the errors its
transitions raise. Plain dataclasses in the store's own vocabulary; the transitions live in `store.py`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sandbox.faults import Faults

# FulfillmentOrderStatus
OPEN = "OPEN"
IN_PROGRESS = "IN_PROGRESS"
SCHEDULED = "SCHEDULED"
ON_HOLD = "ON_HOLD"
INCOMPLETE = "INCOMPLETE"
CANCELLED = "CANCELLED"
CLOSED = "CLOSED"

# FulfillmentOrderRequestStatus (CLOSED is shared with the status above)
UNSUBMITTED = "UNSUBMITTED"
SUBMITTED = "SUBMITTED"
ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"
CANCELLATION_REQUESTED = "CANCELLATION_REQUESTED"
CANCELLATION_ACCEPTED = "CANCELLATION_ACCEPTED"
CANCELLATION_REJECTED = "CANCELLATION_REJECTED"

# Request statuses under which the fulfillment service holds the work: the merchant may not move, edit, refund
# or mark the items fulfilled until the request is withdrawn or its cancellation accepted.
REQUEST_IN_SERVICE_HANDS = frozenset({SUBMITTED, ACCEPTED, CANCELLATION_REQUESTED, CANCELLATION_REJECTED})
# Statuses in which a fulfillment order has no more work.
FINISHED = frozenset({CLOSED, CANCELLED})

FULFILLMENT_REQUEST = "FULFILLMENT_REQUEST"
CANCELLATION_REQUEST = "CANCELLATION_REQUEST"

WORKFLOW_FULFILLMENT_ORDERS = "fulfillment_orders"
WORKFLOW_LEGACY = "legacy"
WORKFLOWS = (WORKFLOW_FULFILLMENT_ORDERS, WORKFLOW_LEGACY)

APP = "app"
MERCHANT = "merchant"

# maximumAvailable / restoreRate per plan. Standard is what recordings of real shops show; the larger plans'
# bucket sizes are our guess and can be overridden per shop.
PLAN_THROTTLE: dict[str, tuple[int, int]] = {
    "standard": (2000, 100),
    "advanced": (4000, 200),
    "plus": (10000, 1000),
    "enterprise": (20000, 2000),
}


def now() -> datetime:
    """The store's clock: UTC, whole seconds, like the timestamps the real store returns."""
    return datetime.now(UTC).replace(microsecond=0)


def gid(kind: str, id_: int | str) -> str:
    return f"gid://shopify/{kind}/{id_}"


def service_gid(id_: int) -> str:
    """The store's id for an app's fulfillment service carries `?id=true`, wherever it is read (create, list,
    update, a location's service); only `fulfillmentServiceDelete`'s `deletedId` goes without it."""
    return f"{gid('FulfillmentService', id_)}?id=true"


def parse_id(value: Any, kind: str) -> int | None:
    """The numeric id in `gid://shopify/<kind>/<n>` or a bare number; None for anything else (another kind)."""
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip().replace("gid:/shopify/", "gid://shopify/")  # a proxy may have merged the slashes
    if text.isdigit():
        return int(text)
    prefix = f"gid://shopify/{kind}/"
    if text.startswith(prefix):
        rest = text[len(prefix) :].split("?", 1)[0]
        if rest.isdigit():
            return int(rest)
    return None


# ---------------------------------------------------------------------------------------------------------
# Errors. A `StoreUserError` becomes an entry of `userErrors`; `ResourceNotFound` a top-level error.
# ---------------------------------------------------------------------------------------------------------


class StoreUserError(Exception):
    """A business rule refused the change; nothing was modified."""

    def __init__(self, message: str, field: list[str] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class UserErrors(StoreUserError):
    """Several checks of one input failed together: the store reports every one of them, in order."""

    def __init__(self, errors: list[StoreUserError]) -> None:
        super().__init__(errors[0].message, errors[0].field, errors[0].code)
        self.errors = errors


def each_error(error: StoreUserError) -> list[StoreUserError]:
    """The refusals one `StoreUserError` stands for (one, or the several of a `UserErrors`)."""
    return list(error.errors) if isinstance(error, UserErrors) else [error]


class InvalidTransition(StoreUserError):
    """The fulfillment order's status or request status does not allow the action."""


class NotPermitted(StoreUserError):
    """The caller may not act on this resource (not its service's location, or the workflow forbids it)."""


class InvalidInput(StoreUserError):
    """Arguments that do not fit the resource: unknown line items, quantities, names already taken."""


class OrderLocked(StoreUserError):
    """The order cannot be edited or refunded while a fulfillment service holds a request for it."""


class ResourceNotFound(Exception):
    """An id that names nothing in this shop."""

    def __init__(self, resource_id: str) -> None:
        super().__init__(f"Invalid id: {resource_id}")
        self.resource_id = resource_id


# ---------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who calls: the installed app (identified by its install) or the merchant's staff."""

    role: str
    install_id: str | None = None

    @property
    def is_app(self) -> bool:
        return self.role == APP


MERCHANT_ACTOR = Actor(MERCHANT)


@dataclass
class Address:
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    country_code: str | None = None
    zip: str | None = None
    phone: str | None = None
    email: str | None = None


# The Admin API's address input names that are not the attribute's own (the rest are: address1, city, zip ...).
_ADDRESS_INPUT_NAMES = {
    "firstName": "first_name",
    "lastName": "last_name",
    "countryCode": "country_code",
    "provinceCode": "province",
}


def address_fields(values: dict[str, Any]) -> dict[str, Any]:
    """An address input of the Admin API (`MailingAddressInput`, `LocationAddressInput`) as Address attributes;
    what Address does not hold is left out."""
    named = ((_ADDRESS_INPUT_NAMES.get(key, key), value) for key, value in values.items())
    return {attr: value for attr, value in named if attr in Address.__dataclass_fields__}


@dataclass
class Location:
    id: int
    name: str
    address: Address
    fulfillment_service_id: int | None = None
    is_active: bool = True
    fulfills_online_orders: bool = True
    deactivated_at: datetime | None = None
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class FulfillmentService:
    id: int | str  # a number, or MANUAL_SERVICE_ID for the store's own
    name: str
    handle: str
    location_id: int
    install_id: str | None
    callback_url: str | None = None
    tracking_support: bool = False
    inventory_management: bool = False
    requires_shipping_method: bool = True
    type: str = "THIRD_PARTY"  # FulfillmentServiceType

    @property
    def graphql_id(self) -> str:
        # The built-in manual service's id is a word and has no `?id=true` (as recorded).
        return gid("FulfillmentService", self.id) if self.id == MANUAL_SERVICE_ID else service_gid(int(self.id))


# The built-in service every shop has for what the merchant fulfils at their own locations
# (gid://shopify/FulfillmentService/manual, as recorded).
MANUAL_SERVICE_ID = "manual"


def new_manual_service(location_id: int) -> FulfillmentService:
    """The shop's built-in "Manual" service, at its primary location (recorded: no callback, no tracking or
    inventory support, requires a shipping method)."""
    return FulfillmentService(
        id=MANUAL_SERVICE_ID,
        name="Manual",
        handle="manual",
        location_id=location_id,
        install_id=None,
        requires_shipping_method=True,
        type="MANUAL",
    )


@dataclass
class LineItem:
    id: int
    order_id: int
    sku: str | None
    title: str
    quantity: int
    variant_title: str | None = None
    vendor: str | None = None
    requires_shipping: bool = True
    price: str = "0.00"  # unit price in the order's currency, a decimal string as the store writes it
    removed: int = 0  # what edits took off: `quantity` stays as ordered, as the store's does

    @property
    def name(self) -> str:
        return f"{self.title} - {self.variant_title}" if self.variant_title else self.title

    @property
    def current_quantity(self) -> int:
        return self.quantity - self.removed


@dataclass
class FulfillmentOrderLineItem:
    id: int
    line_item_id: int
    total_quantity: int
    remaining_quantity: int


@dataclass
class MerchantRequest:
    id: int
    kind: str
    message: str | None
    request_options: dict[str, Any]
    sent_at: datetime
    fulfillment_order_id: int
    response_data: dict[str, Any] | None = None  # recorded answers show null, even after the service answered


@dataclass
class FulfillmentHold:
    id: int
    reason: str
    reason_notes: str | None
    handle: str
    held_by_install: str | None


@dataclass
class FulfillmentOrder:
    id: int
    order_id: int
    location_id: int
    line_items: list[FulfillmentOrderLineItem]
    status: str = OPEN
    request_status: str = UNSUBMITTED
    merchant_requests: list[MerchantRequest] = field(default_factory=list)
    holds: list[FulfillmentHold] = field(default_factory=list)
    fulfillment_ids: list[int] = field(default_factory=list)
    progress_reported: bool = False
    # Fulfillment orders split off when some items were held: released holds merge them back.
    hold_remainders: list[int] = field(default_factory=list)
    status_before_hold: str | None = None  # what releasing the last hold returns to
    fulfill_at: datetime | None = None
    fulfill_by: datetime | None = None
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    def remaining(self) -> int:
        return sum(li.remaining_quantity for li in self.line_items)

    def line_item(self, id_: int) -> FulfillmentOrderLineItem | None:
        return next((li for li in self.line_items if li.id == id_), None)


@dataclass
class TrackingInfo:
    company: str | None = None
    number: str | None = None
    url: str | None = None


@dataclass
class FulfillmentLineItem:
    """One line of a fulfillment: all of an order line item it ships, from however many fulfillment orders."""

    id: int
    line_item_id: int
    quantity: int


@dataclass
class CalculatedReturnLine:
    """One line of `returnCalculate`: what returning `quantity` of a fulfillment line would refund and charge."""

    fulfillment_line: FulfillmentLineItem
    quantity: int
    restocking_percentage: float | None
    subtotal: Decimal  # negative: what goes back to the customer
    restocking_fee: Decimal


@dataclass
class FulfillmentEvent:
    id: int
    status: str
    happened_at: datetime
    message: str | None = None
    estimated_delivery_at: datetime | None = None
    address1: str | None = None
    city: str | None = None
    province: str | None = None
    country: str | None = None
    zip: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    created_at: datetime = field(default_factory=now)


@dataclass
class Fulfillment:
    id: int
    name: str
    order_id: int
    location_id: int
    line_items: list[FulfillmentLineItem]
    fulfillment_order_ids: list[int]
    tracking: list[TrackingInfo]
    created_by: str
    # What it took from each fulfillment order: fo id -> order line item id -> quantity (a cancel gives it back).
    taken: dict[int, dict[int, int]] = field(default_factory=dict)
    origin_address: dict[str, Any] | None = None  # FulfillmentOriginAddress, when the fulfillment gave one
    status: str = "SUCCESS"
    display_status: str = "FULFILLED"
    events: list[FulfillmentEvent] = field(default_factory=list)
    notify_customer: bool = False
    delivered_at: datetime | None = None
    in_transit_at: datetime | None = None
    estimated_delivery_at: datetime | None = None
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    def total_quantity(self) -> int:
        return sum(li.quantity for li in self.line_items)

    @property
    def graphql_name(self) -> str:
        """The name the Admin GraphQL API shows ("#1001-F1", as recorded). REST payloads and the service's
        tracking-number pull keep `name`, the REST form ("#1001.1")."""
        order_name, _, number = self.name.rpartition(".")
        return f"{order_name}-F{number}"


@dataclass
class TimelineEntry:
    at: datetime
    kind: str
    message: str
    fulfillment_order_id: int | None = None


@dataclass
class Order:
    id: int
    number: int
    line_items: list[LineItem]
    shipping_address: Address
    note: str | None = None
    paid: bool = True
    email: str | None = None
    phone: str | None = None
    tags: list[str] = field(default_factory=list)
    currency: str = "USD"
    # Order.displayFinancialStatus when the merchant set one; else derived from `paid`.
    financial_status: str | None = None
    # False for an order an app created with neither transactions nor a financial status: the store shows none.
    payment_recorded: bool = True
    cancel_reason: str | None = None
    fulfillment_order_ids: list[int] = field(default_factory=list)
    fulfillment_ids: list[int] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    cancelled_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    @property
    def name(self) -> str:
        return f"#{self.number}"

    def line_item(self, id_: int) -> LineItem | None:
        return next((li for li in self.line_items if li.id == id_), None)


# ---------------------------------------------------------------------------------------------------------
# Products and inventory
# ---------------------------------------------------------------------------------------------------------

# The quantity names of an inventory level that make up `on_hand` (with `available`); `incoming` is not on hand.
ON_HAND_PARTS = ("available", "committed", "damaged", "quality_control", "reserved", "safety_stock")
QUANTITY_NAMES = (*ON_HAND_PARTS, "incoming")


@dataclass
class InventoryLevel:
    """One inventory item stocked at one location. The quantities set or adjusted by name; what orders commit
    comes on top of them (`inventory.quantity` reads both), and `on_hand` is the sum of its parts."""

    item_id: int
    location_id: int
    quantities: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUANTITY_NAMES, 0))
    is_active: bool = True
    # The store dates only `available` (and `committed`, `incoming`, `reserved` once they moved); the rest are null.
    quantity_updated_at: dict[str, datetime] = field(default_factory=dict)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class InventoryItem:
    id: int
    variant_id: int
    sku: str | None = None
    tracked: bool = False
    requires_shipping: bool = True
    levels: dict[int, InventoryLevel] = field(default_factory=dict)  # location id -> level
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class ProductVariant:
    id: int
    product_id: int
    inventory_item_id: int
    title: str = "Default Title"
    sku: str | None = None
    price: str = "0.00"
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class Product:
    id: int
    title: str
    handle: str
    status: str = "ACTIVE"
    variant_ids: list[int] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class InventoryChange:
    name: str
    delta: int
    item_id: int
    location_id: int
    ledger_document_uri: str | None = None


@dataclass
class InventoryAdjustmentGroup:
    id: int
    reason: str
    reference_document_uri: str | None
    changes: list[InventoryChange]
    install_id: str | None = None
    created_at: datetime = field(default_factory=now)


@dataclass
class IdempotentCall:
    """What one `@idempotent(key:)` call did: a repeat with the same arguments gets the same answer."""

    fingerprint: str
    payload: dict[str, Any]
    replays: int = 0  # repeats answered from this call (what the merchant API shows a test)


@dataclass
class WebhookSubscription:
    id: int
    topic: str
    uri: str
    install_id: str | None
    format: str = "JSON"
    name: str | None = None
    filter: str | None = None
    include_fields: list[str] = field(default_factory=list)
    metafield_namespaces: list[str] = field(default_factory=list)
    metafields: list[dict[str, str]] = field(default_factory=list)  # {"namespace", "key"}
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class AppInstall:
    id: str
    access_token: str
    scopes: str
    created_at: datetime = field(default_factory=now)


@dataclass(frozen=True)
class Callback:
    """A ping to a fulfillment service's callback URL (`kind` FULFILLMENT_REQUEST / CANCELLATION_REQUEST)."""

    url: str
    kind: str


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook to one subscription; `webhook_id` stays the same across retries."""

    url: str
    topic: str
    payload: dict[str, Any]
    webhook_id: str
    event_id: str
    triggered_at: str


Notice = Callback | WebhookDelivery


@dataclass
class Shop:
    id: int
    domain: str
    plan: str
    workflow: str
    auto_fulfill: bool
    merchant_token: str
    maximum_available: int
    restore_rate: int
    name: str = ""
    email: str = ""
    locations: dict[int, Location] = field(default_factory=dict)
    services: dict[int, FulfillmentService] = field(default_factory=dict)  # the apps' services
    manual_service: FulfillmentService | None = None  # the built-in one, at the primary location
    # Locations removed with their fulfillment service: no longer served, still named by past fulfillment orders.
    removed_locations: dict[int, Location] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    fulfillment_orders: dict[int, FulfillmentOrder] = field(default_factory=dict)
    fulfillments: dict[int, Fulfillment] = field(default_factory=dict)
    webhook_subscriptions: dict[int, WebhookSubscription] = field(default_factory=dict)
    line_items: dict[int, LineItem] = field(default_factory=dict)  # index of every order's line items
    # Catalogue and inventory: products, their variants and each variant's inventory item.
    products: dict[int, Product] = field(default_factory=dict)
    variants: dict[int, ProductVariant] = field(default_factory=dict)
    inventory_items: dict[int, InventoryItem] = field(default_factory=dict)
    adjustment_groups: dict[int, InventoryAdjustmentGroup] = field(default_factory=dict)
    # (caller, mutation, key) -> what the call answered.
    idempotent_calls: dict[tuple[str, str, str], IdempotentCall] = field(default_factory=dict)
    # Stock levels the services reported through fetch_stock: location id -> sku -> quantity.
    stock: dict[int, dict[str, int]] = field(default_factory=dict)
    installs: dict[str, AppInstall] = field(default_factory=dict)
    next_order_number: int = 1001
    # Notices produced by the transition under way; sent once the store's lock is released.
    pending: list[Notice] = field(default_factory=list)
    # What the sandbox reports about itself (benchmarks and tests read these through the REST API).
    callbacks_sent: list[dict[str, Any]] = field(default_factory=list)
    webhooks_sent: list[dict[str, Any]] = field(default_factory=list)
    cost_charged: int = 0
    throttled_requests: int = 0
    requests: int = 0
    faults: Faults = field(default_factory=Faults)
    ids: IdSequence = field(default_factory=lambda: IdSequence(), repr=False)

    def new_id(self, kind: str) -> int:
        return self.ids(kind)

    @property
    def is_legacy(self) -> bool:
        return self.workflow == WORKFLOW_LEGACY


class IdSequence:
    """Numeric ids per resource kind, shared by all shops (like the store's global ids)."""

    def __init__(self, start: int = 1001) -> None:
        self._start = start
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str) -> int:
        with self._lock:
            value = self._next.get(kind, self._start)
            self._next[kind] = value + 1
            return value

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(dict(self._next).items())
