"""The install's checks before anything leaves the process, the token exchange, key rotation, and what the
privacy webhooks do to our records. Every outbound HTTP call is intercepted with `responses`."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import pytest
import responses
import shopify
from cryptography.fernet import Fernet
from sqlalchemy import select

from fulfillment import install, webhooks
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, MerchantRequest, Shop
from fulfillment.security import TokenCipher
from fulfillment.shops import save_token

SECRET = "unit-secret"
SHOP = "unit-shop.myshopify.com"
STORE = "http://store.test"
NOT_SHOPS = [
    "evil.example.com",
    "unit-shop.myshopify.com.evil.example",
    "unit-shop.myshopify.com@evil.example",
    "evil.example/unit-shop.myshopify.com",
    "https://unit-shop.myshopify.com",
    "unit-shop.myshopify.com\n",
    "-unit-shop.myshopify.com",
    "../unit-shop.myshopify.com",
    "",
]


class MemoryNonces:
    def __init__(self) -> None:
        self.issued: dict[str, str] = {}

    def issue(self, shop: str) -> str:
        nonce = f"nonce-{len(self.issued)}"
        self.issued[nonce] = shop
        return nonce

    def consume(self, nonce: str) -> str | None:
        return self.issued.pop(nonce, None)


def keys(n: int) -> list[str]:
    return [Fernet.generate_key().decode() for _ in range(n)]


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(
        Config(
            database_url=sqlite_url, shopify_api_secret=SECRET, store_base_url=STORE, token_encryption_key=keys(1)[0]
        )
    )
    yield context
    context.db.dispose()


def signed(params: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}


def redirect(nonces: MemoryNonces, shop: str = SHOP, **changes: str) -> dict[str, str]:
    params = {"code": "c0de", "shop": shop, "state": nonces.issue(shop), "timestamp": str(int(time.time()))}
    return signed({**params, **changes})


# --- nothing leaves for a shop that is not a shop ----------------------------------------------------------


@pytest.mark.parametrize("shop", NOT_SHOPS)
def test_a_shop_that_is_not_a_myshopify_domain_makes_no_outbound_request(ctx, shop):
    nonces = MemoryNonces()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as intercepted:
        with pytest.raises(install.InstallRefused):
            install.authorize_url(ctx, shop, nonces)
        with pytest.raises(install.InstallRefused, match="myshopify.com"):
            install.complete(ctx, redirect(nonces, shop=shop), nonces)
        assert len(intercepted.calls) == 0
    assert nonces.issued == {"nonce-0": shop}  # only the one the test made; authorize_url issued none


def test_the_interception_sees_the_one_call_a_good_redirect_makes(ctx):
    # The control for the test above: with a real shop the code exchange does go out, and is seen.
    nonces = MemoryNonces()
    with responses.RequestsMock() as intercepted:
        intercepted.post(f"{STORE}/store/{SHOP}/admin/oauth/access_token", status=400, json={"error": "x"})
        with pytest.raises(install.InstallFailed, match="refused the code"):
            install.complete(ctx, redirect(nonces), nonces)
        (call,) = intercepted.calls
        assert b'"code": "c0de"' in call.request.body


# --- the redirect's checks --------------------------------------------------------------------------------


def test_authorize_url_asks_our_scopes_and_redirect_with_a_fresh_state(ctx):
    nonces = MemoryNonces()
    url = install.authorize_url(ctx, "Unit-Shop.myshopify.com", nonces)
    assert url.startswith(f"{STORE}/store/{SHOP}/admin/oauth/authorize?")
    assert "state=nonce-0" in url and "redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fauth%2Fcallback" in url
    assert nonces.issued == {"nonce-0": SHOP}


@pytest.mark.parametrize(
    "forge",
    [
        lambda p: {**p, "code": "other"},
        lambda p: {**p, "hmac": "0" * 64},
        lambda p: {k: v for k, v in p.items() if k != "hmac"},
        lambda p: signed({k: v for k, v in p.items() if k != "hmac"}, secret="wrong"),
    ],
)
def test_a_forged_redirect_is_refused_and_does_not_use_up_the_state(ctx, forge):
    nonces = MemoryNonces()
    genuine = redirect(nonces)
    with pytest.raises(install.InstallRefused, match="hmac"):
        install.verify_redirect(ctx, forge(genuine), nonces)
    assert install.verify_redirect(ctx, genuine, nonces) == SHOP


def test_a_redirect_the_store_signs_with_delimiters_in_its_values_is_accepted(ctx, monkeypatch):
    # Signed by the store's Python library, with `&`, `%` and `=` in values and a redirect URI query of its own
    # (`from`); a naive `k=v&...` check would refuse it.
    monkeypatch.setattr(shopify.Session, "secret", SECRET)
    nonces = MemoryNonces()
    query = [
        ("from", "a&b=c%26"),
        ("code", "c0de"),
        ("host", "YWRtaW4=%"),
        ("shop", SHOP),
        ("state", nonces.issue(SHOP)),
        ("timestamp", str(int(time.time()))),
    ]
    library_hmac = shopify.Session.calculate_hmac(dict(query))
    assert install.verify_redirect(ctx, [*query, ("hmac", library_hmac)], nonces) == SHOP


def test_a_state_is_good_once_and_only_for_its_shop(ctx):
    nonces = MemoryNonces()
    genuine = redirect(nonces)
    assert install.verify_redirect(ctx, genuine, nonces) == SHOP
    with pytest.raises(install.InstallRefused, match="state"):
        install.verify_redirect(ctx, genuine, nonces)
    foreign = signed({"code": "c", "shop": "other.myshopify.com", "state": nonces.issue(SHOP), "timestamp": "0"})
    with pytest.raises(install.InstallRefused, match="too old"):
        install.verify_redirect(ctx, foreign, nonces)
    foreign = signed(
        {"code": "c", "shop": "other.myshopify.com", "state": nonces.issue(SHOP), "timestamp": str(int(time.time()))}
    )
    with pytest.raises(install.InstallRefused, match="state"):
        install.verify_redirect(ctx, foreign, nonces)


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [(200, {"scope": "x"}, "no access_token"), (200, ["not", "an", "object"], "no access_token"), (503, {}, "503")],
)
def test_a_bad_token_answer_is_an_install_failure(ctx, status, body, match):
    with responses.RequestsMock() as intercepted:
        intercepted.post(f"{STORE}/store/{SHOP}/admin/oauth/access_token", status=status, json=body)
        with pytest.raises(install.InstallFailed, match=match):
            install.exchange_code(ctx, SHOP, "c0de")


def test_an_unreachable_store_is_an_install_failure(ctx):
    # Nothing registered: the interception refuses the connection.
    with responses.RequestsMock(), pytest.raises(install.InstallFailed, match="could not be reached"):
        install.exchange_code(ctx, SHOP, "c0de")


# --- setting the shop up: the store's fulfillment service ids ----------------------------------------------

# The store gives an app's fulfillment service an id with a `?id=true` suffix, in every answer but
# fulfillmentServiceDelete's `deletedId`; we keep it as given and send it back as given.
SERVICE_ID = "gid://shopify/FulfillmentService/71889420594?id=true"
SERVICE_LOCATION = "gid://shopify/Location/112677159218"


def store_answers(services: list[dict]) -> tuple[list[dict], object]:
    """A stand-in for the store's GraphQL endpoint for the set-up calls; returns (requests seen, callback)."""
    seen: list[dict] = []

    def answer(request):
        body = json.loads(request.body)
        name = re.search(r"(?:query|mutation)\s+(\w+)", body["query"]).group(1)
        seen.append({"operation": name, "variables": body.get("variables") or {}})
        variables = body.get("variables") or {}
        service = {
            "id": variables.get("id", SERVICE_ID),
            "serviceName": variables.get("name", "Warehouse Fulfillment"),
            "callbackUrl": variables.get("callbackUrl"),
            "location": {"id": SERVICE_LOCATION},
        }
        data = {
            "FulfillmentServices": {"shop": {"fulfillmentServices": services}},
            "FulfillmentServiceCreate": {"fulfillmentServiceCreate": {"fulfillmentService": service, "userErrors": []}},
            "FulfillmentServiceUpdate": {"fulfillmentServiceUpdate": {"fulfillmentService": service, "userErrors": []}},
            "WebhookSubscriptions": {
                "webhookSubscriptions": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
            },
            "WebhookSubscriptionCreate": {
                "webhookSubscriptionCreate": {
                    "webhookSubscription": {"id": "gid://shopify/WebhookSubscription/1", "topic": "X", "uri": "u"},
                    "userErrors": [],
                }
            },
        }[name]
        return 200, {}, json.dumps({"data": data})

    return seen, answer


