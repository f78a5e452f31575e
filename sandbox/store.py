"""The sandbox store's behaviour: every state change as a plain function over a `Shop`.

Each function checks everything first and raises a `StoreUserError` subclass (which the GraphQL layer turns into
`userErrors` and the REST layer into 422) or `ResourceNotFound` before it changes anything, then applies the
change, appends to the order's timeline, and queues the callbacks and webhooks the change implies on
`shop.pending`. `Store.transaction` holds the lock around a change and hands the queued notices to the notifier
once the lock is released, so no HTTP is ever sent while holding it.

The transitions follow the table in shopify-fulfillment-api.md §3 (documentation corrected by recordings).
"""

from __future__ import annotations

import re
import secrets
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from sandbox import inventory, payloads
from sandbox.inventory import primary_location
from sandbox.model import (
    ACCEPTED,
    APP,
    CANCELLATION_ACCEPTED,
    CANCELLATION_REJECTED,
    CANCELLATION_REQUEST,
    CANCELLATION_REQUESTED,
    CLOSED,
    FINISHED,
    FULFILLMENT_REQUEST,
    IN_PROGRESS,
    INCOMPLETE,
    MANUAL_SERVICE_ID,
    MERCHANT,
    MERCHANT_ACTOR,
    ON_HOLD,
    OPEN,
    PLAN_THROTTLE,
    REJECTED,
    REQUEST_IN_SERVICE_HANDS,
    SCHEDULED,
    SUBMITTED,
    UNSUBMITTED,
    WORKFLOW_FULFILLMENT_ORDERS,
    WORKFLOWS,
    Actor,
    Address,
    AppInstall,
    CalculatedReturnLine,
    Callback,
    Fulfillment,
    FulfillmentEvent,
    FulfillmentHold,
    FulfillmentLineItem,
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    FulfillmentService,
    IdSequence,
    InvalidInput,
    InvalidTransition,
    LineItem,
    Location,
    MerchantRequest,
    Notice,
    NotPermitted,
    Order,
    OrderLocked,
    ResourceNotFound,
    Shop,
    StoreUserError,
    TimelineEntry,
    TrackingInfo,
    UserErrors,
    WebhookDelivery,
    address_fields,
    gid,
    new_manual_service,
    now,
    parse_id,
)

SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")
MAX_HOLDS_PER_APP = 10
# fulfillmentOrderReportProgress came with 2026-04: requests at older versions are not offered REPORT_PROGRESS.
REPORT_PROGRESS_SINCE = "2026-04"
# Request statuses from which the merchant may (re)submit a fulfillment request.
SUBMITTABLE_REQUESTS = frozenset({UNSUBMITTED, REJECTED, CANCELLATION_ACCEPTED, CLOSED})


# ---------------------------------------------------------------------------------------------------------
# The registry of shops and tokens
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenOwner:
    shop_domain: str
    actor: Actor


class Store:
    """All shops of one sandbox process, behind one lock (the sandbox runs as a single process)."""

    def __init__(self, notifier: Callable[[Shop, Notice], None] | None = None) -> None:
        self.lock = threading.RLock()
        self.shops: dict[str, Shop] = {}
        self.tokens: dict[str, TokenOwner] = {}
        self.ids = IdSequence()
        self.notifier = notifier
        # OAuth authorization codes not yet exchanged: code -> grant (single use).
        self.oauth_codes: dict[str, dict[str, Any]] = {}

    @contextmanager
    def transaction(self, shop: Shop) -> Iterator[Shop]:
        """Hold the lock for one change; send what it queued after releasing it."""
        with self.lock:
            try:
                yield shop
            finally:
                queued, shop.pending = shop.pending, []
        if self.notifier is not None:
            for notice in queued:
                self.notifier(shop, notice)

    def shop(self, domain: str) -> Shop:
        shop = self.shops.get(domain)
        if shop is None:
            raise ResourceNotFound(domain)
        return shop

    def owner_of(self, token: str | None) -> TokenOwner | None:
        return self.tokens.get(token) if token else None

    def create_shop(
        self,
        domain: str,
        plan: str = "standard",
        workflow: str = WORKFLOW_FULFILLMENT_ORDERS,
        auto_fulfill: bool = False,
        throttle: dict[str, int] | None = None,
    ) -> tuple[Shop, bool]:
        """The shop for `domain`, created with its merchant-managed "Shop location" if new; (shop, created)."""
        if not SHOP_DOMAIN.match(domain or ""):
            raise InvalidInput("Domain must look like name.myshopify.com", ["domain"])
        if plan not in PLAN_THROTTLE:
            raise InvalidInput(f"Plan must be one of {', '.join(PLAN_THROTTLE)}", ["plan"])
        if workflow not in WORKFLOWS:
            raise InvalidInput(f"Workflow must be one of {', '.join(WORKFLOWS)}", ["workflow"])
        with self.lock:
            existing = self.shops.get(domain)
            if existing is not None:
                return existing, False
            maximum, rate = PLAN_THROTTLE[plan]
            throttle = throttle or {}
            shop = Shop(
                id=self.ids("Shop"),
                domain=domain,
                plan=plan,
                workflow=workflow,
                auto_fulfill=auto_fulfill,
                merchant_token=f"shpmt_{secrets.token_hex(16)}",
                maximum_available=int(throttle.get("maximum_available", maximum)),
                restore_rate=int(throttle.get("restore_rate", rate)),
                name=domain.split(".", 1)[0].replace("-", " ").title(),
                email=f"owner@{domain}",
                ids=self.ids,
            )
            home = Location(
                id=self.ids("Location"),
                name="Shop location",
                address=Address(address1="1 Main Street", city="Oslo", country_code="NO", zip="0150"),
            )
            shop.locations[home.id] = home
            shop.manual_service = new_manual_service(home.id)
            self.shops[domain] = shop
            self.tokens[shop.merchant_token] = TokenOwner(domain, MERCHANT_ACTOR)
            return shop, True

    def install_app(self, shop: Shop, scopes: str, reuse: bool = False) -> AppInstall:
        """Register the app on the shop and issue its offline access token."""
        with self.lock:
            if reuse and shop.installs:
                install = next(iter(shop.installs.values()))
                install.scopes = scopes
                return install
            install = AppInstall(id=uuid.uuid4().hex[:12], access_token=f"shpat_{secrets.token_hex(16)}", scopes=scopes)
            shop.installs[install.id] = install
            self.tokens[install.access_token] = TokenOwner(shop.domain, Actor(APP, install.id))
            return install

    def uninstall_app(self, shop: Shop, install_id: str | None = None) -> list[str]:
        """Remove the app (one install, or all): `app/uninstalled` goes out first, then its tokens and
        webhook subscriptions are gone. Returns the removed install ids."""
        with self.transaction(shop):
            removed = [i for i in shop.installs if install_id in (None, i)]
            for iid in removed:
                _emit_webhook(shop, "APP_UNINSTALLED", payloads.shop_rest(shop), install_id=iid)
                install = shop.installs.pop(iid)
                self.tokens.pop(install.access_token, None)
                for sub_id in [s.id for s in shop.webhook_subscriptions.values() if s.install_id == iid]:
                    del shop.webhook_subscriptions[sub_id]
                for service in [s for s in shop.services.values() if s.install_id == iid]:
                    shop.locations[service.location_id].is_active = False
                    shop.locations[service.location_id].fulfillment_service_id = None
                    del shop.services[service.id]
            return removed


# ---------------------------------------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------------------------------------


def get_fulfillment_order(shop: Shop, id_: Any) -> FulfillmentOrder:
    fo = shop.fulfillment_orders.get(parse_id(id_, "FulfillmentOrder") or -1)
    if fo is None:
        raise ResourceNotFound(str(id_))
    return fo


def get_order(shop: Shop, id_: Any) -> Order:
    order = shop.orders.get(parse_id(id_, "Order") or -1)
    if order is None:
        raise ResourceNotFound(str(id_))
    return order


def find_fulfillment(shop: Shop, id_: Any) -> Fulfillment | None:
    """A fulfillment by id (None when unknown: the fulfillment mutations answer that with a userError)."""
    return shop.fulfillments.get(parse_id(id_, "Fulfillment") or -1)


def get_location(shop: Shop, id_: Any) -> Location:
    location = shop.locations.get(parse_id(id_, "Location") or -1)
    if location is None:
        raise ResourceNotFound(str(id_))
    return location


def get_service(shop: Shop, id_: Any) -> FulfillmentService:
    service = shop.services.get(parse_id(id_, "FulfillmentService") or -1)
    if service is None:
        raise ResourceNotFound(str(id_))
    return service


def fulfillment_services(shop: Shop) -> list[FulfillmentService]:
    """shop.fulfillmentServices: the built-in manual service first, then the apps' services (as recorded)."""
    apps = sorted(shop.services.values(), key=lambda s: int(s.id))
    return [shop.manual_service, *apps] if shop.manual_service else apps


def find_service(shop: Shop, id_: Any) -> FulfillmentService | None:
    """A fulfillment service by id, the manual one (gid://shopify/FulfillmentService/manual) included."""
    if isinstance(id_, str) and id_.split("?", 1)[0] == gid("FulfillmentService", MANUAL_SERVICE_ID):
        return shop.manual_service
    return shop.services.get(parse_id(id_, "FulfillmentService") or -1)


def service_at(shop: Shop, location_id: int) -> FulfillmentService | None:
    """The service that fulfils at a location: the app's whose location it is, else (a merchant location) the
    built-in manual service."""
    if location_id in shop.removed_locations:
        return None  # its service was deleted with it
    location = shop.locations.get(location_id)
    if location is not None and location.fulfillment_service_id is not None:
        return shop.services.get(location.fulfillment_service_id)
    return shop.manual_service


def service_of(shop: Shop, fo: FulfillmentOrder) -> FulfillmentService | None:
    """The fulfillment service whose location the fulfillment order is assigned to (None: merchant-managed)."""
    location = shop.locations.get(fo.location_id)
    if location is None or location.fulfillment_service_id is None:
        return None
    return shop.services.get(location.fulfillment_service_id)


def assigned_fulfillment_orders(
    shop: Shop, actor: Actor, assignment_status: str | None = None, location_ids: list[int] | None = None
) -> list[FulfillmentOrder]:
    """Fulfillment orders at the calling app's service locations, by id (assignedFulfillmentOrders)."""
    own = {s.location_id for s in shop.services.values() if actor.is_app and s.install_id == actor.install_id}
    if location_ids:
        own &= set(location_ids)
    wanted = {
        "FULFILLMENT_REQUESTED": lambda fo: fo.request_status == SUBMITTED,
        "CANCELLATION_REQUESTED": lambda fo: fo.request_status == CANCELLATION_REQUESTED,
        "FULFILLMENT_ACCEPTED": lambda fo: fo.request_status in (ACCEPTED, CANCELLATION_REJECTED),
        "FULFILLMENT_UNSUBMITTED": lambda fo: fo.request_status == UNSUBMITTED,
    }
    keep = wanted.get(assignment_status or "", lambda fo: fo.status != CLOSED)
    found = [
        fo
        for fo in shop.fulfillment_orders.values()
        if fo.location_id in own and keep(fo) and (assignment_status is None or fo.status not in FINISHED)
    ]
    return sorted(found, key=lambda fo: fo.id)


# ---------------------------------------------------------------------------------------------------------
# Derived state
# ---------------------------------------------------------------------------------------------------------


def supported_actions(shop: Shop, fo: FulfillmentOrder, api_version: str = "unstable") -> list[str]:
    """What can be done next, derived from the state (FulfillmentOrder.supportedActions), as a request at
    `api_version` sees it."""
    at_service = service_of(shop, fo) is not None
    rs = fo.request_status
    if fo.status in FINISHED:
        return []
    if fo.status == ON_HOLD:
        return ["RELEASE_HOLD", "HOLD", "MOVE"]
    if fo.status == SCHEDULED:
        return ["MARK_AS_OPEN", "MOVE"]
    if rs == SUBMITTED:
        # The service must answer first; the merchant can only withdraw the request.
        return [] if shop.is_legacy else ["CANCEL_FULFILLMENT_ORDER"]
    if rs in (ACCEPTED, CANCELLATION_REJECTED):
        actions = ["CREATE_FULFILLMENT"]
        if not shop.is_legacy:
            actions.append("REQUEST_CANCELLATION")
        return actions
    if rs == CANCELLATION_REQUESTED:
        return ["CANCEL_FULFILLMENT_ORDER"]
    # As recorded (and in the store's order): a hold is offered also on INCOMPLETE and progress-reported ones; a
    # split only when more than one item is left to divide; a merchant-managed one with reported progress may
    # report again or be marked as open.
    if at_service:
        actions = ["REQUEST_FULFILLMENT", "CREATE_FULFILLMENT", "HOLD"]
        if not fo.progress_reported:
            actions.append("MOVE")
    else:
        actions = ["CREATE_FULFILLMENT"]
        if api_version == "unstable" or api_version >= REPORT_PROGRESS_SINCE:
            actions.append("REPORT_PROGRESS")
        if not fo.progress_reported:
            actions.append("MOVE")
        actions.append("HOLD")
        if fo.progress_reported:
            actions.append("MARK_AS_OPEN")
    if fo.status == OPEN:
        if fo.remaining() > 1:
            actions.append("SPLIT")
        if merge_partners(shop, fo):
            actions.append("MERGE")
    return actions


