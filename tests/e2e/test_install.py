"""Installing the app as a merchant does: our install link, the store's authorize page and its Install button,
the redirect back with a code. Then reinstall, uninstall, and the privacy webhooks the store sends afterwards.

The sandbox delivers `app/uninstalled` (through `DELETE /_sandbox/shops/<shop>/app_installs`) but not the
privacy topics, which the store sends on its own schedule: those are posted here signed with the app's secret,
exactly as the store would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis
import requests
from sqlalchemy import select

from devstack.merchant import Merchant
from devstack.system import ConnectedShop
from devstack.wait import wait_for
from fulfillment.install import SCOPES
from fulfillment.models import FulfillmentOrder, MerchantRequest, Shop
from fulfillment.shops import ACTIVE_SHOP_TTL_S, find_shop
from fulfillment.store import operations as ops
from fulfillment.webhooks import SUBSCRIBED_TOPICS
from tests.conftest import API_SECRET
from workers.queue import INFLIGHT_KEY

# --- driving the install as the merchant's browser would -----------------------------------------------------


class _Form(HTMLParser):
    """The fields of the store's install form (hidden inputs) and whether it has the Install button."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.has_install_button = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value") or ""
        if tag == "button" and attrs.get("id") == "install":
            self.has_install_button = True


def new_shop(system, **options) -> Merchant:
    domain = f"install-{uuid.uuid4().hex[:8]}.myshopify.com"
    merchant = Merchant(system.sandbox_url, domain)
    merchant.create_shop(plan="standard", **options)
    return merchant


def start_install(system, shop: str, session: requests.Session | None = None) -> str:
    """Follow our install link; returns the store's authorize page it redirects to."""
    session = session or requests.Session()
    response = session.get(f"{system.app_url}/install", params={"shop": shop}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def press_install(authorize_url: str, session: requests.Session | None = None, **override: str) -> str:
    """Open the store's authorize page and submit its Install form; returns the store's redirect to our app."""
    session = session or requests.Session()
    page = session.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    form = _Form()
    form.feed(page.text)
    assert form.has_install_button
    response = session.post(authorize_url, data={**form.fields, **override}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def install_through_store(system, shop: str) -> tuple[requests.Response, str]:
    """The whole install; returns our answer to the store's redirect, and that redirect's URL."""
    session = requests.Session()
    redirect = press_install(start_install(system, shop, session), session)
    assert redirect.startswith(f"{system.app_url}/auth/callback?")
    return session.get(redirect, allow_redirects=False, timeout=30), redirect


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def installed_shop(system, merchant: Merchant) -> ConnectedShop:
    response, _ = install_through_store(system, merchant.shop)
    assert response.status_code == 200, response.text
    shop_id = response.json()["shop_id"]
    return ConnectedShop(merchant.shop, merchant, shop_id, merchant.service_location_id(), system)


def our_shop(system, domain: str) -> Shop | None:
    ctx = system.context()
    with ctx.db.transaction() as session:
        return find_shop(session, domain)


# --- webhooks as the store sends them ----------------------------------------------------------------------


def post_webhook(
    system, shop: str, topic: str, payload: dict, webhook_id: str | None = None, secret: str = API_SECRET
) -> requests.Response:
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
    }
    return requests.post(f"{system.app_url}/webhooks", data=body, headers=headers, timeout=10)


def web_log(system) -> str:
    return (system.stack.log_dir / "web.log").read_text(errors="replace")


# --- helpers on orders -------------------------------------------------------------------------------------


def only_fo(order: dict) -> dict:
    (fo,) = order["fulfillment_orders"]
    return fo


def ship_one(shop: ConnectedShop, sku: str, message: str | None = None, **order_fields) -> tuple[dict, str]:
    """Place an order of one unit, request its fulfilment, wait until it has shipped; returns (order, fo id)."""
    shop.set_stock(sku, 5)
    order = shop.place_order([{"sku": sku, "title": f"Title {sku}", "quantity": 1}], **order_fields)
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id, message=message)
    wait_for(
        lambda: shop.merchant.order(order["id"])["display_fulfillment_status"] == "FULFILLED",
        what=f"order {order['name']} to be fulfilled",
    )
    wait_for(lambda: (r := shop.record(fo_id)) is not None and r.state == "shipped", what="our record to ship")
    return order, fo_id


def numeric(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1])


# --- install -------------------------------------------------------------------------------------------------


