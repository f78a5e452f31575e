"""`flask --app app connect-shop`: a failure is one line and leaves no shop behind; a known shop keeps its token."""

from __future__ import annotations

import pytest
import responses
from sqlalchemy import select

from app import create_app
from fulfillment.config import Config
from fulfillment.models import Shop
from fulfillment.shops import save_token

SHOP = "cli-shop.myshopify.com"
STORE = "http://store.test"
GRAPHQL = f"{STORE}/store/{SHOP}/admin/api/2026-07/graphql.json"


@pytest.fixture
def app(sqlite_url):
    return create_app(Config(database_url=sqlite_url, store_base_url=STORE, redis_url="redis://127.0.0.1:1/0"))


def shops(app) -> list[tuple[str, str | None]]:
    ctx = app.extensions["fulfillment"]
    with ctx.db.transaction() as session:
        return [(s.domain, s.access_token_ciphertext) for s in session.scalars(select(Shop)).all()]


def connect(app, domain: str = SHOP):
    return app.test_cli_runner().invoke(args=["connect-shop", "--domain", domain, "--token", "shpat_new"])


def test_a_refused_token_is_one_line_and_leaves_no_shop(app):
    with responses.RequestsMock() as store:
        store.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
        result = connect(app)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("Error: ") and SHOP in result.output
    assert "Traceback" not in result.output
    assert shops(app) == []


def test_an_unreachable_store_is_one_line_and_leaves_no_shop(app):
    with responses.RequestsMock():  # nothing registered: every connection is refused
        result = connect(app)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert shops(app) == []


def test_a_domain_that_is_not_a_shop_is_one_line(app):
    result = connect(app, domain="evil.example.com")
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "myshopify.com" in result.output
    assert shops(app) == []


def test_a_failed_reconnect_keeps_the_shop_s_working_token(app):
    ctx = app.extensions["fulfillment"]
    save_token(ctx, SHOP, "shpat_old", "read_orders")
    (before,) = shops(app)
    with responses.RequestsMock() as store:
        store.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
        result = connect(app)
    assert result.exit_code == 1
    assert shops(app) == [before]
    with ctx.db.transaction() as session:
        assert session.scalar(select(Shop)).scopes == "read_orders"