def merge_partners(shop: Shop, fo: FulfillmentOrder) -> list[FulfillmentOrder]:
    """Other fulfillment orders of the same order and location that could be merged with this one."""
    order = shop.orders[fo.order_id]
    return [
        other
        for other in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids)
        if other.id != fo.id and _mergeable(other) and other.location_id == fo.location_id
    ]


def _mergeable(fo: FulfillmentOrder) -> bool:
    return fo.status == OPEN and fo.request_status in SUBMITTABLE_REQUESTS and fo.remaining() > 0


def display_fulfillment_status(shop: Shop, order: Order) -> str:
    """Order.displayFulfillmentStatus, derived from fulfillments and fulfillment orders."""
    ordered = sum(li.current_quantity for li in order.line_items)
    shipped = sum(
        shop.fulfillments[i].total_quantity() for i in order.fulfillment_ids if shop.fulfillments[i].status == "SUCCESS"
    )
    if ordered and shipped >= ordered:
        return "FULFILLED"
    if shipped:
        return "PARTIALLY_FULFILLED"
    active = [
        fo
        for fo in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids)
        if fo.status not in FINISHED and fo.remaining() > 0
    ]
    if any(fo.status == IN_PROGRESS or fo.request_status in REQUEST_IN_SERVICE_HANDS for fo in active):
        return "IN_PROGRESS"
    if any(fo.request_status == REJECTED for fo in active):
        return "REQUEST_DECLINED"
    if active and all(fo.status == ON_HOLD for fo in active):
        return "ON_HOLD"
    if active and all(fo.status == SCHEDULED for fo in active):
        return "SCHEDULED"
    return "UNFULFILLED"


def open_requests(shop: Shop, order: Order) -> list[FulfillmentOrder]:
    """Fulfillment orders of the order whose request a fulfillment service currently holds."""
    return [
        fo
        for fo in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids)
        if fo.status not in FINISHED and fo.status != INCOMPLETE and fo.request_status in REQUEST_IN_SERVICE_HANDS
    ]


# ---------------------------------------------------------------------------------------------------------
# Small helpers shared by the transitions
# ---------------------------------------------------------------------------------------------------------


def _timeline(shop: Shop, order: Order, kind: str, message: str, fo: FulfillmentOrder | None = None) -> None:
    at = now()
    order.timeline.append(TimelineEntry(at, kind, message, fo.id if fo else None))
    order.updated_at = at


def _touch(*fos: FulfillmentOrder | None) -> None:
    at = now()
    for fo in fos:
        if fo is not None:
            fo.updated_at = at


def _emit_webhook(shop: Shop, topic: str, payload: dict[str, Any], install_id: str | None = None) -> None:
    """Queue one delivery per subscription to `topic` (of one install, or of all)."""
    event_id = str(uuid.uuid4())
    triggered = payloads.iso(now()) or ""
    for sub in shop.webhook_subscriptions.values():
        if sub.topic == topic and install_id in (None, sub.install_id):
            shop.pending.append(WebhookDelivery(sub.uri, topic, payload, str(uuid.uuid4()), event_id, triggered))


def _emit_callback(shop: Shop, fo: FulfillmentOrder, kind: str) -> None:
    service = service_of(shop, fo)
    if service is not None and service.callback_url:
        shop.pending.append(Callback(service.callback_url.rstrip("/") + "/fulfillment_order_notification", kind))


def _service_name(shop: Shop, fo: FulfillmentOrder) -> str:
    service = service_of(shop, fo)
    return service.name if service else shop.locations[fo.location_id].name


def _require_service_app(shop: Shop, fo: FulfillmentOrder, actor: Actor) -> FulfillmentService:
    """App-side actions belong to the app whose fulfillment service owns the assigned location."""
    service = service_of(shop, fo)
    if service is None:
        raise NotPermitted(
            "The fulfillment order's assigned fulfillment service must be of api type",
            None,
            "FULFILLMENT_ORDER_INVALID_FULFILLMENT_SERVICE_OWNERSHIP",
        )
    if not actor.is_app or service.install_id != actor.install_id:
        raise NotPermitted(
            "The fulfillment order is assigned to a fulfillment service that this app does not own.",
            ["id"],
            "FULFILLMENT_ORDER_INVALID_FULFILLMENT_SERVICE_OWNERSHIP",
        )
    return service


def _requested_quantities(fo: FulfillmentOrder, items: list[dict[str, Any]] | None, field: str) -> dict[int, int]:
    """fo line item id -> quantity, from `[{id, quantity}]`; all remaining when `items` is None or empty (the
    store reads an empty list as "everything")."""
    if not items:
        return {li.id: li.remaining_quantity for li in fo.line_items if li.remaining_quantity > 0}
    quantities: dict[int, int] = {}
    for index, item in enumerate(items):
        li_id = parse_id(item.get("id"), "FulfillmentOrderLineItem")
        line = fo.line_item(li_id) if li_id is not None else None
        if line is None:
            raise InvalidInput(
                f"Fulfillment order line item {item.get('id')} does not belong to fulfillment order"
                f" {gid('FulfillmentOrder', fo.id)}.",
                [field, str(index), "id"],
                "INVALID_LINE_ITEM_QUANTITY",
            )
        quantity = int(item.get("quantity") or 0)
        if line.id in quantities:
            raise InvalidInput("Line items must be unique.", [field, str(index), "id"], "INVALID_LINE_ITEM_QUANTITY")
        if quantity <= 0 or quantity > line.remaining_quantity:
            raise InvalidInput(
                "Invalid fulfillment order line item quantity requested.",
                [field, str(index), "quantity"],
                "INVALID_LINE_ITEM_QUANTITY",
            )
        quantities[line.id] = quantity
    return quantities


def _new_fulfillment_order(
    shop: Shop,
    order: Order,
    location_id: int,
    quantities: dict[int, int],
    status: str = OPEN,
    like: FulfillmentOrder | None = None,
) -> FulfillmentOrder:
    """A fresh fulfillment order for `quantities` (order line item id -> quantity). One made from another (`like`)
    keeps its fulfillAt and fulfillBy, as the store's split-off fulfillment orders do."""
    fo = FulfillmentOrder(
        id=shop.new_id("FulfillmentOrder"),
        order_id=order.id,
        location_id=location_id,
        status=status,
        line_items=[
            FulfillmentOrderLineItem(shop.new_id("FulfillmentOrderLineItem"), line_item_id, qty, qty)
            for line_item_id, qty in quantities.items()
            if qty > 0
        ],
        fulfill_at=like.fulfill_at if like else _order_hour(order),
        fulfill_by=like.fulfill_by if like else None,
    )
    shop.fulfillment_orders[fo.id] = fo
    order.fulfillment_order_ids.append(fo.id)
    return fo


def _order_hour(order: Order) -> datetime:
    """When an unscheduled fulfillment order may be fulfilled: the store answers the hour the order was placed."""
    return order.created_at.replace(minute=0, second=0, microsecond=0)


def _take(fo: FulfillmentOrder, quantities: dict[int, int], keep_empty: bool = False) -> dict[int, int]:
    """Remove unfulfilled quantities (fo line item id -> qty) from `fo`, for them to live in another fulfillment
    order. Returns them keyed by order line item id. Lines left with nothing are dropped, unless `keep_empty`:
    a fulfillment order closed by a cancellation still lists its lines, with quantities 0 (as recorded)."""
    moved: dict[int, int] = {}
    for li in fo.line_items:
        qty = quantities.get(li.id, 0)
        if qty:
            li.remaining_quantity -= qty
            li.total_quantity -= qty
            moved[li.line_item_id] = moved.get(li.line_item_id, 0) + qty
    if not keep_empty:
        fo.line_items = [li for li in fo.line_items if li.total_quantity > 0]
    return moved


def _all_remaining(fo: FulfillmentOrder) -> dict[int, int]:
    return {li.id: li.remaining_quantity for li in fo.line_items if li.remaining_quantity > 0}


def _has_fulfilled_items(fo: FulfillmentOrder) -> bool:
    return any(li.remaining_quantity < li.total_quantity for li in fo.line_items)


# ---------------------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------------------


def _new_line_item(
    shop: Shop, order_id: int, item: dict[str, Any], field: list[str], default_location: int
) -> tuple[LineItem, int]:
    """An order line item from the merchant API's fields, with the location it is to be fulfilled from."""
    quantity = int(item.get("quantity") or 0)
    if quantity <= 0:
        raise InvalidInput("Quantity must be greater than 0.", [*field, "quantity"])
    location_id = default_location
    if item.get("location_id"):
        location_id = get_location(shop, item["location_id"]).id
    sku = item.get("sku")
    line = LineItem(
        id=shop.new_id("LineItem"),
        order_id=order_id,
        sku=sku,
        title=item.get("title") or (f"Product {sku}" if sku else "Product"),
        quantity=quantity,
        variant_title=item.get("variant_title"),
        vendor=item.get("vendor"),
        requires_shipping=bool(item.get("requires_shipping", True)),
        price=_price(item.get("price"), [*field, "price"]),
    )
    return line, location_id