@pytest.mark.parametrize("installed_before", [False, True])
def test_set_up_keeps_the_stores_service_id_with_its_suffix(ctx, installed_before):
    shop_id = save_token(ctx, SHOP, "shpat_unit", install.SCOPES)
    listed = [{"id": SERVICE_ID, "serviceName": "Warehouse Fulfillment", "callbackUrl": None, "location": None}]
    seen, answer = store_answers(listed if installed_before else [])
    with responses.RequestsMock() as intercepted:
        intercepted.add_callback(
            responses.POST, re.compile(rf"{STORE}/store/{SHOP}/admin/api/.*/graphql.json"), callback=answer
        )
        install.set_up(ctx, shop_id)
    with ctx.db.transaction() as session:
        shop = session.get(Shop, shop_id)
        assert (shop.fulfillment_service_id, shop.location_id) == (SERVICE_ID, SERVICE_LOCATION)
    names = [b["operation"] for b in seen]
    if installed_before:
        # A reinstall updates the service it found, under the id the store listed it with.
        assert "FulfillmentServiceCreate" not in names
        (update,) = [b for b in seen if b["operation"] == "FulfillmentServiceUpdate"]
        assert update["variables"]["id"] == SERVICE_ID
    else:
        assert "FulfillmentServiceUpdate" not in names and names.count("FulfillmentServiceCreate") == 1


