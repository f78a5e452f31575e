"""Signatures the store puts on callbacks and webhooks (body HMAC) and on the OAuth redirect (query-string HMAC)."""

import base64
import hashlib
import hmac
import json

import pytest

from fulfillment.security import query_string_signature, sign_body, verify_body_signature, verify_query_string

SECRET = "s3cret"
BODY = b'{"kind": "FULFILLMENT_REQUEST"}'


def good_signature(body: bytes = BODY, secret: str = SECRET) -> str:
    # Computed here independently of the code under test.
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# Body signatures (X-Shopify-Hmac-Sha256)


def test_sign_body_is_base64_hmac_sha256_of_the_raw_body():
    assert sign_body(SECRET, BODY) == good_signature()


def test_good_signature_verifies():
    assert verify_body_signature(SECRET, BODY, good_signature())


def test_surrounding_whitespace_in_the_header_is_tolerated():
    assert verify_body_signature(SECRET, BODY, f"  {good_signature()}\t")


def test_signature_made_with_another_secret_fails():
    assert not verify_body_signature(SECRET, BODY, good_signature(secret="another-secret"))


@pytest.mark.parametrize("header", [None, ""], ids=["missing", "empty"])
def test_missing_or_empty_header_fails(header):
    assert not verify_body_signature(SECRET, BODY, header)


def test_hex_digest_instead_of_base64_fails():
    hex_digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert not verify_body_signature(SECRET, BODY, hex_digest)


@pytest.mark.parametrize("garbage", ["not base64!!", "====", "é" * 44, "YWJj\x00"])
def test_non_base64_garbage_fails(garbage):
    assert not verify_body_signature(SECRET, BODY, garbage)


@pytest.mark.parametrize("cut", [1, 4, 20])
def test_truncated_signature_fails(cut):
    assert not verify_body_signature(SECRET, BODY, good_signature()[:-cut])


def test_signature_of_the_digest_with_extra_bytes_fails():
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()
    assert not verify_body_signature(SECRET, BODY, base64.b64encode(digest + b"\x00").decode())


def test_body_changed_by_one_byte_fails():
    signature = good_signature()
    changed = bytearray(BODY)
    changed[10] ^= 0x01
    assert not verify_body_signature(SECRET, bytes(changed), signature)
    assert not verify_body_signature(SECRET, BODY + b" ", signature)


def test_reserialised_json_with_the_same_meaning_fails():
    signature = good_signature()
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert json.loads(reserialised) == json.loads(BODY)
    assert reserialised != BODY
    assert not verify_body_signature(SECRET, reserialised, signature)


def test_comparison_is_constant_time_through_compare_digest(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("fulfillment.security.hmac.compare_digest", spy)
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()

    assert verify_body_signature(SECRET, BODY, good_signature())
    assert calls == [(expected, expected)]


def test_verification_answer_is_the_constant_time_comparison(monkeypatch):
    # If the answer came from `==` instead, a lying compare_digest would not change it.
    monkeypatch.setattr("fulfillment.security.hmac.compare_digest", lambda a, b: False)
    assert not verify_body_signature(SECRET, BODY, good_signature())


# OAuth redirect query string (hex HMAC over sorted params, without hmac; escaping in test_oauth_signature.py)

OAUTH_SECRET = "hush"
OAUTH_PARAMS = {
    "code": "0907a61c0c8d55e99db179b68161bc00",
    "shop": "some-shop.myshopify.com",
    "state": "0.6784241404160823",
    "timestamp": "1337178173",
}
# The message, written out by hand: parameters sorted by name, joined with & and =.
OAUTH_MESSAGE = (
    "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173"
)
OAUTH_HMAC = hmac.new(OAUTH_SECRET.encode(), OAUTH_MESSAGE.encode(), hashlib.sha256).hexdigest()


def test_query_string_signature_matches_the_hand_computed_vector():
    assert query_string_signature(OAUTH_SECRET, OAUTH_PARAMS) == OAUTH_HMAC
    # The example published in the store's OAuth documentation, for the same inputs.
    assert OAUTH_HMAC == "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"


def test_only_the_hmac_param_is_left_out_of_the_message():
    assert query_string_signature(OAUTH_SECRET, {**OAUTH_PARAMS, "hmac": "whatever"}) == OAUTH_HMAC
    # Any other parameter is signed, a `signature` too (as the store's Python library signs it).
    assert query_string_signature(OAUTH_SECRET, {**OAUTH_PARAMS, "signature": "legacy"}) != OAUTH_HMAC


def test_query_string_signature_does_not_depend_on_parameter_order():
    reversed_params = dict(reversed(list(OAUTH_PARAMS.items())))
    assert list(reversed_params) != list(OAUTH_PARAMS)
    assert query_string_signature(OAUTH_SECRET, reversed_params) == OAUTH_HMAC


def test_verify_query_string_accepts_the_signed_redirect():
    assert verify_query_string(OAUTH_SECRET, {**OAUTH_PARAMS, "hmac": OAUTH_HMAC})


def test_verify_query_string_refuses_a_changed_parameter():
    assert not verify_query_string(OAUTH_SECRET, {**OAUTH_PARAMS, "shop": "evil.myshopify.com", "hmac": OAUTH_HMAC})


def test_verify_query_string_refuses_an_added_parameter():
    assert not verify_query_string(OAUTH_SECRET, {**OAUTH_PARAMS, "host": "x", "hmac": OAUTH_HMAC})


@pytest.mark.parametrize("received", [None, "", "0" * 64, OAUTH_HMAC.upper()[:10]])
def test_verify_query_string_refuses_missing_or_wrong_hmac(received):
    params = dict(OAUTH_PARAMS)
    if received is not None:
        params["hmac"] = received
    assert not verify_query_string(OAUTH_SECRET, params)


def test_verify_query_string_refuses_another_secret():
    assert not verify_query_string("not-hush", {**OAUTH_PARAMS, "hmac": OAUTH_HMAC})


def test_verify_query_string_compares_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("fulfillment.security.hmac.compare_digest", spy)
    assert verify_query_string(OAUTH_SECRET, {**OAUTH_PARAMS, "hmac": OAUTH_HMAC})
    assert calls == [(OAUTH_HMAC.encode(), OAUTH_HMAC.encode())]
