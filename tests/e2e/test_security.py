"""What an attacker can send us, each as a real request to the running system: forged and replayed signatures on
callbacks, webhooks and the OAuth redirect, foreign shops, reused state, SQL metacharacters in every text we
take from outside, tokens at rest; and a fuzz test of the endpoints the store calls (Flask test client)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, Text, inspect, select, text
from sqlalchemy.engine import make_url
from werkzeug.datastructures import MultiDict

from devstack.wait import wait_for
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import Delivery, FulfillmentOrder, Shop
from fulfillment.operator import actions, queries
from fulfillment.security import TokenCipher
from fulfillment.shops import connect_shop, save_token
from tests.conftest import API_SECRET
from tests.e2e.test_install import (
    new_shop,
    numeric,
    only_fo,
    our_shop,
    post_webhook,
    press_install,
    query,
    ship_one,
    start_install,
    web_log,
)

WRONG_SECRET = "not-the-app-secret"
NASTY = ("'; DROP TABLE shops; --", '" OR 1=1', "%_\\")


def body_signature(body: bytes, secret: str = API_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def query_signature(params: dict[str, str], secret: str = API_SECRET) -> str:
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def post_callback(system, shop: str, body: bytes, signature: str | None, **headers: str) -> requests.Response:
    sent = {"Content-Type": "application/json", "X-Shopify-Shop-Domain": shop, **headers}
    if signature is not None:
        sent["X-Shopify-Hmac-Sha256"] = signature
    return requests.post(f"{system.app_url}/fulfillment_order_notification", data=body, headers=sent, timeout=10)


def deliveries(system, key: str) -> list[Delivery]:
    ctx = system.context()
    with ctx.db.transaction() as session:
        return session.scalars(select(Delivery).where(Delivery.delivery_key == key)).all()


# --- callbacks -----------------------------------------------------------------------------------------------


def test_forged_callback_signatures_are_refused_and_nothing_is_recorded(connected_shop):
    shop = connected_shop
    body = json.dumps({"kind": "FULFILLMENT_REQUEST"}).encode()
    for signature in (None, "", "not base64!", body_signature(body, WRONG_SECRET), body_signature(b"{}")):
        key = f"forged-{uuid.uuid4()}"
        response = post_callback(shop.system, shop.domain, body, signature, **{"X-Shopify-Webhook-Id": key})
        assert response.status_code == 401, signature
        assert deliveries(shop.system, key) == []
    # Signed GETs (the store's pulls) are refused the same way.
    params = urlencode([("shop", shop.domain)])
    forged = requests.get(
        f"{shop.system.app_url}/fetch_stock?{params}",
        headers={"X-Shopify-Hmac-Sha256": body_signature(params.encode(), WRONG_SECRET)},
        timeout=10,
    )
    assert forged.status_code == 401


def test_replayed_callback_is_taken_once(connected_shop):
    shop = connected_shop
    body = json.dumps({"kind": "FULFILLMENT_REQUEST"}).encode()
    key = f"replay-{uuid.uuid4()}"
    first = post_callback(shop.system, shop.domain, body, body_signature(body), **{"X-Shopify-Webhook-Id": key})
    again = post_callback(shop.system, shop.domain, body, body_signature(body), **{"X-Shopify-Webhook-Id": key})
    assert first.status_code == 200 and "duplicate" not in first.json()
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(deliveries(shop.system, key)) == 1


# --- webhooks ------------------------------------------------------------------------------------------------


def test_forged_uninstall_webhook_does_not_uninstall(connected_shop):
    shop = connected_shop
    key = f"forged-{uuid.uuid4()}"
    response = post_webhook(
        shop.system, shop.domain, "app/uninstalled", {"domain": shop.domain}, webhook_id=key, secret=WRONG_SECRET
    )
    assert response.status_code == 401
    assert our_shop(shop.system, shop.domain).active
    assert deliveries(shop.system, key) == []
    # A genuine signature over another body does not carry over either.
    body = json.dumps({"domain": shop.domain}).encode()
    tampered = requests.post(
        f"{shop.system.app_url}/webhooks",
        data=body + b" ",
        headers={
            "X-Shopify-Topic": "app/uninstalled",
            "X-Shopify-Hmac-Sha256": body_signature(body),
            "X-Shopify-Shop-Domain": shop.domain,
            "X-Shopify-Webhook-Id": key,
        },
        timeout=10,
    )
    assert tampered.status_code == 401
    assert our_shop(shop.system, shop.domain).active


def test_replayed_webhook_is_processed_once(connected_shop):
    shop = connected_shop
    shop.set_stock("REPLAY-WH", 5)
    order = shop.place_order([{"sku": "REPLAY-WH", "title": "Replay", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_for(lambda: (r := shop.record(fo_id)) is not None and r.state == "shipped", what="the order to ship")
    payload = {"orders_to_redact": [numeric(order["id"])]}
    key = str(uuid.uuid4())

    first = post_webhook(shop.system, shop.domain, "customers/redact", payload, webhook_id=key)
    assert first.status_code == 200 and shop.record(fo_id).destination is None
    # The address comes back (as it would for a new order); the replay must not remove it again.
    ctx = shop.system.context()
    with ctx.db.transaction() as session:
        session.scalar(select(FulfillmentOrder).where(FulfillmentOrder.store_id == fo_id)).destination = {"zip": "1"}
    again = post_webhook(shop.system, shop.domain, "customers/redact", payload, webhook_id=key)

    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert shop.record(fo_id).destination == {"zip": "1"}
    assert len(deliveries(shop.system, key)) == 1


# --- the OAuth redirect --------------------------------------------------------------------------------------


def callback(system, params: dict[str, str]) -> requests.Response:
    return requests.get(f"{system.app_url}/auth/callback", params=params, allow_redirects=False, timeout=30)


def exchange(system, shop: str, code: str) -> requests.Response:
    return requests.post(
        f"{system.sandbox_url}/store/{shop}/admin/oauth/access_token",
        json={"client_id": "test-api-key", "client_secret": API_SECRET, "code": code},
        timeout=10,
    )


def test_forged_oauth_redirects_are_refused_and_leave_the_real_one_usable(system):
    merchant = new_shop(system)
    other = new_shop(system)
    genuine = query(press_install(start_install(system, merchant.shop)))

    forgeries = [
        {**genuine, "shop": other.shop},  # the store signed another shop
        {**genuine, "code": "0" * 32},
        {**genuine, "timestamp": str(int(genuine["timestamp"]) + 1)},
        {k: v for k, v in genuine.items() if k != "hmac"},
        {**genuine, "hmac": query_signature(genuine, WRONG_SECRET)},
        {**genuine, "hmac": genuine["hmac"].upper()[:-1] + "0"},
    ]
    for params in forgeries:
        response = callback(system, params)
        assert response.status_code == 403, params
    assert our_shop(system, merchant.shop) is None and our_shop(system, other.shop) is None

    # Signed with our secret but days old: refused too.
    stale = {**genuine, "timestamp": str(int(time.time()) - 3 * 24 * 3600)}
    assert callback(system, {**stale, "hmac": query_signature(stale)}).status_code == 403

    # None of those used up the state: the genuine redirect still installs.
    response = callback(system, genuine)
    assert response.status_code == 200, response.text
    assert our_shop(system, merchant.shop).active


def test_replayed_oauth_redirect_is_refused_because_the_state_is_single_use(system):
    merchant = new_shop(system)
    redirect = press_install(start_install(system, merchant.shop))
    assert requests.get(redirect, timeout=30).status_code == 200
    token_before = our_shop(system, merchant.shop).access_token_ciphertext

    replay = requests.get(redirect, allow_redirects=False, timeout=30)

    assert replay.status_code == 403
    assert "state" in replay.json()["error"]
    assert our_shop(system, merchant.shop).access_token_ciphertext == token_before


def test_reused_state_nonce_is_refused_and_its_code_never_exchanged(system):
    merchant = new_shop(system)
    session = requests.Session()
    authorize_url = start_install(system, merchant.shop, session)
    first = query(press_install(authorize_url, session))
    # The merchant presses Install again on the same page: the store signs a new code with the same state.
    second = query(press_install(authorize_url, session))
    assert first["state"] == second["state"] and first["code"] != second["code"]

    assert callback(system, first).status_code == 200
    reused = callback(system, second)

    assert reused.status_code == 403 and "state" in reused.json()["error"]
    # We never traded the second code: it is still good for one exchange.
    assert exchange(system, merchant.shop, second["code"]).status_code == 200


def test_state_issued_for_one_shop_is_refused_on_another(system):
    ours, theirs = new_shop(system), new_shop(system)
    state = query(start_install(system, ours.shop))["state"]
    other_page = start_install(system, theirs.shop)
    redirect = query(press_install(other_page, state=state))
    assert redirect["shop"] == theirs.shop and redirect["state"] == state

    response = callback(system, redirect)

    assert response.status_code == 403 and "state" in response.json()["error"]
    assert our_shop(system, theirs.shop) is None
    assert exchange(system, theirs.shop, redirect["code"]).status_code == 200  # never used by us


def test_made_up_state_is_refused(system):
    merchant = new_shop(system)
    redirect = query(press_install(start_install(system, merchant.shop), state="made-up-state"))
    assert callback(system, redirect).status_code == 403
    assert our_shop(system, merchant.shop) is None


@pytest.mark.parametrize(
    "shop",
    [
        "evil.example.com",
        "shop.myshopify.com.evil.example",
        "shop.myshopify.com@evil.example",
        "evil.example/shop.myshopify.com",
        "-shop.myshopify.com",
        "shop.myshopify.com\n",
        "",
    ],
)
def test_redirect_for_a_shop_that_is_not_a_myshopify_domain_is_refused(system, shop):
    # Correctly signed with the app's secret: only the shop is wrong. (That no request leaves for such a shop
    # is proven in tests/unit/test_oauth_install.py with every outbound call intercepted.)
    params = {"code": "c0de", "shop": shop, "state": "s", "timestamp": str(int(time.time()))}
    response = callback(system, {**params, "hmac": query_signature(params)})
    assert response.status_code == 403
    assert "myshopify.com" in response.json()["error"]
    install = requests.get(f"{system.app_url}/install", params={"shop": shop}, allow_redirects=False, timeout=10)
    assert install.status_code == 400 and "Location" not in install.headers


# --- SQL metacharacters ----------------------------------------------------------------------------------------


def table_names(system) -> list[str]:
    return sorted(inspect(system.context().db.engine).get_table_names())


def test_sql_metacharacters_in_outside_text_are_stored_and_read_back_intact(connected_shop):
    shop = connected_shop
    system = shop.system
    tables = table_names(system)
    assert {"shops", "fulfillment_orders", "deliveries"} <= set(tables)
    tag = uuid.uuid4().hex[:6]
    skus = [f"{nasty}{tag}" for nasty in NASTY]
    address = {
        "first_name": NASTY[0],
        "last_name": NASTY[1],
        "address1": f"{NASTY[2]} Street",
        "address2": NASTY[0],
        "city": f"O'Brien{NASTY[2]}",
        "province": "",
        "country_code": "NO",
        "zip": "0150",
    }
    note = " | ".join(NASTY)

    # Shop settings, as the dashboard's settings form saves them.
    saved = actions.update_settings(
        system.context(), shop.shop_id, {"carrier": NASTY[0], "ineligible_skus": [f"{NASTY[1]}-never"]}
    )
    assert queries.shop(system.context(), shop.shop_id).settings == saved
    assert saved["carrier"] == NASTY[0] and saved["ineligible_skus"] == [f"{NASTY[1]}-never"]

    # SKUs, titles, an address and the merchant's note, all through the store.
    for sku in skus:
        shop.set_stock(sku, 3)
    order = shop.place_order(
        [{"sku": sku, "title": f"{nasty} title", "quantity": 1} for sku, nasty in zip(skus, NASTY, strict=True)],
        shipping_address=address,
    )
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id, message=note)
    record = wait_for(lambda: (r := shop.record(fo_id)) is not None and r.state == "shipped" and r, what="shipping")
    assert sorted(line.sku for line in record.line_items) == sorted(skus)
    assert sorted(line.product_title for line in record.line_items) == sorted(f"{n} title" for n in NASTY)
    assert {k: record.destination[k] for k in address} == address
    assert [r.message for r in record.merchant_requests] == [note]
    shipped = shop.merchant.order(order["id"])
    assert sum(i["quantity"] for f in shipped["fulfillments"] for i in f["line_items"]) == 3
    # The SKUs read back through the store's stock pull, signed like the store signs it.
    params = urlencode([("shop", shop.domain), ("sku", skus[0])])
    stock = requests.get(
        f"{system.app_url}/fetch_stock?{params}",
        headers={"X-Shopify-Hmac-Sha256": body_signature(params.encode())},
        timeout=10,
    )
    assert stock.json() == {skus[0]: 2}

    # Order names are the store's (the sandbox numbers them); one of ours with a hostile name reads back too.
    ctx = system.context()
    with ctx.db.transaction() as session:
        session.add(
            FulfillmentOrder(
                shop_id=shop.shop_id,
                store_id=f"gid://shopify/FulfillmentOrder/{NASTY[0]}{tag}",
                order_id="gid://shopify/Order/987654321",
                order_name=note,
                state="closed",
                destination={"address1": NASTY[1]},
            )
        )

    # Webhook bodies and headers: ids, topics and payload values.
    webhook_id = f"{NASTY[0]}{tag}"
    response = post_webhook(
        system,
        shop.domain,
        "customers/data_request",
        {"orders_requested": [987654321, *NASTY], "data_request": {"id": NASTY[1]}, "customer": {"email": NASTY[2]}},
        webhook_id=webhook_id,
    )
    assert response.status_code == 200, response.text
    (held,) = response.json()["report"]["orders"]
    assert held["order_name"] == note and held["destination"] == {"address1": NASTY[1]}
    odd_topic = post_webhook(system, shop.domain, f"{NASTY[1]}{tag}", {"x": NASTY[2]}, webhook_id=f"{NASTY[2]}{tag}")
    assert odd_topic.status_code == 200
    assert [d.topic for d in deliveries(system, webhook_id)] == ["customers/data_request"]
    assert [d.topic for d in deliveries(system, f"{NASTY[2]}{tag}")] == [f"{NASTY[1]}{tag}".lower()]

    # Nothing was executed as SQL: every table is still there, and so is every shop.
    assert table_names(system) == tables
    with ctx.db.transaction() as session:
        assert session.get(Shop, shop.shop_id).domain == shop.domain


# --- tokens at rest ------------------------------------------------------------------------------------------


def test_access_tokens_are_unreadable_in_the_database_without_the_key(system):
    merchant = new_shop(system)
    token = merchant.install_app()
    ctx = system.context()
    shop_id = connect_shop(ctx, merchant.shop, token)

    with ctx.db.engine.connect() as connection:
        raw = connection.execute(text("SELECT access_token_ciphertext FROM shops WHERE id = :id"), {"id": shop_id})
        stored = raw.scalar_one()
    assert stored and stored != token and token not in stored
    assert token.encode() not in base64.urlsafe_b64decode(stored.encode())
    # Another key, or the development key another deployment would derive, cannot read it.
    with pytest.raises(ValueError):
        TokenCipher([Fernet.generate_key().decode()]).decrypt(stored)
    with pytest.raises(ValueError):
        TokenCipher.from_setting("", "some-other-secret-key").decrypt(stored)
    # Ours can, and the token works on the store.
    assert ctx.cipher.decrypt(stored) == token
    graphql = requests.post(
        f"{system.sandbox_url}/store/{merchant.shop}/admin/api/2026-07/graphql.json",
        json={"query": "{ shop { myshopifyDomain } }"},
        headers={"X-Shopify-Access-Token": ctx.cipher.decrypt(stored)},
        timeout=10,
    )
    assert graphql.json()["data"]["shop"]["myshopifyDomain"] == merchant.shop

    # The token is in no text column of any table.
    engine = ctx.db.engine
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for column in inspect(engine).get_columns(table):
                if isinstance(column["type"], String | Text):
                    hits = connection.execute(
                        text(f'SELECT COUNT(*) FROM "{table}" WHERE "{column["name"]}" LIKE :t'), {"t": f"%{token}%"}
                    ).scalar_one()
                    assert hits == 0, f"{table}.{column['name']}"
    # On SQLite, not even in the bytes of the file (or its write-ahead log).
    url = make_url(ctx.config.database_url)
    if url.drivername.startswith("sqlite"):
        for path in (Path(url.database), Path(f"{url.database}-wal")):
            if path.exists():
                assert token.encode() not in path.read_bytes(), path


def test_rotate_token_key_command_re_encrypts_every_token_with_the_new_key(make_database):
    url = make_database()
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = Context.from_config(Config(database_url=url, token_encryption_key=old))
    tokens = {f"rotate-{i}.myshopify.com": f"shpat_rotate_{i}" for i in range(3)}
    for domain, token in tokens.items():
        save_token(before, domain, token)
    env = {**os.environ, "DATABASE_URL": url, "TOKEN_ENCRYPTION_KEY": f"{new},{old}"}

    result = subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "app", "rotate-token-key"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "3 access tokens re-encrypted with the first key" in result.stdout
    with before.db.engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT domain, access_token_ciphertext FROM shops")).all())
    # The old key can be dropped now: the new one alone reads every token, the old one none.
    assert {domain: TokenCipher([new]).decrypt(c) for domain, c in stored.items()} == tokens
    for ciphertext in stored.values():
        with pytest.raises(ValueError):
            TokenCipher([old]).decrypt(ciphertext)
    before.db.dispose()


# --- what a hostile probe of the running system found ----------------------------------------------------

PING = b'{"kind": "FULFILLMENT_REQUEST"}'


def post_signed_webhook(system, shop: str, topic: str, body: bytes) -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": body_signature(body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    }
    return requests.post(f"{system.app_url}/webhooks", data=body, headers=headers, timeout=30)


def uninstall_body(domain: str) -> bytes:
    """`app/uninstalled` as the store sends it: the shop, naming its myshopify domain."""
    return json.dumps(
        {"id": 1, "name": domain, "email": "m@example.com", "domain": domain, "myshopify_domain": domain}
    ).encode()


def signed_pull(system, shop: str, path: str = "/fetch_stock", **params: str) -> requests.Response:
    query = urlencode([("shop", shop), *params.items()])
    return requests.get(
        f"{system.app_url}{path}?{query}", headers={"X-Shopify-Hmac-Sha256": body_signature(query.encode())}, timeout=10
    )


def still_connected(shop) -> bool:
    record = our_shop(shop.system, shop.domain)
    return record.active and record.access_token_ciphertext is not None and signed_pull(shop.system, shop.domain).ok


def another_connected_shop(system):
    return system.connect_shop(f"probe-{uuid.uuid4().hex[:8]}.myshopify.com", subscribe_webhooks=False)


def test_a_signed_ping_replayed_as_app_uninstalled_is_refused_and_the_shop_keeps_working(connected_shop):
    # The same bytes for every shop, signed by the store: once seen, it could be posted under any topic and shop.
    shop = connected_shop
    for topic in ("app/uninstalled", "shop/redact"):
        response = post_signed_webhook(shop.system, shop.domain, topic, PING)
        assert response.status_code == 400, (topic, response.text)
        assert "myshopify_domain" in response.json()["error"] or "shop_domain" in response.json()["error"]
    assert still_connected(shop)
    ship_one(shop, f"PING-{uuid.uuid4().hex[:6]}")


def test_one_shops_uninstall_body_under_another_shops_header_is_refused(connected_shop):
    victim, other = connected_shop, another_connected_shop(connected_shop.system)
    response = post_signed_webhook(victim.system, victim.domain, "app/uninstalled", uninstall_body(other.domain))
    assert response.status_code == 401, response.text
    assert "myshopify_domain" in response.json()["error"]
    redact = json.dumps({"shop_id": 1, "shop_domain": other.domain}).encode()
    assert post_signed_webhook(victim.system, victim.domain, "shop/redact", redact).status_code == 401
    assert still_connected(victim) and still_connected(other)


def test_an_uninstall_the_store_does_not_confirm_is_refused_and_the_decision_recorded(connected_shop):
    # A shop's own, well-formed uninstall (say, replayed from an earlier install): the store still answers the
    # shop's token, so the app is installed and nothing is done. (A real uninstall, whose token the store has
    # revoked, is tests/e2e/test_install.py's.)
    shop = connected_shop
    order, fo_id = ship_one(shop, f"KEEP-{uuid.uuid4().hex[:6]}")
    response = post_signed_webhook(shop.system, shop.domain, "app/uninstalled", uninstall_body(shop.domain))
    assert response.status_code == 409, response.text
    redact = json.dumps({"shop_id": 1, "shop_domain": shop.domain}).encode()
    assert post_signed_webhook(shop.system, shop.domain, "shop/redact", redact).status_code == 409
    assert still_connected(shop)
    assert shop.record(fo_id).destination is not None
    log = web_log(shop.system)
    for topic in ("app/uninstalled", "shop/redact"):
        assert f"webhook_decision topic={topic} shop={shop.domain} shop_id={shop.shop_id} decision=refused" in log


def nested(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


HOSTILE_BODIES = {
    "10000-nested-arrays": nested(10_000, "["),
    "10000-nested-objects": nested(10_000, '{"a":'),
    "5000-digit-number": b'{"kind": "FULFILLMENT_REQUEST", "n": ' + b"9" * 5000 + b"}",
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_nested_and_huge_number_bodies_get_a_4xx_with_a_reason(connected_shop, body):
    shop = connected_shop
    answers = [
        post_callback(shop.system, shop.domain, body, body_signature(body)),
        post_signed_webhook(shop.system, shop.domain, "customers/redact", body),
        post_signed_webhook(shop.system, shop.domain, "app/uninstalled", body),
    ]
    for response in answers:
        assert response.status_code == 400, response.text
        assert response.json()["error"]
    assert still_connected(shop)


def signed_in(system) -> requests.Session:
    """A browser's session on the dashboard, signed in as a new operator."""
    from fulfillment.accounts import create_operator

    email = f"probe-{uuid.uuid4().hex[:8]}@warehouse.example"
    create_operator(system.context(), email, "a long probe password")
    browser = requests.Session()
    page = browser.get(f"{system.app_url}/dashboard/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = browser.post(
        f"{system.app_url}/dashboard/login",
        data={"email": email, "password": "a long probe password", "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    # Signing in starts a new session with a token of its own: the one a page shows is what a POST carries.
    queue = browser.get(f"{system.app_url}/dashboard/", timeout=10)
    browser.csrf = re.search(r'name="csrf_token" value="([^"]+)"', queue.text).group(1)
    return browser


def test_thirty_digit_ids_and_nested_bodies_get_a_4xx_not_a_database_error(connected_shop):
    system = connected_shop.system
    huge = "9" * 30
    api = {"Authorization": "Bearer test-operator-token"}
    cancel = requests.post(f"{system.app_url}/api/fulfillment_orders/{huge}/cancel", headers=api, timeout=10)
    assert cancel.status_code == 404 and cancel.json()["error"]
    nested_body = requests.post(
        f"{system.app_url}/api/fulfillment_orders/1/cancel",
        data=nested(10_000, "["),
        headers={**api, "Content-Type": "application/json"},
        timeout=10,
    )
    assert nested_body.status_code == 400 and "deeper" in nested_body.json()["error"]
    not_a_note = requests.post(
        f"{system.app_url}/api/fulfillment_orders/1/cancel", json={"message": {"a": [1]}}, headers=api, timeout=10
    )
    assert not_a_note.status_code == 400 and "message" in not_a_note.json()["error"]

    browser = signed_in(system)
    page = browser.get(f"{system.app_url}/dashboard/fulfillment-orders/{huge}", allow_redirects=False, timeout=10)
    assert page.status_code == 404
    queue = browser.get(f"{system.app_url}/dashboard/", params={"shop": huge}, allow_redirects=False, timeout=10)
    assert queue.status_code == 400
    # The same pages with ids that fit still answer.
    assert browser.get(f"{system.app_url}/dashboard/", params={"shop": connected_shop.shop_id}, timeout=10).ok


@pytest.mark.parametrize("shop", ["\u212aelvin.myshopify.com", "a" * 100 + ".myshopify.com"], ids=["kelvin", "long"])
def test_look_alike_and_overlong_shop_names_get_400_with_no_outbound_request(system, shop):
    sandbox_log = system.stack.log_dir / "sandbox.log"
    before = sandbox_log.read_text(errors="replace")
    install = requests.get(f"{system.app_url}/install", params={"shop": shop}, allow_redirects=False, timeout=10)
    assert install.status_code == 400 and "Location" not in install.headers
    params = {"code": "c0de", "shop": shop, "state": "s", "timestamp": str(int(time.time()))}
    assert callback(system, {**params, "hmac": query_signature(params)}).status_code == 403
    # Not a request reached the store for that name, in any spelling.
    after = sandbox_log.read_text(errors="replace")[len(before) :]
    lowered = shop.lower()
    for spelling in {shop, lowered, quote(shop), quote(lowered), "kelvin.myshopify.com"}:
        assert spelling not in after


def test_a_session_cookie_copied_before_sign_out_is_dead_after_it(system):
    browser = signed_in(system)
    copied = requests.Session()
    copied.cookies.update(browser.cookies)
    assert copied.get(f"{system.app_url}/dashboard/", allow_redirects=False, timeout=10).status_code == 200

    out = browser.post(
        f"{system.app_url}/dashboard/logout", data={"csrf_token": browser.csrf}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 302

    again = copied.get(f"{system.app_url}/dashboard/", allow_redirects=False, timeout=10)
    assert again.status_code == 302 and "/dashboard/login" in again.headers["Location"]


def login_attempt(system, email: str, password: str, **headers: str) -> requests.Response:
    browser = requests.Session()
    page = browser.get(f"{system.app_url}/dashboard/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return browser.post(
        f"{system.app_url}/dashboard/login",
        data={"email": email, "password": password, "csrf_token": token},
        headers=headers,
        allow_redirects=False,
        timeout=10,
    )


def test_one_password_sprayed_across_many_accounts_is_slowed(system):
    from fulfillment.accounts import create_operator

    sprayed = f"Spring{uuid.uuid4().hex[:6]}!"
    emails = [f"spray-{n}-{uuid.uuid4().hex[:6]}@warehouse.example" for n in range(12)]
    create_operator(system.context(), emails[-1], "the operator's own password")
    statuses = [login_attempt(system, email, sprayed).status_code for email in emails]
    # Each account sees one failure, far below its own limit: the password is what is being tried, and it is
    # held back after ten, even for an account that has never seen a failure.
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    refused = login_attempt(system, f"fresh-{uuid.uuid4().hex[:6]}@warehouse.example", sprayed)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # An operator with a password of their own signs in as ever.
    assert login_attempt(system, emails[-1], "the operator's own password").status_code == 302


def test_a_chunked_body_over_the_limit_gets_413_not_a_silent_cut(connected_shop):
    shop = connected_shop
    port = int(shop.system.app_url.rsplit(":", 1)[1])
    for path in ("/webhooks", "/fulfillment_order_notification", "/api/fulfillment_orders/1/cancel"):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                f"Content-Type: application/json\r\nX-Shopify-Shop-Domain: {shop.domain}\r\n"
                "X-Shopify-Topic: customers/redact\r\nX-Shopify-Hmac-Sha256: AAAA\r\n"
                "Authorization: Bearer test-operator-token\r\n\r\n".encode()
            )
            chunk = b" " * 65536
            with contextlib.suppress(OSError):  # we may be answered (and cut off) before the last chunk
                for _ in range(24):  # 1.5 MiB, past the 1 MiB limit
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.sendall(b"0\r\n\r\n")
            status_line = conn.makefile("rb").readline()
        assert status_line.split()[1] == b"413", (path, status_line)


def test_the_access_log_carries_no_oauth_code_hmac_or_signed_query_string(connected_shop):
    from tests.e2e.test_install import install_through_store

    system = connected_shop.system
    merchant = new_shop(system)
    answer, redirect = install_through_store(system, merchant.shop)
    assert answer.status_code == 200, answer.text
    secrets_sent = [query(redirect)["code"], query(redirect)["hmac"]]
    pull = {"shop": connected_shop.domain, "timestamp": str(int(time.time()))}
    signature = query_signature(pull)
    assert requests.get(f"{system.app_url}/fetch_stock", params={**pull, "hmac": signature}, timeout=10).ok
    secrets_sent.append(signature)

    def logged() -> str:
        text = web_log(system)
        return text if "/fetch_stock" in text.rsplit("/auth/callback", 1)[-1] else ""

    text = wait_for(logged, what="the requests in the access log")
    for secret in secrets_sent:
        assert secret not in text
    assert "hmac=" not in text and "code=" not in text


def test_clients_that_stop_mid_body_do_not_stop_healthz(system):
    port = int(system.app_url.rsplit(":", 1)[1])
    stalled = []
    try:
        for _ in range(24):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(
                b"POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"stalled": "'
            )
            stalled.append(conn)
        time.sleep(1)
        for _ in range(3):
            assert requests.get(f"{system.app_url}/healthz", timeout=5).status_code == 200
    finally:
        for conn in stalled:
            conn.close()


def test_json_error_answers_say_nosniff(connected_shop):
    system = connected_shop.system
    answers = [
        post_callback(system, connected_shop.domain, PING, "not-a-signature"),
        requests.post(f"{system.app_url}/api/fulfillment_orders/1/cancel", timeout=10),
        requests.get(f"{system.app_url}/no-such-page", timeout=10),
        requests.get(f"{system.app_url}/install", params={"shop": "evil.example"}, timeout=10),
    ]
    for response in answers:
        assert 400 <= response.status_code < 500
        assert response.headers["Content-Type"].startswith("application/json"), response.url
        assert response.json()["error"]
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.url


def test_a_signed_pull_older_than_the_window_is_refused(connected_shop):
    system = connected_shop.system
    fresh = {"shop": connected_shop.domain, "timestamp": str(int(time.time()))}
    stale = {"shop": connected_shop.domain, "timestamp": str(int(time.time()) - 3 * 24 * 3600)}
    for path in ("/fetch_stock", "/fetch_tracking_numbers"):
        ok = requests.get(f"{system.app_url}{path}", params={**fresh, "hmac": query_signature(fresh)}, timeout=10)
        old = requests.get(f"{system.app_url}{path}", params={**stale, "hmac": query_signature(stale)}, timeout=10)
        assert ok.status_code == 200, ok.text
        assert old.status_code == 401 and "too old" in old.json()["error"]


@pytest.fixture(scope="module")
def proxied_web(system, tmp_path_factory):
    """A second web process of the same system, set up as production behind one proxy with a metrics token."""
    from devstack.processes import Stack, free_port

    port = free_port()
    env = {**system.env, "TRUSTED_PROXIES": "1", "METRICS_TOKEN": "probe-metrics-token"}
    stack = Stack(env, tmp_path_factory.mktemp("proxied-web"))
    try:
        stack.web(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stack.stop()


def test_metrics_can_be_protected_by_a_token(system, proxied_web):
    assert requests.get(f"{system.app_url}/metrics", timeout=10).status_code == 200  # no token set: open
    refused = requests.get(f"{proxied_web}/metrics", timeout=10)
    assert refused.status_code == 401 and refused.headers["X-Content-Type-Options"] == "nosniff"
    wrong = requests.get(f"{proxied_web}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    scraped = requests.get(
        f"{proxied_web}/metrics", headers={"Authorization": "Bearer probe-metrics-token"}, timeout=10
    )
    assert scraped.status_code == 200 and "fulfillment_http_requests_total" in scraped.text


def test_behind_a_proxy_each_client_has_its_own_sign_in_limit(system, proxied_web):
    from fulfillment.accounts import create_operator

    email = f"proxied-{uuid.uuid4().hex[:8]}@warehouse.example"
    create_operator(system.context(), email, "the right password")
    behind = type("Behind", (), {"app_url": proxied_web})
    guesser, operator = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.20"}
    for _ in range(5):
        assert login_attempt(behind, email, "a wrong password", **guesser).status_code == 401
    assert login_attempt(behind, email, "the right password", **guesser).status_code == 429
    # The proxy tells them apart: the operator's own sign-in, from another address, is not held back.
    assert login_attempt(behind, email, "the right password", **operator).status_code == 302

    # Without a trusted proxy the header is the client's word, and a guesser cannot mint addresses with it.
    other = f"direct-{uuid.uuid4().hex[:8]}@warehouse.example"
    create_operator(system.context(), other, "the right password")
    for n in range(5):
        forged = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert login_attempt(system, other, "a wrong password", **forged).status_code == 401
    assert login_attempt(system, other, "the right password", **{"X-Forwarded-For": "192.0.2.99"}).status_code == 429


# --- fuzz: the endpoints the store calls never answer 5xx ----------------------------------------------------

FUZZ_SHOP = "fuzz-shop.myshopify.com"
GONE_SHOP = "fuzz-gone.myshopify.com"
# Ids far from those of the shops the running system makes in the same Redis, so the sweep markers the fuzzed
# callbacks leave (`fulfillment:sweep-pending:<id>:<scope>`) cannot hold back a real shop's sweep.
FUZZ_SHOP_ID = 7_000_001


class _NoQueue:
    """Stands in for Celery: the fuzzed callbacks must not put work on the queue the real workers take from."""

    def send_task(self, *args, **kwargs):
        return None


FUZZ_API_TOKEN = "fuzz-api-token"


@pytest.fixture(scope="module")
def fuzz_app(make_database, redis_url):
    from app import create_app

    config = Config(
        database_url=make_database(),
        redis_url=redis_url,
        shopify_api_secret=API_SECRET,
        shopify_api_key="test-api-key",
        app_url="http://127.0.0.1:9",
        store_base_url="http://127.0.0.1:9",  # nothing listens: no fuzzed request may reach a store
        operator_api_token=FUZZ_API_TOKEN,
    )
    app = create_app(config)
    app.extensions["celery"] = _NoQueue()
    ctx = app.extensions["fulfillment"]
    with ctx.db.transaction() as session:
        session.add(Shop(id=FUZZ_SHOP_ID, domain=FUZZ_SHOP, settings={}))
        session.add(Shop(id=FUZZ_SHOP_ID + 1, domain=GONE_SHOP, settings={}))
    save_token(ctx, FUZZ_SHOP, "shpat_fuzz")
    yield app, ctx
    client = redis.Redis.from_url(redis_url)
    for shop_id in (FUZZ_SHOP_ID, FUZZ_SHOP_ID + 1):
        client.delete(*(f"fulfillment:sweep-pending:{shop_id}:{scope}" for scope in ("requests", "full", "idle")))


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app):
    app, ctx = fuzz_app
    return app.test_client(), ctx


def our_shop_is_active(ctx) -> bool:
    with ctx.db.transaction() as session:
        return session.get(Shop, FUZZ_SHOP_ID).active


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
shops = st.one_of(
    st.sampled_from([FUZZ_SHOP, GONE_SHOP, "unknown-shop.myshopify.com", FUZZ_SHOP.upper(), ""]), header_text
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
json_bodies = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["FULFILLMENT_REQUEST", "CANCELLATION_REQUEST", "OTHER"])},
        optional={"orders_to_redact": json_values, "orders_requested": json_values, "data_request": json_values},
    ),
    json_values,
).map(lambda value: json.dumps(value).encode())
bodies = st.one_of(json_bodies, st.binary(max_size=300))
KNOWN_TOPICS = (
    "app/uninstalled",
    "shop/redact",
    "customers/redact",
    "customers/data_request",
    "fulfillment_orders/cancelled",
    "fulfillment_orders/moved",
)
topics = st.one_of(st.sampled_from([*KNOWN_TOPICS, ""]), header_text)
# The privacy topics' fields, holding anything JSON can.
payloads = st.fixed_dictionaries(
    {},
    optional={
        "orders_to_redact": json_values,
        "orders_requested": json_values,
        "data_request": json_values,
        "customer": json_values,
    },
).map(lambda value: json.dumps(value).encode())
signatures = st.sampled_from(["valid", "wrong-secret", "garbage", "missing"])


