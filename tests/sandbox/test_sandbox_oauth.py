"""The store's side of the install: the authorize page at the store's own paths (the shop from the Host header)
and under `/store/<shop>`, the redirect signed over every parameter as the store's libraries sign it (held to the
`ShopifyAPI` package), the single-use code exchange, and one installation per app and shop."""

from __future__ import annotations

import time
import urllib.request
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest
import requests
import shopify
from hypothesis import given
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from sandbox.oauth import sign_query

SECRET = "sandbox-test-secret"
SHOP = "demo.myshopify.com"
FORM = {
    "client_id": "test-key",
    "scope": "write_fulfillments,read_orders",
    "redirect_uri": "https://app.example/auth/callback",
    "state": "nonce-1",
}
STORE_PARAMS = {"code", "hmac", "host", "shop", "state", "timestamp"}


@pytest.fixture
def library(monkeypatch):
    """The store's official Python library, configured as our app."""
    monkeypatch.setattr(shopify.Session, "api_key", "test-key")
    monkeypatch.setattr(shopify.Session, "secret", SECRET)
    return shopify.Session


def library_params(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """Parameters as the library takes them: one value per name, a list for `name[]`."""
    params: dict[str, str | list[str]] = {}
    for name, value in pairs:
        if name.endswith("[]"):
            params.setdefault(name, []).append(value)  # type: ignore[union-attr]
        else:
            params[name] = value
    return params


def approve(h, form: dict[str, str], path: str = f"/store/{SHOP}/admin/oauth/authorize", **kwargs) -> str:
    """Press Install; returns the redirect to the app."""
    response = h.client.post(path, data=form, **kwargs)
    assert response.status_code == 302, response.data
    return response.headers["Location"]


def exchange(h, code: str, path: str = f"/store/{SHOP}/admin/oauth/access_token", **kwargs):
    return h.client.post(path, json={"client_id": "test-key", "client_secret": SECRET, "code": code}, **kwargs)


def test_install_flow(h, library):
    page = h.client.get(f"/store/{h.shop}/admin/oauth/authorize", query_string=FORM)
    assert page.status_code == 200 and b'id="install"' in page.data and b"read_orders" in page.data
    target = urlsplit(approve(h, FORM))
    assert f"{target.scheme}://{target.netloc}{target.path}" == FORM["redirect_uri"]
    params = dict(parse_qsl(target.query))
    assert set(params) == STORE_PARAMS
    assert params["shop"] == h.shop and params["state"] == "nonce-1"
    assert library.validate_params(params)

    granted = exchange(h, params["code"])
    assert granted.status_code == 200
    token = granted.get_json()["access_token"]
    assert granted.get_json()["scope"] == "write_fulfillments,read_orders"
    assert "errors" not in h.gql("{ shop { myshopifyDomain } }", token=token)
    # Codes are single use.
    assert exchange(h, params["code"]).status_code == 400


def test_wrong_client_is_refused(h):
    assert (
        h.client.get(f"/store/{h.shop}/admin/oauth/authorize", query_string={**FORM, "client_id": "other"}).status_code
        == 400
    )
    bad = {"client_id": "test-key", "client_secret": "wrong", "code": "x"}
    assert h.client.post(f"/store/{h.shop}/admin/oauth/access_token", json=bad).status_code == 401


def test_a_malformed_redirect_uri_is_refused_not_a_server_error(h):
    response = h.client.post(f"/store/{h.shop}/admin/oauth/authorize", data={**FORM, "redirect_uri": "http://[::1"})
    assert response.status_code == 400


# --- the store's own paths, the shop from the Host header ---------------------------------------------------


def test_the_store_paths_take_the_shop_from_the_host_header(h, library):
    at_shop = {"base_url": f"https://{SHOP}"}
    page = h.client.get("/admin/oauth/authorize", query_string=FORM, **at_shop)
    assert page.status_code == 200 and SHOP.encode() in page.data
    params = dict(parse_qsl(urlsplit(approve(h, FORM, "/admin/oauth/authorize", **at_shop)).query))
    assert params["shop"] == SHOP and library.validate_params(params)
    granted = exchange(h, params["code"], "/admin/oauth/access_token", **at_shop)
    assert granted.status_code == 200 and granted.get_json()["access_token"]


def test_a_host_that_is_no_shop_is_not_found(h):
    for base_url in ("https://unknown.myshopify.com", "http://127.0.0.1:8700"):
        assert h.client.get("/admin/oauth/authorize", query_string=FORM, base_url=base_url).status_code == 404
        assert h.client.post("/admin/oauth/authorize", data=FORM, base_url=base_url).status_code == 404
    # A code is for the shop it was issued on.
    params = dict(parse_qsl(urlsplit(approve(h, FORM)).query))
    elsewhere = exchange(h, params["code"], "/admin/oauth/access_token", base_url="https://other.myshopify.com")
    assert elsewhere.status_code == 400
    assert exchange(h, params["code"]).status_code == 400  # and it was used up


# --- the signature: every parameter, escaped as the store's libraries escape --------------------------------

TRICKY_STATES = {
    "ampersand": "a&b",
    "ampersand-pair": "1&shop=evil.myshopify.com",
    "percent": "100%",
    "escaped-ampersand": "a%26b",
    "equals": "abc==",
    "space": "two words",
    "plus": "a+b",
    "non-ascii": "Grüße, 東京 ✓",
}


@pytest.mark.parametrize("state", TRICKY_STATES.values(), ids=TRICKY_STATES.keys())
def test_the_redirect_with_a_tricky_state_is_one_the_library_accepts(h, library, state):
    target = urlsplit(approve(h, {**FORM, "state": state}))
    params = dict(parse_qsl(target.query, keep_blank_values=True))
    assert params["state"] == state
    assert library.validate_params(params)
    assert not library.validate_params({**params, "state": state + "x"})


def test_the_redirect_uris_own_query_is_kept_and_signed(h, library):
    own = "from=store&next=%2Forders%3Fa%3D1%26b%3D2&a%3Db=%25&ids[]=1&ids[]=2&code=mine&hmac=mine"
    target = urlsplit(approve(h, {**FORM, "redirect_uri": f"{FORM['redirect_uri']}?{own}"}))
    assert f"{target.scheme}://{target.netloc}{target.path}" == FORM["redirect_uri"]
    pairs = parse_qsl(target.query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    # The store's names are the store's: the redirect URI's `code` and `hmac` are not sent twice.
    assert sorted(names) == sorted(["from", "next", "a=b", "ids[]", "ids[]", *STORE_PARAMS])
    params = library_params(pairs)
    assert params["next"] == "/orders?a=1&b=2" and params["a=b"] == "%" and params["ids[]"] == ["1", "2"]
    assert params["code"] != "mine"
    assert library.validate_params(params)
    # Each of the redirect URI's parameters is covered.
    for name, changed in (("from", "elsewhere"), ("next", "/orders?a=1"), ("a=b", "%25"), ("ids[]", ["1"])):
        assert not library.validate_hmac({**params, name: changed})
    assert not library.validate_hmac({k: v for k, v in params.items() if k != "from"})


SIGNED = {
    "plain": [("code", "c0de"), ("shop", SHOP), ("timestamp", "1337178173")],
    "delimiters": [("state", "a&b=c%26d"), ("a=b&c%", "v"), ("shop", SHOP)],
    "spaces-and-non-ascii": [("state", "Grüße aus 東京"), ("x y", "z w")],
    "name-prefixes": [("a", "1"), ("a-b", "2"), ("a_b", "3")],
    "lists": [("ids[]", "1"), ("ids[]", "2 3"), ("ids[]", "é&"), ("shop", SHOP)],
    "signature-and-hmac": [("signature", "legacy"), ("hmac", "left out"), ("shop", SHOP)],
}


@pytest.mark.parametrize("pairs", SIGNED.values(), ids=SIGNED.keys())
def test_the_sandboxs_signature_equals_the_librarys(library, pairs):
    assert sign_query(SECRET, pairs) == library.calculate_hmac(library_params(pairs))


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(pairs=st.lists(st.tuples(text.filter(lambda name: not name.endswith("]")), text), max_size=6))
def test_any_parameters_sign_as_the_library_signs_them(pairs):
    unique = list(dict(pairs).items())  # the library takes one value per name
    before, shopify.Session.secret = shopify.Session.secret, SECRET
    try:
        assert sign_query(SECRET, unique) == shopify.Session.calculate_hmac(dict(unique))
    finally:
        shopify.Session.secret = before


# --- over real HTTP, with the library's own helpers --------------------------------------------------------


class ToSandbox(HTTPAdapter):
    """Sends what is addressed to `https://{shop}` to the sandbox, keeping the shop in the Host header."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.netloc = urlsplit(base_url).netloc

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(("http", self.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kwargs)


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value") or ""


def test_the_librarys_permission_url_and_token_request_complete_an_install(h, served, library, monkeypatch):
    session = shopify.Session(SHOP, "2026-07")
    state = f"st&te=%26 ✓ {time.time()}"
    url = session.create_permission_url(
        ["write_fulfillments", "read_orders"], "https://app.example/auth/callback?from=library", state=state
    )
    assert url.startswith(f"https://{SHOP}/admin/oauth/authorize?")
    browser = requests.Session()
    browser.mount(f"https://{SHOP}/", ToSandbox(served))

    page = browser.get(url, timeout=10)
    assert page.status_code == 200, page.text
    form = _Form()
    form.feed(page.text)
    assert form.fields["state"] == state and form.fields["client_id"] == "test-key"
    pressed = browser.post(url, data=form.fields, allow_redirects=False, timeout=10)
    assert pressed.status_code == 302, pressed.text
    target = urlsplit(pressed.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://app.example/auth/callback"
    params = dict(parse_qsl(target.query, keep_blank_values=True))
    assert params["from"] == "library" and params["state"] == state and params["shop"] == SHOP
    assert library.validate_params(params)

    # The library's token request (urllib, to https://{shop}/admin/oauth/access_token), sent to the sandbox.
    real_urlopen = urllib.request.urlopen

    def to_sandbox(request, *args, **kwargs):
        parts = urlsplit(request.full_url)
        local = urllib.request.Request(
            urlunsplit(("http", urlsplit(served).netloc, parts.path, parts.query, "")),
            data=request.data,
            headers={"Host": parts.netloc},
        )
        return real_urlopen(local, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", to_sandbox)
    token = session.request_token(params)
    assert token and set(str(session.access_scopes).split(",")) == {"write_fulfillments", "read_orders"}

    answer = browser.post(
        f"https://{SHOP}/admin/api/2026-07/graphql.json",
        json={"query": "{ shop { myshopifyDomain } }"},
        headers={"X-Shopify-Access-Token": token},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["data"]["shop"]["myshopifyDomain"] == SHOP


# --- one installation per app and shop --------------------------------------------------------------------


def installs(h) -> list[dict]:
    return h.state()["installs"]


def oauth_install(h, scope: str) -> str:
    params = dict(parse_qsl(urlsplit(approve(h, {**FORM, "scope": scope})).query))
    granted = exchange(h, params["code"])
    assert granted.status_code == 200
    assert granted.get_json()["scope"] == scope
    return granted.get_json()["access_token"]


def test_installing_again_keeps_the_one_installation_and_its_token(h):
    (before,) = installs(h)
    first = oauth_install(h, "write_fulfillments,read_orders")
    again = oauth_install(h, "write_fulfillments,read_orders,read_inventory")
    (after,) = installs(h)
    assert after["id"] == before["id"] and after["scopes"] == "write_fulfillments,read_orders,read_inventory"
    assert first == again == h.token
    # What the installation owns stays with it.
    assert len(h.state()["fulfillment_services"]) == 1
    assert "errors" not in h.gql("{ shop { myshopifyDomain } }", token=again)


def test_after_an_uninstall_the_next_install_is_a_new_installation_with_a_new_token(h):
    (before,) = installs(h)
    assert h.client.delete(f"/_sandbox/shops/{h.shop}/app_installs").status_code == 200
    assert installs(h) == [] and h.state()["fulfillment_services"] == []
    token = oauth_install(h, "write_fulfillments")
    (after,) = installs(h)
    assert after["id"] != before["id"] and token != h.token
    assert "errors" not in h.gql("{ shop { myshopifyDomain } }", token=token)
    old = h.client.post(
        f"/store/{h.shop}/admin/api/2026-07/graphql.json",
        json={"query": "{ shop { myshopifyDomain } }"},
        headers={"X-Shopify-Access-Token": h.token},
    )
    assert old.status_code == 401
