"""GraphQL resolvers for locations, products and inventory (`inventory.py` holds the rules), and the meaning of
`@idempotent(key:)` on the mutations that take it.

Since 2026-04 the store requires the directive on the quantity mutations and on `locationActivate` /
`locationDeactivate`: without it the field fails with BAD_REQUEST and answers null. A repeat of a key with the
same arguments answers what the first call answered and changes nothing; the key with other arguments is
refused with IDEMPOTENCY_KEY_PARAMETER_MISMATCH. Only calls that changed something keep their key, so a refused
call (a stale `changeFromQuantity`, say) can be sent again under the same key once its cause is fixed.

The resolvers are merged into `graphql_api.RESOLVERS` by `register()`, which `graphql_api` calls once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, VariableNode
from graphql.execution.values import get_directive_values

from sandbox import inventory as inv
from sandbox.model import (
    QUANTITY_NAMES,
    IdempotentCall,
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
    gid,
    parse_id,
)

# Versions before this one accept the mutations without the directive.
DIRECTIVE_REQUIRED_SINCE = "2026-04"
DIRECTIVE_REQUIRED = "The @idempotent directive is required for this mutation but was not provided."
KEY_MISMATCH = "The same idempotency key cannot be used with different operation parameters."
COUNTRIES = {"US": "United States", "CA": "Canada", "NO": "Norway", "GB": "United Kingdom", "DE": "Germany"}


def _ctx(info: GraphQLResolveInfo) -> Any:
    return info.context


def _shop(info: GraphQLResolveInfo) -> Shop:
    return _ctx(info).shop


# ---------------------------------------------------------------------------------------------------------
# @idempotent and the other checks the store makes before running a mutation
# ---------------------------------------------------------------------------------------------------------


def idempotency_key(info: GraphQLResolveInfo) -> str | None:
    directive = info.schema.get_directive("idempotent")
    if directive is None:
        return None
    values = get_directive_values(directive, info.field_nodes[0], info.variable_values)
    return values["key"] if values else None


def _requires_directive(info: GraphQLResolveInfo) -> bool:
    """Whether the request's API version is one where the 2026-04 rules hold."""
    version = getattr(_ctx(info), "api_version", None) or "unstable"
    return version == "unstable" or version >= DIRECTIVE_REQUIRED_SINCE


def require_change_from(input_type: str, list_name: str) -> Callable[[GraphQLResolveInfo, dict[str, Any]], None]:
    """Since 2026-04 `changeFromQuantity` may be null (no compare-and-swap) but must be given: left out, the store
    refuses the whole field with INVALID_FIELD_ARGUMENTS, pointing at the field and the variable that carried the
    input."""

    def check(info: GraphQLResolveInfo, args: dict[str, Any]) -> None:
        entries = (args.get("input") or {}).get(list_name) or []
        if not _requires_directive(info) or all("changeFromQuantity" in entry for entry in entries):
            return  # (mandatory from the same version as the directive)
        field = info.field_nodes[0]
        nodes: list[Any] = [field]
        argument = next((a for a in field.arguments or () if a.name.value == "input"), None)
        if argument is not None and isinstance(argument.value, VariableNode):
            name = argument.value.name.value
            nodes += [d for d in info.operation.variable_definitions or () if d.variable.name.value == name]
        raise GraphQLError(
            f"{input_type} must include the following argument: changeFromQuantity.",
            nodes=nodes,
            extensions={"code": "INVALID_FIELD_ARGUMENTS"},
        )

    return check


def _user_error(error: StoreUserError) -> dict[str, Any]:
    return {"field": error.field, "message": error.message, "code": error.code}


def _user_errors(error: StoreUserError) -> list[dict[str, Any]]:
    return [_user_error(e) for e in getattr(error, "errors", [error])]