def create_order(
    shop: Shop,
    line_items: list[dict[str, Any]],
    shipping_address: dict[str, Any] | None = None,
    note: str | None = None,
    paid: bool = True,
    fulfill_at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> Order:
    """Place an order: one fulfillment order per location. Line items without a location go to the shop's first
    fulfillment-service location, else to the shop location. Paid orders of auto-fulfil shops are requested
    at once. `details`: the customer's `email` and `phone`, `tags`, `currency`, a `financial_status` to
    show instead of the one derived from `paid`, and `payment_recorded` False when none is to show."""
    if not line_items:
        raise InvalidInput("An order needs at least one line item.", ["line_items"])
    details = details or {}
    financial_status = details.get("financial_status")
    if financial_status is not None and financial_status not in FINANCIAL_STATUSES:
        raise InvalidInput(f"Financial status must be one of {', '.join(FINANCIAL_STATUSES)}", ["financial_status"])
    default_location = _default_location(shop)
    address = Address(**{k: v for k, v in (shipping_address or {}).items() if k in Address.__dataclass_fields__})
    lines: list[tuple[LineItem, int]] = []
    order_id = shop.new_id("Order")
    for index, item in enumerate(line_items):
        lines.append(_new_line_item(shop, order_id, item, ["line_items", str(index)], default_location))
    order = Order(
        id=order_id,
        number=shop.next_order_number,
        line_items=[line for line, _ in lines],
        shipping_address=address,
        note=note,
        paid=paid,
        email=details.get("email"),
        phone=details.get("phone"),
        tags=sorted(str(t) for t in details.get("tags") or []),  # the store answers tags sorted
        currency=str(details.get("currency") or "USD"),
        financial_status=financial_status,
        payment_recorded=bool(details.get("payment_recorded", True)),
    )
    shop.next_order_number += 1
    shop.orders[order.id] = order
    shop.line_items.update((line.id, line) for line in order.line_items)
    by_location: dict[int, dict[int, int]] = {}
    for line, location_id in lines:
        by_location.setdefault(location_id, {})[line.id] = line.quantity
    scheduled = fulfill_at is not None and fulfill_at > now()
    for location_id, quantities in by_location.items():
        fo = _new_fulfillment_order(shop, order, location_id, quantities, SCHEDULED if scheduled else OPEN)
        fo.fulfill_at = fulfill_at or fo.fulfill_at
    _timeline(shop, order, "order_placed", f"Order {order.name} was placed{' and paid' if paid else ''}.")
    if paid:
        _auto_fulfill(shop, order)
    return order


def create_order_from_input(shop: Shop, order: dict[str, Any]) -> Order:
    """An order created through the Admin API (`orderCreate`'s OrderCreateOrderInput), placed as the merchant
    places one. It is paid when a sale or capture succeeded; with neither transactions nor a financial status the
    store shows no financial status at all (its recorded answers)."""
    lines = []
    for item in order.get("lineItems") or []:
        variant = shop.variants.get(parse_id(item.get("variantId"), "ProductVariant") or -1)
        lines.append(
            {
                "title": item.get("title") or (shop.products[variant.product_id].title if variant else None),
                "sku": item.get("sku") or (variant.sku if variant else None),
                "quantity": item.get("quantity"),
                "price": ((item.get("priceSet") or {}).get("shopMoney") or {}).get("amount"),
                "requires_shipping": item.get("requiresShipping", True) is not False,
            }
        )
    transactions = order.get("transactions") or []
    paid = any(
        t.get("status", "SUCCESS") == "SUCCESS" and t.get("kind", "SALE") in {"SALE", "CAPTURE"} for t in transactions
    )
    status = order.get("financialStatus")
    details = {k: order[k] for k in ("email", "phone", "tags", "currency") if order.get(k) is not None}
    details |= {"financial_status": status, "payment_recorded": bool(transactions) or status is not None}
    address = {k: v for k, v in address_fields(order.get("shippingAddress") or {}).items() if v}
    return create_order(shop, lines, address, order.get("note"), paid, None, details)


FINANCIAL_STATUSES = (
    "PENDING",
    "AUTHORIZED",
    "PARTIALLY_PAID",
    "PARTIALLY_REFUNDED",
    "VOIDED",
    "PAID",
    "REFUNDED",
    "EXPIRED",
)


def _price(value: Any, field: list[str]) -> str:
    """A unit price as a decimal string (the store's Decimal); "0.00" when none was given."""
    if value is None or value == "":
        return "0.00"
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput("Price must be a decimal number.", field) from exc
    if not amount.is_finite() or amount < 0:
        raise InvalidInput("Price must be a decimal number of at least 0.", field)
    return str(amount)


def money(amount: Decimal) -> str:
    """A Decimal as the store writes money amounts: no trailing zeros, but always a fraction ("36.0")."""
    text = f"{amount.normalize():f}"
    return text if "." in text else f"{text}.0"


def order_total(order: Order) -> Decimal:
    """The order's total at its line items' current quantities (edits change it; the sandbox takes no returns)."""
    return sum((Decimal(li.price) * li.current_quantity for li in order.line_items), Decimal(0))


def display_financial_status(order: Order) -> str | None:
    """Order.displayFinancialStatus: the merchant's, else PAID / PENDING from the payment; none for an order created
    without any payment recorded (the store's recorded `orderCreate` answers)."""
    if order.financial_status is None and not order.payment_recorded:
        return None
    return order.financial_status or ("PAID" if order.paid else "PENDING")


def fulfillable_quantity(shop: Shop, line: LineItem) -> int:
    """LineItem.fulfillableQuantity: what is left to fulfil in fulfillment orders that may be worked on now
    (held and scheduled ones do not count, as the store answers)."""
    order = shop.orders[line.order_id]
    return sum(
        li.remaining_quantity
        for fo in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids)
        if fo.status not in FINISHED and fo.status not in (ON_HOLD, SCHEDULED)
        for li in fo.line_items
        if li.line_item_id == line.id
    )


def _default_location(shop: Shop) -> int:
    for service in sorted(shop.services.values(), key=lambda s: s.id):
        location = shop.locations.get(service.location_id)
        if location is not None and location.is_active:
            return location.id
    return min(loc.id for loc in shop.locations.values() if loc.fulfillment_service_id is None)


def _auto_fulfill(shop: Shop, order: Order) -> None:
    if not shop.auto_fulfill:
        return
    for fo_id in list(order.fulfillment_order_ids):
        fo = shop.fulfillment_orders[fo_id]
        if service_of(shop, fo) is not None and fo.status == OPEN and fo.request_status == UNSUBMITTED:
            submit_fulfillment_request(shop, fo.id, None, False, None, MERCHANT_ACTOR, automatic=True)


def pay_order(shop: Shop, order_id: Any) -> Order:
    order = get_order(shop, order_id)
    if order.paid:
        raise InvalidTransition("Order is already paid.", ["id"])
    order.paid = True
    _timeline(shop, order, "order_paid", "Payment was captured.")
    _auto_fulfill(shop, order)
    return order


def _refuse_while_requested(shop: Shop, order: Order, what: str) -> None:
    held = open_requests(shop, order)
    if held:
        fo = held[0]
        raise OrderLocked(
            f"This order can't be {what} while {_service_name(shop, fo)} has a fulfillment request for it"
            f" ({gid('FulfillmentOrder', fo.id)} is {fo.request_status}). Cancel the request first.",
            ["order"],
        )


def edit_order(shop: Shop, order_id: Any, changes: dict[str, Any]) -> Order:
    """Edit an order (the store's order edit, committed at once). Refused while a service holds a request (row
    N4). `line_items`: `{id, quantity}`, a line's new current quantity; `add`: new line items, as an order's.

    As the store's recorded edit shows it: a line keeps its ordered `quantity` and its `currentQuantity` changes;
    what is taken off comes off the remaining quantity of its open fulfillment orders (the same fulfillment
    order, smaller), and each added line gets a fulfillment order of its own. A line cannot go below what was
    fulfilled of it."""
    order = get_order(shop, order_id)
    _refuse_while_requested(shop, order, "edited")
    lines = {line.id: line for line in order.line_items}
    # Every change is checked before any is made: a refused edit changes nothing.
    quantities: list[tuple[LineItem, int]] = []
    for index, entry in enumerate(changes.get("line_items") or []):
        field = ["line_items", str(index)]
        line = lines.get(parse_id(entry.get("id"), "LineItem") or -1)
        if line is None:
            raise InvalidInput("Line item does not exist on this order.", [*field, "id"])
        quantity = int(entry.get("quantity", line.current_quantity))
        fulfilled = fulfilled_quantity(shop, line)
        if quantity < fulfilled:  # (never below 0 either)
            raise InvalidInput(f"Quantity can't be less than the {fulfilled} already fulfilled.", [*field, "quantity"])
        quantities.append((line, quantity))
    added = [
        _new_line_item(shop, order.id, item, ["add", str(index)], _default_location(shop))
        for index, item in enumerate(changes.get("add") or [])
    ]
    for line, quantity in quantities:
        _set_current_quantity(shop, order, line, quantity)
    for line, location_id in added:
        order.line_items.append(line)
        shop.line_items[line.id] = line
        _new_fulfillment_order(shop, order, location_id, {line.id: line.quantity})
    order.updated_at = now()
    _timeline(shop, order, "order_edited", f"Order was edited{': ' + changes['note'] if changes.get('note') else ''}.")
    if added and order.paid:
        _auto_fulfill(shop, order)
    return order


def fulfilled_quantity(shop: Shop, line: LineItem) -> int:
    """How much of an order line item its successful fulfillments shipped."""
    order = shop.orders[line.order_id]
    return sum(
        fli.quantity
        for f in (shop.fulfillments[i] for i in order.fulfillment_ids)
        if f.status == "SUCCESS"
        for fli in f.line_items
        if fli.line_item_id == line.id
    )


def _set_current_quantity(shop: Shop, order: Order, line: LineItem, quantity: int) -> None:
    """Change a line's current quantity (checked: not below what was fulfilled) in its open fulfillment orders."""
    open_lines = [
        fo_line
        for fo in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids)
        if fo.status not in FINISHED
        for fo_line in fo.line_items
        if fo_line.line_item_id == line.id
    ]
    take = line.current_quantity - quantity
    for fo_line in open_lines:
        if take <= 0:
            break
        taken = min(take, fo_line.remaining_quantity)
        fo_line.remaining_quantity -= taken
        fo_line.total_quantity -= taken
        take -= taken
    if take < 0 and open_lines:  # more of it: onto the open fulfillment order that holds it
        open_lines[0].remaining_quantity -= take
        open_lines[0].total_quantity -= take
    elif take < 0:
        _new_fulfillment_order(shop, order, _default_location(shop), {line.id: -take})
    line.removed += line.current_quantity - quantity
    for fo in (shop.fulfillment_orders[i] for i in order.fulfillment_order_ids):
        if fo.status not in FINISHED and any(fo_line.line_item_id == line.id for fo_line in fo.line_items):
            fo.line_items = [fo_line for fo_line in fo.line_items if fo_line.total_quantity > 0]
            if fo.remaining() == 0:
                fo.status = CLOSED  # what was left of it was edited away
            _touch(fo)


def refund_order(shop: Shop, order_id: Any, refund: dict[str, Any]) -> Order:
    """Refunding is refused while a service holds a request (row N4); the sandbox only records the refund."""
    order = get_order(shop, order_id)
    _refuse_while_requested(shop, order, "refunded")
    amount = refund.get("amount")
    _timeline(shop, order, "order_refunded", f"A refund{' of ' + str(amount) if amount else ''} was issued.")
    return order


ORDER_CANCEL_REASONS = ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER")


def cancel_order(shop: Shop, order_id: Any, reason: str | None, staff_note: str | None = None) -> Order:
    """Cancel the whole order (orderCancel). Refused while something is fulfilled (cancel the fulfillments
    first, as the store asks) or while a fulfillment service works on it (it must accept a cancellation request
    first). Its open fulfillment orders close; a request a service has not accepted yet is withdrawn, and the
    service learns it from the FULFILLMENT_ORDERS_CANCELLED webhook or its next poll."""
    order = get_order(shop, order_id)
    reason = reason or "OTHER"
    if reason not in ORDER_CANCEL_REASONS:
        raise InvalidInput(f"Reason must be one of {', '.join(ORDER_CANCEL_REASONS)}", ["reason"], "INVALID")
    if order.cancelled_at is not None:
        raise InvalidTransition("Order has already been cancelled", ["orderId"], "INVALID")
    if any(shop.fulfillments[i].status == "SUCCESS" for i in order.fulfillment_ids):
        raise InvalidTransition("Cannot cancel an order that has outstanding fulfillments", ["orderId"], "INVALID")
    fos = [shop.fulfillment_orders[i] for i in order.fulfillment_order_ids]
    busy = next((fo for fo in fos if fo.status not in FINISHED and fo.request_status in SERVICE_WORKING), None)
    if busy is not None:
        raise InvalidTransition(
            f"Cannot cancel an order while {_service_name(shop, busy)} is fulfilling it"
            f" ({gid('FulfillmentOrder', busy.id)} is {busy.request_status}): request a cancellation first.",
            ["orderId"],
            "INVALID",
        )
    at = now()
    for fo in fos:
        if fo.status in FINISHED:
            continue
        fo.status = CLOSED
        _touch(fo)
        _emit_webhook(
            shop,
            "FULFILLMENT_ORDERS_CANCELLED",
            {"fulfillment_order": payloads.fulfillment_order_brief(fo), "replacement_fulfillment_order": None},
        )
    order.cancelled_at = at
    order.closed_at = at
    order.cancel_reason = reason
    note = f": {staff_note}" if staff_note else ""
    _timeline(shop, order, "order_cancelled", f"The order was cancelled ({reason}){note}.")
    return order


# Request statuses under which a fulfillment service has accepted the work and may have started it.
SERVICE_WORKING = frozenset({ACCEPTED, CANCELLATION_REQUESTED, CANCELLATION_REJECTED})


def set_fulfillment_deadline(shop: Shop, fo_ids: list[Any], deadline: datetime, actor: Actor) -> list[FulfillmentOrder]:
    """fulfillmentOrdersSetFulfillmentDeadline: the fulfillBy of each fulfillment order, all or none."""
    fos = [get_fulfillment_order(shop, i) for i in fo_ids]
    for fo in fos:
        if fo.status in FINISHED:
            raise InvalidTransition(
                f"The fulfillment order {gid('FulfillmentOrder', fo.id)} is closed.", ["fulfillmentOrderIds"]
            )
    for fo in fos:
        fo.fulfill_by = deadline
        _touch(fo)
    return fos


# ---------------------------------------------------------------------------------------------------------
# Fulfillment requests (merchant -> service)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class SubmitResult:
    original: FulfillmentOrder
    submitted: FulfillmentOrder
    unsubmitted: FulfillmentOrder | None