# --- rotating the token key ------------------------------------------------------------------------------


def test_rotation_re_encrypts_every_token_with_the_first_key(sqlite_url):
    old, new = keys(2)
    before = Context.from_config(Config(database_url=sqlite_url, token_encryption_key=old))
    ids = [save_token(before, f"shop-{i}.myshopify.com", f"shpat_{i}") for i in range(3)]
    after = Context.from_config(Config(database_url=sqlite_url, token_encryption_key=f"{new},{old}"))

    assert install.rotate_token_key(after) == 3

    only_new = TokenCipher([new])
    with after.db.transaction() as session:
        stored = {s.id: s.access_token_ciphertext for s in session.scalars(select(Shop))}
    assert {i: only_new.decrypt(stored[i]) for i in ids} == {i: f"shpat_{n}" for n, i in enumerate(ids)}
    with pytest.raises(ValueError):
        TokenCipher([old]).decrypt(stored[ids[0]])


def test_rotation_refuses_when_a_token_cannot_be_read_and_changes_nothing(sqlite_url):
    first, second, unrelated = keys(3)
    save_token(Context.from_config(Config(database_url=sqlite_url, token_encryption_key=first)), "a.myshopify.com", "t")
    save_token(
        Context.from_config(Config(database_url=sqlite_url, token_encryption_key=unrelated)), "b.myshopify.com", "u"
    )
    ctx = Context.from_config(Config(database_url=sqlite_url, token_encryption_key=f"{second},{first}"))
    with ctx.db.transaction() as session:
        before = {s.domain: s.access_token_ciphertext for s in session.scalars(select(Shop))}

    with pytest.raises(ValueError, match="b.myshopify.com"):
        install.rotate_token_key(ctx)

    with ctx.db.transaction() as session:
        assert {s.domain: s.access_token_ciphertext for s in session.scalars(select(Shop))} == before