def _signed_headers(body: bytes, how: str, shop: str, extra: dict[str, str]) -> dict[str, str]:
    headers = {"X-Shopify-Shop-Domain": shop, **extra}
    if how == "valid":
        headers["X-Shopify-Hmac-Sha256"] = body_signature(body)
    elif how == "wrong-secret":
        headers["X-Shopify-Hmac-Sha256"] = body_signature(body, WRONG_SECRET)
    elif how == "garbage":
        headers["X-Shopify-Hmac-Sha256"] = "%%%" + body.hex()[:20]
    return headers


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


known_shops = st.sampled_from([FUZZ_SHOP, GONE_SHOP, FUZZ_SHOP.upper()])
webhook_ids = st.one_of(st.none(), header_text)


def _post_webhook(client, body: bytes, how: str, shop: str, topic: str, webhook_id: str | None):
    extra = {"X-Shopify-Topic": topic, "Content-Type": "application/json"}
    if webhook_id is not None:
        extra["X-Shopify-Webhook-Id"] = webhook_id
    return client.post("/webhooks", data=body, headers=_signed_headers(body, how, shop, extra))


def _post_notification(client, body: bytes, how: str, shop: str, webhook_id: str | None):
    extra = {"Content-Type": "application/json"}
    if webhook_id is not None:
        extra["X-Shopify-Webhook-Id"] = webhook_id
    return client.post("/fulfillment_order_notification", data=body, headers=_signed_headers(body, how, shop, extra))


