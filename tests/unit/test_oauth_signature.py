"""The query-string signature (OAuth redirect, `hmac` on a signed GET) equals what the store's official Python
library (`ShopifyAPI`: `shopify.Session.calculate_hmac` / `validate_hmac`) computes, on values that hold the
delimiters `&`, `%`, `=`, escapes such as `%26`, spaces, non-ASCII text and lists (`name[]`)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl, urlencode

import pytest
import shopify
from hypothesis import given
from hypothesis import strategies as st

from fulfillment.security import query_string_signature, signed_query_message, verify_query_string

SECRET = "hush"
BASE = {
    "code": "0907a61c0c8d55e99db179b68161bc00",
    "shop": "some-shop.myshopify.com",
    "timestamp": "1337178173",
}
TRICKY = {
    "ampersand": {"state": "a&b"},
    "ampersand-pair": {"state": "1&shop=evil.myshopify.com"},
    "percent": {"state": "100%"},
    "escaped-ampersand": {"state": "a%26b"},
    "escaped-percent": {"state": "%25"},
    "equals-in-value": {"state": "abc=="},
    "equals-in-name": {"a=b": "c"},
    "ampersand-in-name": {"a&b": "c"},
    "percent-in-name": {"a%3Db": "c"},
    "space": {"state": "two words"},
    "plus": {"state": "a+b"},
    "non-ascii": {"state": "Grüße, 東京 ✓"},
    "empty": {"state": ""},
    "signature-param": {"signature": "legacy"},
    "name-prefix-order": {"a": "1", "a-b": "2", "a_b": "3"},
    "redirect-uri-query": {"from": "store", "next": "/orders?id=1&page=2"},
}


@pytest.fixture
def library(monkeypatch):
    monkeypatch.setattr(shopify.Session, "secret", SECRET)
    return shopify.Session


@pytest.mark.parametrize("extra", TRICKY.values(), ids=TRICKY.keys())
def test_the_signature_equals_the_librarys(library, extra):
    params = {**BASE, **extra}
    assert query_string_signature(SECRET, params) == library.calculate_hmac(params)


@pytest.mark.parametrize("extra", TRICKY.values(), ids=TRICKY.keys())
def test_the_library_accepts_what_we_accept_and_we_accept_what_it_signs(library, extra):
    params = {**BASE, **extra}
    signed = {**params, "hmac": library.calculate_hmac(params)}
    assert verify_query_string(SECRET, signed)
    assert library.validate_hmac({**params, "hmac": query_string_signature(SECRET, params)})


def test_lists_are_signed_as_one_json_pair_as_the_library_does(library):
    # `order_names[]=#1001.1&order_names[]=#1002.1`, as the store's fetch_tracking_numbers sends them.
    query = "order_names[]=%231001.1&order_names[]=%231002.1&order_names[]=caf%C3%A9&shop=some-shop.myshopify.com"
    pairs = parse_qsl(query)
    expected = library.calculate_hmac(
        {"order_names[]": ["#1001.1", "#1002.1", "café"], "shop": "some-shop.myshopify.com"}
    )
    assert signed_query_message(pairs) == '["#1001.1", "#1002.1", "caf\\u00e9"]'.join(
        ["order_names=", "&shop=some-shop.myshopify.com"]
    )
    assert query_string_signature(SECRET, pairs) == expected
    assert verify_query_string(SECRET, [*pairs, ("hmac", expected)])


def test_a_value_cannot_pose_as_another_parameter():
    # Unescaped, both would be signed as `a=1&b=2`: a value carrying `&b=2` could forge a parameter.
    assert signed_query_message({"a": "1&b=2"}) == "a=1%26b=2"
    assert query_string_signature(SECRET, {"a": "1&b=2"}) != query_string_signature(SECRET, {"a": "1", "b": "2"})
    assert query_string_signature(SECRET, {"a=b": "c"}) != query_string_signature(SECRET, {"a": "b=c"})
    assert query_string_signature(SECRET, {"a": "%26"}) != query_string_signature(SECRET, {"a": "&"})


def test_the_message_written_out_by_hand():
    # `%` first (so `%26` stays distinguishable from `&`), then `&` everywhere and `=` in names; pairs sorted as text.
    params = {"x": "%26&=", "k=&%": "v", "shop": "s.myshopify.com", "hmac": "left out"}
    message = "k%3D%26%25=v&shop=s.myshopify.com&x=%2526%26="
    assert signed_query_message(params) == message
    assert query_string_signature(SECRET, params) == hmac.new(b"hush", message.encode(), hashlib.sha256).hexdigest()


def test_a_repeated_plain_name_is_signed_with_every_value():
    one = [("state", "a"), ("shop", "s.myshopify.com")]
    both = [*one, ("state", "b")]
    assert query_string_signature(SECRET, both) != query_string_signature(SECRET, one)
    assert not verify_query_string(SECRET, [*both, ("hmac", query_string_signature(SECRET, one))])


def test_two_hmac_parameters_are_refused():
    signature = query_string_signature(SECRET, BASE)
    assert not verify_query_string(SECRET, [*BASE.items(), ("hmac", signature), ("hmac", signature)])


def test_the_librarys_validate_params_accepts_our_signature_on_a_fresh_redirect(library):
    params = {**BASE, "timestamp": str(int(time.time())), "state": "n&o%n=ce ✓"}
    assert library.validate_params({**params, "hmac": query_string_signature(SECRET, params)})


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
names = text.filter(lambda name: name != "hmac" and not name.endswith("[]"))


@given(params=st.dictionaries(names, text, max_size=6))
def test_any_parameters_sign_as_the_library_signs_them(params):
    before, shopify.Session.secret = shopify.Session.secret, SECRET
    try:
        assert query_string_signature(SECRET, params) == shopify.Session.calculate_hmac(params)
        # And through a real query string: encoded, then decoded as the web framework decodes it.
        decoded = parse_qsl(urlencode(params), keep_blank_values=True)
        assert query_string_signature(SECRET, decoded) == shopify.Session.calculate_hmac(dict(decoded))
    finally:
        shopify.Session.secret = before
