"""The migration that gives every shelf its shop, run on a database holding rows of the shared-shelf schema.

On SQLite always; on PostgreSQL too when DATABASE_URL names a PostgreSQL server.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fulfillment.migrate import alembic_config

NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request, tmp_path, database_server_url):
    """A database at the revision before stock became per shop."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        yield url
        return
    if not database_server_url:
        pytest.skip("DATABASE_URL names no PostgreSQL server")
    import psycopg

    admin = make_url(database_server_url).set(drivername="postgresql", database="postgres")
    admin = admin.render_as_string(hide_password=False)
    name = f"fulfillment_migration_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(database_server_url).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str, revision: str) -> None:
    command.upgrade(alembic_config(url), revision)


def fill_old_rows(url: str, shops: int = 3) -> None:
    """Shops 1..n; orders of shop 1 and 2 share a SKU; one SKU no order uses; held and released reservations."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for shop_id in range(1, shops + 1):
            conn.execute(
                text(
                    "INSERT INTO shops (id, domain, scopes, settings, installed_at) "
                    "VALUES (:id, :domain, '', '{}', :now)"
                ),
                {"id": shop_id, "domain": f"shop-{shop_id}.myshopify.com", "now": NOW},
            )
        orders = [  # (order id, shop, state, [(line id, sku, quantity)])
            (1, 1, "accepted", [(11, "SHARED", 3), (12, "ONLY-ONE", 2)]),
            (2, 2, "requested", [(21, "SHARED", 1)]),
            (3, 1, "shipped", [(31, "SHARED", 4)]),
        ]
        if shops < 2:
            orders = [order for order in orders if order[1] <= shops]
        for order_id, shop_id, state, lines in orders:
            conn.execute(
                text(
                    "INSERT INTO fulfillment_orders (id, shop_id, store_id, order_id, order_name, state, store_status,"
                    " store_request_status, created_at, updated_at) VALUES (:id, :shop, :store, :order, '', :state,"
                    " '', '', :now, :now)"
                ),
                {
                    "id": order_id,
                    "shop": shop_id,
                    "store": f"FO/{order_id}",
                    "order": f"O/{order_id}",
                    "state": state,
                    "now": NOW,
                },
            )
            for line_id, sku, quantity in lines:
                conn.execute(
                    text(
                        "INSERT INTO fulfillment_order_line_items (id, fulfillment_order_id, store_id, line_item_id,"
                        " sku, total_quantity, remaining_quantity) VALUES (:id, :fo, :store, :li, :sku, :q, :q)"
                    ),
                    {
                        "id": line_id,
                        "fo": order_id,
                        "store": f"FOLI/{line_id}",
                        "li": f"LI/{line_id}",
                        "sku": sku,
                        "q": quantity,
                    },
                )
        reservations = [(11, "SHARED", 3, "held"), (12, "ONLY-ONE", 2, "held"), (31, "SHARED", 0, "consumed")]
        for line_id, sku, quantity, state in reservations:
            if any(line_id == line[0] for order in orders for line in order[3]):
                conn.execute(
                    text(
                        "INSERT INTO reservations (line_item_id, sku, quantity, state, created_at) "
                        "VALUES (:li, :sku, :q, :state, :now)"
                    ),
                    {"li": line_id, "sku": sku, "q": quantity, "state": state, "now": NOW},
                )
        for sku, on_hand in [("SHARED", 10), ("ONLY-ONE", 7), ("NOBODY", 5)]:
            conn.execute(text("INSERT INTO stock_levels (sku, on_hand) VALUES (:sku, :n)"), {"sku": sku, "n": on_hand})
    engine.dispose()


def rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as conn:
        result = [tuple(row) for row in conn.execute(text(query))]
    engine.dispose()
    return result


def test_upgrade_gives_each_shelf_to_the_shops_whose_orders_use_it(old_database, caplog):
    migrate(old_database, "0002")
    fill_old_rows(old_database)

    with caplog.at_level(logging.INFO, logger="fulfillment.migrations"):
        migrate(old_database, "head")

    shelves = rows(old_database, "SELECT shop_id, sku, on_hand FROM stock_levels ORDER BY sku, shop_id")
    # SHARED: shop 1 holds 3 for an accepted order; the 7 left go by units asked (7 against 1): 6 and 1.
    assert shelves == [(1, "ONLY-ONE", 7), (1, "SHARED", 9), (2, "SHARED", 1)]
    assert sum(n for _, sku, n in shelves if sku == "SHARED") == 10  # split, never copied
    reservations = rows(old_database, "SELECT line_item_id, shop_id, sku, state FROM reservations ORDER BY 1")
    assert reservations == [(11, 1, "SHARED", "held"), (12, 1, "ONLY-ONE", "held"), (31, 1, "SHARED", "consumed")]
    movements = rows(
        old_database,
        "SELECT shop_id, sku, kind, on_hand_change, on_hand_after, available_after, actor FROM stock_movements "
        "ORDER BY sku, shop_id",
    )
    assert movements == [
        (1, "ONLY-ONE", "cycle_count", 7, 7, 5, "migration"),
        (1, "SHARED", "cycle_count", 9, 9, 6, "migration"),
        (2, "SHARED", "cycle_count", 1, 1, 1, "migration"),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("sku=SHARED" in w and "split" in w and "shop 1: 9, shop 2: 1" in w for w in warnings), warnings
    assert any("sku=NOBODY on_hand=5 not placed" in w for w in warnings), warnings


def test_with_one_shop_every_shelf_is_its_own(old_database):
    migrate(old_database, "0002")
    fill_old_rows(old_database, shops=1)

    migrate(old_database, "head")

    shelves = rows(old_database, "SELECT shop_id, sku, on_hand FROM stock_levels ORDER BY sku")
    assert shelves == [(1, "NOBODY", 5), (1, "ONLY-ONE", 7), (1, "SHARED", 10)]


def test_downgrade_adds_the_shops_shelves_back_into_one(old_database):
    migrate(old_database, "0002")
    fill_old_rows(old_database)
    migrate(old_database, "head")

    command.downgrade(alembic_config(old_database), "0002")

    assert rows(old_database, "SELECT sku, on_hand FROM stock_levels ORDER BY sku") == [
        ("ONLY-ONE", 7),
        ("SHARED", 10),
    ]
    assert rows(old_database, "SELECT line_item_id, sku FROM reservations ORDER BY 1") == [
        (11, "SHARED"),
        (12, "ONLY-ONE"),
        (31, "SHARED"),
    ]
    migrate(old_database, "head")  # and up again
    assert rows(old_database, "SELECT count(*) FROM stock_levels") == [(3,)]
