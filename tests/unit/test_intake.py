"""What the store sends us: signature and shop checked first, then the body, and each delivery recorded once."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import pytest
import shopify
from sqlalchemy import select

from fulfillment import webhooks
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.intake import Received, Refused, authenticate_query, receive_notification, receive_webhook
from fulfillment.models import Delivery, Shop
from fulfillment.shops import save_token

SECRET = "s3cret"
SHOP = "a-shop.myshopify.com"
PING = b'{"kind":"FULFILLMENT_REQUEST"}'


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url, shopify_api_secret=SECRET))
    yield context
    context.db.dispose()


@pytest.fixture
def shop_id(ctx):
    return save_token(ctx, SHOP, "tok")


def signed(body: bytes, secret: str = SECRET, shop: str | None = SHOP, **extra: str) -> dict[str, str]:
    headers = {
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode(),
        "X-Shopify-API-Version": "2026-07",
        "Content-Type": "application/json",
    }
    if shop is not None:
        headers["X-Shopify-Shop-Domain"] = shop
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers


def deliveries(ctx) -> list[tuple[str, str, str, str]]:
    with ctx.db.transaction() as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        return [(d.shop_domain, d.source, d.delivery_key, d.topic) for d in rows]


def refusal(call, *args) -> Refused:
    with pytest.raises(Refused) as raised:
        call(*args)
    return raised.value


# Callbacks: POST <callbackUrl>/fulfillment_order_notification


def test_signed_notification_from_a_connected_shop_is_received(ctx, shop_id):
    received = receive_notification(ctx, PING, signed(PING))

    assert received == Received(
        shop_id=shop_id,
        shop_domain=SHOP,
        topic="FULFILLMENT_REQUEST",
        payload={"kind": "FULFILLMENT_REQUEST"},
        duplicate=False,
    )
    # A ping without a delivery id is not stored: the queue folds repeats into one waiting sweep.
    assert deliveries(ctx) == []


def test_cancellation_request_notification_is_received(ctx, shop_id):
    body = b'{"kind": "CANCELLATION_REQUEST"}'
    assert receive_notification(ctx, body, signed(body)).topic == "CANCELLATION_REQUEST"


def test_shop_domain_header_is_matched_case_insensitively(ctx, shop_id):
    received = receive_notification(ctx, PING, signed(PING, shop="A-Shop.MyShopify.com"))
    assert (received.shop_id, received.shop_domain) == (shop_id, SHOP)


def test_bad_hmac_is_refused_with_401_and_nothing_recorded(ctx, shop_id):
    refused = refusal(receive_notification, ctx, PING, signed(PING, secret="not-the-secret"))
    assert refused.status == 401
    assert "X-Shopify-Hmac-Sha256" in refused.reason
    assert deliveries(ctx) == []


def test_signature_of_another_body_is_refused(ctx, shop_id):
    headers = signed(b'{"kind":"CANCELLATION_REQUEST"}')
    assert refusal(receive_notification, ctx, PING, headers).status == 401


def test_missing_hmac_header_is_refused_with_401(ctx, shop_id):
    headers = signed(PING)
    del headers["X-Shopify-Hmac-Sha256"]
    assert refusal(receive_notification, ctx, PING, headers).status == 401
    assert deliveries(ctx) == []


@pytest.mark.parametrize(
    "shop",
    [None, "", "a-shop.example.com", "a-shop.myshopify.com.evil.test", "a-shop.myshopify.com/x", "https://" + SHOP],
)
def test_shop_header_that_is_not_a_myshopify_domain_is_refused_with_401(ctx, shop_id, shop):
    refused = refusal(receive_notification, ctx, PING, signed(PING, shop=shop))
    assert refused.status == 401
    assert "myshopify" in refused.reason
    assert deliveries(ctx) == []


def test_unknown_shop_is_refused_with_404(ctx, shop_id):
    refused = refusal(receive_notification, ctx, PING, signed(PING, shop="other-shop.myshopify.com"))
    assert refused.status == 404
    assert "other-shop.myshopify.com" in refused.reason
    assert deliveries(ctx) == []


def test_uninstalled_shop_is_refused_with_404(ctx, shop_id):
    with ctx.db.transaction() as session:
        session.get(Shop, shop_id).uninstalled_at = datetime.now(UTC)
    assert refusal(receive_notification, ctx, PING, signed(PING)).status == 404


def test_signature_is_checked_before_the_shop_is_looked_up(ctx, shop_id):
    # A forger learns nothing about which shops we serve.
    headers = signed(PING, secret="forged", shop="other-shop.myshopify.com")
    assert refusal(receive_notification, ctx, PING, headers).status == 401


@pytest.mark.parametrize(
    "body",
    [b'{"kind": "FULFILLMENT_REQUEST"', b"kind=FULFILLMENT_REQUEST", b"", b"\xff\xfe{}"],
    ids=["truncated", "form", "empty", "not-utf8"],
)
def test_malformed_json_with_a_valid_hmac_is_refused_with_400_and_a_reason(ctx, shop_id, body):
    refused = refusal(receive_notification, ctx, body, signed(body))
    assert refused.status == 400
    assert "JSON" in refused.reason
    assert deliveries(ctx) == []


@pytest.mark.parametrize("body", [b'["FULFILLMENT_REQUEST"]', b'"FULFILLMENT_REQUEST"', b"null"])
def test_json_that_is_not_an_object_is_refused_with_400(ctx, shop_id, body):
    refused = refusal(receive_notification, ctx, body, signed(body))
    assert refused.status == 400
    assert "object" in refused.reason


@pytest.mark.parametrize("body", [b'{"kind": "FULFILLMENT_SERVICE_DELETE"}', b"{}", b'{"kind": null}'])
def test_unknown_or_missing_kind_is_refused_with_400(ctx, shop_id, body):
    refused = refusal(receive_notification, ctx, body, signed(body))
    assert refused.status == 400
    assert "FULFILLMENT_REQUEST" in refused.reason
    assert deliveries(ctx) == []


def test_repeated_webhook_id_on_a_notification_is_a_duplicate(ctx, shop_id):
    headers = signed(PING, X_Shopify_Webhook_Id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")

    first = receive_notification(ctx, PING, headers)
    second = receive_notification(ctx, PING, headers)

    assert (first.duplicate, second.duplicate) == (False, True)
    assert deliveries(ctx) == [(SHOP, "callback", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "FULFILLMENT_REQUEST")]


def test_repeated_event_id_on_a_notification_is_a_duplicate(ctx, shop_id):
    headers = signed(PING, X_Shopify_Event_Id="evt-1")
    assert receive_notification(ctx, PING, headers).duplicate is False
    assert receive_notification(ctx, PING, headers).duplicate is True


def test_notifications_without_a_delivery_id_are_never_taken_for_duplicates(ctx, shop_id):
    # Pings carry no id of their own: two identical pings are two pings (the queue folds them, not intake).
    assert receive_notification(ctx, PING, signed(PING)).duplicate is False
    assert receive_notification(ctx, PING, signed(PING)).duplicate is False
    assert deliveries(ctx) == []


# Webhooks


def test_signed_webhook_is_received_with_its_topic(ctx, shop_id):
    body = json.dumps({"id": 1, "name": "#1001"}).encode()
    received = receive_webhook(ctx, body, signed(body, X_Shopify_Topic="orders/cancelled", X_Shopify_Webhook_Id="w1"))

    assert received == Received(shop_id, SHOP, "orders/cancelled", {"id": 1, "name": "#1001"}, False)
    assert deliveries(ctx) == [(SHOP, "webhook", "w1", "orders/cancelled")]


def test_webhook_deduplicates_on_webhook_id(ctx, shop_id):
    body = json.dumps({"id": 1, "myshopify_domain": SHOP}).encode()
    headers = signed(body, X_Shopify_Topic="app/uninstalled", X_Shopify_Webhook_Id="w-42")
    assert receive_webhook(ctx, body, headers).duplicate is False
    assert receive_webhook(ctx, body, headers).duplicate is True

    other = signed(body, X_Shopify_Topic="app/uninstalled", X_Shopify_Webhook_Id="w-43")
    assert receive_webhook(ctx, body, other).duplicate is False


def test_webhook_without_an_id_deduplicates_on_body_and_topic(ctx, shop_id):
    body = b'{"id": 1}'
    assert receive_webhook(ctx, body, signed(body, X_Shopify_Topic="orders/updated")).duplicate is False
    assert receive_webhook(ctx, body, signed(body, X_Shopify_Topic="orders/updated")).duplicate is True
    assert receive_webhook(ctx, body, signed(body, X_Shopify_Topic="orders/cancelled")).duplicate is False


def test_webhook_and_callback_ids_are_deduplicated_apart(ctx, shop_id):
    assert receive_notification(ctx, PING, signed(PING, X_Shopify_Webhook_Id="same")).duplicate is False
    headers = signed(PING, X_Shopify_Topic="orders/updated", X_Shopify_Webhook_Id="same")
    assert receive_webhook(ctx, PING, headers).duplicate is False


def test_received_carries_the_key_its_delivery_was_recorded_under(ctx, shop_id):
    body = b'{"id": 1}'
    by_id = receive_webhook(ctx, body, signed(body, X_Shopify_Topic="orders/updated", X_Shopify_Webhook_Id=" w-7 "))
    by_digest = receive_webhook(ctx, body, signed(body, X_Shopify_Topic="orders/cancelled"))
    ping = receive_notification(ctx, PING, signed(PING, X_Shopify_Event_Id="evt-9"))

    assert by_id.delivery_key == "w-7"
    assert by_digest.delivery_key == hashlib.sha256(body + b"orders/cancelled").hexdigest()
    assert ping.delivery_key == "evt-9"
    assert [key for _, _, key, _ in deliveries(ctx)] == ["w-7", by_digest.delivery_key, "evt-9"]


def test_a_notification_without_a_delivery_id_has_no_key(ctx, shop_id):
    assert receive_notification(ctx, PING, signed(PING)).delivery_key is None
    assert receive_notification(ctx, PING, signed(PING, X_Shopify_Webhook_Id="  ")).delivery_key is None


def test_an_overlong_webhook_id_is_keyed_on_what_the_column_holds(ctx, shop_id):
    body = b'{"id": 1}'
    headers = signed(body, X_Shopify_Topic="orders/updated", X_Shopify_Webhook_Id="w" * 300)
    first = receive_webhook(ctx, body, headers)

    assert first.delivery_key == "w" * 255
    assert receive_webhook(ctx, body, headers).duplicate is True
    assert deliveries(ctx) == [(SHOP, "webhook", "w" * 255, "orders/updated")]


def test_a_webhook_whose_handling_fails_is_forgotten_so_the_retry_is_processed(ctx, shop_id, monkeypatch):
    body = b'{"id": 1}'
    headers = signed(body, X_Shopify_Topic="orders/updated", X_Shopify_Webhook_Id="w-9")
    received = receive_webhook(ctx, body, headers)
    kept = receive_webhook(ctx, body, signed(body, X_Shopify_Topic="orders/updated", X_Shopify_Webhook_Id="w-10"))

    def fails(*args):
        raise RuntimeError("store down")

    monkeypatch.setattr(webhooks, "handle", fails)
    with pytest.raises(RuntimeError):
        webhooks.process(ctx, received)

    assert [key for _, _, key, _ in deliveries(ctx)] == [kept.delivery_key]
    assert receive_webhook(ctx, body, headers).duplicate is False


@pytest.mark.parametrize("topic", [None, "", "   "])
def test_webhook_needs_a_topic(ctx, shop_id, topic):
    body = b'{"id": 1}'
    headers = signed(body, X_Shopify_Webhook_Id="w1")
    if topic is not None:
        headers["X-Shopify-Topic"] = topic
    refused = refusal(receive_webhook, ctx, body, headers)
    assert refused.status == 400
    assert "X-Shopify-Topic" in refused.reason
    assert deliveries(ctx) == []


def test_webhook_with_a_bad_hmac_is_refused_with_401(ctx, shop_id):
    body = b'{"id": 1}'
    headers = signed(body, secret="nope", X_Shopify_Topic="orders/updated", X_Shopify_Webhook_Id="w1")
    assert refusal(receive_webhook, ctx, body, headers).status == 401
    assert deliveries(ctx) == []


def test_webhook_with_malformed_json_is_refused_with_400(ctx, shop_id):
    body = b"{not json"
    refused = refusal(receive_webhook, ctx, body, signed(body, X_Shopify_Topic="orders/updated"))
    assert refused.status == 400
    assert "JSON" in refused.reason


# Signed GET pulls: <callbackUrl>/fetch_stock, /fetch_tracking_numbers


def pull(query: str) -> tuple[bytes, dict[str, str]]:
    """The raw query and its first value per name, as the web framework hands them over."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return query.encode(), params


def test_a_pull_signed_in_the_header_over_the_raw_query_is_taken(ctx, shop_id):
    raw, params = pull(f"order_names[]=%231001.1&order_names[]=%231002.1&shop={SHOP}")
    assert authenticate_query(ctx, raw, params, signed(raw)) == (shop_id, SHOP)
    refused = refusal(authenticate_query, ctx, raw + b"&order_names[]=%231003.1", params, signed(raw))
    assert refused.status == 401


def test_a_pull_signed_with_an_hmac_parameter_covers_every_listed_order_name(ctx, shop_id, monkeypatch):
    monkeypatch.setattr(shopify.Session, "secret", SECRET)
    names = ["#1001.1", "#1002.1", "Café & Co %"]
    signature = shopify.Session.calculate_hmac({"order_names[]": names, "shop": SHOP})
    query = urlencode([*(("order_names[]", name) for name in names), ("shop", SHOP), ("hmac", signature)])
    assert authenticate_query(ctx, *pull(query), {}) == (shop_id, SHOP)
    # A name added after signing is not covered, though the first value of each name is unchanged.
    refused = refusal(authenticate_query, ctx, *pull(f"{query}&order_names[]=%231003.1"), {})
    assert refused.status == 401
