"""The store's side of the install: the authorize page, the signed redirect, the single-use code exchange."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit

SECRET = "sandbox-test-secret"
FORM = {
    "client_id": "test-key",
    "scope": "write_fulfillments,read_orders",
    "redirect_uri": "https://app.example/auth/callback",
    "state": "nonce-1",
}


def test_install_flow(h):
    page = h.client.get(f"/store/{h.shop}/admin/oauth/authorize", query_string=FORM)
    assert page.status_code == 200 and b'id="install"' in page.data and b"read_orders" in page.data
    response = h.client.post(f"/store/{h.shop}/admin/oauth/authorize", data=FORM)
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == FORM["redirect_uri"]
    params = dict(parse_qsl(target.query))
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert params["shop"] == h.shop and params["state"] == "nonce-1"
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
    assert params["hmac"] == hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()

    exchange = {"client_id": "test-key", "client_secret": SECRET, "code": params["code"]}
    granted = h.client.post(f"/store/{h.shop}/admin/oauth/access_token", json=exchange)
    assert granted.status_code == 200
    token = granted.get_json()["access_token"]
    assert granted.get_json()["scope"] == "write_fulfillments,read_orders"
    assert "errors" not in h.gql("{ shop { myshopifyDomain } }", token=token)
    # Codes are single use.
    assert h.client.post(f"/store/{h.shop}/admin/oauth/access_token", json=exchange).status_code == 400


def test_wrong_client_is_refused(h):
    assert (
        h.client.get(f"/store/{h.shop}/admin/oauth/authorize", query_string={**FORM, "client_id": "other"}).status_code
        == 400
    )
    bad = {"client_id": "test-key", "client_secret": "wrong", "code": "x"}
    assert h.client.post(f"/store/{h.shop}/admin/oauth/access_token", json=bad).status_code == 401