@FUZZ
@given(body=bodies, how=signatures, shop=shops, topic=topics, webhook_id=webhook_ids)
def test_fuzzed_webhooks_never_get_a_5xx(fuzz_client, body, how, shop, topic, webhook_id):
    client, _ctx = fuzz_client
    response = _post_webhook(client, body, how, shop, topic, webhook_id)
    assert response.status_code < 500, response.get_data(as_text=True)
    if how != "valid":
        assert response.status_code == 401


@pytest.mark.parametrize("topic", [*KNOWN_TOPICS, "orders/create"])
@FUZZ
@given(body=st.one_of(payloads, bodies), shop=known_shops, webhook_id=webhook_ids)
def test_fuzzed_webhooks_signed_for_a_known_shop_never_get_a_5xx(fuzz_client, topic, body, shop, webhook_id):
    # Past the signature and the shop: what each topic's handler makes of any body.
    client, ctx = fuzz_client
    if not our_shop_is_active(ctx):
        save_token(ctx, FUZZ_SHOP, "shpat_fuzz")  # a fuzzed app/uninstalled got through: install again
    response = _post_webhook(client, body, "valid", shop, topic, webhook_id)
    assert response.status_code < 500, response.get_data(as_text=True)


@FUZZ
@given(body=bodies, how=signatures, shop=shops, webhook_id=webhook_ids)
def test_fuzzed_fulfillment_order_notifications_never_get_a_5xx(fuzz_client, body, how, shop, webhook_id):
    client, _ctx = fuzz_client
    response = _post_notification(client, body, how, shop, webhook_id)
    assert response.status_code < 500, response.get_data(as_text=True)
    if how != "valid":
        assert response.status_code == 401