def submit_fulfillment_request(
    shop: Shop,
    fo_id: Any,
    message: str | None,
    notify_customer: bool | None,
    line_items: list[dict[str, Any]] | None,
    actor: Actor,
    automatic: bool = False,
) -> SubmitResult:
    """Request fulfilment from the service at the assigned location, for all or some items. A partial request
    keeps the id for the submitted items and moves the rest to a new UNSUBMITTED fulfillment order."""
    fo = get_fulfillment_order(shop, fo_id)
    service = service_of(shop, fo)
    if service is None:
        raise InvalidTransition("Fulfillment can only be requested from a fulfillment service location.", ["id"])
    submittable = fo.request_status in SUBMITTABLE_REQUESTS and (
        fo.status in (OPEN, INCOMPLETE) or (fo.status == IN_PROGRESS and fo.request_status == UNSUBMITTED)
    )
    if not submittable:
        raise InvalidTransition(
            f"Cannot request fulfillment for a fulfillment order with status {fo.status} and request status"
            f" {fo.request_status}.",
            ["id"],
        )
    quantities = _requested_quantities(fo, line_items, "fulfillmentOrderLineItems")
    if not quantities:
        raise InvalidTransition("The fulfillment order has no remaining items to request.", ["id"])
    order = shop.orders[fo.order_id]
    original = fo
    if fo.status == INCOMPLETE:
        # The closed request stays on record: the new request gets a new fulfillment order.
        by_line = {li.line_item_id: quantities[li.id] for li in fo.line_items if li.id in quantities}
        moved = _take(fo, _all_remaining(fo), keep_empty=True)
        fo.status = CLOSED
        fo = _new_fulfillment_order(shop, order, fo.location_id, moved, like=fo)
        quantities = {li.id: by_line[li.line_item_id] for li in fo.line_items if by_line.get(li.line_item_id)}
    unsubmitted = None
    rest = {li.id: li.remaining_quantity - quantities.get(li.id, 0) for li in fo.line_items}
    rest = {k: v for k, v in rest.items() if v > 0}
    if rest:
        unsubmitted = _new_fulfillment_order(shop, order, fo.location_id, _take(fo, rest), like=fo)
    fo.status = OPEN
    fo.request_status = SUBMITTED
    request = MerchantRequest(
        id=shop.new_id("FulfillmentOrderMerchantRequest"),
        kind=FULFILLMENT_REQUEST,
        message=message,
        request_options={"notify_customer": bool(notify_customer)},
        sent_at=now(),
        fulfillment_order_id=fo.id,
    )
    fo.merchant_requests.append(request)
    how = "automatically requested" if automatic else "requested"
    note = f": {message}" if message else ""
    _timeline(shop, order, "fulfillment_request_submitted", f"Fulfillment {how} from {service.name}{note}", fo)
    if shop.is_legacy:
        # The legacy workflow has no accept/reject step: the store hands the work over at once.
        fo.status = IN_PROGRESS
        fo.request_status = ACCEPTED
        _timeline(
            shop,
            order,
            "fulfillment_request_accepted",
            f"{service.name} received the fulfillment request (legacy workflow).",
            fo,
        )
    _touch(original, fo, unsubmitted)
    _emit_callback(shop, fo, FULFILLMENT_REQUEST)
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_FULFILLMENT_REQUEST_SUBMITTED",
        {
            "original_fulfillment_order": payloads.fulfillment_order_brief(original),
            "submitted_fulfillment_order": payloads.fulfillment_order_brief(fo),
            "unsubmitted_fulfillment_order": payloads.fulfillment_order_brief(unsubmitted),
            "fulfillment_order_merchant_request": payloads.merchant_request_brief(request),
        },
    )
    return SubmitResult(original, fo, unsubmitted)


def accept_fulfillment_request(
    shop: Shop, fo_id: Any, message: str | None, estimated_shipped_at: datetime | None, actor: Actor
) -> FulfillmentOrder:
    """OPEN / SUBMITTED -> IN_PROGRESS / ACCEPTED (service)."""
    fo = get_fulfillment_order(shop, fo_id)
    service = _require_service_app(shop, fo, actor)
    if fo.request_status != SUBMITTED or fo.status != OPEN:
        raise InvalidTransition(
            f"Cannot accept a fulfillment request for a fulfillment order with request status {fo.request_status}.",
            ["id"],
        )
    fo.status = IN_PROGRESS
    fo.request_status = ACCEPTED
    _touch(fo)
    eta = f" Expected to ship {payloads.iso(estimated_shipped_at)}." if estimated_shipped_at else ""
    text = f"{service.name} accepted the fulfillment request{': ' + message if message else '.'}{eta}"
    _timeline(shop, shop.orders[fo.order_id], "fulfillment_request_accepted", text, fo)
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_FULFILLMENT_REQUEST_ACCEPTED",
        {"fulfillment_order": payloads.fulfillment_order_brief(fo), "message": message},
    )
    return fo


def reject_fulfillment_request(
    shop: Shop,
    fo_id: Any,
    reason: str | None,
    message: str | None,
    line_items: list[dict[str, Any]] | None,
    actor: Actor,
) -> FulfillmentOrder:
    """OPEN / SUBMITTED -> OPEN / REJECTED (service); per-line messages go to the timeline."""
    fo = get_fulfillment_order(shop, fo_id)
    service = _require_service_app(shop, fo, actor)
    if shop.is_legacy:
        raise NotPermitted(
            "This store uses the legacy fulfillment workflow: fulfillment requests can't be rejected.", ["id"]
        )
    if fo.request_status != SUBMITTED or fo.status != OPEN:
        raise InvalidTransition(
            f"Cannot reject a fulfillment request for a fulfillment order with request status {fo.request_status}.",
            ["id"],
        )
    order = shop.orders[fo.order_id]
    details = []
    for index, item in enumerate(line_items or []):
        li_id = parse_id(item.get("fulfillmentOrderLineItemId"), "FulfillmentOrderLineItem")
        line = fo.line_item(li_id) if li_id is not None else None
        if line is None:
            raise InvalidInput(
                "Fulfillment order line item does not belong to this fulfillment order.",
                ["lineItems", str(index), "fulfillmentOrderLineItemId"],
            )
        sku = shop.line_items[line.line_item_id].sku
        details.append(f"{sku or gid('LineItem', line.line_item_id)}: {item.get('message') or 'unavailable'}")
    fo.request_status = REJECTED
    _touch(fo)
    text = f"{service.name} rejected the fulfillment request ({reason or 'OTHER'})"
    text += f": {message}" if message else "."
    if details:
        text += " Items: " + "; ".join(details)
    _timeline(shop, order, "fulfillment_request_rejected", text, fo)
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_FULFILLMENT_REQUEST_REJECTED",
        {"fulfillment_order": payloads.fulfillment_order_brief(fo), "reason": reason, "message": message},
    )
    return fo


# ---------------------------------------------------------------------------------------------------------
# Cancellation (merchant asks, service answers; or the merchant withdraws / resets)
# ---------------------------------------------------------------------------------------------------------


def _legacy_no_cancel(shop: Shop, fo: FulfillmentOrder) -> None:
    if shop.is_legacy and fo.request_status in REQUEST_IN_SERVICE_HANDS:
        raise NotPermitted(
            f"This fulfillment is in progress with {_service_name(shop, fo)} and can't be cancelled from the"
            " store. Contact the fulfillment service to cancel it.",
            ["id"],
        )


def submit_cancellation_request(shop: Shop, fo_id: Any, message: str | None, actor: Actor) -> FulfillmentOrder:
    """IN_PROGRESS / ACCEPTED -> IN_PROGRESS / CANCELLATION_REQUESTED (merchant); the service is pinged."""
    fo = get_fulfillment_order(shop, fo_id)
    _legacy_no_cancel(shop, fo)
    if fo.request_status == SUBMITTED:
        raise InvalidTransition(
            "The fulfillment request has not been accepted yet: cancel the fulfillment order instead.", ["id"]
        )
    if fo.status != IN_PROGRESS or fo.request_status not in (ACCEPTED, CANCELLATION_REJECTED):
        raise InvalidTransition(
            f"Cannot request cancellation for a fulfillment order with status {fo.status} and request status"
            f" {fo.request_status}.",
            ["id"],
        )
    fo.request_status = CANCELLATION_REQUESTED
    request = MerchantRequest(
        id=shop.new_id("FulfillmentOrderMerchantRequest"),
        kind=CANCELLATION_REQUEST,
        message=message,
        request_options={},  # the store records no options for a cancellation request
        sent_at=now(),
        fulfillment_order_id=fo.id,
    )
    fo.merchant_requests.append(request)
    _touch(fo)
    note = f": {message}" if message else ""
    _timeline(
        shop,
        shop.orders[fo.order_id],
        "cancellation_requested",
        f"Cancellation requested from {_service_name(shop, fo)}{note}",
        fo,
    )
    _emit_callback(shop, fo, CANCELLATION_REQUEST)
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_CANCELLATION_REQUEST_SUBMITTED",
        {
            "fulfillment_order": payloads.fulfillment_order_brief(fo),
            "fulfillment_order_merchant_request": payloads.merchant_request_brief(request),
        },
    )
    return fo


def accept_cancellation_request(shop: Shop, fo_id: Any, message: str | None, actor: Actor) -> FulfillmentOrder:
    """IN_PROGRESS / CANCELLATION_REQUESTED -> CLOSED / CANCELLATION_ACCEPTED with quantities 0 (service).
    What was left to do goes to a new OPEN / UNSUBMITTED fulfillment order at the same location."""
    fo = get_fulfillment_order(shop, fo_id)
    service = _require_service_app(shop, fo, actor)
    if fo.request_status != CANCELLATION_REQUESTED:
        raise InvalidTransition(
            f"Cannot accept a cancellation request for a fulfillment order with request status {fo.request_status}.",
            ["id"],
        )
    order = shop.orders[fo.order_id]
    left = _take(fo, _all_remaining(fo), keep_empty=True)
    fo.status = CLOSED
    fo.request_status = CANCELLATION_ACCEPTED
    replacement = _new_fulfillment_order(shop, order, fo.location_id, left, like=fo) if left else None
    _touch(fo)
    _timeline(
        shop,
        order,
        "cancellation_accepted",
        f"{service.name} accepted the cancellation request{': ' + message if message else '.'}",
        fo,
    )
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_CANCELLATION_REQUEST_ACCEPTED",
        {
            "fulfillment_order": payloads.fulfillment_order_brief(fo),
            "message": message,
            "replacement_fulfillment_order": payloads.fulfillment_order_brief(replacement),
        },
    )
    return fo


def reject_cancellation_request(shop: Shop, fo_id: Any, message: str | None, actor: Actor) -> FulfillmentOrder:
    """IN_PROGRESS / CANCELLATION_REQUESTED -> IN_PROGRESS / CANCELLATION_REJECTED (service)."""
    fo = get_fulfillment_order(shop, fo_id)
    service = _require_service_app(shop, fo, actor)
    if fo.request_status != CANCELLATION_REQUESTED:
        raise InvalidTransition(
            f"Cannot reject a cancellation request for a fulfillment order with request status {fo.request_status}.",
            ["id"],
        )
    fo.request_status = CANCELLATION_REJECTED
    _touch(fo)
    _timeline(
        shop,
        shop.orders[fo.order_id],
        "cancellation_rejected",
        f"{service.name} rejected the cancellation request{': ' + message if message else '.'}",
        fo,
    )
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_CANCELLATION_REQUEST_REJECTED",
        {"fulfillment_order": payloads.fulfillment_order_brief(fo), "message": message},
    )
    return fo


# Request statuses from which the merchant may cancel: nothing the service has accepted is thrown away.
CANCELABLE_REQUESTS = frozenset({UNSUBMITTED, SUBMITTED, REJECTED, CANCELLATION_REQUESTED, CLOSED})


def cancel_fulfillment_order(shop: Shop, fo_id: Any, actor: Actor) -> tuple[FulfillmentOrder, FulfillmentOrder]:
    """The original closes and a replacement OPEN / UNSUBMITTED fulfillment order carries the remaining work: on
    an open unsubmitted one (as recorded), on a SUBMITTED request (withdrawn, N6) or a CANCELLATION_REQUESTED one
    (reset, N8). The service is not told."""
    fo = get_fulfillment_order(shop, fo_id)
    _legacy_no_cancel(shop, fo)
    if fo.progress_reported and service_of(shop, fo) is None:
        raise InvalidTransition(
            "Cannot cancel fulfillment order that has had progress reported. Mark as unfulfilled first.",
            ["id"],
            "FULFILLMENT_ORDER_HAS_MANUALLY_REPORTED_PROGRESS",
        )
    if fo.status in FINISHED or fo.request_status not in CANCELABLE_REQUESTS or fo.remaining() == 0:
        raise InvalidTransition("Fulfillment order is not in cancelable request state and can't be canceled.", None)
    order = shop.orders[fo.order_id]
    was = fo.request_status
    # A withdrawn or reset request stays on record with its lines at 0; an unrequested one closes empty.
    left = _take(fo, _all_remaining(fo), keep_empty=was != UNSUBMITTED)
    fo.status = CLOSED
    replacement = _new_fulfillment_order(shop, order, fo.location_id, left, like=fo)
    _touch(fo)
    if was not in (SUBMITTED, CANCELLATION_REQUESTED):
        _timeline(shop, order, "fulfillment_order_cancelled", "The fulfillment order was cancelled and replaced.", fo)
    elif was == SUBMITTED:
        _timeline(
            shop,
            order,
            "fulfillment_request_withdrawn",
            f"The fulfillment request to {_service_name(shop, fo)} was withdrawn.",
            fo,
        )
    else:
        _timeline(
            shop,
            order,
            "fulfillment_order_reset",
            f"The fulfillment order was reset to unfulfilled without waiting for {_service_name(shop, fo)}.",
            fo,
        )
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_CANCELLED",
        {
            "fulfillment_order": payloads.fulfillment_order_brief(fo),
            "replacement_fulfillment_order": payloads.fulfillment_order_brief(replacement),
        },
    )
    return fo, replacement