# --- what the privacy webhooks do --------------------------------------------------------------------------


@pytest.fixture
def shop_with_orders(ctx):
    shop_id = save_token(ctx, SHOP, "tok")
    with ctx.db.transaction() as session:
        for number in (1, 2):
            record = FulfillmentOrder(
                shop_id=shop_id,
                store_id=f"gid://shopify/FulfillmentOrder/{number}",
                order_id=f"gid://shopify/Order/{100 + number}",
                order_name=f"#100{number}",
                state="shipped",
                destination={"first_name": "Ada", "address1": f"{number} Street"},
            )
            record.merchant_requests.append(MerchantRequest(kind="FULFILLMENT_REQUEST", message="Ada's", sent_at="t"))
            session.add(record)
    return shop_id


def destinations(ctx) -> dict[str, dict | None]:
    with ctx.db.transaction() as session:
        return {r.order_id: r.destination for r in session.scalars(select(FulfillmentOrder))}


@pytest.mark.parametrize("orders", [5, "101", {"101": 1}, [None, True, 1.5, [101], {"id": 101}], None])
def test_customer_redact_with_malformed_order_ids_touches_nothing(ctx, shop_with_orders, orders):
    outcome = webhooks.handle(ctx, shop_with_orders, "customers/redact", {"orders_to_redact": orders})
    assert outcome == webhooks.Outcome()
    assert all(d is not None for d in destinations(ctx).values())


def test_customer_redact_takes_numbers_and_gids(ctx, shop_with_orders):
    webhooks.handle(ctx, shop_with_orders, "customers/redact", {"orders_to_redact": ["gid://shopify/Order/101"]})
    assert destinations(ctx) == {
        "gid://shopify/Order/101": None,
        "gid://shopify/Order/102": {"first_name": "Ada", "address1": "2 Street"},
    }
    webhooks.handle(ctx, shop_with_orders, "customers/redact", {"orders_to_redact": [102]})
    assert set(destinations(ctx).values()) == {None}


def test_data_request_reports_addresses_and_notes_and_nothing_of_other_shops(ctx, shop_with_orders):
    other = save_token(ctx, "other.myshopify.com", "tok")
    outcome = webhooks.handle(ctx, other, "customers/data_request", {"orders_requested": [101, 102]})
    assert outcome.report == {"orders": [], "fields": []}

    outcome = webhooks.handle(ctx, shop_with_orders, "customers/data_request", {"orders_requested": [101]})
    (held,) = outcome.report["orders"]
    assert held["order_name"] == "#1001" and held["destination"]["address1"] == "1 Street"
    assert held["merchant_notes"] == ["Ada's"]
    assert outcome.report["fields"] == ["destination.address1", "destination.first_name", "merchant_notes"]


def the_store_refuses_our_token(intercepted: responses.RequestsMock) -> None:
    """What the store answers once the app is uninstalled: the destructive topics are confirmed by it."""
    intercepted.post(f"{STORE}/store/{SHOP}/admin/api/2026-07/graphql.json", status=401, json={"errors": "x"})


def test_shop_redact_empties_every_order_of_the_shop(ctx, shop_with_orders):
    with responses.RequestsMock() as intercepted:
        the_store_refuses_our_token(intercepted)
        webhooks.handle(ctx, shop_with_orders, "shop/redact", {"shop_domain": SHOP})
    assert set(destinations(ctx).values()) == {None}
    with ctx.db.transaction() as session:
        assert set(session.scalars(select(MerchantRequest.message))) == {None}


def test_uninstall_forgets_the_token_and_deactivates_the_shop(ctx, shop_with_orders):
    with responses.RequestsMock() as intercepted:
        the_store_refuses_our_token(intercepted)
        webhooks.handle(ctx, shop_with_orders, "app/uninstalled", {})
    with ctx.db.transaction() as session:
        shop = session.get(Shop, shop_with_orders)
        assert shop.access_token_ciphertext is None and not shop.active
