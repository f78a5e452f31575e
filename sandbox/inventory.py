"""Locations, products and inventory as the store keeps them: the merchant's locations and their lifecycle
(add, edit, activate, deactivate with relocation, delete), products whose variants each have an inventory item,
inventory levels (an item stocked at a location) and the quantity mutations with the store's checks.

Plain functions over a `Shop`, like `store.py`. A refused change raises `Refused` carrying every userError the
store reports for it (it often reports several at once); nothing is changed then. Messages, fields and codes are
the ones the recorded store answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.model import (
    FINISHED,
    ON_HAND_PARTS,
    Actor,
    Address,
    InventoryAdjustmentGroup,
    InventoryChange,
    InventoryItem,
    InventoryLevel,
    Location,
    Product,
    ProductVariant,
    ResourceNotFound,
    Shop,
    StoreUserError,
    address_fields,
    now,
    parse_id,
)

LIMIT = 1_000_000_000
SET_NAMES = ("available", "on_hand")
# Names inventoryAdjustQuantities and inventoryMoveQuantities accept (not `on_hand` or `committed`).
ADJUSTABLE_NAMES = ("available", "damaged", "incoming", "quality_control", "reserved", "safety_stock")
REASONS = (
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_canceled",
    "movement_created",
    "movement_received",
    "movement_updated",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
)
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
LEVEL_GID = re.compile(r"^gid://shopify/InventoryLevel/(\d+)\?inventory_item_id=(\d+)$")


class Refused(StoreUserError):
    """One or more userErrors (the first is also the exception's own message, field and code)."""

    def __init__(self, errors: list[StoreUserError]) -> None:
        first = errors[0]
        super().__init__(first.message, first.field, first.code)
        self.errors = errors


def _error(message: str, field: list[str] | None, code: str | None = None) -> StoreUserError:
    return StoreUserError(message, field, code)


def _refuse_if(errors: list[StoreUserError]) -> None:
    if errors:
        raise Refused(errors)


# ---------------------------------------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------------------------------------


def primary_location(shop: Shop) -> Location:
    """The shop's first merchant-managed location (its "Shop location"): where work falls back to, where new
    products are stocked; it is never deactivated."""
    return shop.locations[min(i for i, loc in shop.locations.items() if loc.fulfillment_service_id is None)]


def find_item(shop: Shop, value: Any) -> InventoryItem | None:
    id_ = parse_id(value, "InventoryItem")
    return shop.inventory_items.get(id_) if id_ is not None else None


def find_location(shop: Shop, value: Any) -> Location | None:
    id_ = parse_id(value, "Location")
    return shop.locations.get(id_) if id_ is not None else None


def level_gid(level: InventoryLevel) -> str:
    # The store names a level by its location's number and the item: `.../InventoryLevel/<n>?inventory_item_id=<m>`.
    return f"gid://shopify/InventoryLevel/{level.location_id}?inventory_item_id={level.item_id}"


def find_level(shop: Shop, value: Any) -> InventoryLevel | None:
    match = LEVEL_GID.match(str(value or ""))
    if not match:
        return None
    item = shop.inventory_items.get(int(match.group(2)))
    return item.levels.get(int(match.group(1))) if item else None


def active_levels(shop: Shop, location: Location) -> list[InventoryLevel]:
    return [
        level
        for item in shop.inventory_items.values()
        if (level := item.levels.get(location.id)) is not None and level.is_active
    ]


def has_unfulfilled_orders(shop: Shop, location: Location) -> bool:
    return any(fo.location_id == location.id and fo.status not in FINISHED for fo in shop.fulfillment_orders.values())


def is_primary(shop: Shop, location: Location) -> bool:
    return location.id == primary_location(shop).id


def deactivatable(shop: Shop, location: Location) -> bool:
    return location.fulfillment_service_id is None and not is_primary(shop, location)


def deletable(shop: Shop, location: Location) -> bool:
    return not _delete_errors(shop, location)


def variant_quantity(shop: Shop, variant: ProductVariant) -> int:
    """`inventoryQuantity`: what is available at the locations the item is active at."""
    item = shop.inventory_items[variant.inventory_item_id]
    return sum(quantity(shop, level, "available") for level in item.levels.values() if level.is_active)


def variant_for_sku(shop: Shop, sku: str | None) -> ProductVariant | None:
    """A line item's `variant`: the catalogue variant with its SKU. Orders placed with a SKU the catalogue does not
    hold (custom items, as the store calls them) have none."""
    if not sku:
        return None
    return next((v for v in shop.variants.values() if v.sku == sku), None)


# ---------------------------------------------------------------------------------------------------------
# What orders commit. An open fulfillment order's remaining items of a tracked item's SKU are committed at its
# location: taken from `available`, still `on_hand`. Derived from the fulfillment orders, so that a move, a
# cancellation or a close carries the commitment along; a fulfillment ships the goods (`ship`).
# ---------------------------------------------------------------------------------------------------------


def item_for_sku(shop: Shop, sku: str | None, location_id: int) -> InventoryItem | None:
    """The tracked item an order line's SKU draws on at a location (the first, if several share the SKU)."""
    if not sku:
        return None
    return next(
        (
            item
            for item in sorted(shop.inventory_items.values(), key=lambda i: i.id)
            if item.tracked and item.sku == sku and (lv := item.levels.get(location_id)) is not None and lv.is_active
        ),
        None,
    )


def committed(shop: Shop, item: InventoryItem, location_id: int) -> int:
    if not item.tracked or not item.sku:
        return 0
    total = 0
    for fo in shop.fulfillment_orders.values():
        if fo.location_id != location_id or fo.status in FINISHED:
            continue
        for li in fo.line_items:
            line = shop.line_items.get(li.line_item_id)
            if line is not None and line.sku == item.sku and li.remaining_quantity:
                total += li.remaining_quantity
    return total if total and item_for_sku(shop, item.sku, location_id) is item else 0


def quantity(shop: Shop, level: InventoryLevel, name: str) -> int:
    """A level's quantity by name as the store reports it, orders' commitments included."""
    if name == "on_hand":
        return sum(level.quantities.get(n, 0) for n in ON_HAND_PARTS)
    value = level.quantities.get(name, 0)
    if name in ("available", "committed") and level.is_active:
        held = committed(shop, shop.inventory_items[level.item_id], level.location_id)
        value += -held if name == "available" else held
    return value


def ship(shop: Shop, location_id: int, lines: Iterable[tuple[str | None, int]]) -> None:
    """Goods left the location (a fulfillment): `on_hand` goes down by what was committed for them."""
    for sku, shipped in lines:
        item = item_for_sku(shop, sku, location_id)
        if item is not None:
            level = item.levels[location_id]
            level.quantities["available"] -= shipped
            level.updated_at = now()


def restock(shop: Shop, location_id: int, lines: Iterable[tuple[str | None, int]]) -> None:
    """A cancelled fulfillment: its goods are back at the location, committed again to the reopened items."""
    ship(shop, location_id, ((sku, -returned) for sku, returned in lines))


# ---------------------------------------------------------------------------------------------------------
# Locations (the merchant's)
# ---------------------------------------------------------------------------------------------------------


def _address(values: dict[str, Any] | None, base: Address | None = None) -> Address:
    if values is not None and not isinstance(values, dict):
        raise _error("Address must be an object.", ["input", "address"])
    return Address(**(vars(base) if base else {}) | address_fields(values or {}))


def add_location(
    shop: Shop, name: str, address: dict[str, Any] | None = None, fulfills_online_orders: bool | None = True
) -> Location:
    name = (name or "").strip()
    if not name:
        raise _error("Name can't be blank", ["input", "name"], "BLANK")
    if any(loc.name == name for loc in shop.locations.values() if loc.fulfillment_service_id is None):
        raise _error("Name has already been taken", ["input", "name"], "TAKEN")
    location = Location(
        id=shop.new_id("Location"),
        name=name,
        address=_address(address),
        fulfills_online_orders=fulfills_online_orders is not False,
    )
    shop.locations[location.id] = location
    return location


def _merchant_location(shop: Shop, location_id: Any) -> Location:
    location = find_location(shop, location_id)
    if location is None:
        raise ResourceNotFound(str(location_id))
    return location


def edit_location(shop: Shop, location_id: Any, changes: dict[str, Any]) -> Location:
    location = _merchant_location(shop, location_id)
    online = changes.get("fulfillsOnlineOrders", changes.get("fulfills_online_orders"))
    if location.fulfillment_service_id is not None and online is not None:
        raise _error(
            "Cannot modify the online order fulfillment preference for fulfillment service locations.",
            ["input", "fulfillsOnlineOrders"],
            "CANNOT_MODIFY_ONLINE_ORDER_FULFILLMENT_FOR_FS_LOCATION",
        )
    if online is False and location.fulfills_online_orders and not _other_online(shop, location):
        raise _error(
            "At least one location must fulfill online orders.",
            ["input", "fulfillsOnlineOrders"],
            "CANNOT_DISABLE_ONLINE_ORDER_FULFILLMENT",
        )
    name = changes.get("name")
    if name is not None:
        name = name.strip()
        if not name:
            raise _error("Name can't be blank", ["input", "name"], "BLANK")
        if any(loc.name == name and loc.id != location.id for loc in shop.locations.values()):
            raise _error("Name has already been taken", ["input", "name"], "TAKEN")
        location.name = name
    if changes.get("address"):
        location.address = _address(changes["address"], location.address)
    if online is not None:
        location.fulfills_online_orders = bool(online)
    location.updated_at = now()
    return location


def _other_online(shop: Shop, location: Location) -> bool:
    """Whether another active merchant-managed location fulfils online orders (service locations do not count)."""
    return any(
        loc.is_active and loc.fulfills_online_orders and loc.fulfillment_service_id is None and loc.id != location.id
        for loc in shop.locations.values()
    )


NOT_FOUND = "Location not found."


def activate_location(shop: Shop, location_id: Any) -> Location | None:
    """Activate a merchant location. A service's location is not the merchant's to activate: the store answers
    LOCATION_NOT_FOUND for it, as for an unknown id."""
    location = find_location(shop, location_id)
    if location is None or location.fulfillment_service_id is not None:
        raise _error(NOT_FOUND, ["locationId"], "LOCATION_NOT_FOUND")
    if not location.is_active:
        if any(loc.is_active and loc.name == location.name for loc in shop.locations.values()):
            raise _error("There is already an active location with this name.", ["locationId"], "HAS_NON_UNIQUE_NAME")
        location.is_active = True
        location.deactivated_at = None
        location.updated_at = now()
    return location


def deactivate_location(shop: Shop, location_id: Any, destination_id: Any = None) -> Location:
    """Deactivate a merchant location; its stock moves to the destination (required while it has stock)."""
    location = find_location(shop, location_id)
    if location is None:
        raise _error(NOT_FOUND, ["locationId"], "LOCATION_NOT_FOUND")
    if not deactivatable(shop, location):
        raise _error(
            "Location could not be deactivated because it either has a fulfillment service or is the only location"
            " with a shipping address.",
            ["locationId"],
            "PERMANENTLY_BLOCKED_FROM_DEACTIVATION_ERROR",
        )
    destination = None
    if destination_id is not None:
        destination = find_location(shop, destination_id)
        if destination is not None and destination.id == location.id:
            raise _error(
                "Location could not be deactivated because the destination location cannot be set to the location"
                " to be deactivated.",
                ["destinationLocationId"],
                "DESTINATION_LOCATION_IS_THE_SAME_LOCATION",
            )
        if destination is None or not destination.is_active:
            raise _error(
                "Location could not be deactivated because the destination location could be not found or is inactive.",
                ["destinationLocationId"],
                "DESTINATION_LOCATION_NOT_FOUND_OR_INACTIVE",
            )
        if destination.fulfillment_service_id is not None:
            raise _error(
                "Location could not be deactivated because the destination location is not Shopify managed.",
                ["destinationLocationId"],
                "DESTINATION_LOCATION_NOT_SHOPIFY_MANAGED",
            )
    if not location.is_active:
        return location
    stocked = active_levels(shop, location)
    if stocked and destination is None:
        raise _error(
            "Location could not be deactivated without specifying where to relocate inventory stocked at the location.",
            ["locationId"],
            "HAS_ACTIVE_INVENTORY_ERROR",
        )
    if location.fulfills_online_orders and not _other_online(shop, location):
        raise _error(
            "At least one location must fulfill online orders.",
            ["locationId"],
            "CANNOT_DISABLE_ONLINE_ORDER_FULFILLMENT",
        )
    if has_unfulfilled_orders(shop, location):
        raise _error(
            "Location could not be deactivated because it has pending orders.",
            ["locationId"],
            "HAS_FULFILLMENT_ORDERS_ERROR",
        )
    for level in stocked:
        assert destination is not None
        target = _stock(shop, shop.inventory_items[level.item_id], destination)
        for name, quantity in level.quantities.items():
            target.quantities[name] = target.quantities.get(name, 0) + quantity
            level.quantities[name] = 0
        target.updated_at = now()
        level.is_active = False
    location.is_active = False
    location.deactivated_at = location.updated_at = now()
    return location


def _delete_errors(shop: Shop, location: Location) -> list[StoreUserError]:
    errors = []
    if location.is_active:
        errors.append(
            _error("The location cannot be deleted while it is active.", ["locationId"], "LOCATION_IS_ACTIVE")
        )
    if any(
        level.is_active or any(level.quantities.values())
        for item in shop.inventory_items.values()
        if (level := item.levels.get(location.id)) is not None
    ):
        errors.append(
            _error("The location cannot be deleted while it has inventory.", ["locationId"], "LOCATION_HAS_INVENTORY")
        )
    if has_unfulfilled_orders(shop, location):
        errors.append(
            _error(
                "The location cannot be deleted while it has pending orders.",
                ["locationId"],
                "LOCATION_HAS_PENDING_ORDERS",
            )
        )
    return errors


def delete_location(shop: Shop, location_id: Any) -> int:
    location = find_location(shop, location_id)
    if location is None or location.fulfillment_service_id is not None:
        raise _error(NOT_FOUND, ["locationId"], "LOCATION_NOT_FOUND")
    _refuse_if(_delete_errors(shop, location))
    for item in shop.inventory_items.values():
        item.levels.pop(location.id, None)
    # Past fulfillment orders and fulfillments still name it.
    shop.removed_locations[location.id] = shop.locations.pop(location.id)
    return location.id


# ---------------------------------------------------------------------------------------------------------
# Products and inventory items
# ---------------------------------------------------------------------------------------------------------


def _handle(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"


def create_product(
    shop: Shop, title: str, variants: list[dict[str, Any]] | None = None, status: str = "ACTIVE"
) -> Product:
    """A product with its variants (one "Default Title" variant when none are given). Each variant's inventory item
    is stocked at the shop location with `available` (default 0) there, or, given `quantities` ({location id:
    available}), at those locations only (as `productSet` with inventory quantities does). Items are untracked
    unless `tracked` is given, as on the store."""
    title = (title or "").strip()
    if not title:
        raise _error("Title can't be blank", ["title"])
    specs = variants or [{}]
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise _error("Variants must be a list of objects.", ["variants"])
    if not all(isinstance(s.get("quantities") or {}, dict) for s in specs):
        raise _error("Quantities must map location ids to numbers.", ["variants", "quantities"])
    skus = [spec.get("sku") for spec in specs]
    for index, spec in enumerate(specs):
        for location_id in spec.get("quantities") or {}:
            if find_location(shop, location_id) is None:
                raise ResourceNotFound(str(location_id))
        if skus[index] and skus.count(skus[index]) > 1:
            raise _error("SKU must be unique within the product.", ["variants", str(index), "sku"])
    product = Product(id=shop.new_id("Product"), title=title, handle=_handle(title), status=status)
    for spec in specs:
        item = InventoryItem(
            id=shop.new_id("InventoryItem"),
            variant_id=0,
            sku=spec.get("sku"),
            tracked=bool(spec.get("tracked", False)),
            requires_shipping=spec.get("requires_shipping", True) is not False,
        )
        variant = ProductVariant(
            id=shop.new_id("ProductVariant"),
            product_id=product.id,
            inventory_item_id=item.id,
            title=spec.get("title") or "Default Title",
            sku=item.sku,
            price=str(spec.get("price") or "0.00"),
        )
        item.variant_id = variant.id
        shop.inventory_items[item.id] = item
        shop.variants[variant.id] = variant
        product.variant_ids.append(variant.id)
        if not spec.get("quantities"):
            level = _stock(shop, item, primary_location(shop))
            level.quantities["available"] = int(spec.get("available") or 0)
        for location_id, available in (spec.get("quantities") or {}).items():
            level = _stock(shop, item, _merchant_location(shop, location_id))
            level.quantities["available"] = int(available)
            level.quantity_updated_at["available"] = now()
    shop.products[product.id] = product
    return product


def update_inventory_item(shop: Shop, item_id: Any, changes: dict[str, Any]) -> InventoryItem:
    item = find_item(shop, item_id)
    if item is None:
        raise ResourceNotFound(str(item_id))
    if changes.get("tracked") is not None:
        item.tracked = bool(changes["tracked"])
    if "sku" in changes:
        item.sku = changes["sku"]
        shop.variants[item.variant_id].sku = changes["sku"]
    if changes.get("requires_shipping", changes.get("requiresShipping")) is not None:
        item.requires_shipping = bool(changes.get("requires_shipping", changes.get("requiresShipping")))
    item.updated_at = now()
    return item


def _stock(shop: Shop, item: InventoryItem, location: Location) -> InventoryLevel:
    level = item.levels.get(location.id)
    if level is None:
        level = InventoryLevel(item_id=item.id, location_id=location.id)
        level.quantity_updated_at["available"] = now()
        item.levels[location.id] = level
    level.is_active = True
    return level


def activate_inventory(
    shop: Shop, item_id: Any, location_id: Any, available: int | None = None, on_hand: int | None = None
) -> tuple[InventoryLevel | None, list[StoreUserError]]:
    """Stock an item at a location (inventoryActivate). An item already active there keeps its quantities: the
    level comes back with a userError if a quantity was given."""
    item = find_item(shop, item_id)
    location = find_location(shop, location_id)
    if item is None:
        return None, [_error("The product couldn't be stocked because the product was deleted.", ["inventoryItemId"])]
    if location is None:
        return None, [_error("The product couldn't be stocked because the location was deleted.", ["locationId"])]
    prefix = f"The product couldn't be stocked at {location.name} because"
    if available is not None and on_hand is not None:
        message = f"{prefix} not allowed to set available and on_hand quantities at the same time."
        return None, [_error(message, ["available"]), _error(message, ["onHand"])]
    for value, field in ((available, "available"), (on_hand, "onHand")):
        if value is not None and not -LIMIT <= value <= LIMIT:
            return None, [_error(f"{prefix} the quantity needs to be between -1 billion and 1 billion.", [field])]
    if not location.is_active:
        return None, [_error(f"{prefix} the location is inactive.", ["locationId"])]
    level = item.levels.get(location.id)
    if level is not None and level.is_active:
        if available is not None:
            return level, [
                _error(
                    "Not allowed to set available quantity when the item is already active at the location.",
                    ["available"],
                )
            ]
        if on_hand is not None:
            return level, [
                _error(
                    "Not allowed to set an on_hand quantity when the item is already active at the location.",
                    ["onHand"],
                )
            ]
        return level, []
    level = _stock(shop, item, location)
    given = available if available is not None else on_hand
    if given is not None:
        # On a new level every other quantity is 0, so on_hand and available are the same number.
        level.quantities["available"] = given
        level.quantity_updated_at["available"] = now()
    level.updated_at = item.updated_at = now()
    return level, []


def deactivate_inventory(shop: Shop, level_id: Any) -> None:
    """Unstock an item from a location (inventoryDeactivate): the level stays readable, inactive, with its
    quantities. The store refuses only when no other location stocks the item."""
    match = LEVEL_GID.match(str(level_id or ""))
    item = shop.inventory_items.get(int(match.group(2))) if match else None
    if item is None:
        raise _error("The product couldn't be unstocked because the product was deleted.", None)
    assert match is not None
    location = shop.locations.get(int(match.group(1)))
    level = item.levels.get(location.id) if location else None
    if location is None or level is None:
        raise _error("The product couldn't be unstocked because the location was deleted.", None)
    if level.is_active and not any(other.is_active for other in item.levels.values() if other is not level):
        raise _error(
            f"The product couldn't be unstocked from {location.name} because products need to be stocked at a"
            " minimum of 1 location.",
            None,
        )
    level.is_active = False
    level.updated_at = now()


# ---------------------------------------------------------------------------------------------------------
# Quantities
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Target:
    """One (item, location) entry of a quantity mutation, checked."""

    index: int
    item: InventoryItem | None
    location: Location | None
    entry: dict[str, Any]


def _check_reason(reason: Any) -> list[StoreUserError]:
    if reason in REASONS:
        return []
    message = f"The specified reason is invalid. Valid values are: {', '.join(REASONS)}."
    return [_error(message, ["input", "reason"], "INVALID_REASON")]


def _check_reference(uri: Any) -> list[StoreUserError]:
    if uri is None or URI.match(str(uri)):
        return []
    return [
        _error(
            "The specified reference document is invalid.",
            ["input", "referenceDocumentUri"],
            "INVALID_REFERENCE_DOCUMENT",
        )
    ]


def _targets(shop: Shop, entries: list[dict[str, Any]], list_name: str, errors: list[StoreUserError]) -> list[_Target]:
    """Resolve every entry's item and location; unknown ones are reported per entry, in order."""
    targets = []
    for index, entry in enumerate(entries):
        item = find_item(shop, entry.get("inventoryItemId"))
        location = find_location(shop, entry.get("locationId"))
        path = ["input", list_name, str(index)]
        if item is None:
            errors.append(
                _error(
                    "The specified inventory item could not be found.",
                    [*path, "inventoryItemId"],
                    "INVALID_INVENTORY_ITEM",
                )
            )
        if location is None:
            errors.append(
                _error("The specified location could not be found.", [*path, "locationId"], "INVALID_LOCATION")
            )
        targets.append(_Target(index, item, location, entry))
    return targets


def _check_pairs(targets: list[_Target], list_name: str) -> list[StoreUserError]:
    """Each (item, location) pair at most once: every entry of a repeated pair is reported."""
    seen: dict[tuple[int, int], int] = {}
    for target in targets:
        if target.item and target.location:
            key = (target.item.id, target.location.id)
            seen[key] = seen.get(key, 0) + 1
    return [
        _error(
            "The combination of inventoryItemId and locationId must be unique.",
            ["input", list_name, str(t.index), "locationId"],
            "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
        )
        for t in targets
        if t.item and t.location and seen[(t.item.id, t.location.id)] > 1
    ]


def _check_stocked(targets: list[_Target], list_name: str) -> list[StoreUserError]:
    return [
        _error(
            "The specified inventory item is not stocked at the location.",
            ["input", list_name, str(t.index), "locationId"],
            "ITEM_NOT_STOCKED_AT_LOCATION",
        )
        for t in targets
        if t.item and t.location and not ((level := t.item.levels.get(t.location.id)) and level.is_active)
    ]


def _check_stale(
    shop: Shop, targets: list[_Target], list_name: str, name_of: Any, message: str
) -> list[StoreUserError]:
    """`changeFromQuantity` is the store's compare-and-swap: null skips it, a number must be what is there now."""
    errors = []
    for t in targets:
        expected = t.entry.get("changeFromQuantity")
        assert t.item and t.location
        level = t.item.levels[t.location.id]
        if expected is not None and quantity(shop, level, name_of(t)) != expected:
            errors.append(
                _error(message, ["input", list_name, str(t.index), "changeFromQuantity"], "CHANGE_FROM_QUANTITY_STALE")
            )
    return errors


def _bounds(quantity: int, name: str, field: list[str]) -> list[StoreUserError]:
    if name == "on_hand" and quantity < 0:
        return [_error("The quantity can't be negative.", field, "INVALID_QUANTITY_NEGATIVE")]
    if quantity > LIMIT:
        return [_error("The quantity can't be higher than 1,000,000,000.", field, "INVALID_QUANTITY_TOO_HIGH")]
    if quantity < -LIMIT:
        return [_error("The quantity can't be lower than -1,000,000,000.", field, "INVALID_QUANTITY_TOO_LOW")]
    return []


def _apply(
    shop: Shop,
    actor: Actor,
    reason: str,
    reference: str | None,
    moves: Iterable[tuple[InventoryLevel, str, int, str | None]],
) -> InventoryAdjustmentGroup | None:
    """Apply (level, name, delta, ledger document) moves; record the changes the store lists (the name moved, and
    `on_hand` when that name is part of it). Nothing moved (every delta 0): no adjustment group."""
    changes: list[InventoryChange] = []
    on_hand: dict[tuple[int, int], int] = {}  # net per level: a move between two parts of on_hand leaves it be
    for level, name, delta, ledger in moves:
        if delta == 0:
            continue
        level.quantities[name] = level.quantities.get(name, 0) + delta
        level.quantity_updated_at[name] = level.updated_at = now()
        changes.append(InventoryChange(name, delta, level.item_id, level.location_id, ledger))
        if name in ON_HAND_PARTS:
            key = (level.item_id, level.location_id)
            on_hand[key] = on_hand.get(key, 0) + delta
    if not changes:
        return None
    changes += [
        InventoryChange("on_hand", delta, item, location) for (item, location), delta in on_hand.items() if delta
    ]
    group = InventoryAdjustmentGroup(
        id=shop.new_id("InventoryAdjustmentGroup"),
        reason=reason,
        reference_document_uri=reference,
        changes=changes,
        install_id=actor.install_id,
    )
    shop.adjustment_groups[group.id] = group
    return group


def set_quantities(shop: Shop, actor: Actor, data: dict[str, Any]) -> InventoryAdjustmentGroup | None:
    """inventorySetQuantities: `available` or `on_hand` to absolute numbers (setting on_hand moves available)."""
    name = data.get("name")
    errors: list[StoreUserError] = []
    if name not in SET_NAMES:
        errors.append(
            _error("The quantity name must be either 'available' or 'on_hand'.", ["input", "name"], "INVALID_NAME")
        )
    errors += _check_reason(data.get("reason")) + _check_reference(data.get("referenceDocumentUri"))
    entries = data.get("quantities") or []
    targets = _targets(shop, entries, "quantities", errors)
    for t in targets:
        errors += _bounds(int(t.entry["quantity"]), str(name), ["input", "quantities", str(t.index), "quantity"])
    _refuse_if(errors)
    _refuse_if(_check_pairs(targets, "quantities") + _check_stocked(targets, "quantities"))
    _refuse_if(
        _check_stale(
            shop, targets, "quantities", lambda t: name, "The changeFromQuantity value does not match persisted value."
        )
    )
    moves = []
    for t in targets:
        assert t.item and t.location
        level = t.item.levels[t.location.id]
        moves.append((level, "available", int(t.entry["quantity"]) - quantity(shop, level, str(name)), None))
    return _apply(shop, actor, data["reason"], data.get("referenceDocumentUri"), moves)


def set_on_hand_quantities(shop: Shop, actor: Actor, data: dict[str, Any]) -> InventoryAdjustmentGroup | None:
    """inventorySetOnHandQuantities: on_hand to absolute numbers (the difference goes to available)."""
    errors = _check_reason(data.get("reason")) + _check_reference(data.get("referenceDocumentUri"))
    targets = _targets(shop, data.get("setQuantities") or [], "setQuantities", errors)
    for t in targets:
        errors += _bounds(int(t.entry["quantity"]), "on_hand", ["input", "setQuantities", str(t.index), "quantity"])
    _refuse_if(errors)
    _refuse_if(_check_pairs(targets, "setQuantities") + _check_stocked(targets, "setQuantities"))
    _refuse_if(
        _check_stale(
            shop,
            targets,
            "setQuantities",
            lambda t: "on_hand",
            "The changeFromQuantity argument no longer matches the persisted quantity.",
        )
    )
    moves = []
    for t in targets:
        assert t.item and t.location
        level = t.item.levels[t.location.id]
        moves.append((level, "available", int(t.entry["quantity"]) - quantity(shop, level, "on_hand"), None))
    return _apply(shop, actor, data["reason"], data.get("referenceDocumentUri"), moves)


def _invalid_name(field: list[str]) -> StoreUserError:
    message = f"The specified quantity name is invalid. Valid values are: {', '.join(ADJUSTABLE_NAMES)}."
    return _error(message, field, "INVALID_QUANTITY_NAME")


def _ledger_errors(name: str, ledger: Any, field: list[str]) -> list[StoreUserError]:
    """Only `available` moves without a ledger document; the others need one that is not the store's own."""
    if name == "available":
        if ledger is not None:
            return [
                _error(
                    "A ledger document URI is not allowed when adjusting available.",
                    field,
                    "INVALID_AVAILABLE_DOCUMENT",
                )
            ]
        return []
    if ledger is None:
        return [
            _error(
                "A ledger document URI is required except when adjusting available.", field, "INVALID_QUANTITY_DOCUMENT"
            )
        ]
    if str(ledger).startswith("gid://shopify/"):
        return [
            _error(
                "Internal (gid://shopify/) ledger documents are not allowed to be adjusted via API.",
                field,
                "INTERNAL_LEDGER_DOCUMENT",
            )
        ]
    if not URI.match(str(ledger)):
        return [_error("The specified ledger document is invalid.", field, "INVALID_LEDGER_DOCUMENT")]
    return []


def adjust_quantities(shop: Shop, actor: Actor, data: dict[str, Any]) -> InventoryAdjustmentGroup | None:
    """inventoryAdjustQuantities: add deltas to one quantity name."""
    name = data.get("name")
    errors: list[StoreUserError] = []
    if name not in ADJUSTABLE_NAMES:
        errors.append(_invalid_name(["input", "name"]))
    errors += _check_reason(data.get("reason")) + _check_reference(data.get("referenceDocumentUri"))
    entries = data.get("changes") or []
    targets = _targets(shop, entries, "changes", errors)
    if name in ADJUSTABLE_NAMES:
        for t in targets:
            errors += _ledger_errors(
                str(name), t.entry.get("ledgerDocumentUri"), ["input", "changes", str(t.index), "ledgerDocumentUri"]
            )
        ledgers = {t.entry.get("ledgerDocumentUri") for t in targets}
        if not errors and len(ledgers) > 1:
            errors.append(
                _error(
                    "All changes must have the same ledger document URI or, in the case of adjusting available, no"
                    " ledger document URI.",
                    ["input", "changes"],
                    "MAX_ONE_LEDGER_DOCUMENT",
                )
            )
    _refuse_if(errors)
    _refuse_if(_check_stocked(targets, "changes"))
    _refuse_if(
        _check_stale(
            shop,
            targets,
            "changes",
            lambda t: name,
            "The changeFromQuantity argument no longer matches the persisted quantity.",
        )
    )
    moves = []
    for t in targets:
        assert t.item and t.location
        moves.append((t.item.levels[t.location.id], str(name), int(t.entry["delta"]), t.entry.get("ledgerDocumentUri")))
    return _apply(shop, actor, data["reason"], data.get("referenceDocumentUri"), moves)


def move_quantities(shop: Shop, actor: Actor, data: dict[str, Any]) -> InventoryAdjustmentGroup | None:
    """inventoryMoveQuantities: move a quantity between two names at one location."""
    errors = _check_reason(data.get("reason")) + _check_reference(data.get("referenceDocumentUri"))
    moves = []
    checked = []
    for index, change in enumerate(data.get("changes") or []):
        path = ["input", "changes", str(index)]
        item = find_item(shop, change.get("inventoryItemId"))
        if item is None:
            errors.append(
                _error(
                    "The specified inventory item could not be found.",
                    [*path, "inventoryItemId"],
                    "INVALID_INVENTORY_ITEM",
                )
            )
        ends = []
        for side in ("from", "to"):
            end = change.get(side) or {}
            location = find_location(shop, end.get("locationId"))
            if location is None:
                errors.append(
                    _error(
                        "The specified location could not be found.", [*path, side, "locationId"], "INVALID_LOCATION"
                    )
                )
            if end.get("name") not in ADJUSTABLE_NAMES:
                errors.append(_invalid_name([*path, side, "name"]))
            ends.append((location, end))
        checked.append((index, item, ends, int(change.get("quantity") or 0)))
    _refuse_if(errors)
    for index, item, ends, quantity in checked:
        path = ["input", "changes", str(index)]
        (source, start), (target, finish) = ends
        assert item and source and target
        if source.id != target.id:
            errors.append(
                _error("The quantities can't be moved between different locations.", path, "DIFFERENT_LOCATIONS")
            )
        elif start["name"] == finish["name"]:
            errors.append(_error("The quantity names for each change can't be the same.", path, "SAME_QUANTITY_NAME"))
        elif quantity < 0:
            errors.append(_error("The quantity can't be negative.", [*path, "quantity"], "INVALID_QUANTITY_NEGATIVE"))
        for side, end in (("from", start), ("to", finish)):
            errors += _ledger_errors(end["name"], end.get("ledgerDocumentUri"), [*path, side, "ledgerDocumentUri"])
        level = item.levels.get(source.id)
        if level is None or not level.is_active:
            errors.append(
                _error(
                    "The inventory item is not stocked at the location.",
                    [*path, "inventoryItemId"],
                    "ITEM_NOT_STOCKED_AT_LOCATION",
                )
            )
            continue
        for side, end in (("from", start), ("to", finish)):
            expected = end.get("changeFromQuantity")
            if expected is not None and quantity(shop, level, end["name"]) != expected:
                errors.append(
                    _error(
                        "The changeFromQuantity argument no longer matches the persisted quantity.",
                        [*path, side, "changeFromQuantity"],
                        "CHANGE_FROM_QUANTITY_STALE",
                    )
                )
        moves += [
            (level, start["name"], -quantity, start.get("ledgerDocumentUri")),
            (level, finish["name"], quantity, finish.get("ledgerDocumentUri")),
        ]
    _refuse_if(errors)
    return _apply(shop, actor, data["reason"], data.get("referenceDocumentUri"), moves)
