"""`POST /fulfillment_order_notification` answered ahead of Flask's request machinery: every check and everything an
answer of ours carries (request id, closing log line, request count, nosniff), the same answers as before."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from app import create_app
from fulfillment import logs
from fulfillment.config import Config
from fulfillment.shops import save_token
from workers.queue import NOTICED_KEY, SWEEP_PENDING_KEY

SECRET = "notification-secret"
SHOP = "a-shop.myshopify.com"
PATH = "/fulfillment_order_notification"
BODY = b'{"kind":"FULFILLMENT_REQUEST"}'
UNIT_REDIS_DB = 13  # the unit tests' own (tests/conftest.py), where no worker of the suite's listens


def signed(body: bytes = BODY, shop: str = SHOP, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": shop,
        "Content-Type": "application/json",
    }


@pytest.fixture
def app(sqlite_url, redis_url):
    # The unit tests' own DB number on the suite's server, and a queue of its own: the suite's workers use the
    # suite's DB, and would take this app's sweeps, or end a sweep it waits on, for their own shop of the same id.
    own_redis = urlunsplit(urlsplit(redis_url)._replace(path=f"/{UNIT_REDIS_DB}"))
    config = Config(
        database_url=sqlite_url, redis_url=own_redis, secret_key=uuid.uuid4().hex, shopify_api_secret=SECRET
    )
    app = create_app(config)
    queue_name = f"test-notification-path-{uuid.uuid4().hex}"
    app.extensions["celery"].conf.task_default_queue = queue_name
    app.extensions["shop_id"] = shop_id = save_token(app.extensions["fulfillment"], SHOP, "tok")
    client = app.extensions["redis"]  # a test may put a broken one in its place
    yield app
    client.delete(
        *client.scan_iter(match=f"{queue_name}*"), SWEEP_PENDING_KEY.format(shop_id=shop_id, scope="requests")
    )
    client.zrem(NOTICED_KEY, str(shop_id))
    app.extensions["fulfillment"].db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def pending(app) -> bytes | None:
    key = SWEEP_PENDING_KEY.format(shop_id=app.extensions["shop_id"], scope="requests")
    return app.extensions["redis"].get(key)


def counted(app, status: str) -> float:
    counter, _registry = app.extensions["metrics"]
    counter.flush()
    return counter.counter.read().get(("callbacks.fulfillment_order_notification", "POST", status), 0.0)


def test_a_signed_ping_queues_one_sweep_and_is_answered_logged_and_counted(app, client, caplog):
    app.extensions["redis"].delete(SWEEP_PENDING_KEY.format(shop_id=app.extensions["shop_id"], scope="requests"))
    before = counted(app, "200")
    caplog.handler.addFilter(logs.BoundFields())  # what our handlers add: the fields bound to the request
    with caplog.at_level(logging.INFO, logger="app.request"):
        first = client.post(PATH, data=BODY, headers={**signed(), "X-Request-Id": "req-1"})
        again = client.post(PATH, data=BODY, headers=signed())
    assert first.status_code == 200 and first.get_json() == {"ok": True}
    assert first.headers["X-Request-Id"] == "req-1"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert first.headers["Content-Type"] == "application/json"
    assert pending(app) is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "app.request"]
    assert lines[0].startswith(f"request method=POST path={PATH} status=200 duration_ms=")
    assert lines[0].endswith(f"shop={SHOP} kind=FULFILLMENT_REQUEST queued=True")
    assert lines[1].endswith("queued=False")  # folded into the sweep that waits
    assert [r.request_id for r in caplog.records if r.name == "app.request"][0] == "req-1"
    assert again.headers["X-Request-Id"] != "req-1"
    assert counted(app, "200") == before + 2


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        (signed(secret="wrong"), BODY, 401, "invalid or missing X-Shopify-Hmac-Sha256"),
        (signed(shop="evil.example.com"), BODY, 401, "X-Shopify-Shop-Domain is not a myshopify.com domain"),
        (signed(shop="other-shop.myshopify.com"), BODY, 404, "unknown shop other-shop.myshopify.com"),
        (signed(b"not json"), b"not json", 400, None),
        (signed(b'{"kind":"SOMETHING"}'), b'{"kind":"SOMETHING"}', 400, None),
    ],
)
def test_a_refused_ping_gets_its_status_and_reason_as_json_and_queues_nothing(
    app, client, headers, body, status, error
):
    app.extensions["redis"].delete(SWEEP_PENDING_KEY.format(shop_id=app.extensions["shop_id"], scope="requests"))
    answer = client.post(PATH, data=body, headers=headers)
    assert answer.status_code == status
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert isinstance(answer.get_json()["error"], str)
    if error:
        assert answer.get_json() == {"error": error}
    assert pending(app) is None


def test_a_repeated_delivery_id_is_answered_as_a_duplicate(client):
    headers = {**signed(), "X-Shopify-Webhook-Id": f"delivery-{uuid.uuid4().hex}"}
    assert client.post(PATH, data=BODY, headers=headers).get_json() == {"ok": True}
    assert client.post(PATH, data=BODY, headers=headers).get_json() == {"duplicate": True, "ok": True}


def test_another_method_gets_405_with_the_allowed_one(client):
    answer = client.get(PATH)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert "error" in answer.get_json()


def test_a_declared_body_over_the_limit_gets_413_unread(client):
    declared = {"CONTENT_LENGTH": str(2 * 1024 * 1024)}
    answer = client.post(PATH, data=BODY, headers=signed(), environ_overrides=declared)
    assert answer.status_code == 413
    assert "larger than" in answer.get_json()["error"]


def test_the_queue_down_is_a_503_that_says_the_sweep_will_find_the_request(app, client):
    app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2)
    answer = client.post(PATH, data=BODY, headers=signed())
    assert answer.status_code == 503
    assert "next sweep" in answer.get_json()["error"]


def test_a_fault_of_ours_is_a_logged_500_in_json(app, client, caplog, monkeypatch):
    import app.callbacks as callbacks

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(callbacks, "receive_notification", broken)
    with caplog.at_level(logging.ERROR, logger="app.callbacks"):
        answer = client.post(PATH, data=BODY, headers=signed())
    assert answer.status_code == 500 and answer.get_json() == {"error": "internal error"}
    assert any(r.getMessage() == "notification_failed" and r.exc_info for r in caplog.records)
    assert json.loads(answer.data)  # JSON even then


def test_other_paths_still_go_to_flask(client):
    assert client.get("/healthz").status_code in (200, 503)