def test_install_through_the_store_page_sets_up_the_shop_and_its_orders_ship(system):
    merchant = new_shop(system)
    authorize_url = start_install(system, merchant.shop)

    # We send the merchant to the store's own authorize page for our app, scopes and redirect.
    target = urlsplit(authorize_url)
    assert f"{target.scheme}://{target.netloc}" == system.sandbox_url
    assert target.path == f"/store/{merchant.shop}/admin/oauth/authorize"
    asked = query(authorize_url)
    assert asked["client_id"] == "test-api-key"
    assert asked["scope"] == SCOPES
    assert asked["redirect_uri"] == f"{system.app_url}/auth/callback"
    assert len(asked["state"]) >= 20

    redirect = press_install(authorize_url)
    assert query(redirect)["state"] == asked["state"]
    response = requests.get(redirect, allow_redirects=False, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["installed"] == merchant.shop

    # The store's side: our app installed once, with our scopes; our fulfillment service with our callback URL,
    # tracking and inventory; one subscription per topic to our webhook URL.
    state = merchant.state()
    assert [i["scopes"] for i in state["installs"]] == [SCOPES]
    (service,) = state["fulfillment_services"]
    assert service["name"] == "Warehouse Fulfillment"
    assert service["callback_url"] == system.app_url
    assert service["tracking_support"] is True and service["inventory_management"] is True
    subscriptions = state["webhook_subscriptions"]
    assert sorted(s["topic"] for s in subscriptions) == sorted(SUBSCRIBED_TOPICS)
    assert {s["uri"] for s in subscriptions} == {f"{system.app_url}/webhooks"}

    # Ours: one active shop with the store's service and location, and a token that works on the store.
    shop = our_shop(system, merchant.shop)
    assert shop.active and shop.scopes == SCOPES
    assert shop.fulfillment_service_id == service["id"]
    assert shop.location_id == service["location_id"]
    client = system.context().store_for(shop)
    assert ops.shop_info(client).domain == merchant.shop

    # And the shop works: an order requested by the merchant is shipped by us.
    connected = ConnectedShop(merchant.shop, merchant, shop.id, service["location_id"], system)
    order, fo_id = ship_one(connected, f"INSTALL-{uuid.uuid4().hex[:6]}", message="First order after install")
    done = merchant.order(order["id"])
    assert done["fulfillments"] and done["fulfillments"][0]["tracking_info"][0]["number"]
    assert [r.message for r in connected.record(fo_id).merchant_requests] == ["First order after install"]


def test_a_merchant_s_browser_ends_the_install_on_a_page_that_says_the_shop_is_connected(system):
    merchant = new_shop(system)
    browser = requests.Session()
    browser.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    redirect = press_install(start_install(system, merchant.shop, browser), browser)
    page = browser.get(redirect, allow_redirects=False, timeout=30)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    assert f"{merchant.shop} is connected" in page.text
    assert our_shop(system, merchant.shop).active


def test_a_store_redirect_whose_values_hold_delimiters_is_verified_and_installs(system):
    # The store signs every parameter it sends back, the redirect URI's own query too, escaping `&`, `%` and `=`:
    # values holding them (here a redirect URI with a query of its own) must verify as the store signed them.
    merchant = new_shop(system)
    session = requests.Session()
    authorize_url = start_install(system, merchant.shop, session)
    own = "?note=a%26b%3Dc%25d&amp=%26&pct=%2526&pct=100%25&ids[]=1&ids[]=2&sp=two+words+%C3%A9"
    redirect = press_install(authorize_url, session, redirect_uri=f"{system.app_url}/auth/callback{own}")
    sent = parse_qsl(urlsplit(redirect).query, keep_blank_values=True)
    assert ("note", "a&b=c%d") in sent and ("pct", "%26") in sent and ("sp", "two words é") in sent

    response = session.get(redirect, allow_redirects=False, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["installed"] == merchant.shop

    # One changed value of the redirect URI's own query, and the same redirect is refused.
    forged = redirect.replace("pct=100%25", "pct=101%25")
    assert forged != redirect
    refused = session.get(forged, allow_redirects=False, timeout=30)
    assert refused.status_code == 403 and "hmac" in refused.json()["error"]


def test_the_install_link_refuses_a_shop_that_is_not_a_myshopify_domain(system):
    for shop in ("evil.example.com", "shop.myshopify.com.evil.example", "", "https://shop.myshopify.com"):
        response = requests.get(f"{system.app_url}/install", params={"shop": shop}, allow_redirects=False, timeout=10)
        assert response.status_code == 400, shop
        assert "Location" not in response.headers
        assert "myshopify.com" in response.json()["error"]


# The store keeps one installation per app and shop: installing again through OAuth finds our own service and
# subscriptions there; after an uninstall they are gone and the install starts afresh.


def test_reinstall_updates_the_same_shop_service_and_subscriptions_in_place(system):
    merchant = new_shop(system)
    first = installed_shop(system, merchant)
    before = merchant.state()

    response, _ = install_through_store(system, merchant.shop)
    assert response.status_code == 200, response.text

    after = merchant.state()
    assert response.json()["shop_id"] == first.shop_id
    assert after["fulfillment_services"] == before["fulfillment_services"]
    assert sorted(s["topic"] for s in after["webhook_subscriptions"]) == sorted(SUBSCRIBED_TOPICS)
    ctx = system.context()
    with ctx.db.transaction() as session:
        assert session.scalars(select(Shop).where(Shop.domain == merchant.shop)).all() == [
            session.get(Shop, first.shop_id)
        ]
    ship_one(first, f"REINSTALL-{uuid.uuid4().hex[:6]}")


def test_uninstall_forgets_the_token_and_stops_all_work_for_the_shop(system):
    merchant = new_shop(system)
    shop = installed_shop(system, merchant)
    # An order we accepted and are about to pick when the merchant uninstalls us. The pick waits long enough for
    # the uninstall to land first on a loaded machine too (4 s was not, once).
    shop.configure(pick_delay_s=20)
    sku = f"UNINSTALL-{uuid.uuid4().hex[:6]}"
    shop.set_stock(sku, 5)
    # The earlier tests' shops share these workers; their backlog is not this test's (once, in a whole-suite run,
    # the accept took longer than a minute behind it).
    system.wait_workers_caught_up()
    working = shop.place_order([{"sku": sku, "title": "Left behind", "quantity": 1}])
    working_fo = only_fo(working)["id"]
    merchant.request_fulfillment(working_fo)
    record = wait_for(
        lambda: (r := shop.record(working_fo)) is not None and r.state == "accepted" and r, timeout=120, what="accept"
    )

    removed = requests.delete(f"{system.sandbox_url}/_sandbox/shops/{merchant.shop}/app_installs", timeout=10)
    assert removed.status_code == 200 and removed.json()["uninstalled"]

    # The store sent app/uninstalled, we answered 2xx, and we no longer hold a token for the shop.
    gone = wait_for(lambda: (s := our_shop(system, merchant.shop)) is not None and not s.active and s, what="uninstall")
    assert gone.access_token_ciphertext is None and gone.uninstalled_at is not None
    sent = [w for w in merchant.state()["webhooks_sent"] if w["topic"] == "APP_UNINSTALLED"]
    assert sent and all(200 <= w["status"] < 300 for w in sent)
    assert "shop_uninstalled shop=" + merchant.shop in web_log(system)

    # The store removed our fulfillment service with the app; a ping that still arrives for the shop is refused.
    assert merchant.state()["fulfillment_services"] == []
    body = b'{"kind":"FULFILLMENT_REQUEST"}'
    signature = base64.b64encode(hmac.new(API_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Hmac-Sha256": signature, "X-Shopify-Shop-Domain": merchant.shop}

    def late_ping() -> requests.Response:
        url = f"{system.app_url}/fulfillment_order_notification"
        return requests.post(url, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=10)

    # The web worker that answered the uninstall refuses at once; another one within the few seconds it takes a
    # shop for installed without reading it again (fulfillment.shops.ACTIVE_SHOP_TTL_S), and the sweep such a
    # ping queues meanwhile stops at the uninstalled shop.
    wait_for(lambda: late_ping().status_code == 404, timeout=ACTIVE_SHOP_TTL_S + 10, what="late pings refused")

    # The accepted order's chain of steps wakes for the pick, finds the shop gone and ends: it leaves the shop's
    # in-flight set without picking or shipping anything.
    inflight = redis.Redis.from_url(system.env["REDIS_URL"])
    key = INFLIGHT_KEY.format(shop_id=shop.shop_id)
    wait_for(lambda: inflight.zscore(key, str(record.id)) is None, timeout=90, what="the chain to end")
    assert shop.record(working_fo).state == "accepted"
    assert merchant.order(working["id"])["fulfillments"] == []


def test_reinstall_after_uninstall_reconnects_the_same_shop_row(system):
    merchant = new_shop(system)
    first = installed_shop(system, merchant)
    requests.delete(f"{system.sandbox_url}/_sandbox/shops/{merchant.shop}/app_installs", timeout=10)
    wait_for(lambda: not our_shop(system, merchant.shop).active, what="uninstall")

    again = installed_shop(system, merchant)

    assert again.shop_id == first.shop_id
    shop = our_shop(system, merchant.shop)
    assert shop.active and shop.uninstalled_at is None
    state = merchant.state()
    assert len(state["installs"]) == 1
    assert sorted(s["topic"] for s in state["webhook_subscriptions"]) == sorted(SUBSCRIBED_TOPICS)
    ship_one(again, f"BACK-{uuid.uuid4().hex[:6]}")


# --- privacy webhooks ----------------------------------------------------------------------------------------

ADDRESS = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "address1": "7 Privacy Lane",
    "city": "Bergen",
    "province": "",
    "country_code": "NO",
    "zip": "5003",
}


def test_customer_data_request_reports_what_we_hold_and_logs_no_personal_data(connected_shop):
    shop = connected_shop
    order, fo_id = ship_one(shop, f"DATA-{uuid.uuid4().hex[:6]}", message="Call Grace first", shipping_address=ADDRESS)

    response = post_webhook(
        shop.system,
        shop.domain,
        "customers/data_request",
        {
            "shop_domain": shop.domain,
            "customer": {"id": 1, "email": "grace@example.com"},
            "orders_requested": [numeric(order["id"])],
            "data_request": {"id": 9001},
        },
    )

    assert response.status_code == 200, response.text
    (held,) = response.json()["report"]["orders"]
    assert held["order_id"] == order["id"] and held["fulfillment_order_id"] == fo_id
    assert held["destination"]["last_name"] == "Hopper"
    assert held["destination"]["address1"] == "7 Privacy Lane"
    assert held["merchant_notes"] == ["Call Grace first"]
    assert "destination.address1" in response.json()["report"]["fields"]
    log = web_log(shop.system)
    assert f"privacy_data_request shop_id={shop.shop_id} data_request=9001 orders=1" in log
    assert "Privacy Lane" not in log and "Hopper" not in log


def test_customer_redact_removes_addresses_names_and_notes_of_those_orders_only(connected_shop):
    shop = connected_shop
    redacted, redacted_fo = ship_one(
        shop, f"RED-{uuid.uuid4().hex[:6]}", message="Grace's gift", shipping_address=ADDRESS
    )
    kept, kept_fo = ship_one(shop, f"KEEP-{uuid.uuid4().hex[:6]}", message="Keep me")

    response = post_webhook(
        shop.system,
        shop.domain,
        "customers/redact",
        {"shop_domain": shop.domain, "customer": {"id": 1}, "orders_to_redact": [numeric(redacted["id"])]},
    )

    assert response.status_code == 200, response.text
    gone = shop.record(redacted_fo)
    assert gone.destination is None
    assert [r.message for r in gone.merchant_requests] == [None]
    # What the warehouse's books need stays: the line items, the package and its tracking.
    assert gone.line_items[0].sku.startswith("RED-") and gone.packages[0].tracking_number
    still = shop.record(kept_fo)
    assert still.destination["address1"] == "1 Test Street"
    assert [r.message for r in still.merchant_requests] == ["Keep me"]
    assert f"privacy_redaction topic=customers/redact shop_id={shop.shop_id} fulfillment_orders=1" in web_log(
        shop.system
    )
    # Asked again, we report that we hold nothing on the redacted order.
    report = post_webhook(
        shop.system,
        shop.domain,
        "customers/data_request",
        {"orders_requested": [numeric(redacted["id"]), numeric(kept["id"])]},
    ).json()["report"]
    assert [o["order_id"] for o in report["orders"]] == [kept["id"]]


def test_shop_redact_after_uninstall_removes_every_address_of_the_shop(system):
    shop = installed_shop(system, new_shop(system))
    ship_one(shop, f"SR1-{uuid.uuid4().hex[:6]}", message="Note one", shipping_address=ADDRESS)
    ship_one(shop, f"SR2-{uuid.uuid4().hex[:6]}", message="Note two")
    requests.delete(f"{system.sandbox_url}/_sandbox/shops/{shop.domain}/app_installs", timeout=10)
    wait_for(lambda: not our_shop(system, shop.domain).active, what="uninstall")

    response = post_webhook(shop.system, shop.domain, "shop/redact", {"shop_domain": shop.domain, "shop_id": 1})

    assert response.status_code == 200, response.text
    ctx = shop.system.context()
    with ctx.db.transaction() as session:
        records = session.scalars(select(FulfillmentOrder).where(FulfillmentOrder.shop_id == shop.shop_id)).all()
        notes = session.scalars(
            select(MerchantRequest.message).join(FulfillmentOrder).where(FulfillmentOrder.shop_id == shop.shop_id)
        ).all()
    assert len(records) == 2 and all(r.destination is None for r in records)
    assert notes and all(n is None for n in notes)
    assert f"privacy_redaction topic=shop/redact shop_id={shop.shop_id} fulfillment_orders=2" in web_log(shop.system)


@pytest.mark.parametrize("topic", ["customers/redact", "customers/data_request", "shop/redact"])
def test_privacy_webhook_with_a_bad_signature_changes_nothing(connected_shop, topic):
    shop = connected_shop
    order, fo_id = ship_one(shop, f"FORGE-{uuid.uuid4().hex[:6]}", shipping_address=ADDRESS)
    payload = {"orders_to_redact": [numeric(order["id"])], "orders_requested": [numeric(order["id"])]}
    response = post_webhook(shop.system, shop.domain, topic, payload, secret="not-the-app-secret")
    assert response.status_code == 401
    assert "report" not in response.json()
    assert shop.record(fo_id).destination["address1"] == "7 Privacy Lane"
