"""The topics that cannot be undone (`app/uninstalled`, `shop/redact`) are acted on only when the store confirms
that the app is gone from the shop: asked with the shop's token, every outbound call intercepted."""

from __future__ import annotations

import logging

import pytest
import responses

from fulfillment import webhooks
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.intake import Refused
from fulfillment.models import FulfillmentOrder, Shop
from fulfillment.shops import save_token

SHOP = "unit-shop.myshopify.com"
STORE = "http://store.test"
GRAPHQL = f"{STORE}/store/{SHOP}/admin/api/2026-07/graphql.json"
SHOP_ANSWER = {"data": {"shop": {"id": "gid://shopify/Shop/1", "name": "Unit", "myshopifyDomain": SHOP}}}


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url, store_base_url=STORE))
    yield context
    context.db.dispose()


@pytest.fixture
def shop_id(ctx):
    shop_id = save_token(ctx, SHOP, "shpat_unit")
    with ctx.db.transaction() as session:
        session.add(
            FulfillmentOrder(
                shop_id=shop_id,
                store_id="gid://shopify/FulfillmentOrder/1",
                order_id="gid://shopify/Order/1",
                state="shipped",
                destination={"first_name": "Ada"},
            )
        )
    return shop_id


def shop(ctx, shop_id) -> Shop:
    with ctx.db.transaction() as session:
        return session.get(Shop, shop_id)


@pytest.mark.parametrize("topic", ["app/uninstalled", "shop/redact"])
def test_a_token_the_store_still_answers_means_installed_and_nothing_is_done(ctx, shop_id, topic, caplog):
    with responses.RequestsMock() as store:
        store.post(GRAPHQL, json=SHOP_ANSWER)
        with pytest.raises(Refused) as refused:
            webhooks.handle(ctx, shop_id, topic, {"shop_domain": SHOP, "myshopify_domain": SHOP})
        (call,) = store.calls
        assert call.request.headers["X-Shopify-Access-Token"] == "shpat_unit"
    assert refused.value.status == 409
    assert shop(ctx, shop_id).active
    with ctx.db.transaction() as session:
        assert session.query(FulfillmentOrder).one().destination == {"first_name": "Ada"}
    assert f"topic={topic} shop={SHOP} shop_id={shop_id} decision=refused" in caplog.text


def test_a_refused_token_confirms_the_uninstall(ctx, shop_id, caplog):
    caplog.set_level(logging.INFO, logger="fulfillment.webhooks")
    with responses.RequestsMock() as store:
        store.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
        webhooks.handle(ctx, shop_id, "app/uninstalled", {"myshopify_domain": SHOP})
    assert not shop(ctx, shop_id).active and shop(ctx, shop_id).access_token_ciphertext is None
    assert "decision=confirmed" in caplog.text


def test_a_store_that_cannot_be_asked_confirms_nothing_and_the_store_retries(ctx, shop_id):
    with responses.RequestsMock() as store:
        store.post(GRAPHQL, status=503, body="unavailable")
        with pytest.raises(Refused) as refused:
            webhooks.handle(ctx, shop_id, "app/uninstalled", {"myshopify_domain": SHOP})
    assert refused.value.status == 503
    assert shop(ctx, shop_id).active


def test_shop_redact_after_a_confirmed_uninstall_needs_no_second_confirmation(ctx, shop_id):
    with responses.RequestsMock() as store:
        store.post(GRAPHQL, status=401, json={"errors": "x"})
        webhooks.handle(ctx, shop_id, "app/uninstalled", {"myshopify_domain": SHOP})
    with responses.RequestsMock() as store:  # no token is held now: nothing is asked
        webhooks.handle(ctx, shop_id, "shop/redact", {"shop_domain": SHOP})
        assert len(store.calls) == 0
    with ctx.db.transaction() as session:
        assert session.query(FulfillmentOrder).one().destination is None
