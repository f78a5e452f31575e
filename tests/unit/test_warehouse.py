"""The simulated warehouse on a real SQLite database: stock, reservations, shipping and packing into parcels."""

from collections import Counter

import pytest
from sqlalchemy import select

from fulfillment.db import Database
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, Reservation, Shop, StockLevel
from fulfillment.warehouse import OutOfStock, SimulatedWarehouse, SimulatorSettings


@pytest.fixture
def session(sqlite_url):
    database = Database(sqlite_url)
    with database.transaction() as session:
        shop = Shop(domain="a-shop.myshopify.com", settings={})
        session.add(shop)
        session.flush()
        session.info["shop_id"] = shop.id
        yield session
    database.dispose()


def make_order(session, *lines: tuple[str | None, int], number: int = 1) -> FulfillmentOrder:
    record = FulfillmentOrder(
        shop_id=session.info["shop_id"],
        store_id=f"gid://shopify/FulfillmentOrder/{number}",
        order_id=f"gid://shopify/Order/{number}",
        state="requested",
        line_items=[
            FulfillmentOrderLineItem(
                store_id=f"gid://shopify/FulfillmentOrderLineItem/{number}{i}",
                line_item_id=f"gid://shopify/LineItem/{number}{i}",
                sku=sku,
                total_quantity=quantity,
                remaining_quantity=quantity,
            )
            for i, (sku, quantity) in enumerate(lines)
        ],
    )
    session.add(record)
    session.flush()
    return record


def warehouse(session, **settings) -> SimulatedWarehouse:
    return SimulatedWarehouse(session, SimulatorSettings(**settings))


def reservations(session) -> list[tuple[str, int, str]]:
    return [(r.sku, r.quantity, r.state) for r in session.scalars(select(Reservation).order_by(Reservation.id))]


def on_hand(session, sku: str) -> int:
    return session.get(StockLevel, sku).on_hand


# Reserving and releasing


def test_reserve_holds_stock_so_less_is_available(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))

    wh.reserve(record)

    assert wh.available(["MUG-1"]) == {"MUG-1": 7}
    assert wh.stock_levels() == {"MUG-1": 7}
    assert on_hand(session, "MUG-1") == 10
    assert reservations(session) == [("MUG-1", 3, "held")]


def test_reserving_twice_holds_once(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))

    wh.reserve(record)
    wh.reserve(record)

    assert wh.available(["MUG-1"]) == {"MUG-1": 7}
    assert reservations(session) == [("MUG-1", 3, "held")]


def test_out_of_stock_names_the_shortage_and_reserves_nothing(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 10)
    wh.set_stock("TEE-M", 2)
    record = make_order(session, ("MUG-1", 3), ("TEE-M", 5))

    with pytest.raises(OutOfStock) as raised:
        wh.reserve(record)

    assert raised.value.shortages == {"TEE-M": 3}
    assert "TEE-M short by 3" in str(raised.value)
    assert reservations(session) == []
    assert wh.available(["MUG-1", "TEE-M"]) == {"MUG-1": 10, "TEE-M": 2}


def test_lines_sharing_a_sku_are_reserved_together(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 5)
    record = make_order(session, ("MUG-1", 3), ("MUG-1", 3))

    with pytest.raises(OutOfStock) as raised:
        wh.reserve(record)

    assert raised.value.shortages == {"MUG-1": 1}
    assert reservations(session) == []


def test_stock_held_for_one_order_is_not_promised_to_another(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 10)
    wh.reserve(make_order(session, ("MUG-1", 8), number=1))

    with pytest.raises(OutOfStock) as raised:
        wh.reserve(make_order(session, ("MUG-1", 3), number=2))

    assert raised.value.shortages == {"MUG-1": 1}
    assert wh.available(["MUG-1"]) == {"MUG-1": 2}


def test_release_gives_the_stock_back(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))
    wh.reserve(record)

    wh.release(record)
    wh.release(record)

    assert wh.available(["MUG-1"]) == {"MUG-1": 10}
    assert reservations(session) == [("MUG-1", 3, "released")]
    assert on_hand(session, "MUG-1") == 10


# Shipping


