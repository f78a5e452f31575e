"""Fulfillment services as the store answers them (recorded answers of a real store): the service's id and
location, the checks on names and callback URLs, and what deleting does with the location."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import SHOP

SERVICE = "id handle serviceName callbackUrl requiresShippingMethod type"
LOCATION = "location { id name isFulfillmentService fulfillsOnlineOrders shipsInventory isActive }"
CREATE = f"""mutation($name: String!, $url: URL, $rsm: Boolean) {{
  fulfillmentServiceCreate(name: $name, callbackUrl: $url, requiresShippingMethod: $rsm) {{
    fulfillmentService {{ {SERVICE} {LOCATION} }} userErrors {{ field message }} }} }}"""
CREATE_NO_RSM = f"""mutation($name: String!, $url: URL) {{
  fulfillmentServiceCreate(name: $name, callbackUrl: $url) {{
    fulfillmentService {{ {SERVICE} {LOCATION} }} userErrors {{ field message }} }} }}"""
UPDATE = f"""mutation($id: ID!, $name: String, $url: URL) {{
  fulfillmentServiceUpdate(id: $id, name: $name, callbackUrl: $url) {{
    fulfillmentService {{ {SERVICE} {LOCATION} }} userErrors {{ field message }} }} }}"""
DELETE = """mutation($id: ID!, $to: ID, $action: FulfillmentServiceDeleteInventoryAction) {
  fulfillmentServiceDelete(id: $id, destinationLocationId: $to, inventoryAction: $action) {
    deletedId userErrors { field message } } }"""
READ_LOCATION = "query($id: ID!) { location(id: $id) { id isActive isFulfillmentService } }"
UNKNOWN = "gid://shopify/FulfillmentService/999999999999"


def payload(h, document: str, **variables) -> dict:
    body = h.gql(document, variables)
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def create(h, name: str, url: str | None = None, document: str = CREATE_NO_RSM) -> dict:
    return payload(h, document, name=name, url=url)


def test_a_created_service_has_the_stores_id_suffix_and_its_own_location(h):
    created = create(h, "Hermes FS", "https://app.mock.shop/fs")
    assert created["userErrors"] == []
    service = created["fulfillmentService"]
    assert service["id"].endswith("?id=true")
    assert service["handle"] == "hermes-fs" and service["type"] == "THIRD_PARTY"
    assert service["requiresShippingMethod"] is True  # the schema's default
    assert service["location"] | {"id": None} == {
        "id": None,
        "name": "Hermes FS",
        "isFulfillmentService": True,
        "fulfillsOnlineOrders": True,
        "shipsInventory": False,
        "isActive": True,
    }
    listed = h.gql(f"{{ shop {{ fulfillmentServices {{ id {LOCATION} }} }} }}")["data"]["shop"]["fulfillmentServices"]
    assert service["id"] in [s["id"] for s in listed]
    # The suffixed id is read back as it was given, and the shop's own location ships inventory.
    read = h.gql("query($id: ID!) { fulfillmentService(id: $id) { id } }", {"id": service["id"]})
    assert read["data"]["fulfillmentService"] == {"id": service["id"]}
    home = h.gql(
        "query($id: ID!) { location(id: $id) { shipsInventory isFulfillmentService } }", {"id": h.shop_location}
    )
    assert home["data"]["location"] == {"shipsInventory": True, "isFulfillmentService": False}


def test_requires_shipping_method_is_true_unless_set_and_an_update_leaving_it_out_sets_it_back(h):
    explicit = payload(h, CREATE, name="No Shipping", rsm=False)["fulfillmentService"]
    assert explicit["requiresShippingMethod"] is False
    updated = payload(h, UPDATE, id=explicit["id"], name="No Shipping Renamed")["fulfillmentService"]
    assert updated["requiresShippingMethod"] is True
    assert updated["handle"] == "no-shipping" and updated["location"]["name"] == "No Shipping Renamed"


def test_every_failed_check_of_a_create_is_reported(h):
    blank = create(h, "", "https://example.com/fulfillment-service")
    assert blank == {
        "fulfillmentService": None,
        "userErrors": [
            {"field": ["name"], "message": "Name can't be blank"},
            {"field": ["callbackUrl"], "message": "Callback url is not allowed"},
        ],
    }
    spaced = create(h, "  FS Whitespace  ")
    assert spaced["userErrors"] == [
        {"field": ["name"], "message": "Name cannot begin with a whitespace character"},
        {"field": ["name"], "message": "Name cannot end with a whitespace character"},
    ]
    for reserved in ("Manual", "Shopify", "amazon", "gift_card"):
        assert create(h, reserved)["userErrors"] == [{"field": ["name"], "message": "Name is reserved"}], reserved
    assert create(h, "ACME 3pl")["userErrors"] == [{"field": ["name"], "message": "Name has already been taken"}]


@pytest.mark.parametrize(
    ("url", "errors"),
    [
        ("https://mock.shop/fulfillment-service-callback", []),
        ("http://mock.shop/fulfillment-service-callback", []),
        ("https://fs.mock.shop/callback", []),
        (f"https://{SHOP}/fulfillment-service-callback", []),
        ("http://127.0.0.1:8000", []),
        ("ftp://mock.shop/fulfillment-service-callback", ["Callback url protocol ftp:// is not supported"]),
        ("https://example.com/fulfillment-service-callback", ["Callback url is not allowed"]),
        ("https://shopify.com/fulfillment-service-callback", ["Callback url is not allowed"]),
        ("https://mock.shop.example.com/callback", ["Callback url is not allowed"]),
        ("http://[::1", ["Callback url is not allowed"]),
        ("not a url", ["Callback url is not allowed"]),
    ],
)
def test_callback_urls_must_be_on_the_apps_hosts_or_the_shops(h, url, errors):
    created = create(h, "Callback Check", url)
    assert [e["message"] for e in created["userErrors"]] == errors
    assert (created["fulfillmentService"] is None) == bool(errors)


def test_an_update_is_checked_like_a_create_and_a_refused_one_changes_nothing(h):
    service = create(h, "Update Source", "http://mock.shop/cb")["fulfillmentService"]
    refused = payload(h, UPDATE, id=service["id"], url="https://example.com/cb")
    assert refused == {
        "fulfillmentService": None,
        "userErrors": [{"field": ["callbackUrl"], "message": "Callback url is not allowed"}],
    }
    refused = payload(h, UPDATE, id=service["id"], name=" Update Source Renamed")
    assert refused["userErrors"] == [{"field": ["name"], "message": "Name cannot begin with a whitespace character"}]
    allowed = payload(h, UPDATE, id=service["id"], url="http://mock.shop/cb-updated")["fulfillmentService"]
    assert allowed["callbackUrl"] == "http://mock.shop/cb-updated" and allowed["serviceName"] == "Update Source"


def test_unknown_services_are_user_errors_not_top_level_errors(h, make):
    not_found = [{"field": ["id"], "message": "Fulfillment service could not be found."}]
    assert payload(h, UPDATE, id=UNKNOWN, name="Nope") == {"fulfillmentService": None, "userErrors": not_found}
    assert payload(h, DELETE, id=UNKNOWN, action="DELETE") == {"deletedId": None, "userErrors": not_found}
    # Another app's service is as unknown to the caller.
    other = h.client.post(f"/_sandbox/shops/{SHOP}/app_installs", json={"scopes": "write_fulfillments"}).get_json()
    mine = h.state()["fulfillment_services"][0]["id"]
    body = h.gql(UPDATE, {"id": mine, "name": "Taken Over"}, token=other["access_token"])
    assert body["data"]["fulfillmentServiceUpdate"]["userErrors"] == not_found


def test_delete_checks_the_inventory_action_against_the_destination(h):
    service = create(h, "Delete Checks")["fulfillmentService"]
    for action in ("KEEP", "DELETE"):
        refused = payload(h, DELETE, id=service["id"], to=h.shop_location, action=action)
        assert refused == {
            "deletedId": None,
            "userErrors": [
                {
                    "field": ["inventoryAction"],
                    "message": "Inventory action Destination location id should not be present when"
                    " deleting/keeping the inventory of the fulfillment service.",
                }
            ],
        }
    refused = payload(h, DELETE, id=service["id"], to="gid://shopify/Location/999999999", action="TRANSFER")
    assert refused["userErrors"] == [{"field": None, "message": "Invalid destination location."}]
    deleted = payload(h, DELETE, id=service["id"], to=h.shop_location, action="TRANSFER")
    assert deleted == {"deletedId": service["id"].split("?")[0], "userErrors": []}
    assert h.gql(READ_LOCATION, {"id": service["location"]["id"]})["data"]["location"] is None


def test_delete_removes_the_location_unless_kept(h):
    removed = create(h, "Removed FS")["fulfillmentService"]
    kept = create(h, "Kept FS")["fulfillmentService"]
    assert payload(h, DELETE, id=removed["id"], action="DELETE")["userErrors"] == []
    assert h.gql(READ_LOCATION, {"id": removed["location"]["id"]})["data"]["location"] is None
    assert payload(h, DELETE, id=kept["id"], action="KEEP")["userErrors"] == []
    location = h.gql(READ_LOCATION, {"id": kept["location"]["id"]})["data"]["location"]
    assert location == {"id": kept["location"]["id"], "isActive": True, "isFulfillmentService": False}
    services = [
        s["serviceName"]
        for s in h.gql("{ shop { fulfillmentServices { serviceName } } }")["data"]["shop"]["fulfillmentServices"]
    ]
    assert "Removed FS" not in services and "Kept FS" not in services


def test_deleting_moves_unrequested_work_to_the_destination_and_past_work_still_reads(h):
    order = h.order()
    fo_id = order["fulfillment_orders"][0]["id"]
    service_id = h.state()["fulfillment_services"][0]["id"]
    assert h.fo(fo_id)["assignedLocation"]["location"]["id"] == h.service_location
    assert payload(h, DELETE, id=service_id, to=h.shop_location, action="TRANSFER")["userErrors"] == []
    moved = h.fo(fo_id)
    assert moved["assignedLocation"]["location"]["id"] == h.shop_location
    assert moved["requestStatus"] == "UNSUBMITTED"


def test_a_service_holding_an_accepted_request_is_deleted_and_its_work_moves_to_the_destination(h):
    # The store's recorded lifecycle deletes a service whose fulfillment order it had accepted (and then refused to
    # cancel): a delete is not refused for work in the service's hands.
    from tests.sandbox.test_sandbox_transitions import accepted

    fo_id = accepted(h)
    service_id = h.state()["fulfillment_services"][0]["id"]
    deleted = payload(h, DELETE, id=service_id)
    assert deleted == {"deletedId": service_id.split("?")[0], "userErrors": []}
    moved = h.fo(fo_id)
    assert moved["assignedLocation"]["location"]["id"] == h.shop_location
    assert moved["requestStatus"] == "UNSUBMITTED"
    assert moved["status"] == "IN_PROGRESS"  # accepted work stays under way, now the merchant's to fulfil