@FUZZ
@given(body=bodies, shop=known_shops, webhook_id=webhook_ids)
def test_fuzzed_notifications_signed_for_a_known_shop_never_get_a_5xx(fuzz_client, body, shop, webhook_id):
    client, ctx = fuzz_client
    if not our_shop_is_active(ctx):
        save_token(ctx, FUZZ_SHOP, "shpat_fuzz")
    response = _post_notification(client, body, "valid", shop, webhook_id)
    assert response.status_code < 500, response.get_data(as_text=True)


@FUZZ
@given(
    path=st.sampled_from(["/fetch_stock", "/fetch_stock.json", "/fetch_tracking_numbers"]),
    params=st.lists(st.tuples(st.sampled_from(["shop", "sku", "order_names[]", "hmac", "x"]), header_text), max_size=5),
    shop=shops,
    how=signatures,
)
def test_fuzzed_store_pulls_never_get_a_5xx(fuzz_client, path, params, shop, how):
    fuzz_client, _ctx = fuzz_client
    query_string = urlencode([("shop", shop), *params])
    headers = _signed_headers(query_string.encode(), how, shop, {})
    response = fuzz_client.get(f"{path}?{query_string}", headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["code", "shop", "state", "timestamp", "host", "hmac", "extra"]), header_text, max_size=7
    ),
    shop=shops,
    sign=st.booleans(),
)
def test_fuzzed_oauth_redirects_never_get_a_5xx(fuzz_client, params, shop, sign):
    fuzz_client, _ctx = fuzz_client
    params = {**params, "shop": shop}
    if sign:
        params["hmac"] = query_signature(params)
    response = fuzz_client.get("/auth/callback", query_string=params)
    # No state we issued is among them, so each is refused before any call to a store.
    assert response.status_code in (400, 403), response.get_data(as_text=True)