# ---------------------------------------------------------------------------------------------------------
# Location, holds, split, merge, schedule (merchant)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class MoveResult:
    original: FulfillmentOrder
    moved: FulfillmentOrder
    remaining: FulfillmentOrder | None


def move_fulfillment_order(
    shop: Shop, fo_id: Any, new_location_id: Any, line_items: list[dict[str, Any]] | None, actor: Actor
) -> MoveResult:
    """Change the assigned location. The whole fulfillment order keeps its id; some items (or an order with
    fulfilled items) move to a new fulfillment order. Refused while a service holds the request."""
    fo = get_fulfillment_order(shop, fo_id)
    location = shop.locations.get(parse_id(new_location_id, "Location") or -1)
    if location is None:
        raise InvalidInput("Location not found.", ["id"])
    if not location.is_active:
        raise InvalidInput("The destination location is not active.", ["newLocationId"])
    if fo.status in FINISHED:
        raise InvalidTransition("Cannot change location.", None)
    if fo.request_status in REQUEST_IN_SERVICE_HANDS:
        # Once submitted to a 3PL the service has the work: it must give it back (cancellation) first.
        raise InvalidTransition("Cannot move submitted fulfillment order that is at a 3PL fulfillment service.", None)
    if fo.progress_reported:
        raise InvalidTransition(
            "Cannot move a fulfillment order that has had progress reported. To move a fulfillment order that has"
            " had progress reported, the fulfillment order must first be marked as open resolving the ongoing"
            " progress state.",
            ["id"],
            "CANNOT_MOVE_FULFILLMENT_ORDER_WITH_REPORTED_PROGRESS",
        )
    if location.id == fo.location_id:
        raise InvalidInput("The fulfillment order is already assigned to this location.", ["newLocationId"])
    quantities = _requested_quantities(fo, line_items, "fulfillmentOrderLineItems")
    if not quantities:
        raise InvalidTransition("The fulfillment order has no unfulfilled items to move.", ["id"])
    order = shop.orders[fo.order_id]
    source = shop.locations[fo.location_id]
    whole = quantities == _all_remaining(fo) and not _has_fulfilled_items(fo)
    if whole:
        fo.location_id = location.id
        if fo.status == INCOMPLETE:
            fo.status = OPEN
        fo.request_status = UNSUBMITTED
        moved = fo
    else:
        moved = _new_fulfillment_order(shop, order, location.id, _take(fo, quantities), like=fo)
        if fo.remaining() == 0:
            fo.status = CLOSED
    _touch(fo, moved)
    _timeline(shop, order, "fulfillment_order_moved", f"Items were moved from {source.name} to {location.name}.", moved)
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_MOVED",
        {
            "original_fulfillment_order": payloads.fulfillment_order_brief(fo),
            "moved_fulfillment_order": payloads.fulfillment_order_brief(moved),
            "destination_location_id": gid("Location", location.id),
            "source_location": {"id": gid("Location", source.id), "name": source.name},
            "fulfillment_order_line_items_requested": payloads.line_items_requested(fo, quantities)
            if fo is moved
            else [],
        },
    )
    # As recorded: a partial move answers the original, still holding the rest, as the remaining one too.
    return MoveResult(fo, moved, fo if moved is not fo and fo.status not in FINISHED else None)


@dataclass
class HoldResult:
    hold: FulfillmentHold
    fulfillment_order: FulfillmentOrder
    remaining: FulfillmentOrder | None


HOLDABLE = frozenset({OPEN, ON_HOLD, INCOMPLETE, IN_PROGRESS})


def hold_fulfillment_order(shop: Shop, fo_id: Any, hold: dict[str, Any], actor: Actor) -> HoldResult:
    """-> ON_HOLD with one more hold (from OPEN, ON_HOLD, INCOMPLETE or IN_PROGRESS while no service has the
    request). Holding some items splits the rest off; releasing the last hold merges them back. The input is
    checked first, then the state, then the app's hold limit."""
    fo = get_fulfillment_order(shop, fo_id)
    items = hold.get("fulfillmentOrderLineItems") or None
    quantities = _requested_quantities(fo, items, "fulfillmentHold.fulfillmentOrderLineItems")
    if fo.status not in HOLDABLE or fo.request_status not in SUBMITTABLE_REQUESTS:
        raise InvalidTransition(
            f"Cannot place a hold on a fulfillment order with status {fo.status} and request status"
            f" {fo.request_status}.",
            ["id"],
            "FULFILLMENT_ORDER_NOT_SPLITTABLE",
        )
    handle = hold.get("handle") or ""
    mine = [h for h in fo.holds if h.held_by_install == actor.install_id]
    if any(h.handle == handle for h in mine):
        raise InvalidInput(
            "A hold with this handle already exists on the fulfillment order.",
            ["fulfillmentHold", "handle"],
            "DUPLICATE_FULFILLMENT_HOLD_HANDLE",
        )
    if len(mine) >= MAX_HOLDS_PER_APP:
        raise InvalidInput(
            "The maximum number of fulfillment holds for this fulfillment order has been reached for this app. An"
            f" app can only have up to {MAX_HOLDS_PER_APP} holds on a single fulfillment order at any one time.",
            ["id"],
            "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED",
        )
    order = shop.orders[fo.order_id]
    remaining = None
    rest = {k: v - quantities.get(k, 0) for k, v in _all_remaining(fo).items()}
    rest = {k: v for k, v in rest.items() if v > 0}
    if items and rest:
        if fo.status == ON_HOLD:
            raise InvalidInput(
                "Line items can only be given when the fulfillment order is not on hold yet.",
                ["fulfillmentHold", "fulfillmentOrderLineItems"],
                "FULFILLMENT_ORDER_NOT_SPLITTABLE",
            )
        remaining = _new_fulfillment_order(shop, order, fo.location_id, _take(fo, rest), like=fo)
        fo.hold_remainders.append(remaining.id)
    new_hold = FulfillmentHold(
        id=shop.new_id("FulfillmentHold"),
        reason=hold.get("reason") or "OTHER",
        reason_notes=hold.get("reasonNotes"),
        handle=handle,
        held_by_install=actor.install_id,
    )
    fo.holds.append(new_hold)
    if fo.status != ON_HOLD:
        fo.status_before_hold = fo.status
    fo.status = ON_HOLD
    _touch(fo, remaining)
    notes = f": {new_hold.reason_notes}" if new_hold.reason_notes else ""
    _timeline(shop, order, "fulfillment_order_held", f"Fulfillment was put on hold ({new_hold.reason}){notes}", fo)
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_PLACED_ON_HOLD",
        {
            "fulfillment_order": {
                **(payloads.fulfillment_order_brief(fo) or {}),
                "fulfillment_holds": [{"reason": h.reason.lower(), "reason_notes": h.reason_notes} for h in fo.holds],
            },
            "remaining_fulfillment_order": payloads.fulfillment_order_brief(remaining),
            "created_fulfillment_hold": {
                "id": gid("FulfillmentHold", new_hold.id),
                "reason": new_hold.reason.lower(),
                "reason_notes": new_hold.reason_notes,
            },
        },
    )
    return HoldResult(new_hold, fo, remaining)


def release_hold(shop: Shop, fo_id: Any, hold_ids: list[Any] | None, actor: Actor) -> FulfillmentOrder:
    """ON_HOLD -> what it was before once no hold is left; what the hold split off comes back (as recorded: the
    split-off fulfillment order closes with quantities 0)."""
    fo = get_fulfillment_order(shop, fo_id)
    if fo.status != ON_HOLD:
        raise InvalidTransition("The fulfillment order is not on hold.", ["id"])
    wanted = None if hold_ids is None else {parse_id(h, "FulfillmentHold") for h in hold_ids}
    if wanted is not None and not wanted <= {h.id for h in fo.holds}:
        raise InvalidInput("Some hold ids do not belong to this fulfillment order.", ["holdIds"], "INVALID_ACCESS")
    fo.holds = [h for h in fo.holds if wanted is not None and h.id not in wanted]
    touched: list[FulfillmentOrder] = []
    if not fo.holds:
        fo.status = fo.status_before_hold or OPEN
        fo.status_before_hold = None
        touched = _merge_back(shop, fo)
    _touch(fo, *touched)
    _timeline(
        shop,
        shop.orders[fo.order_id],
        "fulfillment_order_hold_released",
        "The hold was released." if fo.status == OPEN else "A hold was released.",
        fo,
    )
    _emit_webhook(shop, "FULFILLMENT_ORDERS_HOLD_RELEASED", {"fulfillment_order": payloads.fulfillment_order_brief(fo)})
    return fo


def _merge_back(shop: Shop, fo: FulfillmentOrder) -> list[FulfillmentOrder]:
    """Fold the fulfillment orders a partial hold split off back into `fo`, where they are still untouched."""
    folded = []
    for other_id in fo.hold_remainders:
        other = shop.fulfillment_orders.get(other_id)
        if other is None or not _mergeable(other) or other.location_id != fo.location_id or other.progress_reported:
            continue
        if _has_fulfilled_items(other):
            continue
        for line_item_id, qty in _take(other, _all_remaining(other), keep_empty=True).items():
            _add_quantity(shop, fo, line_item_id, qty)
        other.status = CLOSED
        folded.append(other)
    fo.hold_remainders = []
    return folded


def _add_quantity(shop: Shop, fo: FulfillmentOrder, line_item_id: int, qty: int) -> None:
    """Add unfulfilled items of an order line to `fo`, on its existing line for that order line if it has one."""
    line = next((li for li in fo.line_items if li.line_item_id == line_item_id), None)
    if line is None:
        fo.line_items.append(FulfillmentOrderLineItem(shop.new_id("FulfillmentOrderLineItem"), line_item_id, qty, qty))
    else:
        line.total_quantity += qty
        line.remaining_quantity += qty


@dataclass
class SplitResult:
    fulfillment_order: FulfillmentOrder
    remaining: FulfillmentOrder
    replacement: FulfillmentOrder | None = None


def split_fulfillment_orders(shop: Shop, splits: list[dict[str, Any]], actor: Actor) -> list[SplitResult]:
    """Move the given quantities of each fulfillment order into a new one at the same location."""
    checked = []
    for index, split in enumerate(splits):
        fo = get_fulfillment_order(shop, split.get("fulfillmentOrderId"))
        if fo.status not in (OPEN, ON_HOLD) or fo.request_status not in SUBMITTABLE_REQUESTS:
            raise InvalidTransition(
                f"Cannot split a fulfillment order with status {fo.status} and request status {fo.request_status}.",
                ["fulfillmentOrderSplits", str(index), "fulfillmentOrderId"],
            )
        items = split.get("fulfillmentOrderLineItems") or []
        if not items:
            raise InvalidInput(
                "No line items were given to split.",
                ["fulfillmentOrderSplits", str(index), "fulfillmentOrderLineItems"],
                "NO_LINE_ITEMS_PROVIDED_TO_SPLIT",
            )
        quantities = _intent_quantities(
            fo, items, ["fulfillmentOrderSplits", str(index), "fulfillmentOrderLineItems"], "split"
        )
        if quantities == _all_remaining(fo):
            raise InvalidInput(
                "Splitting must leave at least one item in the fulfillment order.",
                ["fulfillmentOrderSplits", str(index), "fulfillmentOrderLineItems"],
                "INVALID_LINE_ITEM_QUANTITY",
            )
        checked.append((fo, quantities))
    results = []
    for fo, quantities in checked:
        order = shop.orders[fo.order_id]
        new = _new_fulfillment_order(shop, order, fo.location_id, _take(fo, quantities), fo.status, like=fo)
        new.holds = [
            FulfillmentHold(shop.new_id("FulfillmentHold"), h.reason, h.reason_notes, h.handle, h.held_by_install)
            for h in fo.holds
        ]
        _touch(fo, new)
        _timeline(
            shop, order, "fulfillment_order_split", f"Items were split into {gid('FulfillmentOrder', new.id)}.", fo
        )
        _emit_webhook(
            shop,
            "FULFILLMENT_ORDERS_SPLIT",
            {
                "split_line_items": payloads.line_items_requested(
                    new, {li.id: li.total_quantity for li in new.line_items}
                ),
                "fulfillment_order": payloads.fulfillment_order_brief(fo),
                "remaining_fulfillment_order": payloads.fulfillment_order_brief(new),
                "replacement_fulfillment_order": None,
            },
        )
        results.append(SplitResult(fo, new))
    return results


