"""The simulated warehouse on a real SQLite database: stock, reservations, shipping and packing into parcels."""

from collections import Counter

import pytest
from sqlalchemy import event, select

from fulfillment.db import Database
from fulfillment.models import (
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    Reservation,
    Shop,
    StockLevel,
    StockMovement,
)
from fulfillment.warehouse import Movement, OutOfStock, SimulatedWarehouse, SimulatorSettings, StockRefused

SHOP, OTHER_SHOP = 1, 2


@pytest.fixture
def session(sqlite_url):
    database = Database(sqlite_url)
    with database.transaction() as session:
        session.add_all(
            [
                Shop(id=SHOP, domain="a-shop.myshopify.com", settings={}),
                Shop(id=OTHER_SHOP, domain="b-shop.myshopify.com", settings={}),
            ]
        )
        session.flush()
        yield session
    database.dispose()


def make_order(session, *lines: tuple[str | None, int], number: int = 1, shop_id: int = SHOP) -> FulfillmentOrder:
    record = FulfillmentOrder(
        shop_id=shop_id,
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


def level(session, sku: str, shop_id: int | None = None) -> StockLevel | None:
    return session.scalar(select(StockLevel).where(StockLevel.shop_id == (shop_id or SHOP), StockLevel.sku == sku))


def on_hand(session, sku: str, shop_id: int = SHOP) -> int:
    return level(session, sku, shop_id).on_hand


# Reserving and releasing


def test_reserve_holds_stock_so_less_is_available(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))

    wh.reserve(record)

    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 7}
    assert wh.stock_levels(SHOP) == {"MUG-1": 7}
    assert on_hand(session, "MUG-1") == 10
    assert reservations(session) == [("MUG-1", 3, "held")]


def test_reserving_twice_holds_once(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))

    wh.reserve(record)
    wh.reserve(record)

    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 7}
    assert reservations(session) == [("MUG-1", 3, "held")]


def test_out_of_stock_names_the_shortage_and_reserves_nothing(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    wh.set_stock(SHOP, "TEE-M", 2)
    record = make_order(session, ("MUG-1", 3), ("TEE-M", 5))

    with pytest.raises(OutOfStock) as raised:
        wh.reserve(record)

    assert raised.value.shortages == {"TEE-M": 3}
    assert "TEE-M short by 3" in str(raised.value)
    assert reservations(session) == []
    assert wh.available(SHOP, ["MUG-1", "TEE-M"]) == {"MUG-1": 10, "TEE-M": 2}


def test_lines_sharing_a_sku_are_reserved_together(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 5)
    record = make_order(session, ("MUG-1", 3), ("MUG-1", 3))

    with pytest.raises(OutOfStock) as raised:
        wh.reserve(record)

    assert raised.value.shortages == {"MUG-1": 1}
    assert reservations(session) == []


def test_stock_held_for_one_order_is_not_promised_to_another(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    wh.reserve(make_order(session, ("MUG-1", 8), number=1))

    with pytest.raises(OutOfStock) as raised:
        wh.reserve(make_order(session, ("MUG-1", 3), number=2))

    assert raised.value.shortages == {"MUG-1": 1}
    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 2}


def test_release_gives_the_stock_back(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))
    wh.reserve(record)

    wh.release(record)
    wh.release(record)

    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 10}
    assert reservations(session) == [("MUG-1", 3, "released")]
    assert on_hand(session, "MUG-1") == 10


# Shipping


def test_ship_takes_units_off_the_shelf_and_out_of_the_reservation(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))
    wh.reserve(record)

    wh.ship([(record.line_items[0].id, 3)])

    assert on_hand(session, "MUG-1") == 7
    assert reservations(session) == [("MUG-1", 0, "consumed")]
    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 7}


def test_partial_ship_then_release_returns_only_the_rest(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    record = make_order(session, ("MUG-1", 3))
    wh.reserve(record)

    wh.ship([(record.line_items[0].id, 1)])
    assert on_hand(session, "MUG-1") == 9
    assert reservations(session) == [("MUG-1", 2, "held")]
    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 7}

    wh.release(record)
    assert reservations(session) == [("MUG-1", 2, "released")]
    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 9}


