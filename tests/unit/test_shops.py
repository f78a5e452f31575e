"""Registering our fulfillment service on a shop: the store's built-in manual service is never taken for ours."""

from __future__ import annotations

import json
import re

import pytest
import responses
from cryptography.fernet import Fernet

from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import Shop
from fulfillment.shops import register_fulfillment_service, save_token

SHOP = "unit-shop.myshopify.com"
STORE = "http://store.test"
SHOP_LOCATION = "gid://shopify/Location/1"
OUR_LOCATION = "gid://shopify/Location/2"
# Every shop lists the store's own manual service first, at the merchant's "Shop location" (as recorded).
MANUAL = {
    "id": "gid://shopify/FulfillmentService/manual",
    "serviceName": "Manual",
    "callbackUrl": None,
    "type": "MANUAL",
    "location": {"id": SHOP_LOCATION},
}


def context(sqlite_url: str, service_name: str) -> Context:
    config = Config(
        database_url=sqlite_url,
        store_base_url=STORE,
        token_encryption_key=Fernet.generate_key().decode(),
        service_name=service_name,
    )
    return Context.from_config(config)


def answer(data: dict) -> tuple[int, dict, str]:
    cost = {"requestedQueryCost": 1, "actualQueryCost": 1}
    throttle = {"maximumAvailable": 2000, "currentlyAvailable": 1999, "restoreRate": 100}
    return 200, {}, json.dumps({"data": data, "extensions": {"cost": {**cost, "throttleStatus": throttle}}})


@pytest.mark.parametrize("service_name", ["Manual", "Warehouse Fulfillment"])
def test_the_manual_service_is_never_taken_for_ours(sqlite_url, service_name):
    ctx = context(sqlite_url, service_name)
    shop_id = save_token(ctx, SHOP, "shpat_unit")
    sent: list[str] = []

    def store(request):
        body = json.loads(request.body)
        operation = re.search(r"(query|mutation) (\w+)", body["query"]).group(2)
        sent.append(operation)
        if operation == "FulfillmentServices":
            return answer({"shop": {"fulfillmentServices": [MANUAL]}})
        created = {"id": "gid://shopify/FulfillmentService/9?id=true", "serviceName": service_name}
        created |= {"callbackUrl": ctx.config.callback_url, "location": {"id": OUR_LOCATION}}
        return answer({"fulfillmentServiceCreate": {"fulfillmentService": created, "userErrors": []}})

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, re.compile(re.escape(STORE) + ".*"), callback=store)
        assert register_fulfillment_service(ctx, shop_id) == OUR_LOCATION
    assert sent == ["FulfillmentServices", "FulfillmentServiceCreate"]
    with ctx.db.transaction() as session:
        shop = session.get(Shop, shop_id)
        assert (shop.location_id, shop.fulfillment_service_id) == (
            OUR_LOCATION,
            "gid://shopify/FulfillmentService/9?id=true",
        )
    ctx.db.dispose()