# --- fuzz: nested and numeric extremes, the warehouse API and the dashboard never answer 5xx -------------------

long_digits = st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n)
numbers = st.one_of(
    st.integers().map(str),
    long_digits,
    long_digits.map(lambda d: "-" + d),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-(10**30), 10**30), st.integers(-100_000, 100_000)),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0.0", "0.1e-99999", "1" + "0" * 400 + ".5"]),
)
OPENERS = {"[": "]", '{"a":': "}", '{"orders_to_redact":': "}", '{"kind": "FULFILLMENT_REQUEST", "x":': "}"}


def _nest(depth: int, opener: str, leaf: str, closed: bool) -> str:
    return opener * depth + leaf + (OPENERS[opener] * depth if closed else "")


nestings = st.builds(
    _nest, st.integers(min_value=1, max_value=20_000), st.sampled_from(sorted(OPENERS)), numbers, st.booleans()
)
extreme_bodies = st.one_of(
    numbers.map(lambda n: f'{{"kind": "FULFILLMENT_REQUEST", "n": {n}}}'),
    # Well-formed but for the numbers, for the shop that has uninstalled (whose uninstall needs no store to confirm).
    numbers.map(lambda n: f'{{"myshopify_domain": "{GONE_SHOP}", "id": {n}}}'),
    numbers.map(lambda n: f'{{"shop_domain": "{GONE_SHOP}", "shop_id": {n}, "orders_to_redact": [{n}]}}'),
    numbers.map(lambda n: f'{{"message": {n}}}'),
    nestings,
    numbers,
).map(str.encode)


