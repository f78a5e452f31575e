"""Locations, products and inventory in the sandbox: the merchant's actions, and the store's rules for the
quantity mutations that the recordings do not show (reusing an idempotency key, a stale compare-and-swap, a
change that changes nothing), stated as plain expected values."""

from __future__ import annotations

from typing import Any

from sandbox.cli import build_parser, request_for

SET = """
mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri changes { name delta item { id } location { id } } }
    userErrors { field message code }
  }
}"""
ADJUST = """
mutation Adjust($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { changes { name delta ledgerDocumentUri } }
    userErrors { field message code }
  }
}"""
LEVELS = """
query($id: ID!) {
  inventoryItem(id: $id) {
    sku tracked
    variant { inventoryQuantity }
    inventoryLevels(first: 10, includeInactive: true) {
      nodes { isActive location { id } quantities(names: ["available", "on_hand", "damaged"]) { name quantity } }
    }
  }
}"""


def product(h: Any, sku: str = "TSHIRT-BLK-M", **variant: Any) -> str:
    response = h.client.post(
        f"/_sandbox/shops/{h.shop}/products", json={"title": "T-shirt", "variants": [{"sku": sku, **variant}]}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["variants"][0]["inventory_item"]["id"]


def set_input(item: str, location: str, quantity: int, change_from: int | None = 0, **extra: Any) -> dict:
    entry = {"inventoryItemId": item, "locationId": location, "quantity": quantity, "changeFromQuantity": change_from}
    return {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "logistics://test/1",
        "quantities": [entry],
        **extra,
    }


def quantities(h: Any, item: str, token: str | None = None) -> dict[str, dict[str, int]]:
    body = h.gql(LEVELS, {"id": item}, token)
    levels = body["data"]["inventoryItem"]["inventoryLevels"]["nodes"]
    return {lv["location"]["id"]: {q["name"]: q["quantity"] for q in lv["quantities"]} for lv in levels}


def payload(body: dict, root: str) -> dict:
    assert "errors" not in body, body
    return body["data"][root]


def test_set_quantities_moves_available_and_on_hand_and_reads_back(h):
    item = product(h, tracked=True)
    h.client.post(
        f"/_sandbox/shops/{h.shop}/inventory_items/{item.rsplit('/', 1)[-1]}/activate",
        json={"location_id": h.service_location},
    )
    answer = payload(
        h.gql(SET, {"input": set_input(item, h.service_location, 5), "key": "b"}), "inventorySetQuantities"
    )
    group = answer["inventoryAdjustmentGroup"]
    assert [(c["name"], c["delta"]) for c in group["changes"]] == [("available", 5), ("on_hand", 5)]
    assert group["reason"] == "correction" and group["referenceDocumentUri"] == "logistics://test/1"
    assert quantities(h, item)[h.service_location] == {"available": 5, "on_hand": 5, "damaged": 0}


def test_item_not_stocked_at_the_location_is_refused(h):
    item = product(h)
    answer = payload(
        h.gql(SET, {"input": set_input(item, h.service_location, 5), "key": "a"}), "inventorySetQuantities"
    )
    assert answer["userErrors"] == [
        {
            "field": ["input", "quantities", "0", "locationId"],
            "message": "The specified inventory item is not stocked at the location.",
            "code": "ITEM_NOT_STOCKED_AT_LOCATION",
        }
    ]


def test_a_repeated_key_answers_the_first_call_and_applies_once(h):
    item = product(h)
    first = h.gql(SET, {"input": set_input(item, h.shop_location, 5), "key": "push-1"})
    again = h.gql(SET, {"input": set_input(item, h.shop_location, 5), "key": "push-1"})
    assert payload(again, "inventorySetQuantities") == payload(first, "inventorySetQuantities")
    assert quantities(h, item)[h.shop_location]["available"] == 5
    other = h.gql(SET, {"input": set_input(item, h.shop_location, 9, change_from=5), "key": "push-1"})
    assert payload(other, "inventorySetQuantities") == {
        "inventoryAdjustmentGroup": None,
        "userErrors": [
            {
                "field": None,
                "message": "The same idempotency key cannot be used with different operation parameters.",
                "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
            }
        ],
    }
    assert quantities(h, item)[h.shop_location]["available"] == 5


def test_stale_change_from_quantity_changes_nothing_and_null_skips_the_check(h):
    item = product(h, available=3)
    stale = payload(h.gql(SET, {"input": set_input(item, h.shop_location, 7, 0), "key": "s"}), "inventorySetQuantities")
    assert stale == {
        "inventoryAdjustmentGroup": None,
        "userErrors": [
            {
                "field": ["input", "quantities", "0", "changeFromQuantity"],
                "message": "The changeFromQuantity value does not match persisted value.",
                "code": "CHANGE_FROM_QUANTITY_STALE",
            }
        ],
    }
    assert quantities(h, item)[h.shop_location]["available"] == 3
    # A refused call keeps no key: once re-read, the same key may carry the corrected call.
    fixed = h.gql(SET, {"input": set_input(item, h.shop_location, 7, 3), "key": "s"})
    assert payload(fixed, "inventorySetQuantities")["userErrors"] == []
    blind = h.gql(SET, {"input": set_input(item, h.shop_location, 8, None), "key": "t"})
    assert payload(blind, "inventorySetQuantities")["userErrors"] == []
    assert quantities(h, item)[h.shop_location]["available"] == 8


def test_a_change_that_changes_nothing_answers_no_group(h):
    item = product(h, available=4)
    same = h.gql(SET, {"input": set_input(item, h.shop_location, 4, 4), "key": "z"})
    assert payload(same, "inventorySetQuantities") == {"inventoryAdjustmentGroup": None, "userErrors": []}


def test_directive_required_from_2026_04_and_not_before(h):
    item = product(h)
    plain = SET.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    body = h.gql(plain, {"input": set_input(item, h.shop_location, 1)})
    assert body["data"] == {"inventorySetQuantities": None}
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [
        ("The @idempotent directive is required for this mutation but was not provided.", "BAD_REQUEST")
    ]
    old = h.client.post(
        f"/store/{h.shop}/admin/api/2026-01/graphql.json",
        json={"query": plain, "variables": {"input": set_input(item, h.shop_location, 1)}},
        headers={"X-Shopify-Access-Token": h.token},
    ).get_json()
    assert payload(old, "inventorySetQuantities")["userErrors"] == []
    unguarded = set_input(item, h.shop_location, 2)
    del unguarded["quantities"][0]["changeFromQuantity"]
    before = h.client.post(
        f"/store/{h.shop}/admin/api/2026-01/graphql.json",
        json={"query": plain, "variables": {"input": unguarded}},
        headers={"X-Shopify-Access-Token": h.token},
    ).get_json()
    assert payload(before, "inventorySetQuantities")["userErrors"] == []


def test_adjust_damaged_moves_on_hand_and_keeps_available(h):
    item = product(h, available=10)
    change = {
        "inventoryItemId": item,
        "locationId": h.shop_location,
        "delta": 2,
        "changeFromQuantity": 0,
        "ledgerDocumentUri": "logistics://damage/1",
    }
    body = h.gql(ADJUST, {"input": {"name": "damaged", "reason": "damaged", "changes": [change]}, "key": "d"})
    changes = payload(body, "inventoryAdjustQuantities")["inventoryAdjustmentGroup"]["changes"]
    assert changes == [
        {"name": "damaged", "delta": 2, "ledgerDocumentUri": "logistics://damage/1"},
        {"name": "on_hand", "delta": 2, "ledgerDocumentUri": None},
    ]
    assert quantities(h, item)[h.shop_location] == {"available": 10, "on_hand": 12, "damaged": 2}


def test_merchant_edits_quantities_at_any_location_and_reads_through_the_api(h):
    item = product(h, tracked=True)
    room = h.client.post(f"/_sandbox/shops/{h.shop}/locations", json={"name": "Back room"}).get_json()["id"]
    number = item.rsplit("/", 1)[-1]
    assert (
        h.client.post(
            f"/_sandbox/shops/{h.shop}/inventory_items/{number}/activate", json={"location_id": room, "available": 2}
        ).status_code
        == 200
    )
    edit = h.client.post(
        f"/_sandbox/shops/{h.shop}/inventory", json={"inventory_item_id": item, "location_id": room, "quantity": 6}
    )
    assert edit.status_code == 200, edit.get_json()
    h.client.post(
        f"/_sandbox/shops/{h.shop}/inventory",
        json={"inventory_item_id": item, "location_id": h.shop_location, "delta": 3},
    )
    seen = quantities(h, item)
    assert seen[room]["available"] == 6 and seen[h.shop_location]["available"] == 3
    body = h.gql(
        "query($q: String) { inventoryItems(first: 5, query: $q) { nodes { id sku } } }", {"q": "sku:TSHIRT-BLK-M"}
    )
    assert body["data"]["inventoryItems"]["nodes"] == [{"id": item, "sku": "TSHIRT-BLK-M"}]
    refused = h.client.post(
        f"/_sandbox/shops/{h.shop}/inventory",
        json={"inventory_item_id": item, "location_id": room, "quantity": 2_000_000_000},
    )
    assert refused.status_code == 422
    assert refused.get_json()["user_errors"][0]["code"] == "INVALID_QUANTITY_TOO_HIGH"


def test_merchant_location_lifecycle(h):
    base = f"/_sandbox/shops/{h.shop}/locations"
    made = h.client.post(base, json={"name": "Annex", "address": {"city": "Bergen", "country_code": "NO"}})
    assert made.status_code == 201
    annex = made.get_json()
    assert annex["is_active"] and annex["fulfills_online_orders"] and annex["address"]["city"] == "Bergen"
    number = annex["id"].rsplit("/", 1)[-1]
    renamed = h.client.patch(f"{base}/{number}", json={"name": "Annex 2", "fulfills_online_orders": False})
    assert renamed.get_json()["name"] == "Annex 2" and not renamed.get_json()["fulfills_online_orders"]
    active = h.client.delete(f"{base}/{number}")
    assert active.status_code == 422 and active.get_json()["user_errors"][0]["code"] == "LOCATION_IS_ACTIVE"
    item = product(h, quantities={annex["id"]: 4})
    blocked = h.client.post(f"{base}/{number}/deactivate", json={})
    assert blocked.get_json()["user_errors"][0]["code"] == "HAS_ACTIVE_INVENTORY_ERROR"
    moved = h.client.post(f"{base}/{number}/deactivate", json={"destination_location_id": h.shop_location})
    assert moved.status_code == 200 and moved.get_json()["deactivated_at"]
    assert quantities(h, item)[h.shop_location]["available"] == 4
    assert h.client.post(f"{base}/{number}/activate").get_json()["is_active"]
    h.client.post(f"{base}/{number}/deactivate", json={})
    assert h.client.delete(f"{base}/{number}").get_json() == {"deleted_location_id": annex["id"]}
    shop_number = h.shop_location.rsplit("/", 1)[-1]
    primary = h.client.post(f"{base}/{shop_number}/deactivate", json={})
    assert primary.get_json()["user_errors"][0]["code"] == "PERMANENTLY_BLOCKED_FROM_DEACTIVATION_ERROR"


def test_app_sees_service_location_rules(h):
    """The service's location: the merchant cannot activate, deactivate or delete it."""
    activate = """mutation($id: ID!) { locationActivate(locationId: $id) @idempotent(key: "a") {
      location { id isActive isFulfillmentService } locationActivateUserErrors { field message code } } }"""
    body = h.gql(activate, {"id": h.service_location}, h.merchant_token)
    assert body["data"]["locationActivate"] == {
        "location": {"id": h.service_location, "isActive": True, "isFulfillmentService": True},
        "locationActivateUserErrors": [
            {"field": ["locationId"], "message": "Location not found.", "code": "LOCATION_NOT_FOUND"}
        ],
    }
    delete = """mutation($id: ID!) { locationDelete(locationId: $id) {
      deletedLocationId locationDeleteUserErrors { code } } }"""
    body = h.gql(delete, {"id": h.service_location}, h.merchant_token)
    assert body["data"]["locationDelete"] == {
        "deletedLocationId": None,
        "locationDeleteUserErrors": [{"code": "LOCATION_NOT_FOUND"}],
    }


def test_products_list_with_variants_and_items(h):
    product(h, sku="A-1", tracked=True, available=2)
    listed = h.client.get(f"/_sandbox/shops/{h.shop}/products").get_json()["products"]
    variant = listed[0]["variants"][0]
    assert variant["sku"] == "A-1" and variant["inventory_item"]["tracked"] is True
    assert variant["inventory_item"]["levels"][0]["quantities"]["on_hand"] == 2
    item = variant["inventory_item"]["id"]
    untracked = h.client.patch(
        f"/_sandbox/shops/{h.shop}/inventory_items/{item.rsplit('/', 1)[-1]}", json={"tracked": False, "sku": "A-2"}
    )
    assert untracked.get_json()["tracked"] is False and untracked.get_json()["sku"] == "A-2"


def cli(*argv: str) -> tuple:
    return request_for(build_parser().parse_args(["--shop", "demo.myshopify.com", *argv]))


def test_cli_inventory_commands():
    shop = "/shops/demo.myshopify.com"
    assert cli("add-location", "Annex", "--city", "Bergen") == (
        "POST",
        f"{shop}/locations",
        {
            "name": "Annex",
            "address": {"country_code": "NO", "city": "Bergen", "address1": None, "zip": None},
            "fulfills_online_orders": True,
        },
    )
    assert cli("edit-location", "gid://shopify/Location/7", "--online-orders", "no") == (
        "PATCH",
        f"{shop}/locations/7",
        {"fulfills_online_orders": False},
    )
    assert cli("deactivate-location", "7", "--destination", "1001")[2] == {"destination_location_id": "1001"}
    assert cli("delete-location", "7") == ("DELETE", f"{shop}/locations/7", None)
    assert cli("create-product", "Shirt", "--sku", "S-1:4")[2] == {
        "title": "Shirt",
        "variants": [{"sku": "S-1", "tracked": True, "title": "S-1", "available": 4}],
    }
    assert cli("set-stock", "1001", "1002", "5")[2] == {
        "inventory_item_id": "1001",
        "location_id": "1002",
        "name": "available",
        "quantity": 5,
    }
    assert cli("adjust-stock", "1001", "1002", "-2")[2]["delta"] == -2


def test_variants_found_by_sku(h):
    item = product(h, sku="MUG-1")
    product(h, sku="MUG-2")
    body = h.gql('{ productVariants(first: 5, query: "sku:MUG-1") { nodes { sku inventoryItem { id } } } }')
    assert body["data"]["productVariants"]["nodes"] == [{"sku": "MUG-1", "inventoryItem": {"id": item}}]


COMMITTED = """
query($id: ID!) {
  inventoryItem(id: $id) {
    inventoryLevels(first: 5) { nodes { location { id } quantities(names: ["available", "committed", "on_hand"]) {
      name quantity } } }
  }
}"""


def stock(h: Any, item: str) -> dict[str, dict[str, int]]:
    levels = h.gql(COMMITTED, {"id": item})["data"]["inventoryItem"]["inventoryLevels"]["nodes"]
    return {lv["location"]["id"]: {q["name"]: q["quantity"] for q in lv["quantities"]} for lv in levels}


def test_orders_commit_stock_and_fulfillments_ship_it(h):
    """As recorded: 5 available, an order of 2 -> available 3, committed 2, on hand 5."""
    item = product(h, sku="MUG", tracked=True, available=5)
    order = h.order([{"sku": "MUG", "quantity": 2, "location_id": h.shop_location}])
    assert stock(h, item)[h.shop_location] == {"available": 3, "committed": 2, "on_hand": 5}
    fo = order["fulfillment_orders"][0]["id"]
    fulfilled = h.act(fo, "mark_fulfilled")
    assert stock(h, item)[h.shop_location] == {"available": 3, "committed": 0, "on_hand": 3}
    cancel = "mutation($id: ID!) { fulfillmentCancel(id: $id) { fulfillment { status } userErrors { message } } }"
    body = h.gql(cancel, {"id": fulfilled["fulfillment"]["id"]}, h.merchant_token)
    assert body["data"]["fulfillmentCancel"]["userErrors"] == []
    assert stock(h, item)[h.shop_location] == {"available": 3, "committed": 2, "on_hand": 5}


def test_untracked_items_and_other_locations_commit_nothing(h):
    item = product(h, sku="CUP", available=5)
    h.order([{"sku": "CUP", "quantity": 2, "location_id": h.shop_location}])
    assert stock(h, item)[h.shop_location] == {"available": 5, "committed": 0, "on_hand": 5}
    tracked = product(h, sku="BOWL", tracked=True, available=5)
    h.order([{"sku": "BOWL", "quantity": 2, "location_id": h.service_location}])
    assert stock(h, tracked)[h.shop_location] == {"available": 5, "committed": 0, "on_hand": 5}


def test_inventory_items_search_by_several_skus(h):
    first = product(h, sku="PEN-1")
    second = product(h, sku="PEN-2")
    product(h, sku="INK-1")
    body = h.gql('{ inventoryItems(first: 10, query: "sku:PEN-1 OR sku:\\"PEN-2\\"") { nodes { id } } }')
    assert [n["id"] for n in body["data"]["inventoryItems"]["nodes"]] == [first, second]
    assert h.gql('{ inventoryItems(first: 10, query: "sku:NONE") { nodes { id } } }')["data"]["inventoryItems"] == {
        "nodes": []
    }


def test_unknown_location_to_edit_is_resource_not_found(h):
    edit = 'mutation { locationEdit(id: "gid://shopify/Location/999", input: {name: "X"}) { location { id } } }'
    body = h.gql(edit, token=h.merchant_token)
    assert body["data"] == {"locationEdit": None}
    assert body["errors"][0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"


def test_malformed_merchant_input_is_refused_not_a_crash(h):
    shop = f"/_sandbox/shops/{h.shop}"
    assert h.client.post(f"{shop}/products", json={"title": "X", "variants": "nope"}).status_code == 422
    assert h.client.post(f"{shop}/products", json={"title": "X", "variants": [{"quantities": [1]}]}).status_code == 422
    assert h.client.post(f"{shop}/locations", json={"name": "Y", "address": "street"}).status_code == 422
    item = product(h)
    bad = h.client.post(
        f"{shop}/inventory", json={"inventory_item_id": item, "location_id": h.shop_location, "quantity": "many"}
    )
    assert bad.status_code == 400


def test_merchant_stock_edit_at_a_new_location_stocks_the_item_there(h):
    item = product(h)
    room = h.client.post(f"/_sandbox/shops/{h.shop}/locations", json={"name": "Cellar"}).get_json()["id"]
    edit = h.client.post(
        f"/_sandbox/shops/{h.shop}/inventory", json={"inventory_item_id": item, "location_id": room, "quantity": 5}
    )
    assert edit.status_code == 200
    assert quantities(h, item)[room] == {"available": 5, "on_hand": 5, "damaged": 0}


def test_a_line_item_names_the_catalogue_variant_with_its_sku_and_a_custom_item_none(h):
    product(h, sku="TSHIRT-BLK-M")
    order = h.order([{"sku": "TSHIRT-BLK-M", "quantity": 1}, {"sku": "NOT-IN-CATALOGUE", "quantity": 1}])
    body = h.gql(
        "query($id: ID!) { order(id: $id) { lineItems(first: 5) { nodes { sku variant { id sku } } } } }",
        {"id": order["id"]},
    )
    lines = {li["sku"]: li["variant"] for li in body["data"]["order"]["lineItems"]["nodes"]}
    assert lines["TSHIRT-BLK-M"]["sku"] == "TSHIRT-BLK-M"
    assert lines["TSHIRT-BLK-M"]["id"].startswith("gid://shopify/ProductVariant/")
    assert lines["NOT-IN-CATALOGUE"] is None


def test_unknown_items_and_locations_are_each_reported_as_recorded(h):
    """As recorded: an unknown item alone, an unknown location alone, or both, item first."""
    item = product(h)
    unknown_item, unknown_location = "gid://shopify/InventoryItem/999999999999", "gid://shopify/Location/999999999999"
    item_error = {
        "field": ["input", "changes", "0", "inventoryItemId"],
        "message": "The specified inventory item could not be found.",
        "code": "INVALID_INVENTORY_ITEM",
    }
    location_error = {
        "field": ["input", "changes", "0", "locationId"],
        "message": "The specified location could not be found.",
        "code": "INVALID_LOCATION",
    }

    def errors(item_id: str, location_id: str) -> list[dict]:
        change = {"inventoryItemId": item_id, "locationId": location_id, "delta": 1, "changeFromQuantity": 0}
        variables = {
            "input": {"name": "available", "reason": "correction", "changes": [change]},
            "key": f"{item_id}-{location_id}",
        }
        return h.gql(ADJUST, variables)["data"]["inventoryAdjustQuantities"]["userErrors"]

    assert errors(unknown_item, h.shop_location) == [item_error]
    assert errors(item, unknown_location) == [location_error]
    assert errors(unknown_item, unknown_location) == [item_error, location_error]


def test_the_merchant_api_lists_adjustment_groups_and_the_keys_kept_with_their_repeats(h):
    created = h.client.post(
        f"/_sandbox/shops/{h.shop}/products",
        json={"title": "Tee", "variants": [{"sku": "KEYED", "tracked": True, "quantities": {h.service_location: 0}}]},
    ).get_json()
    item = created["variants"][0]["inventory_item"]["id"]
    mutation = """mutation Set($input: InventorySetQuantitiesInput!) {
      inventorySetQuantities(input: $input) @idempotent(key: "once") {
        inventoryAdjustmentGroup { id } userErrors { code }
      }
    }"""
    entry = {"inventoryItemId": item, "locationId": h.service_location, "quantity": 7, "changeFromQuantity": 0}
    variables = {
        "input": {
            "name": "on_hand",
            "reason": "received",
            "referenceDocumentUri": "logistics://w/1",
            "quantities": [entry],
        }
    }
    first, repeat = h.gql(mutation, variables), h.gql(mutation, variables)
    assert first["data"] == repeat["data"]

    listed = h.client.get(f"/_sandbox/shops/{h.shop}/inventory_adjustments").get_json()

    (group,) = listed["adjustment_groups"]
    assert group["app"] and group["reference_document_uri"] == "logistics://w/1"
    assert {c["name"]: c["delta"] for c in group["changes"]} == {"available": 7, "on_hand": 7}
    assert listed["idempotency_keys"] == [{"mutation": "inventorySetQuantities", "key": "once", "replays": 1}]