def test_ship_takes_units_off_the_shelf_and_out_of_the_reservation(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))
    wh.reserve(record)

    wh.ship([(record.line_items[0].id, 3)])

    assert on_hand(session, "MUG-1") == 7
    assert reservations(session) == [("MUG-1", 0, "consumed")]
    assert wh.available(["MUG-1"]) == {"MUG-1": 7}


def test_partial_ship_then_release_returns_only_the_rest(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))
    wh.reserve(record)

    wh.ship([(record.line_items[0].id, 1)])
    assert on_hand(session, "MUG-1") == 9
    assert reservations(session) == [("MUG-1", 2, "held")]
    assert wh.available(["MUG-1"]) == {"MUG-1": 7}

    wh.release(record)
    assert reservations(session) == [("MUG-1", 2, "released")]
    assert wh.available(["MUG-1"]) == {"MUG-1": 9}


def test_stock_levels_can_be_read_for_one_sku(session):
    wh = warehouse(session)
    wh.set_stock("MUG-1", 10)
    wh.set_stock("TEE-M", 4)
    wh.reserve(make_order(session, ("TEE-M", 1)))

    assert wh.stock_levels("TEE-M") == {"TEE-M": 3}
    assert wh.stock_levels() == {"MUG-1": 10, "TEE-M": 3}


# Unknown SKUs


def test_unknown_sku_has_no_stock_by_default(session):
    wh = warehouse(session)
    record = make_order(session, ("NEW-SKU", 1))

    assert wh.available(["NEW-SKU"]) == {"NEW-SKU": 0}
    with pytest.raises(OutOfStock):
        wh.reserve(record)
    assert session.get(StockLevel, "NEW-SKU") is None


def test_default_stock_provisions_unknown_skus_on_first_sight(session):
    wh = warehouse(session, default_stock=50)
    record = make_order(session, ("NEW-SKU", 5))

    assert wh.available(["NEW-SKU"]) == {"NEW-SKU": 50}
    wh.reserve(record)

    assert on_hand(session, "NEW-SKU") == 50
    assert wh.available(["NEW-SKU"]) == {"NEW-SKU": 45}


def test_default_stock_does_not_touch_known_skus(session):
    wh = warehouse(session, default_stock=50)
    wh.set_stock("MUG-1", 2)
    assert wh.available(["MUG-1"]) == {"MUG-1": 2}


# Packing


def test_pack_splits_into_parcels_of_at_most_max_units(session):
    wh = warehouse(session, max_units_per_package=4)
    record = make_order(session, ("MUG-1", 5), ("TEE-M", 2), ("CAP", 3))
    ids = [line.id for line in record.line_items]

    plans = wh.pack(record)

    sizes = [sum(quantity for _, quantity in plan.items) for plan in plans]
    assert sizes == [4, 4, 2]
    packed = Counter()
    for plan in plans:
        for line_id, quantity in plan.items:
            packed[line_id] += quantity
    assert packed == {ids[0]: 5, ids[1]: 2, ids[2]: 3}


@pytest.mark.parametrize(("units", "parcels"), [(1, 1), (4, 1), (5, 2), (8, 2), (9, 3)])
def test_number_of_parcels_follows_the_size_limit(session, units, parcels):
    plans = warehouse(session, max_units_per_package=4).pack(make_order(session, ("MUG-1", units)))
    assert len(plans) == parcels


def test_pack_gives_unique_tracking_numbers_and_urls_from_the_template(session):
    wh = warehouse(
        session, max_units_per_package=2, carrier="Acme Post", tracking_url_template="https://t.test/{number}"
    )
    first = wh.pack(make_order(session, ("MUG-1", 5), number=1))
    second = wh.pack(make_order(session, ("MUG-1", 3), number=2))

    numbers = [plan.tracking_number for plan in first + second]
    assert len(numbers) == 5
    assert len(set(numbers)) == len(numbers)
    for plan in first + second:
        assert plan.carrier == "Acme Post"
        assert plan.tracking_url == f"https://t.test/{plan.tracking_number}"


def test_pack_skips_lines_with_nothing_left(session):
    record = make_order(session, ("MUG-1", 2), ("TEE-M", 1))
    record.line_items[1].remaining_quantity = 0

    plans = warehouse(session).pack(record)

    assert [plan.items for plan in plans] == [((record.line_items[0].id, 2),)]