def merge_fulfillment_orders(shop: Shop, merges: list[dict[str, Any]], actor: Actor) -> list[FulfillmentOrder]:
    """Each merge input: fulfillment orders of one order at one location, OPEN and unrequested. What they hold
    moves into the first one (it keeps its id, as recorded); the others close with their lines at 0 when nothing
    is left in them. Every input is checked before anything changes."""
    checked = []
    for index, merge in enumerate(merges):
        intents = merge.get("mergeIntents") or []
        field = ["fulfillmentOrderMergeInputs", str(index), "mergeIntents"]
        if len(intents) < 2:
            raise InvalidInput("At least two fulfillment orders are needed to merge.", field, "GREATER_THAN")
        parts = []
        for number, intent in enumerate(intents):
            fo = shop.fulfillment_orders.get(parse_id(intent.get("fulfillmentOrderId"), "FulfillmentOrder") or -1)
            if fo is None:
                raise InvalidInput("Fulfillment order does not exist.", None, "FULFILLMENT_ORDER_NOT_FOUND")
            quantities = _intent_quantities(
                fo, intent.get("fulfillmentOrderLineItems"), [*field, str(number), "fulfillmentOrderLineItems"], "merge"
            )
            parts.append((fo, quantities))
        for fo, _ in parts:
            if not _mergeable(fo):
                raise InvalidTransition(f"Fulfillment order: {fo.id} is currently not in a mergeable state.", None)
        first = parts[0][0]
        if any(fo.order_id != first.order_id or fo.location_id != first.location_id for fo, _ in parts):
            raise InvalidInput("Fulfillment orders to merge must belong to one order and one location.", field)
        if len({fo.id for fo, _ in parts}) != len(parts):
            raise InvalidInput("A fulfillment order appears twice in one merge.", field)
        checked.append(parts)
    results = []
    for parts in checked:
        into = parts[0][0]
        order = shop.orders[into.order_id]
        for fo, quantities in parts[1:]:
            for line_item_id, qty in _take(fo, quantities, keep_empty=True).items():
                _add_quantity(shop, into, line_item_id, qty)
            if fo.remaining() == 0:
                fo.status = CLOSED
            _touch(fo)
        _touch(into)
        _timeline(
            shop,
            order,
            "fulfillment_orders_merged",
            f"{len(parts)} fulfillment orders were merged into {gid('FulfillmentOrder', into.id)}.",
            into,
        )
        _emit_webhook(
            shop,
            "FULFILLMENT_ORDERS_MERGED",
            {
                "merge_intents": [
                    {
                        "fulfillment_order_id": gid("FulfillmentOrder", fo.id),
                        "fulfillment_order_line_items": payloads.line_items_requested(fo, q),
                    }
                    for fo, q in parts
                ],
                "fulfillment_order": payloads.fulfillment_order_brief(into),
            },
        )
        results.append(into)
    return results


def _intent_quantities(
    fo: FulfillmentOrder, items: list[dict[str, Any]] | None, field: list[str], verb: str
) -> dict[int, int]:
    """fo line item id -> quantity for a split or merge (all remaining when no items are given), refused with the
    store's wording for these two mutations."""
    if not items:
        return _all_remaining(fo)
    quantities: dict[int, int] = {}
    for index, item in enumerate(items):
        li_id = parse_id(item.get("id"), "FulfillmentOrderLineItem")
        line = fo.line_item(li_id) if li_id is not None else None
        if line is None:
            raise InvalidInput("Fulfillment order line item does not exist.", None)
        quantity = int(item.get("quantity") or 0)
        if quantity <= 0:
            raise InvalidInput(
                f"You must select at least one item to {verb} into a new fulfillment order.",
                [*field, str(index), "quantity"],
                "GREATER_THAN",
            )
        if quantity + quantities.get(line.id, 0) > line.remaining_quantity:
            raise InvalidInput("Invalid fulfillment order line item quantity requested.", None)
        quantities[line.id] = quantities.get(line.id, 0) + quantity
    return quantities


def open_fulfillment_order(shop: Shop, fo_id: Any, actor: Actor) -> FulfillmentOrder:
    """SCHEDULED -> OPEN; or (2026-01) a merchant-managed one with reported progress back to OPEN."""
    fo = get_fulfillment_order(shop, fo_id)
    if fo.status == SCHEDULED:
        fo.status = OPEN
    elif fo.progress_reported and service_of(shop, fo) is None and fo.status == IN_PROGRESS:
        fo.progress_reported = False
        fo.status = OPEN if not _has_fulfilled_items(fo) else IN_PROGRESS
    else:
        raise InvalidTransition(f"Expected fulfillment order status to be valid but it was {fo.status.lower()}.", None)
    _touch(fo)
    _timeline(shop, shop.orders[fo.order_id], "fulfillment_order_opened", "The fulfillment order was opened.", fo)
    return fo


def reschedule_fulfillment_order(shop: Shop, fo_id: Any, fulfill_at: datetime, actor: Actor) -> FulfillmentOrder:
    fo = get_fulfillment_order(shop, fo_id)
    if fo.status != SCHEDULED:
        raise InvalidTransition("Fulfillment order must be scheduled.", None)
    if fulfill_at <= now():
        raise InvalidInput("The fulfill at date must be in the future.", ["fulfillAt"])
    fo.fulfill_at = fulfill_at
    _touch(fo)
    _timeline(
        shop,
        shop.orders[fo.order_id],
        "fulfillment_order_rescheduled",
        f"Fulfillment was rescheduled to {payloads.iso(fulfill_at)}.",
        fo,
    )
    return fo


def reroute_fulfillment_orders(
    shop: Shop, fo_ids: list[Any], included: list[Any] | None, excluded: list[Any] | None, actor: Actor
) -> list[FulfillmentOrder]:
    """fulfillmentOrdersReroute, with the sandbox's one routing rule: a fulfillment order already at a location
    it may use stays; else it moves, whole, to the first active location it may use (none named: it stays)."""
    fos = [get_fulfillment_order(shop, i) for i in fo_ids]
    banned = {get_location(shop, i).id for i in excluded or []}
    allowed = [loc for loc in (get_location(shop, i) for i in included or []) if loc.is_active and loc.id not in banned]
    moved = []
    for fo in fos:
        if not allowed or fo.location_id in {loc.id for loc in allowed}:
            continue
        moved.append(move_fulfillment_order(shop, fo.id, allowed[0].id, None, actor).moved)
    return moved


def find_return(shop: Shop, return_id: Any, field: list[str]) -> None:
    """The return mutations' lookup: the sandbox takes no returns, so every id names none (as the store answers
    an unknown one)."""
    raise InvalidInput("Return not found.", field, "NOT_FOUND")


def returnable_fulfillments(shop: Shop, order_id: Any) -> list[Fulfillment]:
    """`returnableFulfillments`: the order's fulfillments that shipped something, each with all it shipped (the
    sandbox takes no returns, so nothing shipped is spoken for). An unknown order has none."""
    order = shop.orders.get(parse_id(order_id, "Order") or -1)
    if order is None:
        return []
    shipped = [shop.fulfillments[i] for i in order.fulfillment_ids]
    return [f for f in shipped if f.status == "SUCCESS" and returnable_lines(f)]


def returnable_lines(fulfillment: Fulfillment) -> list[FulfillmentLineItem]:
    """What of a fulfillment may be returned: every line that shipped something."""
    return [line for line in fulfillment.line_items if line.quantity > 0]


def calculate_return(shop: Shop, data: dict[str, Any]) -> tuple[Order, list[CalculatedReturnLine]] | None:
    """`returnCalculate`: each line refunds its unit price times the quantity (the sandbox has no taxes or
    discounts), less a restocking fee of its percentage. None for an unknown order; lines of other orders and
    unknown lines are left out."""
    order = shop.orders.get(parse_id(data.get("orderId"), "Order") or -1)
    if order is None:
        return None
    lines = {line.id: line for f in order.fulfillment_ids for line in shop.fulfillments[f].line_items}
    calculated = []
    for entry in data.get("returnLineItems") or []:
        line = lines.get(parse_id(entry.get("fulfillmentLineItemId"), "FulfillmentLineItem") or -1)
        if line is None:
            continue
        quantity = int(entry.get("quantity") or 0)
        total = Decimal(shop.line_items[line.line_item_id].price) * quantity
        percentage = (entry.get("restockingFee") or {}).get("percentage")
        fee = total * Decimal(str(percentage)) / 100 if percentage is not None else Decimal(0)
        calculated.append(CalculatedReturnLine(line, quantity, percentage, -total, fee))
    return order, calculated


def prepared_for_pickup(shop: Shop, groups: list[dict[str, Any]], actor: Actor) -> None:
    """fulfillmentOrderLineItemsPreparedForPickup: the sandbox offers no local pickup, so no fulfillment order
    can be ready for one; each is refused as the store refuses a shipping one (recorded)."""
    errors = [
        StoreUserError(
            f"Invalid fulfillment_order_id provided {parse_id(group.get('fulfillmentOrderId'), 'FulfillmentOrder')}",
            ["input", "lineItemsByFulfillmentOrder", str(index), "fulfillmentOrderId"],
            "FULFILLMENT_ORDER_INVALID",
        )
        for index, group in enumerate(groups)
    ]
    if errors:
        raise UserErrors(errors)


# ---------------------------------------------------------------------------------------------------------
# Progress and closing (service)
# ---------------------------------------------------------------------------------------------------------


def report_progress(shop: Shop, fo_id: Any, reason_notes: str | None, actor: Actor) -> FulfillmentOrder:
    """Note progress on an accepted (or, at a merchant-managed location, open) fulfillment order."""
    fo = get_fulfillment_order(shop, fo_id)
    service = service_of(shop, fo)
    if service is not None:
        _require_service_app(shop, fo, actor)
        if fo.status != IN_PROGRESS or fo.request_status not in (ACCEPTED, CANCELLATION_REJECTED):
            raise InvalidTransition(
                "Cannot report progress on a fulfillment order in this state.", None, "FULFILLMENT_ORDER_STATUS_INVALID"
            )
    elif fo.status not in (OPEN, IN_PROGRESS):
        raise InvalidTransition(
            "Cannot report progress on a fulfillment order in this state.", None, "FULFILLMENT_ORDER_STATUS_INVALID"
        )
    fo.progress_reported = True
    fo.status = IN_PROGRESS
    _touch(fo)
    who = service.name if service else "Staff"
    _timeline(
        shop,
        shop.orders[fo.order_id],
        "progress_reported",
        f"{who} reported progress{': ' + reason_notes if reason_notes else '.'}",
        fo,
    )
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_PROGRESS_REPORTED",
        {"fulfillment_order": payloads.fulfillment_order_brief(fo), "reason_notes": reason_notes},
    )
    return fo


def close_fulfillment_order(shop: Shop, fo_id: Any, message: str | None, actor: Actor) -> FulfillmentOrder:
    """IN_PROGRESS / ACCEPTED -> INCOMPLETE / CLOSED: the service cannot ship the rest; the merchant decides."""
    fo = get_fulfillment_order(shop, fo_id)
    service = _require_service_app(shop, fo, actor)
    if fo.status != IN_PROGRESS or fo.request_status not in (ACCEPTED, CANCELLATION_REJECTED):
        raise InvalidTransition(
            f"Cannot close a fulfillment order with status {fo.status} and request status {fo.request_status}:"
            " the fulfillment request must have been accepted.",
            ["id"],
        )
    fo.status = INCOMPLETE
    fo.request_status = CLOSED
    fo.progress_reported = False
    _touch(fo)
    _timeline(
        shop,
        shop.orders[fo.order_id],
        "fulfillment_order_closed",
        f"{service.name} could not complete the fulfillment{': ' + message if message else '.'}",
        fo,
    )
    _emit_webhook(
        shop,
        "FULFILLMENT_ORDERS_FULFILLMENT_SERVICE_FAILED_TO_COMPLETE",
        {"fulfillment_order": payloads.fulfillment_order_brief(fo), "message": message},
    )
    return fo