def test_stock_levels_can_be_read_for_one_sku(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    wh.set_stock(SHOP, "TEE-M", 4)
    wh.reserve(make_order(session, ("TEE-M", 1)))

    assert wh.stock_levels(SHOP, "TEE-M") == {"TEE-M": 3}
    assert wh.stock_levels(SHOP) == {"MUG-1": 10, "TEE-M": 3}


# One shelf per shop


def test_the_same_sku_in_two_shops_is_two_shelves(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "TEE-M", 5)
    wh.set_stock(OTHER_SHOP, "TEE-M", 1)

    wh.reserve(make_order(session, ("TEE-M", 3), number=1))

    assert wh.available(SHOP, ["TEE-M"]) == {"TEE-M": 2}
    assert wh.available(OTHER_SHOP, ["TEE-M"]) == {"TEE-M": 1}
    with pytest.raises(OutOfStock) as raised:
        # The first shop's two free units are not the other shop's to take.
        wh.reserve(make_order(session, ("TEE-M", 2), number=2, shop_id=OTHER_SHOP))
    assert raised.value.shortages == {"TEE-M": 1}


def test_stock_levels_list_only_the_shops_own_skus(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    wh.set_stock(OTHER_SHOP, "CAP", 3)

    assert wh.stock_levels(SHOP) == {"MUG-1": 10}
    assert wh.stock_levels(OTHER_SHOP) == {"CAP": 3}
    assert wh.stock_levels(OTHER_SHOP, "MUG-1") == {}


def test_shipping_and_releasing_touch_only_the_orders_own_shop(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    wh.set_stock(OTHER_SHOP, "MUG-1", 10)
    record = make_order(session, ("MUG-1", 3), shop_id=OTHER_SHOP)
    wh.reserve(record)

    wh.ship([(record.line_items[0].id, 1)])
    wh.release(record)

    assert (on_hand(session, "MUG-1", SHOP), on_hand(session, "MUG-1", OTHER_SHOP)) == (10, 9)
    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 10}
    assert wh.available(OTHER_SHOP, ["MUG-1"]) == {"MUG-1": 9}


def test_held_stock_is_summed_through_the_shop_sku_state_index(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10)
    wh.reserve(make_order(session, ("MUG-1", 1)))
    statements = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        if "sum(reservations.quantity)" in statement:
            statements.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", keep)
    try:
        wh.available(SHOP, ["MUG-1"])
    finally:
        event.remove(engine, "before_cursor_execute", keep)

    ((statement, parameters),) = statements
    plan = " ".join(
        str(row[-1]) for row in session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
    )
    assert "USING INDEX ix_reservations_shop_sku_state (shop_id=? AND sku=? AND state=?)" in plan


# Movements


def movements(session) -> list[tuple]:
    return [
        (m.shop_id, m.sku, m.kind, m.on_hand_change, m.reserved_change, m.on_hand_after, m.available_after)
        for m in session.scalars(select(StockMovement).order_by(StockMovement.id))
    ]


def test_every_change_to_a_shelf_or_to_what_it_holds_is_a_movement(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 10, actor="ada@warehouse.example")
    wh.receive(SHOP, "MUG-1", 5, note="delivery note 7")
    wh.adjust(SHOP, "MUG-1", -2, note="two broken")
    record = make_order(session, ("MUG-1", 3))
    wh.reserve(record)
    wh.ship([(record.line_items[0].id, 1)])
    wh.release(record)
    wh.set_stock(SHOP, "MUG-1", 11)

    assert movements(session) == [
        (SHOP, "MUG-1", Movement.CYCLE_COUNT, 10, 0, 10, 10),
        (SHOP, "MUG-1", Movement.RECEIPT, 5, 0, 15, 15),
        (SHOP, "MUG-1", Movement.ADJUSTMENT, -2, 0, 13, 13),
        (SHOP, "MUG-1", Movement.RESERVATION, 0, 3, 13, 10),
        (SHOP, "MUG-1", Movement.SHIPMENT, -1, -1, 12, 10),
        (SHOP, "MUG-1", Movement.RELEASE, 0, -2, 12, 12),
        (SHOP, "MUG-1", Movement.CYCLE_COUNT, -1, 0, 11, 11),
    ]
    first, *_ = session.scalars(select(StockMovement).order_by(StockMovement.id))
    assert first.actor == "ada@warehouse.example"
    reservation = session.scalars(select(StockMovement).where(StockMovement.kind == "reservation")).one()
    assert reservation.fulfillment_order_id == record.id


def test_a_shelf_never_holds_fewer_than_no_units(session):
    wh = warehouse(session)
    wh.set_stock(SHOP, "MUG-1", 2)
    with pytest.raises(StockRefused):
        wh.adjust(SHOP, "MUG-1", -3, note="lost")
    with pytest.raises(StockRefused):
        wh.receive(SHOP, "MUG-1", 0)
    with pytest.raises(StockRefused):
        wh.set_stock(SHOP, "MUG-1", -1)
    assert on_hand(session, "MUG-1") == 2
    assert [m[2] for m in movements(session)] == [Movement.CYCLE_COUNT]


# Unknown SKUs


def test_unknown_sku_has_no_stock_by_default(session):
    wh = warehouse(session)
    record = make_order(session, ("NEW-SKU", 1))

    assert wh.available(SHOP, ["NEW-SKU"]) == {"NEW-SKU": 0}
    with pytest.raises(OutOfStock):
        wh.reserve(record)
    assert level(session, "NEW-SKU") is None


def test_default_stock_provisions_unknown_skus_on_first_sight(session):
    wh = warehouse(session, default_stock=50)
    record = make_order(session, ("NEW-SKU", 5))

    assert wh.available(SHOP, ["NEW-SKU"]) == {"NEW-SKU": 50}
    wh.reserve(record)

    assert on_hand(session, "NEW-SKU") == 50
    assert wh.available(SHOP, ["NEW-SKU"]) == {"NEW-SKU": 45}


def test_default_stock_does_not_touch_known_skus(session):
    wh = warehouse(session, default_stock=50)
    wh.set_stock(SHOP, "MUG-1", 2)
    assert wh.available(SHOP, ["MUG-1"]) == {"MUG-1": 2}


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
