"""Two workers making the same shelf at once, on real SQLite and PostgreSQL databases.

One transaction makes the shelf and holds it uncommitted; the other, in a thread, finds no shelf and tries to make
it too, which waits on the first; the first commits. The second must then go on with the shelf the first made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import event, select

from fulfillment.db import Database
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, Reservation, Shop, StockLevel, StockMovement
from fulfillment.warehouse import Movement, SimulatedWarehouse, SimulatorSettings

SKU = "MUG-1"
# What a transaction on SQLite that has not written yet sends before it reads a shelf to change it.
SQLITE_WRITER = "UPDATE STOCK_LEVELS SET ON_HAND=STOCK_LEVELS.ON_HAND WHERE 0 = 1"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, database_server_url) -> str:
    if request.param == "postgresql":
        if not database_server_url:
            pytest.skip("DATABASE_URL names no PostgreSQL server")
        return request.getfixturevalue("make_database")()
    return request.getfixturevalue("sqlite_url")


@pytest.fixture
def databases(url) -> Iterator[tuple[Database, Database]]:
    """Two processes' worth of engines on one database, and a shop with two orders for the same SKU."""
    first, second = Database(url), Database(url)
    with first.transaction() as session:
        session.add(Shop(id=1, domain="a-shop.myshopify.com", settings={}))
        session.flush()
        for number in (1, 2):
            session.add(
                FulfillmentOrder(
                    id=number,
                    shop_id=1,
                    store_id=f"gid://shopify/FulfillmentOrder/{number}",
                    order_id=f"gid://shopify/Order/{number}",
                    state="requested",
                    line_items=[
                        FulfillmentOrderLineItem(
                            store_id=f"gid://shopify/FulfillmentOrderLineItem/{number}",
                            line_item_id=f"gid://shopify/LineItem/{number}",
                            sku=SKU,
                            total_quantity=2,
                            remaining_quantity=2,
                        )
                    ],
                )
            )
    yield first, second
    first.dispose()
    second.dispose()


def race(
    first: Database,
    second: Database,
    change: Callable[[SimulatedWarehouse, int], object],
    waits_at: str = "INSERT INTO STOCK_LEVELS",
) -> None:
    """`change` runs in `first` and holds what it did uncommitted while `change` in `second`, from the statement
    that starts with `waits_at` on, waits for it. On SQLite the wait may come sooner, at the write that takes the
    database's one writer before a shelf is read to be changed."""
    inserting = threading.Event()
    errors: list[BaseException] = []

    def on_insert(_conn, _cursor, statement, _parameters, _context, _many):
        if " ".join(statement.split()).upper().startswith((waits_at, SQLITE_WRITER)):
            inserting.set()

    event.listen(second.engine, "before_cursor_execute", on_insert)

    def other_worker() -> None:
        try:
            with second.transaction() as session:
                change(SimulatedWarehouse(session, SimulatorSettings(default_stock=10)), 2)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    with first.transaction() as session:
        change(SimulatedWarehouse(session, SimulatorSettings(default_stock=10)), 1)
        thread = threading.Thread(target=other_worker)
        thread.start()
        assert inserting.wait(10), "the other worker never got to the shelf"
        time.sleep(0.5)  # it now waits on ours
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []


def shelf(database: Database) -> tuple[int, list[tuple[str, int, int]]]:
    with database.transaction() as session:
        level = session.scalars(select(StockLevel).where(StockLevel.shop_id == 1, StockLevel.sku == SKU)).one()
        moves = session.scalars(select(StockMovement).order_by(StockMovement.id))
        return level.on_hand, [(m.kind, m.on_hand_change, m.reserved_change) for m in moves]


def test_two_workers_reserving_a_new_sku_share_one_shelf_with_its_demo_stock_once(databases):
    first, second = databases

    def reserve(wh: SimulatedWarehouse, record_id: int) -> None:
        wh.reserve(wh.session.get(FulfillmentOrder, record_id))

    race(first, second, reserve)

    on_hand, moves = shelf(first)
    assert on_hand == 10
    assert moves == [
        (Movement.RECEIPT, 10, 0),
        (Movement.RESERVATION, 0, 2),
        (Movement.RESERVATION, 0, 2),
    ]
    with first.transaction() as session:
        assert sorted(session.scalars(select(Reservation.state))) == ["held", "held"]


def test_two_receipts_for_a_new_sku_both_land_on_one_shelf(databases):
    first, second = databases
    race(first, second, lambda wh, n: wh.receive(1, SKU, 5))

    on_hand, moves = shelf(first)
    assert on_hand == 10
    assert moves == [(Movement.RECEIPT, 5, 0), (Movement.RECEIPT, 5, 0)]


def test_a_cycle_count_racing_an_adjustment_on_a_new_sku_keeps_both(databases):
    first, second = databases
    race(first, second, lambda wh, n: wh.set_stock(1, SKU, 7) if n == 1 else wh.adjust(1, SKU, -3))

    on_hand, moves = shelf(first)
    assert on_hand == 4
    assert moves == [(Movement.CYCLE_COUNT, 7, 0), (Movement.ADJUSTMENT, -3, 0)]


def test_a_shelf_that_exists_costs_one_read_and_no_insert(databases):
    first, _ = databases
    with first.transaction() as session:
        SimulatedWarehouse(session, SimulatorSettings()).receive(1, SKU, 5)
    statements: list[str] = []

    def keep(_conn, _cursor, statement, _parameters, _context, _many):
        statements.append(" ".join(statement.split()).upper())

    event.listen(first.engine, "before_cursor_execute", keep)
    with first.transaction() as session:
        wh = SimulatedWarehouse(session, SimulatorSettings(default_stock=10))
        wh.receive(1, SKU, 5)
        wh.reserve(session.get(FulfillmentOrder, 1))
    event.remove(first.engine, "before_cursor_execute", keep)

    assert [s for s in statements if s.startswith("INSERT INTO STOCK_LEVELS")] == []
    assert len([s for s in statements if s.startswith("SELECT") and "FROM STOCK_LEVELS" in s]) == 2


def test_two_shipments_from_one_shelf_both_come_off_it(databases):
    first, second = databases
    with first.transaction() as session:
        wh = SimulatedWarehouse(session, SimulatorSettings())
        wh.receive(1, SKU, 10)
        for record_id in (1, 2):
            wh.reserve(session.get(FulfillmentOrder, record_id))

    def ship(wh: SimulatedWarehouse, record_id: int) -> None:
        wh.ship([(wh.session.get(FulfillmentOrder, record_id).line_items[0].id, 2)])

    race(first, second, ship, waits_at="SELECT STOCK_LEVELS.")  # the shelf, read locked before it changes

    on_hand, moves = shelf(first)
    assert on_hand == 6
    assert [m for m in moves if m[0] == Movement.SHIPMENT] == [(Movement.SHIPMENT, -2, -2)] * 2