# ---------------------------------------------------------------------------------------------------------
# Fulfillments
# ---------------------------------------------------------------------------------------------------------


def _tracking_list(tracking: dict[str, Any] | None) -> list[TrackingInfo]:
    if not tracking:
        return []
    company = tracking.get("company")
    numbers = list(tracking.get("numbers") or [])
    urls = list(tracking.get("urls") or [])
    if tracking.get("number"):
        numbers.insert(0, tracking["number"])
    if tracking.get("url"):
        urls.insert(0, tracking["url"])
    if not numbers:
        return [TrackingInfo(company, None, urls[0] if urls else None)] if company or urls else []
    return [TrackingInfo(company, n, urls[i] if i < len(urls) else None) for i, n in enumerate(numbers)]


def create_fulfillment(
    shop: Shop,
    line_items_by_fulfillment_order: list[dict[str, Any]],
    tracking: dict[str, Any] | None,
    notify_customer: bool | None,
    message: str | None,
    actor: Actor,
    origin_address: dict[str, Any] | None = None,
) -> Fulfillment:
    """One package: a fulfillment for items of fulfillment orders of one order at one location. By the app: at
    its own location once the request is accepted, or at a merchant location with the merchant-managed scope.
    By the merchant ("mark as fulfilled", N10): refused while a service holds the request. Not idempotent, like
    the store's.

    The checks come in the recorded order: quantities first (input), then unknown fulfillment orders, one order,
    one location, then each group's state and lines."""
    groups = line_items_by_fulfillment_order
    if not groups:
        raise InvalidInput(
            "At least one fulfillment order is required.", ["fulfillment", "lineItemsByFulfillmentOrder"]
        )
    for index, group in enumerate(groups):
        for line, item in enumerate(group.get("fulfillmentOrderLineItems") or []):
            if _quantity(item) <= 0:
                raise InvalidInput(
                    "Quantity must be greater than 0",
                    ["fulfillment", "lineItemsByFulfillmentOrder", str(index), "fulfillmentOrderLineItems", str(line)]
                    + ["quantity"],
                )
    fos: list[FulfillmentOrder] = []
    for group in groups:
        fo = shop.fulfillment_orders.get(parse_id(group.get("fulfillmentOrderId"), "FulfillmentOrder") or -1)
        if fo is None:
            raise InvalidInput("Fulfillment order does not exist.", ["fulfillment"])
        fos.append(fo)
    order_ids = sorted({fo.order_id for fo in fos})
    if len(order_ids) > 1:
        raise InvalidInput(
            f"All fulfillment orders must belong to the same order. Multiple orders with ids {_id_list(order_ids)}"
            " were found.",
            ["fulfillment"],
        )
    location_ids = sorted({fo.location_id for fo in fos})
    if len(location_ids) > 1:
        raise InvalidInput(
            "All fulfillment orders must be assigned to a single location. Multiple locations with ids"
            f" {_id_list(location_ids)} were found.",
            ["fulfillment"],
        )
    if len({fo.id for fo in fos}) != len(fos):
        raise InvalidInput("A fulfillment order appears twice.", ["fulfillment", "lineItemsByFulfillmentOrder"])
    plan: list[tuple[FulfillmentOrder, dict[int, int]]] = []
    for index, (fo, group) in enumerate(zip(fos, groups, strict=True)):
        _check_fulfillable(shop, fo, actor, ["fulfillment", "lineItemsByFulfillmentOrder", str(index)])
        quantities = _fulfillment_quantities(fo, group.get("fulfillmentOrderLineItems"))
        if not quantities:
            raise InvalidInput(
                "The fulfillment order has no remaining items to fulfill.",
                ["fulfillment", "lineItemsByFulfillmentOrder", str(index)],
            )
        plan.append((fo, quantities))
    first = fos[0]
    order = shop.orders[first.order_id]
    tracking_info = _tracking_list(tracking)
    fulfillment = Fulfillment(
        id=shop.new_id("Fulfillment"),
        name=f"{order.name}.{len(order.fulfillment_ids) + 1}",
        order_id=order.id,
        location_id=first.location_id,
        line_items=[],
        fulfillment_order_ids=[fo.id for fo in fos],
        tracking=tracking_info,
        created_by=actor.role,
        notify_customer=bool(notify_customer),
        display_status="MARKED_AS_FULFILLED" if actor.role == MERCHANT and not tracking_info else "FULFILLED",
        origin_address=dict(origin_address) if origin_address else None,
    )
    shipped: dict[int, int] = {}  # order line item id -> quantity, over every fulfillment order
    for fo, quantities in plan:
        taken = fulfillment.taken.setdefault(fo.id, {})
        for li in fo.line_items:
            qty = quantities.get(li.id, 0)
            if qty:
                li.remaining_quantity -= qty
                taken[li.line_item_id] = taken.get(li.line_item_id, 0) + qty
                shipped[li.line_item_id] = shipped.get(li.line_item_id, 0) + qty
        fo.fulfillment_ids.append(fulfillment.id)
        fo.status = CLOSED if fo.remaining() == 0 else IN_PROGRESS
        _touch(fo)
    # One line per order line item, however many fulfillment orders it came from (as recorded).
    fulfillment.line_items = [
        FulfillmentLineItem(shop.new_id("FulfillmentLineItem"), line_item_id, qty)
        for line_item_id, qty in shipped.items()
    ]
    shop.fulfillments[fulfillment.id] = fulfillment
    order.fulfillment_ids.append(fulfillment.id)
    inventory.ship(shop, fulfillment.location_id, _shipped(shop, fulfillment))
    if display_fulfillment_status(shop, order) == "FULFILLED" and order.closed_at is None:
        order.closed_at = now()  # the recorded store closes (archives) an order once everything shipped
    who = "Staff" if not actor.is_app else _service_name(shop, first) if service_of(shop, first) else "An app"
    text = f"{who} fulfilled {fulfillment.total_quantity()} item(s) as {fulfillment.name}"
    if tracking_info:
        t = tracking_info[0]
        text += f" with {t.company or 'a carrier'} tracking number {t.number or '(none)'}"
    text += f": {message}" if message else "."
    _timeline(shop, order, "fulfillment_created", text, first)
    _emit_webhook(shop, "FULFILLMENTS_CREATE", payloads.fulfillment_rest(shop, fulfillment))
    return fulfillment


def _shipped(shop: Shop, fulfillment: Fulfillment) -> list[tuple[str | None, int]]:
    """(SKU, quantity) of what a fulfillment took from its location's stock."""
    return [(shop.line_items[fli.line_item_id].sku, fli.quantity) for fli in fulfillment.line_items]