def idempotent_mutation(
    root: str,
    action: Callable[..., dict[str, Any]],
    errors_key: str = "userErrors",
    check: Callable[[GraphQLResolveInfo, dict[str, Any]], None] | None = None,
    refused: Callable[..., dict[str, Any]] | None = None,
) -> Callable[..., dict[str, Any]]:
    """A mutation that takes `@idempotent(key:)`: `action(shop, actor, **args)` returns its payload; a refused
    change (`StoreUserError`, or `inventory.Refused` with several) becomes the payload's userErrors, beside what
    `refused(shop, **args)` adds (the location mutations still answer the location as it is)."""

    def resolve(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        ctx = _ctx(info)
        if check is not None:
            check(info, args)
        key = idempotency_key(info)
        if key is None and _requires_directive(info):
            raise GraphQLError(DIRECTIVE_REQUIRED, extensions={"code": "BAD_REQUEST"})
        if key is not None and not key.strip():
            raise GraphQLError(
                "The idempotency key cannot be an empty string or whitespace only.", extensions={"code": "BAD_REQUEST"}
            )
        slot = (ctx.actor.install_id or "merchant", root, key or "")
        fingerprint = json.dumps(args, sort_keys=True, default=str)
        if key is not None:
            previous = ctx.shop.idempotent_calls.get(slot)
            if previous is not None:
                if previous.fingerprint == fingerprint:
                    previous.replays += 1
                    return previous.payload
                return {
                    errors_key: [{"field": None, "message": KEY_MISMATCH, "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"}]
                }
        try:
            payload = action(ctx.shop, ctx.actor, **args)
        except StoreUserError as error:
            return {**(refused(ctx.shop, **args) if refused else {}), errors_key: _user_errors(error)}
        except ResourceNotFound as missing:
            raise _not_found(missing) from missing
        payload.setdefault(errors_key, [])
        if key is not None and not payload[errors_key]:
            ctx.shop.idempotent_calls[slot] = IdempotentCall(fingerprint, payload)
        return payload

    return resolve


def plain_mutation(action: Callable[..., dict[str, Any]], errors_key: str) -> Callable[..., dict[str, Any]]:
    def resolve(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        ctx = _ctx(info)
        try:
            payload = action(ctx.shop, ctx.actor, **args)
        except StoreUserError as error:
            return {errors_key: _user_errors(error)}
        except ResourceNotFound as missing:
            raise _not_found(missing) from missing
        payload.setdefault(errors_key, [])
        return payload

    return resolve


def _not_found(missing: ResourceNotFound) -> GraphQLError:
    return GraphQLError(str(missing), extensions={"code": "RESOURCE_NOT_FOUND"})


# ---------------------------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------------------------


def _activate(
    shop: Shop, actor: Any, inventoryItemId: str, locationId: str, available: int | None = None, **rest: Any
) -> dict[str, Any]:
    level, errors = inv.activate_inventory(shop, inventoryItemId, locationId, available, rest.get("onHand"))
    return {"inventoryLevel": level, "userErrors": [_user_error(e) for e in errors]}


def _deactivate(shop: Shop, actor: Any, inventoryLevelId: str) -> dict[str, Any]:
    inv.deactivate_inventory(shop, inventoryLevelId)
    return {}


MUTATIONS: dict[str, Callable[..., Any]] = {
    "inventorySetQuantities": idempotent_mutation(
        "inventorySetQuantities",
        lambda shop, actor, input: {"inventoryAdjustmentGroup": inv.set_quantities(shop, actor, input)},
        check=require_change_from("InventoryQuantityInput", "quantities"),
    ),
    "inventoryAdjustQuantities": idempotent_mutation(
        "inventoryAdjustQuantities",
        lambda shop, actor, input: {"inventoryAdjustmentGroup": inv.adjust_quantities(shop, actor, input)},
        check=require_change_from("InventoryChangeInput", "changes"),
    ),
    "inventorySetOnHandQuantities": idempotent_mutation(
        "inventorySetOnHandQuantities",
        lambda shop, actor, input: {"inventoryAdjustmentGroup": inv.set_on_hand_quantities(shop, actor, input)},
        check=require_change_from("InventorySetQuantityInput", "setQuantities"),
    ),
    "inventoryMoveQuantities": idempotent_mutation(
        "inventoryMoveQuantities",
        lambda shop, actor, input: {"inventoryAdjustmentGroup": inv.move_quantities(shop, actor, input)},
    ),
    "inventoryActivate": idempotent_mutation("inventoryActivate", _activate),
    "inventoryDeactivate": idempotent_mutation("inventoryDeactivate", _deactivate),
    "locationActivate": idempotent_mutation(
        "locationActivate",
        lambda shop, actor, locationId: {"location": inv.activate_location(shop, locationId)},
        errors_key="locationActivateUserErrors",
        refused=lambda shop, locationId, **_: {"location": inv.find_location(shop, locationId)},
    ),
    "locationDeactivate": idempotent_mutation(
        "locationDeactivate",
        lambda shop, actor, locationId, destinationLocationId=None: {
            "location": inv.deactivate_location(shop, locationId, destinationLocationId)
        },
        errors_key="locationDeactivateUserErrors",
        refused=lambda shop, locationId, **_: {"location": inv.find_location(shop, locationId)},
    ),
    "locationDelete": plain_mutation(
        lambda shop, actor, locationId: {"deletedLocationId": gid("Location", inv.delete_location(shop, locationId))},
        "locationDeleteUserErrors",
    ),
    "locationAdd": plain_mutation(
        lambda shop, actor, input: {
            "location": inv.add_location(
                shop, input.get("name"), input.get("address"), input.get("fulfillsOnlineOrders", True)
            )
        },
        "userErrors",
    ),
    "locationEdit": plain_mutation(
        lambda shop, actor, id, input: {"location": inv.edit_location(shop, id, input)}, "userErrors"
    ),
}


# ---------------------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------------------


def _search(items: list[InventoryItem], query: str | None) -> list[InventoryItem]:
    """`inventoryItems(query:)` terms the app uses: `sku:X` and `id:N`, ANDed, with `OR` between groups; a bare
    word matches part of the SKU."""
    groups = [group.split() for group in re.split(r"\s+OR\s+", (query or "").strip())]
    return [item for item in items if any(all(_matches(item, term) for term in group) for group in groups)]


def _matches(item: InventoryItem, term: str) -> bool:
    field, _, value = term.partition(":")
    value = value.strip("\"'")
    if field == "sku" and value:
        return item.sku == value
    if field == "id" and value:
        return str(item.id) == value.rsplit("/", 1)[-1]
    if not value:
        return bool(item.sku) and term.strip("\"'").lower() in str(item.sku).lower()
    return True  # a field this sandbox does not filter on


def _levels(levels: list[InventoryLevel], include_inactive: bool | None, query: str | None) -> list[InventoryLevel]:
    """Active levels (all, if asked), filtered by `query` as the store does: only `inventory_item_id` filters a
    level list; other fields are ignored (the store only warns)."""
    found = [level for level in levels if include_inactive or level.is_active]
    for term in (query or "").split():
        field, _, value = term.partition(":")
        if field == "inventory_item_id":
            found = [level for level in found if str(level.item_id) == value.rsplit("/", 1)[-1]]
    return found


def _quantities(shop: Shop, level: InventoryLevel, names: list[str]) -> list[dict[str, Any]]:
    known = (*QUANTITY_NAMES, "on_hand")
    return [
        {
            "id": f"gid://shopify/InventoryQuantity/{level.location_id}?inventory_item_id={level.item_id}&name={name}",
            "name": name,
            "quantity": inv.quantity(shop, level, name),
            # `on_hand` is derived: the store gives it no time of its own.
            "updatedAt": None if name == "on_hand" else level.quantity_updated_at.get(name),
        }
        for name in names
        if name in known
    ]


def _level_sort_key(level: InventoryLevel) -> int:
    return level.location_id


def _address(location: Location, info: GraphQLResolveInfo) -> dict[str, Any]:
    a = location.address
    city_line = " ".join(p for p in (a.city, a.province, a.zip) if p)
    country = COUNTRIES.get(a.country_code or "", a.country_code)
    return {
        "address1": a.address1,
        "address2": a.address2,
        "city": a.city,
        "country": country,
        "countryCode": a.country_code,
        "province": a.province,
        "provinceCode": a.province,
        "zip": a.zip,
        "phone": a.phone,
        "latitude": None,
        "longitude": None,
        "formatted": [p for p in (a.address1, a.address2, city_line, country) if p],
    }


def register(
    resolvers: dict[str, dict[str, Callable[..., Any]]],
    type_names: dict[type, str],
    node_kinds: dict[str, Callable[[Shop], dict[int, Any]]],
    connection: Callable[..., dict[str, Any]],
) -> None:
    """Add this module's resolvers, node kinds and type names to the endpoint's tables."""

    def page(items: list[Any], key: Callable[[Any], int] | None = None, **args: Any) -> dict[str, Any]:
        return connection(items, key=key, **args) if key else connection(items, **args)

    def item_levels(
        item: InventoryItem,
        info: GraphQLResolveInfo,
        includeInactive: bool = False,
        query: str | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        levels = _levels(list(item.levels.values()), includeInactive, query)
        return page(levels, key=_level_sort_key, **args)

    def location_levels(
        location: Location,
        info: GraphQLResolveInfo,
        includeInactive: bool = False,
        query: str | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        shop = _shop(info)
        levels = [lv for i in shop.inventory_items.values() if (lv := i.levels.get(location.id)) is not None]
        return page(_levels(levels, includeInactive, query), key=lambda lv: lv.item_id, **args)

    def variants(
        _: Any,
        info: GraphQLResolveInfo,
        query: str | None = None,
        sortKey: str | None = None,
        savedSearchId: str | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        """`productVariants(query:)` by their items' SKU or id (the terms `inventoryItems` takes)."""
        shop = _shop(info)
        wanted = {item.id for item in _search(list(shop.inventory_items.values()), query)}
        return page([v for v in shop.variants.values() if v.inventory_item_id in wanted], **args)

    def one_level(level: InventoryLevel | None, include_inactive: bool | None) -> InventoryLevel | None:
        return level if level is not None and (include_inactive or level.is_active) else None

    resolvers.setdefault("QueryRoot", {}).update(
        {
            "inventoryItem": lambda _, info, id: inv.find_item(_shop(info), id),
            "inventoryItems": lambda _, info, query=None, **args: page(
                _search(list(_shop(info).inventory_items.values()), query), **args
            ),
            "inventoryLevel": lambda _, info, id: inv.find_level(_shop(info), id),
            "product": lambda _, info, id: _find(_shop(info).products, id, "Product"),
            "productVariant": lambda _, info, id: _find(_shop(info).variants, id, "ProductVariant"),
            "productVariants": variants,
        }
    )
    resolvers.setdefault("Location", {}).update(
        {
            "legacyResourceId": lambda loc, info: str(loc.id),
            "isPrimary": lambda loc, info: inv.is_primary(_shop(info), loc),
            "activatable": lambda loc, info: loc.fulfillment_service_id is None,
            "deactivatable": lambda loc, info: inv.deactivatable(_shop(info), loc),
            "deletable": lambda loc, info: inv.deletable(_shop(info), loc),
            "deactivatedAt": lambda loc, info: (
                loc.deactivated_at.isoformat().replace("+00:00", "Z") if loc.deactivated_at else None
            ),
            "hasActiveInventory": lambda loc, info: bool(inv.active_levels(_shop(info), loc)),
            "hasUnfulfilledOrders": lambda loc, info: inv.has_unfulfilled_orders(_shop(info), loc),
            "addressVerified": lambda loc, info: False,
            "address": _address,
            "inventoryLevel": lambda loc, info, inventoryItemId, includeInactive=False: one_level(
                (item := inv.find_item(_shop(info), inventoryItemId)) and item.levels.get(loc.id), includeInactive
            ),
            "inventoryLevels": location_levels,
        }
    )
    resolvers["InventoryItem"] = {
        "id": lambda item, info: gid("InventoryItem", item.id),
        "legacyResourceId": lambda item, info: str(item.id),
        "variant": lambda item, info: _shop(info).variants.get(item.variant_id),
        "variants": lambda item, info, **args: page([_shop(info).variants[item.variant_id]], **args),
        "inventoryLevel": lambda item, info, locationId, includeInactive=False: one_level(
            item.levels.get(_id(locationId, "Location")), includeInactive
        ),
        "inventoryLevels": item_levels,
        "duplicateSkuCount": lambda item, info: sum(
            1
            for other in _shop(info).inventory_items.values()
            if item.sku and other.sku == item.sku and other is not item
        ),
        "inventoryHistoryUrl": lambda item, info: None,
        "countryCodeOfOrigin": lambda item, info: None,
        "provinceCodeOfOrigin": lambda item, info: None,
        "harmonizedSystemCode": lambda item, info: None,
    }
    resolvers["InventoryLevel"] = {
        "id": lambda level, info: inv.level_gid(level),
        "item": lambda level, info: _shop(info).inventory_items[level.item_id],
        "location": lambda level, info: _shop(info).locations.get(level.location_id),
        "quantities": lambda level, info, names: _quantities(_shop(info), level, names),
        "canDeactivate": lambda level, info: any(
            other.is_active
            for other in _shop(info).inventory_items[level.item_id].levels.values()
            if other is not level
        ),
        "deactivationAlert": lambda level, info: None,
    }
    resolvers["InventoryAdjustmentGroup"] = {
        "id": lambda group, info: gid("InventoryAdjustmentGroup", group.id),
        "changes": lambda group, info, inventoryItemIds=None, locationIds=None, quantityNames=None: [
            change
            for change in group.changes
            if (not inventoryItemIds or change.item_id in {_id(i, "InventoryItem") for i in inventoryItemIds})
            and (not locationIds or change.location_id in {_id(i, "Location") for i in locationIds})
            and (not quantityNames or change.name in quantityNames)
        ],
        "app": lambda group, info: None,
    }
    resolvers["InventoryChange"] = {
        "item": lambda change, info: _shop(info).inventory_items.get(change.item_id),
        "location": lambda change, info: _shop(info).locations.get(change.location_id),
        # The store leaves it null in these mutations' answers.
        "quantityAfterChange": lambda change, info: None,
    }
    resolvers["Product"] = {
        "id": lambda p, info: gid("Product", p.id),
        "legacyResourceId": lambda p, info: str(p.id),
        "variants": lambda p, info, **args: page([_shop(info).variants[i] for i in p.variant_ids], **args),
        "tracksInventory": lambda p, info: any(
            _shop(info).inventory_items[_shop(info).variants[i].inventory_item_id].tracked for i in p.variant_ids
        ),
        "totalInventory": lambda p, info: sum(
            inv.variant_quantity(_shop(info), _shop(info).variants[i]) for i in p.variant_ids
        ),
    }
    resolvers["ProductVariant"] = {
        "id": lambda v, info: gid("ProductVariant", v.id),
        "legacyResourceId": lambda v, info: str(v.id),
        "displayName": lambda v, info: f"{_shop(info).products[v.product_id].title} - {v.title}",
        "inventoryItem": lambda v, info: _shop(info).inventory_items[v.inventory_item_id],
        "inventoryQuantity": lambda v, info: inv.variant_quantity(_shop(info), v),
        "product": lambda v, info: _shop(info).products[v.product_id],
        "barcode": lambda v, info: None,
        "inventoryPolicy": lambda v, info: "DENY",
    }
    resolvers.setdefault("Mutation", {}).update(MUTATIONS)
    type_names.update(
        {
            InventoryItem: "InventoryItem",
            InventoryLevel: "InventoryLevel",
            InventoryAdjustmentGroup: "InventoryAdjustmentGroup",
            InventoryChange: "InventoryChange",
            Product: "Product",
            ProductVariant: "ProductVariant",
        }
    )
    node_kinds.update(
        {
            "InventoryItem": lambda s: s.inventory_items,
            "Product": lambda s: s.products,
            "ProductVariant": lambda s: s.variants,
        }
    )


def _id(value: Any, kind: str) -> int | None:
    return parse_id(value, kind)


def _find(records: dict[int, Any], value: Any, kind: str) -> Any:
    id_ = _id(value, kind)
    return records.get(id_) if id_ is not None else None