@FUZZ
@given(body=extreme_bodies, topic=st.sampled_from([*KNOWN_TOPICS, "orders/create"]))
def test_fuzzed_nested_and_numeric_extremes_on_the_store_endpoints_never_get_a_5xx(fuzz_client, body, topic):
    client, ctx = fuzz_client
    if not our_shop_is_active(ctx):
        save_token(ctx, FUZZ_SHOP, "shpat_fuzz")
    for response in (
        _post_webhook(client, body, "valid", FUZZ_SHOP, topic, None),
        _post_webhook(client, body, "valid", GONE_SHOP, topic, None),
        _post_notification(client, body, "valid", FUZZ_SHOP, None),
    ):
        assert response.status_code < 500, response.get_data(as_text=True)[:300]


path_ids = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    long_digits,
    st.sampled_from([str(FUZZ_SHOP_ID), "1", "0", "-1", "9223372036854775807", "9223372036854775808"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=30).map(lambda t: quote(t, safe="")),
)


@FUZZ
@given(
    record_id=path_ids, body=st.one_of(extreme_bodies, json_bodies, st.binary(max_size=200)), authorized=st.booleans()
)
def test_fuzzed_warehouse_api_cancels_never_get_a_5xx(fuzz_client, record_id, body, authorized):
    client, _ctx = fuzz_client
    headers = {"Content-Type": "application/json"}
    if authorized:
        headers["Authorization"] = f"Bearer {FUZZ_API_TOKEN}"
    response = client.post(f"/api/fulfillment_orders/{record_id}/cancel", data=body, headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if not authorized:
        assert response.status_code in (401, 404)


@pytest.fixture(scope="module")
def dashboard_client(fuzz_app):
    """A test client signed in to the fuzzed app's dashboard, and its CSRF token."""
    from fulfillment.accounts import create_operator

    app, ctx = fuzz_app
    create_operator(ctx, "fuzz-operator@warehouse.example", "a long fuzz password")
    client = app.test_client()
    page = client.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post(
        "/dashboard/login",
        data={"email": "fuzz-operator@warehouse.example", "password": "a long fuzz password", "csrf_token": token},
    )
    assert answer.status_code == 302
    queue = client.get("/dashboard/")
    assert queue.status_code == 200  # signed in: the fuzzed requests reach the pages, not the sign-in redirect
    page = queue.get_data(as_text=True)
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


form_values = st.one_of(header_text, long_digits, numbers, st.sampled_from(["", "1", "0", "-5", "accept", "reject"]))
form_fields = st.sampled_from(
    [
        "message",
        "reason",
        "line_store_id",
        "line_message",
        "package_count",
        "line_id",
        "qty-1-1",
        "tracking-1",
        "carrier",
        "decision",
        "sku",
        "on_hand",
        "handling_days",
        "blocked_countries",
        "ineligible_skus",
        "review_requests",
    ]
)


@FUZZ
@given(
    path=st.sampled_from(
        ["/dashboard/fulfillment-orders/{id}", "/dashboard/shops/{id}/settings", "/dashboard/", "/dashboard/stock"]
    ),
    record_id=path_ids,
    params=st.lists(st.tuples(st.sampled_from(["view", "shop", "packages"]), form_values), max_size=4),
)
def test_fuzzed_dashboard_pages_never_get_a_5xx(dashboard_client, path, record_id, params):
    client, _token = dashboard_client
    response = client.get(path.format(id=record_id), query_string=[("shop", record_id), *params])
    assert response.status_code < 500, response.get_data(as_text=True)[:300]


@FUZZ
@given(
    action=st.sampled_from(
        [
            "/dashboard/fulfillment-orders/{id}/accept",
            "/dashboard/fulfillment-orders/{id}/reject",
            "/dashboard/fulfillment-orders/{id}/pack",
            "/dashboard/fulfillment-orders/{id}/cancellation",
            "/dashboard/shops/{id}/settings",
            "/dashboard/stock",
        ]
    ),
    record_id=path_ids,
    form=st.lists(st.tuples(form_fields, form_values), max_size=8),
)
def test_fuzzed_dashboard_actions_never_get_a_5xx(dashboard_client, action, record_id, form):
    client, token = dashboard_client
    response = client.post(action.format(id=record_id), data=MultiDict([*form, ("csrf_token", token)]))
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