def _quantity(item: Any) -> int:
    """The quantity of a `{id, quantity}` line (0 when it has none that is a number: refused as not positive)."""
    value = item.get("quantity") if isinstance(item, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _id_list(ids: list[int]) -> str:
    """Ids as the store lists them in a message: `[1, 2]`."""
    return "[" + ", ".join(str(i) for i in ids) + "]"


def _fulfillment_quantities(fo: FulfillmentOrder, items: list[dict[str, Any]] | None) -> dict[int, int]:
    """fo line item id -> quantity for one group of a fulfillment; everything remaining when `items` is None or
    empty (the store reads an empty list as "everything"). Messages as recorded for fulfillmentCreate."""
    if not items:
        return _all_remaining(fo)
    quantities: dict[int, int] = {}
    for item in items:
        li_id = parse_id(item.get("id"), "FulfillmentOrderLineItem")
        line = fo.line_item(li_id) if li_id is not None else None
        if line is None:
            raise InvalidInput("Fulfillment order line item does not exist.", ["fulfillment"])
        if line.id in quantities:
            raise InvalidInput("Line items must be unique.", ["fulfillment"])
        quantity = _quantity(item)
        if quantity > line.remaining_quantity:
            raise InvalidInput("Invalid fulfillment order line item quantity requested.", ["fulfillment"])
        quantities[line.id] = quantity
    return quantities


def has_scope(shop: Shop, actor: Actor, scope: str) -> bool:
    """Whether the calling app was installed with `scope` (a write scope implies its read scope)."""
    install = shop.installs.get(actor.install_id or "")
    if install is None:
        return False
    granted = {s.strip() for s in install.scopes.split(",")}
    return scope in granted or (scope.startswith("read_") and f"write_{scope[5:]}" in granted)


def _check_fulfillable(shop: Shop, fo: FulfillmentOrder, actor: Actor, field: list[str]) -> None:
    if fo.status in FINISHED:
        raise InvalidTransition("The fulfillment order is closed and has nothing left to fulfill.", field)
    if fo.status == ON_HOLD:
        raise InvalidTransition("The fulfillment order is on hold: release the hold first.", field)
    if fo.status == SCHEDULED:
        raise InvalidTransition("The fulfillment order is scheduled and not open yet.", field)
    if actor.is_app and service_of(shop, fo) is not None:
        _require_service_app(shop, fo, actor)
        if fo.request_status == SUBMITTED:
            raise InvalidTransition(
                "The fulfillment request must be accepted before a fulfillment can be created.", field
            )
        if fo.status != IN_PROGRESS or fo.request_status not in (ACCEPTED, CANCELLATION_REJECTED):
            raise InvalidTransition(
                f"Cannot create a fulfillment for a fulfillment order with status {fo.status} and request status"
                f" {fo.request_status}.",
                field,
            )
        return
    # At a merchant location: the merchant, or an app the merchant let fulfil there (the recorded store let an
    # app with the merchant-managed scope do it).
    if actor.is_app and not has_scope(shop, actor, "write_merchant_managed_fulfillment_orders"):
        raise NotPermitted("The app can only fulfill fulfillment orders assigned to its own locations.", field)
    if fo.request_status in REQUEST_IN_SERVICE_HANDS:
        raise NotPermitted(
            f"The fulfillment order has a fulfillment request in progress with {_service_name(shop, fo)}"
            f" ({fo.request_status}): cancel it before marking items as fulfilled.",
            field,
        )


def cancel_fulfillment(shop: Shop, fulfillment_id: Any, actor: Actor) -> Fulfillment:
    """SUCCESS -> CANCELLED; the items become unfulfilled again: in their fulfillment order if it is still open,
    else the closed one gets its remaining quantities back (as recorded) and a new OPEN fulfillment order at the
    same location takes the work. Cancelling a cancelled fulfillment changes nothing and is no error (as
    recorded)."""
    fulfillment = find_fulfillment(shop, fulfillment_id)
    if fulfillment is None:
        raise InvalidInput("Fulfillment not found.", ["id"])
    location = location_record(shop, fulfillment.location_id)
    if actor.is_app and location.fulfillment_service_id is not None:
        service = shop.services.get(location.fulfillment_service_id)
        if service is None or service.install_id != actor.install_id:
            raise NotPermitted("The fulfillment belongs to another fulfillment service.", ["id"])
    if fulfillment.status == "CANCELLED":
        return fulfillment
    if fulfillment.status != "SUCCESS":
        raise InvalidTransition(f"Cannot cancel a fulfillment with status {fulfillment.status}.", ["id"])
    order = shop.orders[fulfillment.order_id]
    reopened: dict[int, dict[int, int]] = {}
    for fo_id, quantities in fulfillment.taken.items():
        fo = shop.fulfillment_orders[fo_id]
        for line_item_id, qty in quantities.items():
            line = next((li for li in fo.line_items if li.line_item_id == line_item_id), None)
            if line is not None:
                line.remaining_quantity = min(line.total_quantity, line.remaining_quantity + qty)
            if fo.status in FINISHED or line is None:
                at = reopened.setdefault(fo.location_id, {})
                at[line_item_id] = at.get(line_item_id, 0) + qty
        unshipped = not fo.progress_reported and not _has_fulfilled_items(fo)
        if fo.status not in FINISHED and fo.request_status == UNSUBMITTED and unshipped:
            fo.status = OPEN  # a merchant-fulfilled order that has nothing shipped any more
        _touch(fo)
    for location_id, quantities in reopened.items():
        _new_fulfillment_order(shop, order, location_id, quantities)
    inventory.restock(shop, fulfillment.location_id, _shipped(shop, fulfillment))
    fulfillment.status = "CANCELLED"
    fulfillment.display_status = "CANCELED"
    fulfillment.updated_at = now()
    order.closed_at = None  # open again: it has work again (as recorded)
    _timeline(shop, order, "fulfillment_cancelled", f"Fulfillment {fulfillment.name} was cancelled.")
    _emit_webhook(shop, "FULFILLMENTS_UPDATE", payloads.fulfillment_rest(shop, fulfillment))
    return fulfillment


def update_tracking(
    shop: Shop, fulfillment_id: Any, tracking: dict[str, Any], notify_customer: bool | None, actor: Actor
) -> Fulfillment:
    """Replace the tracking of a fulfillment, cancelled ones too (as recorded: the store takes it and the
    fulfillment stays cancelled)."""
    fulfillment = find_fulfillment(shop, fulfillment_id)
    if fulfillment is None:
        raise InvalidInput("Fulfillment does not exist.", ["fulfillmentId"])
    fulfillment.tracking = _tracking_list(tracking)
    fulfillment.notify_customer = fulfillment.notify_customer or bool(notify_customer)
    fulfillment.updated_at = now()
    shown = ", ".join(f"{t.company or 'carrier'} {t.number or ''}".strip() for t in fulfillment.tracking) or "none"
    _timeline(
        shop,
        shop.orders[fulfillment.order_id],
        "tracking_updated",
        f"Tracking of {fulfillment.name} was updated: {shown}.",
    )
    _emit_webhook(shop, "FULFILLMENTS_UPDATE", payloads.fulfillment_rest(shop, fulfillment))
    return fulfillment


def fulfillments_missing_tracking(shop: Shop, service: FulfillmentService) -> list[Fulfillment]:
    """Fulfillments at the service's location that have no tracking number yet (asked for by
    fetch_tracking_numbers)."""
    return [
        f
        for f in shop.fulfillments.values()
        if f.location_id == service.location_id and f.status == "SUCCESS" and not any(t.number for t in f.tracking)
    ]


def apply_tracking_numbers(shop: Shop, service: FulfillmentService, numbers: dict[str, Any]) -> list[Fulfillment]:
    """Take the tracking numbers a service answered (fulfillment name -> number) for its fulfillments."""
    updated = []
    for fulfillment in fulfillments_missing_tracking(shop, service):
        number = numbers.get(fulfillment.name)
        if not number:
            continue
        company = fulfillment.tracking[0].company if fulfillment.tracking else None
        fulfillment.tracking = [TrackingInfo(company, str(number), None)]
        fulfillment.updated_at = now()
        _timeline(
            shop,
            shop.orders[fulfillment.order_id],
            "tracking_updated",
            f"{service.name} sent tracking number {number} for {fulfillment.name}.",
        )
        _emit_webhook(shop, "FULFILLMENTS_UPDATE", payloads.fulfillment_rest(shop, fulfillment))
        updated.append(fulfillment)
    return updated


def record_stock(shop: Shop, service: FulfillmentService, levels: dict[str, Any]) -> dict[str, int]:
    """Keep the stock levels a service answered to fetch_stock (a bare map, or one under `stock_levels`)."""
    if isinstance(levels.get("stock_levels"), dict):
        levels = levels["stock_levels"]
    clean = {str(sku): int(qty) for sku, qty in levels.items() if isinstance(qty, int | float)}
    shop.stock.setdefault(service.location_id, {}).update(clean)
    return clean


def create_fulfillment_event(shop: Shop, event: dict[str, Any], actor: Actor) -> FulfillmentEvent:
    """Append a shipment event; the fulfillment's displayStatus follows, IN_TRANSIT and DELIVERED stamp times. A
    cancelled fulfillment takes events too (as recorded) but stays cancelled."""
    fulfillment = find_fulfillment(shop, event.get("fulfillmentId"))
    if fulfillment is None:
        raise InvalidInput("Fulfillment does not exist.", ["fulfillmentEvent", "fulfillmentId"])
    happened = event.get("happenedAt") or now()
    record = FulfillmentEvent(
        id=shop.new_id("FulfillmentEvent"),
        status=event["status"],
        happened_at=happened,
        message=event.get("message"),
        estimated_delivery_at=event.get("estimatedDeliveryAt"),
        address1=event.get("address1"),
        city=event.get("city"),
        province=event.get("province"),
        country=event.get("country"),
        zip=event.get("zip"),
        latitude=event.get("latitude"),
        longitude=event.get("longitude"),
    )
    fulfillment.events.append(record)
    if fulfillment.status == "SUCCESS":
        fulfillment.display_status = record.status
    if record.status == "IN_TRANSIT" and fulfillment.in_transit_at is None:
        fulfillment.in_transit_at = happened
    if record.status == "DELIVERED":
        fulfillment.delivered_at = happened
    if record.estimated_delivery_at:
        fulfillment.estimated_delivery_at = record.estimated_delivery_at
    fulfillment.updated_at = now()
    where = f" ({record.city})" if record.city else ""
    note = f": {record.message}" if record.message else ""
    _timeline(
        shop, shop.orders[fulfillment.order_id], "fulfillment_event", f"{fulfillment.name} {record.status}{where}{note}"
    )
    rest = payloads.fulfillment_rest(shop, fulfillment)
    _emit_webhook(
        shop,
        "FULFILLMENT_EVENTS_CREATE",
        {
            "id": record.id,
            "fulfillment_id": fulfillment.id,
            "status": record.status.lower(),
            "message": record.message,
            "happened_at": payloads.iso(happened),
            "order_id": fulfillment.order_id,
        },
    )
    _emit_webhook(shop, "FULFILLMENTS_UPDATE", rest)
    return record


# ---------------------------------------------------------------------------------------------------------
# Fulfillment services (app)
# ---------------------------------------------------------------------------------------------------------

# Handles the store keeps for its own services: an app may not take them.
RESERVED_SERVICE_HANDLES = frozenset({"shopify", "amazon", "gift_card", "manual"})
SERVICE_NOT_FOUND = "Fulfillment service could not be found."
# fulfillmentServiceDelete's inventoryAction: what becomes of the service's location and its stock.
KEEP, TRANSFER, DELETE = "KEEP", "TRANSFER", "DELETE"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def service_handle(name: str) -> str:
    """The handle the store derives from a service name: lower case, accents dropped, spaces and dashes as one
    dash, other punctuation removed (underscores kept)."""
    plain = unicodedata.normalize("NFKD", name.strip().lower()).encode("ascii", "ignore").decode()
    dashed = re.sub(r"[\s-]+", "-", re.sub(r"[^\w\s-]", "", plain))
    return dashed.strip("-")


def _name_errors(name: str) -> list[StoreUserError]:
    if not name.strip():
        return [InvalidInput("Name can't be blank", ["name"])]
    errors: list[StoreUserError] = []
    if name[0].isspace():
        errors.append(InvalidInput("Name cannot begin with a whitespace character", ["name"]))
    if name[-1].isspace():
        errors.append(InvalidInput("Name cannot end with a whitespace character", ["name"]))
    return errors


def _name_taken_errors(shop: Shop, name: str, service: FulfillmentService | None) -> list[StoreUserError]:
    handle = service_handle(name)
    if handle in RESERVED_SERVICE_HANDLES:
        return [InvalidInput("Name is reserved", ["name"])]
    others = [s for s in shop.services.values() if s is not service]
    if any(s.name.strip().lower() == name.strip().lower() or s.handle == handle for s in others):
        return [InvalidInput("Name has already been taken", ["name"])]
    return []


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _callback_errors(shop: Shop, url: str | None, allowed_hosts: tuple[str, ...]) -> list[StoreUserError]:
    """The store calls a service only on the app's own hosts (its configured ones, sub-domains included) or the
    shop's domain. Loopback hosts are allowed too: an app run locally has no other address."""
    if url is None:
        return []
    not_allowed = [InvalidInput("Callback url is not allowed", ["callbackUrl"])]
    try:
        parts = urlsplit(str(url).strip())
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return not_allowed
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        return [InvalidInput(f"Callback url protocol {parts.scheme.lower()}:// is not supported", ["callbackUrl"])]
    allowed = host and (
        host == shop.domain or is_loopback(host) or any(host == h or host.endswith(f".{h}") for h in allowed_hosts)
    )
    return [] if allowed else not_allowed


def _refuse(errors: list[StoreUserError]) -> None:
    if errors:
        raise UserErrors(errors)


def create_fulfillment_service(
    shop: Shop,
    name: str,
    callback_url: str | None,
    tracking_support: bool | None,
    inventory_management: bool | None,
    requires_shipping_method: bool | None,
    actor: Actor,
    allowed_hosts: tuple[str, ...] = (),
) -> FulfillmentService:
    """A service and its own location, named after it. Every failed check of the input is reported at once."""
    if not actor.is_app:
        raise NotPermitted("Only an app can register a fulfillment service.", ["name"])
    name = name or ""
    errors = _name_errors(name) + _callback_errors(shop, callback_url, allowed_hosts)
    if name.strip():
        errors += _name_taken_errors(shop, name, None)
    _refuse(errors)
    home = primary_location(shop)
    location = Location(id=shop.new_id("Location"), name=name, address=Address(**vars(home.address)))
    service = FulfillmentService(
        id=shop.new_id("FulfillmentService"),
        name=name,
        handle=service_handle(name),
        location_id=location.id,
        install_id=actor.install_id,
        callback_url=callback_url,
        tracking_support=bool(tracking_support),
        inventory_management=bool(inventory_management),
        requires_shipping_method=True if requires_shipping_method is None else requires_shipping_method,
    )
    location.fulfillment_service_id = service.id
    shop.locations[location.id] = location
    shop.services[service.id] = service
    return service


def _own_service(shop: Shop, service_id: Any, actor: Actor) -> FulfillmentService:
    """The caller's service; another app's service is as unknown to it as one that does not exist."""
    service = shop.services.get(parse_id(service_id, "FulfillmentService") or -1)
    if service is None or not actor.is_app or service.install_id != actor.install_id:
        raise InvalidInput(SERVICE_NOT_FOUND, ["id"])
    return service


def update_fulfillment_service(
    shop: Shop, service_id: Any, changes: dict[str, Any], actor: Actor, allowed_hosts: tuple[str, ...] = ()
) -> FulfillmentService:
    """Change what is given; the handle stays the one made at creation. `requiresShippingMethod` defaults to
    true in the schema, so an update that leaves it out sets it back to true, as on the store."""
    service = _own_service(shop, service_id, actor)
    name = changes.get("name")
    callback_url = changes.get("callbackUrl", service.callback_url)
    errors = _name_errors(name) if name is not None else []
    errors += _callback_errors(shop, callback_url, allowed_hosts)
    if name is not None and name.strip():
        errors += _name_taken_errors(shop, name, service)
    _refuse(errors)
    service.callback_url = callback_url
    if name is not None:
        service.name = name
        shop.locations[service.location_id].name = name
    for key, attr in (
        ("trackingSupport", "tracking_support"),
        ("inventoryManagement", "inventory_management"),
        ("requiresShippingMethod", "requires_shipping_method"),
    ):
        if changes.get(key) is not None:
            setattr(service, attr, bool(changes[key]))
    return service


def delete_fulfillment_service(
    shop: Shop, service_id: Any, destination_location_id: Any, inventory_action: str | None, actor: Actor
) -> int:
    """Remove the service. KEEP leaves its location as a merchant-managed one (with what is assigned there);
    TRANSFER (the default) moves its unfinished fulfillment orders to the destination (or the shop's primary
    location) and removes the location; DELETE removes it too, its work going to the primary location.
    Work the service had accepted moves too, as unsubmitted (the store's recorded lifecycle deletes a service
    holding an accepted request)."""
    service = _own_service(shop, service_id, actor)
    action = inventory_action or TRANSFER
    if action in (KEEP, DELETE) and destination_location_id:
        raise InvalidInput(
            "Inventory action Destination location id should not be present when deleting/keeping the"
            " inventory of the fulfillment service.",
            ["inventoryAction"],
        )
    destination = primary_location(shop)
    if action == TRANSFER and destination_location_id:
        found = shop.locations.get(parse_id(destination_location_id, "Location") or -1)
        if found is None or found.fulfillment_service_id is not None or not found.is_active:
            raise InvalidInput("Invalid destination location.", None)
        destination = found
    location = shop.locations[service.location_id]
    location.fulfillment_service_id = None
    del shop.services[service.id]
    if action == KEEP:
        return service.id
    for fo in shop.fulfillment_orders.values():
        if fo.location_id == location.id and fo.status not in FINISHED:
            fo.location_id = destination.id
            fo.request_status = UNSUBMITTED
            _touch(fo)
    location.is_active = False
    shop.removed_locations[location.id] = shop.locations.pop(location.id)
    return service.id


def location_record(shop: Shop, location_id: int) -> Location:
    """A location by id, also one removed with its service (past fulfillment orders still name it)."""
    return shop.locations.get(location_id) or shop.removed_locations[location_id]
